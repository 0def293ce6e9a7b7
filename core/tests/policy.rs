//! Policy engine and assurance mapping: every rule of the policy, its errors and lints, and properties.

use fctr_core::assurance;
use fctr_core::policy::{
    FactorRefusal, Permission, Policy, PolicyError, PushWithoutNumberMatching, TargetClass,
};
use fctr_ports::{
    ActionKind, Capabilities, FactorId, FactorInfo, FactorKind, FactorStatus, GroupRef, Reason,
};
use proptest::prelude::*;
use std::collections::BTreeSet;

const EXAMPLE: &str = include_str!("../../examples/policy.toml");

// ---------------------------------------------------------------------------------------------------------------
// helpers

fn okta() -> Capabilities {
    Capabilities {
        provider: "okta".into(),
        push: true,
        push_number_matching: true,
        code_verification: true,
        name_search: true,
        actions: ActionKind::ALL.into_iter().collect(),
    }
}

/// Entra through the MFA connector: plain approve/deny pushes.
fn entra() -> Capabilities {
    Capabilities {
        provider: "entra".into(),
        push_number_matching: false,
        actions: [
            ActionKind::ResetPassword,
            ActionKind::IssueTemporaryAccessPass,
        ]
        .into_iter()
        .collect(),
        ..okta()
    }
}

fn group(id: &str, name: &str) -> GroupRef {
    GroupRef {
        id: id.into(),
        name: name.into(),
    }
}

fn factor(id: &str, kind: FactorKind, status: FactorStatus) -> FactorInfo {
    FactorInfo {
        id: FactorId::parse(id).unwrap_or_else(|e| panic!("bad test factor id {id}: {e}")),
        kind,
        status,
        vendor: None,
        label: None,
    }
}

fn parse(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("policy should parse: {e}\n{text}"))
}

