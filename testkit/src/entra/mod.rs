//! A faithful fake Microsoft Entra ID tenant: the v2.0 token endpoint (client secret or certificate assertion),
//! a Microsoft Graph v1.0 subset (users, authentication methods and their deletion, the default method last,
//! memberOf, lifecycle, Temporary Access Pass) and the beta sign-in preferences (the default MFA method),
//! the unofficial Azure MFA connector (push and code checks, XML), an OIDC v2 provider for agent sign-in,
//! simulated phones, fault injection and a control API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fctr_testkit::entra::{FakeEntra, FakeEntraOptions};
//! let entra = FakeEntra::start(FakeEntraOptions::default()).await?;
//! let alice = entra.fixtures().id_of("alice");
//! println!("{} {} {alice}", entra.graph_base(), entra.tenant_id());
//! entra.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! One origin serves everything: the login authority (`{base}/{tenant}/oauth2/v2.0/token`, …), Graph
//! (`{base}/v1.0/…`) and the connector (`{base}/StrongAuthenticationService.svc/Connector/…`); point the adapter's
//! authority, Graph base and connector endpoint there. The wire format follows `shared/reference/entra.md`; where
//! it marks a fact UNCERTAIN the fake picks one answer and documents it in `testkit/FIXTURES-entra.md`.

mod connector;
mod control;
mod edge;
mod error;
mod fixtures;
mod graph;
mod odata;
mod oidc;
mod state;
mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ring::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use secrecy::SecretString;
use serde_json::json;
use url::Url;

use crate::common::keys::{self, KeyError};
use crate::common::util::b64url;
use crate::server::serve::{FakeServer, Launch, build_async};
use crate::server::{Core, Tenant as _};

pub use crate::common::oidc::IdTokenTweak;
pub use crate::server::{Fault, Faults, PhoneAnswer, StartError};
pub use control::{OidcControl, PendingPush, PhoneError, Phones};
pub use fixtures::{
    FixtureGroup, FixtureMethod, FixtureMethodEntry, FixtureRole, FixtureUser, Fixtures,
    GLOBAL_ADMINISTRATOR, MOBILE_PHONE_METHOD_ID, PASSWORD_METHOD_ID, PRIVILEGED_GROUP,
    PROTECTED_GROUP, TIER_ROLES, VERIFIED_DOMAIN,
};
pub use state::{Effects, PushState, SessionKind, SignInPreferences, TapPolicy};

use state::{App, CertKey, Config, Inner, Shared};

/// The fake tenant's directory (tenant) id.
pub const DEFAULT_TENANT_ID: &str = "fc7a1e57-0000-4000-8000-000000000001";
/// The fake tenant's initial domain (accepted in paths instead of the GUID).
pub const DEFAULT_TENANT_DOMAIN: &str = "fctrfake.onmicrosoft.com";
/// fctr's app registration (client id).
pub const DEFAULT_CLIENT_ID: &str = "fc7a0001-0000-4000-8000-00000000a001";
/// fctr's app client secret.
pub const DEFAULT_CLIENT_SECRET: &str = "fctr-fake-entra-client-secret~not-a-secret";
/// A second app registration with read permissions only (for 403 checks).
pub const READER_CLIENT_ID: &str = "fc7a0001-0000-4000-8000-00000000a002";
/// The reader app's client secret.
pub const READER_CLIENT_SECRET: &str = "fctr-fake-entra-reader-secret~not-a-secret";
/// Microsoft's first-party "Azure Multi-Factor Auth Client" app, whose service principal holds the connector
/// credential.
pub const MFA_CLIENT_ID: &str = "981f26a1-7f43-403b-a875-f8b09b8cd720";
/// The secret added to the MFA client's service principal in the fake tenant.
pub const DEFAULT_MFA_CLIENT_SECRET: &str = "fctr-fake-mfa-connector-secret~not-a-secret";
/// The portal's app registration for agent sign-in (OIDC).
pub const DEFAULT_PORTAL_CLIENT_ID: &str = "fc7a0001-0000-4000-8000-00000000a003";
/// The portal app's client secret.
pub const DEFAULT_PORTAL_CLIENT_SECRET: &str = "fctr-fake-entra-portal-secret~not-a-secret";
/// Microsoft Graph's resource app id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The scope for Graph application permissions.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The connector's resource.
pub const CONNECTOR_RESOURCE: &str =
    "https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector";
/// The scope for the connector.
pub const CONNECTOR_SCOPE: &str =
    "https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector/.default";

