//! What a verified factor is worth: each [`FactorKind`] mapped to its NIST SP 800-63B authenticator class.
//!
//! Section numbers are those of SP 800-63B revision 3. The mapping answers two questions for the rest of the
//! core: how to *describe* a verification to an agent and in the audit trail ([`verified_label`]), and which of
//! two factors is *stronger* when policy refuses downgrades ([`strength`]).
//!
//! | kind | class | SP 800-63B |
//! |---|---|---|
//! | push | out-of-band device | 5.1.3 |
//! | totp, hotp, hardware_otp | single-factor OTP device | 5.1.4 |
//! | webauthn, platform_credential | multi-factor cryptographic (with user verification) | 5.1.7-5.1.9 |
//! | sms, voice | out-of-band via the telephone network, **restricted** | 5.1.3.3 |
//! | idp_sign_in | a fresh multi-factor sign-in at the IdP, checked by its ID token | SP 800-63C (federation) |
//! | email, security_question, password, temporary_access_pass, anything else | not an authenticator for helpdesk verification | - |

use fctr_ports::FactorKind;
use serde::Serialize;
use std::fmt;

/// The NIST SP 800-63B class of an authenticator, as far as helpdesk verification is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AssuranceClass {
    /// An out-of-band device (SP 800-63B 5.1.3): a push to an authenticator app.
    OutOfBandDevice,
    /// A single-factor one-time-password device (5.1.4): TOTP, HOTP, hardware tokens.
    SingleFactorOtp,
    /// A multi-factor cryptographic authenticator (5.1.7-5.1.9 when user verification is enforced): FIDO2 /
    /// WebAuthn, platform credentials. Strong, but it cannot be checked by an agent over a phone call.
    MultiFactorCryptographic,
    /// Out-of-band through the public telephone network (5.1.3.3): SMS and voice codes. A **restricted**
    /// authenticator: usable only with risk acceptance, an unrestricted alternative and a migration plan (5.2.10).
    RestrictedPstn,
    /// Not an authenticator for helpdesk verification: e-mail (barred from out-of-band use, 5.1.3.1), security
    /// questions (knowledge-based, not an acceptable secret), passwords and Temporary Access Passes (secrets the
    /// caller would have to say aloud), and anything unknown.
    NotAnAuthenticator,
    /// A fresh sign-in at the identity provider with multi-factor authentication, proved to fctr by the IdP's
    /// signed ID token (an assertion, SP 800-63C): the caller authenticated on their own device, by whatever
    /// the IdP's sign-in policy demands, moments ago.
    IdpSignInMfa,
}

impl AssuranceClass {
    /// Every class, strongest first.
    pub const ALL: [AssuranceClass; 6] = [
        AssuranceClass::MultiFactorCryptographic,
        AssuranceClass::IdpSignInMfa,
        AssuranceClass::OutOfBandDevice,
        AssuranceClass::SingleFactorOtp,
        AssuranceClass::RestrictedPstn,
        AssuranceClass::NotAnAuthenticator,
    ];

    /// Stable machine name (audit, JSON).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OutOfBandDevice => "out_of_band_device",
            Self::SingleFactorOtp => "single_factor_otp",
            Self::MultiFactorCryptographic => "multi_factor_cryptographic",
            Self::RestrictedPstn => "restricted_pstn",
            Self::NotAnAuthenticator => "not_an_authenticator",
            Self::IdpSignInMfa => "idp_sign_in_mfa",
        }
    }

    /// Plain words an agent understands.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::OutOfBandDevice => "out-of-band device (authenticator app push)",
            Self::SingleFactorOtp => "one-time-password device",
            Self::MultiFactorCryptographic => "multi-factor cryptographic authenticator",
            Self::RestrictedPstn => "restricted authenticator (SMS or voice call)",
            Self::NotAnAuthenticator => "not an authenticator for helpdesk verification",
            Self::IdpSignInMfa => "multi-factor sign-in at the identity provider",
        }
    }

    /// Where NIST SP 800-63B (revision 3) defines the class.
    #[must_use]
    pub fn nist_reference(&self) -> &'static str {
        match self {
            Self::OutOfBandDevice => "NIST SP 800-63B section 5.1.3 (out-of-band devices)",
            Self::SingleFactorOtp => "NIST SP 800-63B section 5.1.4 (single-factor OTP devices)",
            Self::MultiFactorCryptographic => {
                "NIST SP 800-63B sections 5.1.7-5.1.9 (cryptographic authenticators, multi-factor with user verification)"
            }
            Self::RestrictedPstn => {
                "NIST SP 800-63B section 5.1.3.3 (out-of-band via the PSTN: a restricted authenticator, see 5.2.10)"
            }
            Self::NotAnAuthenticator => {
                "not an acceptable authenticator for verification under NIST SP 800-63B"
            }
            Self::IdpSignInMfa => {
                "NIST SP 800-63C (a federated assertion: the IdP's signed ID token shows a fresh multi-factor sign-in)"
            }
        }
    }
}

