//! The single writer task. Every write to the file goes through it, so the chain heads it caches are the truth.
//!
//! It takes everything queued (up to `max_batch` commands), writes all appends and usage records of the batch in
//! ONE transaction, commits (`synchronous=FULL`: the WAL is fsynced before `COMMIT` returns), and only then answers
//! each caller. If anything in the transaction fails it is rolled back, every caller in the batch gets
//! [`PortError::Unavailable`], and the heads are reloaded from the file, so a failed batch never forks the chain.

use crate::codec::{self, EventColumns};
use crate::verify::{self, ChainWalker, WalkError};
use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, ChainAnchor, ChainCheckpoint, ChainHash, Month, PortError, PurgeReport,
    SealedEvent, TenantId, UsageRecord,
};
use secrecy::SecretString;
use sqlx::{Connection, Row, SqliteConnection};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

mod retention;

/// A reply channel.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, PortError>>;

/// What the writer is asked to do.
pub(crate) enum Command {
    Append(AuditEvent, Reply<SealedEvent>),
    Usage(UsageRecord, Reply<()>),
    PurgeAudit(DateTime<Utc>, Reply<PurgeReport>),
    PurgeUsage(DateTime<Utc>, Reply<PurgeReport>),
    Checkpoint(Reply<Vec<ChainCheckpoint>>),
    Shutdown(oneshot::Sender<()>),
}

/// Where a tenant's chain continues.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub next_seq: u64,
    pub prev: ChainHash,
}

impl Head {
    const START: Head = Head {
        next_seq: 0,
        prev: ChainHash::GENESIS,
    };
}

/// Errors while loading the heads.
#[derive(Debug)]
pub(crate) enum LoadError {
    Sql(sqlx::Error),
    Corrupt,
}

/// Reads each tenant's head (last event, or its anchor when every event was purged) and last checkpoint seq.
pub(crate) async fn load_heads(
    conn: &mut SqliteConnection,
) -> Result<(HashMap<TenantId, Head>, HashMap<TenantId, u64>), LoadError> {
    let mut heads = HashMap::new();
    let anchors = sqlx::query("SELECT tenant, seq, prev_hash FROM audit_anchors")
        .fetch_all(&mut *conn)
        .await
        .map_err(LoadError::Sql)?;
    for r in anchors {
        let t: String = r.try_get(0).map_err(LoadError::Sql)?;
        let seq: i64 = r.try_get(1).map_err(LoadError::Sql)?;
        let prev: String = r.try_get(2).map_err(LoadError::Sql)?;
        let (Some(t), Ok(next_seq), Ok(prev)) = (
            codec::tenant(&t),
            u64::try_from(seq),
            ChainHash::from_hex(&prev),
        ) else {
            return Err(LoadError::Corrupt);
        };
        heads.insert(t, Head { next_seq, prev });
    }
    // SQLite returns the other columns of the row holding MAX(seq).
    let rows = sqlx::query("SELECT tenant, MAX(seq), hash FROM audit_events GROUP BY tenant")
        .fetch_all(&mut *conn)
        .await
        .map_err(LoadError::Sql)?;
    for r in rows {
        let t: String = r.try_get(0).map_err(LoadError::Sql)?;
        let seq: i64 = r.try_get(1).map_err(LoadError::Sql)?;
        let hash: String = r.try_get(2).map_err(LoadError::Sql)?;
        let (Some(t), Ok(seq), Ok(prev)) = (
            codec::tenant(&t),
            u64::try_from(seq),
            ChainHash::from_hex(&hash),
        ) else {
            return Err(LoadError::Corrupt);
        };
        heads.insert(
            t,
            Head {
                next_seq: seq.saturating_add(1),
                prev,
            },
        );
    }
    let mut checkpointed = HashMap::new();
    let rows = sqlx::query("SELECT tenant, MAX(seq) FROM audit_checkpoints GROUP BY tenant")
        .fetch_all(&mut *conn)
        .await
        .map_err(LoadError::Sql)?;
    for r in rows {
        let t: String = r.try_get(0).map_err(LoadError::Sql)?;
        let seq: i64 = r.try_get(1).map_err(LoadError::Sql)?;
        if let (Some(t), Ok(seq)) = (codec::tenant(&t), u64::try_from(seq)) {
            checkpointed.insert(t, seq);
        }
    }
    Ok((heads, checkpointed))
}