fn parse_err(text: &str) -> PolicyError {
    match Policy::parse(text) {
        Ok(_) => panic!("policy should be refused:\n{text}"),
        Err(e) => e,
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn codes(p: &Policy) -> BTreeSet<&'static str> {
    p.warnings().iter().map(|w| w.code).collect()
}

use FactorKind as K;

// ---------------------------------------------------------------------------------------------------------------
// the default policy and the example file

#[test]
fn example_file_is_the_default_policy() {
    let example = parse(EXAMPLE);
    let default = Policy::default();
    assert!(example.same_rules(&default));
    assert_eq!(default.source_digest(), "builtin-default");
    let digest = example.source_digest();
    assert_eq!(digest.len(), 64);
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(default.warnings().is_empty(), "{:?}", default.warnings());
    assert!(example.warnings().is_empty());
}

#[test]
fn a_changed_example_is_not_the_default() {
    let changed = EXAMPLE.replace("window_minutes = 10", "window_minutes = 11");
    assert_ne!(changed, EXAMPLE);
    let p = parse(&changed);
    assert!(!p.same_rules(&Policy::default()));
    assert_ne!(p.source_digest(), parse(EXAMPLE).source_digest());
}

#[test]
fn empty_file_is_the_default_policy() {
    assert!(parse("").same_rules(&Policy::default()));
    assert!(parse("# only a comment\n").same_rules(&Policy::default()));
}

#[test]
fn default_policy_has_the_documented_values() {
    let p = Policy::default();
    let names: Vec<&str> = p.roles().iter().map(|r| r.name()).collect();
    assert_eq!(names, ["tier1", "tier2", "tier3"]);

    let t1 = p.role("tier1").unwrap();
    assert_eq!(t1.groups(), ["fctr-tier1"]);
    assert_eq!(
        t1.permissions().iter().copied().collect::<Vec<_>>(),
        [Permission::Lookup, Permission::Verify]
    );
    assert!(p.permitted_actions(t1).is_empty());

    let t2 = p.role("tier2").unwrap();
    assert_eq!(t2.groups(), ["fctr-tier2"]);
    let t2_actions: BTreeSet<ActionKind> = [
        ActionKind::ClearSessions,
        ActionKind::Unlock,
        ActionKind::ResetPassword,
        ActionKind::ExpirePassword,
    ]
    .into_iter()
    .collect();
    assert_eq!(p.permitted_actions(t2), t2_actions);
    assert!(p.permits(t2, Permission::Verify));
    assert!(!p.permits(t2, Permission::ViewAudit));

    let t3 = p.role("tier3").unwrap();
    assert_eq!(
        p.permitted_actions(t3),
        ActionKind::ALL.into_iter().collect::<BTreeSet<_>>()
    );
    assert!(p.permits(t3, Permission::ViewAudit));
    assert_eq!(t3.permissions().len(), Permission::all().len());

    let std_rule = p.factor_rule(TargetClass::Standard);
    assert_eq!(
        std_rule.accepted(),
        [K::Push, K::Totp, K::HardwareOtp, K::Hotp]
    );
    assert_eq!(std_rule.required(), 1);
    assert!(!std_rule.allows_restricted_pstn());
    let priv_rule = p.factor_rule(TargetClass::Privileged);
    assert_eq!(priv_rule.accepted(), [K::Push, K::Totp]);
    assert_eq!(priv_rule.required(), 2);
    assert_eq!(p.privileged_groups(), ["fctr-privileged"]);
    assert_eq!(p.protected_groups(), ["fctr-protected"]);

    assert_eq!(p.verification_window(), chrono::Duration::minutes(10));
    assert_eq!(p.grant_lifetime(), chrono::Duration::minutes(10));
    assert!(p.single_use_grants());
    assert!(p.no_downgrade());
    assert_eq!(
        p.push_without_number_matching(),
        PushWithoutNumberMatching::RequireAnotherFactor
    );
    let l = p.limits();
    assert_eq!(
        (
            l.challenges_per_target_per_hour,
            l.challenges_per_agent_per_hour,
            l.wrong_codes_before_lockout,
            l.lockout_minutes,
            l.lookups_per_agent_per_hour
        ),
        (5, 60, 5, 30, 300)
    );
    assert_eq!(p.temporary_access_pass().lifetime_minutes, 60);
    assert!(p.temporary_access_pass().one_time);
}

#[test]
fn keys_override_defaults_and_durations_follow() {
    let p = parse(
        "[verification]\nwindow_minutes = 5\ngrant_lifetime_minutes = 3\nsingle_use_grants = false\n\
         no_downgrade = false\npush_without_number_matching = \"refuse\"\n\
         [limits]\nlockout_minutes = 45\n[temporary_access_pass]\nlifetime_minutes = 120\none_time = false\n",
    );
    assert_eq!(p.verification_window(), chrono::Duration::minutes(5));
    assert_eq!(p.grant_lifetime(), chrono::Duration::minutes(3));
    assert!(!p.single_use_grants());
    assert!(!p.no_downgrade());
    assert_eq!(
        p.push_without_number_matching(),
        PushWithoutNumberMatching::Refuse
    );
    assert_eq!(p.limits().lockout_minutes, 45);
    // Other limits keep their defaults.
    assert_eq!(p.limits().challenges_per_target_per_hour, 5);
    assert_eq!(p.temporary_access_pass().lifetime_minutes, 120);
    assert!(!p.temporary_access_pass().one_time);
    // Roles were not written, so the defaults stay.
    assert_eq!(p.roles().len(), 3);
}

#[test]
fn permission_names_round_trip() {
    for perm in Permission::all() {
        assert_eq!(Permission::parse(perm.as_str()), Some(perm));
    }
    assert_eq!(
        Permission::parse("reset_password"),
        Some(Permission::Act(ActionKind::ResetPassword))
    );
    assert_eq!(Permission::parse("format_disk"), None);
    assert_eq!(Permission::parse("Lookup"), None);
}

// ---------------------------------------------------------------------------------------------------------------
// roles

const ROLES: &str = r#"
[[roles]]
name = "helpdesk"
groups = ["hd", "shared"]
permissions = ["lookup", "verify"]

[[roles]]
name = "senior"
groups = ["senior", "shared"]
permissions = ["lookup", "verify", "reset_password"]

[[roles]]
name = "auditor"
groups = ["audit"]
permissions = ["lookup", "view_audit"]

[[roles]]
name = "twin"
groups = ["audit", "hd"]
permissions = ["lookup", "verify"]
"#;

#[test]
fn role_for_groups_picks_the_largest_matching_role() {
    let p = parse(ROLES);
    let name = |g: &[&str]| p.role_for_groups(&strs(g)).map(|r| r.name().to_owned());
    assert_eq!(name(&["hd"]).as_deref(), Some("helpdesk"));
    assert_eq!(name(&["senior"]).as_deref(), Some("senior"));
    // Both helpdesk (2) and senior (3) match: the larger wins, whatever the order of groups.
    assert_eq!(name(&["hd", "senior"]).as_deref(), Some("senior"));
    assert_eq!(name(&["senior", "hd"]).as_deref(), Some("senior"));
    assert_eq!(name(&["shared"]).as_deref(), Some("senior"));
    // auditor (2) and twin (2) tie: the first in the file wins.
    assert_eq!(name(&["audit"]).as_deref(), Some("auditor"));
    // helpdesk and twin tie through "hd": first in file.
    assert_eq!(name(&["hd", "audit"]).as_deref(), Some("helpdesk"));
    // No match, empty, or a different case: no role.
    assert_eq!(name(&["nobody"]), None);
    assert_eq!(name(&[]), None);
    assert_eq!(name(&["HD"]), None);
    assert_eq!(name(&["hd "]), None);
}

#[test]
fn roles_replace_the_defaults() {
    let p = parse(ROLES);
    assert!(p.role("tier1").is_none());
    assert_eq!(p.roles().len(), 4);
    assert!(p.role_for_groups(&strs(&["fctr-tier3"])).is_none());
}

#[test]
fn default_roles_map_from_default_groups() {
    let p = Policy::default();
    let role = |g: &[&str]| p.role_for_groups(&strs(g)).map(|r| r.name().to_owned());
    assert_eq!(role(&["fctr-tier1"]).as_deref(), Some("tier1"));
    assert_eq!(
        role(&["fctr-tier1", "fctr-tier3", "fctr-tier2"]).as_deref(),
        Some("tier3")
    );
    assert_eq!(role(&["Fctr-Tier1"]), None);
}

// ---------------------------------------------------------------------------------------------------------------
// target classes and protected groups

#[test]
fn classify_matches_id_or_name() {
    let p = Policy::default();
    assert_eq!(p.classify(&[]), TargetClass::Standard);
    assert_eq!(p.classify(&[group("00g1", "Staff")]), TargetClass::Standard);
    assert_eq!(
        p.classify(&[group("00g1", "Staff"), group("00g2", "fctr-privileged")]),
        TargetClass::Privileged
    );
    assert_eq!(
        p.classify(&[group("fctr-privileged", "Admins")]),
        TargetClass::Privileged
    );
    assert_eq!(
        p.classify(&[group("x", "FCTR-PRIVILEGED")]),
        TargetClass::Standard
    );
}

#[test]
fn protected_is_exact_and_case_sensitive() {
    let p = parse(
        "[protected]\ngroups = [\"Break Glass\", \"6e7b768e-07e2-4810-8459-485f84f8f204\"]\n",
    );
    assert!(p.is_protected(&[group("00g9", "Break Glass")]));
    assert!(p.is_protected(&[group("6e7b768e-07e2-4810-8459-485f84f8f204", "renamed")]));
    assert!(p.is_protected(&[group("a", "b"), group("c", "Break Glass")]));
    for near in [
        "break glass",
        "Break Glass ",
        "Break",
        "Break Glass Admins",
        "",
        "BREAK GLASS",
    ] {
        assert!(!p.is_protected(&[group("00g9", near)]), "{near:?}");
    }
    assert!(!p.is_protected(&[]));
    // The default protects fctr-protected.
    assert!(Policy::default().is_protected(&[group("g", "fctr-protected")]));
    assert!(!Policy::default().is_protected(&[group("g", "fctr-protected-x")]));
}

// ---------------------------------------------------------------------------------------------------------------
// factors

const PSTN: &str = r#"
[factors.default]
accepted = ["push", "totp", "sms", "voice"]
allow_restricted_pstn = true
"#;

#[test]
fn check_factor_refuses_kinds_not_accepted() {
    let p = Policy::default();
    let caps = okta();
    for kind in FactorKind::ALL {
        let r = p.check_factor(
            TargetClass::Standard,
            &kind,
            std::slice::from_ref(&kind),
            &caps,
        );
        let accepted = matches!(kind, K::Push | K::Totp | K::Hotp | K::HardwareOtp);
        assert_eq!(r.is_ok(), accepted, "{kind}");
        if !accepted {
            assert_eq!(r, Err(FactorRefusal::NotAccepted));
        }
    }
    // Privileged accepts only push and totp.
    assert_eq!(
        p.check_factor(TargetClass::Privileged, &K::Hotp, &[K::Hotp], &caps),
        Err(FactorRefusal::NotAccepted)
    );
    assert!(
        p.check_factor(TargetClass::Privileged, &K::Totp, &[K::Totp], &caps)
            .is_ok()
    );
    assert_eq!(
        p.check_factor(TargetClass::Standard, &K::Other("u2f".into()), &[], &caps),
        Err(FactorRefusal::NotAccepted)
    );
}

#[test]
fn check_factor_needs_the_idp_to_challenge_it() {
    let p = Policy::default();
    let no_push = Capabilities {
        push: false,
        ..okta()
    };
    assert_eq!(
        p.check_factor(TargetClass::Standard, &K::Push, &[K::Push], &no_push),
        Err(FactorRefusal::NotChallengeable)
    );
    let no_codes = Capabilities {
        code_verification: false,
        ..okta()
    };
    for k in [K::Totp, K::Hotp, K::HardwareOtp] {
        assert_eq!(
            p.check_factor(
                TargetClass::Standard,
                &k,
                std::slice::from_ref(&k),
                &no_codes
            ),
            Err(FactorRefusal::NotChallengeable)
        );
    }
}

#[test]
fn no_downgrade_refuses_weaker_factors() {
    let p = parse(PSTN);
    let caps = okta();
    // SMS while TOTP is enrolled: refused, naming TOTP.
    assert_eq!(
        p.check_factor(TargetClass::Standard, &K::Sms, &[K::Sms, K::Totp], &caps),
        Err(FactorRefusal::Downgrade { stronger: K::Totp })
    );
    // Both push and totp stronger: the preferred one (push, first in the list) is named.
    assert_eq!(
        p.check_factor(
            TargetClass::Standard,
            &K::Voice,
            &[K::Voice, K::Totp, K::Push],
            &caps
        ),
        Err(FactorRefusal::Downgrade { stronger: K::Push })
    );
    // SMS when nothing stronger is enrolled: allowed.
    assert!(
        p.check_factor(TargetClass::Standard, &K::Sms, &[K::Sms, K::Voice], &caps)
            .is_ok()
    );
    // Push with number matching and TOTP are equally strong: no downgrade either way.
    assert!(
        p.check_factor(TargetClass::Standard, &K::Totp, &[K::Push, K::Totp], &caps)
            .is_ok()
    );
    assert!(
        p.check_factor(TargetClass::Standard, &K::Push, &[K::Push, K::Totp], &caps)
            .is_ok()
    );
    // A stronger kind the IdP cannot challenge does not count.
    let no_codes = Capabilities {
        code_verification: false,
        ..okta()
    };
    assert!(
        p.check_factor(
            TargetClass::Standard,
            &K::Push,
            &[K::Push, K::Totp],
            &no_codes
        )
        .is_ok()
    );
    // A stronger kind policy does not accept does not count (hardware_otp is not in this list).
    assert!(
        p.check_factor(
            TargetClass::Standard,
            &K::Sms,
            &[K::Sms, K::HardwareOtp, K::WebAuthn],
            &caps
        )
        .is_ok()
    );
    // The refusal maps to its reason.
    let refusal = FactorRefusal::Downgrade { stronger: K::Totp };
    assert_eq!(refusal.reason(), Reason::DowngradeRefused);
}

#[test]
fn downgrades_are_allowed_when_switched_off() {
    let p = parse(&format!("{PSTN}\n[verification]\nno_downgrade = false\n"));
    assert!(
        p.check_factor(TargetClass::Standard, &K::Sms, &[K::Sms, K::Totp], &okta())
            .is_ok()
    );
    assert!(codes(&p).contains("downgrade_allowed"));
}

#[test]
fn push_without_number_matching_is_a_downgrade_from_totp() {
    let p = Policy::default();
    assert_eq!(
        p.check_factor(
            TargetClass::Standard,
            &K::Push,
            &[K::Push, K::Totp],
            &entra()
        ),
        Err(FactorRefusal::Downgrade { stronger: K::Totp })
    );
    // Push alone enrolled: allowed (require_another_factor handles it later).
    assert!(
        p.check_factor(TargetClass::Standard, &K::Push, &[K::Push], &entra())
            .is_ok()
    );
}

#[test]
fn push_without_number_matching_refused_when_policy_says_so() {
    let p = parse("[verification]\npush_without_number_matching = \"refuse\"\n");
    let r = p.check_factor(TargetClass::Standard, &K::Push, &[K::Push], &entra());
    assert_eq!(r, Err(FactorRefusal::PushWithoutNumberMatching));
    assert_eq!(r.unwrap_err().reason(), Reason::FactorNotAccepted);
    // With number matching the same policy allows push.
    assert!(
        p.check_factor(TargetClass::Standard, &K::Push, &[K::Push], &okta())
            .is_ok()
    );
    // And a refused push is no "stronger" factor: TOTP is fine, even with push enrolled.
    assert!(
        p.check_factor(
            TargetClass::Standard,
            &K::Totp,
            &[K::Push, K::Totp],
            &entra()
        )
        .is_ok()
    );
}

#[test]
fn refusal_reasons() {
    assert_eq!(
        FactorRefusal::NotAccepted.reason(),
        Reason::FactorNotAccepted
    );
    assert_eq!(
        FactorRefusal::NotChallengeable.reason(),
        Reason::FactorNotAccepted
    );
    assert_eq!(
        FactorRefusal::Downgrade { stronger: K::Push }.reason(),
        Reason::DowngradeRefused
    );
}

#[test]
fn preferred_factor_follows_preference_and_status() {
    let p = Policy::default();
    let enrolled = vec![
        factor("f-hotp", K::Hotp, FactorStatus::Active),
        factor("f-totp", K::Totp, FactorStatus::Active),
        factor("f-push", K::Push, FactorStatus::PendingActivation),
        factor("f-mail", K::Email, FactorStatus::Active),
    ];
    let caps = okta();
    let got = p.preferred_factor(TargetClass::Standard, &enrolled, &caps);
    assert_eq!(got.map(|f| f.id.as_str()), Some("f-totp"));

    let mut with_push = enrolled.clone();
    with_push.push(factor("f-push2", K::Push, FactorStatus::Active));
    let got = p.preferred_factor(TargetClass::Standard, &with_push, &caps);
    assert_eq!(got.map(|f| f.id.as_str()), Some("f-push2"));

    // Entra without number matching: push would be a downgrade from TOTP, so TOTP comes first.
    let got = p.preferred_factor(TargetClass::Standard, &with_push, &entra());
    assert_eq!(got.map(|f| f.id.as_str()), Some("f-totp"));

    // Only e-mail and an inactive push: nothing.
    let weak = vec![
        factor("f-mail", K::Email, FactorStatus::Active),
        factor("f-push", K::Push, FactorStatus::Inactive),
    ];
    assert!(
        p.preferred_factor(TargetClass::Standard, &weak, &caps)
            .is_none()
    );

    // Privileged does not accept HOTP.
    let hotp = vec![factor("f-hotp", K::Hotp, FactorStatus::Active)];
    assert!(
        p.preferred_factor(TargetClass::Privileged, &hotp, &caps)
            .is_none()
    );
    assert!(
        p.preferred_factor(TargetClass::Standard, &hotp, &caps)
            .is_some()
    );
}

#[test]
fn preferred_factor_skips_downgrades() {
    // SMS preferred first in the file, but TOTP is enrolled and stronger.
    let p =
        parse("[factors.default]\naccepted = [\"sms\", \"totp\"]\nallow_restricted_pstn = true\n");
    let enrolled = vec![
        factor("f-sms", K::Sms, FactorStatus::Active),
        factor("f-totp", K::Totp, FactorStatus::Active),
    ];
    let got = p.preferred_factor(TargetClass::Standard, &enrolled, &okta());
    assert_eq!(got.map(|f| f.id.as_str()), Some("f-totp"));
}

#[test]
fn factors_still_needed_counts_distinct_accepted_kinds() {
    let p = Policy::default();
    let caps = okta();
    let need = |class, approved: &[FactorKind]| p.factors_still_needed(class, &caps, approved);
    assert_eq!(need(TargetClass::Standard, &[]), 1);
    assert_eq!(need(TargetClass::Standard, &[K::Push]), 0);
    assert_eq!(need(TargetClass::Privileged, &[]), 2);
    assert_eq!(need(TargetClass::Privileged, &[K::Push]), 1);
    assert_eq!(need(TargetClass::Privileged, &[K::Push, K::Push]), 1);
    assert_eq!(need(TargetClass::Privileged, &[K::Push, K::Totp]), 0);
    assert_eq!(
        need(TargetClass::Privileged, &[K::Totp, K::Push, K::Totp]),
        0
    );
    // Kinds the class does not accept do not count.
    assert_eq!(need(TargetClass::Privileged, &[K::Push, K::Hotp]), 1);
    assert_eq!(need(TargetClass::Standard, &[K::Email, K::Sms]), 1);
}

#[test]
fn push_without_number_matching_requires_another_factor() {
    let p = Policy::default();
    let caps = entra();
    // Standard needs one, but a plain push alone is not enough.
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &caps, &[K::Push]),
        1
    );
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &caps, &[K::Push, K::Totp]),
        0
    );
    // Without a push, the usual requirement.
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &caps, &[K::Totp]),
        0
    );
    // Privileged already needs two.
    assert_eq!(
        p.factors_still_needed(TargetClass::Privileged, &caps, &[K::Push]),
        1
    );
    // With number matching, push alone is fine.
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &okta(), &[K::Push]),
        0
    );
}

