//! Verifications and grants on Redis.
//!
//! - `P:v:<verification id>`: hash `{ver: <record version>, data: <sealed JSON record>}` (the record holds the
//!   caller's IdP id and the challenge ticket, hence sealed). Written by one compare-and-set script on `ver`.
//! - `P:g:<sha256(agent pseudonym, caller pseudonym)>`: hash `{id, used: 0|1, single: 0|1, es, en (expiry as Unix
//!   seconds and nanoseconds), act: ",kind,kind,", rec: <sealed JSON record>}`. The fields the scripts read are
//!   in clear; a grant holds pseudonyms only, and its record is sealed anyway.
//!
//! `consume` and `restore` are one script each, so of any number of concurrent calls on any number of replicas
//! exactly one spends a single-use grant.

use crate::keys::aad;
use crate::state::{Inner, ttl_millis};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, GrantConsumption, GrantRecord, GrantStore, PortError, PseudoId, VerificationId,
    VerificationRecord,
};
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Insert-if-new (`ARGV[1] == ''`) or replace-if-version (`ARGV[1]` the expected version).
/// ARGV: expected, new version, sealed record, ttl ms. Returns 1 when written.
static PUT_VERIFICATION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], 'ver')
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
",
    )
});

/// Replaces the grant slot (`ARGV[1] == ''`), or, for `restore`, only when the slot holds the used grant with id
/// `ARGV[1]`. ARGV: expected id or '', ttl ms, then field/value pairs. Returns 1 when written.
static PUT_GRANT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[1] ~= '' then
  local f = redis.call('HMGET', KEYS[1], 'used', 'id')
  if f[1] ~= '1' or f[2] ~= ARGV[1] then return 0 end
end
redis.call('DEL', KEYS[1])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// The atomic spend. ARGV: now (Unix seconds), now (nanoseconds), action name.
/// Returns {code, sealed record or false}: 0 missing, 1 already used, 2 expired, 3 does not cover, 4 consumed.
/// A single-use grant is marked used in place (its TTL stays).
static CONSUME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local f = redis.call('HMGET', KEYS[1], 'used', 'es', 'en', 'act', 'single', 'rec')
if not f[1] then return {0, false} end
if f[1] == '1' then return {1, false} end
local now_s, now_ns = tonumber(ARGV[1]), tonumber(ARGV[2])
local es, en = tonumber(f[2]), tonumber(f[3])
if now_s > es or (now_s == es and now_ns >= en) then return {2, false} end
if not string.find(f[4], ',' .. ARGV[3] .. ',', 1, true) then return {3, false} end
if f[5] == '1' then redis.call('HSET', KEYS[1], 'used', '1') end
return {4, f[6]}
",
    )
});

const CODE_MISSING: i64 = 0;
const CODE_USED: i64 = 1;
const CODE_EXPIRED: i64 = 2;
const CODE_NOT_COVERED: i64 = 3;
const CODE_CONSUMED: i64 = 4;

/// [`GrantStore`] on Redis. TTLs are Redis's (server time); `consume` judges the grant's own `expires_at` against
/// the `now` it is given.
pub(crate) struct RedisGrantStore {
    inner: Arc<Inner>,
}

impl RedisGrantStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
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
            tracing::warn!(target: "fctr::redis", kind = "grant", "a stored value could not be opened; treated as absent");
        }
        value
    }

    /// Writes the grant slot; with `only_if_used` set, only over the used grant with that id.
    async fn write_grant(
        &self,
        grant: &GrantRecord,
        ttl: Duration,
        only_if_used: Option<&str>,
        op: &'static str,
    ) -> Result<bool, PortError> {
        let key = self.inner.keys.grant(&grant.agent, &grant.subject);
        let rec = self.seal_json(&key, "rec", grant)?;
        let actions: String = grant.actions.iter().fold(",".to_owned(), |mut s, a| {
            s.push_str(a.as_str());
            s.push(',');
            s
        });
        let (es, en) = split_time(grant.expires_at);
        let mut c = self.inner.conn();
        let mut inv = PUT_GRANT.prepare_invoke();
        inv.key(&key)
            .arg(only_if_used.unwrap_or(""))
            .arg(ttl_millis(ttl))
            .arg("id")
            .arg(grant.id.to_string())
            .arg("used")
            .arg("0")
            .arg("single")
            .arg(if grant.single_use { "1" } else { "0" })
            .arg("es")
            .arg(es)
            .arg("en")
            .arg(en)
            .arg("act")
            .arg(actions)
            .arg("rec")
            .arg(rec);
        let wrote: i64 = self.inner.run(op, inv.invoke_async(&mut c)).await?;
        Ok(wrote == 1)
    }
}

