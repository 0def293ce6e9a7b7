//! Policy: the default policy and the example file.

use super::*;

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
        (5, 60, 3, 30, 300)
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
