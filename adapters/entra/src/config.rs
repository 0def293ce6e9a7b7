//! Configuration: tenant, endpoints, credentials, timeouts, TAP bounds and the optional MFA connector.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::SecretString;
use std::fmt;
use std::time::Duration;
use url::Url;

/// The User-Agent sent when [`EntraConfig::user_agent`] is left at its default.
pub const DEFAULT_USER_AGENT: &str = concat!("fctr-entra/", env!("CARGO_PKG_VERSION"));

/// The public Entra authority (token endpoint host).
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";

/// The Microsoft Graph v1.0 base URL.
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.microsoft.com/v1.0/";

/// The app id of Microsoft's first-party "Azure Multi-Factor Auth Client" application, whose service principal
/// holds the MFA connector credential.
pub const MFA_CONNECTOR_CLIENT_ID: &str = "981f26a1-7f43-403b-a875-f8b09b8cd720";

/// The MFA connector's current host and path (the legacy `adnotifications.windowsazure.com` host shares the
/// token audience).
pub const DEFAULT_MFA_CONNECTOR_ENDPOINT: &str = "https://strongauthenticationservice.auth.microsoft.com/StrongAuthenticationService.svc/Connector/";

/// Why a configuration was refused. Messages name the field and the rule, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A URL is not `https` (plain `http` is accepted only on a loopback host, for tests and local fakes).
    #[error("{field} must use https (http is allowed only for a loopback host)")]
    InsecureUrl {
        /// The configuration field.
        field: &'static str,
    },
    /// A URL cannot serve as a base (no host, or it carries a query or fragment).
    #[error("{field} must be an absolute http(s) URL with a host and no query or fragment")]
    BadUrl {
        /// The configuration field.
        field: &'static str,
    },
    /// The tenant id is empty or holds characters other than letters, digits, `-` and `.`.
    #[error(
        "tenant_id must be the directory (tenant) id GUID or a verified domain: letters, digits, '-' and '.'"
    )]
    BadTenant,
    /// A client id is not a GUID.
    #[error("{field} must be the application (client) id GUID")]
    BadClientId {
        /// The configuration field.
        field: &'static str,
    },
    /// The client secret is empty.
    #[error("{field}: the client secret is empty")]
    EmptySecret {
        /// The configuration field.
        field: &'static str,
    },
    /// The private key is not an RSA PEM key that can sign.
    #[error(
        "{field}: the private key is not a usable RSA key in PEM form (PKCS#1 or PKCS#8, unencrypted)"
    )]
    BadPrivateKey {
        /// The configuration field.
        field: &'static str,
    },
    /// The certificate reference does not fit the chosen algorithm, or a thumbprint is not well formed.
    #[error("{field}: {rule}")]
    BadCertificate {
        /// The configuration field.
        field: &'static str,
        /// What is wrong.
        rule: &'static str,
    },
    /// A timeout is zero.
    #[error("{field} must be greater than zero")]
    ZeroTimeout {
        /// The configuration field.
        field: &'static str,
    },
    /// The user agent is empty or not a valid header value.
    #[error("user_agent must be a non-empty, visible-ASCII header value")]
    BadUserAgent,
    /// The TAP lifetime bounds are outside Entra's 10–43200 minutes or min > max.
    #[error(
        "tap: lifetimes must satisfy 10 <= min_lifetime_minutes <= max_lifetime_minutes <= 43200"
    )]
    BadTapBounds,
    /// A connector text setting is empty, too long or holds characters other than letters, digits, `-`, `_`, `.`.
    #[error("{field} must be 1-32 characters of letters, digits, '-', '_' or '.'")]
    BadConnectorText {
        /// The configuration field.
        field: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built (TLS backend initialisation failed)")]
    HttpClient,
}

/// The client-assertion signature algorithm for certificate credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256, header `x5t#S256` (base64url SHA-256 of the certificate DER). What the current
    /// Microsoft identity platform documentation specifies.
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, header `x5t` (base64url SHA-1 of the certificate DER). The older form
    /// still used by tools such as the NPS extension; whether it stays accepted everywhere is uncertain.
    Rs256,
}

