//! Four-eyes approval requests on Redis.
//!
//! - `P:a:<sha256(tenant)>:<approval id>`: hash `{st: pending|approved|refused|used, es, en (the request's own
//!   expiry as Unix seconds and nanoseconds), rec: <sealed JSON record>}`. The record holds the caller's IdP id,
//!   hence sealed; the scripts read only `st` and the expiry, which are in clear.
//! - `P:as:<sha256(tenant, agent pseudonym, caller pseudonym, action)>`: the slot, a sealed approval id.
//! - `P:ai:<sha256(tenant)>`: a sorted set of the tenant's request ids (score: their key's expiry, Unix ms), the
//!   queue's index; members whose request is gone are pruned on read.
//!
//! `decide` and `take` are each one compare-and-set script on `st`: the new sealed record is computed from the
//! record read just before, and written only if `st` still holds what it was read as. Of any number of concurrent
//! calls on any number of replicas, exactly one changes the request. Every key has a TTL.

use crate::keys::{aad, sha256_hex};
use crate::state::{Inner, ttl_millis};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, ApprovalDecision, ApprovalId, ApprovalRecord, ApprovalStatus, ApprovalStore,
    DecideOutcome, PortError, PseudoId, TakeOutcome, TenantId,
};
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Insert-only. KEYS: request, slot, index. ARGV: ttl ms, es, en, sealed record, sealed id, id, index score (ms).
/// Returns 1 when written.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'st', 'pending', 'es', ARGV[2], 'en', ARGV[3], 'rec', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[6])
local left = redis.call('PTTL', KEYS[3])
if left < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
return 1
",
    )
});

/// Compare-and-set on the status. KEYS: request. ARGV: expected status, new status, new sealed record, now (s),
/// now (ns). Returns {code, status}: 0 missing, 1 another status (returned), 2 expired, 3 changed.
static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local f = redis.call('HMGET', KEYS[1], 'st', 'es', 'en')
if not f[1] then return {0, ''} end
if f[1] ~= ARGV[1] then return {1, f[1]} end
local now_s, now_ns = tonumber(ARGV[4]), tonumber(ARGV[5])
local es, en = tonumber(f[2]), tonumber(f[3])
if now_s > es or (now_s == es and now_ns >= en) then return {2, f[1]} end
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'rec', ARGV[3])
return {3, ARGV[2]}
",
    )
});

const CAS_MISSING: i64 = 0;
const CAS_OTHER: i64 = 1;
const CAS_EXPIRED: i64 = 2;
const CAS_CHANGED: i64 = 3;

/// [`ApprovalStore`] on Redis.
pub(crate) struct RedisApprovalStore {
    inner: Arc<Inner>,
}

fn status_name(s: ApprovalStatus) -> &'static str {
    s.as_str()
}

fn parse_status(s: &str) -> Option<ApprovalStatus> {
    Some(match s {
        "pending" => ApprovalStatus::Pending,
        "approved" => ApprovalStatus::Approved,
        "refused" => ApprovalStatus::Refused,
        "used" => ApprovalStatus::Used,
        _ => return None,
    })
}

