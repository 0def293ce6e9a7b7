//! A faithful fake Okta tenant: management API subset, org authorization server, OIDC provider for agent
//! sign-in, simulated phones, fault injection and a control API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
//! let okta = FakeOkta::start(FakeOktaOptions::default()).await?;
//! let alice = okta.fixtures().id_of("alice");
//! println!("{} {} {alice}", okta.base_url(), okta.api_token());
//! okta.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Okta's wire format is followed where `shared/reference/okta.md` states it. Where the reference marks a fact
//! UNCERTAIN, the fake picks one answer and documents it (see `testkit/FIXTURES.md`, "Choices on uncertain
//! points"); some choices are switchable through [`FakeOktaOptions`].

mod auth;
mod control;
mod edge;
mod error;
mod factors;
mod fixtures;
mod logs;
mod oauth;
mod oidc;
mod search;
mod state;
mod users;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::common::{keys, totp, util};
use crate::server::serve::{FakeServer, Launch, build_async};
use crate::server::{Core, Tenant as _};

pub use crate::common::oidc::{IdTokenTweak, WebClientAuth};
pub use crate::server::{Fault, Faults, PhoneAnswer, StartError};
pub use control::{OidcControl, PendingPush, PhoneError, Phones};
pub use fixtures::{
    FixtureFactor, FixtureGroup, FixtureRole, FixtureUser, Fixtures, PRIVILEGED_GROUP,
    PROTECTED_GROUP, totp_secret_for,
};
pub use keys::KeyError;
pub use state::{Effects, PushState};
pub use totp::{STEP_SECONDS, hotp, totp_at};
pub use util::{base32_decode, base32_encode};

use state::{Config, Inner, Shared};

/// The default SSWS API token.
pub const DEFAULT_API_TOKEN: &str = "00fctr-fake-ssws-token-not-a-secret";
/// The default service app client id.
pub const DEFAULT_SERVICE_CLIENT_ID: &str = "0oafctrservice000001";
/// The default OIDC web app client id (agent sign-in).
pub const DEFAULT_OIDC_CLIENT_ID: &str = "0oafctrportal0000001";
/// The default OIDC web app client secret.
pub const DEFAULT_OIDC_CLIENT_SECRET: &str = "fctr-fake-portal-client-secret";
/// Scope for read endpoints.
pub const SCOPE_USERS_READ: &str = "okta.users.read";
/// Scope for mutating endpoints.
pub const SCOPE_USERS_MANAGE: &str = "okta.users.manage";
/// Scope for the System Log.
pub const SCOPE_LOGS_READ: &str = "okta.logs.read";

/// Options for [`FakeOkta::start`] and [`FakeOktaState::new`]. Start from [`FakeOktaOptions::default`].
#[derive(Debug, Clone)]
pub struct FakeOktaOptions {
    /// Where to listen (default `127.0.0.1:0`, a random port). Only used by [`FakeOkta::start`].
    pub listen: SocketAddr,
    /// Issuer and link base override (default: the bound base URL, e.g. `http://127.0.0.1:PORT`). Set it when
    /// the fake is reached through another URL (a proxy, or a router mounted inside another server).
    pub issuer: Option<Url>,
    /// The accepted SSWS token (default [`DEFAULT_API_TOKEN`]).
    pub api_token: String,
    /// How long a push waits for an answer before it reads `TIMEOUT` (default 60 s).
    pub push_timeout: Duration,
    /// Redirect URIs registered on the OIDC client besides the defaults
    /// (`http://127.0.0.1:8080/auth/callback`, `http://localhost:8080/auth/callback`).
    pub extra_redirect_uris: Vec<String>,
    /// Users seeded besides the fixture org (e.g. [`FixtureUser::caller`] with canary values).
    pub extra_users: Vec<FixtureUser>,
    /// Requests per minute per route bucket (method + route template) before 429 E0000047 (default 600).
    pub rate_limit_per_minute: u32,
    /// Consecutive wrong passcodes that lock the user (`LOCKED_OUT`, E0000069); 0 disables (default 5).
    pub lockout_threshold: u32,
    /// Answer a replayed or out-of-window passcode with 200 `{"factorResult":"PASSCODE_REPLAYED"}` /
    /// `TIME_WINDOW_EXCEEDED` instead of 403 E0000082 / E0000083 (okta.md marks this UNCERTAIN; default false).
    pub passcode_replay_as_body: bool,
    /// Scopes granted to the service app (default `okta.users.read okta.users.manage okta.logs.read`).
    pub service_app_scopes: Vec<String>,
    /// The service app requires DPoP-bound tokens (default false).
    pub require_dpop: bool,
    /// Service app client id (default [`DEFAULT_SERVICE_CLIENT_ID`]).
    pub service_client_id: String,
    /// OIDC client id (default [`DEFAULT_OIDC_CLIENT_ID`]).
    pub oidc_client_id: String,
    /// OIDC client secret (default [`DEFAULT_OIDC_CLIENT_SECRET`]).
    pub oidc_client_secret: String,
}

