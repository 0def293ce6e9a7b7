//! [`Stack`]: the engine and the stores it runs on, built from a configuration ([`Stack::from_config`]) or from
//! parts a shell chose itself ([`StackParts`], e.g. an ad-hoc CLI run or the portal's demo mode).
//!
//! What is built here is the same for both shells: the IdP adapter (`[okta]` or `[entra]`), the audit log and
//! usage ledger (SQLite at `[audit] sqlite_path`, PostgreSQL at `[audit] postgres_url`, or in memory), the shared
//! short-lived state ([`SharedState`]: memory for one process, Redis at `[state] redis_url`), the pseudonymizer,
//! the policy, the tenant and the retention periods, put together with
//! [`Engine::builder`](fctr_core::Engine::builder). What only one shell needs (the portal's sign-in,
//! sessions and edge; the CLI's agent resolution) stays in that shell.

use crate::config::{AlertsSection, AuditStoreSection, Config, ConfigError};
use crate::shared::SharedState;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_core::policy::Policy;
use fctr_core::{Engine, Pseudonymizer, Retention};
use fctr_memory::{MemoryAuditLog, MemoryUsageLedger};
use fctr_ports::{
    AuditEvent, AuditLog, AuditQuery, ChainBreak, ChainCheckpoint, ChainSummary, Clock,
    IdentityProvider, Month, PortError, PurgeReport, SealedEvent, SecretString, SystemClock,
    TenantId, UsageLedger, UsageRecord,
};
use fctr_postgres::{PostgresOptions, PostgresStore};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
    /// One SQLite file holding both (the embedded default, one process).
    Sqlite(SqliteStore),
    /// One PostgreSQL database holding both, shared by every replica.
    Postgres(PostgresStore),
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "Stores::Memory",
            Self::Sqlite(_) => "Stores::Sqlite",
            Self::Postgres(_) => "Stores::Postgres",
        })
    }
}

impl Stores {
    /// The durable store, if these are not in memory.
    #[must_use]
    pub fn durable(&self) -> Option<DurableStore> {
        match self {
            Self::Memory => None,
            Self::Sqlite(s) => Some(DurableStore::Sqlite(s.clone())),
            Self::Postgres(s) => Some(DurableStore::Postgres(s.clone())),
        }
    }
}

impl From<DurableStore> for Stores {
    fn from(d: DurableStore) -> Self {
        match d {
            DurableStore::Sqlite(s) => Self::Sqlite(s),
            DurableStore::Postgres(s) => Self::Postgres(s),
        }
    }
}

/// A durable audit log and usage ledger, SQLite or PostgreSQL, with what the shells call on either beyond the
/// ports (checkpoints, exports, reports, closing), so that they never match on the kind. It implements
/// [`AuditLog`] and [`UsageLedger`] by delegation. Cheap to clone.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DurableStore {
    /// One SQLite file.
    Sqlite(SqliteStore),
    /// One PostgreSQL database.
    Postgres(PostgresStore),
}

impl DurableStore {
    /// `sqlite` or `postgres`, for messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Records each tenant's chain head that moved since its last checkpoint (see
    /// [`SqliteStore::checkpoint`], [`PostgresStore::checkpoint`]).
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the checkpoints could not be written.
    pub async fn checkpoint(&self) -> Result<Vec<ChainCheckpoint>, PortError> {
        match self {
            Self::Sqlite(s) => s.checkpoint().await,
            Self::Postgres(s) => s.checkpoint().await,
        }
    }

    /// Each tenant's latest recorded checkpoint.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be read, [`PortError::Malformed`] for a malformed row.
    pub async fn latest_checkpoints(&self) -> Result<Vec<ChainCheckpoint>, PortError> {
        match self {
            Self::Sqlite(s) => s.latest_checkpoints().await,
            Self::Postgres(s) => s.latest_checkpoints().await,
        }
    }

    /// Starts the periodic checkpointer, which ends when the store is closed or dropped.
    #[must_use]
    pub fn spawn_checkpointer(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        match self {
            Self::Sqlite(s) => s.spawn_checkpointer(interval),
            Self::Postgres(s) => s.spawn_checkpointer(interval),
        }
    }

    /// Flushes what is queued and closes the store. Idempotent.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }

    /// Writes matching events as JSON lines in chain order (the same bytes from either store; `docs/audit.md`).
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be read, [`PortError::Malformed`] when a stored row cannot
    /// be decoded, [`PortError::Unexpected`] when `out` fails.
    pub async fn export_jsonl<W>(&self, query: &AuditQuery, out: &mut W) -> Result<u64, PortError>
    where
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        match self {
            Self::Sqlite(s) => s.export_jsonl(query, out).await,
            Self::Postgres(s) => s.export_jsonl(query, out).await,
        }
    }

    /// One month's usage as CSV (`month,tenant,agent,kind,count`).
    ///
    /// # Errors
    /// As [`UsageLedger::report`].
    pub async fn report_csv(&self, month: Month) -> Result<String, PortError> {
        match self {
            Self::Sqlite(s) => s.report_csv(month).await,
            Self::Postgres(s) => s.report_csv(month).await,
        }
    }

    /// One month's usage as a JSON array of [`UsageRecord`]s.
    ///
    /// # Errors
    /// As [`UsageLedger::report`].
    pub async fn report_json(&self, month: Month) -> Result<String, PortError> {
        match self {
            Self::Sqlite(s) => s.report_json(month).await,
            Self::Postgres(s) => s.report_json(month).await,
        }
    }
}