/// A time as Unix seconds and nanoseconds (both exact in Lua's doubles).
fn split_time(t: DateTime<Utc>) -> (i64, u32) {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

#[async_trait]
impl GrantStore for RedisGrantStore {
    async fn put_verification(
        &self,
        record: &VerificationRecord,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, PortError> {
        let key = self.inner.keys.verification(record.id);
        let data = self.seal_json(&key, "data", record)?;
        let expected = expected_version.map(|v| v.to_string()).unwrap_or_default();
        let mut c = self.inner.conn();
        let mut inv = PUT_VERIFICATION.prepare_invoke();
        inv.key(&key)
            .arg(expected)
            .arg(record.version.to_string())
            .arg(data)
            .arg(ttl_millis(ttl));
        let wrote: i64 = self
            .inner
            .run("put_verification", inv.invoke_async(&mut c))
            .await?;
        Ok(wrote == 1)
    }

    async fn get_verification(
        &self,
        id: VerificationId,
    ) -> Result<Option<VerificationRecord>, PortError> {
        let key = self.inner.keys.verification(id);
        let mut c = self.inner.conn();
        let data: Option<Vec<u8>> = self
            .inner
            .run(
                "get_verification",
                redis::cmd("HGET").arg(&key).arg("data").query_async(&mut c),
            )
            .await?;
        Ok(data.and_then(|d| self.open_json(&key, "data", &d)))
    }

    async fn put_grant(&self, grant: &GrantRecord, ttl: Duration) -> Result<(), PortError> {
        self.write_grant(grant, ttl, None, "put_grant").await?;
        Ok(())
    }

    async fn find_grant(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
    ) -> Result<Option<GrantRecord>, PortError> {
        let key = self.inner.keys.grant(agent, subject);
        let mut c = self.inner.conn();
        let (used, rec): (Option<String>, Option<Vec<u8>>) = self
            .inner
            .run(
                "find_grant",
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("used")
                    .arg("rec")
                    .query_async(&mut c),
            )
            .await?;
        Ok(match (used.as_deref(), rec) {
            (Some("0"), Some(rec)) => self.open_json(&key, "rec", &rec),
            _ => None,
        })
    }

    async fn consume(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
        now: DateTime<Utc>,
    ) -> Result<GrantConsumption, PortError> {
        let key = self.inner.keys.grant(agent, subject);
        let (s, ns) = split_time(now);
        let mut c = self.inner.conn();
        let mut inv = CONSUME.prepare_invoke();
        inv.key(&key).arg(s).arg(ns).arg(action.as_str());
        let (code, rec): (i64, Option<Vec<u8>>) =
            self.inner.run("consume", inv.invoke_async(&mut c)).await?;
        Ok(match (code, rec) {
            (CODE_MISSING, _) => GrantConsumption::Missing,
            (CODE_USED, _) => GrantConsumption::AlreadyUsed,
            (CODE_EXPIRED, _) => GrantConsumption::Expired,
            (CODE_NOT_COVERED, _) => GrantConsumption::DoesNotCover,
            (CODE_CONSUMED, Some(rec)) => match self.open_json(&key, "rec", &rec) {
                Some(g) => GrantConsumption::Consumed(g),
                // Spent but unreadable (tampered, or sealed under another key): the caller gets nothing to act on.
                None => GrantConsumption::Missing,
            },
            _ => return Err(PortError::Unavailable),
        })
    }

    async fn restore(&self, grant: &GrantRecord, ttl: Duration) -> Result<bool, PortError> {
        let id = grant.id.to_string();
        self.write_grant(grant, ttl, Some(&id), "restore").await
    }
}