impl Default for FakeOktaOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            issuer: None,
            api_token: DEFAULT_API_TOKEN.into(),
            push_timeout: Duration::from_secs(60),
            extra_redirect_uris: Vec::new(),
            extra_users: Vec::new(),
            rate_limit_per_minute: 600,
            lockout_threshold: 5,
            passcode_replay_as_body: false,
            service_app_scopes: vec![
                SCOPE_USERS_READ.into(),
                SCOPE_USERS_MANAGE.into(),
                SCOPE_LOGS_READ.into(),
            ],
            require_dpop: false,
            service_client_id: DEFAULT_SERVICE_CLIENT_ID.into(),
            oidc_client_id: DEFAULT_OIDC_CLIENT_ID.into(),
            oidc_client_secret: DEFAULT_OIDC_CLIENT_SECRET.into(),
        }
    }
}

/// A running fake Okta tenant on loopback: [`FakeServer::start`] it with [`FakeOktaOptions`]; it dereferences
/// to [`FakeOktaState`] (fixtures, phones, faults, clock, …). Dropping it stops the server;
/// [`FakeServer::shutdown`] waits for it.
pub type FakeOkta = FakeServer<FakeOktaState>;

/// The registered service app (OAuth 2.0 client credentials with `private_key_jwt`).
#[derive(Debug, Clone)]
pub struct ServiceApp {
    /// Client id (`iss` and `sub` of the client assertion).
    pub client_id: String,
    /// `kid` of the registered key; put it in the assertion header.
    pub key_id: String,
    /// Signing algorithm of the key (`ES256`).
    pub alg: String,
    /// The PKCS#8 PEM private key (EC P-256) generated at start.
    pub private_key_pem: SecretString,
    /// The registered public JWK.
    pub public_jwk: serde_json::Value,
    /// The token endpoint, which is also the required assertion `aud`.
    pub token_url: Url,
    /// Scopes granted to the app.
    pub scopes: Vec<String>,
}

/// The OIDC web app agents sign in through.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// Client id (the ID token's `aud`).
    pub client_id: String,
    /// Client secret (`client_secret_basic` or `client_secret_post`).
    pub client_secret: SecretString,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// The issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: Url,
}

/// The fake's state, cheap to clone. Holds everything [`router`] serves; use it to embed the fake in-process.
#[derive(Clone)]
pub struct FakeOktaState {
    pub(crate) shared: Arc<Shared>,
    service_app: Arc<ServiceApp>,
}

impl std::fmt::Debug for FakeOktaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOktaState")
            .field("issuer", &self.shared.cfg.issuer.as_str())
            .finish_non_exhaustive()
    }
}

