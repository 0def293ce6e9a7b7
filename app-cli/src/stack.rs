//! Builds what `lookup` and `verify` run on: the IdP adapter, the audit store, the engine and the agent, from the
//! configuration file (production) or from flags against a local fake (ad hoc).
//!
//! The IdP is whichever of `[okta]` and `[entra]` the configuration has, held as `Arc<dyn IdentityProvider>`:
//! the engine, the policy and the audit trail are the same for both. What differs (an Entra push carries no number
//! to match, Entra cannot unlock, …) reaches the commands only through the engine's answers and the adapter's
//! capabilities, never through a rule of the CLI's own.
//!
//! The CLI is an operator tool: it runs with the configured IdP credentials, so whoever can run it with that
//! configuration can already do everything those credentials allow. `--agent-id` says who is at the keyboard
//! (pseudonymized into the audit log, as the portal does for signed-in agents); the role comes from that agent's
//! IdP groups through the policy, as in the portal, unless `--role` names one.

use crate::config::AuditTarget;
use crate::{Fail, Globals, config};
use clap::Args;
use fctr_core::{Agent, Denial, Engine, RequestContext, Retention};
use fctr_ports::{
    AgentId, Clock, IdentityProvider, PortError, Reason, RequestId, SecretString, SubjectId,
    SystemClock, UserQuery,
};
use fctr_sqlite::{SqliteOptions, SqliteStore, StoreError};
use fctr_wiring::config::{Config, IdpSection};
use fctr_wiring::{DurableStore, StackParts, Stores};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// Opens the SQLite audit store. With `must_exist`, a missing file is a usage error (no empty file is created).
pub(crate) async fn open_store(path: &Path, must_exist: bool) -> Result<SqliteStore, Fail> {
    open_store_with(path, must_exist, None).await
}

/// As [`open_store`], with the checkpoint key: verification then checks each checkpoint's HMAC.
pub(crate) async fn open_store_with(
    path: &Path,
    must_exist: bool,
    checkpoint_key: Option<SecretString>,
) -> Result<SqliteStore, Fail> {
    let mut options = SqliteOptions::default();
    if let Some(k) = checkpoint_key {
        options = options.with_checkpoint_key(k);
    }
    if must_exist && !path.is_file() {
        return Err(Fail::usage(
            format!("no audit database at {}", path.display()),
            "check --db or [audit] sqlite_path; the portal creates the file on first start",
        ));
    }
    SqliteStore::open(path, options).await.map_err(|e| match e {
        StoreError::Corrupt => Fail::check(
            format!("{}: {e}", path.display()),
            "the file was edited: keep it as evidence and run `fctr audit verify`",
        ),
        other => Fail::usage(
            format!("{}: {other}", path.display()),
            "check the path, its permissions, and that it is an fctr audit database",
        ),
    })
}

/// Opens the audit store a command reads: a SQLite file (with `must_exist`, a missing file is a usage error), or
/// the configured PostgreSQL database (its schema and tables are created if missing, as the portal does). With the
/// checkpoint key, verification checks each checkpoint's HMAC. Errors name the store, never the URL.
pub(crate) async fn open_target(
    target: &AuditTarget,
    must_exist: bool,
    checkpoint_key: Option<SecretString>,
) -> Result<DurableStore, Fail> {
    match target {
        AuditTarget::Sqlite(path) => Ok(DurableStore::Sqlite(
            open_store_with(path, must_exist, checkpoint_key).await?,
        )),
        AuditTarget::Postgres { url, schema } => fctr_wiring::open_postgres(
            url.clone(),
            schema,
            checkpoint_key,
        )
        .await
        .map(DurableStore::Postgres)
        .map_err(|e| {
            Fail::usage(
                format!("{e}"),
                "check that PostgreSQL is reachable, the [audit] URL source (postgres_url_env / \
                         postgres_url_file) and postgres_schema",
            )
        }),
    }
}