/// Which certificate signs the assertion: the certificate itself, or its thumbprint.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateRef {
    /// The DER bytes of the certificate uploaded to the app registration; both thumbprints are computed from it.
    Der(Vec<u8>),
    /// The SHA-256 thumbprint, as hex (64 digits) or base64url (43 characters). Works with
    /// [`AssertionAlgorithm::Ps256`] only.
    Sha256Thumbprint(String),
    /// The SHA-1 thumbprint, as hex (40 digits, what the Entra portal shows) or base64url (27 characters). Works
    /// with [`AssertionAlgorithm::Rs256`] only.
    Sha1Thumbprint(String),
}

impl fmt::Debug for CertificateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Certificates and thumbprints are public, but there is no need to print kilobytes of DER.
        match self {
            Self::Der(d) => write!(f, "Der({} bytes)", d.len()),
            Self::Sha256Thumbprint(t) => f.debug_tuple("Sha256Thumbprint").field(t).finish(),
            Self::Sha1Thumbprint(t) => f.debug_tuple("Sha1Thumbprint").field(t).finish(),
        }
    }
}

/// How fctr authenticates to Entra (client credentials).
#[derive(Clone)]
#[non_exhaustive]
pub enum EntraCredential {
    /// A client secret from the app registration (Certificates & secrets). Simpler, but a bearer secret: prefer a
    /// certificate.
    ClientSecret(SecretString),
    /// A certificate: the private key signs a client assertion (RFC 7523); only the public certificate is
    /// uploaded to Entra.
    Certificate {
        /// The RSA private key, PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, unencrypted).
        private_key_pem: SecretString,
        /// The certificate (or its thumbprint) registered on the app.
        certificate: CertificateRef,
        /// The assertion's signature algorithm and thumbprint header.
        algorithm: AssertionAlgorithm,
    },
}

impl EntraCredential {
    /// A client-secret credential.
    #[must_use]
    pub fn client_secret(secret: SecretString) -> Self {
        Self::ClientSecret(secret)
    }

    /// A certificate credential with the default algorithm (PS256, `x5t#S256`).
    #[must_use]
    pub fn certificate(private_key_pem: SecretString, certificate: CertificateRef) -> Self {
        Self::Certificate {
            private_key_pem,
            certificate,
            algorithm: AssertionAlgorithm::Ps256,
        }
    }
}

impl fmt::Debug for EntraCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret(_) => f.write_str("ClientSecret([redacted])"),
            Self::Certificate {
                certificate,
                algorithm,
                ..
            } => f
                .debug_struct("Certificate")
                .field("private_key_pem", &"[redacted]")
                .field("certificate", certificate)
                .field("algorithm", algorithm)
                .finish(),
        }
    }
}

/// How [`UserQuery::NamePrefix`](fctr_ports::UserQuery) searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NameSearch {
    /// `$search="displayName:…"` with `ConsistencyLevel: eventual`: matches the start of any word of the
    /// display name ("jo" finds "Mary Jones"), but reads an index that may lag a few minutes behind.
    #[default]
    Search,
    /// `$filter=startsWith(displayName,'…') or startsWith(givenName,'…') or startsWith(surname,'…')`: a basic
    /// query, always current, matching only the start of those fields.
    StartsWith,
}

/// Bounds for Temporary Access Pass lifetimes. Set them to the tenant's TAP policy (Entra ships 60–480 minutes):
/// a requested lifetime outside them is clamped into them before the request, so Graph does not refuse it; the
/// receipt carries the real expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapBounds {
    /// Shortest lifetime sent, in minutes (Entra minimum 10).
    pub min_lifetime_minutes: u32,
    /// Longest lifetime sent, in minutes (Entra maximum 43200).
    pub max_lifetime_minutes: u32,
}

impl Default for TapBounds {
    fn default() -> Self {
        Self {
            min_lifetime_minutes: 60,
            max_lifetime_minutes: 480,
        }
    }
}

/// How the connector checks a one-time code (both forms are unofficial; see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConnectorOtpMode {
    /// What the NPS extension does for number-matching users: `AuthenticationMethodId=PhoneAppNotification`
    /// with `OverrideNumberMatchingWithOTP=true` and `SyncCall=true`; the connector answers
    /// `AuthenticationResult=challenge` and the code goes to `EndTwoWayAuthentication`. Any other answer (for
    /// example a push that was sent anyway) is refused, never taken as a verified code.
    #[default]
    NumberMatchingOverride,
    /// What the AD FS adapter does: `AuthenticationMethodId=PhoneAppOTP`, `SyncCall=false`; a `challenge` or an
    /// empty (nil) result with a session id leads to `EndTwoWayAuthentication` with the code.
    PhoneAppOtp,
}