impl FakeOktaState {
    /// Builds the state for a fake reachable at `base_url` (used as issuer unless `options.issuer` is set).
    /// Generates the service-app key pair and (once per process) the RSA ID-token key, so call it from a context
    /// that may block for a moment, or use [`FakeOktaState::new_async`].
    ///
    /// # Errors
    /// [`StartError::Key`] if key generation fails.
    pub fn new(options: &FakeOktaOptions, base_url: Url) -> Result<Self, StartError> {
        let signer = keys::rsa_signer()?;
        let ec = keys::generate_ec_p256()?;
        let issuer = options.issuer.clone().unwrap_or_else(|| base_url.clone());
        let cfg = Config {
            issuer,
            api_token: options.api_token.clone(),
            push_timeout: options.push_timeout,
            lockout_threshold: options.lockout_threshold,
            passcode_replay_as_body: options.passcode_replay_as_body,
            service_client_id: options.service_client_id.clone(),
            oidc_client_id: options.oidc_client_id.clone(),
            oidc_client_secret: options.oidc_client_secret.clone(),
        };
        let token_url = Url::parse(&cfg.token_endpoint())
            .map_err(|e| StartError::InvalidOption(format!("issuer: {e}")))?;
        let mut fixtures = fixtures::describe();
        fixtures.users.extend(options.extra_users.iter().cloned());
        let (users, groups) = state::seed(&fixtures);
        let mut redirect_uris = vec![
            "http://127.0.0.1:8080/auth/callback".to_string(),
            "http://localhost:8080/auth/callback".to_string(),
        ];
        redirect_uris.extend(options.extra_redirect_uris.iter().cloned());
        let inner = Inner {
            users,
            groups,
            txs: HashMap::new(),
            access_tokens: HashMap::new(),
            used_jtis: HashMap::new(),
            dpop_jtis: HashMap::new(),
            dpop_nonce: util::random_id(32),
            auth_requests: HashMap::new(),
            codes: HashMap::new(),
            oidc_tokens: HashMap::new(),
            redirect_uris,
            service_keys: vec![ec.public_jwk.clone()],
            service_scopes: options.service_app_scopes.clone(),
            require_dpop: options.require_dpop,
            plain_push_org: false,
            plain_push_users: std::collections::HashSet::new(),
            system_log: Vec::new(),
        };
        let service_app = ServiceApp {
            client_id: options.service_client_id.clone(),
            key_id: ec.kid,
            alg: "ES256".into(),
            private_key_pem: SecretString::from(ec.private_pem),
            public_jwk: ec.public_jwk,
            token_url,
            scopes: options.service_app_scopes.clone(),
        };
        Ok(Self {
            shared: Arc::new(Shared::new(
                cfg,
                signer,
                inner,
                fixtures,
                Core::new(options.rate_limit_per_minute),
            )),
            service_app: Arc::new(service_app),
        })
    }

    /// [`FakeOktaState::new`] on a blocking thread.
    ///
    /// # Errors
    /// As [`FakeOktaState::new`].
    pub async fn new_async(options: &FakeOktaOptions, base_url: Url) -> Result<Self, StartError> {
        build_async::<Self>(options, base_url).await
    }

    /// The issuer (and base of every link in bodies).
    pub fn issuer(&self) -> Url {
        self.shared.cfg.issuer.clone()
    }

    /// The SSWS token the fake accepts.
    pub fn api_token(&self) -> &str {
        &self.shared.cfg.api_token
    }

    /// The registered service app, with its private key.
    pub fn service_app(&self) -> &ServiceApp {
        &self.service_app
    }

    /// The OIDC client for agent sign-in (redirect URIs as registered now).
    pub fn oidc_client(&self) -> OidcClient {
        OidcClient {
            client_id: self.shared.cfg.oidc_client_id.clone(),
            client_secret: SecretString::from(self.shared.cfg.oidc_client_secret.clone()),
            redirect_uris: self.shared.lock().redirect_uris.clone(),
            issuer: self.shared.cfg.issuer.clone(),
        }
    }

    /// Registers another exact redirect URI on the OIDC client (e.g. once the portal knows its port).
    pub fn add_redirect_uri(&self, uri: impl Into<String>) {
        let uri = uri.into();
        let mut inner = self.shared.lock();
        if !inner.redirect_uris.contains(&uri) {
            inner.redirect_uris.push(uri);
        }
    }

    /// Registers another public JWK (RSA or EC, with a unique `kid`) on the service app.
    pub fn register_service_key(&self, public_jwk: serde_json::Value) {
        self.shared.lock().service_keys.push(public_jwk);
    }

    /// The seeded fixture org.
    pub fn fixtures(&self) -> &Fixtures {
        &self.shared.fixtures
    }

