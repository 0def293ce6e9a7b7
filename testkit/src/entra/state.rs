//! In-memory tenant state behind one lock, and the JSON shapes Graph renders it in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::fixtures::{self, FixtureMethod, FixtureRole, Fixtures};
use crate::common::keys::RsaSigner;
use crate::server::Core;

/// Graph's timestamp format: `2024-01-15T09:00:00Z`.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Side effects recorded per user, readable through `GET /_fake/users/{user}/effects` or
/// [`FakeEntraState::effects`](super::FakeEntraState::effects).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effects {
    /// `revokeSignInSessions` calls.
    pub sessions_revoked: u32,
    /// Successful `PATCH passwordProfile` calls.
    pub password_sets: u32,
    /// `forceChangePasswordNextSignIn` of the last password set.
    pub force_change_password_next_sign_in: Option<bool>,
    /// The last password set (test convenience).
    pub last_password: Option<String>,
    /// `accountEnabled` set to false.
    pub disables: u32,
    /// `accountEnabled` set to true.
    pub enables: u32,
    /// Temporary Access Passes created.
    pub taps_issued: u32,
    /// The last Temporary Access Pass created (test convenience).
    pub last_tap: Option<String>,
    /// Methods deleted (including TAPs).
    pub methods_deleted: u32,
    /// Connector pushes (Authenticator notifications) sent.
    pub pushes_sent: u32,
    /// Connector SMS codes sent.
    pub sms_sent: u32,
    /// The last SMS code sent (test convenience).
    pub last_sms_code: Option<String>,
    /// Codes accepted by `EndTwoWayAuthentication`.
    pub otp_successes: u32,
    /// Codes refused (wrong, duplicate, old).
    pub otp_failures: u32,
    /// Current run of consecutive wrong codes.
    pub consecutive_otp_failures: u32,
}

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

/// Where a connector push (or call) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// Not answered yet (also after `ignore`).
    Waiting,
    /// Approved (with the right number, when one was shown).
    Approved,
    /// Denied, or approved with the wrong number.
    Denied,
    /// Not answered before it expired.
    TimedOut,
}

/// What a connector session is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// An Authenticator notification (approve / deny).
    Push,
    /// A voice call to the mobile phone (answered by the simulated phone).
    Voice,
    /// A one-time code expected in `EndTwoWayAuthentication` (Authenticator / OATH TOTP).
    Otp,
    /// An SMS code expected in `EndTwoWayAuthentication`.
    Sms,
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub context_id: String,
    pub user_id: String,
    pub kind: SessionKind,
    pub number: Option<u8>,
    pub choices: Vec<u8>,
    pub created: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: PushState,
    pub ignored: bool,
    pub sync_call: bool,
    pub caller_name: Option<String>,
    pub sms_code: Option<String>,
    pub finished: bool,
}

impl Session {
    pub fn state_at(&self, now: DateTime<Utc>) -> PushState {
        if self.state == PushState::Waiting && now >= self.expires_at {
            PushState::TimedOut
        } else {
            self.state
        }
    }
}

/// A registered application (client credentials).
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub client_id: String,
    pub display_name: String,
    pub secret: Option<String>,
    pub cert: bool,
    pub permissions: Vec<String>,
    pub directory_roles: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub app_id: String,
    /// `graph` or `connector`.
    pub audience: &'static str,
    pub roles: Vec<String>,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub scope: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub response_mode: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub req: AuthRequest,
    pub user_id: String,
    pub expires_at: i64,
}

/// The tenant's Temporary Access Pass policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TapPolicy {
    /// `state: enabled`.
    pub enabled: bool,
    /// Default lifetime in minutes.
    pub default_lifetime_in_minutes: u32,
    /// Shortest lifetime in minutes.
    pub minimum_lifetime_in_minutes: u32,
    /// Longest lifetime in minutes.
    pub maximum_lifetime_in_minutes: u32,
    /// Every pass is one-time (`isUsableOnce` forced).
    pub is_usable_once: bool,
    /// Length of a pass.
    pub default_length: u32,
}

