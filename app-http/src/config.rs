//! The portal's configuration: one TOML file, `FCTR_…` environment overrides, secrets only from the environment
//! or files. Unknown keys are errors (with line and column). No file at all means demo mode.
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:8443"
//! public_url = "https://fctr.example.com"   # the origin agents use: redirect URI and CSRF origin check
//! tenant = "acme-prod"
//! behind_tls_proxy = false                   # true: plain HTTP off loopback, a TLS-terminating proxy in front
//!
//! [tls]                                      # the portal terminates TLS itself (TLS 1.2 and 1.3 only)
//! cert_file = "/etc/fctr/tls/cert.pem"       # the chain, leaf first
//! key_file = "/run/secrets/fctr-key.pem"     # PKCS#8, PKCS#1 or SEC1
//!
//! [network]
//! allow = ["10.0.0.0/8", "2001:db8::/32"]    # default: loopback and private ranges
//! trusted_proxies = ["10.0.0.5/32"]          # X-Forwarded-For honoured only from these peers
//!
//! [limits]
//! sign_in_per_ip_per_minute = 30             # /auth/login and /auth/callback, per truncated client IP
//! api_per_agent_per_minute = 120
//! body_limit_bytes = 65536
//! request_timeout_secs = 30
//!
//! [okta]                                     # exactly one of [okta] and [entra]
//! org_url = "https://acme.okta.com"
//! api_token_env = "FCTR_OKTA_TOKEN"          # or api_token_file, or the service app below
//! # client_id = "0oa…"; key_id = "…"; private_key_file = "/run/secrets/okta.pem"; algorithm = "ES256"
//!
//! # [entra]                                  # Microsoft Entra ID instead of [okta]
//! # tenant_id = "00000000-0000-0000-0000-000000000001"
//! # client_id = "00000000-0000-0000-0000-000000000002"
//! # private_key_file = "/run/secrets/fctr-entra.key.pem"   # a certificate (preferred), or
//! # certificate_file = "/etc/fctr/fctr-entra.cer"          # client_secret_env / client_secret_file
//! # [entra.connector]                        # optional, unofficial: Authenticator push and code checks
//! # client_secret_file = "/run/secrets/fctr-mfa-connector"
//!
//! [sign_in]
//! issuer = "https://acme.okta.com"
//! client_id = "0oa…"
//! client_secret_env = "FCTR_OIDC_SECRET"     # or client_secret_file
//! groups_claim = "groups"                    # Entra: "roles"
//! require_mfa = false
//! jwks_refresh_minutes = 60                  # signing keys refetched when this old (and on an unknown key)
//!
//! [policy]
//! file = "/etc/fctr/policy.toml"             # optional: the default policy otherwise
//!
//! [pseudonymization]
//! key_id = "k1"
//! key_env = "FCTR_PSEUDO_KEY"                # or key_file; at least 32 bytes
//!
//! [audit]
//! sqlite_path = "/var/lib/fctr/audit.sqlite"
//!
//! [retention]
//! audit_days = 30
//! usage_days = 1095
//!
//! [session]
//! idle_minutes = 15
//! absolute_hours = 12
//! ```

use base64::Engine as _;
use fctr_entra::{
    AssertionAlgorithm, CertificateRef, ConnectorOtpMode, EntraAdapter, EntraConfig,
    EntraCredential, MfaConnectorConfig, NameSearch, TapBounds,
};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// Why a configuration was refused. Messages name the key and the rule, never a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys (the message has line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is missing or wrong.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key, e.g. `sign_in.issuer`.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening and public address.
    #[serde(default)]
    pub server: ServerConfig,
    /// The Okta org the engine talks to (exactly one of `okta` and `entra`).
    pub okta: Option<OktaSection>,
    /// The Microsoft Entra ID tenant the engine talks to (exactly one of `okta` and `entra`).
    pub entra: Option<EntraSection>,
    /// Agent sign-in (OIDC).
    pub sign_in: Option<SignInSection>,
    /// The policy file.
    #[serde(default)]
    pub policy: PolicySection,
    /// The pseudonymization key.
    pub pseudonymization: Option<PseudoSection>,
    /// The audit store.
    pub audit: Option<AuditSection>,
    /// Retention periods.
    #[serde(default)]
    pub retention: RetentionSection,
    /// Session timeouts.
    #[serde(default)]
    pub session: SessionSection,
    /// TLS termination by the portal itself.
    pub tls: Option<TlsSection>,
    /// The IP allow-list and trusted proxies.
    #[serde(default)]
    pub network: NetworkSection,
    /// Edge rate limits and request hygiene.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Runtime log files (stdout when absent).
    #[serde(default)]
    pub logging: LoggingSection,
    /// `fctr contract-test --mutating` against a real tenant (the portal ignores it).
    pub contract_test: Option<ContractTestSection>,
}

/// `[contract_test]`: who `fctr contract-test --mutating` may change on a real tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractTestSection {
    /// The IdP group (name or id) every test user must be a member of before anything mutating runs.
    pub allowed_group: String,
}