impl fmt::Display for AssuranceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The NIST SP 800-63B class of a factor kind.
#[must_use]
pub fn classify(kind: &FactorKind) -> AssuranceClass {
    match kind {
        FactorKind::Push => AssuranceClass::OutOfBandDevice,
        FactorKind::Totp | FactorKind::Hotp | FactorKind::HardwareOtp => {
            AssuranceClass::SingleFactorOtp
        }
        FactorKind::WebAuthn | FactorKind::PlatformCredential => {
            AssuranceClass::MultiFactorCryptographic
        }
        FactorKind::Sms | FactorKind::Voice => AssuranceClass::RestrictedPstn,
        FactorKind::IdpSignIn => AssuranceClass::IdpSignInMfa,
        // Email, security questions, passwords, TAPs, unknown kinds, and any kind added to the contract later:
        // not an authenticator until someone maps it on purpose (fail closed).
        _ => AssuranceClass::NotAnAuthenticator,
    }
}

/// The kind-specific NIST note: why this kind has its class. Used in policy errors and explanations.
#[must_use]
pub fn nist_note(kind: &FactorKind) -> &'static str {
    match kind {
        FactorKind::Email => {
            "NIST SP 800-63B 5.1.3.1: e-mail is barred from out-of-band authentication"
        }
        FactorKind::SecurityQuestion => {
            "NIST SP 800-63-3 4.3.1 and SP 800-63B 5.1.1.2: knowledge-based questions are not an authenticator"
        }
        FactorKind::Password => {
            "a memorized secret said aloud to an agent is disclosed, not verified (NIST SP 800-63B 5.1.1)"
        }
        FactorKind::TemporaryAccessPass => {
            "a Temporary Access Pass is a sign-in secret the agent issues, not proof of the caller's identity"
        }
        FactorKind::Other(_) => "an unknown factor kind is not mapped to any NIST SP 800-63B class",
        other => classify(other).nist_reference(),
    }
}

/// The order used to refuse downgrades: a bigger number is a stronger factor for helpdesk verification.
///
/// `number_matching` says whether a push carries a number the caller must match (it is ignored for other kinds).
///
/// | strength | factors |
/// |---|---|
/// | 4 | multi-factor cryptographic (never verifiable over the phone; listed for completeness) |
/// | 3 | push with number matching, every OTP kind, and a multi-factor sign-in at the IdP |
/// | 2 | push without number matching (approve/deny only: push-bombing risk, fails 5.1.3.1's binding rule) |
/// | 1 | restricted PSTN (SMS, voice) |
/// | 0 | not an authenticator |
#[must_use]
pub fn strength(kind: &FactorKind, number_matching: bool) -> u8 {
    match classify(kind) {
        AssuranceClass::MultiFactorCryptographic => 4,
        AssuranceClass::OutOfBandDevice if number_matching => 3,
        AssuranceClass::OutOfBandDevice => 2,
        AssuranceClass::SingleFactorOtp | AssuranceClass::IdpSignInMfa => 3,
        AssuranceClass::RestrictedPstn => 1,
        AssuranceClass::NotAnAuthenticator => 0,
    }
}

/// Label for a verification of an AAL2-capable authenticator (out-of-band, OTP or multi-factor cryptographic).
pub const AAL2_CAPABLE_VERIFIED: &str = "AAL2-capable authenticator verified";
/// Label for a verification that only used a restricted (SMS or voice) authenticator.
pub const RESTRICTED_VERIFIED: &str =
    "restricted authenticator verified (SMS or voice, NIST SP 800-63B 5.1.3.3)";
/// Label when nothing that counts as an authenticator was verified.
pub const NOTHING_VERIFIED: &str = "no authenticator verified";

