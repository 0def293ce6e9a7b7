//! Chain verification over streamed rows: the same algorithm as the SQLite store's.
//!
//! Rows are read in `seq` order and cut into chunks; each chunk is checked with [`verify_tenant_chain_raw`] on the
//! blocking pool, several chunks at once. Rows are not decoded: the `event` column holds the canonical encoding, and
//! each hash is recomputed over those stored bytes, so any byte changed is found. Chunk `k + 1` is anchored at the
//! stored `seq + 1` and `hash` of the last row of chunk `k`, and results are taken in order, so the first break
//! reported is the same one a single pass over the whole chain would report, while memory stays bounded by the
//! chunks in flight.

use crate::codec::{self, RawRow};
use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, BreakKind, ChainAnchor, ChainBreak, ChainCheckpoint, ChainHash, ChainSummary,
    PortError, RawLink, SealedEvent, TenantId, verify_tenant_chain_raw,
};
use futures::TryStreamExt;
use secrecy::SecretString;
use sqlx::{PgConnection, Row};
use std::collections::{BTreeSet, HashMap, VecDeque};
use tokio::task::JoinHandle;

/// Rows per chunk handed to one blocking task.
const CHUNK: usize = 4096;

/// Why a walk stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// The chain is broken.
    Break(ChainBreak),
    /// (Purge only) an event inside the prefix to purge is not older than the cut-off: its `at` column and its
    /// content disagree.
    NotOld(u64),
    /// The store failed.
    Store(PortError),
}

type ChunkOutcome = Result<(u64, Option<ChainCheckpoint>), WalkError>;

/// Walks one tenant's chain chunk by chunk.
pub(crate) struct ChainWalker {
    tenant: TenantId,
    anchor: Option<ChainAnchor>,
    checkpoint: Option<ChainCheckpoint>,
    older_than: Option<DateTime<Utc>>,
    buf: Vec<RawRow>,
    pending: VecDeque<JoinHandle<ChunkOutcome>>,
    max_in_flight: usize,
    events: u64,
    head: Option<ChainCheckpoint>,
}

impl ChainWalker {
    /// A walker starting at `anchor` (or genesis), checking `checkpoint` if given. With `older_than`, every event
    /// must also be strictly older than that time (used by purge).
    pub fn new(
        tenant: TenantId,
        anchor: Option<ChainAnchor>,
        checkpoint: Option<ChainCheckpoint>,
        older_than: Option<DateTime<Utc>>,
    ) -> Self {
        let max_in_flight = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 16);
        Self {
            tenant,
            anchor,
            checkpoint,
            older_than,
            buf: Vec::with_capacity(CHUNK),
            pending: VecDeque::new(),
            max_in_flight,
            events: 0,
            head: None,
        }
    }

    /// Adds the next stored row.
    pub async fn push(&mut self, row: RawRow) -> Result<(), WalkError> {
        self.buf.push(row);
        if self.buf.len() >= CHUNK {
            self.dispatch(false);
            while self.pending.len() > self.max_in_flight {
                self.settle_front().await?;
            }
        }
        Ok(())
    }

    /// Ends the walk: the events checked and the head.
    pub async fn finish(mut self) -> Result<(u64, Option<ChainCheckpoint>), WalkError> {
        self.dispatch(true);
        while !self.pending.is_empty() {
            self.settle_front().await?;
        }
        Ok((self.events, self.head))
    }

    async fn settle_front(&mut self) -> Result<(), WalkError> {
        let Some(h) = self.pending.pop_front() else {
            return Ok(());
        };
        let outcome = h
            .await
            .map_err(|e| WalkError::Store(PortError::unexpected(e)))?;
        let (n, head) = outcome?;
        self.events += n;
        if head.is_some() {
            self.head = head;
        }
        Ok(())
    }

    fn dispatch(&mut self, last: bool) {
        let rows = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let anchor = self.anchor.clone();
        // The next chunk starts where this one's stored rows end.
        if let Some(r) = rows.last() {
            self.anchor = Some(ChainAnchor {
                tenant: self.tenant.clone(),
                seq: u64::try_from(r.seq).unwrap_or(0).saturating_add(1),
                prev_hash: r.hash().unwrap_or(ChainHash::GENESIS),
            });
        }
        let last_seq = rows.last().map(|r| r.seq);
        // The checkpoint is checked by the chunk that should contain it, or by the last one.
        let checkpoint = self.checkpoint.clone().filter(|cp| {
            last || last_seq
                .and_then(|s| u64::try_from(s).ok())
                .is_some_and(|s| cp.seq <= s)
        });
        let tenant = self.tenant.clone();
        let older_than = self.older_than;
        self.pending.push_back(tokio::task::spawn_blocking(move || {
            check_chunk(
                &tenant,
                &rows,
                anchor.as_ref(),
                checkpoint.as_ref(),
                older_than,
            )
        }));
    }
}

