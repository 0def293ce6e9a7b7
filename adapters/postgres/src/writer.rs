//! The store's writer task: group commit of appends and usage records, one transaction per batch.
//!
//! It takes everything queued (up to `max_batch` commands) and, in ONE transaction: locks the head rows of the
//! batch's tenants (`SELECT … FOR UPDATE`, in tenant order, so two replicas never deadlock), seals the events after
//! the heads it just read, inserts them and moves the heads (one statement), adds the usage counts (one upsert),
//! and commits. Only then is each caller answered. Any failure rolls the whole batch back and answers every caller
//! in it with [`PortError::Unavailable`]; the connection is then closed (the pool opens a fresh one for the next
//! batch), and nothing learnt in the failed batch is kept: the next batch reads the heads again.
//!
//! Nothing about the chain is cached between batches. The only memory is which tenants already have a head row
//! (to skip creating it), and that is forgotten after any error.

use crate::codec::{self, EventColumns};
use fctr_ports::{AuditEvent, ChainHash, PortError, SealedEvent, TenantId, UsageRecord};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A reply channel.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, PortError>>;

/// What the writer is asked to do.
pub(crate) enum Command {
    Append(AuditEvent, Reply<SealedEvent>),
    Usage(UsageRecord, Reply<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Why a batch failed. Every caller of the batch gets [`PortError::Unavailable`].
enum BatchError {
    Sql(sqlx::Error),
    /// The batch took longer than the operation timeout (the database stopped answering).
    Timeout,
    /// A tenant's head row vanished between its creation and the lock.
    MissingHead,
    /// A stored head is malformed (the table was edited); appends to that tenant are refused.
    CorruptHead,
}

/// Creates the head row of each tenant that has none, from its last event, else its purge anchor, else genesis.
/// Runs in its own short transaction, before the batch's, so a batch only ever locks existing rows (in order).
const INIT_HEADS: &str = "\
INSERT INTO audit_heads (tenant, next_seq, prev_hash) \
SELECT t.tenant, \
       COALESCE((SELECT e.seq + 1 FROM audit_events e WHERE e.tenant = t.tenant ORDER BY e.seq DESC LIMIT 1), \
                (SELECT a.seq FROM audit_anchors a WHERE a.tenant = t.tenant), 0), \
       COALESCE((SELECT e.hash FROM audit_events e WHERE e.tenant = t.tenant ORDER BY e.seq DESC LIMIT 1), \
                (SELECT a.prev_hash FROM audit_anchors a WHERE a.tenant = t.tenant), $2) \
FROM UNNEST($1::text[]) AS t(tenant) \
ORDER BY t.tenant \
ON CONFLICT (tenant) DO NOTHING";

/// Locks the batch's head rows, in tenant order, and reads each beside the tenant's last stored event. The head
/// row is the authority; an event beyond it (written by something that bypassed the heads) moves it forward, as
/// the SQLite store continues after a row written behind its back, so a seq is never handed out twice.
const LOCK_HEADS: &str = "\
SELECT h.tenant, h.next_seq, h.prev_hash, e.seq, e.hash FROM audit_heads h \
LEFT JOIN LATERAL (SELECT seq, hash FROM audit_events WHERE tenant = h.tenant ORDER BY seq DESC LIMIT 1) e \
  ON TRUE \
WHERE h.tenant = ANY($1::text[]) ORDER BY h.tenant FOR UPDATE OF h";

/// Inserts the sealed events and moves the heads, in one statement.
const INSERT_EVENTS: &str = "\
WITH ins AS ( \
  INSERT INTO audit_events (tenant, seq, id, at, kind, event, prev_hash, hash) \
  SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                       $8::text[]) \
) \
UPDATE audit_heads AS h SET next_seq = v.next_seq, prev_hash = v.prev_hash \
FROM UNNEST($9::text[], $10::int8[], $11::text[]) AS v(tenant, next_seq, prev_hash) \
WHERE h.tenant = v.tenant";

/// Adds usage counts (one row per key: the batch's counts are summed first, and sorted, so replicas lock rows in
/// the same order).
const UPSERT_USAGE: &str = "\
INSERT INTO usage (month, tenant, agent, kind, count) \
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
ON CONFLICT (month, tenant, agent, kind) DO UPDATE SET count = usage.count + excluded.count";

/// Where a tenant's chain continues.
#[derive(Debug, Clone, Copy)]
struct Head {
    next_seq: u64,
    prev: ChainHash,
}

/// The writer's state.
pub(crate) struct Writer {
    pool: PgPool,
    /// The connection the writer keeps between batches; dropped (closed) after any failure.
    conn: Option<PoolConnection<Postgres>>,
    /// Tenants known to have a head row. Forgotten after any failure.
    known: HashSet<TenantId>,
    max_batch: usize,
    timeout: Duration,
    /// Successful group commits (see [`crate::PostgresStore::group_commits`]).
    commits: Arc<AtomicU64>,
}

impl Writer {
    pub fn new(pool: PgPool, max_batch: usize, timeout: Duration, commits: Arc<AtomicU64>) -> Self {
        Self {
            pool,
            conn: None,
            known: HashSet::new(),
            max_batch: max_batch.max(1),
            timeout,
            commits,
        }
    }

    /// Runs until every sender is gone or a shutdown is asked for. Never ends on a database error: each is
    /// answered, and the next batch starts afresh.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut cmds: Vec<Command> = Vec::with_capacity(self.max_batch);
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        while shutdown.is_none() {
            let Some(first) = rx.recv().await else {
                break;
            };
            cmds.push(first);
            // Let callers just woken by the previous batch's acknowledgements queue their next command, so they
            // share this batch's commit instead of each paying for one.
            tokio::task::yield_now().await;
            while cmds.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let mut appends: Vec<(AuditEvent, Reply<SealedEvent>)> = Vec::new();
            let mut usage: Vec<(UsageRecord, Reply<()>)> = Vec::new();
            for c in cmds.drain(..) {
                match c {
                    _ if shutdown.is_some() => refuse(c),
                    Command::Append(e, r) => appends.push((e, r)),
                    Command::Usage(u, r) => usage.push((u, r)),
                    Command::Shutdown(done) => shutdown = Some(done),
                }
            }
            self.flush(appends, usage).await;
        }
        // Refuse whatever is still queued; nothing more is accepted.
        rx.close();
        while let Ok(c) = rx.try_recv() {
            refuse(c);
        }
        drop(self.conn.take());
        if let Some(done) = shutdown {
            let _ = done.send(());
        }
    }

    /// Writes one batch and answers its callers.
    async fn flush(
        &mut self,
        appends: Vec<(AuditEvent, Reply<SealedEvent>)>,
        usage: Vec<(UsageRecord, Reply<()>)>,
    ) {
        if appends.is_empty() && usage.is_empty() {
            return;
        }
        let mut usage_ok: Vec<(UsageRecord, Reply<()>)> = Vec::with_capacity(usage.len());
        for (u, r) in usage {
            if i64::try_from(u.count).is_err() {
                let _ = r.send(Err(PortError::Malformed));
            } else {
                usage_ok.push((u, r));
            }
        }
        let (events, replies): (Vec<AuditEvent>, Vec<Reply<SealedEvent>>) =
            appends.into_iter().unzip();
        let records: Vec<&UsageRecord> = usage_ok.iter().map(|(u, _)| u).collect();
        match self.write(&events, &records).await {
            Ok(sealed) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                for (s, reply) in sealed.into_iter().zip(replies) {
                    let _ = reply.send(s);
                }
                for (_, reply) in usage_ok {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                match &e {
                    BatchError::Sql(e) => {
                        let _ = codec::unavailable("append batch", e);
                    }
                    BatchError::Timeout => {
                        tracing::warn!(target: "fctr::postgres", "audit append batch timed out; connection closed");
                    }
                    BatchError::MissingHead => {
                        tracing::warn!(target: "fctr::postgres", "an audit chain head row vanished; batch refused");
                    }
                    BatchError::CorruptHead => {
                        tracing::error!(
                            target: "fctr::postgres",
                            "a stored audit chain head is malformed; appends refused (run `fctr audit verify`)"
                        );
                    }
                }
                self.known.clear();
                if let Some(mut c) = self.conn.take() {
                    c.close_on_drop();
                }
                for reply in replies {
                    let _ = reply.send(Err(PortError::Unavailable));
                }
                for (_, reply) in usage_ok {
                    let _ = reply.send(Err(PortError::Unavailable));
                }
            }
        }
    }

    /// One batch: a connection (kept from the last batch, or a new one), then the transaction, bounded by the
    /// operation timeout. Returns each event's answer, in order.
    ///
    /// A kept connection may have died while the store was idle (the server restarted, a proxy dropped it): when
    /// the batch fails on one with a connection error before `COMMIT` was sent, nothing of it can have been
    /// committed, so it is tried once more on a fresh connection rather than refused.
    async fn write(
        &mut self,
        events: &[AuditEvent],
        usage: &[&UsageRecord],
    ) -> Result<Vec<Result<SealedEvent, PortError>>, BatchError> {
        let reused = self.conn.is_some();
        match self.attempt(events, usage).await {
            Err((e, Phase::BeforeCommit)) if reused && e.is_connection_lost() => {
                tracing::debug!(target: "fctr::postgres", "a kept connection was lost; batch retried on a new one");
                self.known.clear();
                self.attempt(events, usage).await.map_err(|(e, _)| e)
            }
            r => r.map_err(|(e, _)| e),
        }
    }

    async fn attempt(
        &mut self,
        events: &[AuditEvent],
        usage: &[&UsageRecord],
    ) -> Result<Vec<Result<SealedEvent, PortError>>, (BatchError, Phase)> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self
                .pool
                .acquire()
                .await
                .map_err(|e| (BatchError::Sql(e), Phase::BeforeCommit))?,
        };
        let mut phase = Phase::BeforeCommit;
        let work = transact(&mut conn, &mut self.known, events, usage, &mut phase);
        let r = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(BatchError::Timeout),
        };
        match r {
            Ok(v) => {
                self.conn = Some(conn);
                Ok(v)
            }
            Err(e) => {
                // The connection's state is unknown (a dropped transaction, a dead socket): never reuse it.
                conn.close_on_drop();
                Err((e, phase))
            }
        }
    }
}