/// `[logging]`: where runtime logs go. Without `dir`, JSON lines on stdout (the default); with it, hourly files
/// `fctr.YYYY-MM-DD-HH.log` in that directory, deleted after `[retention] runtime_log_days` (default 1).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoggingSection {
    /// Directory for log files.
    pub dir: Option<PathBuf>,
}

/// `[tls]`: the portal terminates TLS (1.2 and 1.3 only, ECDHE + AEAD suites only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `[network]`: who may reach the portal at all.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// CIDRs allowed to reach the portal (IPv4 and IPv6). Default: loopback and the private ranges
    /// (10/8, 172.16/12, 192.168/16, fc00::/7). `["0.0.0.0/0", "::/0"]` opens it to everyone.
    pub allow: Option<Vec<String>>,
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed (default: none).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[limits]`: edge rate limits (the engine's own limits are in the policy file) and request hygiene.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Sign-in starts and callbacks per truncated client IP per minute (default 30).
    pub sign_in_per_ip_per_minute: Option<u32>,
    /// API requests per agent per minute (default 120).
    pub api_per_agent_per_minute: Option<u32>,
    /// Largest request body (default 65536).
    pub body_limit_bytes: Option<usize>,
    /// Time allowed to produce a response (default 30).
    pub request_timeout_secs: Option<u64>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address (default `127.0.0.1:8080`).
    pub listen: Option<SocketAddr>,
    /// The origin agents reach the portal at (redirect URI, CSRF origin check, cookie security).
    pub public_url: Option<Url>,
    /// The tenant label (default `default`).
    pub tenant: Option<String>,
    /// A TLS-terminating proxy is in front: plain HTTP may listen on a non-loopback address. Needs
    /// `network.trusted_proxies`, or the allow-list and per-IP limits would only ever see the proxy.
    #[serde(default)]
    pub behind_tls_proxy: bool,
}

/// `[okta]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaSection {
    /// The org URL.
    pub org_url: Url,
    /// Environment variable holding an SSWS API token.
    pub api_token_env: Option<String>,
    /// File holding an SSWS API token.
    pub api_token_file: Option<PathBuf>,
    /// Service app client id (private_key_jwt).
    pub client_id: Option<String>,
    /// Service app key id.
    pub key_id: Option<String>,
    /// Service app private key (PEM file).
    pub private_key_file: Option<PathBuf>,
    /// `ES256` (default) or `RS256`.
    pub algorithm: Option<String>,
    /// Bind the service app's access tokens to a DPoP proof key (RFC 9449), as an Okta app with "Require
    /// DPoP" needs. Only with the service app (`client_id`), not an SSWS token.
    #[serde(default)]
    pub dpop: bool,
}

impl OktaSection {
    /// How to authenticate to Okta: the service app (private_key_jwt, DPoP when `dpop = true`) or the SSWS
    /// token. Secrets and key files are read now.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `okta.…` key.
    pub fn auth(&self) -> Result<OktaAuth, ConfigError> {
        match &self.client_id {
            Some(client_id) => Ok(OktaAuth::PrivateKeyJwt {
                client_id: client_id.clone(),
                key_id: self.key_id.clone().unwrap_or_default(),
                private_key_pem: read_secret(
                    "okta.private_key_file",
                    None,
                    self.private_key_file.as_deref(),
                )?,
                algorithm: if self.algorithm.as_deref() == Some("RS256") {
                    SigningAlgorithm::Rs256
                } else {
                    SigningAlgorithm::Es256
                },
                dpop: self.dpop,
            }),
            None if self.dpop => Err(invalid(
                "okta.dpop",
                "DPoP binds the service app's tokens: set client_id, key_id and private_key_file, or remove dpop",
            )),
            None => Ok(OktaAuth::ApiToken(read_secret(
                "okta.api_token",
                self.api_token_env.as_deref(),
                self.api_token_file.as_deref(),
            )?)),
        }
    }

    /// Builds the adapter (no request is made).
    ///
    /// # Errors
    /// As [`OktaSection::auth`], plus [`ConfigError::Invalid`] naming `okta` with the adapter's own rule (an org
    /// URL that is not https off loopback, or has a path).
    pub fn adapter(&self) -> Result<OktaAdapter, ConfigError> {
        OktaAdapter::new(OktaConfig::new(self.org_url.clone(), self.auth()?))
            .map_err(|e| invalid("okta", e.to_string()))
    }
}