/// Where the identity provider is, for commands that talk to it.
#[derive(Debug, Clone, Args)]
pub(crate) struct IdpArgs {
    /// Okta org URL for an ad-hoc run without --config. Only a loopback URL (a `fctr mock-idp okta`) is accepted
    /// then: production runs use the configuration's audit store and pseudonymization key. With --config (and
    /// without this flag) the IdP is the file's `[okta]` or `[entra]` section.
    #[arg(long, value_name = "URL")]
    pub okta_url: Option<Url>,
    /// Environment variable holding the SSWS API token for --okta-url (default FCTR_OKTA_TOKEN; against a local
    /// fake, the fake's documented default token when unset).
    #[arg(long, value_name = "VAR")]
    pub api_token_env: Option<String>,
}

/// Who is at the keyboard, and with which policy and audit store.
#[derive(Debug, Clone, Args)]
pub(crate) struct AgentArgs {
    /// Your agent identity: your IdP user id or login (pseudonymized in the audit log).
    #[arg(long, env = "FCTR_AGENT_ID", value_name = "ID")]
    pub agent_id: String,
    /// Your role in the policy (tier1, tier2, …). Default: the role your IdP groups map to in the policy.
    #[arg(long, env = "FCTR_ROLE")]
    pub role: Option<String>,
    /// The policy file (default: `[policy] file` of the configuration, else the built-in policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The audit database, a SQLite file (default: the configuration's `[audit]` store, SQLite or PostgreSQL; ad
    /// hoc without it: kept in memory).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

/// A ready engine (the wiring's [`fctr_wiring::Stack`]) and the agent using it.
pub(crate) struct Stack {
    pub engine: Arc<Engine>,
    pub agent: Agent,
    pub ctx: RequestContext,
    inner: fctr_wiring::Stack,
}

impl Stack {
    /// Flushes and closes the audit store.
    pub async fn close(self) {
        self.inner.close().await;
    }
}

/// The exit for a denial: IdP trouble is 3, a missing role or bad input is 2, every other refusal is 1.
pub(crate) fn denial(d: &Denial) -> Fail {
    let message = format!("{} ({})", d.message(), d.reason.as_str());
    let next = match d.retry_after {
        Some(w) => format!("{} (retry after {} s)", d.remedy(), w.num_seconds()),
        None => d.remedy().to_owned(),
    };
    match d.reason {
        // The engine's words are for agents; an operator at the command line gets the operator's tool too.
        Reason::IdpError => Fail::idp(
            message,
            format!(
                "{next} Operators: run `fctr doctor` to check the IdP connection and credentials."
            ),
        ),
        Reason::NoRole
        | Reason::InvalidInput
        | Reason::AuditUnavailable
        | Reason::StateUnavailable => Fail::usage(message, next),
        _ => Fail::check(message, next),
    }
}

/// The exit for an IdP port error.
pub(crate) fn port_error(what: &str, e: &PortError) -> Fail {
    match e {
        PortError::Unauthorized => Fail::idp(
            format!("{what}: the IdP refused the credentials"),
            "check the credential: the Okta API token or service app, or the Entra client secret or certificate \
             (run `fctr doctor`)",
        ),
        PortError::Forbidden { missing } => Fail::idp(
            format!(
                "{what}: the IdP refused the request{}",
                missing
                    .as_ref()
                    .map(|m| format!(" (missing {m})"))
                    .unwrap_or_default()
            ),
            "grant the missing scope, permission or admin role (run `fctr doctor`)",
        ),
        PortError::Unavailable | PortError::Timeout => Fail::idp(
            format!("{what}: the IdP cannot be reached ({})", e.code()),
            "check the IdP URLs in the configuration and the network, then run `fctr doctor`",
        ),
        _ => Fail::idp(
            format!("{what}: the IdP failed ({})", e.code()),
            "retry in a moment; if it persists, run `fctr doctor`",
        ),
    }
}

fn request_context() -> RequestContext {
    let id = format!("cli-{:016x}", rand::random::<u64>());
    RequestContext {
        request_id: RequestId::parse(id).ok(),
        client_ip: None,
        ticket: None,
    }
}

/// Builds the IdP adapter: `--okta-url` (ad hoc) or the configuration's `[okta]` section.
pub(crate) fn idp_from(
    args: &IdpArgs,
    cfg: Option<&(PathBuf, Config)>,
) -> Result<(fctr_okta::OktaAdapter, bool), Fail> {
    match (&args.okta_url, cfg) {
        (Some(url), _) => {
            let token = config::ad_hoc_token(args.api_token_env.as_deref(), url)?;
            // An ad-hoc org (a local fake) is reached directly; a configuration's [network] egress path applies
            // to the org it names.
            let a = config::okta_adapter(
                url.clone(),
                fctr_okta::OktaAuth::ApiToken(token),
                &fctr_ports::Egress::direct(),
            )?;
            Ok((a, true))
        }
        (None, Some((path, c))) => {
            let o = config::okta_section(path, c)?;
            let a = config::okta_adapter(
                o.org_url.clone(),
                config::okta_auth(o)?,
                &config::egress(Some(c))?,
            )?;
            Ok((a, false))
        }
        (None, None) => Err(Fail::usage(
            "no identity provider configured",
            "pass --config FILE (or set FCTR_CONFIG), or --okta-url http://127.0.0.1:PORT for a `fctr mock-idp okta`",
        )),
    }
}

/// Builds the IdP for `lookup` and `verify`: `--okta-url` (ad hoc, a local fake Okta), or whichever of `[okta]`
/// and `[entra]` the configuration has (a file with both or neither is refused, as the portal refuses it).
pub(crate) fn provider_from(
    args: &IdpArgs,
    cfg: Option<&(PathBuf, Config)>,
) -> Result<Arc<dyn IdentityProvider>, Fail> {
    let Some((path, c)) = cfg.filter(|_| args.okta_url.is_none()) else {
        let (okta, _ad_hoc) = idp_from(args, cfg)?;
        return Ok(Arc::new(okta));
    };
    match config::idp_section(path, c)? {
        IdpSection::Entra(e) => {
            if args.api_token_env.is_some() {
                return Err(Fail::usage(
                    "--api-token-env does not apply: the configuration names an Entra tenant",
                    "drop --api-token-env; the [entra] section names the credential",
                ));
            }
            if e.connector.is_none() {
                eprintln!(
                    "note: [entra.connector] is not configured: Entra offers no push and no code check without \
                     it, so callers can be looked up but not verified (see docs/entra-setup.md)"
                );
            }
            Ok(Arc::new(config::entra_from_section(
                e,
                &config::egress(Some(c))?,
            )?))
        }
        _ => {
            let (okta, _ad_hoc) = idp_from(args, cfg)?;
            Ok(Arc::new(okta))
        }
    }
}

/// Builds the engine for `lookup` and `verify`.
pub(crate) async fn build(
    idp_args: &IdpArgs,
    agent_args: &AgentArgs,
    g: &Globals,
) -> Result<Stack, Fail> {
    let cfg = config::load_opt(g)?;
    if let (Some(url), None) = (&idp_args.okta_url, &cfg) {
        if !config::is_loopback(url) {
            return Err(Fail::usage(
                "without --config, only a local fake IdP (loopback URL) may be used",
                "pass --config FILE: production runs need the configured audit store and pseudonymization key",
            ));
        }
    }
    let idp = provider_from(idp_args, cfg.as_ref())?;
    let target = match (&agent_args.db, &cfg) {
        (Some(p), _) => Some(AuditTarget::Sqlite(p.clone())),
        (None, Some((path, c))) => c
            .audit
            .as_ref()
            .map(|a| config::audit_section_target(path, a))
            .transpose()?,
        (None, None) => None,
    };
    let stores = match target {
        Some(target) => {
            if let AuditTarget::Sqlite(p) = &target {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Fail::usage(
                            format!("cannot create {}: {e}", dir.display()),
                            "check [audit] sqlite_path and permissions",
                        )
                    })?;
                }
            }
            Stores::from(open_target(&target, false, None).await?)
        }
        None if cfg.is_some() => {
            return Err(Fail::usage(
                "the configuration has no [audit] section",
                "add [audit] sqlite_path or postgres_url_env: fctr does nothing it cannot audit",
            ));
        }
        None => {
            eprintln!(
                "note: ad-hoc run: audit events are kept in memory only (pass --db FILE to keep them)"
            );
            Stores::Memory
        }
    };
    let pseudonymizer = match &cfg {
        Some((path, c)) => config::pseudonymizer(path, c)?,
        None => config::ephemeral_pseudonymizer()?,
    };
    let policy = config::policy(agent_args.policy.as_ref(), cfg.as_ref().map(|(_, c)| c))?;
    let tenant = config::tenant(cfg.as_ref().map(|(_, c)| c))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // With a configuration, the same short-lived state as the portal (rate limits and lockouts count across both).
    let shared = match &cfg {
        Some((_, c)) => fctr_wiring::SharedState::from_config(c, &clock)
            .await
            .map_err(|e| Fail::usage(format!("{e}"), "check [state] in the configuration"))?,
        None => fctr_wiring::SharedState::memory(&clock, fctr_ports::Timeouts::default()),
    };
    let inner = fctr_wiring::Stack::assemble(StackParts {
        idp: Arc::clone(&idp),
        stores,
        clock,
        policy,
        pseudonymizer,
        tenant,
        retention: Retention::default(),
        shared,
        alerts: None,
        // The agent commands do not read the IdP's change log (`fctr changes` builds its own feed).
        change_feed: None,
        sign_in_links: None,
    })
    .map_err(|e| Fail::usage(format!("{e}"), "report a bug"))?;
    let engine = Arc::clone(&inner.engine);
    let agent = resolve_agent(&engine, idp.as_ref(), agent_args).await?;
    Ok(Stack {
        engine,
        agent,
        ctx: request_context(),
        inner,
    })
}