#[test]
fn refused_push_never_counts() {
    let p = parse("[verification]\npush_without_number_matching = \"refuse\"\n");
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &entra(), &[K::Push]),
        1
    );
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &entra(), &[K::Push, K::Totp]),
        0
    );
    assert_eq!(
        p.factors_still_needed(TargetClass::Standard, &okta(), &[K::Push]),
        0
    );
}

// ---------------------------------------------------------------------------------------------------------------
// explain

#[test]
fn explain_tier1_may_not_reset_password() {
    let p = Policy::default();
    let e = p.explain(
        p.role("tier1"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        None,
    );
    assert!(!e.permitted_for_role);
    assert_eq!(e.blocked_by, Some(Reason::NotPermittedForRole));
    assert!(
        e.lines
            .contains(&"Your role (tier1) may not reset the password.".to_owned()),
        "{:#?}",
        e.lines
    );
}

#[test]
fn explain_tier2_reset_password_standard() {
    let p = Policy::default();
    let e = p.explain(
        p.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        Some(&okta()),
    );
    assert!(e.permitted_for_role);
    assert_eq!(e.blocked_by, None);
    assert_eq!(e.required_factors, 1);
    assert_eq!(
        e.accepted_factors,
        [K::Push, K::Totp, K::HardwareOtp, K::Hotp]
    );
    assert_eq!(e.grant_minutes, 10);
    assert!(e.single_use);
    assert!(!e.protected_target);
    assert_eq!(e.lines[0], "Your role (tier2) may reset the password.");
    assert!(
        e.lines.contains(
            &"Requires a verified push with number matching, a TOTP code, a hardware token code or an HOTP \
              code, within the last 10 minutes; the grant can be used once."
                .to_owned()
        ),
        "{:#?}",
        e.lines
    );
}

#[test]
fn explain_privileged_needs_two() {
    let p = parse("[factors.default]\naccepted = [\"push\", \"totp\"]\n");
    let e = p.explain(
        p.role("tier3"),
        ActionKind::ResetFactors,
        TargetClass::Privileged,
        false,
        None,
    );
    assert_eq!(e.blocked_by, None);
    assert_eq!(e.required_factors, 2);
    assert!(e.lines.iter().any(|l| l
        == "Requires two different verified factors, out of: push with number matching, TOTP code, within \
            the last 10 minutes; the grant can be used once."));
    assert!(e.lines.iter().any(|l| l.contains("privileged group")));
    // The one-factor standard wording from the example in the brief.
    let e = p.explain(
        p.role("tier2"),
        ActionKind::Unlock,
        TargetClass::Standard,
        false,
        None,
    );
    assert!(e.lines.iter().any(|l| l
        == "Requires a verified push with number matching or a TOTP code, within the last 10 minutes; the \
            grant can be used once."));
}

#[test]
fn explain_blocks_no_role_and_protected() {
    let p = Policy::default();
    let e = p.explain(None, ActionKind::Unlock, TargetClass::Standard, false, None);
    assert_eq!(e.blocked_by, Some(Reason::NoRole));
    assert!(!e.permitted_for_role);
    assert!(e.lines[0].contains("no fctr role"));

    let e = p.explain(
        p.role("tier3"),
        ActionKind::Unlock,
        TargetClass::Standard,
        true,
        None,
    );
    assert!(e.permitted_for_role);
    assert!(e.protected_target);
    assert_eq!(e.blocked_by, Some(Reason::ProtectedTarget));
    assert!(e.lines.iter().any(|l| l.contains("protected group")));
}

#[test]
fn explain_role_without_verify_is_blocked() {
    let p = parse(
        "[[roles]]\nname = \"odd\"\ngroups = [\"g\"]\npermissions = [\"lookup\", \"unlock\"]\n",
    );
    let e = p.explain(
        p.role("odd"),
        ActionKind::Unlock,
        TargetClass::Standard,
        false,
        None,
    );
    assert!(e.permitted_for_role);
    assert_eq!(e.blocked_by, Some(Reason::NotPermittedForRole));
    assert!(e.lines.iter().any(|l| l.contains("may not verify callers")));
    assert!(codes(&p).contains("actions_without_verify"));
}

#[test]
fn explain_with_entra_capabilities() {
    let p = Policy::default();
    let caps = entra();
    // Entra cannot unlock (in this test's capabilities).
    let e = p.explain(
        p.role("tier2"),
        ActionKind::Unlock,
        TargetClass::Standard,
        false,
        Some(&caps),
    );
    assert_eq!(e.blocked_by, Some(Reason::Unsupported));
    assert!(
        e.lines
            .iter()
            .any(|l| l.contains("entra") && l.contains("cannot unlock"))
    );
    // Reset password is fine, but a push needs a second factor.
    let e = p.explain(
        p.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        Some(&caps),
    );
    assert_eq!(e.blocked_by, None);
    assert!(e.lines.iter().any(|l| l.contains("no number to match")));
    assert!(
        e.lines
            .iter()
            .any(|l| l.contains("push (no number matching)"))
    );
    // Refuse mode drops push from the accepted factors.
    let refuse = parse("[verification]\npush_without_number_matching = \"refuse\"\n");
    let e = refuse.explain(
        refuse.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        Some(&caps),
    );
    assert!(!e.accepted_factors.contains(&K::Push));
    assert!(e.lines.iter().any(|l| l.contains("policy refuses them")));
}

#[test]
fn explain_unsatisfiable_on_this_idp() {
    // Privileged accepts push and totp, two required; an IdP without code checks can only push.
    let p = Policy::default();
    let caps = Capabilities {
        code_verification: false,
        ..okta()
    };
    let e = p.explain(
        p.role("tier3"),
        ActionKind::ResetFactors,
        TargetClass::Privileged,
        false,
        Some(&caps),
    );
    assert_eq!(e.accepted_factors, [K::Push]);
    assert_eq!(e.blocked_by, Some(Reason::Unsupported));
}

#[test]
fn explain_tap_mentions_lifetime() {
    let p = Policy::default();
    let e = p.explain(
        p.role("tier3"),
        ActionKind::IssueTemporaryAccessPass,
        TargetClass::Standard,
        false,
        None,
    );
    assert!(
        e.lines
            .iter()
            .any(|l| l.contains("lasts 60 minutes") && l.contains("one sign-in"))
    );
}

// ---------------------------------------------------------------------------------------------------------------
// errors

/// Asserts the error's line, and that its message (and hint, when given) contain the fragments.
fn assert_error(text: &str, line: usize, message: &str, hint: Option<&str>) -> PolicyError {
    let e = parse_err(text);
    assert_eq!(e.line, line, "wrong line for {e}\n---\n{text}");
    assert!(e.column >= 1);
    assert!(
        e.message.contains(message),
        "message {e:?} lacks {message:?}"
    );
    if let Some(h) = hint {
        let got = e.hint.clone().unwrap_or_default();
        assert!(got.contains(h), "hint {got:?} lacks {h:?}");
    }
    e
}

#[test]
fn unknown_key_names_line_column_and_suggestion() {
    let text = "[verification]\n\n  windw = 10\n";
    let e = assert_error(
        text,
        3,
        "unknown key `windw`",
        Some("did you mean `window_minutes`?"),
    );
    assert_eq!(e.column, 3);
    assert_eq!(
        e.to_string(),
        "line 3, column 3: unknown key `windw` (hint: did you mean `window_minutes`?)"
    );
    assert_error("colour = 1\n", 1, "unknown key `colour`", None);
    assert_error(
        "[verfication]\nx = 1\n",
        1,
        "unknown key `verfication`",
        Some("`verification`"),
    );
    // `groups` belongs to the privileged class only.
    assert_error(
        "[factors.default]\ngroups = [\"x\"]\n",
        2,
        "unknown key `groups`",
        None,
    );
    // Role keys are checked too.
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = []\npermissions = []\npermisions = []\n",
        5,
        "unknown key `permisions`",
        Some("`permissions`"),
    );
}