/// `[entra]`: the Microsoft Entra ID tenant (Microsoft Graph with application permissions, client credentials).
/// The credential is a client secret (`client_secret_env` or `client_secret_file`) or, preferred, a certificate
/// (`private_key_file` with exactly one of `certificate_file`, `certificate_sha256`, `certificate_sha1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSection {
    /// The directory (tenant) id GUID, or a verified domain (not `common` or `organizations`).
    pub tenant_id: String,
    /// The application (client) id GUID of fctr's app registration.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The certificate's RSA private key (PEM, PKCS#1 or PKCS#8, unencrypted).
    pub private_key_file: Option<PathBuf>,
    /// The certificate uploaded to the app registration (PEM or DER).
    pub certificate_file: Option<PathBuf>,
    /// The certificate's SHA-256 thumbprint (hex or base64url), instead of `certificate_file`; PS256 only.
    pub certificate_sha256: Option<String>,
    /// The certificate's SHA-1 thumbprint (hex as the Entra admin center shows it), instead of
    /// `certificate_file`; RS256 only.
    pub certificate_sha1: Option<String>,
    /// The client-assertion algorithm: `PS256` (default, header `x5t#S256`) or `RS256` (header `x5t`).
    pub algorithm: Option<String>,
    /// The login authority (default `https://login.microsoftonline.com/`; sovereign clouds and tests set it).
    pub authority: Option<Url>,
    /// The Microsoft Graph base (default `https://graph.microsoft.com/v1.0/`).
    pub graph_base: Option<Url>,
    /// How name prefixes are searched: `search` (default, `$search`) or `starts_with` (`$filter`).
    pub name_search: Option<String>,
    /// Shortest Temporary Access Pass lifetime sent, in minutes (default 60; your TAP policy's minimum).
    pub tap_min_minutes: Option<u32>,
    /// Longest Temporary Access Pass lifetime sent, in minutes (default 480; your TAP policy's maximum).
    pub tap_max_minutes: Option<u32>,
    /// Allow a temporary password on users synced from on-premises AD (only with password writeback).
    #[serde(default)]
    pub allow_password_set_on_synced_users: bool,
    /// The unofficial MFA connector (Authenticator push and code checks). Absent: no push, no code check.
    pub connector: Option<EntraConnectorSection>,
}

/// `[entra.connector]`: the unofficial Azure MFA connector, authenticating as Microsoft's "Azure Multi-Factor
/// Auth Client" service principal with a credential added to it (a secret, or a certificate as for `[entra]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraConnectorSection {
    /// The client id (default `981f26a1-7f43-403b-a875-f8b09b8cd720`, the MFA client app).
    pub client_id: Option<String>,
    /// Environment variable holding the service principal's secret.
    pub client_secret_env: Option<String>,
    /// File holding the service principal's secret.
    pub client_secret_file: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub private_key_file: Option<PathBuf>,
    /// The certificate (PEM or DER).
    pub certificate_file: Option<PathBuf>,
    /// The certificate's SHA-256 thumbprint; PS256 only.
    pub certificate_sha256: Option<String>,
    /// The certificate's SHA-1 thumbprint; RS256 only.
    pub certificate_sha1: Option<String>,
    /// `PS256` (default) or `RS256` (what public tools use for the connector).
    pub algorithm: Option<String>,
    /// The connector base URL, ending in `/Connector/` (default: Microsoft's current host).
    pub endpoint: Option<Url>,
    /// How long a push waits for the user, in seconds (default 90, at most 300).
    pub push_timeout_secs: Option<u64>,
    /// How codes are checked: `number_matching_override` (default, as the NPS extension) or `phone_app_otp`
    /// (as the AD FS adapter).
    pub otp_mode: Option<String>,
    /// The prompt language (default `en-us`).
    pub lcid: Option<String>,
    /// The caller name the connector records (default `fctr`).
    pub caller_name: Option<String>,
    /// Most pushes waiting at once in this process (default 256).
    pub max_pending_pushes: Option<usize>,
}

/// The credential keys of `[entra]` or `[entra.connector]`, with the section's name for errors.
struct CredentialKeys<'a> {
    section: &'static str,
    secret_env: Option<&'a str>,
    secret_file: Option<&'a Path>,
    private_key_file: Option<&'a Path>,
    certificate_file: Option<&'a Path>,
    certificate_sha256: Option<&'a str>,
    certificate_sha1: Option<&'a str>,
    algorithm: Option<&'a str>,
}

