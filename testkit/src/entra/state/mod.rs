//! In-memory tenant state behind one lock, and the JSON shapes Graph renders it in.

mod directory;
mod seed;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::fixtures::{self, FixtureMethod, FixtureRole, Fixtures};
use crate::common::keys::Signer;
use crate::server::phones::{Push, PushStates};
use crate::server::{Base, Core};

pub(crate) use directory::*;
pub(crate) use seed::{seed, seed_method};

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
    /// The phone's part (number as `ValidEntropyNumber`); its expiry also bounds SMS and code sessions.
    pub push: Push<PushState>,
    pub sync_call: bool,
    pub caller_name: Option<String>,
    pub sms_code: Option<String>,
    pub finished: bool,
}

impl PushStates for PushState {
    const WAITING: Self = Self::Waiting;
    const APPROVED: Self = Self::Approved;
    const DENIED: Self = Self::Denied;
    const TIMED_OUT: Self = Self::TimedOut;
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
    /// The authentication context demanded through the `claims` parameter (`id_token.acrs`), echoed in `acrs`.
    pub auth_context: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub req: AuthRequest,
    pub user_id: String,
    /// When the user authenticated (every sign-in on the fake is a fresh one).
    pub auth_time: i64,
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

/// How the fake answers the beta `GET /beta/users/{id}/authentication/signInPreferences` (the user's default MFA
/// method), so both readings of an adapter can be tested: the preference is served, or it is not available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInPreferences {
    /// `200` with `userPreferredMethodForSecondaryAuthentication` (the default).
    #[default]
    Served,
    /// `403 Authorization_RequestDenied`, as for an app the beta endpoint does not admit.
    Forbidden,
    /// `404`, as where the beta endpoint is not offered.
    NotFound,
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
    pub sign_in_preferences: SignInPreferences,
    /// The directory audit log (every change served, and console changes).
    pub directory_audits: Vec<crate::entra::graph::AuditEntry>,
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
    pub signer: Arc<Signer>,
    pub cert: CertKey,
    pub fixtures: Fixtures,
    /// Clock, faults, rate limits, ID-token tweaks, and the tenant behind its lock.
    base: Base<Inner>,
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
            base: Base::new(core, inner),
        }
    }
}
