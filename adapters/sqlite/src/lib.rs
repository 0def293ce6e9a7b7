//! # fctr-sqlite: the audit log and the usage ledger in one SQLite file
//!
//! [`SqliteStore`] implements [`AuditLog`] and [`UsageLedger`] on one SQLite database (WAL mode,
//! `synchronous=FULL`), through `sqlx`.
//!
//! What it promises:
//! - **Durable when `append` returns.** Appends are queued to one writer task, which writes everything queued (up to
//!   [`SqliteOptions::max_batch`]) in one transaction and answers each caller only after `COMMIT` returned; with
//!   `synchronous=FULL` the WAL has been fsynced by then. A failed transaction answers every caller of its batch
//!   with [`PortError::Unavailable`] and nothing of it is in the file.
//! - **One contiguous chain per tenant**, whatever the number of concurrent callers: the writer alone assigns
//!   `seq` and `prev_hash` (from heads seeded from the file at open), and `PRIMARY KEY (tenant, seq)` refuses a fork.
//! - **Tamper evidence.** The `event` column holds each event's canonical encoding, the very bytes its hash
//!   covers, and [`AuditLog::verify_chain`] recomputes every hash over those stored bytes with
//!   [`fctr_ports::verify_tenant_chain_raw`] (no decoding, and any changed byte is found), from each tenant's purge anchor, and checks the latest checkpoint
//!   ([`SqliteStore::checkpoint`]), whose HMAC is checked when a checkpoint key is configured. Checkpoints are also
//!   written to the runtime log (`target: "fctr::audit::checkpoint"`) so a truncated tail can be proven from outside.
//! - **No raw identifiers at rest**: the port types carry only keyed pseudonyms, and no column holds anything else.
//!   Temporary tables and sorts stay in memory (`temp_store=MEMORY`); the only files are the database and its
//!   `-wal` and `-shm` companions, next to it. Deleted rows are zeroed (`secure_delete=ON`).
//!
//! One process writes a file at a time. Readers (`fctr audit verify`) may open it concurrently.
//!
//! See `docs/audit.md` for the schema, the export format and how an outside receiver verifies the chain.

#![forbid(unsafe_code)]

mod codec;
mod export;
mod verify;
mod writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, AuditLog, AuditQuery, ChainBreak, ChainCheckpoint, ChainSummary, Month, PortError,
    PurgeReport, SealedEvent, UsageLedger, UsageRecord,
};
use secrecy::SecretString;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use writer::Command;

pub use export::CSV_HEADER;

/// The embedded schema migrations (`migrations/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How to open a store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Key for the HMAC-SHA256 of checkpoints. Without it checkpoints are recorded unauthenticated, and only the
    /// copy in the runtime log protects against someone who can write the file.
    pub checkpoint_key: Option<SecretString>,
    /// How long a statement waits for a lock held by another connection (default 5 s).
    pub busy_timeout: Duration,
    /// Most commands written in one transaction (default 512).
    pub max_batch: usize,
    /// Most commands waiting for the writer; callers wait beyond that (default 8192).
    pub queue_capacity: usize,
    /// Read connections (default 4).
    pub read_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            checkpoint_key: None,
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
            queue_capacity: 8192,
            read_connections: 4,
        }
    }
}

impl SqliteOptions {
    /// Sets the checkpoint key.
    #[must_use]
    pub fn with_checkpoint_key(mut self, key: SecretString) -> Self {
        self.checkpoint_key = Some(key);
        self
    }