/// The writer's state.
pub(crate) struct Writer {
    conn: SqliteConnection,
    /// `None` after a failure we could not recover from by reloading: every append is refused until a reload works.
    heads: Option<HashMap<TenantId, Head>>,
    checkpointed: HashMap<TenantId, u64>,
    key: Option<SecretString>,
    max_batch: usize,
    /// Successful group commits (see [`crate::SqliteStore::group_commits`]).
    commits: Arc<AtomicU64>,
}

enum Pending {
    Append(Box<SealedEvent>, Reply<SealedEvent>),
    Usage(Reply<()>),
}

impl Writer {
    pub fn new(
        conn: SqliteConnection,
        heads: HashMap<TenantId, Head>,
        checkpointed: HashMap<TenantId, u64>,
        key: Option<SecretString>,
        max_batch: usize,
        commits: Arc<AtomicU64>,
    ) -> Self {
        Self {
            conn,
            heads: Some(heads),
            checkpointed,
            key,
            max_batch: max_batch.max(1),
            commits,
        }
    }

    /// Runs until every sender is gone or a shutdown is asked for.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut cmds: Vec<Command> = Vec::with_capacity(self.max_batch);
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while shutdown.is_none() {
            let Some(first) = rx.recv().await else {
                break;
            };
            cmds.push(first);
            // Let callers just woken by the previous batch's acknowledgements queue their next command, so they
            // share this batch's fsync instead of each paying for one.
            tokio::task::yield_now().await;
            while cmds.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let mut group: Vec<Command> = Vec::new();
            for c in cmds.drain(..) {
                if shutdown.is_some() {
                    refuse(c);
                    continue;
                }
                match c {
                    Command::Append(..) | Command::Usage(..) => group.push(c),
                    Command::Shutdown(done) => {
                        self.flush(std::mem::take(&mut group)).await;
                        shutdown = Some(done);
                    }
                    other => {
                        self.flush(std::mem::take(&mut group)).await;
                        self.single(other).await;
                    }
                }
            }
            self.flush(group).await;
        }
        // Refuse whatever is still queued; nothing more is accepted.
        rx.close();
        while let Ok(c) = rx.try_recv() {
            refuse(c);
        }
        if let Err(e) = self.conn.close().await {
            let _ = codec::unavailable("close", &e);
        }
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    async fn ensure_heads(&mut self) -> bool {
        if self.heads.is_some() {
            return true;
        }
        match load_heads(&mut self.conn).await {
            Ok((heads, checkpointed)) => {
                self.heads = Some(heads);
                self.checkpointed = checkpointed;
                true
            }
            Err(LoadError::Sql(e)) => {
                let _ = codec::unavailable("reload chain heads", &e);
                false
            }
            Err(LoadError::Corrupt) => {
                tracing::error!(target: "fctr::sqlite", "audit chain heads are malformed; appends refused");
                false
            }
        }
    }

