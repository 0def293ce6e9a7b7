//! From the raw file to validated rules: every check that needs more than serde's shape, each pointing at the
//! offending value.

use super::error::{SpanError, closest, tick_list};
use super::raw::{
    RawAlarms, RawFactorClass, RawFourEyes, RawPolicy, RawPrivileged, RawRole, RawVelocityRule,
    SpannedList,
};
use super::{
    AlarmPolicy, FactorRule, FourEyesPolicy, Limits, LockedOutPolicy, LockedOutProcedure,
    NotMePolicy, Permission, PushWithoutNumberMatching, Role, Rules, TapPolicy, TargetClass,
    VelocityPolicy, VelocityRule,
};
use crate::assurance;
use fctr_ports::{ActionKind, FactorKind};
use std::collections::BTreeSet;
use std::ops::{Range, RangeInclusive};
use toml::Spanned;

/// Longest group name or id we accept (Entra display names are up to 256 characters).
const MAX_GROUP_LEN: usize = 256;

/// The factor kinds a policy may list (possibly needing `allow_restricted_pstn`).
const LISTABLE: [&str; 7] = [
    "push",
    "totp",
    "hotp",
    "hardware_otp",
    "idp_sign_in",
    "sms",
    "voice",
];

impl TryFrom<RawPolicy> for Rules {
    type Error = SpanError;