impl CredentialKeys<'_> {
    /// Reads the credential: exactly one of a secret and a certificate; files are read now.
    fn read(&self) -> Result<EntraCredential, ConfigError> {
        let sec = self.section;
        let key = |k: &str| format!("{sec}.{k}");
        let secret = self.secret_env.is_some() || self.secret_file.is_some();
        let cert_refs = [
            ("certificate_file", self.certificate_file.is_some()),
            ("certificate_sha256", self.certificate_sha256.is_some()),
            ("certificate_sha1", self.certificate_sha1.is_some()),
        ];
        let given: Vec<&str> = cert_refs
            .iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| *k)
            .collect();
        match (secret, self.private_key_file) {
            (true, Some(_)) => Err(invalid(
                &key("private_key_file"),
                "give a client secret or a certificate, not both",
            )),
            (false, None) => Err(invalid(
                &key("credential"),
                format!(
                    "missing: give private_key_file with certificate_file (a certificate, preferred), or \
                     client_secret_env / client_secret_file; secrets never go in the TOML (under [{sec}])"
                ),
            )),
            (true, None) => {
                if let Some(k) = given.first() {
                    return Err(invalid(
                        &key(k),
                        "only with private_key_file (a certificate)",
                    ));
                }
                if self.algorithm.is_some() {
                    return Err(invalid(
                        &key("algorithm"),
                        "only with private_key_file (a certificate)",
                    ));
                }
                Ok(EntraCredential::client_secret(read_secret(
                    &key("client_secret"),
                    self.secret_env,
                    self.secret_file,
                )?))
            }
            (false, Some(pem)) => {
                let private_key_pem = read_secret(&key("private_key_file"), None, Some(pem))?;
                let algorithm = match self.algorithm {
                    None | Some("PS256") => AssertionAlgorithm::Ps256,
                    Some("RS256") => AssertionAlgorithm::Rs256,
                    Some(_) => return Err(invalid(&key("algorithm"), "PS256 or RS256")),
                };
                let certificate = match (
                    given.len(),
                    self.certificate_file,
                    self.certificate_sha256,
                    self.certificate_sha1,
                ) {
                    (0, ..) => {
                        return Err(invalid(
                            &key("certificate_file"),
                            "required with private_key_file (or certificate_sha256 / certificate_sha1)",
                        ));
                    }
                    (2.., ..) => {
                        return Err(invalid(
                            &key("certificate_file"),
                            "give one of certificate_file, certificate_sha256, certificate_sha1",
                        ));
                    }
                    (_, Some(f), _, _) => {
                        CertificateRef::Der(read_certificate(&key("certificate_file"), f)?)
                    }
                    (_, None, Some(t), _) => CertificateRef::Sha256Thumbprint(t.to_owned()),
                    (_, None, None, Some(t)) => CertificateRef::Sha1Thumbprint(t.to_owned()),
                    (_, None, None, None) => {
                        return Err(invalid(&key("certificate_file"), "missing"));
                    }
                };
                Ok(EntraCredential::Certificate {
                    private_key_pem,
                    certificate,
                    algorithm,
                })
            }
        }
    }
}

/// Reads a certificate file: PEM (`-----BEGIN CERTIFICATE-----`) or DER. Certificates are public.
fn read_certificate(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let Some(text) = std::str::from_utf8(&bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN CERTIFICATE-----"))
    else {
        if bytes.is_empty() {
            return Err(invalid(key, format!("{} is empty", path.display())));
        }
        return Ok(bytes);
    };
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| invalid(key, format!("{}: not a PEM certificate", path.display())))
}

fn entra_error(e: &fctr_entra::ConfigError) -> ConfigError {
    invalid("entra", e.to_string())
}

impl EntraSection {
    fn credential_keys(&self) -> CredentialKeys<'_> {
        CredentialKeys {
            section: "entra",
            secret_env: self.client_secret_env.as_deref(),
            secret_file: self.client_secret_file.as_deref(),
            private_key_file: self.private_key_file.as_deref(),
            certificate_file: self.certificate_file.as_deref(),
            certificate_sha256: self.certificate_sha256.as_deref(),
            certificate_sha1: self.certificate_sha1.as_deref(),
            algorithm: self.algorithm.as_deref(),
        }
    }

    /// `"certificate"` or `"client secret"`: the kind of credential configured, without reading it.
    #[must_use]
    pub fn credential_kind(&self) -> &'static str {
        if self.private_key_file.is_some() {
            "certificate"
        } else {
            "client secret"
        }
    }

    /// The adapter configuration: secrets and key files are read now (from the environment or files).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `entra.…` key: a missing or doubled credential, an unreadable or empty
    /// secret, key or certificate, an unknown `algorithm`, `name_search` or `otp_mode`.
    pub fn adapter_config(&self) -> Result<EntraConfig, ConfigError> {
        let mut c = EntraConfig::new(
            self.tenant_id.trim(),
            self.client_id.trim(),
            self.credential_keys().read()?,
        )
        .map_err(|e| entra_error(&e))?;
        if let Some(a) = &self.authority {
            c.authority = a.clone();
        }
        if let Some(g) = &self.graph_base {
            c.graph_base = g.clone();
        }
        c.name_search = match self.name_search.as_deref() {
            None | Some("search") => NameSearch::Search,
            Some("starts_with") => NameSearch::StartsWith,
            Some(_) => return Err(invalid("entra.name_search", "search or starts_with")),
        };
        let d = TapBounds::default();
        c.tap = TapBounds {
            min_lifetime_minutes: self.tap_min_minutes.unwrap_or(d.min_lifetime_minutes),
            max_lifetime_minutes: self.tap_max_minutes.unwrap_or(d.max_lifetime_minutes),
        };
        c.allow_password_set_on_synced_users = self.allow_password_set_on_synced_users;
        c.connector = self
            .connector
            .as_ref()
            .map(EntraConnectorSection::adapter_config)
            .transpose()?;
        Ok(c)
    }

    /// Builds the adapter (validating every setting; no request is made).
    ///
    /// # Errors
    /// As [`EntraSection::adapter_config`], plus [`ConfigError::Invalid`] naming `entra` with the adapter's own
    /// rule (a tenant or client id that is not a GUID, a non-https URL off loopback, an unusable key, bad TAP
    /// bounds, …).
    pub fn adapter(&self) -> Result<EntraAdapter, ConfigError> {
        EntraAdapter::new(self.adapter_config()?).map_err(|e| entra_error(&e))
    }
}

