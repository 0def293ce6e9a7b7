//! Hand-written wire types (generated Okta models lag the wire, see okta.md §9) and their conversion into port
//! types. Personal fields move straight into [`Pii`]; nothing here is logged.

use chrono::{DateTime, Utc};
use fctr_ports::{
    AccountStatus, FactorId, FactorInfo, FactorKind, FactorStatus, GroupRef, Pii, RiskFacts,
    SubjectId, UserRecord,
};
use secrecy::SecretString;
use serde::Deserialize;

/// A user (`User` / `UserGetSingleton`); only the fields the adapter reads.
#[derive(Deserialize)]
pub(crate) struct UserDto {
    id: String,
    status: Option<String>,
    created: Option<DateTime<Utc>>,
    #[serde(rename = "statusChanged")]
    status_changed: Option<DateTime<Utc>>,
    #[serde(rename = "lastLogin")]
    last_login: Option<DateTime<Utc>>,
    #[serde(rename = "passwordChanged")]
    password_changed: Option<DateTime<Utc>>,
    #[serde(default)]
    profile: ProfileDto,
    credentials: Option<CredentialsDto>,
}

#[derive(Deserialize, Default)]
struct ProfileDto {
    login: Option<String>,
    email: Option<String>,
    #[serde(rename = "firstName")]
    first_name: Option<String>,
    #[serde(rename = "lastName")]
    last_name: Option<String>,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
    #[serde(rename = "mobilePhone")]
    mobile_phone: Option<String>,
    #[serde(rename = "primaryPhone")]
    primary_phone: Option<String>,
}

#[derive(Deserialize)]
struct CredentialsDto {
    provider: Option<ProviderDto>,
}

#[derive(Deserialize)]
struct ProviderDto {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A field was missing or held a value the port types refuse.
#[derive(Debug)]
pub(crate) struct Invalid;

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

/// Okta user status to the port's status.
pub(crate) fn account_status(s: Option<&str>) -> AccountStatus {
    match s.unwrap_or_default() {
        "ACTIVE" => AccountStatus::Active,
        "STAGED" => AccountStatus::Staged,
        "PROVISIONED" => AccountStatus::Provisioned,
        "RECOVERY" => AccountStatus::Recovery,
        "PASSWORD_EXPIRED" => AccountStatus::PasswordExpired,
        "LOCKED_OUT" => AccountStatus::LockedOut,
        "SUSPENDED" => AccountStatus::Suspended,
        "DEPROVISIONED" => AccountStatus::Deprovisioned,
        other => AccountStatus::Other(vendor_word(other)),
    }
}

/// An upstream enum value kept only if it looks like one (`[A-Z0-9_]`, short), lower-cased; else `unknown`.
fn vendor_word(s: &str) -> String {
    if !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        s.to_ascii_lowercase()
    } else {
        "unknown".to_owned()
    }
}

impl UserDto {
    pub(crate) fn subject(&self) -> Result<SubjectId, Invalid> {
        SubjectId::parse(self.id.as_str()).map_err(|_| Invalid)
    }

    pub(crate) fn into_record(self) -> Result<UserRecord, Invalid> {
        let id = self.subject()?;
        let status = account_status(self.status.as_deref());
        let p = self.profile;
        let login = nonempty(p.login).ok_or(Invalid)?;
        let display_name = nonempty(p.display_name).or_else(|| {
            let first = p.first_name.as_deref().unwrap_or_default().trim();
            let last = p.last_name.as_deref().unwrap_or_default().trim();
            let joined = format!("{first} {last}");
            nonempty(Some(joined.trim().to_owned()))
        });
        Ok(UserRecord {
            id,
            login: Pii::new(login),
            email: nonempty(p.email).map(Pii::new),
            display_name: display_name.map(Pii::new),
            phone: nonempty(p.mobile_phone)
                .or_else(|| nonempty(p.primary_phone))
                .map(Pii::new),
            status,
        })
    }

    pub(crate) fn risk_facts(&self) -> RiskFacts {
        let synced = self
            .credentials
            .as_ref()
            .and_then(|c| c.provider.as_ref())
            .and_then(|p| p.kind.as_deref())
            .and_then(|k| match k {
                "OKTA" => Some(false),
                "ACTIVE_DIRECTORY" | "LDAP" => Some(true),
                _ => None,
            });
        RiskFacts {
            locked_out: self.status.as_deref() == Some("LOCKED_OUT"),
            created: self.created,
            status_changed: self.status_changed,
            password_changed: self.password_changed,
            last_login: self.last_login,
            last_factor_change: None,
            directory_synced: synced,
        }
    }
}

