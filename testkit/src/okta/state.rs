//! In-memory tenant state behind one lock, and the JSON shapes Okta renders it in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use url::Url;

use super::fixtures::{self, Fixtures};
use super::keys::Signer;
use crate::server::phones::{Push, PushStates};
use crate::server::{Base, Core, lock};

/// Okta's timestamp format: `2024-01-15T09:00:00.000Z`.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Side effects recorded per user, readable through `GET /_fake/users/{id}/effects` or
/// [`FakeOktaState::effects`](super::FakeOktaState::effects).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Effects {
    /// `DELETE /api/v1/users/{id}/sessions` calls.
    pub sessions_revoked: u32,
    /// Of those, calls with `oauthTokens=true`.
    pub oauth_tokens_revoked: u32,
    /// Of those, calls with `forgetDevices=true`.
    pub devices_forgotten: u32,
    /// `reset_password` calls that succeeded.
    pub password_resets: u32,
    /// `expire_password` and `expire_password_with_temp_password` calls that succeeded.
    pub password_expirations: u32,
    /// Temporary passwords issued.
    pub temp_passwords_issued: u32,
    /// Sessions revoked as part of a lifecycle call with `revokeSessions=true`.
    pub sessions_revoked_by_lifecycle: u32,
    /// Successful unlocks.
    pub unlocks: u32,
    /// Successful `reset_factors` calls.
    pub factor_resets: u32,
    /// Factors removed by `DELETE …/factors/{fid}` (including companions removed with a push factor).
    pub factors_unenrolled: u32,
    /// Successful suspends.
    pub suspensions: u32,
    /// Successful unsuspends.
    pub unsuspensions: u32,
    /// Push challenges sent.
    pub pushes_sent: u32,
    /// SMS challenges sent.
    pub sms_sent: u32,
    /// Passcodes accepted.
    pub passcode_successes: u32,
    /// Passcodes refused (wrong, replayed or outside the window).
    pub passcode_failures: u32,
    /// Current run of consecutive wrong passcodes.
    pub consecutive_passcode_failures: u32,
    /// The last `resetPasswordUrl` returned.
    pub last_reset_password_url: Option<String>,
    /// The last temporary password returned.
    pub last_temp_password: Option<String>,
    /// The last SMS code sent (test convenience).
    pub last_sms_code: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Factor {
    pub id: String,
    pub factor_type: String,
    pub provider: String,
    pub status: String,
    pub created: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub profile: Value,
    pub secret: Option<Vec<u8>>,
    pub last_used_step: Option<i64>,
    pub sms_code: Option<(String, i64)>,
}