impl Default for TapPolicy {
    /// The shipped defaults (entra.md §3): 1 h default, 1–8 h, multi-use allowed, length 8.
    fn default() -> Self {
        Self {
            enabled: true,
            default_lifetime_in_minutes: 60,
            minimum_lifetime_in_minutes: 60,
            maximum_lifetime_in_minutes: 480,
            is_usable_once: false,
            default_length: 8,
        }
    }
}

pub(crate) struct Inner {
    pub users: Vec<User>,
    pub objects: Vec<DirObject>,
    pub apps: Vec<App>,
    pub tokens: HashMap<String, AccessToken>,
    pub used_jtis: HashMap<String, i64>,
    pub sessions: HashMap<String, Session>,
    pub auth_requests: HashMap<String, AuthRequest>,
    pub codes: HashMap<String, AuthCode>,
    pub redirect_uris: Vec<String>,
    pub tap_policy: TapPolicy,
}

impl Inner {
    pub fn user_idx_by_id(&self, id: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.id.eq_ignore_ascii_case(id))
    }

    /// `{id | userPrincipalName}` in Graph paths: object id, or UPN (case-insensitive).
    pub fn user_idx(&self, key: &str) -> Option<usize> {
        self.user_idx_by_id(key).or_else(|| {
            self.users
                .iter()
                .position(|u| u.upn.eq_ignore_ascii_case(key))
        })
    }

    /// A group or role by object id (as stored in `member_of`).
    pub fn object(&self, stored: &str) -> Option<&DirObject> {
        let id = stored.strip_prefix(ROLE_MARK).unwrap_or(stored);
        self.objects.iter().find(|o| o.id == id)
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }
}

/// Resolved configuration, fixed at start.
pub(crate) struct Config {
    pub base: Url,
    pub tenant_id: String,
    pub tenant_domain: String,
    pub push_timeout: Duration,
    pub lockout_threshold: u32,
    pub portal_client_id: String,
    pub portal_client_secret: String,
    pub token_lifetime: i64,
}

impl Config {
    /// The base URL without a trailing slash.
    pub fn base_str(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    /// The v2.0 token endpoint (also the required client-assertion `aud`).
    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base_str(), self.tenant_id)
    }

    /// The v2 issuer `{base}/{tid}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base_str(), self.tenant_id)
    }

    /// The Graph base `{base}/v1.0`.
    pub fn graph(&self) -> String {
        format!("{}/v1.0", self.base_str())
    }

    /// The connector base `{base}/StrongAuthenticationService.svc/Connector`.
    pub fn connector(&self) -> String {
        format!(
            "{}/StrongAuthenticationService.svc/Connector",
            self.base_str()
        )
    }

    /// Whether a path's tenant segment names this tenant (GUID or domain).
    pub fn is_tenant(&self, t: &str) -> bool {
        t.eq_ignore_ascii_case(&self.tenant_id) || t.eq_ignore_ascii_case(&self.tenant_domain)
    }
}

/// The registered certificate's key material.
pub(crate) struct CertKey {
    pub public_jwk: Value,
    pub x5t: String,
    pub x5t_s256: String,
}

pub(crate) struct Shared {
    pub cfg: Config,
    pub signer: Arc<RsaSigner>,
    pub cert: CertKey,
    pub fixtures: Fixtures,
    /// Clock, faults, rate limits, ID-token tweaks.
    pub core: Arc<Core>,
    inner: Mutex<Inner>,
}

impl Shared {
    pub fn new(
        cfg: Config,
        signer: Arc<RsaSigner>,
        cert: CertKey,
        inner: Inner,
        fixtures: Fixtures,
        core: Arc<Core>,
    ) -> Self {
        Self {
            cfg,
            signer,
            cert,
            fixtures,
            core,
            inner: Mutex::new(inner),
        }
    }

    /// The lock; a poisoned lock is recovered (state stays usable after a panicking test thread).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fake's clock: real time plus the offset set through the control API.
    pub fn now(&self) -> DateTime<Utc> {
        self.core.clock.now()
    }

    pub fn now_secs(&self) -> i64 {
        self.core.clock.now_secs()
    }
}

