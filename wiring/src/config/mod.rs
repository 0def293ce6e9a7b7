//! The deployment configuration: one TOML file read by both shells (`fctr-portal` and `fctr`), `FCTR_…`
//! environment overrides, secrets only from the environment or files ([`SecretSource`]). Unknown keys are errors
//! (with line and column). No file at all means demo mode in a portal built with the `demo` feature.
//!
//! [`Config::validate`] checks what both shells rely on; the portal adds its own edge, TLS and sign-in checks
//! (`fctr_portal::config::PortalConfig`). Split by section: [`sections`] (server, sign-in, audit, …), [`okta`],
//! [`entra`]; environment overrides in `env.rs`.
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
//! egress_proxy = "http://proxy.internal:3128" # all IdP traffic through this forward proxy (default: direct)
//! egress_proxy_username = "fctr"             # with egress_proxy_password_env / _file
//! egress_proxy_password_file = "/run/secrets/fctr-proxy-password"
//! egress_bind = "192.0.2.10"                 # source address of IdP connections
//!
//! [limits]
//! sign_in_per_ip_per_minute = 30             # /auth/login and /auth/callback (the /link/ pages count apart), per truncated client IP
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
//! # token_endpoint_auth_method = "client_secret_basic"  # or client_secret_post, or private_key_jwt with
//! # client_key_file = "/run/secrets/fctr-oidc-key.pem"  # (or client_key_env), client_key_alg = "RS256",
//! # client_key_id = "…", client_certificate_file = "…" (Entra: x5t#S256); checked against discovery at start
//! groups_claim = "groups"                    # Entra: "roles"; a dotted path reaches nested claims; read
//!                                            # from the ID token, else from the userinfo endpoint
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
//! [audit]                                    # exactly one store:
//! sqlite_path = "/var/lib/fctr/audit.sqlite" # one SQLite file (one portal process), or
//! # postgres_url_env = "FCTR_POSTGRES_URL"   # PostgreSQL shared by every replica (or postgres_url_file); the URL
//! # postgres_schema = "fctr"                 #   holds credentials, so it never goes in the file; schema: public
//! checkpoint_key_env = "FCTR_CHECKPOINT_KEY" # or checkpoint_key_file; at least 32 bytes
//! checkpoint_interval_secs = 60
//!
//! [retention]
//! audit_days = 30
//! usage_days = 1095
//!
//! [session]
//! idle_minutes = 15
//! absolute_hours = 12
//!
//! [state]                                    # optional: several replicas share sessions, grants and limits
//! redis_url_env = "FCTR_REDIS_URL"           # or redis_url_file; memory (one node) when absent
//! key_prefix = "fctr"
//!
//! [tickets]                                  # optional: ticket write-back (docs/tickets.md)
//! system = "servicenow"                      # or "jira", "zendesk"
//! base_url = "https://acme.service-now.com"
//! user = "svc-fctr"                          # Jira and Zendesk: the integration account's e-mail
//! secret_env = "FCTR_TICKETS_SECRET"         # or secret_file (ServiceNow: or bearer_token_env / _file)
//!
//! [caller_sign_in]                           # optional: verification by sign-in link (docs/idp-sign-in.md)
//! link_minutes = 10
//! max_auth_age_seconds = 300
//! acr_values = "urn:okta:loa:2fa:any"        # Okta; Entra: auth_context = "c1"

pub mod entra;
mod env;
pub mod okta;
pub mod sections;
pub mod sign_in;
pub mod state;
pub mod tickets;

pub use crate::secret::{SecretSource, read_secret};
pub use entra::{EntraConnectorSection, EntraSection};
pub use okta::OktaSection;
pub use sections::{
    AlertsSection, AuditSection, AuditStoreSection, CallerSignInSection, ContractTestSection,
    DEFAULT_CHECKPOINT_INTERVAL_SECS, LimitsSection, LoggingSection, NetworkSection,
    OutOfBandSchedule, OutOfBandSection, PolicySection, PollSection, PseudoSection,
    RetentionSection, ServerConfig, TlsSection, is_loopback, require_https_off_loopback,
};
pub use sign_in::{
    ClientAuth, ClientKey, ClientKeyAlg, DEFAULT_JWKS_REFRESH_MINUTES, SignInSection,
    TokenEndpointAuthMethod,
};
pub use state::{SessionSection, StateSection};
pub use tickets::TicketsSection;