/// How far a batch got: a failure before `COMMIT` was sent cannot have stored anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    BeforeCommit,
    Committing,
}

impl BatchError {
    /// Whether the connection itself failed (rather than the database refusing a statement).
    fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Self::Sql(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_))
        )
    }
}

/// The batch's transaction.
async fn transact(
    conn: &mut PgConnection,
    known: &mut HashSet<TenantId>,
    events: &[AuditEvent],
    usage: &[&UsageRecord],
    phase: &mut Phase,
) -> Result<Vec<Result<SealedEvent, PortError>>, BatchError> {
    let tenants: BTreeSet<TenantId> = events.iter().map(|e| e.tenant.clone()).collect();
    let unknown: Vec<&str> = tenants
        .iter()
        .filter(|t| !known.contains(*t))
        .map(|t| t.as_str())
        .collect();
    if !unknown.is_empty() {
        sqlx::query(INIT_HEADS)
            .bind(&unknown)
            .bind(ChainHash::GENESIS.to_hex())
            .execute(&mut *conn)
            .await
            .map_err(BatchError::Sql)?;
    }
    let mut tx = conn.begin().await.map_err(BatchError::Sql)?;
    let mut heads: HashMap<TenantId, Head> = HashMap::with_capacity(tenants.len());
    if !tenants.is_empty() {
        let names: Vec<&str> = tenants.iter().map(|t| t.as_str()).collect();
        let rows = sqlx::query(LOCK_HEADS)
            .bind(&names)
            .fetch_all(&mut *tx)
            .await
            .map_err(BatchError::Sql)?;
        for r in rows {
            let t: String = r.try_get(0).map_err(BatchError::Sql)?;
            let next: i64 = r.try_get(1).map_err(BatchError::Sql)?;
            let prev: String = r.try_get(2).map_err(BatchError::Sql)?;
            let last_seq: Option<i64> = r.try_get(3).map_err(BatchError::Sql)?;
            let last_hash: Option<String> = r.try_get(4).map_err(BatchError::Sql)?;
            let (Some(t), Ok(next_seq), Ok(prev)) = (
                codec::tenant(&t),
                u64::try_from(next),
                ChainHash::from_hex(&prev),
            ) else {
                return Err(BatchError::CorruptHead);
            };
            let mut head = Head { next_seq, prev };
            if let (Some(seq), Some(hash)) = (last_seq, last_hash) {
                let after = u64::try_from(seq).map_or(0, |s| s.saturating_add(1));
                if after > head.next_seq {
                    let Ok(prev) = ChainHash::from_hex(&hash) else {
                        return Err(BatchError::CorruptHead);
                    };
                    head = Head {
                        next_seq: after,
                        prev,
                    };
                }
            }
            heads.insert(t, head);
        }
        if heads.len() != tenants.len() {
            return Err(BatchError::MissingHead);
        }
    }
    // Seal after the heads just read under the lock.
    let mut cols = EventColumns::default();
    let mut answers: Vec<Result<SealedEvent, PortError>> = Vec::with_capacity(events.len());
    for event in events {
        let event = event.clone();
        let Some(head) = heads.get_mut(&event.tenant) else {
            return Err(BatchError::MissingHead);
        };
        // Encoded once: the bytes hashed are the bytes stored.
        let canonical = event.canonical_bytes();
        let hash = ChainHash::compute_canonical(&head.prev, head.next_seq, &canonical);
        let sealed = SealedEvent {
            seq: head.next_seq,
            prev_hash: head.prev,
            hash,
            event,
        };
        if cols.push(&sealed, canonical).is_none() {
            answers.push(Err(PortError::Malformed));
            continue;
        }
        *head = Head {
            next_seq: sealed.seq.saturating_add(1),
            prev: sealed.hash,
        };
        answers.push(Ok(sealed));
    }
    if !cols.is_empty() {
        let mut h_tenant: Vec<&str> = Vec::with_capacity(heads.len());
        let mut h_next: Vec<i64> = Vec::with_capacity(heads.len());
        let mut h_prev: Vec<String> = Vec::with_capacity(heads.len());
        for (t, h) in &heads {
            h_tenant.push(t.as_str());
            h_next.push(i64::try_from(h.next_seq).map_err(|_| BatchError::CorruptHead)?);
            h_prev.push(h.prev.to_hex());
        }
        sqlx::query(INSERT_EVENTS)
            .bind(&cols.tenant)
            .bind(&cols.seq)
            .bind(&cols.id)
            .bind(&cols.at)
            .bind(&cols.kind)
            .bind(&cols.event)
            .bind(&cols.prev_hash)
            .bind(&cols.hash)
            .bind(&h_tenant)
            .bind(&h_next)
            .bind(&h_prev)
            .execute(&mut *tx)
            .await
            .map_err(BatchError::Sql)?;
    }
    if !usage.is_empty() {
        // One row per key, in key order.
        let mut sums: BTreeMap<(String, &str, &str, &str), i64> = BTreeMap::new();
        for u in usage {
            let n = i64::try_from(u.count).unwrap_or(i64::MAX);
            let s = sums
                .entry((
                    u.month.to_string(),
                    u.tenant.as_str(),
                    u.agent.as_str(),
                    u.kind.as_str(),
                ))
                .or_insert(0);
            *s = s.saturating_add(n);
        }
        let mut month = Vec::with_capacity(sums.len());
        let mut tenant = Vec::with_capacity(sums.len());
        let mut agent = Vec::with_capacity(sums.len());
        let mut kind = Vec::with_capacity(sums.len());
        let mut count = Vec::with_capacity(sums.len());
        for ((m, t, a, k), n) in sums {
            month.push(m);
            tenant.push(t);
            agent.push(a);
            kind.push(k);
            count.push(n);
        }
        sqlx::query(UPSERT_USAGE)
            .bind(&month)
            .bind(&tenant)
            .bind(&agent)
            .bind(&kind)
            .bind(&count)
            .execute(&mut *tx)
            .await
            .map_err(BatchError::Sql)?;
    }
    *phase = Phase::Committing;
    tx.commit().await.map_err(BatchError::Sql)?;
    known.extend(tenants);
    Ok(answers)
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
        Command::Shutdown(done) => {
            let _ = done.send(());
        }
    }
}
