//! Lint: settings that are valid but weaken the product's promises. `fctr policy lint` prints these.

use super::{FactorRule, Permission, PolicyWarning, Rules, TargetClass};
use fctr_ports::FactorKind;

pub(super) fn warnings(rules: &Rules) -> Vec<PolicyWarning> {
    let mut out = Vec::new();
    let mut warn = |code: &'static str, message: String| out.push(PolicyWarning { code, message });

    for (class, rule) in [
        (TargetClass::Standard, &rules.standard),
        (TargetClass::Privileged, &rules.privileged),
    ] {
        let pstn: Vec<&str> = pstn_kinds(rule);
        if !pstn.is_empty() {
            warn(
                "restricted_pstn_allowed",
                format!(
                    "{} targets may be verified by {}: a restricted authenticator (NIST SP 800-63B 5.1.3.3) \
                     open to SIM swap and call forwarding; keep an unrestricted alternative and a plan to retire it",
                    class,
                    pstn.join(" and ")
                ),
            );
        }
    }
    if rules.window_minutes > 30 {
        warn(
            "long_verification_window",
            format!(
                "verification window is {} minutes; more than 30 gives a social engineer time to work on the caller",
                rules.window_minutes
            ),
        );
    }
    if rules.grant_lifetime_minutes > 30 {
        warn(
            "long_grant_lifetime",
            format!(
                "grants live {} minutes; more than 30 lets a verification authorize actions long after the call",
                rules.grant_lifetime_minutes
            ),
        );
    }
    if !rules.single_use_grants {
        warn(
            "multi_use_grants",
            "single_use_grants = false: one verification can authorize several high-risk actions"
                .to_owned(),
        );
    }
    if rules.allow_agent_self_actions {
        warn(
            "self_actions_allowed",
            "allow_agent_self_actions = true: an agent may verify and reset their own account"
                .to_owned(),
        );
    }
    if !rules.no_downgrade {
        warn(
            "downgrade_allowed",
            "no_downgrade = false: an agent may verify with a weaker factor while a stronger one is enrolled"
                .to_owned(),
        );
    }
    if rules.privileged.required() < 2 {
        warn(
            "privileged_single_factor",
            "privileged targets need only one factor; two distinct factors are recommended"
                .to_owned(),
        );
    }
    if rules.privileged.required() < rules.standard.required() {
        warn(
            "privileged_weaker_than_standard",
            "privileged targets need fewer factors than standard ones".to_owned(),
        );
    }
    if rules.privileged_groups.is_empty() {
        warn(
            "no_privileged_groups",
            "no privileged groups: administrators are verified like everyone else".to_owned(),
        );
    }
    if rules.protected_groups.is_empty() {
        warn(
            "no_protected_groups",
            "no protected groups: every account, including break-glass and executive accounts, can be acted on"
                .to_owned(),
        );
    }
    if rules.roles.is_empty() {
        warn("no_roles", "no roles: no agent can do anything".to_owned());
    }
    for role in &rules.roles {
        let acts = role
            .permissions
            .iter()
            .any(|p| matches!(p, Permission::Act(_)));
        if acts && !role.permissions.contains(&Permission::Verify) {
            warn(
                "actions_without_verify",
                format!(
                    "role `{}` may run actions but not verify callers, so it can never get the grant they need",
                    role.name
                ),
            );
        }
        if role.groups.is_empty() {
            warn(
                "role_without_groups",
                format!("role `{}` has no groups, so no agent can get it", role.name),
            );
        }
    }
    if rules.limits.wrong_codes_before_lockout > 10 {
        warn(
            "lenient_lockout",
            format!(
                "{} wrong codes before lockout; more than 10 helps guessing (NIST SP 800-63B 5.2.2 asks for rate limits)",
                rules.limits.wrong_codes_before_lockout
            ),
        );
    }
    if !rules.tap.one_time {
        warn(
            "multi_use_temporary_access_pass",
            "temporary access passes work more than once; one-time passes limit what a leaked pass can do".to_owned(),
        );
    }
    out
}

fn pstn_kinds(rule: &FactorRule) -> Vec<&'static str> {
    rule.accepted()
        .iter()
        .filter_map(|k| match k {
            FactorKind::Sms => Some("SMS"),
            FactorKind::Voice => Some("voice call"),
            _ => None,
        })
        .collect()
}