/// Graph application permissions (app roles) the fake knows, by name.
pub mod permissions {
    /// Read all users' full profiles.
    pub const USER_READ_ALL: &str = "User.Read.All";
    /// Read and write all users' full profiles.
    pub const USER_READWRITE_ALL: &str = "User.ReadWrite.All";
    /// Read directory data.
    pub const DIRECTORY_READ_ALL: &str = "Directory.Read.All";
    /// Read and write directory data.
    pub const DIRECTORY_READWRITE_ALL: &str = "Directory.ReadWrite.All";
    /// Read all group memberships.
    pub const GROUP_MEMBER_READ_ALL: &str = "GroupMember.Read.All";
    /// Read all users' authentication methods.
    pub const METHODS_READ_ALL: &str = "UserAuthenticationMethod.Read.All";
    /// Read and write all users' authentication methods.
    pub const METHODS_READWRITE_ALL: &str = "UserAuthenticationMethod.ReadWrite.All";
    /// Read and write all users' Temporary Access Pass methods.
    pub const TAP_READWRITE_ALL: &str = "UserAuthMethod-TAP.ReadWrite.All";
    /// Revoke all users' sign-in sessions.
    pub const REVOKE_SESSIONS_ALL: &str = "User.RevokeSessions.All";
    /// Set all users' passwords (`passwordProfile`).
    pub const PASSWORD_PROFILE_READWRITE_ALL: &str = "User-PasswordProfile.ReadWrite.All";
    /// Enable and disable user accounts.
    pub const ENABLE_DISABLE_ALL: &str = "User.EnableDisableAccount.All";
    /// Read audit logs (needed for `signInActivity`).
    pub const AUDIT_LOG_READ_ALL: &str = "AuditLog.Read.All";
}

/// The permissions granted to fctr's app by default: the least-privilege set of entra.md §7.
pub const DEFAULT_APP_PERMISSIONS: &[&str] = &[
    permissions::USER_READ_ALL,
    permissions::GROUP_MEMBER_READ_ALL,
    permissions::METHODS_READWRITE_ALL,
    permissions::TAP_READWRITE_ALL,
    permissions::REVOKE_SESSIONS_ALL,
    permissions::PASSWORD_PROFILE_READWRITE_ALL,
    permissions::ENABLE_DISABLE_ALL,
];

/// The permissions of the reader app.
pub const READER_PERMISSIONS: &[&str] = &[
    permissions::USER_READ_ALL,
    permissions::GROUP_MEMBER_READ_ALL,
    permissions::METHODS_READ_ALL,
];

/// Options for [`FakeEntra::start`] and [`FakeEntraState::new`]. Start from [`FakeEntraOptions::default`].
#[derive(Debug, Clone)]
pub struct FakeEntraOptions {
    /// Where to listen (default `127.0.0.1:0`, a random port). Only used by [`FakeEntra::start`].
    pub listen: SocketAddr,
    /// Base URL override for issuers and links (default: the bound base URL).
    pub base_url: Option<Url>,
    /// Directory (tenant) id (default [`DEFAULT_TENANT_ID`]).
    pub tenant_id: String,
    /// fctr's app client id (default [`DEFAULT_CLIENT_ID`]).
    pub client_id: String,
    /// fctr's app client secret (default [`DEFAULT_CLIENT_SECRET`]).
    pub client_secret: String,
    /// Graph application permissions granted to fctr's app (default [`DEFAULT_APP_PERMISSIONS`]).
    pub app_permissions: Vec<String>,
    /// Directory roles assigned to fctr's app's service principal (default `User Administrator`).
    pub app_directory_roles: Vec<String>,
    /// `PATCH passwordProfile` also needs a directory role on the app (User Administrator; Privileged
    /// Authentication Administrator for targets holding a role). entra.md marks this UNCERTAIN; default true.
    pub password_needs_directory_role: bool,
    /// The MFA client service principal's secret (default [`DEFAULT_MFA_CLIENT_SECRET`]).
    pub mfa_client_secret: String,
    /// How long a connector push or call waits for an answer before `PhoneAppNoResponse` (default 60 s).
    pub push_timeout: Duration,
    /// Consecutive wrong connector codes before `AuthenticationMethodLocked`; 0 disables (default 5).
    pub lockout_threshold: u32,
    /// Portal (OIDC) client id (default [`DEFAULT_PORTAL_CLIENT_ID`]).
    pub portal_client_id: String,
    /// Portal (OIDC) client secret (default [`DEFAULT_PORTAL_CLIENT_SECRET`]).
    pub portal_client_secret: String,
    /// Redirect URIs registered on the portal app besides the defaults
    /// (`http://127.0.0.1:8080/auth/callback`, `http://localhost:8080/auth/callback`).
    pub extra_redirect_uris: Vec<String>,
    /// Graph requests per minute per route before 429 (default 600).
    pub rate_limit_per_minute: u32,
    /// The tenant's Temporary Access Pass policy.
    pub tap_policy: TapPolicy,
    /// Access-token lifetime in seconds (default 3599).
    pub token_lifetime_secs: u32,
}