#[test]
fn bad_types_are_errors() {
    assert_error(
        "[verification]\nwindow_minutes = \"ten\"\n",
        2,
        "wrong type",
        None,
    );
    assert_error(
        "[verification]\nsingle_use_grants = \"yes\"\n",
        2,
        "wrong type",
        None,
    );
    assert_error(
        "[factors.default]\naccepted = \"push\"\n",
        2,
        "wrong type",
        None,
    );
    assert_error(
        "[verification]\nwindow_minutes = 1.5\n",
        2,
        "wrong type",
        None,
    );
    assert_error("verification = 3\n", 1, "wrong type", None);
}

#[test]
fn out_of_range_values_are_errors() {
    let e = assert_error(
        "# comment\n[verification]\nwindow_minutes = 0\n",
        3,
        "window_minutes must be between 1 and 60, not 0",
        None,
    );
    assert_eq!(e.column, 18);
    assert_error(
        "[verification]\nwindow_minutes = 61\n",
        2,
        "window_minutes",
        None,
    );
    assert_error(
        "[verification]\ngrant_lifetime_minutes = -5\n",
        2,
        "not -5",
        None,
    );
    assert_error(
        "[verification]\ngrant_lifetime_minutes = 99999999999\n",
        2,
        "grant_lifetime_minutes",
        None,
    );
    for key in [
        "challenges_per_target_per_hour",
        "challenges_per_agent_per_hour",
        "wrong_codes_before_lockout",
        "lockout_minutes",
        "lookups_per_agent_per_hour",
    ] {
        assert_error(&format!("[limits]\n{key} = 0\n"), 2, key, None);
    }
    assert_error(
        "[temporary_access_pass]\nlifetime_minutes = 9\n",
        2,
        "between 10 and 480",
        None,
    );
    assert_error(
        "[temporary_access_pass]\nlifetime_minutes = 481\n",
        2,
        "between 10 and 480",
        None,
    );
    assert_error(
        "[factors.default]\nrequired = 0\n",
        2,
        "required must be between 1 and 3",
        None,
    );
    assert_error("[factors.privileged]\nrequired = 4\n", 2, "required", None);
    assert_error("version = 2\n", 1, "unsupported policy version 2", None);
    assert_error(
        "[verification]\npush_without_number_matching = \"allow\"\n",
        2,
        "unknown value `allow`",
        Some("require_another_factor"),
    );
}

