//! `explain`: who may do what to whom, and what it takes, in words an agent understands.

use super::factors::challengeable;
use super::{Permission, Policy, PushWithoutNumberMatching, Role, TargetClass};
use fctr_ports::{ActionKind, Capabilities, FactorKind, Reason};
use serde::Serialize;

/// The answer to "may I do this to this caller, and what would it take?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The action asked about.
    pub action: ActionKind,
    /// The target's class.
    pub target_class: TargetClass,
    /// Whether the agent's role includes the action.
    pub permitted_for_role: bool,
    /// Whether the target is in a protected group.
    pub protected_target: bool,
    /// Factor kinds that can verify this target, most preferred first (only those this IdP can challenge, when
    /// capabilities were given).
    pub accepted_factors: Vec<FactorKind>,
    /// Distinct factors required.
    pub required_factors: u8,
    /// How long a grant lives after verification.
    pub grant_minutes: i64,
    /// Whether one action consumes the grant.
    pub single_use: bool,
    /// Whether the action also waits for a second agent's approval (`[four_eyes]`).
    pub needs_approval: bool,
    /// The first rule that blocks the action, if any: `NoRole`, `NotPermittedForRole`, `ProtectedTarget`, or
    /// (with capabilities) `Unsupported` when this IdP cannot run the action or challenge enough factors.
    pub blocked_by: Option<Reason>,
    /// The explanation, one sentence per line.
    pub lines: Vec<String>,
}

/// "a push with number matching", "a TOTP code", …
fn factor_noun(kind: &FactorKind, number_matching: bool) -> (&'static str, &'static str) {
    match kind {
        FactorKind::Push if number_matching => ("a", "push with number matching"),
        FactorKind::Push => ("a", "push (no number matching)"),
        FactorKind::Totp => ("a", "TOTP code"),
        FactorKind::Hotp => ("an", "HOTP code"),
        FactorKind::HardwareOtp => ("a", "hardware token code"),
        FactorKind::Sms => ("an", "SMS code (restricted)"),
        FactorKind::Voice => ("a", "voice-call code (restricted)"),
        FactorKind::IdpSignIn => ("a", "sign-in with MFA through a one-time link"),
        _ => ("a", "factor policy cannot accept"),
    }
}

/// Records the first blocking reason only.
fn block(blocked: &mut Option<Reason>, reason: Reason) {
    if blocked.is_none() {
        *blocked = Some(reason);
    }
}

