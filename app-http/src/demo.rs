//! Demo mode and the production wiring: build a complete [`AppState`] from a configuration, or with none at all
//! (demo: the testkit's fake Okta in-process on loopback, fake people, a random pseudonymization key).

use crate::config::{Config, ConfigError, IdpSection, read_secret};
use crate::metrics::CountingIdp;
use crate::oidc::{JwksRefresh, Oidc, OidcSettings};
use crate::poller::PollSettings;
use crate::session::{MemorySessionStore, Timeouts};
use crate::state::{AppState, Checkpoints, DemoInfo, Settings, StateParts};
use fctr_core::policy::Policy;
use fctr_core::{Engine, Ports, Pseudonymizer, Retention};
use fctr_memory::{MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::{
    AuditLog, Clock, IdentityProvider, KeyId, SecretString, SystemClock, TenantId, UsageLedger,
};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use rand::RngCore as _;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// Why the stack could not be built. Messages name the part, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something failed to start.
    #[error("{0}")]
    Start(String),
}

fn start(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::Start(format!("{what}: {e}"))
}

/// Demo options.
pub struct DemoOptions {
    /// Where agents will reach the portal (its `/auth/callback` is registered with the fake).
    pub public_url: Url,
    /// Directory for the SQLite audit file; `None` keeps audit in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// The clock (tests pass a manual clock).
    pub clock: Arc<dyn Clock>,
    /// Poller timing.
    pub poll: PollSettings,
    /// Session timeouts.
    pub timeouts: Timeouts,
    /// Options for the fake Okta.
    pub fake: FakeOktaOptions,
    /// Refuse agent ID tokens without MFA in `amr`.
    pub require_mfa: bool,
    /// The network edge (default: loopback and private ranges allowed, default limits).
    pub edge: crate::edge::EdgeSettings,
    /// Wraps the IdP adapter before the engine gets it (tests: a wrapper that pauses or fails a chosen call).
    pub wrap_idp: Option<IdpWrapper>,
}

/// A function that wraps the IdP adapter ([`DemoOptions::wrap_idp`]).
pub type IdpWrapper =
    Box<dyn FnOnce(Arc<dyn IdentityProvider>) -> Arc<dyn IdentityProvider> + Send>;

impl std::fmt::Debug for DemoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOptions")
            .field("public_url", &self.public_url.as_str())
            .finish_non_exhaustive()
    }
}

impl DemoOptions {
    /// Defaults for a portal at `public_url`: memory audit, system clock, default timings.
    #[must_use]
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            data_dir: None,
            clock: Arc::new(SystemClock),
            poll: PollSettings::default(),
            timeouts: Timeouts::default(),
            fake: FakeOktaOptions::default(),
            require_mfa: false,
            edge: crate::edge::EdgeSettings::default(),
            wrap_idp: None,
        }
    }
}

/// A running demo stack.
pub struct Demo {
    /// The portal state.
    pub state: AppState,
    /// The fake Okta (phones, fixtures, OIDC hooks).
    pub fake: FakeOkta,
    /// The counting wrapper around the IdP (upstream polls).
    pub idp: Arc<CountingIdp>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("fake", &self.fake)
            .finish_non_exhaustive()
    }
}

/// A random 32-byte key, hex (demo only: pseudonyms change every start).
fn random_key() -> SecretString {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    SecretString::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn callback(public_url: &Url) -> Result<Url, BuildError> {
    public_url
        .join("/auth/callback")
        .map_err(|e| start("public URL", e))
}

struct Stores {
    audit: Arc<dyn AuditLog>,
    usage: Arc<dyn UsageLedger>,
    checkpoints: Option<Checkpoints>,
}

/// The SQLite audit store, its checkpoints HMAC'd with `checkpoint_key`, checkpointed every `interval` once the
/// portal starts the checkpointer.
async fn sqlite_stores(
    path: PathBuf,
    checkpoint_key: SecretString,
    interval: std::time::Duration,
) -> Result<Stores, BuildError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| start("audit directory", e))?;
        }
    }
    let options = fctr_sqlite::SqliteOptions::default().with_checkpoint_key(checkpoint_key);
    let store = fctr_sqlite::SqliteStore::open(&path, options)
        .await
        .map_err(|e| start("audit store", e))?;
    let checkpoints = Some(Checkpoints {
        store: store.clone(),
        interval,
    });
    let store = Arc::new(store);
    Ok(Stores {
        audit: store.clone(),
        usage: store,
        checkpoints,
    })
}