/// How to describe what a verification proved, for agents, audit events and reports.
///
/// A verification that proved an out-of-band or OTP factor yields [`AAL2_CAPABLE_VERIFIED`]; one that proved
/// only SMS or voice yields [`RESTRICTED_VERIFIED`]; anything else [`NOTHING_VERIFIED`].
///
/// It never says "AAL2". Authentication assurance level 2 needs two factors, typically a memorized secret
/// plus a possession authenticator, over an authenticated protected channel (SP 800-63B 4.2). On a helpdesk call
/// the caller gives no memorized secret (and must not: it would be disclosed to the agent), and the voice channel
/// to the agent is not an authenticated protected channel. What the agent learns is that the caller holds an
/// authenticator that *could* be part of AAL2: possession of an AAL2-capable authenticator, not AAL2.
#[must_use]
pub fn verified_label(kinds: &[FactorKind]) -> &'static str {
    let best = kinds.iter().map(classify).min_by_key(|c| match c {
        AssuranceClass::MultiFactorCryptographic
        | AssuranceClass::IdpSignInMfa
        | AssuranceClass::OutOfBandDevice
        | AssuranceClass::SingleFactorOtp => 0,
        AssuranceClass::RestrictedPstn => 1,
        AssuranceClass::NotAnAuthenticator => 2,
    });
    match best {
        Some(
            AssuranceClass::MultiFactorCryptographic
            | AssuranceClass::IdpSignInMfa
            | AssuranceClass::OutOfBandDevice
            | AssuranceClass::SingleFactorOtp,
        ) => AAL2_CAPABLE_VERIFIED,
        Some(AssuranceClass::RestrictedPstn) => RESTRICTED_VERIFIED,
        Some(AssuranceClass::NotAnAuthenticator) | None => NOTHING_VERIFIED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<FactorKind> {
        let mut v = FactorKind::ALL.to_vec();
        v.push(FactorKind::Other("u2f_legacy".into()));
        v
    }

    #[test]
    fn every_kind_has_the_documented_class() {
        use AssuranceClass as C;
        let expected = [
            (FactorKind::Push, C::OutOfBandDevice),
            (FactorKind::Totp, C::SingleFactorOtp),
            (FactorKind::Hotp, C::SingleFactorOtp),
            (FactorKind::HardwareOtp, C::SingleFactorOtp),
            (FactorKind::Sms, C::RestrictedPstn),
            (FactorKind::Voice, C::RestrictedPstn),
            (FactorKind::Email, C::NotAnAuthenticator),
            (FactorKind::SecurityQuestion, C::NotAnAuthenticator),
            (FactorKind::WebAuthn, C::MultiFactorCryptographic),
            (FactorKind::PlatformCredential, C::MultiFactorCryptographic),
            (FactorKind::TemporaryAccessPass, C::NotAnAuthenticator),
            (FactorKind::Password, C::NotAnAuthenticator),
            (FactorKind::IdpSignIn, C::IdpSignInMfa),
            (FactorKind::Other("x".into()), C::NotAnAuthenticator),
        ];
        assert_eq!(expected.len(), FactorKind::ALL.len() + 1);
        for (kind, class) in expected {
            assert_eq!(classify(&kind), class, "{kind}");
        }
    }

    #[test]
    fn references_cite_the_right_sections() {
        assert!(
            classify(&FactorKind::Push)
                .nist_reference()
                .contains("5.1.3")
        );
        assert!(
            classify(&FactorKind::Totp)
                .nist_reference()
                .contains("5.1.4")
        );
        assert!(
            classify(&FactorKind::Sms)
                .nist_reference()
                .contains("5.1.3.3")
        );
        assert!(
            classify(&FactorKind::WebAuthn)
                .nist_reference()
                .contains("5.1.7")
        );
        assert!(nist_note(&FactorKind::Email).contains("5.1.3.1"));
        assert!(nist_note(&FactorKind::SecurityQuestion).contains("not an authenticator"));
        assert!(nist_note(&FactorKind::Hotp).contains("5.1.4"));
        for c in AssuranceClass::ALL {
            assert!(!c.label().is_empty());
            assert_eq!(c.to_string(), c.label());
        }
    }

    #[test]
    fn strength_order_is_the_documented_one() {
        let push_nm = strength(&FactorKind::Push, true);
        let push_plain = strength(&FactorKind::Push, false);
        let totp = strength(&FactorKind::Totp, false);
        let sms = strength(&FactorKind::Sms, true);
        let email = strength(&FactorKind::Email, true);
        assert_eq!(push_nm, totp);
        assert_eq!(totp, strength(&FactorKind::HardwareOtp, false));
        assert_eq!(totp, strength(&FactorKind::Hotp, true));
        assert!(totp > push_plain);
        assert!(push_plain > sms);
        assert_eq!(sms, strength(&FactorKind::Voice, false));
        assert!(sms > email);
        assert_eq!(email, strength(&FactorKind::Other("x".into()), true));
        assert!(strength(&FactorKind::WebAuthn, false) > totp);
    }

    #[test]
    fn label_never_claims_aal2() {
        let kinds = all_kinds();
        let mut seen = std::collections::BTreeSet::new();
        for a in &kinds {
            for b in &kinds {
                for set in [vec![], vec![a.clone()], vec![a.clone(), b.clone()]] {
                    let l = verified_label(&set);
                    assert_ne!(l, "AAL2");
                    assert!(
                        !l.replace("AAL2-capable", "").contains("AAL2"),
                        "bare AAL2 in {l}"
                    );
                    seen.insert(l);
                }
            }
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn label_depends_on_the_best_factor() {
        assert_eq!(verified_label(&[FactorKind::Push]), AAL2_CAPABLE_VERIFIED);
        assert_eq!(verified_label(&[FactorKind::Totp]), AAL2_CAPABLE_VERIFIED);
        assert_eq!(
            verified_label(&[FactorKind::Sms, FactorKind::HardwareOtp]),
            AAL2_CAPABLE_VERIFIED
        );
        assert_eq!(verified_label(&[FactorKind::Voice]), RESTRICTED_VERIFIED);
        assert_eq!(
            verified_label(&[FactorKind::Email, FactorKind::SecurityQuestion]),
            NOTHING_VERIFIED
        );
        assert_eq!(verified_label(&[]), NOTHING_VERIFIED);
    }
}