    fn try_from(raw: RawPolicy) -> Result<Self, SpanError> {
        let mut rules = Rules::default();

        if let Some(v) = raw.version {
            if *v.get_ref() != 1 {
                return Err(SpanError::new(
                    v.span(),
                    format!("unsupported policy version {}", v.get_ref()),
                )
                .hint("this fctr reads `version = 1`"));
            }
        }

        if let Some(v) = raw.verification {
            if let Some(w) = v.window_minutes {
                rules.window_minutes = ranged(&w, "window_minutes", 1..=60)?;
            }
            if let Some(g) = v.grant_lifetime_minutes {
                rules.grant_lifetime_minutes = ranged(&g, "grant_lifetime_minutes", 1..=60)?;
            }
            if let Some(r) = v.reuse_idp_reads_seconds {
                rules.reuse_idp_reads_seconds = ranged(&r, "reuse_idp_reads_seconds", 0..=120)?;
            }
            if let Some(s) = v.single_use_grants {
                rules.single_use_grants = s;
            }
            if let Some(d) = v.no_downgrade {
                rules.no_downgrade = d;
            }
            if let Some(a) = v.allow_agent_self_actions {
                rules.allow_agent_self_actions = a;
            }
            if let Some(p) = v.push_without_number_matching {
                rules.push_without_number_matching = match p.get_ref().as_str() {
                    "require_another_factor" => PushWithoutNumberMatching::RequireAnotherFactor,
                    "refuse" => PushWithoutNumberMatching::Refuse,
                    other => {
                        return Err(SpanError::new(
                            p.span(),
                            format!("unknown value `{other}` for push_without_number_matching"),
                        )
                        .hint("use \"require_another_factor\" or \"refuse\""));
                    }
                };
            }
        }

        if let Some(l) = raw.limits {
            let d = Limits::default();
            rules.limits = Limits {
                challenges_per_target_per_hour: opt_ranged(
                    l.challenges_per_target_per_hour,
                    "challenges_per_target_per_hour",
                    1..=100,
                    d.challenges_per_target_per_hour,
                )?,
                challenges_per_agent_per_hour: opt_ranged(
                    l.challenges_per_agent_per_hour,
                    "challenges_per_agent_per_hour",
                    1..=10_000,
                    d.challenges_per_agent_per_hour,
                )?,
                wrong_codes_before_lockout: opt_ranged(
                    l.wrong_codes_before_lockout,
                    "wrong_codes_before_lockout",
                    1..=100,
                    d.wrong_codes_before_lockout,
                )?,
                lockout_minutes: opt_ranged(
                    l.lockout_minutes,
                    "lockout_minutes",
                    1..=1440,
                    d.lockout_minutes,
                )?,
                lookups_per_agent_per_hour: opt_ranged(
                    l.lookups_per_agent_per_hour,
                    "lookups_per_agent_per_hour",
                    1..=100_000,
                    d.lookups_per_agent_per_hour,
                )?,
            };
        }

        if let Some(t) = raw.temporary_access_pass {
            let d = TapPolicy::default();
            rules.tap = TapPolicy {
                lifetime_minutes: opt_ranged(
                    t.lifetime_minutes,
                    "lifetime_minutes",
                    10..=480,
                    d.lifetime_minutes,
                )?,
                one_time: t.one_time.unwrap_or(d.one_time),
            };
        }

        if let Some(l) = raw.locked_out {
            let d = LockedOutPolicy::default();
            let procedure = match &l.procedure {
                None => d.procedure,
                Some(p) => match p.get_ref().as_str() {
                    "unlock_then_verify" => LockedOutProcedure::UnlockThenVerify,
                    "escalate" => LockedOutProcedure::Escalate,
                    other => {
                        return Err(SpanError::new(
                            p.span(),
                            format!("unknown value `{other}` for locked_out.procedure"),
                        )
                        .hint("use \"unlock_then_verify\" or \"escalate\""));
                    }
                },
            };
            let escalation = match &l.escalation {
                None => d.escalation,
                Some(e) => {
                    let text = e.get_ref().trim();
                    if text.is_empty()
                        || text.chars().count() > 300
                        || text.chars().any(char::is_control)
                    {
                        return Err(SpanError::new(
                            e.span(),
                            "locked_out.escalation must be 1 to 300 characters of plain text"
                                .to_owned(),
                        ));
                    }
                    text.to_owned()
                }
            };
            rules.locked_out = LockedOutPolicy {
                procedure,
                unlocks_per_caller_per_day: opt_ranged(
                    l.unlocks_per_caller_per_day,
                    "unlocks_per_caller_per_day",
                    1..=5,
                    d.unlocks_per_caller_per_day,
                )?,
                escalation,
            };
        }

        if let Some(a) = raw.alarms {
            rules.alarms = alarms(a)?;
        }

        if let Some(p) = raw.protected {
            rules.protected_groups = groups(&p.groups)?;
        }

        if let Some(f) = raw.factors {
            if let Some(d) = f.default {
                rules.standard = factor_rule(d, &rules.standard, "factors.default")?;
            }
            if let Some(p) = f.privileged {
                let RawPrivileged {
                    groups: g,
                    accepted,
                    required,
                    allow_restricted_pstn,
                } = p;
                if let Some(g) = g {
                    rules.privileged_groups = groups(&g)?;
                }
                let class = RawFactorClass {
                    accepted,
                    required,
                    allow_restricted_pstn,
                };
                rules.privileged = factor_rule(class, &rules.privileged, "factors.privileged")?;
            }
        }

        if let Some(list) = raw.roles {
            let mut roles: Vec<Role> = Vec::new();
            for r in list {
                let name_span = r.name.span();
                let role = role(r)?;
                if roles.iter().any(|x| x.name == role.name) {
                    return Err(SpanError::new(
                        name_span,
                        format!("role `{}` is defined twice", role.name),
                    )
                    .hint("role names must be unique; merge the two entries"));
                }
                roles.push(role);
            }
            rules.roles = roles;
        }

        // After the roles: the approver roles must name roles this policy has.
        if let Some(f) = raw.four_eyes {
            rules.four_eyes = four_eyes(f, &rules.roles)?;
        }

        Ok(rules)
    }
}

fn ranged(v: &Spanned<i64>, key: &str, range: RangeInclusive<u32>) -> Result<u32, SpanError> {
    let n = *v.get_ref();
    match u32::try_from(n) {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(SpanError::new(
            v.span(),
            format!(
                "{key} must be between {} and {}, not {n}",
                range.start(),
                range.end()
            ),
        )
        .hint(format!(
            "see docs/policy.md for what `{key}` does and its default"
        ))),
    }
}