/// An enrolled factor (`UserFactor`).
#[derive(Deserialize)]
pub(crate) struct FactorDto {
    id: String,
    #[serde(rename = "factorType")]
    factor_type: String,
    provider: Option<String>,
    status: Option<String>,
    profile: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Okta `factorType` to the port's kind.
pub(crate) fn factor_kind(t: &str) -> FactorKind {
    match t {
        "push" => FactorKind::Push,
        "token:software:totp" => FactorKind::Totp,
        "token:hotp" => FactorKind::Hotp,
        "token:hardware" | "token" => FactorKind::HardwareOtp,
        "sms" => FactorKind::Sms,
        "call" => FactorKind::Voice,
        "email" => FactorKind::Email,
        "question" => FactorKind::SecurityQuestion,
        "webauthn" | "u2f" => FactorKind::WebAuthn,
        "signed_nonce" => FactorKind::PlatformCredential,
        "web" => FactorKind::Other("web".to_owned()),
        other => match FactorKind::parse(other) {
            // Never let an unknown Okta type masquerade as a named kind.
            Ok(FactorKind::Other(s)) => FactorKind::Other(s),
            _ => FactorKind::Other("unknown".to_owned()),
        },
    }
}

/// Okta factor status to the port's status.
pub(crate) fn factor_status(s: Option<&str>) -> FactorStatus {
    match s.unwrap_or_default() {
        "ACTIVE" => FactorStatus::Active,
        "PENDING_ACTIVATION" | "NOT_SETUP" => FactorStatus::PendingActivation,
        _ => FactorStatus::Inactive,
    }
}

impl FactorDto {
    pub(crate) fn into_info(self) -> Result<FactorInfo, Invalid> {
        let id = FactorId::parse(self.id).map_err(|_| Invalid)?;
        let label = self.profile.and_then(|p| {
            ["name", "authenticatorName", "phoneNumber", "email"]
                .iter()
                .find_map(|k| p.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
                .and_then(|s| nonempty(Some(s)))
                .map(Pii::new)
        });
        let vendor = self.provider.filter(|p| {
            !p.is_empty()
                && p.len() <= 40
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        Ok(FactorInfo {
            id,
            kind: factor_kind(&self.factor_type),
            status: factor_status(self.status.as_deref()),
            vendor,
            label,
        })
    }
}

/// A group membership.
#[derive(Deserialize)]
pub(crate) struct GroupDto {
    id: String,
    profile: Option<GroupProfile>,
}

#[derive(Deserialize)]
struct GroupProfile {
    name: Option<String>,
}

impl GroupDto {
    pub(crate) fn into_ref(self) -> Result<GroupRef, Invalid> {
        if self.id.is_empty() || self.id.len() > 128 {
            return Err(Invalid);
        }
        Ok(GroupRef {
            name: self
                .profile
                .and_then(|p| p.name)
                .unwrap_or_else(|| self.id.clone()),
            id: self.id,
        })
    }
}

/// The answer to a factor verify or a transaction poll.
#[derive(Deserialize)]
pub(crate) struct VerifyDto {
    #[serde(rename = "factorResult")]
    pub(crate) factor_result: Option<String>,
    #[serde(rename = "expiresAt")]
    pub(crate) expires_at: Option<String>,
    #[serde(rename = "_embedded")]
    embedded: Option<EmbeddedDto>,
    #[serde(rename = "_links")]
    links: Option<LinksDto>,
}

#[derive(Deserialize)]
struct EmbeddedDto {
    challenge: Option<ChallengeDto>,
}

#[derive(Deserialize)]
struct ChallengeDto {
    #[serde(rename = "correctAnswer")]
    correct_answer: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct LinksDto {
    poll: Option<LinkDto>,
}

#[derive(Deserialize)]
struct LinkDto {
    href: String,
}

impl VerifyDto {
    /// The number-matching answer: `Ok(None)` when absent, `Err` when present but not a small number.
    pub(crate) fn correct_answer(&self) -> Result<Option<u16>, Invalid> {
        let Some(v) = self
            .embedded
            .as_ref()
            .and_then(|e| e.challenge.as_ref())
            .and_then(|c| c.correct_answer.as_ref())
        else {
            return Ok(None);
        };
        let n = match v {
            serde_json::Value::Number(n) => n.as_u64().ok_or(Invalid)?,
            serde_json::Value::String(s) => s.trim().parse::<u64>().map_err(|_| Invalid)?,
            serde_json::Value::Null => return Ok(None),
            _ => return Err(Invalid),
        };
        u16::try_from(n).map(Some).map_err(|_| Invalid)
    }

    pub(crate) fn poll_href(&self) -> Option<&str> {
        self.links
            .as_ref()
            .and_then(|l| l.poll.as_ref())
            .map(|l| l.href.as_str())
    }

    pub(crate) fn expires(&self) -> Option<DateTime<Utc>> {
        self.expires_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    }
}

/// `reset_password?sendEmail=false` answer.
#[derive(Deserialize)]
pub(crate) struct ResetPasswordDto {
    #[serde(rename = "resetPasswordUrl")]
    pub(crate) reset_password_url: Option<SecretString>,
}

/// `expire_password_with_temp_password` answer: `{"tempPassword": …}`, not a `User` (okta.md §9).
#[derive(Deserialize)]
pub(crate) struct TempPasswordDto {
    #[serde(rename = "tempPassword")]
    pub(crate) temp_password: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_kinds_map() {
        let cases = [
            ("push", FactorKind::Push),
            ("token:software:totp", FactorKind::Totp),
            ("token:hotp", FactorKind::Hotp),
            ("token:hardware", FactorKind::HardwareOtp),
            ("token", FactorKind::HardwareOtp),
            ("sms", FactorKind::Sms),
            ("call", FactorKind::Voice),
            ("email", FactorKind::Email),
            ("question", FactorKind::SecurityQuestion),
            ("webauthn", FactorKind::WebAuthn),
            ("u2f", FactorKind::WebAuthn),
            ("signed_nonce", FactorKind::PlatformCredential),
            ("web", FactorKind::Other("web".into())),
            ("password", FactorKind::Other("unknown".into())),
            ("new_thing", FactorKind::Other("new_thing".into())),
            ("Bad Thing", FactorKind::Other("unknown".into())),
        ];
        for (t, k) in cases {
            assert_eq!(factor_kind(t), k, "{t}");
        }
        assert_eq!(factor_status(Some("ACTIVE")), FactorStatus::Active);
        assert_eq!(
            factor_status(Some("PENDING_ACTIVATION")),
            FactorStatus::PendingActivation
        );
        assert_eq!(
            factor_status(Some("NOT_SETUP")),
            FactorStatus::PendingActivation
        );
        for s in ["DISABLED", "ENROLLED", "EXPIRED", "INACTIVE", "x"] {
            assert_eq!(factor_status(Some(s)), FactorStatus::Inactive);
        }
        assert_eq!(factor_status(None), FactorStatus::Inactive);
    }

    #[test]
    fn account_statuses_map() {
        assert_eq!(account_status(Some("LOCKED_OUT")), AccountStatus::LockedOut);
        assert_eq!(account_status(Some("RECOVERY")), AccountStatus::Recovery);
        assert_eq!(
            account_status(Some("ACTIVATING")),
            AccountStatus::Other("activating".into())
        );
        assert_eq!(
            account_status(Some("jane@example.com")),
            AccountStatus::Other("unknown".into())
        );
    }

    #[test]
    fn correct_answer_forms() {
        let v: VerifyDto = serde_json::from_str(
            r#"{"factorResult":"WAITING","_embedded":{"challenge":{"correctAnswer":72}}}"#,
        )
        .unwrap();
        assert_eq!(v.correct_answer().unwrap(), Some(72));
        let v: VerifyDto =
            serde_json::from_str(r#"{"_embedded":{"challenge":{"correctAnswer":"7"}}}"#).unwrap();
        assert_eq!(v.correct_answer().unwrap(), Some(7));
        let v: VerifyDto =
            serde_json::from_str(r#"{"_embedded":{"challenge":{"correctAnswer":700000}}}"#)
                .unwrap();
        assert!(v.correct_answer().is_err());
        let v: VerifyDto = serde_json::from_str(r#"{"factorResult":"WAITING"}"#).unwrap();
        assert_eq!(v.correct_answer().unwrap(), None);
    }
}
