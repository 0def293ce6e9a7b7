//! What a directory says about a user: account, factors, groups, risk facts.

use crate::ids::{FactorId, SubjectId};
use crate::pii::Pii;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The kind of an enrolled authenticator, independent of vendor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FactorKind {
    /// Push to an authenticator app (Okta Verify, Microsoft Authenticator).
    Push,
    /// Time-based one-time password from an app (RFC 6238).
    Totp,
    /// Counter-based one-time password (RFC 4226).
    Hotp,
    /// A hardware OTP token (RSA, Symantec, YubiKey OTP).
    HardwareOtp,
    /// A code sent by SMS.
    Sms,
    /// A code read out by a voice call.
    Voice,
    /// A code or link sent by e-mail.
    Email,
    /// A knowledge-based security question.
    SecurityQuestion,
    /// A FIDO2 / WebAuthn / U2F authenticator (security key or passkey).
    WebAuthn,
    /// A platform credential (Windows Hello for Business, Okta FastPass, platform SSO).
    PlatformCredential,
    /// An Entra Temporary Access Pass.
    TemporaryAccessPass,
    /// A password (listed by some IdPs as a method).
    Password,
    /// Not an enrolled factor: the caller signs in to the IdP itself, with MFA, through a one-time link fctr
    /// gives the agent (the IdP's own sign-in policy decides which authenticators that takes).
    IdpSignIn,
    /// Anything else, by the IdP's own name.
    Other(String),
}

impl FactorKind {
    /// Every named kind (not `Other`), for tables and tests.
    pub const ALL: [FactorKind; 13] = [
        FactorKind::Push,
        FactorKind::Totp,
        FactorKind::Hotp,
        FactorKind::HardwareOtp,
        FactorKind::Sms,
        FactorKind::Voice,
        FactorKind::Email,
        FactorKind::SecurityQuestion,
        FactorKind::WebAuthn,
        FactorKind::PlatformCredential,
        FactorKind::TemporaryAccessPass,
        FactorKind::Password,
        FactorKind::IdpSignIn,
    ];

    /// The stable wire and policy name, e.g. `push`, `totp`, `hardware_otp`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Push => "push",
            Self::Totp => "totp",
            Self::Hotp => "hotp",
            Self::HardwareOtp => "hardware_otp",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Email => "email",
            Self::SecurityQuestion => "security_question",
            Self::WebAuthn => "webauthn",
            Self::PlatformCredential => "platform_credential",
            Self::TemporaryAccessPass => "temporary_access_pass",
            Self::Password => "password",
            Self::IdpSignIn => "idp_sign_in",
            Self::Other(s) => s,
        }
    }

    /// Parses a stable name; unknown names that are short lowercase words become `Other`.
    ///
    /// # Errors
    /// [`crate::IdError`] when the text is empty, longer than 64 characters, or not `[a-z0-9_:.-]`.
    pub fn parse(s: &str) -> Result<Self, crate::IdError> {
        if let Some(k) = Self::ALL.iter().find(|k| k.as_str() == s) {
            return Ok(k.clone());
        }
        if s.is_empty() {
            return Err(crate::IdError::Empty {
                what: "factor kind",
            });
        }
        if s.len() > 64 {
            return Err(crate::IdError::TooLong {
                what: "factor kind",
                max: 64,
            });
        }
        if !s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '.' | '-')
        }) {
            return Err(crate::IdError::BadCharacter {
                what: "factor kind",
            });
        }
        Ok(Self::Other(s.to_owned()))
    }
}

impl fmt::Display for FactorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FactorKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FactorKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether a factor can be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FactorStatus {
    /// Enrolled and usable.
    Active,
    /// Enrollment started but not finished.
    PendingActivation,
    /// Present but not usable (disabled, expired, inactive).
    Inactive,
}

/// One enrolled factor as the directory reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorInfo {
    /// The IdP's factor id, used to challenge or remove it.
    pub id: FactorId,
    /// Its kind.
    pub kind: FactorKind,
    /// Whether it is usable.
    pub status: FactorStatus,
    /// The IdP's provider or vendor name (`OKTA`, `GOOGLE`, `microsoftAuthenticator`), not personal data.
    pub vendor: Option<String>,
    /// The device or method label (may name a person, e.g. "Jane's iPhone").
    pub label: Option<Pii>,
}

/// An account's lifecycle status, normalised across IdPs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AccountStatus {
    /// Can sign in.
    Active,
    /// Created, never activated.
    Staged,
    /// Activated by an admin, user has not set credentials yet.
    Provisioned,
    /// In a password reset (Okta `RECOVERY`).
    Recovery,
    /// Password expired; must change at next sign-in.
    PasswordExpired,
    /// Locked out after failed sign-ins.
    LockedOut,
    /// Suspended by an admin.
    Suspended,
    /// Deactivated / deprovisioned.
    Deprovisioned,
    /// Sign-in disabled (Entra `accountEnabled: false`).
    Disabled,
    /// Anything else, by the IdP's own name.
    Other(String),
}

impl AccountStatus {
    /// A stable lowercase name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Staged => "staged",
            Self::Provisioned => "provisioned",
            Self::Recovery => "recovery",
            Self::PasswordExpired => "password_expired",
            Self::LockedOut => "locked_out",
            Self::Suspended => "suspended",
            Self::Deprovisioned => "deprovisioned",
            Self::Disabled => "disabled",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user as the directory reports it. Personal fields are [`Pii`]; the record is neither `Serialize` nor
/// `Deserialize`, so it cannot reach a store by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The IdP's user id.
    pub id: SubjectId,
    /// Sign-in name (Okta login, Entra UPN).
    pub login: Pii,
    /// Primary e-mail address.
    pub email: Option<Pii>,
    /// Display name.
    pub display_name: Option<Pii>,
    /// Mobile or primary phone number, as the IdP holds it.
    pub phone: Option<Pii>,
    /// Lifecycle status.
    pub status: AccountStatus,
}