/// `[four_eyes]`: actions and target classes that need a second agent's approval, who may approve, and how long a
/// request waits. Unknown names are errors; a section that holds something back must name who can approve it.
fn four_eyes(raw: RawFourEyes, roles: &[Role]) -> Result<FourEyesPolicy, SpanError> {
    let d = FourEyesPolicy::default();
    let mut actions: BTreeSet<ActionKind> = BTreeSet::new();
    if let Some(list) = &raw.actions {
        let names: Vec<&str> = ActionKind::ALL.iter().map(ActionKind::as_str).collect();
        for item in list.get_ref() {
            let Some(kind) = ActionKind::parse(item.get_ref()) else {
                let hint = match closest(item.get_ref(), &names) {
                    Some(best) => {
                        format!("did you mean `{best}`? Actions are {}", tick_list(&names))
                    }
                    None => format!("actions are {}", tick_list(&names)),
                };
                return Err(SpanError::new(
                    item.span(),
                    format!("unknown action `{}` in four_eyes.actions", item.get_ref()),
                )
                .hint(hint));
            };
            if !actions.insert(kind) {
                return Err(SpanError::new(
                    item.span(),
                    format!("action `{kind}` is listed twice in four_eyes.actions"),
                )
                .hint("remove the second entry"));
            }
        }
    }
    let mut classes: Vec<TargetClass> = Vec::new();
    if let Some(list) = &raw.classes {
        for item in list.get_ref() {
            let class = match item.get_ref().as_str() {
                "standard" => TargetClass::Standard,
                "privileged" => TargetClass::Privileged,
                other => {
                    return Err(SpanError::new(
                        item.span(),
                        format!("unknown target class `{other}` in four_eyes.classes"),
                    )
                    .hint("target classes are `standard` and `privileged` (see [factors.privileged] groups)"));
                }
            };
            if classes.contains(&class) {
                return Err(SpanError::new(
                    item.span(),
                    format!("class `{class}` is listed twice in four_eyes.classes"),
                )
                .hint("remove the second entry"));
            }
            classes.push(class);
        }
    }
    let mut approver_roles: Vec<String> = Vec::new();
    if let Some(list) = &raw.approver_roles {
        let names: Vec<&str> = roles.iter().map(Role::name).collect();
        for item in list.get_ref() {
            let name = item.get_ref();
            if !names.contains(&name.as_str()) {
                let hint = match closest(name, &names) {
                    Some(best) => format!("did you mean `{best}`? Roles are {}", tick_list(&names)),
                    None => format!("roles are {}", tick_list(&names)),
                };
                return Err(SpanError::new(
                    item.span(),
                    format!("four_eyes.approver_roles names unknown role `{name}`"),
                )
                .hint(hint));
            }
            if approver_roles.contains(name) {
                return Err(SpanError::new(
                    item.span(),
                    format!("role `{name}` is listed twice in four_eyes.approver_roles"),
                )
                .hint("remove the second entry"));
            }
            approver_roles.push(name.clone());
        }
    }
    if (!actions.is_empty() || !classes.is_empty()) && approver_roles.is_empty() {
        let span = raw
            .approver_roles
            .as_ref()
            .map(Spanned::span)
            .or(raw.actions.as_ref().map(Spanned::span))
            .or(raw.classes.as_ref().map(Spanned::span))
            .unwrap_or(0..0);
        return Err(SpanError::new(
            span,
            "[four_eyes] holds actions back for approval but names no approver_roles, so nothing could ever be approved".to_owned(),
        )
        .hint("add approver_roles = [\"tier3\"] (roles from [[roles]]), or leave actions and classes empty"));
    }
    let request_ttl_seconds = opt_ranged(
        raw.request_ttl_seconds,
        "four_eyes.request_ttl_seconds",
        60..=3600,
        d.request_ttl_seconds,
    )?;
    Ok(FourEyesPolicy {
        actions,
        classes,
        approver_roles,
        request_ttl_seconds,
    })
}

/// `[alarms]`: each key falls back to its default.
fn alarms(raw: RawAlarms) -> Result<AlarmPolicy, SpanError> {
    let d = AlarmPolicy::default();
    let not_me = match raw.not_me {
        None => d.not_me,
        Some(n) => NotMePolicy {
            on_push_denied: n.on_push_denied.unwrap_or(d.not_me.on_push_denied),
            clear_sessions: n.clear_sessions.unwrap_or(d.not_me.clear_sessions),
            alert: n.alert.unwrap_or(d.not_me.alert),
            block_actions_seconds: opt_ranged(
                n.block_actions_seconds,
                "alarms.not_me.block_actions_seconds",
                0..=86_400,
                d.not_me.block_actions_seconds,
            )?,
        },
    };
    let velocity = match raw.velocity {
        None => d.velocity,
        Some(v) => {
            let dv = d.velocity;
            VelocityPolicy {
                distinct_agents_per_caller: velocity_rule(
                    v.distinct_agents_per_caller,
                    "alarms.velocity.distinct_agents_per_caller",
                    dv.distinct_agents_per_caller,
                )?,
                lookups_per_agent: velocity_rule(
                    v.lookups_per_agent,
                    "alarms.velocity.lookups_per_agent",
                    dv.lookups_per_agent,
                )?,
                failures_per_caller: velocity_rule(
                    v.failures_per_caller,
                    "alarms.velocity.failures_per_caller",
                    dv.failures_per_caller,
                )?,
                failures_per_agent: velocity_rule(
                    v.failures_per_agent,
                    "alarms.velocity.failures_per_agent",
                    dv.failures_per_agent,
                )?,
            }
        }
    };
    Ok(AlarmPolicy { not_me, velocity })
}

