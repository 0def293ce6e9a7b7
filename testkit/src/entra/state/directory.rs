//! The directory the fake tenant holds (users, authentication methods, Temporary Access Passes, groups and
//! roles) and the JSON shapes Graph renders them in.

use super::*;

/// The kinds of authentication method the fake stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodKind {
    Password,
    Authenticator,
    Phone,
    SoftwareOath,
    Fido2,
    WindowsHello,
    Email,
    Tap,
    PlatformCredential,
}

impl MethodKind {
    pub fn odata_type(self) -> &'static str {
        match self {
            Self::Password => "passwordAuthenticationMethod",
            Self::Authenticator => "microsoftAuthenticatorAuthenticationMethod",
            Self::Phone => "phoneAuthenticationMethod",
            Self::SoftwareOath => "softwareOathAuthenticationMethod",
            Self::Fido2 => "fido2AuthenticationMethod",
            Self::WindowsHello => "windowsHelloForBusinessAuthenticationMethod",
            Self::Email => "emailAuthenticationMethod",
            Self::Tap => "temporaryAccessPassAuthenticationMethod",
            Self::PlatformCredential => "platformCredentialAuthenticationMethod",
        }
    }

    /// The per-type collection under `/authentication/`.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Password => "passwordMethods",
            Self::Authenticator => "microsoftAuthenticatorMethods",
            Self::Phone => "phoneMethods",
            Self::SoftwareOath => "softwareOathMethods",
            Self::Fido2 => "fido2Methods",
            Self::WindowsHello => "windowsHelloForBusinessMethods",
            Self::Email => "emailMethods",
            Self::Tap => "temporaryAccessPassMethods",
            Self::PlatformCredential => "platformCredentialMethods",
        }
    }

    pub fn from_collection(c: &str) -> Option<Self> {
        [
            Self::Password,
            Self::Authenticator,
            Self::Phone,
            Self::SoftwareOath,
            Self::Fido2,
            Self::WindowsHello,
            Self::Email,
            Self::Tap,
            Self::PlatformCredential,
        ]
        .into_iter()
        .find(|k| k.collection() == c)
    }
}

/// A stored Temporary Access Pass.
#[derive(Debug, Clone)]
pub(crate) struct Tap {
    pub start: DateTime<Utc>,
    pub lifetime_minutes: u32,
    pub is_usable_once: bool,
}

