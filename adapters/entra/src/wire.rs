//! Graph wire DTOs and their conversion into port types.

use chrono::{DateTime, Utc};
use fctr_ports::{
    AccountStatus, FactorId, FactorInfo, FactorKind, FactorStatus, GroupRef, Pii, PortError,
    RiskFacts, SubjectId, UserRecord,
};
use serde::Deserialize;

/// The user properties read (`$select`). `signInActivity` is left out: it needs AuditLog.Read.All and a P1/P2
/// licence.
pub(crate) const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,mobilePhone,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime,createdDateTime";

/// A page of a Graph collection.
#[derive(Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub(crate) value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    pub(crate) next_link: Option<String>,
}

/// A user as `$select`ed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphUser {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) user_principal_name: Option<String>,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) mail: Option<String>,
    #[serde(default)]
    pub(crate) mobile_phone: Option<String>,
    #[serde(default)]
    pub(crate) account_enabled: Option<bool>,
    #[serde(default)]
    pub(crate) on_premises_sync_enabled: Option<bool>,
    #[serde(default)]
    pub(crate) last_password_change_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) created_date_time: Option<DateTime<Utc>>,
}

impl GraphUser {
    /// `accountEnabled: false` is `Disabled`; anything else (true, or not returned) is `Active`.
    pub(crate) fn status(&self) -> AccountStatus {
        if self.account_enabled == Some(false) {
            AccountStatus::Disabled
        } else {
            AccountStatus::Active
        }
    }

    pub(crate) fn risk_facts(&self) -> RiskFacts {
        RiskFacts {
            // Graph exposes no lockout (smart lockout) state for a user.
            locked_out: false,
            created: self.created_date_time,
            status_changed: None,
            password_changed: self.last_password_change_date_time,
            // Needs signInActivity (AuditLog.Read.All + P1/P2): not read.
            last_login: None,
            last_factor_change: None,
            // true = synced now; null/false = cloud-managed.
            directory_synced: Some(self.on_premises_sync_enabled == Some(true)),
        }
    }

    pub(crate) fn into_record(self) -> Result<UserRecord, PortError> {
        let status = self.status();
        let id = SubjectId::parse(self.id.as_str()).map_err(|_| PortError::Malformed)?;
        let login = self.user_principal_name.ok_or(PortError::Malformed)?;
        Ok(UserRecord {
            id,
            login: Pii::new(login),
            email: nonempty(self.mail),
            display_name: nonempty(self.display_name),
            phone: nonempty(self.mobile_phone),
            status,
        })
    }
}

fn nonempty(s: Option<String>) -> Option<Pii> {
    s.filter(|s| !s.trim().is_empty()).map(Pii::new)
}

/// One authentication method (fields of every type we read; absent ones default).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphMethod {
    #[serde(rename = "@odata.type", default)]
    pub(crate) odata_type: Option<String>,
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) phone_number: Option<String>,
    #[serde(default)]
    pub(crate) phone_type: Option<String>,
    #[serde(default)]
    pub(crate) email_address: Option<String>,
    #[serde(default)]
    pub(crate) is_usable: Option<bool>,
}

/// The short type name without `#microsoft.graph.`.
pub(crate) fn short_type(odata_type: Option<&str>) -> &str {
    let t = odata_type.unwrap_or("");
    t.strip_prefix("#microsoft.graph.").unwrap_or(t)
}

/// The per-type collection under `/users/{id}/authentication/` whose items can be deleted, for a method type.
/// Passwords cannot be deleted; external and unknown types are not handled.
pub(crate) fn delete_collection(short: &str) -> Option<&'static str> {
    Some(match short {
        "temporaryAccessPassAuthenticationMethod" => "temporaryAccessPassMethods",
        "softwareOathAuthenticationMethod" => "softwareOathMethods",
        "microsoftAuthenticatorAuthenticationMethod" => "microsoftAuthenticatorMethods",
        "phoneAuthenticationMethod" => "phoneMethods",
        "fido2AuthenticationMethod" => "fido2Methods",
        "windowsHelloForBusinessAuthenticationMethod" => "windowsHelloForBusinessMethods",
        "emailAuthenticationMethod" => "emailMethods",
        "platformCredentialAuthenticationMethod" => "platformCredentialMethods",
        _ => return None,
    })
}

