//! Retention: purging old usage months and the old prefix of each audit chain (moving its anchor).

use crate::codec;
use crate::verify::{self, ChainWalker, WalkError};
use chrono::{DateTime, Utc};
use fctr_ports::{ChainAnchor, Month, PortError, PurgeReport};
use sqlx::{PgPool, Row};

/// Serializes purges of one schema across replicas, for the length of the purge's transaction.
const PURGE_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtext('fctr-audit-purge:' || current_schema()))";

/// Deletes the usage months before the month containing `before`.
pub(crate) async fn purge_usage(
    pool: &PgPool,
    before: DateTime<Utc>,
) -> Result<PurgeReport, PortError> {
    let month = Month::of(before).to_string();
    let done = sqlx::query("DELETE FROM usage WHERE month < $1")
        .bind(month)
        .execute(pool)
        .await
        .map_err(|e| codec::unavailable("purge usage", &e))?;
    Ok(PurgeReport {
        removed: done.rows_affected(),
        anchors: Vec::new(),
    })
}

/// Deletes, per tenant, the prefix of the chain older than `before` and moves the anchor, in one transaction.
/// The prefix is verified first: retention never erases the evidence of tampering. Appends go on meanwhile: they
/// only touch the chain's tail and the head rows, never the prefix or the anchors.
pub(crate) async fn purge_audit(
    pool: &PgPool,
    before: DateTime<Utc>,
) -> Result<PurgeReport, PortError> {
    let cut = codec::time_text(&before);
    let sql = |what: &'static str| move |e: sqlx::Error| codec::unavailable(what, &e);
    let mut tx = pool.begin().await.map_err(sql("purge audit"))?;
    sqlx::query(PURGE_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(sql("purge audit"))?;
    let anchors = verify::anchors(&mut tx).await?;
    let tenants: Vec<String> =
        sqlx::query("SELECT DISTINCT tenant FROM audit_events ORDER BY tenant")
            .fetch_all(&mut *tx)
            .await
            .map_err(sql("purge audit"))?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(sql("purge audit"))?;
    let mut report = PurgeReport::default();
    for t in tenants {
        let Some(tenant) = codec::tenant(&t) else {
            return Err(PortError::Malformed);
        };
        let r = sqlx::query(
            "SELECT MIN(seq) FILTER (WHERE at >= $2), MIN(seq), MAX(seq) FROM audit_events WHERE tenant = $1",
        )
        .bind(&t)
        .bind(&cut)
        .fetch_one(&mut *tx)
        .await
        .map_err(sql("purge audit"))?;
        let first_kept: Option<i64> = r.try_get(0).map_err(sql("purge audit"))?;
        let first: Option<i64> = r.try_get(1).map_err(sql("purge audit"))?;
        let last: Option<i64> = r.try_get(2).map_err(sql("purge audit"))?;
        let (Some(first), Some(last)) = (first, last) else {
            continue;
        };
        let keep_from = first_kept.unwrap_or(last.saturating_add(1));
        if keep_from <= first {
            continue;
        }
        // Verify the prefix that is about to go, from the current anchor.
        let mut walker =
            ChainWalker::new(tenant.clone(), anchors.get(&t).cloned(), None, Some(before));
        let walked = match verify::walk(&mut tx, &t, Some(keep_from), &mut walker).await {
            Ok(()) => walker.finish().await,
            Err(e) => Err(e),
        };
        let head = match walked {
            Ok((_, Some(head))) => head,
            Ok((_, None)) => return Err(PortError::InvalidState),
            Err(WalkError::Store(e)) => return Err(e),
            Err(WalkError::Break(b)) => {
                tracing::error!(
                    target: "fctr::postgres",
                    tenant = %b.tenant, position = b.position, kind = ?b.kind,
                    "audit purge refused: the chain to purge is broken"
                );
                return Err(PortError::InvalidState);
            }
            Err(WalkError::NotOld(seq)) => {
                tracing::error!(
                    target: "fctr::postgres",
                    tenant = %tenant, position = seq,
                    "audit purge refused: an event's time column disagrees with its content"
                );
                return Err(PortError::InvalidState);
            }
        };
        let Ok(keep_from_u) = u64::try_from(keep_from) else {
            return Err(PortError::Malformed);
        };
        if head.seq.saturating_add(1) != keep_from_u {
            return Err(PortError::InvalidState);
        }
        let done = sqlx::query("DELETE FROM audit_events WHERE tenant = $1 AND seq < $2")
            .bind(&t)
            .bind(keep_from)
            .execute(&mut *tx)
            .await
            .map_err(sql("purge audit"))?;
        report.removed += done.rows_affected();
        sqlx::query(
            "INSERT INTO audit_anchors (tenant, seq, prev_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, prev_hash = excluded.prev_hash",
        )
        .bind(&t)
        .bind(keep_from)
        .bind(head.hash.to_hex())
        .execute(&mut *tx)
        .await
        .map_err(sql("purge audit"))?;
        // Checkpoints inside the purged prefix say nothing any more.
        sqlx::query("DELETE FROM audit_checkpoints WHERE tenant = $1 AND seq < $2")
            .bind(&t)
            .bind(keep_from)
            .execute(&mut *tx)
            .await
            .map_err(sql("purge audit"))?;
        report.anchors.push(ChainAnchor {
            tenant,
            seq: keep_from_u,
            prev_hash: head.hash,
        });
    }
    tx.commit().await.map_err(sql("purge audit"))?;
    Ok(report)
}