#[async_trait]
impl AuditLog for DurableStore {
    async fn append(&self, event: AuditEvent) -> Result<SealedEvent, PortError> {
        match self {
            Self::Sqlite(s) => s.append(event).await,
            Self::Postgres(s) => s.append(event).await,
        }
    }

    async fn read(&self, query: &AuditQuery) -> Result<Vec<SealedEvent>, PortError> {
        match self {
            Self::Sqlite(s) => s.read(query).await,
            Self::Postgres(s) => s.read(query).await,
        }
    }

    async fn verify_chain(&self) -> Result<Result<ChainSummary, ChainBreak>, PortError> {
        match self {
            Self::Sqlite(s) => s.verify_chain().await,
            Self::Postgres(s) => s.verify_chain().await,
        }
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        match self {
            Self::Sqlite(s) => AuditLog::purge_before(s, before).await,
            Self::Postgres(s) => AuditLog::purge_before(s, before).await,
        }
    }
}

#[async_trait]
impl UsageLedger for DurableStore {
    async fn record(&self, usage: UsageRecord) -> Result<(), PortError> {
        match self {
            Self::Sqlite(s) => s.record(usage).await,
            Self::Postgres(s) => s.record(usage).await,
        }
    }

    async fn report(&self, month: Month) -> Result<Vec<UsageRecord>, PortError> {
        match self {
            Self::Sqlite(s) => s.report(month).await,
            Self::Postgres(s) => s.report(month).await,
        }
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        match self {
            Self::Sqlite(s) => UsageLedger::purge_before(s, before).await,
            Self::Postgres(s) => UsageLedger::purge_before(s, before).await,
        }
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
    open_sqlite_with(path, Some(checkpoint_key)).await
}

async fn open_sqlite_with(
    path: &Path,
    checkpoint_key: Option<SecretString>,
) -> Result<SqliteStore, StackError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| start("audit directory", e))?;
    }
    let mut options = SqliteOptions::default();
    if let Some(k) = checkpoint_key {
        options = options.with_checkpoint_key(k);
    }
    SqliteStore::open(path, options)
        .await
        .map_err(|e| start("audit store", e))
}

/// Connects the PostgreSQL audit store at `url` in `schema` (created, with its tables, if missing), its
/// checkpoints HMAC'd with `checkpoint_key` when given. The URL never appears in an error.
///
/// # Errors
/// [`StackError::Start`] naming the audit store (unreachable, refused, bad schema name, malformed URL).
pub async fn open_postgres(
    url: SecretString,
    schema: &str,
    checkpoint_key: Option<SecretString>,
) -> Result<PostgresStore, StackError> {
    let mut options = PostgresOptions::default().with_schema(schema);
    if let Some(k) = checkpoint_key {
        options = options.with_checkpoint_key(k);
    }
    PostgresStore::connect(url, options)
        .await
        .map_err(|e| start("audit store (PostgreSQL)", e))
}

