//! Configuration: where the org is, how to authenticate, how patient to be.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// The default User-Agent: Okta shows it in the push notification, so it names the product plainly.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "fctr/",
    env!("CARGO_PKG_VERSION"),
    " (helpdesk-verification)"
);

/// The OAuth scopes this adapter asks for, space-separated as the token endpoint wants them.
pub const SCOPES: &str = "okta.users.read okta.users.manage";

/// How the adapter authenticates to the Okta management API.
#[non_exhaustive]
pub enum OktaAuth {
    /// An SSWS API token (`Authorization: SSWS …`). It carries the privileges of the admin who created it;
    /// Okta recommends an OAuth service app instead.
    ApiToken(SecretString),
    /// An OAuth 2.0 service app using the client-credentials grant with a `private_key_jwt` client assertion,
    /// against the org authorization server (`{org}/oauth2/v1/token`).
    PrivateKeyJwt {
        /// The service app's client id (`0oa…`).
        client_id: String,
        /// The `kid` of the public key registered on the app.
        key_id: String,
        /// The private key, PEM: PKCS#8 (`PRIVATE KEY`) for ES256 (P-256), PKCS#8 or PKCS#1 (`RSA PRIVATE KEY`)
        /// for RS256.
        private_key_pem: SecretString,
        /// The assertion's signing algorithm; must match the key.
        algorithm: SigningAlgorithm,
        /// Bind tokens to an ephemeral key with DPoP (RFC 9449). Turn on when the app has "Require DPoP" set.
        dpop: bool,
    },
}

impl OktaAuth {
    /// Short name of the mode, for logs and `Debug`.
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match self {
            Self::ApiToken(_) => "ssws",
            Self::PrivateKeyJwt { dpop: true, .. } => "private_key_jwt+dpop",
            Self::PrivateKeyJwt { .. } => "private_key_jwt",
        }
    }
}

impl fmt::Debug for OktaAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiToken(_) => f.write_str("ApiToken([redacted])"),
            Self::PrivateKeyJwt {
                client_id,
                key_id,
                algorithm,
                dpop,
                ..
            } => f
                .debug_struct("PrivateKeyJwt")
                .field("client_id", client_id)
                .field("key_id", key_id)
                .field("private_key_pem", &"[redacted]")
                .field("algorithm", algorithm)
                .field("dpop", dpop)
                .finish(),
        }
    }
}

/// The client-assertion signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl SigningAlgorithm {
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// Everything the adapter needs. Build with [`OktaConfig::new`] and adjust the public fields.
#[derive(Debug)]
#[non_exhaustive]
pub struct OktaConfig {
    /// The org base URL, e.g. `https://acme.okta.com` (or the org's custom domain). Must be `https`, except
    /// `http` on a loopback address for tests and fakes; no path, query, fragment or credentials.
    pub org_url: Url,
    /// How to authenticate.
    pub auth: OktaAuth,
    /// TCP + TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, read the body). Default 15 s.
    pub request_timeout: Duration,
    /// The User-Agent header (Okta shows it in push notifications). Default [`DEFAULT_USER_AGENT`].
    pub user_agent: String,
    /// How many times a GET refused with 429 is re-sent. Default 2. POST and DELETE never are.
    pub max_rate_limit_retries: u32,
    /// The longest single wait before re-sending a rate-limited GET. Default 10 s; a longer reset is returned
    /// as [`fctr_ports::PortError::RateLimited`] instead of waited out.
    pub max_retry_wait: Duration,
    /// The largest `retry_after` ever reported in [`fctr_ports::PortError::RateLimited`]. Default 5 min.
    pub max_reported_retry_after: Duration,
    /// When the remaining rate-limit budget of an endpoint falls under [`OktaConfig::slow_down_below`] of its
    /// limit, each later request to it first sleeps up to this long (spreading what is left until the reset).
    /// Default 2 s; zero turns slowing down off.
    pub max_slow_down: Duration,
    /// The fraction of the limit under which requests slow down. Default 0.05.
    pub slow_down_below: f64,
    /// The most requests this adapter has at the org at once; more wait their turn. Default 16. Okta refuses an
    /// org's requests over its concurrency limit (75 simultaneous by default, 35 on the Integrator Free plan,
    /// shared by everything in the tenant) with 429, and a burst of polls (many pushes sent together) would
    /// otherwise open a connection each. Between 1 and 75; with several replicas each has its own.
    pub max_in_flight: usize,
    /// The network path to the org (a forward proxy, a source address). Default: direct. Environment proxies
    /// (`HTTP_PROXY`, `HTTPS_PROXY`) never apply; a configured proxy is used for every request, token requests
    /// and loopback orgs included, and an unreachable one fails the request (never a direct retry).
    pub egress: fctr_ports::Egress,
}

