//! # fctr-postgres: the audit log and the usage ledger on PostgreSQL, shared by many portal replicas
//!
//! [`PostgresStore`] implements [`AuditLog`] and [`UsageLedger`] on one PostgreSQL database through `sqlx`, with
//! the semantics of `fctr_sqlite::SqliteStore` and the same inherent API (`connect` instead of `open`), so a shell
//! can use either. Several store instances (one per replica) may write to one database at once.
//!
//! What it promises:
//! - **Durable when `append` returns.** Appends are queued to the store's one writer task, which writes everything
//!   queued (up to [`PostgresOptions::max_batch`]) in one transaction and answers each caller only after `COMMIT`
//!   returned. A failed transaction answers every caller of its batch with [`PortError::Unavailable`] and nothing
//!   of it is in the database. (If the connection is lost while `COMMIT` itself is in flight, the outcome cannot be
//!   known: the callers are told `Unavailable` and the batch may or may not be there, whole or not at all.)
//! - **One contiguous chain per tenant, across replicas.** Each tenant's head (next `seq`, previous hash) is a row
//!   of `audit_heads`; a batch locks the head rows of its tenants (`SELECT … FOR UPDATE`, in tenant order), reads
//!   the heads there, seals its events after them, inserts them and moves the heads, all in one transaction. So
//!   appends from any number of replicas are serialized per tenant by the database, the head is re-read from the
//!   database for every batch (nothing about the chain is cached across batches or failures), and
//!   `PRIMARY KEY (tenant, seq)` refuses a fork even if the heads were tampered with.
//! - **Tamper evidence**, exactly as in SQLite: the same canonical bytes and chain hash (defined in `fctr-ports`),
//!   the `event` column holds the canonical encoding that its hash covers, and [`AuditLog::verify_chain`] recomputes
//!   every hash over those stored bytes with [`fctr_ports::verify_tenant_chain_raw`] in one `REPEATABLE READ`
//!   snapshot, from each tenant's purge anchor, and checks the latest checkpoint ([`PostgresStore::checkpoint`]),
//!   whose HMAC is checked when a checkpoint key is configured.
//! - **Fail closed, recover by itself.** The database unreachable means [`PortError::Unavailable`] within
//!   [`PostgresOptions::connect_timeout`] (or [`PostgresOptions::operation_timeout`] for a connection that stops
//!   answering), with nothing half-written; the pool reconnects when the database is back, without a new store.
//! - **No raw identifiers at rest**: the port types carry only keyed pseudonyms, and no column holds anything
//!   else. The connection URL is a [`SecretString`]: it is never logged, never in `Debug`, never in an error.
//!
//! Each store lives in one schema ([`PostgresOptions::with_schema`], default `public`), created if missing.
//!
//! See `docs/audit.md` for the schema, the locking, the export format and how an outside receiver verifies the
//! chain.

#![forbid(unsafe_code)]

mod checkpoint;
mod codec;
mod export;
mod retention;
mod verify;
mod writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, AuditLog, AuditQuery, ChainBreak, ChainCheckpoint, ChainSummary, Month, PortError,
    PurgeReport, SealedEvent, UsageLedger, UsageRecord,
};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use writer::Command;

pub use export::CSV_HEADER;

/// The embedded schema migrations (`migrations/`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The advisory lock under which stores create their schema and run the migrations, so that replicas starting
/// together do not race (an arbitrary constant: "fctr" in ASCII, then 1).
const MIGRATE_LOCK: i64 = 0x6663_7472_0000_0001;

/// Whether `name` may be a store's schema ([`PostgresOptions::with_schema`]): a letter or `_`, then lowercase
/// letters, digits and `_`, at most 63 bytes, not starting with `pg_`. [`PostgresStore::connect`] refuses any
/// other name (it is written into SQL and into the connection's `search_path`).
#[must_use]
pub fn is_valid_schema(name: &str) -> bool {
    codec::valid_schema(name)
}