fn check_chunk(
    tenant: &TenantId,
    rows: &[RawRow],
    anchor: Option<&ChainAnchor>,
    checkpoint: Option<&ChainCheckpoint>,
    older_than: Option<DateTime<Utc>>,
) -> ChunkOutcome {
    let mut links: Vec<RawLink<'_>> = Vec::with_capacity(rows.len());
    let mut bad: Option<&RawRow> = None;
    for r in rows {
        match r.link() {
            Some(l) => links.push(l),
            None => {
                bad = Some(r);
                break;
            }
        }
    }
    let brk = |position, kind| {
        WalkError::Break(ChainBreak {
            tenant: tenant.clone(),
            position,
            kind,
        })
    };
    let checked = links.len();
    // The checkpoint is checked only when every row could be read; otherwise the bad row is the break.
    let checkpoint = if bad.is_none() { checkpoint } else { None };
    let head = verify_tenant_chain_raw(tenant, links, anchor, checkpoint)
        .map_err(|b| WalkError::Break(undecodable_as_edited(tenant, rows, anchor, b)))?;
    if let Some(r) = bad {
        let expect = head
            .map(|h| h.seq + 1)
            .or_else(|| anchor.map(|a| a.seq))
            .unwrap_or(0);
        return match u64::try_from(r.seq) {
            Ok(s) if s == expect => Err(brk(s, BreakKind::Edited)),
            _ => Err(brk(expect, BreakKind::SequenceGap)),
        };
    }
    if let Some(t) = older_than {
        // Purge only: every event to purge is decoded, must be exactly what was hashed and must be older than the
        // cut-off.
        for r in rows {
            let seq = u64::try_from(r.seq).unwrap_or(0);
            let Some(s) = r.decode().filter(|s| stored_exactly(r, s)) else {
                return Err(brk(seq, BreakKind::Edited));
            };
            if s.event.at >= t {
                return Err(WalkError::NotOld(s.seq));
            }
        }
    }
    Ok((checked as u64, head))
}

/// Whether a row's event text is exactly the canonical encoding of the event it decodes to.
fn stored_exactly(row: &RawRow, sealed: &SealedEvent) -> bool {
    row.event_text().as_bytes() == sealed.event.canonical_bytes().as_slice()
}

/// A break at a row whose event does not decode is reported as the SQLite store reports it, whatever the raw check
/// saw first there: `edited` at its `seq` when that is the expected one, else a sequence gap. Only the failing row
/// is decoded.
fn undecodable_as_edited(
    tenant: &TenantId,
    rows: &[RawRow],
    anchor: Option<&ChainAnchor>,
    b: ChainBreak,
) -> ChainBreak {
    let start = anchor.map_or(0, |a| a.seq);
    let Some(row) = b
        .position
        .checked_sub(start)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| rows.get(i))
    else {
        return b;
    };
    if serde_json::from_str::<AuditEvent>(row.event_text()).is_ok() {
        return b;
    }
    let kind = if u64::try_from(row.seq) == Ok(b.position) {
        BreakKind::Edited
    } else {
        BreakKind::SequenceGap
    };
    ChainBreak {
        tenant: tenant.clone(),
        position: b.position,
        kind,
    }
}

/// A recorded checkpoint with what is needed to check its MAC.
pub(crate) struct StoredCheckpoint {
    pub cp: ChainCheckpoint,
    pub at: String,
    pub mac: Option<String>,
}

/// Reads every tenant's anchor.
pub(crate) async fn anchors(
    conn: &mut PgConnection,
) -> Result<HashMap<String, ChainAnchor>, PortError> {
    let get = |e: sqlx::Error| codec::unavailable("read anchors", &e);
    let rows = sqlx::query("SELECT tenant, seq, prev_hash FROM audit_anchors")
        .fetch_all(&mut *conn)
        .await
        .map_err(get)?;
    let mut out = HashMap::new();
    for r in rows {
        let t: String = r.try_get(0).map_err(get)?;
        let seq: i64 = r.try_get(1).map_err(get)?;
        let prev: String = r.try_get(2).map_err(get)?;
        let (Some(tenant), Ok(seq), Ok(prev_hash)) = (
            codec::tenant(&t),
            u64::try_from(seq),
            ChainHash::from_hex(&prev),
        ) else {
            tracing::error!(target: "fctr::postgres", "an audit anchor row is malformed");
            return Err(PortError::Malformed);
        };
        out.insert(
            t,
            ChainAnchor {
                tenant,
                seq,
                prev_hash,
            },
        );
    }
    Ok(out)
}

