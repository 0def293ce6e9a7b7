//! Policy: explain.

use super::*;

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