/// Settings for the unofficial Azure MFA connector (the service the NPS extension and the AD FS adapter call).
/// Without them the adapter offers no push and no code check.
#[derive(Clone)]
pub struct MfaConnectorConfig {
    /// The client id to authenticate as: Microsoft's "Azure Multi-Factor Auth Client"
    /// ([`MFA_CONNECTOR_CLIENT_ID`]), whose service principal in your tenant carries the credential below.
    pub client_id: String,
    /// The credential added to that service principal (secret or certificate).
    pub credential: EntraCredential,
    /// The connector base URL, ending in `/Connector/` ([`DEFAULT_MFA_CONNECTOR_ENDPOINT`]).
    /// `BeginTwoWayAuthentication` and `EndTwoWayAuthentication` are appended.
    pub endpoint: Url,
    /// The language of the prompt (`Lcid`), default `en-us`.
    pub lcid: String,
    /// The `CallerName` the connector records (default `fctr`).
    pub caller_name: String,
    /// How long a push may wait for the user (the connector call blocks until an answer or its own timeout);
    /// also the ticket's expiry. Default 90 s.
    pub push_timeout: Duration,
    /// How codes are checked.
    pub otp_mode: ConnectorOtpMode,
    /// Most pushes waiting at once in this process; more are refused as rate limited. Default 256.
    pub max_pending_pushes: usize,
}

impl MfaConnectorConfig {
    /// Connector settings with defaults, for a credential on the MFA client service principal.
    ///
    /// # Errors
    /// Never in practice: the default endpoint is a constant that parses.
    pub fn new(credential: EntraCredential) -> Result<Self, ConfigError> {
        Ok(Self {
            client_id: MFA_CONNECTOR_CLIENT_ID.to_owned(),
            credential,
            endpoint: Url::parse(DEFAULT_MFA_CONNECTOR_ENDPOINT).map_err(|_| {
                ConfigError::BadUrl {
                    field: "connector.endpoint",
                }
            })?,
            lcid: "en-us".to_owned(),
            caller_name: "fctr".to_owned(),
            push_timeout: Duration::from_secs(90),
            otp_mode: ConnectorOtpMode::default(),
            max_pending_pushes: 256,
        })
    }
}

impl fmt::Debug for MfaConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaConnectorConfig")
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("endpoint", &self.endpoint.as_str())
            .field("lcid", &self.lcid)
            .field("caller_name", &self.caller_name)
            .field("push_timeout", &self.push_timeout)
            .field("otp_mode", &self.otp_mode)
            .field("max_pending_pushes", &self.max_pending_pushes)
            .finish()
    }
}

/// Everything the Entra adapter needs. Build with [`EntraConfig::new`], adjust the public fields, then hand it to
/// [`EntraAdapter::new`](crate::EntraAdapter::new), which validates it.
#[derive(Clone)]
pub struct EntraConfig {
    /// The directory (tenant) id GUID (or a verified domain). Not `common` or `organizations`.
    pub tenant_id: String,
    /// The application (client) id GUID of fctr's app registration.
    pub client_id: String,
    /// The app's credential.
    pub credential: EntraCredential,
    /// The authority base URL ([`DEFAULT_AUTHORITY`]); the token endpoint is
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: Url,
    /// The Graph base URL ([`DEFAULT_GRAPH_BASE`], i.e. `…/v1.0/`).
    pub graph_base: Url,
    /// TCP + TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Whole-request timeout for Graph and token calls. Default 20 s.
    pub request_timeout: Duration,
    /// The User-Agent header ([`DEFAULT_USER_AGENT`]).
    pub user_agent: String,
    /// How many times a GET answered 429 is re-sent (after `Retry-After`). Default 2.
    pub max_rate_limit_retries: u32,
    /// The longest `Retry-After` waited out; a longer one is returned as
    /// [`PortError::RateLimited`](fctr_ports::PortError). Default 10 s.
    pub max_retry_wait: Duration,
    /// How name prefixes are searched.
    pub name_search: NameSearch,
    /// Temporary Access Pass lifetime bounds.
    pub tap: TapBounds,
    /// Allow setting a temporary password on users synced from on-premises AD (`onPremisesSyncEnabled=true`).
    /// Off by default: without password writeback the cloud password may be overwritten by the next sync, and
    /// Microsoft's documentation is unclear about this case. When off, the adapter reads the user first and
    /// answers [`PortError::InvalidState`](fctr_ports::PortError) for a synced user.
    pub allow_password_set_on_synced_users: bool,
    /// The unofficial MFA connector (push and code checks). `None` (the default): no push, no code check.
    pub connector: Option<MfaConnectorConfig>,
    /// The network path to Entra (a forward proxy, a source address) for every Graph, token and connector
    /// request. Default: direct. Environment proxies (`HTTP_PROXY`, `HTTPS_PROXY`) never apply; a configured proxy
    /// is used for every request, loopback included, and an unreachable one fails the request (never a direct
    /// retry).
    pub egress: fctr_ports::Egress,
}