#[test]
fn required_cannot_exceed_accepted() {
    assert_error(
        "[factors.default]\naccepted = [\"push\"]\nrequired = 2\n",
        3,
        "requires 2 distinct factors but accepts only 1",
        None,
    );
    // The privileged default of 2 with one accepted kind: points at the list.
    assert_error(
        "[factors.privileged]\naccepted = [\"totp\"]\n",
        2,
        "requires 2 distinct factors",
        Some("lower `required`"),
    );
    assert_error(
        "[factors.default]\naccepted = []\n",
        2,
        "accepts no factor kinds",
        None,
    );
}

#[test]
fn roles_are_checked() {
    let dup = "[[roles]]\nname = \"a\"\ngroups = []\npermissions = []\n\n[[roles]]\nname = \"a\"\ngroups = []\npermissions = []\n";
    assert_error(dup, 7, "role `a` is defined twice", None);
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = [\"g\"]\npermissions = [\"lookup\",\n  \"reset_pasword\"]\n",
        5,
        "unknown permission `reset_pasword`",
        Some("did you mean `reset_password`?"),
    );
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = [\"g\"]\npermissions = [\"lookup\", \"lookup\"]\n",
        4,
        "listed twice",
        None,
    );
    for bad in ["Tier1", "tier 1", "", "a.b", &"x".repeat(33)] {
        assert_error(
            &format!("[[roles]]\nname = {bad:?}\ngroups = []\npermissions = []\n"),
            2,
            "role name",
            None,
        );
    }
    assert!(
        Policy::parse(&format!(
            "[[roles]]\nname = \"{}\"\ngroups = []\npermissions = []\n",
            "a-b_9".repeat(6) + "zz"
        ))
        .is_ok()
    );
    assert_error(
        "[[roles]]\ngroups = []\npermissions = []\n",
        1,
        "missing key `name`",
        None,
    );
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = [\"g\", \"g\"]\npermissions = []\n",
        3,
        "group `g` is listed twice",
        None,
    );
    assert_error(
        "[protected]\ngroups = [\"ok\", \" padded\"]\n",
        2,
        "starts or ends with a space",
        None,
    );
    assert_error(
        "[protected]\ngroups = [\"\"]\n",
        2,
        "empty group name",
        None,
    );
    assert_error(
        "[protected]\ngroups = [\"   \"]\n",
        2,
        "empty group name",
        None,
    );
    // 256 characters is the longest group name.
    let longest = "g".repeat(256);
    parse(&format!("[protected]\ngroups = [\"{longest}\"]\n"));
    assert_error(
        &format!("[protected]\ngroups = [\"{longest}g\"]\n"),
        2,
        "group name longer than 256 characters",
        None,
    );
}