    /// Writes a group of appends and usage records in one transaction.
    async fn flush(&mut self, group: Vec<Command>) {
        if group.is_empty() {
            return;
        }
        if !self.ensure_heads().await {
            group.into_iter().for_each(refuse);
            return;
        }
        let mut overlay: HashMap<TenantId, Head> = HashMap::new();
        let mut pending: Vec<Pending> = Vec::with_capacity(group.len());
        let result = self.write_group(group, &mut overlay, &mut pending).await;
        match result {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                if let Some(heads) = self.heads.as_mut() {
                    heads.extend(overlay);
                }
                for p in pending {
                    match p {
                        Pending::Append(s, reply) => {
                            let _ = reply.send(Ok(*s));
                        }
                        Pending::Usage(reply) => {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
            Err(e) => {
                let _ = codec::unavailable("append batch", &e);
                for p in pending {
                    match p {
                        Pending::Append(_, reply) => {
                            let _ = reply.send(Err(PortError::Unavailable));
                        }
                        Pending::Usage(reply) => {
                            let _ = reply.send(Err(PortError::Unavailable));
                        }
                    }
                }
                // The transaction was rolled back; forget what we thought and read the file again.
                self.heads = None;
                self.ensure_heads().await;
            }
        }
    }

    async fn write_group(
        &mut self,
        group: Vec<Command>,
        overlay: &mut HashMap<TenantId, Head>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), sqlx::Error> {
        let heads = self.heads.as_ref();
        // Seal everything first (pure CPU), so callers of a failed batch are all still in `pending`.
        let mut rows: Vec<EventColumns> = Vec::new();
        let mut usage: Vec<UsageRecord> = Vec::new();
        for c in group {
            match c {
                Command::Append(event, reply) => {
                    let tenant = event.tenant.clone();
                    let head = overlay
                        .get(&tenant)
                        .or_else(|| heads.and_then(|h| h.get(&tenant)))
                        .copied()
                        .unwrap_or(Head::START);
                    // Encoded once: the bytes hashed are the bytes stored.
                    let canonical = event.canonical_bytes();
                    let hash = ChainHash::compute_canonical(&head.prev, head.next_seq, &canonical);
                    let sealed = SealedEvent {
                        seq: head.next_seq,
                        prev_hash: head.prev,
                        hash,
                        event,
                    };
                    let Some(cols) = EventColumns::encode(&sealed, canonical) else {
                        let _ = reply.send(Err(PortError::Malformed));
                        continue;
                    };
                    overlay.insert(
                        tenant,
                        Head {
                            next_seq: sealed.seq.saturating_add(1),
                            prev: sealed.hash,
                        },
                    );
                    rows.push(cols);
                    pending.push(Pending::Append(Box::new(sealed), reply));
                }
                Command::Usage(record, reply) => {
                    if i64::try_from(record.count).is_err() {
                        let _ = reply.send(Err(PortError::Malformed));
                        continue;
                    }
                    usage.push(record);
                    pending.push(Pending::Usage(reply));
                }
                other => refuse(other),
            }
        }
        // The usual batch (a few appends, no usage record) is one statement: SQLite runs it in its own implicit
        // transaction, atomic and, with `synchronous=FULL`, fsynced before it returns, exactly as BEGIN / INSERT /
        // COMMIT would be, but in one round trip to sqlx's connection thread instead of three (each a thread
        // wake-up: the largest cost of an append at low rates).
        if usage.is_empty() && single_statement(rows.len()) {
            let sql = insert_sql(rows.len());
            bind_rows(sqlx::query(&sql), &rows)
                .execute(&mut self.conn)
                .await?;
            return Ok(());
        }
        // A lone usage record (a verification's or an action's, counted after its events) is one statement too.
        if let ([], [u]) = (rows.as_slice(), usage.as_slice()) {
            bind_usage(sqlx::query(USAGE_SQL), u)
                .execute(&mut self.conn)
                .await?;
            return Ok(());
        }
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        // Multi-row INSERTs in a few fixed sizes, so the prepared-statement cache stays small.
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let n = INSERT_SIZES
                .iter()
                .copied()
                .find(|&k| rest.len() >= k)
                .unwrap_or(1);
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            let sql = insert_sql(chunk.len());
            bind_rows(sqlx::query(&sql), chunk)
                .execute(&mut *tx)
                .await?;
            rest = tail;
        }
        for u in &usage {
            bind_usage(sqlx::query(USAGE_SQL), u)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    async fn single(&mut self, c: Command) {
        match c {
            Command::PurgeAudit(before, reply) => {
                let r = self.purge_audit(before).await;
                if r.is_err() {
                    // Rolled back; the heads are unchanged by a purge, but re-read them to be sure.
                    self.heads = None;
                    self.ensure_heads().await;
                }
                let _ = reply.send(r);
            }
            Command::PurgeUsage(before, reply) => {
                let _ = reply.send(self.purge_usage(before).await);
            }
            Command::Checkpoint(reply) => {
                let r = self.checkpoint().await;
                let _ = reply.send(r);
            }
            other => refuse(other),
        }
    }

    /// Records the head of every tenant whose head moved since its last checkpoint.
    async fn checkpoint(&mut self) -> Result<Vec<ChainCheckpoint>, PortError> {
        if !self.ensure_heads().await {
            return Err(PortError::Unavailable);
        }
        let at = codec::time_text(&Utc::now());
        let mut new: Vec<(ChainCheckpoint, Option<String>)> = Vec::new();
        if let Some(heads) = self.heads.as_ref() {
            let mut tenants: Vec<&TenantId> = heads.keys().collect();
            tenants.sort();
            for t in tenants {
                let Some(h) = heads.get(t) else { continue };
                if h.next_seq == 0 {
                    continue;
                }
                let seq = h.next_seq - 1;
                if self.checkpointed.get(t) == Some(&seq) {
                    continue;
                }
                let cp = ChainCheckpoint {
                    tenant: t.clone(),
                    seq,
                    hash: h.prev,
                };
                let mac = self
                    .key
                    .as_ref()
                    .and_then(|k| codec::checkpoint_mac(k, &cp, &at));
                new.push((cp, mac));
            }
        }
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let sql = |e: sqlx::Error| codec::unavailable("checkpoint", &e);
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await.map_err(sql)?;
        for (cp, mac) in &new {
            sqlx::query(
                "INSERT INTO audit_checkpoints (tenant, seq, hash, at, mac) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (tenant, seq) DO UPDATE SET hash = excluded.hash, at = excluded.at, mac = excluded.mac",
            )
            .bind(cp.tenant.as_str())
            .bind(i64::try_from(cp.seq).unwrap_or(i64::MAX))
            .bind(cp.hash.to_hex())
            .bind(&at)
            .bind(mac.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(sql)?;
        }
        tx.commit().await.map_err(sql)?;
        let mut out = Vec::with_capacity(new.len());
        for (cp, _) in new {
            tracing::info!(
                target: "fctr::audit::checkpoint",
                tenant = %cp.tenant,
                seq = cp.seq,
                hash = %cp.hash,
                "audit chain checkpoint"
            );
            self.checkpointed.insert(cp.tenant.clone(), cp.seq);
            out.push(cp);
        }
        Ok(out)
    }
}

/// Rows per multi-row INSERT, largest first.
const INSERT_SIZES: [usize; 4] = [64, 16, 4, 1];

/// Whether a batch of `n` appends is written as one statement without an explicit transaction: up to 16 rows
/// (any count: at most 16 more cached statements), or exactly one of [`INSERT_SIZES`].
fn single_statement(n: usize) -> bool {
    (1..=16).contains(&n) || INSERT_SIZES.contains(&n)
}

/// Adds a usage record to its month's count.
const USAGE_SQL: &str = "INSERT INTO usage (month, tenant, agent, kind, count) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (month, tenant, agent, kind) DO UPDATE SET count = count + excluded.count";

/// Binds a usage record's columns, in [`USAGE_SQL`] order.
fn bind_usage<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    u: &'q UsageRecord,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(u.month.to_string())
        .bind(u.tenant.as_str())
        .bind(u.agent.as_str())
        .bind(u.kind.as_str())
        .bind(i64::try_from(u.count).unwrap_or(i64::MAX))
}

/// Binds each row's columns, in `insert_sql` order.
fn bind_rows<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    rows: &'q [EventColumns],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for r in rows {
        q = q
            .bind(&r.tenant)
            .bind(r.seq)
            .bind(&r.id)
            .bind(&r.at)
            .bind(r.kind)
            .bind(&r.event)
            .bind(&r.prev_hash)
            .bind(&r.hash);
    }
    q
}

/// `INSERT INTO audit_events (...) VALUES (...), (...)` for `n` rows.
fn insert_sql(n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO audit_events (tenant, seq, id, at, kind, event, prev_hash, hash) VALUES ",
    );
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?)");
    }
    sql
}

/// Answers a command with [`PortError::Unavailable`] without doing it.
fn refuse(c: Command) {
    match c {
        Command::Append(_, r) => {
            let _ = r.send(Err(PortError::Unavailable));
        }
        Command::Usage(_, r) => {
            let _ = r.send(Err(PortError::Unavailable));
        }
        Command::PurgeAudit(_, r) | Command::PurgeUsage(_, r) => {
            let _ = r.send(Err(PortError::Unavailable));
        }
        Command::Checkpoint(r) => {
            let _ = r.send(Err(PortError::Unavailable));
        }
        Command::Shutdown(done) => {
            let _ = done.send(());
        }
    }
}
