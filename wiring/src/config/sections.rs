//! The sections of the file that are not an identity provider: `[server]`, `[tls]`, `[network]`, `[limits]`,
//! `[logging]`, `[policy]`, `[pseudonymization]`, `[audit]`, `[retention]`, `[session]`,
//! `[contract_test]`.

use super::{ConfigError, invalid};
use crate::secret::SecretSource;
use fctr_ports::{Egress, EgressProxy, ProxyCredentials};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

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

/// `[network]`: who may reach the portal at all, and the path its own traffic to the identity provider takes.
///
/// The egress keys apply to every request to the IdP, from the portal and from the CLI: the Okta management API
/// and token endpoint, Microsoft Graph, the Entra token endpoint and MFA connector, and agent sign-in (discovery,
/// token exchange, signing keys, userinfo). Without them the path is direct; environment proxies (`HTTP_PROXY`,
/// `HTTPS_PROXY`) never apply.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(try_from = "RawNetwork")]
pub struct NetworkSection {
    /// CIDRs allowed to reach the portal (IPv4 and IPv6). Default: loopback and the private ranges
    /// (10/8, 172.16/12, 192.168/16, fc00::/7). `["0.0.0.0/0", "::/0"]` opens it to everyone.
    pub allow: Option<Vec<String>>,
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed (default: none).
    pub trusted_proxies: Vec<String>,
    /// `egress_proxy = "http://host:port"`: the HTTP forward proxy IdP traffic goes through (`CONNECT` for
    /// https, so TLS stays end to end). Checked when the file is parsed: http only, a host and a port, no
    /// credentials in the URL.
    pub egress_proxy: Option<EgressProxy>,
    /// `egress_proxy_username`: the proxy user (with `egress_proxy_password_env` / `_file`).
    pub egress_proxy_username: Option<String>,
    /// The proxy password (`egress_proxy_password_env` or `egress_proxy_password_file`).
    pub egress_proxy_password: Option<SecretSource>,
    /// `egress_bind = "ADDRESS"`: the source address of connections to the IdP (or to the proxy).
    pub egress_bind: Option<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    allow: Option<Vec<String>>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    egress_proxy: Option<String>,
    egress_proxy_username: Option<String>,
    egress_proxy_password_env: Option<String>,
    egress_proxy_password_file: Option<PathBuf>,
    egress_bind: Option<String>,
}

impl TryFrom<RawNetwork> for NetworkSection {
    type Error = String;
    fn try_from(r: RawNetwork) -> Result<Self, String> {
        let egress_proxy = r
            .egress_proxy
            .as_deref()
            .map(EgressProxy::parse)
            .transpose()
            .map_err(|e| format!("egress_proxy: {e}"))?;
        let egress_proxy_password = SecretSource::from_keys(
            "egress_proxy_password",
            r.egress_proxy_password_env,
            r.egress_proxy_password_file,
        )?;
        if egress_proxy.is_none()
            && (r.egress_proxy_username.is_some() || egress_proxy_password.is_some())
        {
            return Err(
                "egress_proxy_username and egress_proxy_password_* need egress_proxy".to_owned(),
            );
        }
        if r.egress_proxy_username.is_some() != egress_proxy_password.is_some() {
            return Err(
                "set egress_proxy_username and egress_proxy_password_env (or \
                        egress_proxy_password_file) together, or neither"
                    .to_owned(),
            );
        }
        let egress_bind = r
            .egress_bind
            .as_deref()
            .map(|b| {
                b.trim().parse::<IpAddr>().map_err(|_| {
                    "egress_bind: must be an IP address of this host (IPv4 or IPv6, no port)"
                        .to_owned()
                })
            })
            .transpose()?;
        Ok(Self {
            allow: r.allow,
            trusted_proxies: r.trusted_proxies,
            egress_proxy,
            egress_proxy_username: r.egress_proxy_username,
            egress_proxy_password,
            egress_bind,
        })
    }
}