impl Default for FakeEntraOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: None,
            tenant_id: DEFAULT_TENANT_ID.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            app_permissions: DEFAULT_APP_PERMISSIONS
                .iter()
                .map(|s| (*s).into())
                .collect(),
            app_directory_roles: vec!["User Administrator".into()],
            password_needs_directory_role: true,
            mfa_client_secret: DEFAULT_MFA_CLIENT_SECRET.into(),
            push_timeout: Duration::from_secs(60),
            lockout_threshold: 5,
            portal_client_id: DEFAULT_PORTAL_CLIENT_ID.into(),
            portal_client_secret: DEFAULT_PORTAL_CLIENT_SECRET.into(),
            extra_redirect_uris: Vec::new(),
            rate_limit_per_minute: 600,
            tap_policy: TapPolicy::default(),
            token_lifetime_secs: 3599,
        }
    }
}

/// A running fake Entra tenant on loopback: [`FakeServer::start`] it with [`FakeEntraOptions`]; it dereferences
/// to [`FakeEntraState`] (authority, Graph base, apps, fixtures, phones, faults, clock, …). Dropping it stops the
/// server; [`FakeServer::shutdown`] waits for it.
pub type FakeEntra = FakeServer<FakeEntraState>;

/// The certificate registered on fctr's app and on the MFA client's service principal. The fake identifies it
/// by thumbprint only: `der` is a stand-in (the public key's SubjectPublicKeyInfo DER), not an X.509
/// certificate, and both thumbprints are computed over it.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The RSA-2048 private key, PKCS#8 PEM, generated at start.
    pub private_key_pem: SecretString,
    /// The stand-in certificate bytes the thumbprints are computed over.
    pub der: Vec<u8>,
    /// `x5t`: base64url SHA-1 thumbprint (RS256 assertions).
    pub x5t: String,
    /// `x5t#S256`: base64url SHA-256 thumbprint (PS256 assertions).
    pub x5t_s256: String,
    /// SHA-1 thumbprint as upper-case hex (what the Entra portal shows).
    pub sha1_hex: String,
    /// SHA-256 thumbprint as hex.
    pub sha256_hex: String,
}

/// An app registration's client-credentials login.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    /// Client (application) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Graph application permissions granted (the token's `roles`).
    pub permissions: Vec<String>,
    /// The v2.0 token endpoint (also the required assertion `aud`).
    pub token_url: Url,
}

/// The portal app agents sign in through.
#[derive(Debug, Clone)]
pub struct OidcClient {
    /// Client id (the ID token's `aud`).
    pub client_id: String,
    /// Client secret (`client_secret_post` or `client_secret_basic`).
    pub client_secret: SecretString,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// The issuer `{base}/{tenant}/v2.0` (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: Url,
}

/// The fake's state, cheap to clone. Holds everything [`router`] serves; use it to embed the fake in-process.
#[derive(Clone)]
pub struct FakeEntraState {
    pub(crate) shared: Arc<Shared>,
    cert: Arc<Certificate>,
    opts: Arc<FakeEntraOptions>,
}