/// Opens the durable store an `[audit]` section names: the SQLite file (created with its directory if missing) or
/// the PostgreSQL database (schema and tables created if missing), checkpoints HMAC'd with `checkpoint_key` when
/// given.
///
/// # Errors
/// [`StackError::Config`] naming the key, or [`StackError::Start`] when the store cannot be opened.
pub async fn open_durable(
    audit: &crate::config::AuditSection,
    checkpoint_key: Option<SecretString>,
) -> Result<DurableStore, StackError> {
    Ok(match audit.store()? {
        AuditStoreSection::Sqlite(path) => {
            DurableStore::Sqlite(open_sqlite_with(path, checkpoint_key).await?)
        }
        AuditStoreSection::Postgres { schema, .. } => {
            let Some(url) = audit.postgres_url()? else {
                return Err(crate::config::invalid("audit.postgres_url", "missing").into());
            };
            DurableStore::Postgres(open_postgres(url, schema, checkpoint_key).await?)
        }
    })
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
    /// Where alerts are delivered (`[alerts]`); `None`: audited only.
    pub alerts: Option<Arc<dyn fctr_ports::AlertSink>>,
    /// The reader of the IdP's own change log (out-of-band change detection), when the IdP has one in this build
    /// ([`Config::change_feed`]).
    pub change_feed: Option<Arc<dyn fctr_ports::ChangeFeed>>,
    /// Verification by IdP sign-in (`[caller_sign_in]`); `None`: not offered.
    pub sign_in_links: Option<fctr_core::SignInLinks>,
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
    /// The parts a configuration names: the `[okta]` or `[entra]` adapter, the store of `[audit]` (the SQLite file
    /// at `sqlite_path`, or PostgreSQL at `postgres_url`; opened now, created if missing), `[pseudonymization]`,
    /// `[policy]`, `[server] tenant`, `[retention]`, and the system clock. Checks only what it reads; call
    /// [`Config::validate`] first for the whole file.
    ///
    /// # Errors
    /// [`StackError::Config`] naming the key, or [`StackError::Start`] when the audit store cannot be opened.
    pub async fn from_config(cfg: &Config) -> Result<Self, StackError> {
        let audit = cfg.audit_section()?;
        let store = open_durable(audit, Some(audit.checkpoint_key()?)).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shared = SharedState::from_config(cfg, &clock).await?;
        let idp = cfg.idp_adapter_sharing(Some(Arc::clone(&shared.coordinator)))?;
        let change_feed = cfg.change_feed()?;
        Ok(Self {
            idp,
            change_feed,
            sign_in_links: cfg
                .caller_sign_in
                .as_ref()
                .map(crate::config::CallerSignInSection::links),
            stores: store.into(),
            clock,
            shared,
            policy: cfg.load_policy()?,
            pseudonymizer: cfg.pseudonymizer()?,
            tenant: cfg.tenant()?,
            retention: cfg.retention.retention(),
            alerts: cfg.alerts.as_ref().map(AlertsSection::sink).transpose()?,
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
    /// The durable store behind `audit`, when it is one (checkpoints, exports, `close` at shutdown).
    pub durable: Option<DurableStore>,
    /// The short-lived state the engine runs on (the portal's sessions and pollers use it too).
    pub shared: SharedState,
    /// The IdP's change log for out-of-band change detection (as given in [`StackParts::change_feed`]).
    pub change_feed: Option<Arc<dyn fctr_ports::ChangeFeed>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("tenant", self.engine.tenant())
            .field("durable", &self.durable.as_ref().map(DurableStore::kind))
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Puts the parts together: the engine through [`Engine::builder`], on the parts' shared state.
    ///
    /// # Errors
    /// [`StackError::Start`] naming the engine if a part is missing (it cannot be, with every field given);
    /// [`StackError::Config`] when the policy holds actions back for four-eyes approval and the shared state has
    /// no approval store (fail closed).
    pub fn assemble(parts: StackParts) -> Result<Self, StackError> {
        Self::assemble_wrapping_audit(parts, |audit| audit)
    }

    /// [`Stack::assemble`], with the audit log the store gives wrapped by `wrap` before the engine gets it (a
    /// shell's decorator, e.g. one that counts outcomes from the events); [`Stack::audit`] is the wrapped log.
    ///
    /// # Errors
    /// As [`Stack::assemble`].
    pub fn assemble_wrapping_audit(
        parts: StackParts,
        wrap: impl FnOnce(Arc<dyn AuditLog>) -> Arc<dyn AuditLog>,
    ) -> Result<Self, StackError> {
        let durable = parts.stores.durable();
        let (audit, usage): (Arc<dyn AuditLog>, Arc<dyn UsageLedger>) = match &parts.stores {
            Stores::Memory => (
                Arc::new(MemoryAuditLog::new()),
                Arc::new(MemoryUsageLedger::new()),
            ),
            Stores::Sqlite(s) => (Arc::new(s.clone()), Arc::new(s.clone())),
            Stores::Postgres(s) => (Arc::new(s.clone()), Arc::new(s.clone())),
        };
        let audit = wrap(audit);
        let clock = parts.clock;
        if parts.policy.four_eyes().enabled() && parts.shared.approvals.is_none() {
            return Err(StackError::Config(crate::config::invalid(
                "policy [four_eyes]",
                "the policy holds actions back for four-eyes approval, but the shared state in use has no \
                 approval store; use the in-memory state or Redis, or remove [four_eyes]",
            )));
        }
        let mut builder = Engine::builder();
        if let Some(a) = &parts.shared.approvals {
            builder = builder.approvals(Arc::clone(a));
        }
        let engine = builder
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
        let engine = match parts.alerts {
            Some(sink) => engine.with_alert_sink(sink),
            None => engine,
        };
        let engine = match parts.sign_in_links {
            Some(links) => engine.with_sign_in_links(links),
            None => engine,
        };
        Ok(Self {
            engine: Arc::new(engine),
            idp: parts.idp,
            audit,
            clock,
            durable,
            shared: parts.shared,
            change_feed: parts.change_feed,
        })
    }

    /// [`StackParts::from_config`], then [`Stack::assemble`].
    ///
    /// # Errors
    /// As those two.
    pub async fn from_config(cfg: &Config) -> Result<Self, StackError> {
        Self::assemble(StackParts::from_config(cfg).await?)
    }

    /// Flushes and closes the durable store, if any.
    pub async fn close(&self) {
        if let Some(s) = &self.durable {
            s.close().await;
        }
    }
}