impl NetworkSection {
    /// The egress path: the proxy (its password read now) and the source address. Direct when neither is set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `network.egress_proxy_password` (unreadable or empty source) or
    /// `network.egress_proxy_username` (a bad user name or password), never showing the password.
    pub fn egress(&self) -> Result<Egress, ConfigError> {
        let proxy = match (&self.egress_proxy, &self.egress_proxy_username) {
            (None, _) => None,
            (Some(p), None) => Some(p.clone()),
            (Some(p), Some(user)) => {
                let password = SecretSource::resolve_required(
                    self.egress_proxy_password.as_ref(),
                    "network.egress_proxy_password",
                )?;
                let creds = ProxyCredentials::parse(user, password)
                    .map_err(|e| invalid("network.egress_proxy_username", e.to_string()))?;
                Some(p.clone().with_credentials(creds))
            }
        };
        Ok(Egress::new(proxy, self.egress_bind))
    }
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

/// `[poll]`: how often the portal's live-status poller asks the identity provider about a pending push, by time
/// since the push (the portal checks the values; absent keys take its defaults).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PollSection {
    /// The interval while callers usually answer (default 750).
    pub fast_interval_ms: Option<u64>,
    /// How long after the push the fast interval lasts (default 60).
    pub fast_for_secs: Option<u64>,
    /// The interval after that (default 1000).
    pub interval_ms: Option<u64>,
    /// When the interval starts doubling with each poll (default 120 after the push).
    pub backoff_after_secs: Option<u64>,
    /// The longest interval when backing off (default 5000).
    pub max_interval_ms: Option<u64>,
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

/// `[policy]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The policy file (default policy when absent).
    pub file: Option<PathBuf>,
}

/// `[pseudonymization]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawPseudo")]
pub struct PseudoSection {
    /// Key id (e.g. `k1`).
    pub key_id: String,
    /// The key (`key_env` or `key_file`), at least 32 bytes.
    pub key: Option<SecretSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPseudo {
    key_id: String,
    key_env: Option<String>,
    key_file: Option<PathBuf>,
}

impl TryFrom<RawPseudo> for PseudoSection {
    type Error = String;
    fn try_from(r: RawPseudo) -> Result<Self, String> {
        Ok(Self {
            key_id: r.key_id,
            key: SecretSource::from_keys("key", r.key_env, r.key_file)?,
        })
    }
}

impl PseudoSection {
    /// The key, read now.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `pseudonymization.key` (missing, unreadable, empty, or under 32 bytes).
    pub fn key(&self) -> Result<SecretString, ConfigError> {
        let key = SecretSource::resolve_required(self.key.as_ref(), "pseudonymization.key")?;
        if secrecy::ExposeSecret::expose_secret(&key).len() < 32 {
            return Err(invalid("pseudonymization.key", "must be at least 32 bytes"));
        }
        Ok(key)
    }
}

/// `[audit]`: where the audit log and the usage ledger are kept, and how their chain heads are checkpointed.
///
/// Exactly one store: `sqlite_path` (one file, one portal process), or `postgres_url_env` / `postgres_url_file`
/// (one PostgreSQL database shared by every portal replica; the URL holds credentials, so it is a secret and never
/// in the file) with an optional `postgres_schema` (default `public`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAudit")]
pub struct AuditSection {
    /// The SQLite file (exactly one of this and `postgres_url`).
    pub sqlite_path: Option<PathBuf>,
    /// The PostgreSQL URL (`postgres_url_env` or `postgres_url_file`), e.g.
    /// `postgres://fctr:…@db.internal:5432/fctr?sslmode=verify-full` (exactly one of this and `sqlite_path`).
    pub postgres_url: Option<SecretSource>,
    /// The PostgreSQL schema holding the tables (default `public`; created if missing).
    pub postgres_schema: Option<String>,
    /// The checkpoint key (`checkpoint_key_env` or `checkpoint_key_file`): HMAC-SHA256 of the recorded chain
    /// heads, at least 32 bytes. Required outside demo mode.
    pub checkpoint_key: Option<SecretSource>,
    /// How often the portal records a checkpoint, in seconds (default 60, 1 to 86400).
    pub checkpoint_interval_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    sqlite_path: Option<PathBuf>,
    postgres_url_env: Option<String>,
    postgres_url_file: Option<PathBuf>,
    postgres_schema: Option<String>,
    checkpoint_key_env: Option<String>,
    checkpoint_key_file: Option<PathBuf>,
    checkpoint_interval_secs: Option<u64>,
}

/// Why `[audit]` names no store or two.
const ONE_AUDIT_STORE: &str = "set exactly one of sqlite_path (one SQLite file) and postgres_url_env / \
     postgres_url_file (PostgreSQL, shared by every replica)";

impl TryFrom<RawAudit> for AuditSection {
    type Error = String;
    fn try_from(r: RawAudit) -> Result<Self, String> {
        let postgres_url =
            SecretSource::from_keys("postgres_url", r.postgres_url_env, r.postgres_url_file)?;
        if r.sqlite_path.is_some() == postgres_url.is_some() {
            return Err(ONE_AUDIT_STORE.to_owned());
        }
        if r.postgres_schema.is_some() && postgres_url.is_none() {
            return Err(
                "postgres_schema applies to PostgreSQL only: set postgres_url_env or \
                        postgres_url_file, or drop postgres_schema"
                    .to_owned(),
            );
        }
        Ok(Self {
            sqlite_path: r.sqlite_path,
            postgres_url,
            postgres_schema: r.postgres_schema,
            checkpoint_key: SecretSource::from_keys(
                "checkpoint_key",
                r.checkpoint_key_env,
                r.checkpoint_key_file,
            )?,
            checkpoint_interval_secs: r.checkpoint_interval_secs,
        })
    }
}

/// Default seconds between two audit checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL_SECS: u64 = 60;

/// The store an `[audit]` section names.
#[derive(Debug, Clone, Copy)]
pub enum AuditStoreSection<'a> {
    /// `sqlite_path`.
    Sqlite(&'a std::path::Path),
    /// `postgres_url_env` / `postgres_url_file`, and `postgres_schema`.
    Postgres {
        /// Where the URL is read from.
        url: &'a SecretSource,
        /// The schema (default `public`).
        schema: &'a str,
    },
}

impl AuditSection {
    /// A section with only the SQLite path (no checkpoint key: refused by [`super::Config::validate`]).
    #[must_use]
    pub fn at(sqlite_path: PathBuf) -> Self {
        Self {
            sqlite_path: Some(sqlite_path),
            postgres_url: None,
            postgres_schema: None,
            checkpoint_key: None,
            checkpoint_interval_secs: None,
        }
    }

