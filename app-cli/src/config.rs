//! The deployment configuration: the file both shells read ([`fctr_wiring::config::Config`]), and what the CLI
//! builds from it (the Okta or Entra adapter, the audit store, the policy, the pseudonymizer, the tenant),
//! with the CLI's own error messages and next steps.
//!
//! The CLI needs only some sections (`[okta]` or `[entra]`, `[audit]`, `[policy]`, `[pseudonymization]`,
//! `[server] tenant`); it checks those where it uses them rather than calling the portal's `validate`, which also
//! requires the portal-only `[sign_in]` and `[server] public_url`.
//!
//! The Entra adapter comes from the `[entra]` section through the wiring's builder
//! ([`fctr_wiring::config::EntraSection::adapter`]: one parser, one set of rules, the portal's too), or from
//! flags for an ad-hoc `fctr contract-test --provider entra --base-url` run ([`entra_adapter`]).

use crate::{Fail, Globals};
use fctr_core::Pseudonymizer;
use fctr_core::policy::Policy;
use fctr_entra::EntraAdapter;
#[cfg(feature = "demo")]
use fctr_entra::{EntraConfig, EntraCredential};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::{Egress, KeyId, SecretString, TenantId};
use fctr_wiring::config::{
    AuditSection, AuditStoreSection, Config, ConfigError, EntraSection, IdpSection, OktaSection,
    read_secret,
};
use std::path::{Path, PathBuf};
use url::Url;

/// The environment variable an ad-hoc run reads the SSWS token from, unless `--api-token-env` names another.
pub(crate) const DEFAULT_TOKEN_ENV: &str = "FCTR_OKTA_TOKEN";

// Only `fctr contract-test` (feature `demo`) uses it.
#[cfg(feature = "demo")]
/// The environment variable the Entra client secret is read from, unless `--client-secret-env` names another.
pub(crate) const DEFAULT_ENTRA_SECRET_ENV: &str = "FCTR_ENTRA_CLIENT_SECRET";

/// Reads and parses a configuration file (with `FCTR_…` environment overrides, as the portal does).
pub(crate) fn load(path: &Path) -> Result<Config, Fail> {
    Config::load(path).map_err(|e| {
        Fail::usage(
            format!("configuration: {e}"),
            "fix the file (fctr-portal --check-config FILE validates the whole file)",
        )
    })
}

/// The configuration named by `--config` / `FCTR_CONFIG`, if any.
pub(crate) fn load_opt(g: &Globals) -> Result<Option<(PathBuf, Config)>, Fail> {
    match &g.config {
        None => Ok(None),
        Some(p) => load(p).map(|c| Some((p.clone(), c))),
    }
}

/// Which audit store a command reads: `--db FILE` (SQLite), else the configuration's `[audit]` store.
pub(crate) enum AuditTarget {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL read from `postgres_url_env` / `postgres_url_file`), in a schema.
    Postgres {
        /// The connection URL (a secret: it holds credentials).
        url: SecretString,
        /// The schema.
        schema: String,
    },
}

impl AuditTarget {
    /// Names the store in messages (never the URL).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres { schema, .. } => format!("PostgreSQL (schema {schema})"),
        }
    }
}

/// Where the audit store is: `--db` (a SQLite file), else `[audit]` of the configuration (`sqlite_path`, or
/// `postgres_url_env` / `postgres_url_file` with `postgres_schema`).
pub(crate) fn audit_target(db: Option<&PathBuf>, g: &Globals) -> Result<AuditTarget, Fail> {
    if let Some(p) = db {
        return Ok(AuditTarget::Sqlite(p.clone()));
    }
    match load_opt(g)? {
        Some((path, cfg)) => {
            let Some(audit) = &cfg.audit else {
                return Err(Fail::usage(
                    format!(
                        "{} has no [audit] sqlite_path or postgres_url_env / postgres_url_file",
                        path.display()
                    ),
                    "add [audit] sqlite_path = \"/var/lib/fctr/audit.sqlite\" (or the portal's PostgreSQL URL \
                     source), or pass --db FILE",
                ));
            };
            audit_section_target(&path, audit)
        }
        None => Err(Fail::usage(
            "no audit database given",
            "pass --db FILE, or --config FILE (or FCTR_CONFIG) with [audit] sqlite_path or postgres_url_env",
        )),
    }
}

/// The store an `[audit]` section names (the PostgreSQL URL read now).
pub(crate) fn audit_section_target(path: &Path, audit: &AuditSection) -> Result<AuditTarget, Fail> {
    let fail = |e: ConfigError| {
        Fail::usage(
            format!("{}: {e}", path.display()),
            "fix the [audit] section (fctr-portal --check-config FILE validates the whole file)",
        )
    };
    match audit.store().map_err(fail)? {
        AuditStoreSection::Sqlite(p) => Ok(AuditTarget::Sqlite(p.to_path_buf())),
        AuditStoreSection::Postgres { schema, .. } => {
            let url = audit.postgres_url().map_err(fail)?.ok_or_else(|| {
                fail(ConfigError::Invalid {
                    key: "audit.postgres_url".into(),
                    problem: "missing".into(),
                })
            })?;
            Ok(AuditTarget::Postgres {
                url,
                schema: schema.to_owned(),
            })
        }
    }
}