/// A time as Unix seconds and nanoseconds (both exact in Lua's doubles).
fn split_time(t: DateTime<Utc>) -> (i64, u32) {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

impl RedisApprovalStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    fn tenant_hash(tenant: &TenantId) -> String {
        sha256_hex(tenant.as_str().as_bytes())
    }

    fn request_key(&self, tenant: &TenantId, id: ApprovalId) -> String {
        format!(
            "{}:a:{}:{id}",
            self.inner.keys.prefix(),
            Self::tenant_hash(tenant)
        )
    }

    fn slot_key(
        &self,
        tenant: &TenantId,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
    ) -> String {
        let mut parts = Vec::new();
        for p in [
            tenant.as_str(),
            agent.as_str(),
            subject.as_str(),
            action.as_str(),
        ] {
            parts.extend_from_slice(&(p.len() as u64).to_be_bytes());
            parts.extend_from_slice(p.as_bytes());
        }
        format!("{}:as:{}", self.inner.keys.prefix(), sha256_hex(&parts))
    }

    fn index_key(&self, tenant: &TenantId) -> String {
        format!(
            "{}:ai:{}",
            self.inner.keys.prefix(),
            Self::tenant_hash(tenant)
        )
    }

    fn seal_json<T: serde::Serialize>(
        &self,
        key: &str,
        field: &str,
        value: &T,
    ) -> Result<Vec<u8>, PortError> {
        let json = serde_json::to_vec(value).map_err(PortError::unexpected)?;
        self.inner.sealer.seal(&aad(key, field), &json)
    }

    fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        field: &str,
        sealed: &[u8],
    ) -> Option<T> {
        let plain = self.inner.sealer.open(&aad(key, field), sealed);
        let value = plain.and_then(|p| serde_json::from_slice(&p).ok());
        if value.is_none() {
            tracing::warn!(target: "fctr::redis", kind = "approval", "a stored value could not be opened; treated as absent");
        }
        value
    }

    /// Reads a request: its record with the status the script-readable field holds.
    async fn read(&self, key: &str) -> Result<Option<ApprovalRecord>, PortError> {
        let mut c = self.inner.conn();
        let (st, rec): (Option<String>, Option<Vec<u8>>) = self
            .inner
            .run(
                "approval_get",
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("st")
                    .arg("rec")
                    .query_async(&mut c),
            )
            .await?;
        let (Some(st), Some(rec)) = (st, rec) else {
            return Ok(None);
        };
        let Some(mut r) = self.open_json::<ApprovalRecord>(key, "rec", &rec) else {
            return Ok(None);
        };
        match parse_status(&st) {
            Some(s) => r.status = s,
            None => return Ok(None),
        }
        Ok(Some(r))
    }

    /// One compare-and-set from `from` to `to.status`, writing `to` as the record.
    async fn cas(
        &self,
        key: &str,
        from: ApprovalStatus,
        to: &ApprovalRecord,
        now: DateTime<Utc>,
        op: &'static str,
    ) -> Result<(i64, Option<ApprovalStatus>), PortError> {
        let rec = self.seal_json(key, "rec", to)?;
        let (s, ns) = split_time(now);
        let mut c = self.inner.conn();
        let mut inv = CAS.prepare_invoke();
        inv.key(key)
            .arg(status_name(from))
            .arg(status_name(to.status))
            .arg(rec)
            .arg(s)
            .arg(ns);
        let (code, st): (i64, String) = self.inner.run(op, inv.invoke_async(&mut c)).await?;
        Ok((code, parse_status(&st)))
    }
}