#[test]
fn never_accepted_factors_are_errors_citing_nist() {
    let e = assert_error(
        "[factors.default]\naccepted = [\"push\", \"email\"]\n",
        2,
        "`email` can never be an accepted factor",
        None,
    );
    assert!(e.message.contains("NIST SP 800-63B 5.1.3.1"), "{e}");
    assert_eq!(e.column, 21);
    let e = assert_error(
        "[factors.privileged]\naccepted = [\"security_question\", \"push\"]\n",
        2,
        "`security_question` can never be an accepted factor",
        None,
    );
    assert!(e.message.contains("not an authenticator"), "{e}");
    // Even with the restricted opt-in.
    assert_error(
        "[factors.default]\nallow_restricted_pstn = true\naccepted = [\"email\"]\n",
        3,
        "`email` can never",
        None,
    );
    for kind in [
        "webauthn",
        "platform_credential",
        "temporary_access_pass",
        "password",
    ] {
        assert_error(
            &format!("[factors.default]\naccepted = [\"totp\", \"{kind}\"]\n"),
            2,
            "cannot be verified by a helpdesk agent over the phone",
            None,
        );
    }
}

#[test]
fn restricted_pstn_needs_opt_in_in_the_same_section() {
    for kind in ["sms", "voice"] {
        assert_error(
            &format!("[factors.default]\naccepted = [\"push\", \"{kind}\"]\n"),
            2,
            "restricted authenticator",
            Some("allow_restricted_pstn = true"),
        );
    }
    // Opt-in in the other section does not count.
    assert_error(
        "[factors.default]\nallow_restricted_pstn = true\n\n[factors.privileged]\naccepted = [\"push\", \"sms\"]\n",
        5,
        "restricted authenticator",
        None,
    );
    let p = parse(PSTN);
    assert!(
        p.factor_rule(TargetClass::Standard)
            .allows_restricted_pstn()
    );
    assert!(p.factor_rule(TargetClass::Standard).accepts(&K::Sms));
    assert!(codes(&p).contains("restricted_pstn_allowed"));
    assert_eq!(
        assurance::classify(&K::Sms).label(),
        "restricted authenticator (SMS or voice call)"
    );
}

#[test]
fn unknown_factor_kinds_are_errors() {
    assert_error(
        "[factors.default]\naccepted = [\"pusj\"]\n",
        2,
        "unknown factor kind `pusj`",
        Some("did you mean `push`?"),
    );
    // Names the contract would take as `Other` are refused too.
    assert_error(
        "[factors.default]\naccepted = [\"u2f_legacy\"]\n",
        2,
        "unknown factor kind",
        None,
    );
    assert_error(
        "[factors.default]\naccepted = [\"Push\"]\n",
        2,
        "unknown factor kind",
        None,
    );
    assert_error(
        "[factors.default]\naccepted = [\"push\", \"totp\", \"push\"]\n",
        2,
        "`push` is listed twice",
        None,
    );
}

#[test]
fn syntax_errors_name_the_line() {
    assert_error("[verification]\nwindow_minutes = \n", 2, "", None);
    assert_error("[verification\nwindow_minutes = 10\n", 1, "", None);
    assert_error("a = 1\nb = \"unterminated\n", 2, "", None);
    // Duplicate keys and tables are TOML errors.
    assert_error(
        "[verification]\nwindow_minutes = 5\nwindow_minutes = 6\n",
        3,
        "",
        None,
    );
    assert_error("[limits]\n[limits]\n", 2, "", None);
}

// ---------------------------------------------------------------------------------------------------------------
// warnings

#[test]
fn every_lint_fires() {
    let text = r#"
[verification]
window_minutes = 31
grant_lifetime_minutes = 45
single_use_grants = false
no_downgrade = false

[limits]
wrong_codes_before_lockout = 11

[temporary_access_pass]
one_time = false

[protected]
groups = []

[factors.default]
accepted = ["totp", "voice"]
allow_restricted_pstn = true
required = 2

[factors.privileged]
groups = []
accepted = ["push", "sms"]
allow_restricted_pstn = true
required = 1

[[roles]]
name = "doer"
groups = []
permissions = ["reset_password"]
"#;
    let p = parse(text);
    let got = codes(&p);
    for code in [
        "restricted_pstn_allowed",
        "long_verification_window",
        "long_grant_lifetime",
        "multi_use_grants",
        "downgrade_allowed",
        "privileged_single_factor",
        "privileged_weaker_than_standard",
        "no_privileged_groups",
        "no_protected_groups",
        "actions_without_verify",
        "role_without_groups",
        "lenient_lockout",
        "multi_use_temporary_access_pass",
    ] {
        assert!(got.contains(code), "missing {code} in {got:?}");
    }
    // Both classes allow PSTN: two warnings.
    assert_eq!(
        p.warnings()
            .iter()
            .filter(|w| w.code == "restricted_pstn_allowed")
            .count(),
        2
    );
    assert!(codes(&parse("roles = []\n")).contains("no_roles"));
}

#[test]
fn lints_have_thresholds() {
    // Exactly at the limit: no warning.
    let p = parse(
        "[verification]\nwindow_minutes = 30\ngrant_lifetime_minutes = 30\n[limits]\nwrong_codes_before_lockout = 10\n",
    );
    assert!(p.warnings().is_empty(), "{:?}", p.warnings());
}

// ---------------------------------------------------------------------------------------------------------------
// assurance, from the outside

#[test]
fn verified_label_is_never_bare_aal2() {
    assert_eq!(
        assurance::verified_label(&[K::Push]),
        "AAL2-capable authenticator verified"
    );
    assert_eq!(
        assurance::verified_label(&[K::Totp, K::Push]),
        "AAL2-capable authenticator verified"
    );
    assert_ne!(assurance::verified_label(&[K::Sms]), "AAL2");
    assert!(!assurance::verified_label(&[K::Sms]).contains("AAL2"));
}

// ---------------------------------------------------------------------------------------------------------------
// properties