/// The audit checkpoint key for `fctr audit verify`: `--checkpoint-key-env` / `--checkpoint-key-file`, else the
/// `[audit]` section of `--config` when it names one, else none (the checkpoints' MACs are then not checked).
pub(crate) fn checkpoint_key(
    env: Option<&str>,
    file: Option<&Path>,
    g: &Globals,
) -> Result<Option<SecretString>, Fail> {
    let fail = |e: ConfigError| {
        Fail::usage(
            format!("checkpoint key: {e}"),
            "give the portal's [audit] checkpoint key: --checkpoint-key-file FILE or --checkpoint-key-env VAR",
        )
    };
    if env.is_some() || file.is_some() {
        return read_secret("checkpoint key", env, file)
            .map(Some)
            .map_err(fail);
    }
    match load_opt(g)?.and_then(|(_, c)| c.audit) {
        Some(a) if a.checkpoint_key.is_some() => a.checkpoint_key().map(Some).map_err(fail),
        _ => Ok(None),
    }
}

/// Whether a URL points at this machine (a fake IdP started by `fctr mock-idp`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    fctr_wiring::config::is_loopback(url)
}

/// The fake Okta's documented default token, for a loopback URL (`fctr mock-idp okta`); none in a build without
/// the `demo` feature (no testkit, no fixture credentials).
#[cfg(feature = "demo")]
fn fake_okta_token() -> Option<&'static str> {
    Some(fctr_testkit::okta::DEFAULT_API_TOKEN)
}

#[cfg(not(feature = "demo"))]
fn fake_okta_token() -> Option<&'static str> {
    None
}

/// The fake Entra's documented default client secret, as [`fake_okta_token`].
#[cfg(feature = "demo")]
fn fake_entra_secret() -> Option<&'static str> {
    Some(fctr_testkit::entra::DEFAULT_CLIENT_SECRET)
}

/// The SSWS token for an ad-hoc run (`--okta-url` / `--base-url`): from `var` (default `FCTR_OKTA_TOKEN`). A
/// loopback URL without the variable set gets the fake Okta's documented default token (in a build with the
/// `demo` feature).
pub(crate) fn ad_hoc_token(var: Option<&str>, url: &Url) -> Result<SecretString, Fail> {
    let name = var.unwrap_or(DEFAULT_TOKEN_ENV);
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
        _ if var.is_none() && is_loopback(url) && fake_okta_token().is_some() => {
            eprintln!(
                "note: {name} is not set; using the fake Okta's default token (for `fctr mock-idp okta` only)"
            );
            Ok(SecretString::from(
                fake_okta_token().unwrap_or_default().to_owned(),
            ))
        }
        _ => Err(Fail::usage(
            format!("environment variable {name} is not set or empty"),
            format!(
                "export {name}=<an Okta API token> (or name another variable with --api-token-env), \
                 or use --config with an [okta] section"
            ),
        )),
    }
}

/// The Entra app's client secret for an ad-hoc run: from `var` (default `FCTR_ENTRA_CLIENT_SECRET`). A loopback
/// URL without the variable set gets the fake Entra's documented default secret.
#[cfg(feature = "demo")]
pub(crate) fn entra_secret(var: Option<&str>, url: &Url) -> Result<SecretString, Fail> {
    let name = var.unwrap_or(DEFAULT_ENTRA_SECRET_ENV);
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
        _ if var.is_none() && is_loopback(url) && fake_entra_secret().is_some() => {
            eprintln!(
                "note: {name} is not set; using the fake Entra's default client secret (for `fctr mock-idp entra` only)"
            );
            Ok(SecretString::from(
                fake_entra_secret().unwrap_or_default().to_owned(),
            ))
        }
        _ => Err(Fail::usage(
            format!("environment variable {name} is not set or empty"),
            format!(
                "export {name}=<the app registration's client secret> (or name another variable with \
                 --client-secret-env)"
            ),
        )),
    }
}