/// Reads each tenant's latest checkpoint (highest `seq`).
pub(crate) async fn latest_checkpoints(
    conn: &mut PgConnection,
) -> Result<HashMap<String, StoredCheckpoint>, PortError> {
    let get = |e: sqlx::Error| codec::unavailable("read checkpoints", &e);
    let rows = sqlx::query(
        "SELECT DISTINCT ON (tenant) tenant, seq, hash, at, mac FROM audit_checkpoints \
         ORDER BY tenant, seq DESC",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(get)?;
    let mut out = HashMap::new();
    for r in rows {
        let t: String = r.try_get(0).map_err(get)?;
        let seq: i64 = r.try_get(1).map_err(get)?;
        let hash: String = r.try_get(2).map_err(get)?;
        let at: String = r.try_get(3).map_err(get)?;
        let mac: Option<String> = r.try_get(4).map_err(get)?;
        let (Some(tenant), Ok(seq)) = (codec::tenant(&t), u64::try_from(seq)) else {
            tracing::error!(target: "fctr::postgres", "an audit checkpoint row is malformed");
            return Err(PortError::Malformed);
        };
        // An unreadable hash cannot match any event: keep it, as a hash no event has.
        let hash = ChainHash::from_hex(&hash).unwrap_or(ChainHash([0xff; 32]));
        out.insert(
            t,
            StoredCheckpoint {
                cp: ChainCheckpoint { tenant, seq, hash },
                at,
                mac,
            },
        );
    }
    Ok(out)
}

/// Verifies every tenant's chain; the caller runs it inside one `REPEATABLE READ` transaction (a consistent
/// snapshot of every table).
pub(crate) async fn verify_all(
    conn: &mut PgConnection,
    key: Option<&SecretString>,
) -> Result<Result<ChainSummary, ChainBreak>, PortError> {
    let anchors = anchors(conn).await?;
    let checkpoints = latest_checkpoints(conn).await?;
    let mut tenants: BTreeSet<String> = BTreeSet::new();
    {
        let mut s = sqlx::query("SELECT DISTINCT tenant FROM audit_events").fetch(&mut *conn);
        while let Some(r) = s
            .try_next()
            .await
            .map_err(|e| codec::unavailable("verify", &e))?
        {
            let t: String = r.try_get(0).map_err(|e| codec::unavailable("verify", &e))?;
            tenants.insert(t);
        }
    }
    tenants.extend(anchors.keys().cloned());
    tenants.extend(checkpoints.keys().cloned());

    let mut summary = ChainSummary::default();
    for t in tenants {
        let Some(tenant) = codec::tenant(&t) else {
            tracing::error!(target: "fctr::postgres", "an audit row has a malformed tenant column");
            return Err(PortError::Malformed);
        };
        let anchor = anchors.get(&t).cloned();
        let stored = checkpoints.get(&t);
        // A checkpoint whose MAC does not verify is refused: the chain is reported truncated at its position,
        // unless the chain breaks earlier.
        let forged = match (key, stored) {
            (Some(k), Some(s)) => !codec::checkpoint_mac_ok(k, &s.cp, &s.at, s.mac.as_deref()),
            _ => false,
        };
        let checkpoint = if forged {
            None
        } else {
            stored.map(|s| s.cp.clone())
        };
        let mut walker = ChainWalker::new(tenant.clone(), anchor, checkpoint, None);
        let walked = walk(conn, &t, None, &mut walker).await;
        let outcome = match walked {
            Ok(()) => walker.finish().await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok((n, head)) => {
                if let (true, Some(s)) = (forged, stored) {
                    return Ok(Err(ChainBreak {
                        tenant,
                        position: s.cp.seq,
                        kind: BreakKind::Truncated,
                    }));
                }
                summary.events += n;
                summary.heads.extend(head);
            }
            Err(WalkError::Break(b)) => {
                if let (true, Some(s)) = (forged, stored) {
                    if s.cp.seq < b.position {
                        return Ok(Err(ChainBreak {
                            tenant,
                            position: s.cp.seq,
                            kind: BreakKind::Truncated,
                        }));
                    }
                }
                return Ok(Err(b));
            }
            Err(WalkError::NotOld(_)) => return Err(PortError::InvalidState),
            Err(WalkError::Store(e)) => return Err(e),
        }
    }
    Ok(Ok(summary))
}

/// Streams one tenant's rows (all, or those with `seq < below`) into a walker, in `seq` order.
pub(crate) async fn walk(
    conn: &mut PgConnection,
    tenant: &str,
    below: Option<i64>,
    walker: &mut ChainWalker,
) -> Result<(), WalkError> {
    let store = |e: sqlx::Error| WalkError::Store(codec::unavailable("verify", &e));
    let sql = format!(
        "SELECT {} FROM audit_events WHERE tenant = $1 AND seq < $2 ORDER BY seq",
        codec::ROW_COLUMNS
    );
    let mut s = sqlx::query(&sql)
        .bind(tenant)
        .bind(below.unwrap_or(i64::MAX))
        .fetch(&mut *conn);
    while let Some(row) = s.try_next().await.map_err(store)? {
        walker.push(RawRow::from_row(&row).map_err(store)?).await?;
    }
    Ok(())
}