/// One velocity rule: `count` 2..=10000 in `window_seconds` 60..=86400 (a missing one keeps the default's);
/// `enabled = false` turns the rule off (and then takes no other key).
fn velocity_rule(
    raw: Option<RawVelocityRule>,
    key: &str,
    default: Option<VelocityRule>,
) -> Result<Option<VelocityRule>, SpanError> {
    let Some(r) = raw else { return Ok(default) };
    let base = default.unwrap_or(VelocityRule {
        count: 10,
        window_seconds: 3600,
    });
    if r.enabled == Some(false) {
        if let Some(v) = r.count.as_ref().or(r.window_seconds.as_ref()) {
            return Err(SpanError::new(
                v.span(),
                format!("{key} is disabled (`enabled = false`) but also sets a threshold"),
            )
            .hint("drop `enabled = false`, or drop `count` and `window_seconds`"));
        }
        return Ok(None);
    }
    Ok(Some(VelocityRule {
        count: opt_ranged(r.count, &format!("{key}.count"), 2..=10_000, base.count)?,
        window_seconds: opt_ranged(
            r.window_seconds,
            &format!("{key}.window_seconds"),
            60..=86_400,
            base.window_seconds,
        )?,
    }))
}

fn opt_ranged(
    v: Option<Spanned<i64>>,
    key: &str,
    range: RangeInclusive<u32>,
    default: u32,
) -> Result<u32, SpanError> {
    v.map_or(Ok(default), |v| ranged(&v, key, range))
}