/// Facts an agent weighs before trusting a caller. Times only; nothing here names a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskFacts {
    /// The account is locked out.
    pub locked_out: bool,
    /// When the account was created.
    pub created: Option<DateTime<Utc>>,
    /// When the status last changed.
    pub status_changed: Option<DateTime<Utc>>,
    /// When the password last changed.
    pub password_changed: Option<DateTime<Utc>>,
    /// Last successful sign-in.
    pub last_login: Option<DateTime<Utc>>,
    /// When factors were last reset or changed, where the IdP says.
    pub last_factor_change: Option<DateTime<Utc>>,
    /// Whether the account is synced from an on-premises directory (changes may need doing there).
    pub directory_synced: Option<bool>,
}

/// What an agent searches by. The text is personal data and stays wrapped; adapters quote and escape it for
/// their own query languages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserQuery {
    /// Exact sign-in name.
    Login(Pii),
    /// Exact e-mail address.
    Email(Pii),
    /// Prefix of the first name, last name or display name.
    NamePrefix(Pii),
}

/// Why a search text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Empty (after trimming).
    #[error("the search text is empty")]
    Empty,
    /// Longer than [`UserQuery::MAX_LEN`] characters.
    #[error("the search text is longer than {max} characters", max = UserQuery::MAX_LEN)]
    TooLong,
    /// Contains a control character.
    #[error("the search text contains a control character")]
    ControlCharacter,
}

impl UserQuery {
    /// Longest accepted search text, in characters (Okta's login and e-mail limit).
    pub const MAX_LEN: usize = 100;

    fn clean(text: &str) -> Result<Pii, QueryError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(QueryError::Empty);
        }
        if t.chars().count() > Self::MAX_LEN {
            return Err(QueryError::TooLong);
        }
        if t.chars().any(char::is_control) {
            return Err(QueryError::ControlCharacter);
        }
        Ok(Pii::new(t))
    }

    /// A search by exact login.
    ///
    /// # Errors
    /// [`QueryError`] when the text is empty, too long or holds control characters.
    pub fn login(text: &str) -> Result<Self, QueryError> {
        Self::clean(text).map(Self::Login)
    }

    /// A search by exact e-mail.
    ///
    /// # Errors
    /// As [`UserQuery::login`].
    pub fn email(text: &str) -> Result<Self, QueryError> {
        Self::clean(text).map(Self::Email)
    }

    /// A search by name prefix.
    ///
    /// # Errors
    /// As [`UserQuery::login`].
    pub fn name_prefix(text: &str) -> Result<Self, QueryError> {
        Self::clean(text).map(Self::NamePrefix)
    }

    /// Guesses the kind from the text: contains `@` means login (IdP logins are usually e-mail shaped; adapters
    /// also match e-mail), otherwise a name prefix.
    ///
    /// # Errors
    /// As [`UserQuery::login`].
    pub fn guess(text: &str) -> Result<Self, QueryError> {
        if text.contains('@') {
            Self::login(text)
        } else {
            Self::name_prefix(text)
        }
    }

    /// The wrapped search text.
    #[must_use]
    pub fn text(&self) -> &Pii {
        match self {
            Self::Login(p) | Self::Email(p) | Self::NamePrefix(p) => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn factor_kind_names_round_trip() {
        for k in FactorKind::ALL {
            assert_eq!(FactorKind::parse(k.as_str()).unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<FactorKind>(&json).unwrap(), k);
        }
        assert_eq!(
            FactorKind::parse("u2f_legacy").unwrap(),
            FactorKind::Other("u2f_legacy".into())
        );
        assert!(FactorKind::parse("Bad Name").is_err());
    }

    #[test]
    fn query_refuses_bad_text_and_redacts() {
        assert_eq!(UserQuery::login("  "), Err(QueryError::Empty));
        assert_eq!(UserQuery::login(&"a".repeat(101)), Err(QueryError::TooLong));
        assert_eq!(
            UserQuery::login("a\u{1b}[31m"),
            Err(QueryError::ControlCharacter)
        );
        let q = UserQuery::guess("canary.person@example.com").unwrap();
        assert!(matches!(q, UserQuery::Login(_)));
        assert!(!format!("{q:?}").contains("canary"));
    }

    #[test]
    fn user_record_debug_has_no_pii() {
        let u = UserRecord {
            id: SubjectId::parse("00uCANARYID").unwrap(),
            login: Pii::new("canary.login@example.com"),
            email: Some(Pii::new("canary.mail@example.com")),
            display_name: Some(Pii::new("Canary Person")),
            phone: Some(Pii::new("+1 555 0199")),
            status: AccountStatus::Active,
        };
        let s = format!("{u:?}");
        for needle in ["CANARYID", "canary", "Canary", "0199"] {
            assert!(!s.contains(needle), "{needle} leaked in {s}");
        }
    }

    proptest! {
        #[test]
        fn guess_never_panics(s in ".{0,300}") {
            if let Ok(q) = UserQuery::guess(&s) {
                prop_assert!(q.text().expose_pii().chars().count() <= UserQuery::MAX_LEN);
                prop_assert!(!q.text().expose_pii().chars().any(char::is_control));
            }
        }
    }
}