// Only `fctr contract-test` (feature `demo`) uses it.
#[cfg(feature = "demo")]
/// Where the Entra adapter gets tokens and calls Graph, for a `--base-url`. A loopback URL is a fake Entra
/// (`fctr mock-idp entra`), which serves everything from one origin: authority `{base}/`, Graph `{base}/v1.0/`.
/// Any other URL is the Graph origin (e.g. `https://graph.microsoft.com`), with the public-cloud authority.
pub(crate) fn entra_endpoints(url: &Url) -> Result<(Url, Url), Fail> {
    let bad = || {
        Fail::usage(
            format!("--base-url {url}: not a usable base URL"),
            "give an origin such as http://127.0.0.1:8082 or https://graph.microsoft.com",
        )
    };
    let graph = url.join("/v1.0/").map_err(|_| bad())?;
    let authority = if is_loopback(url) {
        url.join("/").map_err(|_| bad())?
    } else {
        Url::parse(fctr_entra::DEFAULT_AUTHORITY).map_err(|_| bad())?
    };
    Ok((authority, graph))
}

// Only `fctr contract-test` (feature `demo`) uses it.
#[cfg(feature = "demo")]
/// Builds the Entra adapter (no network call), with a client secret and without the MFA connector.
pub(crate) fn entra_adapter(
    tenant_id: &str,
    client_id: &str,
    secret: SecretString,
    authority: Url,
    graph_base: Url,
) -> Result<EntraAdapter, Fail> {
    let settings = |e: fctr_entra::ConfigError| {
        Fail::usage(
            format!("Entra settings: {e}"),
            "check --tenant-id (a GUID or verified domain), --client-id (a GUID) and --base-url",
        )
    };
    let mut cfg = EntraConfig::new(tenant_id, client_id, EntraCredential::client_secret(secret))
        .map_err(settings)?;
    cfg.authority = authority;
    cfg.graph_base = graph_base;
    EntraAdapter::new(cfg).map_err(settings)
}

/// How to authenticate to Okta, from the `[okta]` section (SSWS token, or the OAuth service app with DPoP when
/// `dpop = true`): the portal's own reader ([`OktaSection::auth`]).
pub(crate) fn okta_auth(o: &OktaSection) -> Result<OktaAuth, Fail> {
    o.auth().map_err(|e| {
        Fail::usage(
            format!("configuration: {e}"),
            "set the [okta] credential: api_token_env / api_token_file, or client_id + key_id + private_key_file \
             (dpop = true only with the service app)",
        )
    })
}

/// The path IdP traffic takes (`[network] egress_proxy`, `egress_bind`; direct without a configuration), the
/// proxy password read now.
pub(crate) fn egress(cfg: Option<&Config>) -> Result<Egress, Fail> {
    cfg.map_or_else(
        || Ok(Egress::direct()),
        |c| {
            c.egress().map_err(|e| {
                Fail::usage(
                    format!("configuration: {e}"),
                    "fix [network] egress_proxy / egress_proxy_username / egress_proxy_password_env (or _file) \
                     / egress_bind (see docs/portal.md)",
                )
            })
        },
    )
}

/// Builds the Okta adapter (no network call), its traffic sent by `egress`.
pub(crate) fn okta_adapter(url: Url, auth: OktaAuth, egress: &Egress) -> Result<OktaAdapter, Fail> {
    let mut c = OktaConfig::new(url, auth);
    c.egress = egress.clone();
    OktaAdapter::new(c).map_err(|e| {
        Fail::usage(
            format!("Okta settings: {e}"),
            "check the org URL (https://<org>.okta.com, no path) and the credential",
        )
    })
}

/// The `[okta]` section, or a configuration error naming it (a file with both `[okta]` and `[entra]` is refused,
/// as the portal refuses it).
pub(crate) fn okta_section<'a>(path: &Path, cfg: &'a Config) -> Result<&'a OktaSection, Fail> {
    match cfg.identity_provider() {
        Ok(IdpSection::Okta(o)) => Ok(o),
        Ok(_) => Err(Fail::usage(
            format!(
                "{} has no [okta] section (it configures Entra)",
                path.display()
            ),
            "this needs Okta: use a file with an [okta] section, or --provider entra where the command has it",
        )),
        Err(e) if cfg.okta.is_some() => Err(idp_fail(path, &e)),
        Err(_) => Err(Fail::usage(
            format!("{} has no [okta] section", path.display()),
            "add [okta] org_url and a credential (see docs/cli.md)",
        )),
    }
}

// Only `fctr contract-test` (feature `demo`) uses it.
#[cfg(feature = "demo")]
/// The `[entra]` section, or a configuration error naming it (and the fix when the file has `[okta]` instead, or
/// both).
pub(crate) fn entra_section<'a>(path: &Path, cfg: &'a Config) -> Result<&'a EntraSection, Fail> {
    match idp_section(path, cfg)? {
        IdpSection::Entra(e) => Ok(e),
        _ => Err(Fail::usage(
            format!(
                "{} has no [entra] section (it configures Okta)",
                path.display()
            ),
            "use --provider okta with this file, or pass --base-url URL (e.g. of `fctr mock-idp entra`)",
        )),
    }
}