impl EntraConnectorSection {
    fn adapter_config(&self) -> Result<MfaConnectorConfig, ConfigError> {
        let keys = CredentialKeys {
            section: "entra.connector",
            secret_env: self.client_secret_env.as_deref(),
            secret_file: self.client_secret_file.as_deref(),
            private_key_file: self.private_key_file.as_deref(),
            certificate_file: self.certificate_file.as_deref(),
            certificate_sha256: self.certificate_sha256.as_deref(),
            certificate_sha1: self.certificate_sha1.as_deref(),
            algorithm: self.algorithm.as_deref(),
        };
        let mut c = MfaConnectorConfig::new(keys.read()?).map_err(|e| entra_error(&e))?;
        if let Some(id) = &self.client_id {
            c.client_id = id.trim().to_owned();
        }
        if let Some(e) = &self.endpoint {
            c.endpoint = e.clone();
        }
        if let Some(s) = self.push_timeout_secs {
            if !(1..=300).contains(&s) {
                return Err(invalid("entra.connector.push_timeout_secs", "1 to 300"));
            }
            c.push_timeout = std::time::Duration::from_secs(s);
        }
        c.otp_mode = match self.otp_mode.as_deref() {
            None | Some("number_matching_override") => ConnectorOtpMode::NumberMatchingOverride,
            Some("phone_app_otp") => ConnectorOtpMode::PhoneAppOtp,
            Some(_) => {
                return Err(invalid(
                    "entra.connector.otp_mode",
                    "number_matching_override or phone_app_otp",
                ));
            }
        };
        if let Some(l) = &self.lcid {
            c.lcid = l.clone();
        }
        if let Some(n) = &self.caller_name {
            c.caller_name = n.clone();
        }
        if let Some(m) = self.max_pending_pushes {
            if m == 0 {
                return Err(invalid(
                    "entra.connector.max_pending_pushes",
                    "must be at least 1",
                ));
            }
            c.max_pending_pushes = m;
        }
        Ok(c)
    }
}

/// The identity provider a configuration names: exactly one of `[okta]` and `[entra]`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum IdpSection<'a> {
    /// `[okta]`.
    Okta(&'a OktaSection),
    /// `[entra]`.
    Entra(&'a EntraSection),
}

/// `[sign_in]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInSection {
    /// The OIDC issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: Url,
    /// The portal's client id.
    pub client_id: String,
    /// Environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The claim holding group names (default `groups`; Entra app roles: `roles`).
    pub groups_claim: Option<String>,
    /// Refuse sign-in unless the ID token's `amr` shows MFA.
    #[serde(default)]
    pub require_mfa: bool,
    /// Refetch the issuer's signing keys (JWKS) when they are this many minutes old (default 60, 1 to 1440).
    /// Independently, a token signed by an unknown key triggers a refetch, at most one a minute.
    pub jwks_refresh_minutes: Option<u32>,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The policy file (default policy when absent).
    pub file: Option<PathBuf>,
}

/// `[pseudonymization]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudoSection {
    /// Key id (e.g. `k1`).
    pub key_id: String,
    /// Environment variable holding the key.
    pub key_env: Option<String>,
    /// File holding the key.
    pub key_file: Option<PathBuf>,
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The SQLite file.
    pub sqlite_path: PathBuf,
    /// Environment variable holding the checkpoint key (HMAC-SHA256 of the recorded chain heads, at least 32
    /// bytes). Exactly one of this and `checkpoint_key_file` is required outside demo mode.
    pub checkpoint_key_env: Option<String>,
    /// File holding the checkpoint key.
    pub checkpoint_key_file: Option<PathBuf>,
    /// How often the portal records a checkpoint, in seconds (default 60, 1 to 86400).
    pub checkpoint_interval_secs: Option<u64>,
}

/// Default seconds between two audit checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL_SECS: u64 = 60;

impl AuditSection {
    /// A section with only the SQLite path (no checkpoint key: refused by [`Config::validate`]).
    #[must_use]
    pub fn at(sqlite_path: PathBuf) -> Self {
        Self {
            sqlite_path,
            checkpoint_key_env: None,
            checkpoint_key_file: None,
            checkpoint_interval_secs: None,
        }
    }

    /// The checkpoint key, read now from `checkpoint_key_env` or `checkpoint_key_file` (exactly one).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.checkpoint_key` when neither or both are set, the source is empty
    /// or unreadable, or the key is shorter than 32 bytes.
    pub fn checkpoint_key(&self) -> Result<SecretString, ConfigError> {
        let key = read_secret(
            "audit.checkpoint_key",
            self.checkpoint_key_env.as_deref(),
            self.checkpoint_key_file.as_deref(),
        )
        .map_err(|e| match e {
            ConfigError::Invalid { key, problem } => ConfigError::Invalid {
                key,
                problem: format!(
                    "{problem} (checkpoints make a cut or re-hashed audit chain detectable; generate one with \
                     `openssl rand -hex 32`)"
                ),
            },
            other => other,
        })?;
        if secrecy::ExposeSecret::expose_secret(&key).len() < 32 {
            return Err(invalid("audit.checkpoint_key", "must be at least 32 bytes"));
        }
        Ok(key)
    }