    /// Simulated phones: pending pushes and answers.
    pub fn phones(&self) -> Phones {
        Phones::new(self.clone())
    }

    /// Fault injection.
    pub fn faults(&self) -> Faults {
        Faults::new(&self.shared.core)
    }

    /// OIDC test hooks (tampered next ID token).
    pub fn oidc(&self) -> OidcControl {
        OidcControl::new(&self.shared.core, self.clone())
    }

    /// Side-effect counters of a user (by id or login).
    pub fn effects(&self, user: &str) -> Option<Effects> {
        let inner = self.shared.lock();
        inner
            .user_idx_by_any(user)
            .map(|i| inner.users[i].effects.clone())
    }

    /// The current Okta `status` of a user (by id or login).
    pub fn user_status(&self, user: &str) -> Option<String> {
        let inner = self.shared.lock();
        inner
            .user_idx_by_any(user)
            .map(|i| inner.users[i].status.clone())
    }

    /// The TOTP code valid now for the user's `token:software:totp` factor (by id or login).
    pub fn totp_now(&self, user: &str) -> Option<String> {
        let now = self.shared.now_secs();
        let inner = self.shared.lock();
        let u = &inner.users[inner.user_idx_by_any(user)?];
        let secret = u.factors.iter().find_map(|f| f.secret.as_ref())?;
        Some(totp::totp_at(secret, now))
    }

    /// Moves the fake's clock forward (or back, with a negative value) by `seconds`. Affects token and code
    /// expiry, push timeouts and TOTP.
    pub fn advance_clock(&self, seconds: i64) {
        self.core().clock.advance(seconds);
    }

    /// Makes pushes come back without a number challenge (`correctAnswer`), although the client asked for one:
    /// for every user (`user: None`) or for one (handle, login or id). `plain = false` restores number matching.
    /// Returns false for an unknown user.
    pub fn set_plain_pushes(&self, user: Option<&str>, plain: bool) -> bool {
        let id = match user {
            None => None,
            Some(u) => {
                let key = self
                    .shared
                    .fixtures
                    .user(u)
                    .map_or_else(|| u.to_owned(), |f| f.id.clone());
                let inner = self.shared.lock();
                match inner.user_idx_by_any(&key) {
                    Some(i) => Some(inner.users[i].id.clone()),
                    None => return false,
                }
            }
        };
        let mut inner = self.shared.lock();
        match id {
            None => inner.plain_push_org = plain,
            Some(id) if plain => {
                inner.plain_push_users.insert(id);
            }
            Some(id) => {
                inner.plain_push_users.remove(&id);
            }
        }
        true
    }

    /// Sets the per-bucket rate limit (requests per minute) and clears the counters.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.core().edge().set_rate_limit(per_minute);
    }

    /// The request log of the vendor API: how many requests each `METHOD route-template` received (let through
    /// or refused) since start or the last call, which empties it. Tests count an adapter's calls by kind with it.
    pub fn take_requests(&self) -> std::collections::BTreeMap<String, u64> {
        self.core().edge().take_requests()
    }

    /// Requests answered 429 by the rate limit since it was last set, by bucket (`METHOD /route/{template}`,
    /// e.g. `GET /api/v1/users/{id}/factors/{factor_id}/transactions/{tx_id}` for push polls). Injected 429
    /// faults are not counted.
    pub fn rate_limit_refusals(&self) -> std::collections::BTreeMap<String, u64> {
        self.core().edge().refusals()
    }
}

impl Launch for FakeOktaState {
    type Options = FakeOktaOptions;
    const NAME: &'static str = "fake okta";
    const SERVER_NAME: &'static str = "FakeOkta";

    fn listen(options: &FakeOktaOptions) -> SocketAddr {
        options.listen
    }

    fn build(options: &FakeOktaOptions, base_url: Url) -> Result<Self, StartError> {
        Self::new(options, base_url)
    }

    fn router(self) -> axum::Router {
        router(self)
    }
}

/// The fake's routes: Okta endpoints (with request-id, date, rate-limit and fault layers) and `/_fake/…`.
pub fn router(state: FakeOktaState) -> axum::Router {
    edge::build_router(state)
}