use fctr_core::Pseudonymizer;
use fctr_core::policy::Policy;
use fctr_ports::{IdentityProvider, KeyId, TenantId};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A [`ConfigError::Invalid`] naming `key`.
pub(crate) fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
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
    /// Where the short-lived state lives (memory by default, Redis for replicas).
    #[serde(default)]
    pub state: StateSection,
    /// TLS termination by the portal itself.
    pub tls: Option<TlsSection>,
    /// The IP allow-list and trusted proxies.
    #[serde(default)]
    pub network: NetworkSection,
    /// Edge rate limits and request hygiene.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The portal's live-status poll schedule.
    #[serde(default)]
    pub poll: PollSection,
    /// Runtime log files (stdout when absent).
    #[serde(default)]
    pub logging: LoggingSection,
    /// `fctr contract-test --mutating` against a real tenant (the portal ignores it).
    pub contract_test: Option<ContractTestSection>,
    /// Where alerts go (docs/alarms.md).
    pub alerts: Option<AlertsSection>,
    /// Ticket write-back (none when absent): the helpdesk system work notes go to.
    pub tickets: Option<TicketsSection>,
    /// The out-of-band change detection schedule (none when absent).
    pub out_of_band: Option<OutOfBandSection>,
    /// Verification by IdP sign-in through one-time links (not offered when absent; needs `[sign_in]`).
    pub caller_sign_in: Option<CallerSignInSection>,
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

    /// Checks everything both shells rely on, without the network: required sections (exactly one of `[okta]`
    /// and `[entra]`), URLs, secrets, keys and certificates readable (the adapter is built, which checks its
    /// ids, URLs and key), key lengths, the sign-in key refresh bounds, the tenant, the policy file. The portal
    /// adds its edge, transport and TLS checks on top.
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
        let egress = self.network.egress()?;
        match self.identity_provider()? {
            IdpSection::Okta(okta) => okta.validate()?,
            IdpSection::Entra(entra) => {
                entra.adapter(&egress)?;
            }
        }
        let s = self
            .sign_in
            .as_ref()
            .ok_or_else(|| invalid("sign_in", "missing section"))?;
        require_https_off_loopback("sign_in.issuer", &s.issuer)?;
        if s.client_id.trim().is_empty() {
            return Err(invalid("sign_in.client_id", "is empty"));
        }
        s.client_auth()?;
        s.jwks_refresh_every()?;
        self.pseudonymizer()?;
        let audit = self.audit_section()?;
        if let AuditStoreSection::Postgres { schema, .. } = audit.store()? {
            if !fctr_postgres::is_valid_schema(schema) {
                return Err(invalid(
                    "audit.postgres_schema",
                    "must be a plain lowercase identifier (a-z, 0-9, _; at most 63 bytes; not pg_…)",
                ));
            }
            audit.postgres_url()?;
        }
        audit.checkpoint_key()?;
        audit.checkpoint_interval()?;
        self.state.redis_url()?;
        self.state.key_prefix()?;
        self.check_topology()?;
        self.tenant()?;
        self.load_policy()?;
        if let Some(t) = &self.tickets {
            t.adapter(&egress)?;
        }
        Ok(())
    }

    /// Refuses a mix of stores that cannot be correct with several replicas: shared state in Redis (which is only
    /// there for replicas) with the audit log in a SQLite file (each replica would write its own file, so the
    /// tenant's one hash chain would fork).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.sqlite_path` and saying what to set instead.
    pub fn check_topology(&self) -> Result<(), ConfigError> {
        let redis = self.state.redis_url.is_some();
        let sqlite = matches!(
            self.audit.as_ref().map(AuditSection::store),
            Some(Ok(AuditStoreSection::Sqlite(_)))
        );
        if redis && sqlite {
            return Err(invalid(
                "audit.sqlite_path",
                "[state] names Redis, so replicas share state, but a SQLite audit file is per replica and each \
                 would fork the audit chain: set [audit] postgres_url_env (or postgres_url_file) instead, or \
                 remove [state] redis_url for a single node",
            ));
        }
        Ok(())
    }

    /// Warnings about a layout that works on one node but not with several replicas; the portal logs them at
    /// start. Empty when the layout is consistent.
    #[must_use]
    pub fn topology_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let redis = self.state.redis_url.is_some();
        let postgres = matches!(
            self.audit.as_ref().map(AuditSection::store),
            Some(Ok(AuditStoreSection::Postgres { .. }))
        );
        if postgres && !redis {
            out.push(
                "[audit] names PostgreSQL but [state] names no Redis: sessions, verifications, grants and rate \
                 limits stay in this process's memory, so run ONE replica only (with several, sign-ins, grants \
                 and limits break across them); set [state] redis_url_env for replicas"
                    .to_owned(),
            );
        }
        if !redis && !self.network.trusted_proxies.is_empty() {
            out.push(
                "[network] trusted_proxies names a proxy, but the state is in memory: if that proxy balances over \
                 several replicas, set [state] redis_url_env (one replica behind a proxy is fine)"
                    .to_owned(),
            );
        }
        out
    }

    /// The `[audit]` section.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `audit.sqlite_path, audit.postgres_url` when the section is missing.
    pub fn audit_section(&self) -> Result<&AuditSection, ConfigError> {
        self.audit.as_ref().ok_or_else(|| {
            invalid(
                "audit.sqlite_path, audit.postgres_url",
                "missing: add an [audit] section with sqlite_path (one SQLite file) or postgres_url_env / \
                 postgres_url_file (PostgreSQL, shared by every replica); fctr does nothing it cannot audit",
            )
        })
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

    /// The adapter for whichever of `[okta]` and `[entra]` is present (credentials read now, no request made),
    /// sending its traffic by the `[network]` egress path ([`Config::egress`]).
    ///
    /// # Errors
    /// As [`Config::identity_provider`], [`OktaSection::adapter`] and [`EntraSection::adapter`].
    pub fn idp_adapter(&self) -> Result<Arc<dyn IdentityProvider>, ConfigError> {
        self.idp_adapter_sharing(None)
    }

    /// [`Config::idp_adapter`], keeping whatever the adapter holds between calls (the Entra MFA connector's
    /// pending pushes) in `coordinator` when given, so every replica sees it.
    ///
    /// # Errors
    /// As [`Config::idp_adapter`].
    pub fn idp_adapter_sharing(
        &self,
        coordinator: Option<Arc<dyn fctr_ports::Coordinator>>,
    ) -> Result<Arc<dyn IdentityProvider>, ConfigError> {
        let egress = self.network.egress()?;
        Ok(match self.identity_provider()? {
            IdpSection::Okta(o) => Arc::new(o.adapter(&egress)?),
            IdpSection::Entra(e) => {
                let adapter = e.adapter(&egress)?;
                if let Some(c) = coordinator {
                    adapter.share_pending_pushes(c);
                }
                Arc::new(adapter)
            }
        })
    }

    /// The reader of the IdP's own change log for out-of-band change detection: the Okta System Log (scope
    /// `okta.logs.read`) or Entra's directory audit log (Graph application permissions `AuditLog.Read.All` and
    /// `Directory.Read.All`). `None` is kept for an IdP without one. The Okta adapter asks for the log scope with
    /// a token of its own, so an app without that grant still works for everything else; on Entra a missing
    /// permission fails only the log read.
    ///
    /// # Errors
    /// As [`Config::idp_adapter`].
    pub fn change_feed(&self) -> Result<Option<Arc<dyn fctr_ports::ChangeFeed>>, ConfigError> {
        let egress = self.network.egress()?;
        Ok(match self.identity_provider()? {
            IdpSection::Okta(o) => Some(Arc::new(o.adapter(&egress)?)),
            IdpSection::Entra(e) => Some(Arc::new(e.adapter(&egress)?)),
        })
    }

    /// The path traffic to the identity provider takes (`[network] egress_proxy`, `egress_bind`): for the
    /// adapters and for agent sign-in alike. Direct when neither is set.
    ///
    /// # Errors
    /// As [`NetworkSection::egress`].
    pub fn egress(&self) -> Result<fctr_ports::Egress, ConfigError> {
        self.network.egress()
    }

    /// The listen address (default `127.0.0.1:8080`).
    #[must_use]
    pub fn listen(&self) -> SocketAddr {
        self.server
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    /// The pseudonymizer from `[pseudonymization]` (key read now).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `pseudonymization` (missing section), `pseudonymization.key` (missing,
    /// unreadable or short) or `pseudonymization.key_id`.
    pub fn pseudonymizer(&self) -> Result<Pseudonymizer, ConfigError> {
        let p = self
            .pseudonymization
            .as_ref()
            .ok_or_else(|| invalid("pseudonymization", "missing section"))?;
        let key = p.key()?;
        let key_id = KeyId::parse(p.key_id.clone())
            .map_err(|e| invalid("pseudonymization.key_id", e.to_string()))?;
        Pseudonymizer::new(key_id, &key).map_err(|e| invalid("pseudonymization.key", e.to_string()))
    }

    /// The tenant label (`[server] tenant`, default `default`).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `server.tenant`.
    pub fn tenant(&self) -> Result<TenantId, ConfigError> {
        TenantId::parse(
            self.server
                .tenant
                .clone()
                .unwrap_or_else(|| "default".into()),
        )
        .map_err(|e| invalid("server.tenant", e.to_string()))
    }

    /// Loads the policy file, or the default policy.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the policy parser's message (line and column).
    pub fn load_policy(&self) -> Result<Policy, ConfigError> {
        match &self.policy.file {
            None => Ok(Policy::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        "policy.file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Policy::parse(&text).map_err(|e| invalid("policy.file", e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn each_env_file_pair_reads_into_one_secret_source() {
        let text = "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"T\"\n\
                    [sign_in]\nissuer = \"https://acme.okta.com\"\nclient_id = \"0oa1\"\nclient_secret_file = \"/s\"\n\
                    [pseudonymization]\nkey_id = \"k1\"\nkey_env = \"K\"\n\
                    [audit]\nsqlite_path = \"/a\"\ncheckpoint_key_file = \"/c\"\n";
        let c = Config::parse(text, Path::new("x.toml")).unwrap();
        let okta = c.okta.as_ref().unwrap();
        assert!(matches!(&okta.api_token, Some(SecretSource::Env(v)) if v == "T"));
        let s = c.sign_in.as_ref().unwrap();
        assert!(matches!(&s.client_secret, Some(SecretSource::File(p)) if p == Path::new("/s")));
        let p = c.pseudonymization.as_ref().unwrap();
        assert!(matches!(&p.key, Some(SecretSource::Env(v)) if v == "K"));
        let a = c.audit.as_ref().unwrap();
        assert!(matches!(&a.checkpoint_key, Some(SecretSource::File(p)) if p == Path::new("/c")));
    }

    #[test]
    fn okta_max_in_flight_is_read_and_checked_by_the_adapter() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "test-ssws-token").unwrap();
        let okta = |extra: &str| {
            let text = format!(
                "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_file = {:?}\n{extra}",
                token.display().to_string()
            );
            Config::parse(&text, Path::new("x.toml"))
                .unwrap()
                .okta
                .unwrap()
        };
        assert_eq!(okta("").max_in_flight, None);
        let eight = okta("max_in_flight = 8\n");
        assert_eq!(eight.max_in_flight, Some(8));
        assert!(eight.adapter(&fctr_ports::Egress::direct()).is_ok());
        let e = okta("max_in_flight = 0\n")
            .adapter(&fctr_ports::Egress::direct())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("okta") && e.contains("max_in_flight"), "{e}");
    }

    #[test]
    fn both_keys_of_a_pair_are_refused_with_the_position() {
        let text = "[pseudonymization]\nkey_id = \"k1\"\nkey_env = \"K\"\nkey_file = \"/k\"\n";
        let e = Config::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key_env or key_file, not both"), "{e}");
        assert!(e.contains("line "), "{e}");
        let text = "[entra]\ntenant_id = \"t\"\nclient_id = \"c\"\n[entra.connector]\n\
                    client_secret_env = \"S\"\nclient_secret_file = \"/s\"\n";
        let e = Config::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("client_secret_env or client_secret_file, not both"),
            "{e}"
        );
    }

    #[test]
    fn audit_names_exactly_one_store() {
        let parse = |audit: &str| Config::parse(&format!("[audit]\n{audit}"), Path::new("x.toml"));
        let c = parse("postgres_url_env = \"PG\"\npostgres_schema = \"fctr\"\n").unwrap();
        let a = c.audit.as_ref().unwrap();
        assert!(matches!(
            a.store().unwrap(),
            AuditStoreSection::Postgres { url: SecretSource::Env(v), schema: "fctr" } if v == "PG"
        ));
        let c = parse("postgres_url_file = \"/u\"\n").unwrap();
        assert!(matches!(
            c.audit.as_ref().unwrap().store().unwrap(),
            AuditStoreSection::Postgres {
                schema: "public",
                ..
            }
        ));
        let c = parse("sqlite_path = \"/a\"\n").unwrap();
        assert!(matches!(
            c.audit.as_ref().unwrap().store().unwrap(),
            AuditStoreSection::Sqlite(p) if p == Path::new("/a")
        ));
        for (bad, says) in [
            (
                "sqlite_path = \"/a\"\npostgres_url_env = \"PG\"\n",
                "exactly one of sqlite_path (one SQLite file) and postgres_url_env / postgres_url_file",
            ),
            (
                "checkpoint_key_env = \"K\"\n",
                "exactly one of sqlite_path (one SQLite file) and postgres_url_env / postgres_url_file",
            ),
            (
                "postgres_url_env = \"PG\"\npostgres_url_file = \"/u\"\n",
                "postgres_url_env or postgres_url_file, not both",
            ),
            (
                "sqlite_path = \"/a\"\npostgres_schema = \"fctr\"\n",
                "postgres_schema applies to PostgreSQL only",
            ),
            ("postgres_url = \"postgres://x\"\n", "unknown field"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.contains("line "), "{e}");
        }
        // Built in code with both: refused by name.
        let mut a = AuditSection::at(PathBuf::from("/a"));
        a.postgres_url = Some(SecretSource::Env("PG".into()));
        let e = a.store().unwrap_err().to_string();
        assert!(e.contains("audit.sqlite_path, audit.postgres_url"), "{e}");
    }

    #[test]
    fn the_postgres_url_is_a_secret_checked_for_its_scheme_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("url");
        let password = format!("pw{:016x}", 0x5eed_u64 * 7919);
        std::fs::write(&f, format!("mysql://u:{password}@db/fctr\n")).unwrap();
        let mut a = AuditSection::at(PathBuf::from("/a"));
        a.sqlite_path = None;
        a.postgres_url = Some(SecretSource::File(f.clone()));
        let e = a.postgres_url().unwrap_err().to_string();
        assert!(e.contains("audit.postgres_url"), "{e}");
        assert!(!e.contains(&password) && !e.contains("mysql"), "{e}");
        std::fs::write(&f, format!("postgres://u:{password}@db/fctr\n")).unwrap();
        let url = a.postgres_url().unwrap().unwrap();
        assert!(secrecy::ExposeSecret::expose_secret(&url).ends_with("@db/fctr"));
        assert!(!format!("{a:?}").contains(&password));
    }

    #[test]
    fn the_out_of_band_schedule_has_defaults_and_refuses_what_cannot_work() {
        let parse = |t: &str| Config::parse(t, Path::new("x.toml"));
        assert!(parse("").unwrap().out_of_band.is_none(), "off unless asked");
        let s = parse("[out_of_band]\nscan_minutes = 15\n")
            .unwrap()
            .out_of_band
            .unwrap()
            .schedule();
        assert_eq!(s.every, std::time::Duration::from_secs(15 * 60));
        assert_eq!(s.lookback, std::time::Duration::from_secs(60 * 60));
        assert_eq!(s.tolerance, std::time::Duration::from_secs(5 * 60));
        assert!(
            s.remember() > s.lookback + s.tolerance,
            "outlives every window"
        );
        let s = parse("[out_of_band]\nscan_minutes = 120\n")
            .unwrap()
            .out_of_band
            .unwrap()
            .schedule();
        assert_eq!(
            s.lookback,
            std::time::Duration::from_secs(240 * 60),
            "twice the interval"
        );
        for bad in [
            "scan_minutes = 0",
            "scan_minutes = 1441",
            "scan_minutes = 30\nlookback_minutes = 10",
            "scan_minutes = 30\nlookback_minutes = 59",
            "scan_minutes = 30\nlookback_minutes = 10081",
            "scan_minutes = 30\ntolerance_minutes = 0",
            "scan_minutes = 30\nevery = 3",
            "lookback_minutes = 60",
        ] {
            let e = parse(&format!("[out_of_band]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("x.toml"), "{bad}: {e}");
        }
    }

    #[test]
    fn caller_sign_in_has_defaults_and_refuses_what_would_not_demand_mfa() {
        let parse = |t: &str| Config::parse(t, Path::new("x.toml"));
        assert!(
            parse("").unwrap().caller_sign_in.is_none(),
            "off unless asked"
        );
        let c = parse("[caller_sign_in]\n").unwrap().caller_sign_in.unwrap();
        assert_eq!((c.link_minutes, c.max_auth_age_seconds), (10, 300));
        assert_eq!(c.links().lifetime, chrono::Duration::minutes(10));
        for ok in [
            "acr_values = \"urn:okta:loa:2fa:any\"",
            "acr_values = \"phr\"",
            "auth_context = \"c1\"",
            "auth_context = \"c99\"",
        ] {
            assert!(parse(&format!("[caller_sign_in]\n{ok}\n")).is_ok(), "{ok}");
        }
        for bad in [
            "link_minutes = 0",
            "link_minutes = 61",
            "max_auth_age_seconds = 29",
            "max_auth_age_seconds = 601",
            "acr_values = \"urn:okta:loa:1fa:any\"",
            "acr_values = \"urn:okta:loa:2fa:any:ifpossible\"",
            "acr_values = \"\"",
            "auth_context = \"c0\"",
            "auth_context = \"c100\"",
            "auth_context = \"mfa\"",
            "prompt = \"none\"",
        ] {
            let e = parse(&format!("[caller_sign_in]\n{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("x.toml"), "{bad}: {e}");
        }
    }

    #[test]
    fn egress_keys_parse_and_the_environment_can_set_them_per_host() {
        let mut c = Config::parse(
            "[network]\negress_proxy = \"http://proxy.internal:3128\"\n",
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(
            c.egress().unwrap().to_string(),
            "via proxy proxy.internal:3128"
        );
        c.apply_env(|k| match k {
            "FCTR_NETWORK_EGRESS_PROXY" => Some("http://10.1.2.3:8080".to_owned()),
            "FCTR_NETWORK_EGRESS_BIND" => Some("192.0.2.7".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.egress().unwrap().to_string(),
            "via proxy 10.1.2.3:8080, bound to 192.0.2.7"
        );
        let password = format!("pw{}", 13 * 17);
        let e = c
            .apply_env(|k| {
                (k == "FCTR_NETWORK_EGRESS_PROXY").then(|| format!("http://u:{password}@p:1"))
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("FCTR_NETWORK_EGRESS_PROXY"), "{e}");
        assert!(!e.contains(&password), "{e}");
        let e = c
            .apply_env(|k| (k == "FCTR_NETWORK_EGRESS_BIND").then(|| "eth0".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("FCTR_NETWORK_EGRESS_BIND"), "{e}");
        assert!(Config::default().egress().unwrap().is_direct());
    }

    #[test]
    fn a_sqlite_override_cannot_replace_a_postgres_store() {
        let mut c =
            Config::parse("[audit]\npostgres_url_env = \"PG\"\n", Path::new("x.toml")).unwrap();
        let e = c
            .apply_env(|k| (k == "FCTR_AUDIT_SQLITE_PATH").then(|| "/a".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("FCTR_AUDIT_SQLITE_PATH"), "{e}");
        let mut c = Config::parse("[audit]\nsqlite_path = \"/b\"\n", Path::new("x.toml")).unwrap();
        c.apply_env(|k| (k == "FCTR_AUDIT_SQLITE_PATH").then(|| "/a".to_owned()))
            .unwrap();
        assert!(matches!(
            c.audit.unwrap().store().unwrap(),
            AuditStoreSection::Sqlite(p) if p == Path::new("/a")
        ));
    }

    #[test]
    fn stack_parts_come_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k".repeat(40)).unwrap();
        let c = Config::parse(
            &format!(
                "[server]\ntenant = \"acme\"\n[pseudonymization]\nkey_id = \"k1\"\nkey_file = \"{}\"\n\
                 [retention]\naudit_days = 7\n",
                key.display()
            ),
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(c.tenant().unwrap().as_str(), "acme");
        assert!(c.pseudonymizer().is_ok());
        assert_eq!(c.retention.retention().audit, chrono::Duration::days(7));
        assert_eq!(Config::default().tenant().unwrap().as_str(), "default");
        let e = c.idp_adapter().err().unwrap().to_string();
        assert!(e.contains("okta, entra: missing"), "{e}");
        std::fs::write(&key, "short").unwrap();
        let e = c.pseudonymizer().err().unwrap().to_string();
        assert!(
            e.contains("pseudonymization.key: must be at least 32 bytes"),
            "{e}"
        );
        assert!(!e.contains("short"), "{e}");
    }
}