    /// Sets the most commands written in one transaction.
    #[must_use]
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Sets the busy timeout.
    #[must_use]
    pub fn with_busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be opened or created (path, permissions, not a database, locked).
    #[error("could not open the SQLite database")]
    Open(#[source] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("could not migrate the SQLite schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The chain heads could not be read.
    #[error("could not read the audit chain heads")]
    Load(#[source] sqlx::Error),
    /// A stored chain head is malformed (the file was edited); run `fctr audit verify`.
    #[error("a stored audit chain head is malformed")]
    Corrupt,
}

struct Inner {
    pool: SqlitePool,
    tx: mpsc::Sender<Command>,
    commits: Arc<std::sync::atomic::AtomicU64>,
    checkpoint_key: Option<SecretString>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

/// The SQLite audit log and usage ledger. Cheap to clone (all clones share one writer); the writer stops when the
/// last clone is dropped or [`SqliteStore::close`] is called.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn base_options(path: &Path, o: &SqliteOptions) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(true)
        .busy_timeout(o.busy_timeout)
        // Sorts and temporary tables in memory: no temp file outside the data directory.
        .pragma("temp_store", "MEMORY")
        .disable_statement_logging()
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies the schema, reads the chain heads and starts the
    /// writer task. Must be called inside a Tokio runtime.
    ///
    /// Durability: WAL mode with `synchronous=FULL`, so a transaction is fsynced to the WAL before `COMMIT` returns
    /// and an acknowledged append survives power loss, not only a process crash.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened or migrated, or its chain heads cannot be read.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let write_opts = base_options(&path, &options)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Deleted (purged) rows are overwritten with zeros, not left in free pages.
            .pragma("secure_delete", "ON");
        let mut conn = write_opts.connect().await.map_err(StoreError::Open)?;
        MIGRATOR.run(&mut conn).await.map_err(StoreError::Migrate)?;
        let (heads, checkpointed) = match writer::load_heads(&mut conn).await {
            Ok(h) => h,
            Err(writer::LoadError::Sql(e)) => return Err(StoreError::Load(e)),
            Err(writer::LoadError::Corrupt) => return Err(StoreError::Corrupt),
        };
        let read_opts = base_options(&path, &options)
            .read_only(true)
            .row_buffer_size(1024);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(read_opts)
            .await
            .map_err(StoreError::Open)?;
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let w = writer::Writer::new(
            conn,
            heads,
            checkpointed,
            options.checkpoint_key.clone(),
            options.max_batch,
            Arc::clone(&commits),
        );
        let handle = tokio::spawn(w.run(rx));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                tx,
                commits,
                checkpoint_key: options.checkpoint_key,
                writer: std::sync::Mutex::new(Some(handle)),
                path,
            }),
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Transactions the writer has committed for appends and usage records since the store was opened. Each is one
    /// fsync; under concurrent appends it grows much more slowly than the number of events (group commit).
    #[must_use]
    pub fn group_commits(&self) -> u64 {
        self.inner
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the writer after the commands queued before this call, refuses everything after it with
    /// [`PortError::Unavailable`], and closes the file. Idempotent.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(Command::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.await;
        }
        self.inner.pool.close().await;
    }

    async fn ask<T>(&self, make: impl FnOnce(writer::Reply<T>) -> Command) -> Result<T, PortError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(make(reply))
            .await
            .map_err(|_| PortError::Unavailable)?;
        rx.await.map_err(|_| PortError::Unavailable)?
    }

    /// Records each tenant's chain head whose position moved since its last checkpoint (HMAC'd with the checkpoint
    /// key when one is configured), and writes each to the runtime log under the target
    /// `fctr::audit::checkpoint` with fields `tenant`, `seq` and `hash`. Returns the checkpoints recorded.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the checkpoints could not be written.
    pub async fn checkpoint(&self) -> Result<Vec<ChainCheckpoint>, PortError> {
        self.ask(Command::Checkpoint).await
    }

    /// Each tenant's latest recorded checkpoint (its MAC is not checked here; [`AuditLog::verify_chain`] checks it
    /// when the store was opened with a checkpoint key). A verifier holding the key uses this to refuse a chain
    /// whose checkpoints were deleted.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be read, [`PortError::Malformed`] for a malformed row.
    pub async fn latest_checkpoints(&self) -> Result<Vec<ChainCheckpoint>, PortError> {
        let mut conn = self
            .inner
            .pool
            .acquire()
            .await
            .map_err(|e| codec::unavailable("read checkpoints", &e))?;
        let mut out: Vec<ChainCheckpoint> = verify::latest_checkpoints(&mut conn)
            .await?
            .into_values()
            .map(|s| s.cp)
            .collect();
        out.sort_by_key(|c| c.tenant.to_string());
        Ok(out)
    }

    /// Starts a task that calls [`SqliteStore::checkpoint`] every `interval` (first after one interval). It holds
    /// no strong reference: it ends once the store is closed or dropped.
    #[must_use]
    pub fn spawn_checkpointer(&self, interval: Duration) -> JoinHandle<()> {
        let weak = self.inner.tx.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(tx) = weak.upgrade() else { break };
                let (reply, rx) = oneshot::channel();
                if tx.send(Command::Checkpoint(reply)).await.is_err() {
                    break;
                }
                drop(tx);
                match rx.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(target: "fctr::sqlite", error = e.code(), "audit checkpoint failed");
                    }
                    Err(_) => break,
                }
            }
        })
    }

    /// Writes the events matching `query` to `out` as JSON lines (one object per line, in chain order: by tenant,
    /// then `seq`): the event's own fields plus `seq`, `prev_hash` and `hash`. Returns how many lines were
    /// written. The format is documented in `docs/audit.md`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be read, [`PortError::Malformed`] when a stored row cannot
    /// be decoded, [`PortError::Unexpected`] when `out` fails.
    pub async fn export_jsonl<W>(&self, query: &AuditQuery, out: &mut W) -> Result<u64, PortError>
    where
        W: tokio::io::AsyncWrite + Unpin + Send,
    {
        export::export_jsonl(&self.inner.pool, query, out).await
    }

    /// The usage report of one month as CSV with the header [`CSV_HEADER`] (`month,tenant,agent,kind,count`),
    /// rows sorted as [`UsageLedger::report`] sorts them, `\n` line ends.
    ///
    /// # Errors
    /// As [`UsageLedger::report`].
    pub async fn report_csv(&self, month: Month) -> Result<String, PortError> {
        let rows = self.report(month).await?;
        Ok(export::usage_csv(&rows))
    }

    /// The usage report of one month as a JSON array of [`UsageRecord`]s.
    ///
    /// # Errors
    /// As [`UsageLedger::report`].
    pub async fn report_json(&self, month: Month) -> Result<String, PortError> {
        let rows = self.report(month).await?;
        serde_json::to_string(&rows).map_err(PortError::unexpected)
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append(&self, event: AuditEvent) -> Result<SealedEvent, PortError> {
        self.ask(|r| Command::Append(event, r)).await
    }

    async fn read(&self, query: &AuditQuery) -> Result<Vec<SealedEvent>, PortError> {
        export::read(&self.inner.pool, query).await
    }

    async fn verify_chain(&self) -> Result<Result<ChainSummary, ChainBreak>, PortError> {
        let mut conn = self
            .inner
            .pool
            .acquire()
            .await
            .map_err(|e| codec::unavailable("verify", &e))?;
        // One read transaction: every table is seen at the same instant.
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| codec::unavailable("verify", &e))?;
        let r = verify::verify_all(&mut tx, self.inner.checkpoint_key.as_ref()).await;
        let _ = tx.rollback().await;
        r
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        self.ask(|r| Command::PurgeAudit(before, r)).await
    }
}

/// The usage half. `purge_before` here purges usage months only; call it through the trait
/// (`UsageLedger::purge_before(&store, t)`) to disambiguate from the audit purge.
#[async_trait]
impl UsageLedger for SqliteStore {
    async fn record(&self, usage: UsageRecord) -> Result<(), PortError> {
        self.ask(|r| Command::Usage(usage, r)).await
    }

    async fn report(&self, month: Month) -> Result<Vec<UsageRecord>, PortError> {
        export::usage_report(&self.inner.pool, month).await
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        self.ask(|r| Command::PurgeUsage(before, r)).await
    }
}
