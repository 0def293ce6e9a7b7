//! Policy: warnings.

use super::*;

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
