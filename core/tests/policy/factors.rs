//! Policy: factors.

use super::*;

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