/// The default of [`OktaConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

impl OktaConfig {
    /// A configuration with default timeouts, retries and User-Agent. Validation happens in
    /// [`crate::OktaAdapter::new`].
    #[must_use]
    pub fn new(org_url: Url, auth: OktaAuth) -> Self {
        Self {
            org_url,
            auth,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            max_rate_limit_retries: 2,
            max_retry_wait: Duration::from_secs(10),
            max_reported_retry_after: Duration::from_secs(300),
            max_slow_down: Duration::from_secs(2),
            slow_down_below: 0.05,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            egress: fctr_ports::Egress::direct(),
        }
    }
}

/// Why a configuration was refused. Messages name the rule, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The org URL is not usable.
    #[error("org URL: {0}")]
    OrgUrl(&'static str),
    /// A required field is empty or malformed.
    #[error("{field}: {problem}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The private key cannot be read or does not fit the algorithm.
    #[error("private key: {0}")]
    PrivateKey(&'static str),
    /// A timeout or retry setting is out of range.
    #[error("{0}")]
    Limits(&'static str),
    /// The HTTP client could not be built (TLS backend).
    #[error("HTTP client could not be built")]
    HttpClient,
    /// The ephemeral DPoP key could not be generated.
    #[error("DPoP key could not be generated")]
    DpopKey,
}

/// Whether a URL's host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Validates the org URL and returns it normalised (no trailing path).
pub(crate) fn validate_org_url(url: &Url) -> Result<Url, ConfigError> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => {
            return Err(ConfigError::OrgUrl(
                "must use https (plain http is allowed only on loopback, for tests)",
            ));
        }
        _ => return Err(ConfigError::OrgUrl("must be an https URL")),
    }
    let Some(host) = url.host_str() else {
        return Err(ConfigError::OrgUrl("has no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::OrgUrl("must not contain credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::OrgUrl("must not have a query or fragment"));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(ConfigError::OrgUrl(
            "must be the org's base URL, with no path (e.g. https://acme.okta.com)",
        ));
    }
    let h = host.to_ascii_lowercase();
    let okta_domain = [
        "okta.com",
        "oktapreview.com",
        "okta-emea.com",
        "okta-gov.com",
        "okta.mil",
    ]
    .iter()
    .any(|d| h.ends_with(&format!(".{d}")));
    if okta_domain && h.contains("-admin.") {
        return Err(ConfigError::OrgUrl(
            "is the admin console domain (`…-admin.okta.com`); use the org domain without `-admin`",
        ));
    }
    let mut u = url.clone();
    u.set_path("/");
    Ok(u)
}

/// Checks that the key parses and can sign with the configured algorithm (a trial signature).
pub(crate) fn validate_key(
    pem: &SecretString,
    algorithm: SigningAlgorithm,
) -> Result<(), ConfigError> {
    let bytes = pem.expose_secret().as_bytes();
    let trimmed = pem.expose_secret().trim_start();
    if !trimmed.starts_with("-----BEGIN ") {
        return Err(ConfigError::PrivateKey(
            "not PEM (expected a block starting with `-----BEGIN PRIVATE KEY-----`)",
        ));
    }
    if trimmed.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY") {
        return Err(ConfigError::PrivateKey(
            "encrypted PEM is not supported; provide an unencrypted PKCS#8 key from a secret store",
        ));
    }
    let key = match algorithm {
        SigningAlgorithm::Es256 => {
            if trimmed.starts_with("-----BEGIN EC PRIVATE KEY") {
                return Err(ConfigError::PrivateKey(
                    "SEC1 `EC PRIVATE KEY` is not supported; convert to PKCS#8 with \
                     `openssl pkcs8 -topk8 -nocrypt`",
                ));
            }
            jsonwebtoken::EncodingKey::from_ec_pem(bytes).map_err(|_| {
                ConfigError::PrivateKey(
                    "cannot be read as a PKCS#8 EC private key (ES256 needs a P-256 key)",
                )
            })?
        }
        SigningAlgorithm::Rs256 => {
            jsonwebtoken::EncodingKey::from_rsa_pem(bytes).map_err(|_| {
                ConfigError::PrivateKey(
                    "cannot be read as an RSA private key (RS256 needs an RSA key)",
                )
            })?
        }
    };
    let header = jsonwebtoken::Header::new(algorithm.jwt());
    let probe = serde_json::json!({ "probe": true });
    jsonwebtoken::encode(&header, &probe, &key).map_err(|_| {
        ConfigError::PrivateKey(match algorithm {
            SigningAlgorithm::Es256 => {
                "does not sign with ES256 (is it a P-256 key in PKCS#8 form?)"
            }
            SigningAlgorithm::Rs256 => "does not sign with RS256 (is it an RSA key of 2048+ bits?)",
        })
    })?;
    Ok(())
}