impl Tap {
    /// (isUsable, methodUsabilityReason) at `now`.
    pub fn usability(&self, now: DateTime<Utc>) -> (bool, &'static str) {
        if now < self.start {
            (false, "NotYetValid")
        } else if now >= self.start + chrono::Duration::minutes(i64::from(self.lifetime_minutes)) {
            (false, "Expired")
        } else {
            (true, "EnabledByPolicy")
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Method {
    pub id: String,
    pub kind: MethodKind,
    pub created: Option<DateTime<Utc>>,
    /// Type-specific fields, rendered as they are.
    pub fields: Map<String, Value>,
    pub tap: Option<Tap>,
}

impl Method {
    /// The JSON Graph renders (`typed`: with `@odata.type`, as in `/methods`).
    pub fn json(&self, now: DateTime<Utc>, typed: bool) -> Value {
        let mut m = Map::new();
        if typed {
            m.insert(
                "@odata.type".into(),
                json!(format!("#microsoft.graph.{}", self.kind.odata_type())),
            );
        }
        m.insert("id".into(), json!(self.id));
        m.insert("createdDateTime".into(), json!(self.created.map(ts)));
        for (k, v) in &self.fields {
            m.insert(k.clone(), v.clone());
        }
        if let Some(t) = &self.tap {
            let (usable, reason) = t.usability(now);
            m.insert("temporaryAccessPass".into(), Value::Null);
            m.insert("startDateTime".into(), json!(ts(t.start)));
            m.insert("lifetimeInMinutes".into(), json!(t.lifetime_minutes));
            m.insert("isUsableOnce".into(), json!(t.is_usable_once));
            m.insert("isUsable".into(), json!(usable));
            m.insert("methodUsabilityReason".into(), json!(reason));
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub given_name: String,
    pub surname: String,
    pub mail: Option<String>,
    pub mobile_phone: Option<String>,
    pub account_enabled: bool,
    pub on_prem_sync: bool,
    pub user_type: String,
    pub created: DateTime<Utc>,
    pub last_password_change: DateTime<Utc>,
    pub sessions_valid_from: DateTime<Utc>,
    pub last_sign_in: Option<DateTime<Utc>>,
    /// Group and directory-role object ids.
    pub member_of: Vec<String>,
    pub app_roles: Vec<String>,
    pub methods: Vec<Method>,
    /// The id of the method that is the user's default for MFA (`userPreferredMethodForSecondaryAuthentication`),
    /// if any. Graph refuses to delete it while the user has other methods (besides the password).
    pub default_method: Option<String>,
    pub tap_policy_disabled: bool,
    pub totp_secret: Option<Vec<u8>>,
    pub last_otp_step: Option<i64>,
    pub effects: Effects,
    pub is_agent: bool,
}

/// Properties returned without `$select`.
pub(crate) const DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Every property `$select` accepts.
pub(crate) const ALL_PROPS: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "lastPasswordChangeDateTime",
    "signInSessionsValidFromDateTime",
    "passwordPolicies",
    "passwordProfile",
    "userType",
    "employeeId",
    "createdDateTime",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesLastSyncDateTime",
    "otherMails",
    "signInActivity",
];

impl User {
    /// The beta `signInPreferences` value naming the default method's kind, or `None` when there is no default
    /// (the enum `userDefaultAuthenticationMethodType`: push, oath, voiceMobile, voiceAlternateMobile,
    /// voiceOffice, sms).
    pub fn preferred_method_value(&self) -> Option<&'static str> {
        let id = self.default_method.as_deref()?;
        let m = self
            .methods
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(id))?;
        Some(match m.kind {
            MethodKind::Authenticator => "push",
            MethodKind::SoftwareOath => "oath",
            MethodKind::Phone => match m.fields.get("phoneType").and_then(Value::as_str) {
                Some("alternateMobile") => "voiceAlternateMobile",
                Some("office") => "voiceOffice",
                _ => "sms",
            },
            _ => return None,
        })
    }

    /// One property's value, or `None` when the name is not a user property.
    pub fn prop(&self, name: &str) -> Option<Value> {
        let handle = self.upn.split('@').next().unwrap_or("").to_string();
        Some(match name {
            "id" => json!(self.id),
            "businessPhones" => json!([]),
            "displayName" => json!(self.display_name),
            "givenName" => json!(self.given_name),
            "jobTitle" => {
                if self.is_agent {
                    json!("Helpdesk Agent")
                } else {
                    Value::Null
                }
            }
            "mail" => json!(self.mail),
            "mobilePhone" => json!(self.mobile_phone),
            "officeLocation" => Value::Null,
            "preferredLanguage" => json!("en-US"),
            "surname" => json!(self.surname),
            "userPrincipalName" => json!(self.upn),
            "accountEnabled" => json!(self.account_enabled),
            "onPremisesSyncEnabled" => {
                if self.on_prem_sync {
                    json!(true)
                } else {
                    Value::Null
                }
            }
            "lastPasswordChangeDateTime" => json!(ts(self.last_password_change)),
            "signInSessionsValidFromDateTime" => json!(ts(self.sessions_valid_from)),
            "passwordPolicies" => Value::Null,
            "passwordProfile" => Value::Null,
            "userType" => json!(self.user_type),
            "employeeId" => Value::Null,
            "createdDateTime" => json!(ts(self.created)),
            "onPremisesImmutableId" => {
                if self.on_prem_sync {
                    json!(crate::common::util::b64(self.id.as_bytes()))
                } else {
                    Value::Null
                }
            }
            "onPremisesSamAccountName" => {
                if self.on_prem_sync {
                    json!(handle)
                } else {
                    Value::Null
                }
            }
            "onPremisesLastSyncDateTime" => {
                if self.on_prem_sync {
                    json!(ts(self.created + chrono::Duration::days(60)))
                } else {
                    Value::Null
                }
            }
            "otherMails" => json!([]),
            "signInActivity" => json!({
                "lastSignInDateTime": self.last_sign_in.map(ts),
                "lastNonInteractiveSignInDateTime": self.last_sign_in.map(ts),
                "lastSuccessfulSignInDateTime": self.last_sign_in.map(ts),
            }),
            _ => return None,
        })
    }

    /// The user object with the given properties (in that order).
    pub fn json(&self, props: &[&str]) -> Value {
        let mut m = Map::new();
        for p in props {
            if let Some(v) = self.prop(p) {
                m.insert((*p).to_string(), v);
            }
        }
        Value::Object(m)
    }

    pub fn has_role(&self) -> bool {
        self.member_of.iter().any(|id| id.starts_with(ROLE_MARK))
    }
}

/// Directory-role object ids are kept in `member_of` with this prefix stripped on output; see
/// [`Inner::object`].
pub(crate) const ROLE_MARK: &str = "role:";

#[derive(Debug, Clone)]
pub(crate) struct DirObject {
    pub id: String,
    pub display_name: String,
    /// `group` or `directoryRole`.
    pub kind: String,
    pub role_template_id: Option<String>,
}

impl DirObject {
    pub fn json(&self) -> Value {
        let mut v = json!({
            "@odata.type": format!("#microsoft.graph.{}", self.kind),
            "id": self.id,
            "displayName": self.display_name,
            "description": format!("fctr fixture {}", self.display_name),
        });
        if self.kind == "group" {
            v["securityEnabled"] = json!(true);
            v["mailEnabled"] = json!(false);
            v["groupTypes"] = json!([]);
        } else {
            v["roleTemplateId"] = json!(self.role_template_id);
        }
        v
    }
}