/// How to connect a store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Key for the HMAC-SHA256 of checkpoints. Without it checkpoints are recorded unauthenticated, and only the
    /// copy in the runtime log protects against someone who can write the database.
    pub checkpoint_key: Option<SecretString>,
    /// The schema holding the tables (default `public`); created if missing. A plain lowercase identifier.
    pub schema: String,
    /// Most commands written in one transaction (default 512).
    pub max_batch: usize,
    /// Most commands waiting for the writer; callers wait beyond that (default 8192).
    pub queue_capacity: usize,
    /// Most connections the store opens (default 4: the writer, and reads, verification, checkpoints, purges).
    pub max_connections: u32,
    /// Longest wait for a connection, connecting included (default 5 s). An unreachable database is reported
    /// ([`PortError::Unavailable`]) after this long.
    pub connect_timeout: Duration,
    /// Longest a write batch may take, and longest a statement waits for a lock (PostgreSQL `lock_timeout`); a
    /// connection that outlives it is closed. Also PostgreSQL's `idle_in_transaction_session_timeout`, so a
    /// replica that vanishes mid-transaction cannot hold a tenant's head lock longer (default 10 s).
    pub operation_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            checkpoint_key: None,
            schema: "public".to_owned(),
            max_batch: 512,
            queue_capacity: 8192,
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(10),
        }
    }
}

impl PostgresOptions {
    /// Sets the checkpoint key.
    #[must_use]
    pub fn with_checkpoint_key(mut self, key: SecretString) -> Self {
        self.checkpoint_key = Some(key);
        self
    }

    /// Sets the schema (checked by [`PostgresStore::connect`]: a letter or `_`, then lowercase letters, digits and
    /// `_`, at most 63 bytes, not starting with `pg_`).
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the most commands written in one transaction.
    #[must_use]
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Sets the most connections the store opens (at least 2: the writer and one reader).
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(2);
        self
    }

    /// Sets the connect (and connection acquire) timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets the operation timeout (a write batch, a lock wait, an idle transaction).
    #[must_use]
    pub fn with_operation_timeout(mut self, d: Duration) -> Self {
        self.operation_timeout = d;
        self
    }
}

/// Why a store could not be connected. No variant, message or source carries the URL or its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The schema name is not a plain lowercase identifier.
    #[error(
        "the PostgreSQL schema name must be a plain lowercase identifier (a-z, 0-9, _; at most 63 bytes)"
    )]
    InvalidSchema,
    /// The URL cannot be parsed (the parser's message is dropped: it could quote the URL).
    #[error("the PostgreSQL URL is malformed")]
    Url,
    /// The database could not be reached or refused the connection.
    #[error("could not connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// The schema could not be created or brought up to date.
    #[error("could not create or migrate the PostgreSQL schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

struct Inner {
    pool: PgPool,
    tx: mpsc::Sender<Command>,
    commits: Arc<AtomicU64>,
    checkpoint_key: Option<SecretString>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    schema: String,
}

/// The PostgreSQL audit log and usage ledger. Cheap to clone (all clones share one writer task and one connection
/// pool); the writer stops when the last clone is dropped or [`PostgresStore::close`] is called.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