pub(crate) fn validate_limits(c: &OktaConfig) -> Result<(), ConfigError> {
    if c.connect_timeout.is_zero() || c.request_timeout.is_zero() {
        return Err(ConfigError::Limits("timeouts must be greater than zero"));
    }
    if c.max_rate_limit_retries > 5 {
        return Err(ConfigError::Limits(
            "max_rate_limit_retries must be at most 5",
        ));
    }
    if c.max_retry_wait > Duration::from_secs(60) {
        return Err(ConfigError::Limits("max_retry_wait must be at most 60 s"));
    }
    if c.max_slow_down > Duration::from_secs(10) {
        return Err(ConfigError::Limits("max_slow_down must be at most 10 s"));
    }
    if !(1..=75).contains(&c.max_in_flight) {
        return Err(ConfigError::Limits(
            "max_in_flight must be between 1 and 75 (Okta's default concurrency limit per org)",
        ));
    }
    if !(0.0..=0.5).contains(&c.slow_down_below) {
        return Err(ConfigError::Limits(
            "slow_down_below must be between 0 and 0.5",
        ));
    }
    if c.user_agent.trim().is_empty()
        || c.user_agent.len() > 200
        || !c
            .user_agent
            .chars()
            .all(|ch| ch.is_ascii_graphic() || ch == ' ')
    {
        return Err(ConfigError::Field {
            field: "user_agent",
            problem: "must be 1-200 printable ASCII characters",
        });
    }
    Ok(())
}

pub(crate) fn validate_client_field(field: &'static str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() {
        return Err(ConfigError::Field {
            field,
            problem: "is empty",
        });
    }
    if v.len() > 255 || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ConfigError::Field {
            field,
            problem: "must be at most 255 printable ASCII characters without spaces",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn org_url_rules() {
        assert!(validate_org_url(&u("https://acme.okta.com")).is_ok());
        assert!(validate_org_url(&u("https://acme.okta.com/")).is_ok());
        assert!(validate_org_url(&u("http://127.0.0.1:8080")).is_ok());
        assert!(validate_org_url(&u("http://[::1]:8080")).is_ok());
        assert!(validate_org_url(&u("http://localhost:1")).is_ok());
        for bad in [
            "http://acme.okta.com",
            "ftp://acme.okta.com",
            "https://acme.okta.com/oauth2/default",
            "https://acme.okta.com/?x=1",
            "https://acme.okta.com/#x",
            "https://user:pw@acme.okta.com",
            "https://acme-admin.okta.com",
            "http://10.0.0.1",
        ] {
            assert!(validate_org_url(&u(bad)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn key_errors_are_clear_and_secret_free() {
        let pem = SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nQ0FOQVJZ\n-----END PRIVATE KEY-----\n",
        );
        let e = validate_key(&pem, SigningAlgorithm::Es256).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("private key:"), "{s}");
        assert!(!s.contains("Q0FOQVJZ"));
        let e = validate_key(&SecretString::from("CANARY"), SigningAlgorithm::Rs256).unwrap_err();
        assert!(e.to_string().contains("not PEM"));
        assert!(!e.to_string().contains("CANARY"));
        let e = validate_key(
            &SecretString::from(
                "-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----",
            ),
            SigningAlgorithm::Es256,
        )
        .unwrap_err();
        assert!(e.to_string().contains("PKCS#8"));
    }

    #[test]
    fn auth_debug_redacts() {
        let a = OktaAuth::ApiToken(SecretString::from("CANARY-TOKEN"));
        assert!(!format!("{a:?}").contains("CANARY"));
        let a = OktaAuth::PrivateKeyJwt {
            client_id: "0oa1".into(),
            key_id: "kid1".into(),
            private_key_pem: SecretString::from("CANARY-PEM"),
            algorithm: SigningAlgorithm::Es256,
            dpop: true,
        };
        let s = format!("{a:?}");
        assert!(!s.contains("CANARY") && s.contains("0oa1"));
    }
}