#[async_trait]
impl ApprovalStore for RedisApprovalStore {
    async fn put(&self, record: &ApprovalRecord, ttl: Duration) -> Result<bool, PortError> {
        let key = self.request_key(&record.tenant, record.id);
        let slot = self.slot_key(
            &record.tenant,
            &record.agent,
            &record.subject_pseudo,
            record.action,
        );
        let index = self.index_key(&record.tenant);
        let pending = ApprovalRecord {
            status: ApprovalStatus::Pending,
            ..record.clone()
        };
        let rec = self.seal_json(&key, "rec", &pending)?;
        let sealed_id = self
            .inner
            .sealer
            .seal(&aad(&slot, ""), record.id.to_string().as_bytes())?;
        let (es, en) = split_time(record.expires_at);
        let ttl_ms = ttl_millis(ttl);
        let score = Utc::now()
            .timestamp_millis()
            .saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2));
        let mut c = self.inner.conn();
        let mut inv = PUT.prepare_invoke();
        inv.key(&key)
            .key(&slot)
            .key(&index)
            .arg(ttl_ms)
            .arg(es)
            .arg(en)
            .arg(rec)
            .arg(sealed_id)
            .arg(record.id.to_string())
            .arg(score);
        let wrote: i64 = self
            .inner
            .run("approval_put", inv.invoke_async(&mut c))
            .await?;
        Ok(wrote == 1)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let key = self.request_key(tenant, id);
        Ok(self
            .read(&key)
            .await?
            .filter(|r| r.tenant == *tenant && r.id == id))
    }

    async fn find(
        &self,
        tenant: &TenantId,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let slot = self.slot_key(tenant, agent, subject, action);
        let mut c = self.inner.conn();
        let sealed: Option<Vec<u8>> = self
            .inner
            .run(
                "approval_find",
                redis::cmd("GET").arg(&slot).query_async(&mut c),
            )
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let id = self
            .inner
            .sealer
            .open(&aad(&slot, ""), &sealed)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| ApprovalId::parse(&s).ok());
        let Some(id) = id else {
            tracing::warn!(target: "fctr::redis", kind = "approval", "a stored value could not be opened; treated as absent");
            return Ok(None);
        };
        self.get(tenant, id).await
    }

    async fn pending(&self, tenant: &TenantId) -> Result<Vec<ApprovalRecord>, PortError> {
        let index = self.index_key(tenant);
        let mut c = self.inner.conn();
        let ids: Vec<String> = self
            .inner
            .run(
                "approval_index",
                redis::cmd("ZRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c),
            )
            .await?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for raw in ids {
            let Ok(id) = ApprovalId::parse(&raw) else {
                gone.push(raw);
                continue;
            };
            match self.get(tenant, id).await? {
                Some(r) if r.status == ApprovalStatus::Pending => out.push(r),
                Some(_) => {}
                None => gone.push(raw),
            }
        }
        if !gone.is_empty() {
            let mut c = self.inner.conn();
            let _: Result<i64, PortError> = self
                .inner
                .run(
                    "approval_prune",
                    redis::cmd("ZREM")
                        .arg(&index)
                        .arg(&gone)
                        .query_async(&mut c),
                )
                .await;
        }
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn decide(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        decision: &ApprovalDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, PortError> {
        let key = self.request_key(tenant, id);
        let Some(current) = self.get(tenant, id).await? else {
            return Ok(DecideOutcome::Missing);
        };
        if current.status != ApprovalStatus::Pending {
            return Ok(DecideOutcome::AlreadyDecided(current.status));
        }
        let decided = ApprovalRecord {
            status: if decision.approve {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Refused
            },
            decided_by: Some(decision.by.clone()),
            decided_at: Some(decision.at),
            ..current
        };
        let (code, st) = self
            .cas(
                &key,
                ApprovalStatus::Pending,
                &decided,
                now,
                "approval_decide",
            )
            .await?;
        Ok(match code {
            CAS_CHANGED => DecideOutcome::Decided(Box::new(decided)),
            CAS_EXPIRED => DecideOutcome::Expired,
            CAS_OTHER => DecideOutcome::AlreadyDecided(st.unwrap_or(ApprovalStatus::Used)),
            CAS_MISSING => DecideOutcome::Missing,
            _ => return Err(PortError::Unavailable),
        })
    }

    async fn take(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        now: DateTime<Utc>,
    ) -> Result<TakeOutcome, PortError> {
        let key = self.request_key(tenant, id);
        let Some(current) = self.get(tenant, id).await? else {
            return Ok(TakeOutcome::Missing);
        };
        if current.status != ApprovalStatus::Approved {
            return Ok(TakeOutcome::NotApproved(current.status));
        }
        let used = ApprovalRecord {
            status: ApprovalStatus::Used,
            ..current
        };
        let (code, st) = self
            .cas(&key, ApprovalStatus::Approved, &used, now, "approval_take")
            .await?;
        Ok(match code {
            CAS_CHANGED => TakeOutcome::Taken(Box::new(used)),
            CAS_EXPIRED => TakeOutcome::Expired,
            CAS_OTHER => TakeOutcome::NotApproved(st.unwrap_or(ApprovalStatus::Used)),
            CAS_MISSING => TakeOutcome::Missing,
            _ => return Err(PortError::Unavailable),
        })
    }
}