    /// The store this section names: exactly one of `sqlite_path` and `postgres_url`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.sqlite_path, audit.postgres_url` when both or neither are set.
    pub fn store(&self) -> Result<AuditStoreSection<'_>, ConfigError> {
        match (&self.sqlite_path, &self.postgres_url) {
            (Some(p), None) => Ok(AuditStoreSection::Sqlite(p)),
            (None, Some(url)) => Ok(AuditStoreSection::Postgres {
                url,
                schema: self.postgres_schema.as_deref().unwrap_or("public"),
            }),
            _ => Err(invalid(
                "audit.sqlite_path, audit.postgres_url",
                ONE_AUDIT_STORE,
            )),
        }
    }

    /// The PostgreSQL URL, read now, when the section names PostgreSQL (`None` for SQLite). Checked only for its
    /// scheme; the value never appears in an error.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.postgres_url` when the source is unreadable or empty, or the value
    /// is not a `postgres://` or `postgresql://` URL.
    pub fn postgres_url(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(source) = &self.postgres_url else {
            return Ok(None);
        };
        let url = source.resolve("audit.postgres_url")?;
        let text = secrecy::ExposeSecret::expose_secret(&url);
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(invalid(
                "audit.postgres_url",
                "must be a postgres:// or postgresql:// URL (its value is not shown)",
            ));
        }
        Ok(Some(url))
    }

    /// The checkpoint key, read now from `checkpoint_key_env` or `checkpoint_key_file` (exactly one).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.checkpoint_key` when neither is set, the source is empty or
    /// unreadable, or the key is shorter than 32 bytes.
    pub fn checkpoint_key(&self) -> Result<SecretString, ConfigError> {
        let key = SecretSource::resolve_required(self.checkpoint_key.as_ref(), "audit.checkpoint_key")
            .map_err(|e| match e {
                ConfigError::Invalid { key, problem } => ConfigError::Invalid {
                    key,
                    problem: format!(
                        "{problem} (checkpoints make a cut or re-hashed audit chain detectable; generate one \
                         with `openssl rand -hex 32`)"
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

impl RetentionSection {
    /// The engine's retention periods, with the defaults of [`fctr_core::Retention`] for what is not set.
    #[must_use]
    pub fn retention(&self) -> fctr_core::Retention {
        let d = fctr_core::Retention::default();
        let days = |v: Option<u32>, dflt| v.map_or(dflt, |x| chrono::Duration::days(i64::from(x)));
        fctr_core::Retention {
            audit: days(self.audit_days, d.audit),
            usage: days(self.usage_days, d.usage),
            runtime_logs: days(self.runtime_log_days, d.runtime_logs),
        }
    }
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

/// `[alerts]`: where alerts (docs/alarms.md) are delivered. Absent: alerts are audited (and reach the SIEM export)
/// but pushed nowhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAlerts")]
pub struct AlertsSection {
    /// The webhook receiving alerts (`https`; `http` only to a loopback address).
    pub webhook_url: Url,
    /// The signing secret (`webhook_secret_env` or `webhook_secret_file`); `whsec_<base64>` or raw bytes.
    pub webhook_secret: Option<SecretSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    webhook_url: Url,
    webhook_secret_env: Option<String>,
    webhook_secret_file: Option<PathBuf>,
}

impl TryFrom<RawAlerts> for AlertsSection {
    type Error = String;
    fn try_from(r: RawAlerts) -> Result<Self, String> {
        Ok(Self {
            webhook_url: r.webhook_url,
            webhook_secret: SecretSource::from_keys(
                "webhook_secret",
                r.webhook_secret_env,
                r.webhook_secret_file,
            )?,
        })
    }
}

impl AlertsSection {
    /// The webhook sink this section describes (the secret read now).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `alerts.webhook_secret` (missing, unreadable, empty, not `whsec_<base64>`)
    /// or `alerts.webhook_url` (not https).
    pub fn sink(&self) -> Result<std::sync::Arc<dyn fctr_ports::AlertSink>, ConfigError> {
        let secret =
            SecretSource::resolve_required(self.webhook_secret.as_ref(), "alerts.webhook_secret")?;
        let opts = fctr_webhook::WebhookOptions::new(self.webhook_url.clone(), secret);
        match fctr_webhook::WebhookSink::new(opts) {
            Ok(s) => Ok(std::sync::Arc::new(s)),
            Err(fctr_webhook::WebhookError::InsecureUrl) => Err(invalid(
                "alerts.webhook_url",
                "must use https (http only for a loopback address)",
            )),
            Err(fctr_webhook::WebhookError::BadSecret) => Err(invalid(
                "alerts.webhook_secret",
                "is empty or not valid whsec_<base64>",
            )),
            Err(_) => Err(invalid(
                "alerts.webhook_url",
                "the HTTP client could not be built",
            )),
        }
    }
}

/// `[out_of_band]`: the portal's schedule for out-of-band change detection (docs/out-of-band.md). Absent: no
/// schedule (the report is still there on demand: `fctr changes`, the auditors' page).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawOutOfBand")]
pub struct OutOfBandSection {
    /// How often each replica reads the IdP's log (minutes, 1 to 1440).
    pub scan_minutes: u32,
    /// How far back each scan reads (minutes; at least twice `scan_minutes`, at most 7 days; default the larger of
    /// 60 and twice `scan_minutes`): overlapping windows catch entries the IdP logs late, and each change is raised
    /// once however often it is read.
    pub lookback_minutes: u32,
    /// The tolerance between the IdP's time and fctr's audit time (minutes, 1 to 60; default 5).
    pub tolerance_minutes: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutOfBand {
    scan_minutes: u32,
    lookback_minutes: Option<u32>,
    tolerance_minutes: Option<u32>,
}

impl TryFrom<RawOutOfBand> for OutOfBandSection {
    type Error = String;
    fn try_from(r: RawOutOfBand) -> Result<Self, String> {
        if !(1..=1440).contains(&r.scan_minutes) {
            return Err("scan_minutes must be between 1 and 1440".into());
        }
        let lookback = r
            .lookback_minutes
            .unwrap_or_else(|| r.scan_minutes.saturating_mul(2).max(60));
        // Windows must overlap: an entry the IdP logs late, or a scan that runs late, is still read by the next.
        if lookback < r.scan_minutes.saturating_mul(2) || lookback > 7 * 24 * 60 {
            return Err(
                "lookback_minutes must be at least twice scan_minutes and at most 10080 (7 days)"
                    .into(),
            );
        }
        let tolerance = r.tolerance_minutes.unwrap_or(5);
        if !(1..=60).contains(&tolerance) {
            return Err("tolerance_minutes must be between 1 and 60".into());
        }
        Ok(Self {
            scan_minutes: r.scan_minutes,
            lookback_minutes: lookback,
            tolerance_minutes: tolerance,
        })
    }
}

impl OutOfBandSection {
    /// The schedule this section describes.
    #[must_use]
    pub fn schedule(&self) -> OutOfBandSchedule {
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        OutOfBandSchedule {
            every: minutes(self.scan_minutes),
            lookback: minutes(self.lookback_minutes),
            tolerance: minutes(self.tolerance_minutes),
        }
    }
}

/// How often out-of-band changes are looked for, over what window ([`OutOfBandSection::schedule`]; tests build
/// one directly with short times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBandSchedule {
    /// Between scans.
    pub every: Duration,
    /// How far back each scan reads.
    pub lookback: Duration,
    /// The matching tolerance.
    pub tolerance: Duration,
}

impl OutOfBandSchedule {
    /// The longest window one scan reads: after failed scans, the next reads back to where the last successful
    /// one ended, up to this (7 days).
    pub const LONGEST_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

    /// How long a raised change is remembered as raised: as long as any later window (and its tolerance) can
    /// still read it, with a day's margin for entries the IdP logs late.
    #[must_use]
    pub fn remember(&self) -> Duration {
        self.lookback.max(Self::LONGEST_WINDOW)
            + self.tolerance * 2
            + Duration::from_secs(24 * 3600)
    }
}

/// `[caller_sign_in]`: verification by IdP sign-in (docs/idp-sign-in.md). The caller opens a one-time link and
/// signs in to the IdP through the agents' own OIDC app (`[sign_in]`), forced to authenticate again with MFA.
/// Absent: not offered (and policy's `idp_sign_in` never applies).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawCallerSignIn")]
pub struct CallerSignInSection {
    /// How long a link works (minutes, 1 to 60; default 10; never beyond the verification window).
    pub link_minutes: u32,
    /// How long after the caller authenticated at the IdP the sign-in still counts (seconds, 30 to 600; default
    /// 300).
    pub max_auth_age_seconds: u32,
    /// Okta: the `acr_values` to send (e.g. `urn:okta:loa:2fa:any` or `phr`); a token whose `acr` is one of them
    /// shows MFA.
    pub acr_values: Option<String>,
    /// Entra: the authentication context id (`c1` to `c99`) to demand through the `claims` parameter; a token
    /// whose `acrs` holds it shows MFA.
    pub auth_context: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCallerSignIn {
    link_minutes: Option<u32>,
    max_auth_age_seconds: Option<u32>,
    acr_values: Option<String>,
    auth_context: Option<String>,
}

impl TryFrom<RawCallerSignIn> for CallerSignInSection {
    type Error = String;
    fn try_from(r: RawCallerSignIn) -> Result<Self, String> {
        let link_minutes = r.link_minutes.unwrap_or(fctr_core::DEFAULT_LINK_MINUTES);
        if !(1..=60).contains(&link_minutes) {
            return Err("link_minutes must be between 1 and 60".into());
        }
        let max_age = r
            .max_auth_age_seconds
            .unwrap_or(fctr_core::DEFAULT_MAX_AUTH_AGE_SECONDS);
        // At most the caller's pre-login lifetime (10 minutes): a longer sign-in could not come back anyway.
        if !(30..=600).contains(&max_age) {
            return Err("max_auth_age_seconds must be between 30 and 600".into());
        }
        if let Some(acr) = &r.acr_values {
            let ok = !acr.trim().is_empty()
                && acr.len() <= 200
                && acr.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if !ok {
                return Err(
                    "acr_values must be space-separated ACR values, e.g. \"urn:okta:loa:2fa:any\""
                        .into(),
                );
            }
            // A token naming one of these would count as MFA: a single-factor or best-effort level cannot.
            if acr
                .split_whitespace()
                .any(|v| v.contains(":1fa:") || v.ends_with(":ifpossible"))
            {
                return Err("acr_values must demand MFA: a single-factor (1fa) or \"ifpossible\" level would count a sign-in without it as MFA; use \"urn:okta:loa:2fa:any\" or \"phr\"".into());
            }
        }
        if let Some(ctx) = &r.auth_context {
            let n = ctx.strip_prefix('c').and_then(|d| d.parse::<u8>().ok());
            if !n.is_some_and(|n| (1..=99).contains(&n)) || ctx.starts_with("c0") {
                return Err(
                    "auth_context must be an Entra authentication context id, c1 to c99".into(),
                );
            }
        }
        Ok(Self {
            link_minutes,
            max_auth_age_seconds: max_age,
            acr_values: r.acr_values,
            auth_context: r.auth_context,
        })
    }
}

impl CallerSignInSection {
    /// The engine's link settings.
    #[must_use]
    pub fn links(&self) -> fctr_core::SignInLinks {
        fctr_core::SignInLinks {
            lifetime: chrono::Duration::minutes(i64::from(self.link_minutes)),
            max_auth_age: chrono::Duration::seconds(i64::from(self.max_auth_age_seconds)),
        }
    }
}