impl Factor {
    pub fn vendor_name(&self) -> &'static str {
        match (self.factor_type.as_str(), self.provider.as_str()) {
            (_, "GOOGLE") => "GOOGLE",
            (_, "FIDO") => "FIDO",
            _ => "OKTA",
        }
    }

    /// Okta Verify factors go together: removing the push removes the others.
    pub fn is_okta_verify(&self) -> bool {
        self.provider == "OKTA"
            && matches!(
                self.factor_type.as_str(),
                "push" | "token:software:totp" | "signed_nonce"
            )
    }

    pub fn json(&self, base: &str, user_id: &str) -> Value {
        let self_href = format!("{base}/api/v1/users/{user_id}/factors/{}", self.id);
        let mut links = json!({
            "self": {"href": self_href, "hints": {"allow": ["GET", "DELETE"]}},
            "user": {"href": format!("{base}/api/v1/users/{user_id}"), "hints": {"allow": ["GET"]}},
        });
        if self.factor_type != "signed_nonce" {
            links["verify"] =
                json!({"href": format!("{self_href}/verify"), "hints": {"allow": ["POST"]}});
        }
        json!({
            "id": self.id,
            "factorType": self.factor_type,
            "provider": self.provider,
            "vendorName": self.vendor_name(),
            "status": self.status,
            "created": ts(self.created),
            "lastUpdated": ts(self.last_updated),
            "profile": self.profile,
            "_links": links,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub status: String,
    pub created: DateTime<Utc>,
    pub activated: Option<DateTime<Utc>>,
    pub status_changed: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
    pub last_updated: DateTime<Utc>,
    pub password_changed: DateTime<Utc>,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub mobile_phone: Option<String>,
    pub groups: Vec<String>,
    pub factors: Vec<Factor>,
    pub effects: Effects,
    pub is_agent: bool,
}

impl User {
    pub fn set_status(&mut self, status: &str, now: DateTime<Utc>) {
        self.status = status.to_string();
        self.status_changed = now;
        self.last_updated = now;
    }

    pub fn profile_json(&self) -> Value {
        json!({
            "firstName": self.first_name,
            "lastName": self.last_name,
            "mobilePhone": self.mobile_phone,
            "secondEmail": null,
            "login": self.login,
            "email": self.email,
        })
    }

    /// The value of a top-level or `profile.` attribute, as a string, for search and filter.
    pub fn attr(&self, name: &str) -> Option<String> {
        let opt = |t: Option<DateTime<Utc>>| t.map(ts);
        match name {
            "id" => Some(self.id.clone()),
            "status" => Some(self.status.clone()),
            "created" => Some(ts(self.created)),
            "activated" => opt(self.activated),
            "statusChanged" => Some(ts(self.status_changed)),
            "lastLogin" => opt(self.last_login),
            "lastUpdated" => Some(ts(self.last_updated)),
            "passwordChanged" => Some(ts(self.password_changed)),
            "type.id" => Some(USER_TYPE_ID.to_string()),
            "profile.login" => Some(self.login.clone()),
            "profile.email" => Some(self.email.clone()),
            "profile.firstName" => Some(self.first_name.clone()),
            "profile.lastName" => Some(self.last_name.clone()),
            "profile.mobilePhone" => self.mobile_phone.clone(),
            _ => None,
        }
    }

    /// The `User` object. `single` adds the state-dependent lifecycle links of a single-user GET.
    pub fn json(&self, base: &str, single: bool) -> Value {
        let me = format!("{base}/api/v1/users/{}", self.id);
        let mut links = serde_json::Map::new();
        links.insert("self".into(), json!({"href": me}));
        if single {
            let post = |action: &str| json!({"href": format!("{me}/lifecycle/{action}"), "method": "POST"});
            match self.status.as_str() {
                "ACTIVE" | "PASSWORD_EXPIRED" | "RECOVERY" => {
                    links.insert("resetPassword".into(), post("reset_password"));
                    links.insert("expirePassword".into(), post("expire_password"));
                    links.insert("suspend".into(), post("suspend"));
                    links.insert("deactivate".into(), post("deactivate"));
                }
                "LOCKED_OUT" => {
                    links.insert("unlock".into(), post("unlock"));
                    links.insert("resetPassword".into(), post("reset_password"));
                    links.insert("deactivate".into(), post("deactivate"));
                }
                "SUSPENDED" => {
                    links.insert("unsuspend".into(), post("unsuspend"));
                    links.insert("deactivate".into(), post("deactivate"));
                }
                _ => {}
            }
            if !self.factors.is_empty() && self.status != "DEPROVISIONED" {
                links.insert("resetFactors".into(), post("reset_factors"));
            }
            links.insert(
                "type".into(),
                json!({"href": format!("{base}/api/v1/meta/types/user/{USER_TYPE_ID}")}),
            );
        }
        json!({
            "id": self.id,
            "status": self.status,
            "created": ts(self.created),
            "activated": self.activated.map(ts),
            "statusChanged": ts(self.status_changed),
            "lastLogin": self.last_login.map(ts),
            "lastUpdated": ts(self.last_updated),
            "passwordChanged": ts(self.password_changed),
            "type": {"id": USER_TYPE_ID},
            "profile": self.profile_json(),
            "credentials": {
                "password": {},
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
            "_links": links,
        })
    }
}

pub(crate) const USER_TYPE_ID: &str = "otyfakeusertype00001";

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: String,
    pub name: String,
    pub group_type: String,
    pub created: DateTime<Utc>,
}

impl Group {
    pub fn json(&self, base: &str) -> Value {
        let me = format!("{base}/api/v1/groups/{}", self.id);
        let description = if self.group_type == "BUILT_IN" {
            "All users in your organization".to_string()
        } else {
            format!("fctr fixture group {}", self.name)
        };
        json!({
            "id": self.id,
            "created": ts(self.created),
            "lastUpdated": ts(self.created),
            "lastMembershipUpdated": ts(self.created),
            "objectClass": ["okta:user_group"],
            "type": self.group_type,
            "profile": {"name": self.name, "description": description},
            "_links": {
                "logo": [
                    {"name": "medium", "href": format!("{base}/assets/img/logos/groups/okta-medium.png"), "type": "image/png"},
                    {"name": "large", "href": format!("{base}/assets/img/logos/groups/okta-large.png"), "type": "image/png"}
                ],
                "users": {"href": format!("{me}/users")},
                "apps": {"href": format!("{me}/apps")},
            },
        })
    }
}

/// Where a push transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PushState {
    /// Not answered yet (also after `ignore`).
    Waiting,
    /// Approved (with the right number, when number matching is on).
    Success,
    /// Denied, or approved with the wrong number.
    Rejected,
    /// Not answered before `expiresAt`.
    Timeout,
}

impl PushStates for PushState {
    const WAITING: Self = Self::Waiting;
    const APPROVED: Self = Self::Success;
    const DENIED: Self = Self::Rejected;
    const TIMED_OUT: Self = Self::Timeout;
}

/// A push transaction: the phone's [`Push`] (number challenge as `correctAnswer`) and what the phone shows.
#[derive(Debug, Clone)]
pub(crate) struct PushTx {
    pub id: String,
    pub user_id: String,
    pub factor_id: String,
    pub push: Push<PushState>,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub scopes: Vec<String>,
    pub expires_at: i64,
    /// RFC 7638 thumbprint of the DPoP key the token is bound to.
    pub jkt: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub scope: String,
    pub code_challenge: String,
    pub expires_at: i64,
    /// The `acr_values` asked for (echoed as `acr` when the sign-in satisfies it).
    pub acr_values: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub req: AuthRequest,
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct OidcAccess {
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
}

pub(crate) struct Inner {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub txs: HashMap<String, PushTx>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub used_jtis: HashMap<String, i64>,
    pub dpop_jtis: HashMap<String, i64>,
    pub dpop_nonce: String,
    pub auth_requests: HashMap<String, AuthRequest>,
    pub codes: HashMap<String, AuthCode>,
    pub oidc_tokens: HashMap<String, OidcAccess>,
    pub redirect_uris: Vec<String>,
    pub service_keys: Vec<Value>,
    pub service_scopes: Vec<String>,
    pub require_dpop: bool,
    /// Pushes to everyone come back without a number challenge, whatever the request asked (an org whose Okta
    /// Verify does not do number matching).
    pub plain_push_org: bool,
    /// Users (by id) whose pushes come back without a number challenge.
    pub plain_push_users: std::collections::HashSet<String>,
    /// The System Log, oldest first.
    pub system_log: Vec<super::logs::LogEntry>,
}

impl Inner {
    pub fn user_idx_by_id(&self, id: &str) -> Option<usize> {
        self.users.iter().position(|u| u.id == id)
    }

    /// `{id}` in Okta paths: id, login (case-insensitive) or unambiguous login shortname.
    pub fn user_idx_by_any(&self, key: &str) -> Option<usize> {
        if let Some(i) = self.user_idx_by_id(key) {
            return Some(i);
        }
        if let Some(i) = self
            .users
            .iter()
            .position(|u| u.login.eq_ignore_ascii_case(key))
        {
            return Some(i);
        }
        let mut short = self.users.iter().enumerate().filter(|(_, u)| {
            u.login
                .split('@')
                .next()
                .is_some_and(|s| s.eq_ignore_ascii_case(key))
        });
        match (short.next(), short.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    pub fn group_name(&self, id: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.id == id)
            .map(|g| g.name.as_str())
    }
}

/// Resolved configuration, fixed at start.
pub(crate) struct Config {
    pub issuer: Url,
    pub api_token: String,
    pub push_timeout: Duration,
    pub lockout_threshold: u32,
    pub passcode_replay_as_body: bool,
    pub service_client_id: String,
    pub oidc_client_id: String,
    pub oidc_client_secret: String,
}

impl Config {
    /// The issuer without a trailing slash (`https://org` style).
    pub fn issuer_str(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_string()
    }

    /// The URL prefix for links in bodies (the issuer: what clients reach us at).
    pub fn base(&self) -> String {
        self.issuer_str()
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/v1/token", self.issuer_str())
    }
}

pub(crate) struct Shared {
    pub cfg: Config,
    /// The ID-token signing key (rotatable) and the JWKS endpoint's counter and hold.
    pub keys: super::oidc::SigningKeys,
    pub fixtures: Fixtures,
    /// Clock, faults, rate limits, ID-token tweaks, and the tenant behind its lock.
    base: Base<Inner>,
    /// Algorithms the discovery document advertises besides RS256 (control API; tests of the relying party's
    /// own allow-list).
    extra_id_token_algs: Mutex<Vec<String>>,
    /// How the OIDC web app behaves toward the relying party (control API; the portal's sign-in variants).
    pub web_app: Mutex<super::oidc::WebApp>,
}

impl std::ops::Deref for Shared {
    type Target = Base<Inner>;

    fn deref(&self) -> &Base<Inner> {
        &self.base
    }
}

impl Shared {
    pub fn new(
        cfg: Config,
        signer: Arc<Signer>,
        inner: Inner,
        fixtures: Fixtures,
        core: Arc<Core>,
    ) -> Self {
        Self {
            cfg,
            keys: super::oidc::SigningKeys::new(signer),
            fixtures,
            base: Base::new(core, inner),
            extra_id_token_algs: Mutex::new(Vec::new()),
            web_app: Mutex::new(super::oidc::WebApp::default()),
        }
    }

    /// Algorithms advertised in discovery besides RS256.
    pub fn extra_id_token_algs(&self) -> Vec<String> {
        lock(&self.extra_id_token_algs).clone()
    }

    /// Sets the algorithms advertised in discovery besides RS256.
    pub fn set_extra_id_token_algs(&self, algs: Vec<String>) {
        *lock(&self.extra_id_token_algs) = algs;
    }
}

/// Seeds users and groups from the fixture table.
pub(crate) fn seed(fixtures: &Fixtures) -> (Vec<User>, Vec<Group>) {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 15, 9, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let groups: Vec<Group> = fixtures
        .groups
        .iter()
        .map(|g| Group {
            id: g.id.clone(),
            name: g.name.clone(),
            group_type: g.group_type.clone(),
            created: base,
        })
        .collect();
    let everyone = groups
        .iter()
        .find(|g| g.group_type == "BUILT_IN")
        .map(|g| g.id.clone());
    let users = fixtures
        .users
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let created = base + chrono::Duration::minutes(i64::try_from(i).unwrap_or(0));
            let mut group_ids: Vec<String> = everyone.iter().cloned().collect();
            group_ids.extend(
                f.groups.iter().filter_map(|name| groups.iter().find(|g| &g.name == name).map(|g| g.id.clone())),
            );
            let factors = f
                .factors
                .iter()
                .map(|ff| {
                    let profile = match ff.factor_type.as_str() {
                        "push" => json!({
                            "credentialId": f.login,
                            "deviceType": "SmartPhone_IPhone",
                            "keys": [],
                            "name": format!("{}'s iPhone", f.first_name),
                            "platform": "IOS",
                            "version": "17.2",
                        }),
                        "token:software:totp" => json!({"credentialId": f.login}),
                        "sms" => json!({"phoneNumber": format!("+1 555-01{:02}", i)}),
                        "webauthn" => json!({"credentialId": format!("fido-{}", f.handle), "authenticatorName": "Security Key"}),
                        _ => json!({}),
                    };
                    Factor {
                        id: ff.id.clone(),
                        factor_type: ff.factor_type.clone(),
                        provider: ff.provider.clone(),
                        status: "ACTIVE".into(),
                        created: created + chrono::Duration::days(1),
                        last_updated: created + chrono::Duration::days(1),
                        profile,
                        secret: (ff.factor_type == "token:software:totp")
                            .then(|| fixtures::totp_secret_for(&f.login)),
                        last_used_step: None,
                        sms_code: None,
                    }
                })
                .collect();
            let status_changed = created + chrono::Duration::days(30);
            User {
                id: f.id.clone(),
                status: f.status.clone(),
                created,
                activated: (f.status != "STAGED").then_some(created),
                status_changed,
                last_login: Some(status_changed),
                last_updated: status_changed,
                password_changed: created,
                login: f.login.clone(),
                email: f.login.clone(),
                first_name: f.first_name.clone(),
                last_name: f.last_name.clone(),
                mobile_phone: f.mobile_phone.clone().or_else(|| Some(format!("+1-555-01{i:02}"))),
                groups: group_ids,
                factors,
                effects: Effects::default(),
                is_agent: f.role == fixtures::FixtureRole::Agent,
            }
        })
        .collect();
    (users, groups)
}