/// One edit to a text.
#[derive(Debug, Clone)]
enum Edit {
    InsertChar(usize, char),
    DeleteChar(usize),
    ReplaceChar(usize, char),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    InsertLine(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            '[', ']', '"', '=', '\n', '#', ',', '0', '-', '\'', '.', ' ', '{', '}'
        ]),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
        any::<usize>().prop_map(Edit::DeleteChar),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just("email = 1".to_owned()),
                Just("accepted = [\"email\"]".to_owned()),
                Just("accepted = [\"sms\"]".to_owned()),
                Just("allow_restricted_pstn = true".to_owned()),
                Just("[factors.default]".to_owned()),
                Just("[[roles]]".to_owned()),
                Just("required = 3".to_owned()),
                ".{0,30}",
            ]
        )
            .prop_map(|(i, l)| Edit::InsertLine(i, l)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        match e {
            Edit::InsertChar(i, c) => {
                let i = i % (chars.len() + 1);
                chars.insert(i, *c);
            }
            Edit::DeleteChar(i) if !chars.is_empty() => {
                let i = i % chars.len();
                chars.remove(i);
            }
            Edit::ReplaceChar(i, c) if !chars.is_empty() => {
                let i = i % chars.len();
                chars[i] = *c;
            }
            Edit::DeleteLine(_)
            | Edit::DuplicateLine(_)
            | Edit::SwapLines(..)
            | Edit::InsertLine(..) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<String> = s.split('\n').map(str::to_owned).collect();
                let n = lines.len();
                match e {
                    Edit::DeleteLine(i) => {
                        lines.remove(i % n);
                    }
                    Edit::DuplicateLine(i) => {
                        let l = lines[i % n].clone();
                        lines.insert(i % n, l);
                    }
                    Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
                    Edit::InsertLine(i, l) => lines.insert(i % (n + 1), l.clone()),
                    _ => {}
                }
                chars = lines.join("\n").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// The checks every parse result must pass.
fn check_outcome(text: &str) -> Result<(), TestCaseError> {
    match Policy::parse(text) {
        Err(e) => {
            prop_assert!(e.line >= 1 && e.column >= 1, "{e:?}");
            let lines = text.lines().count().max(1);
            prop_assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
            let line_len = text
                .lines()
                .nth(e.line - 1)
                .map_or(0, |l| l.chars().count());
            prop_assert!(
                e.column <= line_len + 1,
                "column {} of {line_len}: {e}",
                e.column
            );
            prop_assert!(!e.message.is_empty());
            let prefix = format!("line {}, column {}: ", e.line, e.column);
            prop_assert!(e.to_string().starts_with(&prefix));
        }
        Ok(p) => {
            for class in [TargetClass::Standard, TargetClass::Privileged] {
                let rule = p.factor_rule(class);
                prop_assert!(!rule.accepted().is_empty());
                prop_assert!((1..=3).contains(&rule.required()));
                prop_assert!(usize::from(rule.required()) <= rule.accepted().len());
                for k in rule.accepted() {
                    prop_assert!(
                        matches!(
                            k,
                            K::Push | K::Totp | K::Hotp | K::HardwareOtp | K::Sms | K::Voice
                        ),
                        "accepted {k}"
                    );
                    if matches!(k, K::Sms | K::Voice) {
                        prop_assert!(rule.allows_restricted_pstn());
                    }
                }
                prop_assert!(!rule.accepts(&K::Email));
                prop_assert!(!rule.accepts(&K::SecurityQuestion));
            }
            let w = p.verification_window().num_minutes();
            prop_assert!((1..=60).contains(&w));
            let g = p.grant_lifetime().num_minutes();
            prop_assert!((1..=60).contains(&g));
            let l = p.limits();
            prop_assert!(l.challenges_per_target_per_hour >= 1);
            prop_assert!(l.challenges_per_agent_per_hour >= 1);
            prop_assert!(l.wrong_codes_before_lockout >= 1);
            prop_assert!(l.lockout_minutes >= 1);
            prop_assert!(l.lookups_per_agent_per_hour >= 1);
            prop_assert!((10..=480).contains(&p.temporary_access_pass().lifetime_minutes));
            let mut names = BTreeSet::new();
            for r in p.roles() {
                prop_assert!(
                    names.insert(r.name().to_owned()),
                    "duplicate role {}",
                    r.name()
                );
            }
        }
    }
    Ok(())
}

fn any_kind() -> impl Strategy<Value = FactorKind> {
    prop_oneof![
        prop::sample::select(FactorKind::ALL.to_vec()),
        Just(K::Other("u2f".into())),
    ]
}

fn any_caps() -> impl Strategy<Value = Capabilities> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(push, nm, codes)| Capabilities {
        push,
        push_number_matching: nm,
        code_verification: codes,
        ..okta()
    })
}