/// Which identity provider the file configures: exactly one of `[okta]` and `[entra]`, as the portal requires.
pub(crate) fn idp_section<'a>(path: &Path, cfg: &'a Config) -> Result<IdpSection<'a>, Fail> {
    cfg.identity_provider().map_err(|e| idp_fail(path, &e))
}

fn idp_fail(path: &Path, e: &ConfigError) -> Fail {
    Fail::usage(
        format!("{}: {e}", path.display()),
        "configure exactly one identity provider: [okta] or [entra] (see docs/portal.md)",
    )
}

/// The Entra adapter from `[entra]` (credential read from the environment or files; no network call), its
/// traffic sent by `egress`.
pub(crate) fn entra_from_section(e: &EntraSection, egress: &Egress) -> Result<EntraAdapter, Fail> {
    e.adapter(egress).map_err(|err| {
        Fail::usage(
            format!("configuration: {err}"),
            "fix the [entra] section: tenant_id and client_id (GUIDs), and client_secret_env / \
             client_secret_file, or private_key_file with certificate_file (see docs/entra-setup.md)",
        )
    })
}

// Only `fctr contract-test` (feature `demo`) uses it.
#[cfg(feature = "demo")]
/// The same tenant and endpoints as `[entra]`, authenticating with `secret` instead and without the connector
/// (the contract suite's refused-credential checks).
pub(crate) fn entra_with_secret(
    e: &EntraSection,
    secret: SecretString,
    egress: &Egress,
) -> Result<EntraAdapter, Fail> {
    let settings =
        |err: ConfigError| Fail::usage(format!("configuration: {err}"), "fix the [entra] section");
    let mut cfg = e.adapter_config().map_err(settings)?;
    cfg.egress = egress.clone();
    cfg.credential = EntraCredential::client_secret(secret);
    cfg.connector = None;
    EntraAdapter::new(cfg)
        .map_err(|err| Fail::usage(format!("Entra settings: {err}"), "fix the [entra] section"))
}

/// The pseudonymizer from `[pseudonymization]`.
pub(crate) fn pseudonymizer(path: &Path, cfg: &Config) -> Result<Pseudonymizer, Fail> {
    cfg.pseudonymizer().map_err(|e| match &e {
        ConfigError::Invalid { key, .. } if key == "pseudonymization" => Fail::usage(
            format!("{} has no [pseudonymization] section", path.display()),
            "add [pseudonymization] key_id and key_env (or key_file), the same key the portal uses",
        ),
        ConfigError::Invalid { key, problem }
            if key == "pseudonymization.key" && problem.contains("at least 32 bytes") =>
        {
            Fail::usage(
                format!("configuration: {e}"),
                "use at least 32 random bytes (e.g. `openssl rand -base64 32`)",
            )
        }
        ConfigError::Invalid { key, .. } if key == "pseudonymization.key_id" => Fail::usage(
            format!("configuration: {e}"),
            "use a short key id such as k1",
        ),
        _ => Fail::usage(
            format!("configuration: {e}"),
            "make the pseudonymization key available (at least 32 bytes), as for the portal",
        ),
    })
}

/// A random pseudonymization key for ad-hoc runs against a fake (pseudonyms differ on every run).
pub(crate) fn ephemeral_pseudonymizer() -> Result<Pseudonymizer, Fail> {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let id =
        KeyId::parse("adhoc").map_err(|e| Fail::usage(format!("key id: {e}"), "report a bug"))?;
    Pseudonymizer::new(id, &SecretString::from(hex))
        .map_err(|e| Fail::usage(format!("pseudonymizer: {e}"), "report a bug"))
}

/// The tenant label (`[server] tenant`, default `default`, as in the portal).
pub(crate) fn tenant(cfg: Option<&Config>) -> Result<TenantId, Fail> {
    let tenant = match cfg {
        Some(c) => c.tenant(),
        None => Config::default().tenant(),
    };
    tenant.map_err(|e| {
        Fail::usage(
            format!("configuration: {e}"),
            "use letters, digits, '-', '_' or '.'",
        )
    })
}

/// The policy: `--policy FILE`, else `[policy] file`, else the built-in default.
pub(crate) fn policy(file: Option<&PathBuf>, cfg: Option<&Config>) -> Result<Policy, Fail> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Fail::usage(
                format!("cannot read {}: {e}", f.display()),
                "check the path and permissions",
            )
        })?;
        return Policy::parse(&text).map_err(|e| {
            Fail::usage(
                format!("{}: {e}", f.display()),
                format!("run `fctr policy lint {}`", f.display()),
            )
        });
    }
    match cfg {
        Some(c) => c.load_policy().map_err(|e| {
            Fail::usage(
                format!("configuration: {e}"),
                "fix the policy file named by [policy] file (`fctr policy lint FILE`)",
            )
        }),
        None => Ok(Policy::default()),
    }
}