/// A list of group names or ids: non-empty strings without control characters or surrounding spaces, no
/// duplicates. The list itself may be empty (the lint warns where that is risky).
fn groups(list: &SpannedList) -> Result<Vec<String>, SpanError> {
    let mut out: Vec<String> = Vec::new();
    for g in list.get_ref() {
        let s = g.get_ref();
        if s.trim().is_empty() {
            return Err(SpanError::new(g.span(), "empty group name")
                .hint("write the group's name or id exactly as the IdP sends it"));
        }
        if s.chars().count() > MAX_GROUP_LEN {
            return Err(SpanError::new(
                g.span(),
                format!("group name longer than {MAX_GROUP_LEN} characters"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(SpanError::new(
                g.span(),
                "group name contains a control character",
            ));
        }
        if s.trim() != s {
            return Err(SpanError::new(
                g.span(),
                format!("group name {s:?} starts or ends with a space"),
            )
            .hint("groups are matched exactly; remove the spaces"));
        }
        if out.contains(s) {
            return Err(
                SpanError::new(g.span(), format!("group `{s}` is listed twice"))
                    .hint("remove the second entry"),
            );
        }
        out.push(s.clone());
    }
    Ok(out)
}

fn factor_rule(
    raw: RawFactorClass,
    defaults: &FactorRule,
    section: &str,
) -> Result<FactorRule, SpanError> {
    let allow_pstn = raw.allow_restricted_pstn.unwrap_or(false);
    let (accepted, accepted_span) = match &raw.accepted {
        Some(list) => (accepted(list, allow_pstn, section)?, Some(list.span())),
        None => (defaults.accepted.clone(), None),
    };
    let required = match &raw.required {
        Some(r) => {
            let n = ranged(r, "required", 1..=3)?;
            u8::try_from(n).map_err(|_| SpanError::new(r.span(), "required is too large"))?
        }
        None => defaults.required,
    };
    if usize::from(required) > accepted.len() {
        let span = raw
            .required
            .as_ref()
            .map(Spanned::span)
            .or(accepted_span)
            .unwrap_or(0..0);
        return Err(SpanError::new(
            span,
            format!(
                "[{section}] requires {required} distinct factors but accepts only {} kind(s)",
                accepted.len()
            ),
        )
        .hint("a caller can prove at most as many different factors as are accepted: lower `required` or accept more kinds"));
    }
    Ok(FactorRule {
        accepted,
        required,
        allow_restricted_pstn: allow_pstn,
    })
}

fn accepted(
    list: &SpannedList,
    allow_pstn: bool,
    section: &str,
) -> Result<Vec<FactorKind>, SpanError> {
    if list.get_ref().is_empty() {
        return Err(
            SpanError::new(list.span(), format!("[{section}] accepts no factor kinds"))
                .hint("list at least one, e.g. accepted = [\"push\", \"totp\"]"),
        );
    }
    let mut out: Vec<FactorKind> = Vec::new();
    for item in list.get_ref() {
        let kind = factor_kind(item, allow_pstn)?;
        if out.contains(&kind) {
            return Err(SpanError::new(
                item.span(),
                format!("factor kind `{kind}` is listed twice"),
            )
            .hint("the list is in order of preference; keep one entry"));
        }
        out.push(kind);
    }
    Ok(out)
}

fn factor_kind(item: &Spanned<String>, allow_pstn: bool) -> Result<FactorKind, SpanError> {
    let name = item.get_ref();
    let span: Range<usize> = item.span();
    let known = FactorKind::ALL.iter().find(|k| k.as_str() == name).cloned();
    let Some(kind) = known else {
        let hint = match closest(name, &LISTABLE) {
            Some(best) => format!(
                "did you mean `{best}`? Kinds a policy can list: {}",
                tick_list(&LISTABLE)
            ),
            None => format!("kinds a policy can list: {}", tick_list(&LISTABLE)),
        };
        return Err(SpanError::new(span, format!("unknown factor kind `{name}`")).hint(hint));
    };
    match kind {
        FactorKind::Push
        | FactorKind::Totp
        | FactorKind::Hotp
        | FactorKind::HardwareOtp
        | FactorKind::IdpSignIn => Ok(kind),
        FactorKind::Sms | FactorKind::Voice => {
            if allow_pstn {
                Ok(kind)
            } else {
                Err(SpanError::new(
                    span,
                    format!(
                        "`{kind}` is a restricted authenticator ({}) and is off by default",
                        "NIST SP 800-63B 5.1.3.3"
                    ),
                )
                .hint(
                    "to accept it anyway, set `allow_restricted_pstn = true` in this same section",
                ))
            }
        }
        FactorKind::Email | FactorKind::SecurityQuestion => Err(SpanError::new(
            span,
            format!(
                "`{kind}` can never be an accepted factor: {}",
                assurance::nist_note(&kind)
            ),
        )
        .hint("remove it; accept push or totp instead")),
        _ => Err(SpanError::new(
            span,
            format!("`{kind}` cannot be verified by a helpdesk agent over the phone"),
        )
        .hint("remove it; accept push or totp instead")),
    }
}

fn role(raw: RawRole) -> Result<Role, SpanError> {
    let name = raw.name.get_ref();
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(SpanError::new(
            raw.name.span(),
            format!("role name {name:?} is not 1 to 32 characters of a-z, 0-9, `_` or `-`"),
        )
        .hint("e.g. name = \"tier2\""));
    }
    let groups = groups(&raw.groups)?;
    let names: Vec<&'static str> = super::Permission::all()
        .iter()
        .map(Permission::as_str)
        .collect();
    let mut permissions: BTreeSet<Permission> = BTreeSet::new();
    for p in raw.permissions.get_ref() {
        let Some(perm) = Permission::parse(p.get_ref()) else {
            let hint = match closest(p.get_ref(), &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("permissions are {}", tick_list(&names)),
            };
            return Err(
                SpanError::new(p.span(), format!("unknown permission `{}`", p.get_ref()))
                    .hint(hint),
            );
        };
        if !permissions.insert(perm) {
            return Err(
                SpanError::new(p.span(), format!("permission `{perm}` is listed twice"))
                    .hint("remove the second entry"),
            );
        }
    }
    Ok(Role {
        name: name.clone(),
        groups,
        permissions,
    })
}