impl GraphMethod {
    pub(crate) fn kind(&self) -> FactorKind {
        match short_type(self.odata_type.as_deref()) {
            "microsoftAuthenticatorAuthenticationMethod" => FactorKind::Push,
            "phoneAuthenticationMethod" => match self.phone_type.as_deref() {
                // A mobile number takes SMS (and voice); alternate mobile and office numbers take voice calls
                // only. The stricter reading for policy either way: both are restricted PSTN channels.
                Some("mobile") => FactorKind::Sms,
                _ => FactorKind::Voice,
            },
            "fido2AuthenticationMethod" => FactorKind::WebAuthn,
            "softwareOathAuthenticationMethod" => FactorKind::Totp,
            "hardwareOathAuthenticationMethod" => FactorKind::HardwareOtp,
            "windowsHelloForBusinessAuthenticationMethod"
            | "platformCredentialAuthenticationMethod" => FactorKind::PlatformCredential,
            "temporaryAccessPassAuthenticationMethod" => FactorKind::TemporaryAccessPass,
            "emailAuthenticationMethod" => FactorKind::Email,
            "passwordAuthenticationMethod" => FactorKind::Password,
            other => FactorKind::parse(&other.to_ascii_lowercase())
                .map(|k| match k {
                    FactorKind::Other(s) => FactorKind::Other(format!("entra:{s}")),
                    _ => FactorKind::Other("entra:unknown".to_owned()),
                })
                .unwrap_or_else(|_| FactorKind::Other("entra:unknown".to_owned())),
        }
    }

    /// Converts, or `None` when the id is not a usable factor id (logged by type only).
    pub(crate) fn into_factor(self) -> Option<FactorInfo> {
        let kind = self.kind();
        let short = short_type(self.odata_type.as_deref()).to_owned();
        let Ok(id) = FactorId::parse(self.id.as_str()) else {
            tracing::warn!(method_type = %crate::errors::safe_token(&short).unwrap_or_default(), "entra: skipped a method whose id is not a valid factor id");
            return None;
        };
        let status = match self.is_usable {
            Some(false) => FactorStatus::Inactive,
            _ => FactorStatus::Active,
        };
        let label = match kind {
            FactorKind::Sms | FactorKind::Voice => self.phone_number,
            FactorKind::Email => self.email_address,
            _ => self.display_name,
        };
        Some(FactorInfo {
            id,
            kind,
            status,
            vendor: crate::errors::safe_token(&short),
            label: nonempty(label),
        })
    }
}

/// A directory object from `memberOf`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphDirectoryObject {
    #[serde(rename = "@odata.type", default)]
    pub(crate) odata_type: Option<String>,
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) display_name: Option<String>,
}