/// Builds a method of `kind` for the `i`-th user.
fn seed_method(
    id: String,
    m: FixtureMethod,
    u: &fixtures::FixtureUser,
    created: DateTime<Utc>,
) -> Method {
    let (kind, fields, created) = match m {
        FixtureMethod::MicrosoftAuthenticator => (
            MethodKind::Authenticator,
            json!({
                "displayName": format!("{}'s iPhone", u.given_name),
                "deviceTag": "SoftwareTokenActivated",
                "phoneAppVersion": "6.8.7",
            }),
            None,
        ),
        FixtureMethod::MobilePhone => (
            MethodKind::Phone,
            json!({
                "phoneNumber": u.mobile_phone,
                "phoneType": "mobile",
                "smsSignInState": "notEnabled",
            }),
            None,
        ),
        FixtureMethod::SoftwareOath => (
            MethodKind::SoftwareOath,
            json!({"secretKey": null}),
            Some(created),
        ),
        FixtureMethod::Fido2 => (
            MethodKind::Fido2,
            json!({
                "displayName": "Security Key",
                "model": "YubiKey 5 NFC",
                "aaGuid": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
                "attestationCertificates": [],
                "attestationLevel": "attested",
                "passkeyType": "deviceBound",
            }),
            Some(created),
        ),
        FixtureMethod::WindowsHelloForBusiness => (
            MethodKind::WindowsHello,
            json!({"displayName": "WORKSTATION-01", "keyStrength": "normal"}),
            Some(created),
        ),
        FixtureMethod::Email => (
            MethodKind::Email,
            json!({"emailAddress": format!("{}.personal@example.net", u.handle)}),
            None,
        ),
    };
    Method {
        id,
        kind,
        created,
        fields: fields.as_object().cloned().unwrap_or_default(),
        tap: None,
    }
}

/// Seeds users and directory objects from the fixture table.
pub(crate) fn seed(f: &Fixtures) -> (Vec<User>, Vec<DirObject>) {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 15, 9, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let objects: Vec<DirObject> = f
        .groups
        .iter()
        .map(|g| DirObject {
            id: g.id.clone(),
            display_name: g.display_name.clone(),
            kind: g.kind.clone(),
            role_template_id: g.role_template_id.clone(),
        })
        .collect();
    let users = f
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let created = base + chrono::Duration::minutes(i64::try_from(i).unwrap_or(0));
            let mut member_of: Vec<String> = u
                .groups
                .iter()
                .filter_map(|n| {
                    objects
                        .iter()
                        .find(|o| &o.display_name == n && o.kind == "group")
                })
                .map(|o| o.id.clone())
                .collect();
            member_of.extend(
                u.directory_roles
                    .iter()
                    .filter_map(|n| {
                        objects
                            .iter()
                            .find(|o| &o.display_name == n && o.kind == "directoryRole")
                    })
                    .map(|o| format!("{ROLE_MARK}{}", o.id)),
            );
            let mut methods = vec![Method {
                id: fixtures::PASSWORD_METHOD_ID.into(),
                kind: MethodKind::Password,
                created: Some(created),
                fields: json!({"password": null})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                tap: None,
            }];
            methods.extend(u.methods.iter().map(|m| {
                seed_method(
                    m.id.clone(),
                    m.method,
                    u,
                    created + chrono::Duration::days(1),
                )
            }));
            User {
                id: u.id.clone(),
                upn: u.upn.clone(),
                display_name: u.display_name.clone(),
                given_name: u.given_name.clone(),
                surname: u.surname.clone(),
                mail: u.mail.clone(),
                mobile_phone: u.mobile_phone.clone(),
                account_enabled: u.account_enabled,
                on_prem_sync: u.on_premises_sync_enabled,
                user_type: u.user_type.clone(),
                created,
                last_password_change: created + chrono::Duration::days(10),
                sessions_valid_from: created,
                last_sign_in: Some(created + chrono::Duration::days(30)),
                member_of,
                app_roles: u.app_roles.clone(),
                methods,
                tap_policy_disabled: u.tap_policy_disabled,
                totp_secret: u
                    .totp_secret
                    .as_ref()
                    .and_then(|s| crate::common::util::base32_decode(s)),
                last_otp_step: None,
                effects: Effects::default(),
                is_agent: u.role == FixtureRole::Agent,
            }
        })
        .collect();
    (users, objects)
}