impl std::fmt::Debug for FakeEntraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEntraState")
            .field("base", &self.shared.cfg.base.as_str())
            .field("tenant_id", &self.shared.cfg.tenant_id)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn generate_certificate() -> Result<(Certificate, CertKey), KeyError> {
    let mut rng = rand::thread_rng();
    let key =
        rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| KeyError::Generate(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let der = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .as_bytes()
        .to_vec();
    let sha1 = digest(&SHA1_FOR_LEGACY_USE_ONLY, &der);
    let sha256 = digest(&SHA256, &der);
    let n = b64url(&key.n().to_bytes_be());
    let e = b64url(&key.e().to_bytes_be());
    let cert = Certificate {
        private_key_pem: SecretString::from(pem.to_string()),
        x5t: b64url(sha1.as_ref()),
        x5t_s256: b64url(sha256.as_ref()),
        sha1_hex: hex(sha1.as_ref(), true),
        sha256_hex: hex(sha256.as_ref(), false),
        der,
    };
    let ck = CertKey {
        public_jwk: json!({"kty": "RSA", "n": n, "e": e}),
        x5t: cert.x5t.clone(),
        x5t_s256: cert.x5t_s256.clone(),
    };
    Ok((cert, ck))
}

impl FakeEntraState {
    /// Builds the state for a fake reachable at `base_url` (unless `options.base_url` is set). Generates the
    /// certificate key and (once per process) the RSA ID-token key, so call it from a context that may block for
    /// a moment, or use [`FakeEntraState::new_async`].
    ///
    /// # Errors
    /// [`StartError::Key`] if key generation fails; [`StartError::InvalidOption`] for a bad tenant id.
    pub fn new(options: &FakeEntraOptions, base_url: Url) -> Result<Self, StartError> {
        if options.tenant_id.is_empty()
            || !options
                .tenant_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(StartError::InvalidOption("tenant_id".into()));
        }
        let signer = keys::rsa_signer()?;
        let (cert, cert_key) = generate_certificate()?;
        let base = options.base_url.clone().unwrap_or(base_url);
        let cfg = Config {
            base,
            tenant_id: options.tenant_id.clone(),
            tenant_domain: DEFAULT_TENANT_DOMAIN.into(),
            push_timeout: options.push_timeout,
            lockout_threshold: options.lockout_threshold,
            portal_client_id: options.portal_client_id.clone(),
            portal_client_secret: options.portal_client_secret.clone(),
            token_lifetime: i64::from(options.token_lifetime_secs),
        };
        let fixtures = fixtures::describe();
        let (users, objects) = state::seed(&fixtures);
        let mut redirect_uris = vec![
            "http://127.0.0.1:8080/auth/callback".to_string(),
            "http://localhost:8080/auth/callback".to_string(),
        ];
        redirect_uris.extend(options.extra_redirect_uris.iter().cloned());
        let apps = vec![
            App {
                client_id: options.client_id.clone(),
                display_name: "fctr helpdesk".into(),
                secret: Some(options.client_secret.clone()),
                cert: true,
                permissions: options.app_permissions.clone(),
                directory_roles: options.app_directory_roles.clone(),
                enabled: true,
            },
            App {
                client_id: READER_CLIENT_ID.into(),
                display_name: "fctr reader".into(),
                secret: Some(READER_CLIENT_SECRET.into()),
                cert: false,
                permissions: READER_PERMISSIONS.iter().map(|s| (*s).into()).collect(),
                directory_roles: Vec::new(),
                enabled: true,
            },
            App {
                client_id: MFA_CLIENT_ID.into(),
                display_name: "Azure Multi-Factor Auth Client".into(),
                secret: Some(options.mfa_client_secret.clone()),
                cert: true,
                permissions: Vec::new(),
                directory_roles: Vec::new(),
                enabled: true,
            },
        ];
        let inner = Inner {
            users,
            objects,
            apps,
            tokens: HashMap::new(),
            used_jtis: HashMap::new(),
            sessions: HashMap::new(),
            auth_requests: HashMap::new(),
            codes: HashMap::new(),
            redirect_uris,
            tap_policy: options.tap_policy.clone(),
            sign_in_preferences: SignInPreferences::default(),
            directory_audits: Vec::new(),
        };
        Ok(Self {
            shared: Arc::new(Shared::new(
                cfg,
                signer,
                cert_key,
                inner,
                fixtures,
                Core::new(options.rate_limit_per_minute),
            )),
            cert: Arc::new(cert),
            opts: Arc::new(options.clone()),
        })
    }

    /// [`FakeEntraState::new`] on a blocking thread.
    ///
    /// # Errors
    /// As [`FakeEntraState::new`].
    pub async fn new_async(options: &FakeEntraOptions, base_url: Url) -> Result<Self, StartError> {
        build_async::<Self>(options, base_url).await
    }

    fn url(&self, s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|_| self.shared.cfg.base.clone())
    }

    /// The base URL everything is served under (links and issuers use it).
    pub fn base(&self) -> Url {
        self.shared.cfg.base.clone()
    }

    /// The directory (tenant) id.
    pub fn tenant_id(&self) -> &str {
        &self.shared.cfg.tenant_id
    }

    /// The login authority base, `{base}/` (the token endpoint is `{authority}{tenant}/oauth2/v2.0/token`).
    pub fn authority(&self) -> Url {
        self.url(&format!("{}/", self.shared.cfg.base_str()))
    }

    /// The Graph base, `{base}/v1.0/`.
    pub fn graph_base(&self) -> Url {
        self.url(&format!("{}/", self.shared.cfg.graph()))
    }

    /// The connector base, `{base}/StrongAuthenticationService.svc/Connector/`.
    pub fn connector_endpoint(&self) -> Url {
        self.url(&format!("{}/", self.shared.cfg.connector()))
    }

    /// The v2.0 token endpoint.
    pub fn token_url(&self) -> Url {
        self.url(&self.shared.cfg.token_endpoint())
    }

    /// The OIDC issuer, `{base}/{tenant}/v2.0`.
    pub fn issuer(&self) -> Url {
        self.url(&self.shared.cfg.issuer())
    }

    fn credentials(&self, client_id: &str) -> AppCredentials {
        let inner = self.shared.lock();
        let app = inner.app(client_id);
        AppCredentials {
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(
                app.and_then(|a| a.secret.clone()).unwrap_or_default(),
            ),
            permissions: app.map(|a| a.permissions.clone()).unwrap_or_default(),
            token_url: self.token_url(),
        }
    }

    /// fctr's app registration (secret; the [`FakeEntraState::certificate`] is registered on it too).
    pub fn app(&self) -> AppCredentials {
        self.credentials(&self.opts.client_id)
    }

    /// fctr's app client secret.
    pub fn client_secret(&self) -> SecretString {
        self.app().client_secret
    }

    /// The read-only app registration ([`READER_PERMISSIONS`]), for 403 checks.
    pub fn reader_app(&self) -> AppCredentials {
        self.credentials(READER_CLIENT_ID)
    }

    /// The MFA client's service principal credential (secret; the certificate is registered on it too).
    pub fn mfa_client(&self) -> AppCredentials {
        self.credentials(MFA_CLIENT_ID)
    }

    /// The certificate registered on fctr's app and the MFA client.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The portal app for agent sign-in (redirect URIs as registered now).
    pub fn oidc_client(&self) -> OidcClient {
        OidcClient {
            client_id: self.shared.cfg.portal_client_id.clone(),
            client_secret: SecretString::from(self.shared.cfg.portal_client_secret.clone()),
            redirect_uris: self.shared.lock().redirect_uris.clone(),
            issuer: self.issuer(),
        }
    }

    /// Registers another exact redirect URI on the portal app.
    pub fn add_redirect_uri(&self, uri: impl Into<String>) {
        let uri = uri.into();
        let mut inner = self.shared.lock();
        if !inner.redirect_uris.contains(&uri) {
            inner.redirect_uris.push(uri);
        }
    }

    /// Replaces the Graph permissions granted to an app (takes effect for tokens minted afterwards).
    pub fn set_app_permissions(&self, client_id: &str, permissions: &[&str]) {
        let mut inner = self.shared.lock();
        if let Some(a) = inner
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
        {
            a.permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
        }
    }

    /// The seeded fixture tenant.
    pub fn fixtures(&self) -> &Fixtures {
        &self.shared.fixtures
    }

    /// Simulated phones: pending pushes and calls, and answers.
    pub fn phones(&self) -> Phones {
        Phones::new(self.clone())
    }

    /// Fault injection on Graph routes.
    pub fn faults(&self) -> Faults {
        Faults::new(&self.shared.core)
    }

    /// OIDC test hooks (tampered next ID token).
    pub fn oidc(&self) -> OidcControl {
        OidcControl::new(&self.shared.core, self.clone())
    }

    /// Side-effect counters of a user (by id or UPN).
    pub fn effects(&self, user: &str) -> Option<Effects> {
        let inner = self.shared.lock();
        inner.user_idx(user).map(|i| inner.users[i].effects.clone())
    }

    /// `accountEnabled` of a user (by id or UPN).
    pub fn account_enabled(&self, user: &str) -> Option<bool> {
        let inner = self.shared.lock();
        inner.user_idx(user).map(|i| inner.users[i].account_enabled)
    }

    /// Puts a user in or out of the Temporary Access Pass policy's scope.
    pub fn set_tap_policy_disabled(&self, user: &str, disabled: bool) -> bool {
        let mut inner = self.shared.lock();
        match inner.user_idx(user) {
            Some(i) => {
                inner.users[i].tap_policy_disabled = disabled;
                true
            }
            None => false,
        }
    }

    /// How the beta `signInPreferences` read answers from now on (served, 403 or 404).
    pub fn set_sign_in_preferences(&self, mode: SignInPreferences) {
        self.shared.lock().sign_in_preferences = mode;
    }

    /// The id of the user's default MFA method (by id or UPN): `None` for an unknown user or one without a
    /// default. Seeded as the Authenticator, else the mobile phone, else the software OATH app.
    pub fn default_method(&self, user: &str) -> Option<String> {
        let inner = self.shared.lock();
        inner.users[inner.user_idx(user)?].default_method.clone()
    }

    /// Makes the method with this id the user's default MFA method (`None`: no default), as the user would in
    /// their security info. Returns false for an unknown user, or a method id the user does not have.
    pub fn set_default_method(&self, user: &str, method_id: Option<&str>) -> bool {
        let mut inner = self.shared.lock();
        let Some(i) = inner.user_idx(user) else {
            return false;
        };
        let u = &mut inner.users[i];
        match method_id {
            None => u.default_method = None,
            Some(id) => match u.methods.iter().find(|m| m.id.eq_ignore_ascii_case(id)) {
                Some(m) => u.default_method = Some(m.id.clone()),
                None => return false,
            },
        }
        true
    }

    /// Registers another method of this kind on the user (by id or UPN), with a fresh id, as the user would in
    /// their security info; returns its id. `None` for an unknown user, or a second phone method (the fake keeps
    /// one `mobile` number).
    pub fn register_method(&self, user: &str, method: FixtureMethod) -> Option<String> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let i = inner.user_idx(user)?;
        let handle = self.shared.fixtures.user(&inner.users[i].id).cloned()?;
        let id = if method == FixtureMethod::MobilePhone {
            if inner.users[i]
                .methods
                .iter()
                .any(|m| m.kind == state::MethodKind::Phone)
            {
                return None;
            }
            MOBILE_PHONE_METHOD_ID.to_owned()
        } else {
            error::uuid_v4()
        };
        let m = state::seed_method(id.clone(), method, &handle, now);
        inner.users[i].methods.push(m);
        Some(id)
    }

    /// The `@odata.type`s (without `#microsoft.graph.`) of the user's methods, password included, in Graph's
    /// order: what a reset left behind, without personal data. `None` for an unknown user.
    pub fn method_types(&self, user: &str) -> Option<Vec<&'static str>> {
        let inner = self.shared.lock();
        let u = &inner.users[inner.user_idx(user)?];
        Some(u.methods.iter().map(|m| m.kind.odata_type()).collect())
    }

    /// The TOTP code valid now for the user's Authenticator / software OATH methods (by id or UPN).
    pub fn totp_now(&self, user: &str) -> Option<String> {
        let now = self.shared.now_secs();
        let inner = self.shared.lock();
        let u = &inner.users[inner.user_idx(user)?];
        let secret = u.totp_secret.as_ref()?;
        Some(crate::common::totp::totp_at(secret, now))
    }

    /// Moves the fake's clock by `seconds` (token and TAP expiry, push timeouts, TOTP).
    pub fn advance_clock(&self, seconds: i64) {
        self.core().clock.advance(seconds);
    }

    /// Sets the per-route Graph rate limit (requests per minute) and clears the counters.
    pub fn set_rate_limit(&self, per_minute: u32) {
        self.core().edge().set_rate_limit(per_minute);
    }

    /// The request log of the vendor API: how many requests each `METHOD route-template` received (let through
    /// or refused) since start or the last call, which empties it. Tests count an adapter's calls by kind with it.
    pub fn take_requests(&self) -> std::collections::BTreeMap<String, u64> {
        self.core().edge().take_requests()
    }

    pub(crate) fn options(&self) -> &FakeEntraOptions {
        &self.opts
    }
}

impl Launch for FakeEntraState {
    type Options = FakeEntraOptions;
    const NAME: &'static str = "fake entra";
    const SERVER_NAME: &'static str = "FakeEntra";

    fn listen(options: &FakeEntraOptions) -> SocketAddr {
        options.listen
    }

    fn build(options: &FakeEntraOptions, base_url: Url) -> Result<Self, StartError> {
        Self::new(options, base_url)
    }

    fn router(self) -> axum::Router {
        router(self)
    }
}

/// The fake's routes: login authority, Graph (with request-id, throttling and fault layers), the connector and
/// `/_fake/…`.
pub fn router(state: FakeEntraState) -> axum::Router {
    edge::build_router(state)
}