/// A valid policy with random accepted lists and switches.
fn any_policy() -> impl Strategy<Value = Policy> {
    let listable = vec!["push", "totp", "hotp", "hardware_otp", "sms", "voice"];
    (
        prop::sample::subsequence(listable.clone(), 1..=6).prop_shuffle(),
        prop::sample::subsequence(listable, 1..=6).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
        1u8..=3,
    )
        .prop_map(|(std, pri, no_downgrade, refuse, req)| {
            let list = |v: &[&str]| {
                v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
            };
            let req = usize::from(req).min(pri.len());
            let text = format!(
                "[verification]\nno_downgrade = {no_downgrade}\npush_without_number_matching = \"{}\"\n\
                 [factors.default]\nallow_restricted_pstn = true\naccepted = [{}]\n\
                 [factors.privileged]\nallow_restricted_pstn = true\naccepted = [{}]\nrequired = {req}\n",
                if refuse { "refuse" } else { "require_another_factor" },
                list(&std),
                list(&pri),
            );
            parse(&text)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "(?s).{0,400}") {
        check_outcome(&text)?;
    }

    #[test]
    fn parse_never_panics_on_toml_like_text(
        text in r"(\[{1,2}[a-z_.]{0,20}\]{0,2}\n|[a-z_]{1,20} ?= ?(\d{1,12}|-\d{1,3}|true|false|\[\]|\[?\x22[a-z_ ]{0,12}\x22\]?)\n|#.{0,10}\n){0,12}"
    ) {
        check_outcome(&text)?;
    }

    #[test]
    fn parse_never_panics_on_mutated_example(edits in prop::collection::vec(edit(), 1..8)) {
        let text = apply(EXAMPLE, &edits);
        check_outcome(&text)?;
    }

    #[test]
    fn check_factor_only_accepts_listed_kinds(
        policy in any_policy(),
        class in prop_oneof![Just(TargetClass::Standard), Just(TargetClass::Privileged)],
        chosen in any_kind(),
        enrolled in prop::collection::vec(any_kind(), 0..6),
        caps in any_caps(),
    ) {
        let rule = policy.factor_rule(class);
        match policy.check_factor(class, &chosen, &enrolled, &caps) {
            Ok(()) => {
                prop_assert!(rule.accepts(&chosen));
                prop_assert!(!matches!(chosen, K::Email | K::SecurityQuestion));
                if policy.no_downgrade() {
                    // Nothing enrolled, accepted and challengeable is stronger.
                    let mine = assurance::strength(&chosen, caps.push_number_matching);
                    for k in &enrolled {
                        let usable = rule.accepts(k)
                            && policy.check_factor(class, k, &[], &caps).is_ok();
                        if usable {
                            prop_assert!(assurance::strength(k, caps.push_number_matching) <= mine);
                        }
                    }
                }
            }
            Err(FactorRefusal::Downgrade { stronger }) => {
                prop_assert!(policy.no_downgrade());
                prop_assert!(rule.accepts(&stronger));
                prop_assert!(enrolled.contains(&stronger));
                prop_assert!(
                    assurance::strength(&stronger, caps.push_number_matching)
                        > assurance::strength(&chosen, caps.push_number_matching)
                );
            }
            Err(_) => {}
        }
        // The preferred factor, if any, is one check_factor accepts.
        let infos: Vec<FactorInfo> = enrolled
            .iter()
            .enumerate()
            .map(|(i, k)| factor(&format!("f{i}"), k.clone(), FactorStatus::Active))
            .collect();
        if let Some(f) = policy.preferred_factor(class, &infos, &caps) {
            prop_assert!(policy.check_factor(class, &f.kind, &enrolled, &caps).is_ok());
        }
        // Still-needed never exceeds what is required (or 2, for a plain push) and reaches 0 only with
        // enough distinct accepted kinds.
        let needed = policy.factors_still_needed(class, &caps, &enrolled);
        prop_assert!(needed <= rule.required().max(2));
        if needed == 0 {
            let distinct: BTreeSet<&FactorKind> = enrolled.iter().filter(|k| rule.accepts(k)).collect();
            prop_assert!(distinct.len() >= usize::from(rule.required()));
        }
    }

    #[test]
    fn protected_detection_is_exact(
        protected in prop::collection::btree_set("[A-Za-z0-9 _-]{1,8}", 0..4),
        target in prop::collection::vec(("[A-Za-z0-9 _-]{0,8}", "[A-Za-z0-9 _-]{0,8}"), 0..5),
    ) {
        let protected: Vec<String> = protected
            .into_iter()
            .filter(|g| g.trim() == g && !g.trim().is_empty())
            .collect();
        let list = protected.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join(", ");
        let policy = parse(&format!("[protected]\ngroups = [{list}]\n"));
        let groups: Vec<GroupRef> = target.iter().map(|(id, name)| group(id, name)).collect();
        let expected = groups
            .iter()
            .any(|g| protected.contains(&g.id) || protected.contains(&g.name));
        prop_assert_eq!(policy.is_protected(&groups), expected);
        // Changing the case of a protected name (when that changes it) never matches by itself.
        for p in &protected {
            let flipped: String = p
                .chars()
                .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            if !protected.contains(&flipped) {
                prop_assert!(!policy.is_protected(&[group("", &flipped)]));
            }
        }
    }
}

#[test]
fn docs_explanation_example_is_what_explain_says() {
    let docs = include_str!("../../docs/policy.md");
    let p = Policy::default();
    let e = p.explain(
        p.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        None,
    );
    let block = e.lines.join("\n");
    assert!(docs.contains(&block), "docs/policy.md lacks:\n{block}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for n in [1_000, 100_000] {
        let text = format!("a = {}{}\n", "[".repeat(n), "]".repeat(n));
        assert!(Policy::parse(&text).is_err());
        let text = format!("a = {}1{}\n", "{ b = ".repeat(n), " }".repeat(n));
        assert!(Policy::parse(&text).is_err());
        let text = format!("{}\n", "[".repeat(n));
        assert!(Policy::parse(&text).is_err());
    }
}

/// Regression (found by `parse_never_panics_on_mutated_example`): a stray quote before a CRLF line end must be
/// reported at a column the line really has.
#[test]
fn error_column_ignores_the_carriage_return_of_crlf() {
    let e = Policy::parse("'\r\n[verification]\n").expect_err("a stray quote is an error");
    assert_eq!(e.line, 1);
    assert!(e.column <= 2, "{e}");
}

/// `can_complete`: whether any challenge could lead to a grant for a caller with these factors.
#[test]
fn can_complete_needs_enough_distinct_usable_kinds() {
    let p = Policy::default();
    let std = TargetClass::Standard;
    // Okta's number-matched push verifies alone.
    assert!(p.can_complete(std, &okta(), &[], &[FactorKind::Push]));
    // A plain push needs a second, different factor under the default `require_another_factor`.
    assert!(!p.can_complete(std, &entra(), &[], &[FactorKind::Push]));
    assert!(!p.can_complete(std, &entra(), &[FactorKind::Push], &[]));
    assert!(p.can_complete(std, &entra(), &[], &[FactorKind::Push, FactorKind::Totp]));
    assert!(p.can_complete(std, &entra(), &[FactorKind::Push], &[FactorKind::Totp]));
    // Kinds policy does not accept for helpdesk verification never help.
    assert!(!p.can_complete(std, &entra(), &[], &[FactorKind::Push, FactorKind::Sms]));
    assert!(!p.can_complete(std, &okta(), &[], &[]));
    // Under "refuse", a plain push counts for nothing, even with TOTP beside it for a one-factor class.
    let text = EXAMPLE.replace(
        "push_without_number_matching = \"require_another_factor\"",
        "push_without_number_matching = \"refuse\"",
    );
    let refuse = Policy::parse(&text).unwrap();
    assert!(!refuse.can_complete(std, &entra(), &[], &[FactorKind::Push]));
    assert!(refuse.can_complete(std, &entra(), &[], &[FactorKind::Push, FactorKind::Totp]));
}

/// Each accepted kind is named in words an agent reads, restricted phone channels marked as such.
#[test]
fn explain_names_every_accepted_kind_in_words() {
    let p = parse(
        "[factors.default]\naccepted = [\"totp\", \"hotp\", \"hardware_otp\", \"sms\", \"voice\"]\nallow_restricted_pstn = true\n",
    );
    let e = p.explain(
        p.role("tier2"),
        ActionKind::Unlock,
        TargetClass::Standard,
        false,
        Some(&okta()),
    );
    let text = e.lines.join("\n");
    for words in [
        "a verified TOTP code",
        "an HOTP code",
        "a hardware token code",
        "an SMS code (restricted)",
        "a voice-call code (restricted)",
    ] {
        assert!(text.contains(words), "{words} missing from {text}");
    }
}

/// "Policy refuses them" is said exactly when pushes carry no number and policy refuses such pushes.
#[test]
fn explain_says_plain_pushes_are_refused_only_when_they_are() {
    let refuse = parse("[verification]\npush_without_number_matching = \"refuse\"\n");
    let plain = Capabilities {
        push_number_matching: false,
        ..okta()
    };
    let says = |p: &Policy, caps: &Capabilities| {
        p.explain(
            p.role("tier2"),
            ActionKind::Unlock,
            TargetClass::Standard,
            false,
            Some(caps),
        )
        .lines
        .iter()
        .any(|l| l.contains("policy refuses them"))
    };
    assert!(says(&refuse, &plain));
    assert!(!says(&refuse, &okta()), "pushes carry a number");
    assert!(
        !says(&Policy::default(), &plain),
        "policy does not refuse them"
    );
    let no_push = parse(
        "[verification]\npush_without_number_matching = \"refuse\"\n[factors.default]\naccepted = [\"totp\"]\n",
    );
    assert!(
        !says(&no_push, &plain),
        "policy does not accept pushes at all"
    );
}

/// Privileged targets needing as many factors as standard ones is fine; fewer is a warning.
#[test]
fn privileged_weaker_than_standard_only_when_fewer() {
    let same = parse("[factors.default]\nrequired = 2\n[factors.privileged]\nrequired = 2\n");
    assert!(!codes(&same).contains(&"privileged_weaker_than_standard"));
    let fewer = parse("[factors.default]\nrequired = 2\n[factors.privileged]\nrequired = 1\n");
    assert!(codes(&fewer).contains(&"privileged_weaker_than_standard"));
}