#[allow(clippy::too_many_arguments)]
async fn assemble(
    idp: Arc<CountingIdp>,
    stores: Stores,
    clock: Arc<dyn Clock>,
    policy: Policy,
    pseudo: Pseudonymizer,
    tenant: TenantId,
    retention: Retention,
    oidc: OidcSettings,
    jwks_refresh: JwksRefresh,
    settings: Settings,
) -> Result<AppState, BuildError> {
    let idp_dyn: Arc<dyn IdentityProvider> = idp;
    let ports = Ports {
        idp: Arc::clone(&idp_dyn),
        audit: Arc::clone(&stores.audit),
        usage: Arc::clone(&stores.usage),
        grants: Arc::new(MemoryGrantStore::new(Arc::clone(&clock))),
        rate: Arc::new(MemoryRateLimiter::new(Arc::clone(&clock))),
        clock: Arc::clone(&clock),
    };
    let engine =
        Arc::new(Engine::new(ports, Arc::new(policy), pseudo, tenant).with_retention(retention));
    engine
        .announce_policy()
        .await
        .map_err(|e| start("audit log (announcing the policy)", e))?;
    let oidc = Oidc::discover_with(oidc, Arc::clone(&clock), jwks_refresh)
        .await
        .map_err(|e| start("agent sign-in", e))?;
    let sessions = Arc::new(MemorySessionStore::new(
        Arc::clone(&clock),
        settings.timeouts,
    ));
    Ok(AppState::new(StateParts {
        engine,
        idp: idp_dyn,
        audit: stores.audit,
        clock,
        sessions,
        oidc: Arc::new(oidc),
        settings,
        checkpoints: stores.checkpoints,
    }))
}

/// Starts the demo stack: fake Okta on a random loopback port, an Okta adapter against it, the default policy,
/// a random pseudonymization key, audit in SQLite (or memory), agent sign-in through the fake's own pages.
///
/// # Errors
/// [`BuildError::Start`] naming what failed.
pub async fn start_demo(opts: DemoOptions) -> Result<Demo, BuildError> {
    let fake = FakeOkta::start(opts.fake.clone())
        .await
        .map_err(|e| start("fake Okta", e))?;
    let redirect = callback(&opts.public_url)?;
    fake.state().add_redirect_uri(redirect.as_str());
    let okta = OktaAdapter::new(OktaConfig::new(
        fake.base_url(),
        OktaAuth::ApiToken(SecretString::from(fake.api_token().to_owned())),
    ))
    .map_err(|e| start("Okta adapter", e))?;
    let mut adapter: Arc<dyn IdentityProvider> = Arc::new(okta);
    let mut opts = opts;
    if let Some(wrap) = opts.wrap_idp.take() {
        adapter = wrap(adapter);
    }
    let idp = Arc::new(CountingIdp::new(adapter));
    let stores = match &opts.data_dir {
        // Demo: a random checkpoint key per run (the file's checkpoints verify only during that run).
        Some(dir) => {
            sqlite_stores(
                dir.join("demo-audit.sqlite"),
                random_key(),
                std::time::Duration::from_secs(crate::config::DEFAULT_CHECKPOINT_INTERVAL_SECS),
            )
            .await?
        }
        None => Stores {
            audit: Arc::new(MemoryAuditLog::new()),
            usage: Arc::new(MemoryUsageLedger::new()),
            checkpoints: None,
        },
    };
    let key_id = KeyId::parse("demo").map_err(|e| start("key id", e))?;
    let pseudo =
        Pseudonymizer::new(key_id, &random_key()).map_err(|e| start("pseudonymizer", e))?;
    let client = fake.oidc_client();
    let oidc = OidcSettings {
        issuer: client.issuer.clone(),
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        redirect_uri: redirect,
        groups_claim: "groups".into(),
        require_mfa: opts.require_mfa,
    };
    let mut phone_url = fake.base_url();
    phone_url.set_path("/_fake/phone");
    let settings = Settings {
        public_url: opts.public_url.clone(),
        timeouts: opts.timeouts,
        demo: Some(DemoInfo { phone_url }),
        poll: opts.poll,
        edge: opts.edge,
    };
    let tenant = TenantId::parse("demo").map_err(|e| start("tenant", e))?;
    let state = assemble(
        Arc::clone(&idp),
        stores,
        opts.clock,
        Policy::default(),
        pseudo,
        tenant,
        Retention::default(),
        oidc,
        JwksRefresh::default(),
        settings,
    )
    .await?;
    Ok(Demo { state, fake, idp })
}