impl GraphDirectoryObject {
    /// Groups and directory roles become [`GroupRef`]s; administrative units and others are skipped.
    pub(crate) fn into_group(self) -> Option<GroupRef> {
        match short_type(self.odata_type.as_deref()) {
            "group" | "directoryRole" => Some(GroupRef {
                id: self.id,
                name: self.display_name.unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

/// The `201 Created` answer to a TAP request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphTap {
    #[serde(default)]
    pub(crate) temporary_access_pass: Option<String>,
    #[serde(default)]
    pub(crate) start_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) created_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub(crate) lifetime_in_minutes: Option<u32>,
}

impl GraphTap {
    /// When the pass expires: its start (or, without one, its creation) plus its lifetime (`requested` minutes
    /// when Graph omits it). `None` when Graph gave no time, or the sum is not a representable time.
    pub(crate) fn expires_at(&self, requested: u32) -> Option<DateTime<Utc>> {
        let start = self.start_date_time.or(self.created_date_time)?;
        let minutes = self.lifetime_in_minutes.unwrap_or(requested);
        start.checked_add_signed(chrono::TimeDelta::minutes(i64::from(minutes)))
    }
}

impl Drop for GraphTap {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        if let Some(t) = self.temporary_access_pass.as_mut() {
            t.zeroize();
        }
    }
}

/// Parses a JSON body.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, PortError> {
    serde_json::from_slice(body).map_err(|_| PortError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, extra: serde_json::Value) -> GraphMethod {
        let mut v =
            serde_json::json!({"@odata.type": format!("#microsoft.graph.{t}"), "id": "abc"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn method_kinds() {
        use serde_json::json;
        let cases = [
            (
                "microsoftAuthenticatorAuthenticationMethod",
                json!({}),
                FactorKind::Push,
            ),
            (
                "phoneAuthenticationMethod",
                json!({"phoneType":"mobile","smsSignInState":"notEnabled"}),
                FactorKind::Sms,
            ),
            (
                "phoneAuthenticationMethod",
                json!({"phoneType":"alternateMobile"}),
                FactorKind::Voice,
            ),
            (
                "phoneAuthenticationMethod",
                json!({"phoneType":"office"}),
                FactorKind::Voice,
            ),
            ("fido2AuthenticationMethod", json!({}), FactorKind::WebAuthn),
            (
                "softwareOathAuthenticationMethod",
                json!({}),
                FactorKind::Totp,
            ),
            (
                "windowsHelloForBusinessAuthenticationMethod",
                json!({}),
                FactorKind::PlatformCredential,
            ),
            (
                "platformCredentialAuthenticationMethod",
                json!({}),
                FactorKind::PlatformCredential,
            ),
            (
                "temporaryAccessPassAuthenticationMethod",
                json!({}),
                FactorKind::TemporaryAccessPass,
            ),
            ("emailAuthenticationMethod", json!({}), FactorKind::Email),
            (
                "passwordAuthenticationMethod",
                json!({}),
                FactorKind::Password,
            ),
            (
                "qrCodePinAuthenticationMethod",
                json!({}),
                FactorKind::Other("entra:qrcodepinauthenticationmethod".into()),
            ),
        ];
        for (t, extra, want) in cases {
            assert_eq!(m(t, extra).kind(), want, "{t}");
        }
        let bad: GraphMethod =
            serde_json::from_value(serde_json::json!({"@odata.type":"#weird type!","id":"x"}))
                .unwrap();
        assert_eq!(bad.kind(), FactorKind::Other("entra:unknown".into()));
    }

    /// A TAP answer whose start is near the end of representable time: the expiry is `None`, not an overflow
    /// panic (the receipt used to add the lifetime unchecked).
    #[test]
    fn tap_expiry_never_overflows() {
        let tap: GraphTap = serde_json::from_str(
            r#"{"temporaryAccessPass":"x","startDateTime":"+262142-12-31T23:59:59Z","lifetimeInMinutes":4294967295}"#,
        )
        .unwrap();
        assert_eq!(tap.expires_at(60), None);
        let tap: GraphTap = serde_json::from_str(
            r#"{"temporaryAccessPass":"x","createdDateTime":"2026-11-29T07:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            tap.expires_at(60).map(|t| t.to_rfc3339()),
            Some("2026-11-29T08:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn unusable_tap_is_inactive_and_bad_ids_are_skipped() {
        let f = m(
            "temporaryAccessPassAuthenticationMethod",
            serde_json::json!({"isUsable": false}),
        )
        .into_factor()
        .unwrap();
        assert_eq!(f.status, FactorStatus::Inactive);
        let bad: GraphMethod = serde_json::from_value(
            serde_json::json!({"@odata.type":"#microsoft.graph.fido2AuthenticationMethod","id":"a/b"}),
        )
        .unwrap();
        assert!(bad.into_factor().is_none());
    }
}