    /// The checkpoint interval.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.checkpoint_interval_secs` outside 1 to 86400.
    pub fn checkpoint_interval(&self) -> Result<std::time::Duration, ConfigError> {
        match self.checkpoint_interval_secs {
            None => Ok(std::time::Duration::from_secs(
                DEFAULT_CHECKPOINT_INTERVAL_SECS,
            )),
            Some(s) if (1..=86_400).contains(&s) => Ok(std::time::Duration::from_secs(s)),
            Some(_) => Err(invalid("audit.checkpoint_interval_secs", "1 to 86400")),
        }
    }
}

/// `[retention]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Audit events (default 30).
    pub audit_days: Option<u32>,
    /// Usage records (default 1095).
    pub usage_days: Option<u32>,
    /// Runtime log files, when `[logging] dir` is set (default 1).
    pub runtime_log_days: Option<u32>,
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// Idle timeout (default 15).
    pub idle_minutes: Option<u32>,
    /// Absolute timeout (default 12).
    pub absolute_hours: Option<u32>,
}

/// Whether a URL's host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`): the same rule the Okta
/// adapter applies to `[okta] org_url`.
#[must_use]
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Refuses a URL that is not `https`, except `http` on a loopback address (tests and fakes): the rule of
/// `[okta] org_url`, applied to `[server] public_url` and `[sign_in] issuer` (whose client secret and tokens would
/// otherwise cross the network in clear).
///
/// # Errors
/// [`ConfigError::Invalid`] naming `key`.
pub fn require_https_off_loopback(key: &str, url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        _ => Err(invalid(key, "must be https (plain http only on loopback)")),
    }
}

/// Reads a secret from an environment variable or a file (exactly one), trimming a trailing newline.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `key` when neither or both are set, or the source is empty or unreadable.
pub fn read_secret(
    key: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    let value = match (env, file) {
        (Some(var), None) => std::env::var(var)
            .map_err(|_| invalid(key, format!("environment variable {var} is not set")))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?,
        (Some(_), Some(_)) => return Err(invalid(key, "set either *_env or *_file, not both")),
        (None, None) => {
            return Err(invalid(
                key,
                "missing: give *_env (an environment variable) or *_file; secrets never go in the TOML",
            ));
        }
    };
    let trimmed = value.trim_end_matches(['\n', '\r']).to_owned();
    if trimmed.is_empty() {
        return Err(invalid(key, "is empty"));
    }
    Ok(SecretString::from(trimmed))
}