/// Builds the production stack from a validated configuration: the Okta or the Entra adapter (whichever section
/// is present), behind the same ports.
///
/// # Errors
/// [`BuildError`] naming the key or the part that failed.
pub async fn from_config(cfg: &Config) -> Result<AppState, BuildError> {
    cfg.validate()?;
    let missing = |k: &str| {
        BuildError::Config(ConfigError::Invalid {
            key: k.into(),
            problem: "missing".into(),
        })
    };
    let adapter: Arc<dyn IdentityProvider> = match cfg.identity_provider()? {
        IdpSection::Okta(okta_cfg) => Arc::new(okta_cfg.adapter()?),
        IdpSection::Entra(entra_cfg) => Arc::new(entra_cfg.adapter()?),
    };
    let idp = Arc::new(CountingIdp::new(adapter));
    let audit = cfg.audit.as_ref().ok_or_else(|| missing("audit"))?;
    let stores = sqlite_stores(
        audit.sqlite_path.clone(),
        audit.checkpoint_key()?,
        audit.checkpoint_interval()?,
    )
    .await?;
    let p = cfg
        .pseudonymization
        .as_ref()
        .ok_or_else(|| missing("pseudonymization"))?;
    let key = read_secret(
        "pseudonymization.key",
        p.key_env.as_deref(),
        p.key_file.as_deref(),
    )?;
    let key_id = KeyId::parse(p.key_id.clone()).map_err(|e| start("pseudonymization.key_id", e))?;
    let pseudo = Pseudonymizer::new(key_id, &key).map_err(|e| start("pseudonymization.key", e))?;
    let s = cfg.sign_in.as_ref().ok_or_else(|| missing("sign_in"))?;
    let public_url = cfg
        .server
        .public_url
        .clone()
        .ok_or_else(|| missing("server.public_url"))?;
    let oidc = OidcSettings {
        issuer: s.issuer.clone(),
        client_id: s.client_id.clone(),
        client_secret: read_secret(
            "sign_in.client_secret",
            s.client_secret_env.as_deref(),
            s.client_secret_file.as_deref(),
        )?,
        redirect_uri: callback(&public_url)?,
        groups_claim: s.groups_claim.clone().unwrap_or_else(|| "groups".into()),
        require_mfa: s.require_mfa,
    };
    let d = Timeouts::default();
    let timeouts = Timeouts {
        idle: cfg.session.idle_minutes.map_or(d.idle, |m| {
            std::time::Duration::from_secs(u64::from(m) * 60)
        }),
        absolute: cfg.session.absolute_hours.map_or(d.absolute, |h| {
            std::time::Duration::from_secs(u64::from(h) * 3600)
        }),
        pre_login: d.pre_login,
    };
    let dr = Retention::default();
    let retention = Retention {
        audit: cfg
            .retention
            .audit_days
            .map_or(dr.audit, |x| chrono::Duration::days(i64::from(x))),
        usage: cfg
            .retention
            .usage_days
            .map_or(dr.usage, |x| chrono::Duration::days(i64::from(x))),
        runtime_logs: cfg
            .retention
            .runtime_log_days
            .map_or(dr.runtime_logs, |x| chrono::Duration::days(i64::from(x))),
    };
    let tenant = TenantId::parse(
        cfg.server
            .tenant
            .clone()
            .unwrap_or_else(|| "default".into()),
    )
    .map_err(|e| start("server.tenant", e))?;
    let settings = Settings {
        public_url,
        timeouts,
        demo: None,
        poll: PollSettings::default(),
        edge: cfg.edge_settings()?,
    };
    assemble(
        idp,
        stores,
        Arc::new(SystemClock),
        cfg.load_policy()?,
        pseudo,
        tenant,
        retention,
        oidc,
        cfg.jwks_refresh()?,
        settings,
    )
    .await
}