impl EntraConfig {
    /// A configuration with the public-cloud endpoints and default timeouts.
    ///
    /// # Errors
    /// Never in practice: the default URLs are constants that parse. Validation happens in
    /// [`EntraAdapter::new`](crate::EntraAdapter::new).
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: EntraCredential,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            authority: Url::parse(DEFAULT_AUTHORITY)
                .map_err(|_| ConfigError::BadUrl { field: "authority" })?,
            graph_base: Url::parse(DEFAULT_GRAPH_BASE).map_err(|_| ConfigError::BadUrl {
                field: "graph_base",
            })?,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            max_rate_limit_retries: 2,
            max_retry_wait: Duration::from_secs(10),
            name_search: NameSearch::default(),
            tap: TapBounds::default(),
            allow_password_set_on_synced_users: false,
            connector: None,
            egress: fctr_ports::Egress::direct(),
        })
    }
}

impl fmt::Debug for EntraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("authority", &self.authority.as_str())
            .field("graph_base", &self.graph_base.as_str())
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("max_rate_limit_retries", &self.max_rate_limit_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .field("name_search", &self.name_search)
            .field("tap", &self.tap)
            .field(
                "allow_password_set_on_synced_users",
                &self.allow_password_set_on_synced_users,
            )
            .field("connector", &self.connector)
            .field("egress", &self.egress)
            .finish()
    }
}

// ---- validation helpers (crate-internal) ----

/// Checks a base URL and returns it with exactly one trailing slash on its path.
pub(crate) fn base_url(url: &Url, field: &'static str) -> Result<Url, ConfigError> {
    if url.cannot_be_a_base()
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::BadUrl { field });
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => return Err(ConfigError::InsecureUrl { field }),
        _ => return Err(ConfigError::BadUrl { field }),
    }
    let mut u = url.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) fn check_tenant(t: &str) -> Result<(), ConfigError> {
    let ok = !t.is_empty()
        && t.len() <= 253
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !t.starts_with('.')
        && !matches!(
            t.to_ascii_lowercase().as_str(),
            "common" | "organizations" | "consumers"
        );
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadTenant)
    }
}

pub(crate) fn check_client_id(id: &str, field: &'static str) -> Result<(), ConfigError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ConfigError::BadClientId { field })
}

pub(crate) fn check_connector_text(s: &str, field: &'static str) -> Result<(), ConfigError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadConnectorText { field })
    }
}

/// Decodes a thumbprint given as hex or base64url into `len` bytes.
pub(crate) fn thumbprint_bytes(s: &str, len: usize) -> Option<Vec<u8>> {
    let s = s.trim();
    let cleaned: String = s.chars().filter(|c| *c != ':').collect();
    if cleaned.len() == len * 2 {
        if let Ok(b) = hex::decode(&cleaned) {
            return Some(b);
        }
    }
    if let Ok(b) = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')) {
        if b.len() == len {
            return Some(b);
        }
    }
    if let Ok(b) = STANDARD.decode(s) {
        if b.len() == len {
            return Some(b);
        }
    }
    None
}
