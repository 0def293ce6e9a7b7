//! Checkpoints: each tenant's committed chain head, recorded (HMAC'd under the checkpoint key) and logged.

use crate::codec;
use chrono::Utc;
use fctr_ports::{ChainCheckpoint, ChainHash, PortError};
use secrecy::SecretString;
use sqlx::{PgPool, Row};

/// The heads (from `audit_heads`, updated in the same transaction as the events, so always the head of the
/// committed chain) whose position differs from the tenant's latest recorded checkpoint.
const MOVED_HEADS: &str = "\
SELECT h.tenant, h.next_seq - 1, h.prev_hash FROM audit_heads h \
WHERE h.next_seq > 0 \
  AND COALESCE((SELECT MAX(c.seq) FROM audit_checkpoints c WHERE c.tenant = h.tenant), -1) <> h.next_seq - 1 \
ORDER BY h.tenant";

const INSERT_CHECKPOINT: &str = "\
INSERT INTO audit_checkpoints (tenant, seq, hash, at, mac) VALUES ($1, $2, $3, $4, $5) \
ON CONFLICT (tenant, seq) DO UPDATE SET hash = excluded.hash, at = excluded.at, mac = excluded.mac";

/// Records a checkpoint for every tenant whose head moved since its last one, in one transaction, then writes each
/// to the runtime log (`target: "fctr::audit::checkpoint"`).
pub(crate) async fn record(
    pool: &PgPool,
    key: Option<&SecretString>,
) -> Result<Vec<ChainCheckpoint>, PortError> {
    let sql = |e: sqlx::Error| codec::unavailable("checkpoint", &e);
    let at = codec::time_text(&Utc::now());
    let mut tx = pool.begin().await.map_err(sql)?;
    let rows = sqlx::query(MOVED_HEADS)
        .fetch_all(&mut *tx)
        .await
        .map_err(sql)?;
    let mut new: Vec<(ChainCheckpoint, Option<String>)> = Vec::with_capacity(rows.len());
    for r in rows {
        let t: String = r.try_get(0).map_err(sql)?;
        let seq: i64 = r.try_get(1).map_err(sql)?;
        let hash: String = r.try_get(2).map_err(sql)?;
        let (Some(tenant), Ok(seq), Ok(hash)) = (
            codec::tenant(&t),
            u64::try_from(seq),
            ChainHash::from_hex(&hash),
        ) else {
            tracing::error!(target: "fctr::postgres", "a stored audit chain head is malformed");
            return Err(PortError::Malformed);
        };
        let cp = ChainCheckpoint { tenant, seq, hash };
        let mac = key.and_then(|k| codec::checkpoint_mac(k, &cp, &at));
        new.push((cp, mac));
    }
    if new.is_empty() {
        return Ok(Vec::new());
    }
    for (cp, mac) in &new {
        sqlx::query(INSERT_CHECKPOINT)
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
        out.push(cp);
    }
    Ok(out)
}