/// "A or B", "A, B or C".
fn join_or(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn number_word(n: u8) -> String {
    match n {
        1 => "one".to_owned(),
        2 => "two".to_owned(),
        3 => "three".to_owned(),
        n => n.to_string(),
    }
}

impl Policy {
    /// Explains whether an agent with `role` may run `action` on a target of `class` (in a protected group or
    /// not), and what verification it would take. With `caps`, the answer also accounts for what this identity
    /// provider can challenge and run.
    #[must_use]
    pub fn explain(
        &self,
        role: Option<&Role>,
        action: ActionKind,
        class: TargetClass,
        protected: bool,
        caps: Option<&Capabilities>,
    ) -> Explanation {
        let rule = self.factor_rule(class);
        let number_matching = caps.is_none_or(|c| c.push_number_matching);
        let plain_push_mode = self.rules.push_without_number_matching;
        let accepted: Vec<FactorKind> = rule
            .accepted()
            .iter()
            .filter(|k| match caps {
                None => true,
                Some(c) => {
                    challengeable(k, c)
                        && !(**k == FactorKind::Push
                            && !c.push_number_matching
                            && plain_push_mode == PushWithoutNumberMatching::Refuse)
                }
            })
            .cloned()
            .collect();
        let required = rule.required();
        let grant_minutes = i64::from(self.rules.grant_lifetime_minutes);
        let single_use = self.rules.single_use_grants;

        let mut lines = Vec::new();
        let mut blocked_by = None;

        let permitted = role.is_some_and(|r| self.permits(r, Permission::Act(action)));
        match role {
            None => {
                lines.push("You have no fctr role, so you may not do anything here.".to_owned());
                block(&mut blocked_by, Reason::NoRole);
            }
            Some(r) if !permitted => {
                lines.push(format!(
                    "Your role ({}) may not {}.",
                    r.name(),
                    action.describe()
                ));
                block(&mut blocked_by, Reason::NotPermittedForRole);
            }
            Some(r) => {
                lines.push(format!(
                    "Your role ({}) may {}.",
                    r.name(),
                    action.describe()
                ));
                if !self.permits(r, Permission::Verify) {
                    lines.push(format!(
                        "But your role ({}) may not verify callers, so it cannot get the verification this needs.",
                        r.name()
                    ));
                    block(&mut blocked_by, Reason::NotPermittedForRole);
                }
            }
        }

        if protected {
            lines.push(
                "This user is in a protected group: no portal action may touch them.".to_owned(),
            );
            block(&mut blocked_by, Reason::ProtectedTarget);
        }
        if class == TargetClass::Privileged {
            lines.push(
                "This user is in a privileged group, so the stricter factor rule applies."
                    .to_owned(),
            );
        }

        if let Some(c) = caps {
            if !c.actions.contains(&action) {
                lines.push(format!(
                    "This identity provider ({}) cannot {}.",
                    c.provider,
                    action.describe()
                ));
                block(&mut blocked_by, Reason::Unsupported);
            }
        }

        lines.push(self.requirement_line(
            &accepted,
            required,
            number_matching,
            grant_minutes,
            single_use,
        ));

        if accepted.contains(&FactorKind::Push) && !number_matching {
            lines.push(
                "Pushes from this identity provider carry no number to match, so a push counts only together \
                 with a second, different factor."
                    .to_owned(),
            );
        }
        if let Some(c) = caps {
            if !c.push_number_matching
                && plain_push_mode == PushWithoutNumberMatching::Refuse
                && rule.accepts(&FactorKind::Push)
            {
                lines.push(
                    "Pushes from this identity provider carry no number to match, and policy refuses them."
                        .to_owned(),
                );
            }
            if !satisfiable(&accepted, required, number_matching, plain_push_mode) {
                lines.push(format!(
                    "This identity provider ({}) cannot challenge enough of the accepted factors to verify this user.",
                    c.provider
                ));
                block(&mut blocked_by, Reason::Unsupported);
            }
        }
        if accepted
            .iter()
            .any(|k| matches!(k, FactorKind::Sms | FactorKind::Voice))
        {
            lines.push(
                "SMS and voice codes are restricted authenticators (NIST SP 800-63B 5.1.3.3): use them only when \
                 the caller has nothing stronger."
                    .to_owned(),
            );
        }
        if self.rules.no_downgrade {
            lines.push(
                "If the caller has a stronger factor enrolled, a weaker one is refused.".to_owned(),
            );
        }
        lines.push(format!(
            "A verification must be finished within {} minutes of starting it.",
            self.rules.window_minutes
        ));
        let needs_approval = self.rules.four_eyes.applies(action, class);
        if needs_approval {
            lines.push(format!(
                "Then it waits for a second agent's approval: an agent with the role {} must approve it in the \
                 approvals queue before it runs (never you, never the caller).",
                join_or(&self.rules.four_eyes.approver_roles)
            ));
        }
        if action == ActionKind::IssueTemporaryAccessPass {
            let tap = self.temporary_access_pass();
            lines.push(format!(
                "The Temporary Access Pass lasts {} minutes and works {}.",
                tap.lifetime_minutes,
                if tap.one_time {
                    "for one sign-in"
                } else {
                    "for several sign-ins"
                }
            ));
        }

        Explanation {
            action,
            target_class: class,
            permitted_for_role: permitted,
            protected_target: protected,
            accepted_factors: accepted,
            required_factors: required,
            grant_minutes,
            single_use,
            needs_approval,
            blocked_by,
            lines,
        }
    }

    fn requirement_line(
        &self,
        accepted: &[FactorKind],
        required: u8,
        number_matching: bool,
        grant_minutes: i64,
        single_use: bool,
    ) -> String {
        let tail = format!(
            ", within the last {grant_minutes} minutes; the grant can be used {}.",
            if single_use {
                "once"
            } else {
                "for several actions until it expires"
            }
        );
        if accepted.is_empty() {
            return "No factor that policy accepts can be used here, so the caller cannot be verified.".to_owned();
        }
        if required <= 1 {
            let items: Vec<String> = accepted
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let (article, noun) = factor_noun(k, number_matching);
                    if i == 0 {
                        format!("a verified {noun}")
                    } else {
                        format!("{article} {noun}")
                    }
                })
                .collect();
            format!("Requires {}{tail}", join_or(&items))
        } else {
            let items: Vec<String> = accepted
                .iter()
                .map(|k| factor_noun(k, number_matching).1.to_owned())
                .collect();
            format!(
                "Requires {} different verified factors, out of: {}{tail}",
                number_word(required),
                items.join(", ")
            )
        }
    }
}

/// Whether some choice of distinct accepted kinds meets the requirement.
fn satisfiable(
    accepted: &[FactorKind],
    required: u8,
    number_matching: bool,
    mode: PushWithoutNumberMatching,
) -> bool {
    let n = accepted.len();
    let required = usize::from(required);
    let has_push = accepted.contains(&FactorKind::Push);
    if has_push && !number_matching && mode == PushWithoutNumberMatching::RequireAnotherFactor {
        // Either verify without the push (n - 1 >= required other kinds, so n > required), or with it and at
        // least one other kind (n >= 2): both together are n >= max(required, 2), since required >= 1.
        n >= required.max(2)
    } else {
        n >= required
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FactorKind as K;
    use PushWithoutNumberMatching::RequireAnotherFactor as Ra;

    #[test]
    fn satisfiable_counts_a_plain_push_only_beside_another_kind() {
        for (accepted, required, nm, want) in [
            (vec![K::Push], 1, true, true),
            (vec![K::Push], 1, false, false),
            (vec![K::Totp], 1, true, true),
            (vec![K::Totp], 1, false, true),
            (vec![K::Totp], 2, true, false),
            (vec![K::Push, K::Totp], 1, false, true),
            (vec![K::Push, K::Totp], 2, false, true),
            (vec![K::Push, K::Totp], 3, false, false),
            (vec![K::Push, K::Totp, K::Hotp], 3, false, true),
        ] {
            assert_eq!(
                satisfiable(&accepted, required, nm, Ra),
                want,
                "{accepted:?} required {required}, number matching {nm}"
            );
        }
    }
}