/// The agent: `--role` as given (checked against the policy), or the role the agent's IdP groups map to.
async fn resolve_agent(
    engine: &Engine,
    idp: &dyn IdentityProvider,
    args: &AgentArgs,
) -> Result<Agent, Fail> {
    let bad_id = |e: fctr_ports::IdError| {
        Fail::usage(format!("--agent-id: {e}"), "give your IdP user id or login")
    };
    if let Some(role) = &args.role {
        if engine.policy().role(role).is_none() {
            let names: Vec<&str> = engine.policy().roles().iter().map(|r| r.name()).collect();
            return Err(Fail::usage(
                format!("--role {role}: no such role in the policy"),
                format!("use one of: {}", names.join(", ")),
            ));
        }
        let id = AgentId::parse(args.agent_id.clone()).map_err(bad_id)?;
        return Ok(engine.restore_agent(id, Some(role)));
    }
    // Find the agent in the IdP, then map their groups to a role as the portal does at sign-in.
    let subject = if args.agent_id.contains('@') {
        let q = UserQuery::login(&args.agent_id)
            .map_err(|e| Fail::usage(format!("--agent-id: {e}"), "give your IdP login"))?;
        let found = idp
            .find_users(&q, 2)
            .await
            .map_err(|e| port_error("finding the agent", &e))?;
        match found.as_slice() {
            [one] => one.id.clone(),
            [] => {
                return Err(Fail::usage(
                    "--agent-id: no such user in the IdP",
                    "give your own IdP login or user id, or pass --role",
                ));
            }
            _ => {
                return Err(Fail::usage(
                    "--agent-id: more than one IdP user matches",
                    "give your IdP user id instead",
                ));
            }
        }
    } else {
        SubjectId::parse(args.agent_id.clone()).map_err(|e| {
            Fail::usage(format!("--agent-id: {e}"), "give your IdP user id or login")
        })?
    };
    let groups = match idp.groups(&subject).await {
        Ok(g) => g,
        Err(PortError::NotFound) => {
            return Err(Fail::usage(
                "--agent-id: no such user in the IdP",
                "give your own IdP login or user id, or pass --role",
            ));
        }
        Err(e) => return Err(port_error("reading the agent's groups", &e)),
    };
    let names: Vec<String> = groups.into_iter().map(|g| g.name).collect();
    let id = AgentId::parse(subject.as_str().to_owned()).map_err(bad_id)?;
    let agent = engine.resolve_agent(id, &names);
    if agent.role().is_none() {
        return Err(Fail::usage(
            "your IdP groups map to no role in the policy",
            "ask your administrator to add you to a helpdesk group the policy maps to a role",
        ));
    }
    Ok(agent)
}
