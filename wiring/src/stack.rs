//! [`Stack`]: the engine and the stores it runs on, built from a configuration ([`Stack::from_config`]) or from
//! parts a shell chose itself ([`StackParts`], e.g. an ad-hoc CLI run or the portal's demo mode).
//!
//! What is built here is the same for both shells: the IdP adapter (`[okta]` or `[entra]`), the audit log and
//! usage ledger (SQLite at `[audit] sqlite_path`, or in memory), grants and rate limits in memory (one process),
//! the pseudonymizer, the policy, the tenant and the retention periods, put together with
//! [`Engine::builder`](fctr_core::Engine::builder). What only one shell needs (the portal's sign-in, sessions and
//! edge; the CLI's agent resolution) stays in that shell.

use crate::config::{Config, ConfigError, invalid};
use crate::shared::SharedState;
use fctr_core::policy::Policy;
use fctr_core::{Engine, Pseudonymizer, Retention};
use fctr_memory::{MemoryAuditLog, MemoryUsageLedger};
use fctr_ports::{
    AuditLog, Clock, IdentityProvider, SecretString, SystemClock, TenantId, UsageLedger,
};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::sync::Arc;

/// Why a stack could not be built. Messages name the key or the part, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The configuration is missing something or has a wrong value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A part failed to start (the audit store, the engine).
    #[error("{what}: {message}")]
    Start {
        /// The part, e.g. `audit store`.
        what: &'static str,
        /// What went wrong (never a secret).
        message: String,
    },
}

fn start(what: &'static str, e: impl std::fmt::Display) -> StackError {
    StackError::Start {
        what,
        message: e.to_string(),
    }
}

/// Where audit events and usage records go.
#[derive(Clone)]
#[non_exhaustive]
pub enum Stores {
    /// In memory: gone when the process ends (demo without a data directory, ad-hoc CLI runs, tests).
    Memory,
    /// One SQLite file holding both (the embedded default).
    Sqlite(SqliteStore),
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "Stores::Memory",
            Self::Sqlite(_) => "Stores::Sqlite",
        })
    }
}

/// Opens (creating it and its directory if needed) the SQLite audit store at `path`, its checkpoints HMAC'd with
/// `checkpoint_key`.
///
/// # Errors
/// [`StackError::Start`] naming the audit directory or the audit store.
pub async fn open_sqlite(
    path: &Path,
    checkpoint_key: SecretString,
) -> Result<SqliteStore, StackError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| start("audit directory", e))?;
    }
    let options = SqliteOptions::default().with_checkpoint_key(checkpoint_key);
    SqliteStore::open(path, options)
        .await
        .map_err(|e| start("audit store", e))
}

/// Everything a [`Stack`] is made of, chosen by the caller. [`StackParts::from_config`] fills it from a file.
pub struct StackParts {
    /// The identity provider (a shell may wrap it, e.g. to count calls, before [`Stack::assemble`]).
    pub idp: Arc<dyn IdentityProvider>,
    /// The audit log and usage ledger.
    pub stores: Stores,
    /// The clock (tests pass a manual one).
    pub clock: Arc<dyn Clock>,
    /// The policy in force.
    pub policy: Policy,
    /// The pseudonymizer.
    pub pseudonymizer: Pseudonymizer,
    /// The tenant label.
    pub tenant: TenantId,
    /// Retention periods.
    pub retention: Retention,
    /// Where sessions, verifications, grants and rate limits live (memory, or Redis for replicas).
    pub shared: SharedState,
}

impl std::fmt::Debug for StackParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackParts")
            .field("stores", &self.stores)
            .field("tenant", &self.tenant)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl StackParts {
    /// The parts a configuration names: the `[okta]` or `[entra]` adapter, the SQLite store at
    /// `[audit] sqlite_path` (opened now, created if missing), `[pseudonymization]`, `[policy]`,
    /// `[server] tenant`, `[retention]`, and the system clock. Checks only what it reads; call
    /// [`Config::validate`] first for the whole file.
    ///
    /// # Errors
    /// [`StackError::Config`] naming the key, or [`StackError::Start`] when the audit store cannot be opened.
    pub async fn from_config(cfg: &Config) -> Result<Self, StackError> {
        let audit = cfg
            .audit
            .as_ref()
            .ok_or_else(|| invalid("audit.sqlite_path", "missing"))?;
        let store = open_sqlite(&audit.sqlite_path, audit.checkpoint_key()?).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shared = SharedState::from_config(cfg, &clock).await?;
        let idp = cfg.idp_adapter_sharing(Some(Arc::clone(&shared.coordinator)))?;
        Ok(Self {
            idp,
            stores: Stores::Sqlite(store),
            clock,
            shared,
            policy: cfg.load_policy()?,
            pseudonymizer: cfg.pseudonymizer()?,
            tenant: cfg.tenant()?,
            retention: cfg.retention.retention(),
        })
    }
}

/// A ready engine and the stores under it.
pub struct Stack {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The identity provider the engine uses (as given in [`StackParts::idp`]).
    pub idp: Arc<dyn IdentityProvider>,
    /// The audit log the engine writes.
    pub audit: Arc<dyn AuditLog>,
    /// The clock the engine reads.
    pub clock: Arc<dyn Clock>,
    /// The SQLite store behind `audit`, when it is one (checkpoints, `close` at shutdown).
    pub sqlite: Option<SqliteStore>,
    /// The short-lived state the engine runs on (the portal's sessions and pollers use it too).
    pub shared: SharedState,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("tenant", self.engine.tenant())
            .field("sqlite", &self.sqlite.is_some())
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Puts the parts together: the engine through [`Engine::builder`], on the parts' shared state.
    ///
    /// # Errors
    /// [`StackError::Start`] naming the engine if a part is missing (it cannot be, with every field given).
    pub fn assemble(parts: StackParts) -> Result<Self, StackError> {
        let (audit, usage, sqlite): (Arc<dyn AuditLog>, Arc<dyn UsageLedger>, _) =
            match parts.stores {
                Stores::Memory => (
                    Arc::new(MemoryAuditLog::new()),
                    Arc::new(MemoryUsageLedger::new()),
                    None,
                ),
                Stores::Sqlite(s) => (Arc::new(s.clone()), Arc::new(s.clone()), Some(s)),
            };
        let clock = parts.clock;
        let engine = Engine::builder()
            .idp(Arc::clone(&parts.idp))
            .audit(Arc::clone(&audit))
            .usage(usage)
            .grants(Arc::clone(&parts.shared.grants))
            .rate(Arc::clone(&parts.shared.rates))
            .clock(Arc::clone(&clock))
            .policy(parts.policy)
            .pseudonymizer(parts.pseudonymizer)
            .tenant(parts.tenant)
            .retention(parts.retention)
            .build()
            .map_err(|e| start("engine", e))?;
        Ok(Self {
            engine: Arc::new(engine),
            idp: parts.idp,
            audit,
            clock,
            sqlite,
            shared: parts.shared,
        })
    }

    /// [`StackParts::from_config`], then [`Stack::assemble`].
    ///
    /// # Errors
    /// As those two.
    pub async fn from_config(cfg: &Config) -> Result<Self, StackError> {
        Self::assemble(StackParts::from_config(cfg).await?)
    }

    /// Flushes and closes the SQLite store, if any.
    pub async fn close(&self) {
        if let Some(s) = &self.sqlite {
            s.close().await;
        }
    }
}