/// Milliseconds as PostgreSQL settings take them (at least 1: 0 would mean "no limit").
fn millis(d: Duration) -> String {
    d.as_millis().clamp(1, i32::MAX as u128).to_string()
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database[?sslmode=…]`), creates
    /// the schema if missing, applies the migrations (under an advisory lock, so replicas may start together) and
    /// starts the writer task. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`StoreError`] when the schema name is not allowed, the URL is malformed, or the database cannot be reached
    /// or migrated.
    pub async fn connect(url: SecretString, options: PostgresOptions) -> Result<Self, StoreError> {
        if !codec::valid_schema(&options.schema) {
            return Err(StoreError::InvalidSchema);
        }
        let base: PgConnectOptions = url.expose_secret().parse().map_err(|_| StoreError::Url)?;
        drop(url);
        let op = millis(options.operation_timeout);
        let connect = base
            .application_name("fctr")
            .options([
                ("search_path", options.schema.as_str()),
                ("lock_timeout", op.as_str()),
                ("idle_in_transaction_session_timeout", op.as_str()),
            ])
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .min_connections(0)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(StoreError::Connect)?;
        if let Err(e) = migrate(&pool, &options.schema).await {
            pool.close().await;
            return Err(e);
        }
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let commits = Arc::new(AtomicU64::new(0));
        let w = writer::Writer::new(
            pool.clone(),
            options.max_batch,
            options.operation_timeout,
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
                schema: options.schema,
            }),
        })
    }

    /// The schema holding the tables.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Transactions this store's writer has committed for appends and usage records since it was connected. Under
    /// concurrent appends it grows much more slowly than the number of events (group commit).
    #[must_use]
    pub fn group_commits(&self) -> u64 {
        self.inner
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops the writer after the commands queued before this call, refuses everything after it with
    /// [`PortError::Unavailable`], and closes the connections. Idempotent.
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
    /// `fctr::audit::checkpoint` with fields `tenant`, `seq` and `hash`. Returns the checkpoints recorded. Any
    /// replica may call it; what another replica already recorded is not recorded again.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the checkpoints could not be written.
    pub async fn checkpoint(&self) -> Result<Vec<ChainCheckpoint>, PortError> {
        checkpoint::record(&self.inner.pool, self.inner.checkpoint_key.as_ref()).await
    }

    /// Each tenant's latest recorded checkpoint (its MAC is not checked here; [`AuditLog::verify_chain`] checks it
    /// when the store was connected with a checkpoint key). A verifier holding the key uses this to refuse a chain
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

    /// Starts a task that calls [`PostgresStore::checkpoint`] every `interval` (first after one interval). It holds
    /// no strong reference: it ends once the store is closed or dropped.
    #[must_use]
    pub fn spawn_checkpointer(&self, interval: Duration) -> JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if inner.pool.is_closed() || inner.tx.is_closed() {
                    break;
                }
                if let Err(e) = checkpoint::record(&inner.pool, inner.checkpoint_key.as_ref()).await
                {
                    tracing::warn!(target: "fctr::postgres", error = e.code(), "audit checkpoint failed");
                }
            }
        })
    }

    /// Writes the events matching `query` to `out` as JSON lines (one object per line, in chain order: by tenant,
    /// then `seq`): the event's own fields plus `seq`, `prev_hash` and `hash`. Returns how many lines were
    /// written. The format, documented in `docs/audit.md`, is byte for byte the SQLite store's.
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

/// Creates the schema if missing and applies the migrations, on one connection, under [`MIGRATE_LOCK`].
async fn migrate(pool: &PgPool, schema: &str) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(StoreError::Connect)?;
    let r = async {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::Connect)?;
        // The name was checked by `valid_schema`: a plain lowercase identifier, safe to quote and interpolate.
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut *conn)
            .await
            .map_err(StoreError::Connect)?;
        MIGRATOR
            .run(&mut *conn)
            .await
            .map_err(StoreError::Migrate)?;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::Connect)?;
        Ok(())
    }
    .await;
    if r.is_err() {
        // Closing the session releases the advisory lock whatever state it was left in.
        conn.close_on_drop();
    }
    r
}

#[async_trait]
impl AuditLog for PostgresStore {
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
        // One snapshot: every table is seen at the same instant, while other replicas keep appending.
        let mut tx = conn
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| codec::unavailable("verify", &e))?;
        let r = verify::verify_all(&mut tx, self.inner.checkpoint_key.as_ref()).await;
        let _ = tx.rollback().await;
        r
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        retention::purge_audit(&self.inner.pool, before).await
    }
}

/// The usage half. `purge_before` here purges usage months only; call it through the trait
/// (`UsageLedger::purge_before(&store, t)`) to disambiguate from the audit purge.
#[async_trait]
impl UsageLedger for PostgresStore {
    async fn record(&self, usage: UsageRecord) -> Result<(), PortError> {
        self.ask(|r| Command::Usage(usage, r)).await
    }

    async fn report(&self, month: Month) -> Result<Vec<UsageRecord>, PortError> {
        export::usage_report(&self.inner.pool, month).await
    }

    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        retention::purge_usage(&self.inner.pool, before).await
    }
}