impl Config {
    /// Parses TOML text (`path` only names the file in errors).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with line and column for malformed TOML and unknown keys.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        // The parser's own Display quotes the offending line, which could be a secret someone pasted into the
        // file: report the position and the message only.
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (line, column)
            });
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("line {line}, column {column}: {}", e.message().trim_end()),
            }
        })
    }

    /// Reads and parses a file, then applies `FCTR_…` environment overrides.
    ///
    /// # Errors
    /// As [`Config::parse`], plus [`ConfigError::Read`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut c = Self::parse(&text, path)?;
        c.apply_env(|k| std::env::var(k).ok())?;
        Ok(c)
    }

    /// Applies overrides: `FCTR_SERVER_LISTEN`, `FCTR_SERVER_PUBLIC_URL`, `FCTR_SERVER_TENANT`,
    /// `FCTR_OKTA_ORG_URL`, `FCTR_ENTRA_TENANT_ID`, `FCTR_ENTRA_CLIENT_ID`, `FCTR_ENTRA_AUTHORITY`,
    /// `FCTR_ENTRA_GRAPH_BASE`, `FCTR_SIGN_IN_ISSUER`, `FCTR_SIGN_IN_CLIENT_ID`, `FCTR_POLICY_FILE`,
    /// `FCTR_AUDIT_SQLITE_PATH`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when an override does not parse.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("FCTR_SERVER_LISTEN") {
            self.server.listen = Some(
                v.parse()
                    .map_err(|_| invalid("FCTR_SERVER_LISTEN", "not a socket address"))?,
            );
        }
        if let Some(v) = get("FCTR_SERVER_PUBLIC_URL") {
            self.server.public_url =
                Some(Url::parse(&v).map_err(|_| invalid("FCTR_SERVER_PUBLIC_URL", "not a URL"))?);
        }
        if let Some(v) = get("FCTR_SERVER_TENANT") {
            self.server.tenant = Some(v);
        }
        if let Some(v) = get("FCTR_OKTA_ORG_URL") {
            let url = Url::parse(&v).map_err(|_| invalid("FCTR_OKTA_ORG_URL", "not a URL"))?;
            match &mut self.okta {
                Some(o) => o.org_url = url,
                None => {
                    return Err(invalid(
                        "FCTR_OKTA_ORG_URL",
                        "no [okta] section to override",
                    ));
                }
            }
        }
        let entra_url = |var: &str, v: &str| -> Result<Url, ConfigError> {
            Url::parse(v).map_err(|_| invalid(var, "not a URL"))
        };
        for var in [
            "FCTR_ENTRA_TENANT_ID",
            "FCTR_ENTRA_CLIENT_ID",
            "FCTR_ENTRA_AUTHORITY",
            "FCTR_ENTRA_GRAPH_BASE",
        ] {
            let Some(v) = get(var) else { continue };
            let Some(e) = &mut self.entra else {
                return Err(invalid(var, "no [entra] section to override"));
            };
            match var {
                "FCTR_ENTRA_TENANT_ID" => e.tenant_id = v,
                "FCTR_ENTRA_CLIENT_ID" => e.client_id = v,
                "FCTR_ENTRA_AUTHORITY" => e.authority = Some(entra_url(var, &v)?),
                _ => e.graph_base = Some(entra_url(var, &v)?),
            }
        }
        if let Some(v) = get("FCTR_SIGN_IN_ISSUER") {
            let url = Url::parse(&v).map_err(|_| invalid("FCTR_SIGN_IN_ISSUER", "not a URL"))?;
            match &mut self.sign_in {
                Some(s) => s.issuer = url,
                None => {
                    return Err(invalid(
                        "FCTR_SIGN_IN_ISSUER",
                        "no [sign_in] section to override",
                    ));
                }
            }
        }
        if let Some(v) = get("FCTR_SIGN_IN_CLIENT_ID") {
            match &mut self.sign_in {
                Some(s) => s.client_id = v,
                None => {
                    return Err(invalid(
                        "FCTR_SIGN_IN_CLIENT_ID",
                        "no [sign_in] section to override",
                    ));
                }
            }
        }
        if let Some(v) = get("FCTR_POLICY_FILE") {
            self.policy.file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("FCTR_AUDIT_SQLITE_PATH") {
            match &mut self.audit {
                Some(a) => a.sqlite_path = PathBuf::from(v),
                None => self.audit = Some(AuditSection::at(PathBuf::from(v))),
            }
        }
        Ok(())
    }

    /// Checks everything that can be checked without the network: required sections (exactly one of `[okta]`
    /// and `[entra]`), URLs, secrets, keys and certificates readable (the Entra adapter is built, which checks
    /// its ids, URLs and key), key length, the policy file.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let public = self
            .server
            .public_url
            .as_ref()
            .ok_or_else(|| invalid("server.public_url", "missing"))?;
        require_https_off_loopback("server.public_url", public)?;
        match self.identity_provider()? {
            IdpSection::Okta(okta) => Self::validate_okta(okta)?,
            IdpSection::Entra(entra) => {
                entra.adapter()?;
            }
        }
        self.validate_rest()
    }

    /// The identity provider: exactly one of `[okta]` and `[entra]`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `okta, entra` when both or neither are present, saying which to keep or
    /// add.
    pub fn identity_provider(&self) -> Result<IdpSection<'_>, ConfigError> {
        match (&self.okta, &self.entra) {
            (Some(o), None) => Ok(IdpSection::Okta(o)),
            (None, Some(e)) => Ok(IdpSection::Entra(e)),
            (Some(_), Some(_)) => Err(invalid(
                "okta, entra",
                "both sections are present: fctr manages one identity provider; keep [okta] or [entra] and \
                 delete the other",
            )),
            (None, None) => Err(invalid(
                "okta, entra",
                "missing: add an [okta] section (org_url and a credential) or an [entra] section (tenant_id, \
                 client_id and a credential); see docs/portal.md",
            )),
        }
    }

    fn validate_okta(okta: &OktaSection) -> Result<(), ConfigError> {
        if okta.client_id.is_some() {
            for (k, v) in [
                ("okta.key_id", okta.key_id.is_some()),
                ("okta.private_key_file", okta.private_key_file.is_some()),
            ] {
                if !v {
                    return Err(invalid(k, "required with okta.client_id"));
                }
            }
            if let Some(a) = &okta.algorithm {
                if a != "ES256" && a != "RS256" {
                    return Err(invalid("okta.algorithm", "ES256 or RS256"));
                }
            }
        }
        // The same builder start-up uses: credential read, DPoP only with the service app, org URL rules.
        okta.adapter()?;
        Ok(())
    }

    fn validate_rest(&self) -> Result<(), ConfigError> {
        let s = self
            .sign_in
            .as_ref()
            .ok_or_else(|| invalid("sign_in", "missing section"))?;
        require_https_off_loopback("sign_in.issuer", &s.issuer)?;
        if s.client_id.trim().is_empty() {
            return Err(invalid("sign_in.client_id", "is empty"));
        }
        read_secret(
            "sign_in.client_secret",
            s.client_secret_env.as_deref(),
            s.client_secret_file.as_deref(),
        )?;
        self.jwks_refresh()?;
        let p = self
            .pseudonymization
            .as_ref()
            .ok_or_else(|| invalid("pseudonymization", "missing section"))?;
        let key = read_secret(
            "pseudonymization.key",
            p.key_env.as_deref(),
            p.key_file.as_deref(),
        )?;
        if secrecy::ExposeSecret::expose_secret(&key).len() < 32 {
            return Err(invalid("pseudonymization.key", "must be at least 32 bytes"));
        }
        fctr_ports::KeyId::parse(p.key_id.clone())
            .map_err(|e| invalid("pseudonymization.key_id", e.to_string()))?;
        let audit = self
            .audit
            .as_ref()
            .ok_or_else(|| invalid("audit.sqlite_path", "missing"))?;
        audit.checkpoint_key()?;
        audit.checkpoint_interval()?;
        if let Some(t) = &self.server.tenant {
            fctr_ports::TenantId::parse(t.clone())
                .map_err(|e| invalid("server.tenant", e.to_string()))?;
        }
        self.load_policy()?;
        self.edge_settings()?;
        self.check_transport()?;
        self.tls_config()?;
        Ok(())
    }

    /// The listen address (default `127.0.0.1:8080`).
    #[must_use]
    pub fn listen(&self) -> SocketAddr {
        self.server
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// Refuses plain HTTP off loopback unless a TLS-terminating proxy is declared, and a declared proxy whose
    /// address is not trusted.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key to set.
    pub fn check_transport(&self) -> Result<(), ConfigError> {
        crate::edge::check_transport(
            self.listen(),
            self.tls.is_some(),
            self.server.behind_tls_proxy,
            !self.network.trusted_proxies.is_empty(),
        )
        .map_err(|problem| invalid("server.listen", problem))
    }

    /// The TLS server configuration when `[tls]` is present.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `tls` with the file and the problem (unreadable, not PEM, a key that does
    /// not match the certificate).
    pub fn tls_config(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, ConfigError> {
        self.tls
            .as_ref()
            .map(|t| crate::tls::server_config(&t.cert_file, &t.key_file))
            .transpose()
            .map_err(|e| invalid("tls", e.to_string()))
    }

    /// When to refetch the sign-in issuer's signing keys (`[sign_in] jwks_refresh_minutes`, default hourly).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] outside 1 to 1440 minutes.
    pub fn jwks_refresh(&self) -> Result<crate::oidc::JwksRefresh, ConfigError> {
        let d = crate::oidc::JwksRefresh::default();
        match self.sign_in.as_ref().and_then(|s| s.jwks_refresh_minutes) {
            None => Ok(d),
            Some(m @ 1..=1440) => Ok(crate::oidc::JwksRefresh {
                every: std::time::Duration::from_secs(u64::from(m) * 60),
                ..d
            }),
            Some(_) => Err(invalid(
                "sign_in.jwks_refresh_minutes",
                "must be between 1 and 1440",
            )),
        }
    }

    /// The edge settings (allow-list, trusted proxies, limits) with their defaults.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a malformed CIDR or a zero limit.
    pub fn edge_settings(&self) -> Result<crate::edge::EdgeSettings, ConfigError> {
        let d = crate::edge::EdgeSettings::default();
        let parse =
            |key: &str, v: &[String]| crate::edge::parse_cidrs(v).map_err(|e| invalid(key, e));
        let allow = match &self.network.allow {
            Some(v) => parse("network.allow", v)?,
            None => d.allow.clone(),
        };
        let trusted_proxies = parse("network.trusted_proxies", &self.network.trusted_proxies)?;
        let l = &self.limits;
        let nonzero = |key: &str, v: Option<u64>, dflt: u64| match v {
            Some(0) => Err(invalid(key, "must be at least 1")),
            Some(x) => Ok(x),
            None => Ok(dflt),
        };
        let sign_in = nonzero(
            "limits.sign_in_per_ip_per_minute",
            l.sign_in_per_ip_per_minute.map(u64::from),
            u64::from(d.sign_in_per_ip_per_minute),
        )?;
        let api = nonzero(
            "limits.api_per_agent_per_minute",
            l.api_per_agent_per_minute.map(u64::from),
            u64::from(d.api_per_agent_per_minute),
        )?;
        let body = nonzero(
            "limits.body_limit_bytes",
            l.body_limit_bytes.map(|b| b as u64),
            d.body_limit_bytes as u64,
        )?;
        if body > 16 * 1024 * 1024 {
            return Err(invalid("limits.body_limit_bytes", "at most 16 MiB"));
        }
        let timeout = nonzero(
            "limits.request_timeout_secs",
            l.request_timeout_secs,
            d.request_timeout.as_secs(),
        )?;
        if timeout > 300 {
            return Err(invalid("limits.request_timeout_secs", "at most 300"));
        }
        Ok(crate::edge::EdgeSettings {
            allow,
            trusted_proxies,
            sign_in_per_ip_per_minute: u32::try_from(sign_in).unwrap_or(u32::MAX),
            api_per_agent_per_minute: u32::try_from(api).unwrap_or(u32::MAX),
            body_limit_bytes: usize::try_from(body).unwrap_or(d.body_limit_bytes),
            request_timeout: std::time::Duration::from_secs(timeout),
        })
    }

    /// Loads the policy file, or the default policy.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the policy parser's message (line and column).
    pub fn load_policy(&self) -> Result<fctr_core::policy::Policy, ConfigError> {
        match &self.policy.file {
            None => Ok(fctr_core::policy::Policy::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        "policy.file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                fctr_core::policy::Policy::parse(&text)
                    .map_err(|e| invalid("policy.file", e.to_string()))
            }
        }
    }
}
