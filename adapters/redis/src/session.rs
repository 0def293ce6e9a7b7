//! Sessions and pre-login state on Redis.
//!
//! Session ids and pre-login keys are bearer credentials: they reach Redis only as SHA-256 hashes, and the stored
//! session does not keep its id (the id is put back from the caller's argument on read).
//!
//! - `P:s:<h>`: hash `{ver, data: <sealed JSON session>}`, with a TTL until the session stops being live (idle or
//!   absolute timeout, whichever comes first, counted from the store's clock).
//! - `P:sx:<h>`: "this id is taken": set when the session is created, kept (TTL) until the id could no longer be
//!   live anyway plus the absolute timeout. While it exists no session can be created under the id: it is the
//!   tombstone of a removed or timed-out session.
//! - `P:sidx`: sorted set of session hashes by when each stops being live, for [`SessionStore::len`].
//! - `P:pl:<sha256(key)>`: sealed pre-login state, TTL the pre-login timeout; taken with `GETDEL`.
//!
//! Changes are read-in-Rust then compare-and-set on `ver` (a script), retried on conflict: the sealed session is
//! opened, changed and sealed again by the replica, and written only if nobody changed it meanwhile, so another
//! request's change (another tab's caller handle, a sign-out) is never overwritten, and a removed session is never
//! written back (its `P:s:` key is gone and the script refuses).

use crate::keys::{Keys, aad};
use crate::state::{Inner, MAX_TTL, ttl_millis};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    Clock, PortError, PreLogin, Session, SessionStore, SubjectId, Timeouts, VerificationId,
    to_chrono,
};
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Most compare-and-set rounds one change tries before failing as unavailable (each lost round means another
/// request changed the same session meanwhile).
const MAX_ATTEMPTS: u32 = 64;

/// KEYS: session, taken marker, index. ARGV: version, sealed, ttl ms, marker ttl ms, member, index score.
/// Creates only when neither the session nor its marker exists. Returns 1 when created.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
redis.call('HSET', KEYS[1], 'ver', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
return 1
",
    )
});

/// KEYS: session, index. ARGV: expected version, new version, sealed, ttl ms, member, index score, index ttl ms.
/// Writes only when the stored version is the expected one (so never to a removed session). Returns 1 when written.
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'ver') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end
return 1
",
    )
});

/// KEYS: session, taken marker, index. ARGV: expected version ('' = any), marker ttl ms, member.
/// Removes the session and keeps its marker (the tombstone) for at least the marker ttl.
/// Returns 1 removed, 0 no such session, -1 the version changed meanwhile.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HGET', KEYS[1], 'ver')
if not cur then return 0 end
if ARGV[1] ~= '' and cur ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
end
return 1
",
    )
});

/// KEYS: index. ARGV: now ms. Drops entries no longer live and counts the rest.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
",
    )
});

/// [`SessionStore`] on Redis; liveness is judged by `clock` and `timeouts` as in the in-memory store.
pub(crate) struct RedisSessionStore {
    inner: Arc<Inner>,
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
}

/// A session as read, with the version its compare-and-set must match.
struct Read {
    version: String,
    session: Session,
}

/// What a change decided about the session it read.
enum Change<T> {
    /// Write the changed session, then answer `T`.
    Write(T),
    /// Write nothing, answer `T`.
    Keep(T),
}

impl RedisSessionStore {
    pub(crate) fn new(inner: Arc<Inner>, clock: Arc<dyn Clock>, timeouts: Timeouts) -> Self {
        Self {
            inner,
            clock,
            timeouts,
        }
    }

    /// When the session stops being live.
    fn deadline(&self, s: &Session) -> DateTime<Utc> {
        let idle = s
            .last_seen
            .checked_add_signed(to_chrono(self.timeouts.idle));
        let absolute = s
            .created
            .checked_add_signed(to_chrono(self.timeouts.absolute));
        match (idle, absolute) {
            (Some(i), Some(a)) => i.min(a),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// The TTL of a session key written at `now`: until its deadline.
    fn session_ttl(&self, s: &Session, now: DateTime<Utc>) -> u64 {
        ttl_millis((self.deadline(s) - now).to_std().unwrap_or(Duration::ZERO))
    }

    /// How long the "id taken" marker must last from `now` for a session created at `created`: until the id could
    /// no longer be live, plus the absolute timeout (the tombstone's own lifetime).
    fn marker_ttl(&self, created: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
        let absolute = to_chrono(self.timeouts.absolute);
        let until_dead = created
            .checked_add_signed(absolute)
            .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_TTL);
        ttl_millis(until_dead.saturating_add(self.timeouts.absolute)).max(1)
    }

    fn index_score(&self, s: &Session) -> i64 {
        self.deadline(s).timestamp_millis()
    }

    fn seal_session(&self, key: &str, s: &Session) -> Result<Vec<u8>, PortError> {
        // The id is a bearer credential: it is not stored.
        let mut stored = s.clone();
        stored.id = String::new();
        let json = serde_json::to_vec(&stored).map_err(PortError::unexpected)?;
        self.inner.sealer.seal(&aad(key, "data"), &json)
    }

    fn open_session(&self, key: &str, id: &str, sealed: &[u8]) -> Option<Session> {
        let plain = self.inner.sealer.open(&aad(key, "data"), sealed);
        let session = plain.and_then(|p| serde_json::from_slice::<Session>(&p).ok());
        match session {
            Some(mut s) => {
                s.id = id.to_owned();
                Some(s)
            }
            None => {
                tracing::warn!(target: "fctr::redis", kind = "session", "a stored session could not be opened; treated as absent");
                None
            }
        }
    }

    async fn read(&self, id: &str, key: &str, op: &'static str) -> Result<Option<Read>, PortError> {
        let mut c = self.inner.conn();
        let (version, data): (Option<String>, Option<Vec<u8>>) = self
            .inner
            .run(
                op,
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("ver")
                    .arg("data")
                    .query_async(&mut c),
            )
            .await?;
        let (Some(version), Some(data)) = (version, data) else {
            return Ok(None);
        };
        Ok(self
            .open_session(key, id, &data)
            .map(|session| Read { version, session }))
    }

    /// Removes the session `h` if it still has `version` (`None`: whatever it has). `Some(true)` removed,
    /// `Some(false)` there was none, `None` it changed meanwhile.
    async fn remove_hash(
        &self,
        h: &str,
        version: Option<&str>,
        op: &'static str,
    ) -> Result<Option<bool>, PortError> {
        let keys = &self.inner.keys;
        // The tombstone lasts the absolute timeout from now (the in-memory store's rule).
        let marker_ttl = ttl_millis(self.timeouts.absolute).max(1);
        let mut c = self.inner.conn();
        let mut inv = REMOVE.prepare_invoke();
        inv.key(keys.session(h))
            .key(keys.session_taken(h))
            .key(keys.session_index())
            .arg(version.unwrap_or(""))
            .arg(marker_ttl)
            .arg(h);
        let r: i64 = self.inner.run(op, inv.invoke_async(&mut c)).await?;
        Ok(match r {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        })
    }

    /// The one read-change-write loop: reads the live session, lets `f` change it, writes it back by
    /// compare-and-set on its version, and starts again when another request changed it meanwhile. A session that
    /// has timed out is removed (tombstone) and reads as `None`; so does a missing one. Returns `f`'s answer and the
    /// session as it now stands.
    async fn update<T>(
        &self,
        id: &str,
        op: &'static str,
        mut f: impl FnMut(&mut Session, DateTime<Utc>) -> Change<T> + Send,
    ) -> Result<Option<(T, Session)>, PortError>
    where
        T: Send,
    {
        let h = Keys::session_hash(id);
        let key = self.inner.keys.session(&h);
        for attempt in 0..MAX_ATTEMPTS {
            let Some(Read {
                version,
                mut session,
            }) = self.read(id, &key, op).await?
            else {
                return Ok(None);
            };
            let now = self.clock.now();
            if !session.is_live(now, self.timeouts) {
                match self.remove_hash(&h, Some(&version), op).await? {
                    Some(_) => return Ok(None),
                    None => continue,
                }
            }
            let out = match f(&mut session, now) {
                Change::Keep(out) => return Ok(Some((out, session))),
                Change::Write(out) => out,
            };
            session.version = session.version.wrapping_add(1);
            let sealed = self.seal_session(&key, &session)?;
            let ttl = self.session_ttl(&session, now);
            self.inner.pause(op, attempt).await;
            let mut c = self.inner.conn();
            let mut inv = UPDATE.prepare_invoke();
            inv.key(&key)
                .key(self.inner.keys.session_index())
                .arg(&version)
                .arg(session.version.to_string())
                .arg(sealed)
                .arg(ttl)
                .arg(&h)
                .arg(self.index_score(&session))
                .arg(self.marker_ttl(session.created, now));
            let wrote: i64 = self.inner.run(op, inv.invoke_async(&mut c)).await?;
            if wrote == 1 {
                return Ok(Some((out, session)));
            }
        }
        tracing::warn!(target: "fctr::redis", op, "a session kept changing under a compare-and-set; giving up");
        Err(PortError::Unavailable)
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, session: &Session) -> Result<bool, PortError> {
        let h = Keys::session_hash(&session.id);
        let keys = &self.inner.keys;
        let key = keys.session(&h);
        let now = self.clock.now();
        let sealed = self.seal_session(&key, session)?;
        let mut c = self.inner.conn();
        let mut inv = CREATE.prepare_invoke();
        inv.key(&key)
            .key(keys.session_taken(&h))
            .key(keys.session_index())
            .arg(session.version.to_string())
            .arg(sealed)
            .arg(self.session_ttl(session, now))
            .arg(self.marker_ttl(session.created, now))
            .arg(&h)
            .arg(self.index_score(session));
        let created: i64 = self
            .inner
            .run("session_create", inv.invoke_async(&mut c))
            .await?;
        Ok(created == 1)
    }

    async fn get(&self, id: &str) -> Result<Option<Session>, PortError> {
        let key = self.inner.keys.session(&Keys::session_hash(id));
        let now = self.clock.now();
        Ok(self
            .read(id, &key, "session_get")
            .await?
            .map(|r| r.session)
            .filter(|s| s.is_live(now, self.timeouts)))
    }

    async fn touch(&self, id: &str) -> Result<Option<Session>, PortError> {
        Ok(self
            .update(id, "touch", |s, now| {
                s.last_seen = now;
                Change::Write(())
            })
            .await?
            .map(|((), s)| s))
    }

    async fn add_caller(
        &self,
        id: &str,
        subject: &SubjectId,
        new_handle: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(self
            .update(id, "add_caller", |s, _| {
                if let Some(h) = s.handle_of(subject) {
                    // Already registered: the memory store bumps the version here too.
                    return Change::Write(h.to_owned());
                }
                s.callers.insert(new_handle.to_owned(), subject.clone());
                Change::Write(new_handle.to_owned())
            })
            .await?
            .map(|(h, _)| h))
    }

    async fn add_verification(
        &self,
        id: &str,
        vid: VerificationId,
        handle: &str,
    ) -> Result<bool, PortError> {
        Ok(self
            .update(id, "add_verification", |s, _| {
                s.verifications.insert(vid, handle.to_owned());
                Change::Write(())
            })
            .await?
            .is_some())
    }

    async fn set_role(
        &self,
        id: &str,
        role: Option<String>,
        checked_at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        Ok(self
            .update(id, "set_role", |s, _| {
                if checked_at < s.role_checked {
                    return Change::Keep(false);
                }
                s.role = role.clone();
                s.role_checked = checked_at;
                Change::Write(true)
            })
            .await?
            .is_some_and(|(stored, _)| stored))
    }

    async fn remove(&self, id: &str) -> Result<(), PortError> {
        let h = Keys::session_hash(id);
        self.remove_hash(&h, None, "session_remove").await?;
        Ok(())
    }

    async fn put_pre_login(&self, key: &str, pre: &PreLogin) -> Result<(), PortError> {
        let k = self.inner.keys.pre_login(key);
        let json = serde_json::to_vec(pre).map_err(PortError::unexpected)?;
        let sealed = self.inner.sealer.seal(&aad(&k, ""), &json)?;
        let ttl = ttl_millis(self.timeouts.pre_login).max(1);
        let mut c = self.inner.conn();
        let _: () = self
            .inner
            .run(
                "put_pre_login",
                redis::cmd("SET")
                    .arg(&k)
                    .arg(sealed)
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut c),
            )
            .await?;
        Ok(())
    }

    async fn take_pre_login(&self, key: &str) -> Result<Option<PreLogin>, PortError> {
        let k = self.inner.keys.pre_login(key);
        let mut c = self.inner.conn();
        let sealed: Option<Vec<u8>> = self
            .inner
            .run(
                "take_pre_login",
                redis::cmd("GETDEL").arg(&k).query_async(&mut c),
            )
            .await?;
        let now = self.clock.now();
        let max = to_chrono(self.timeouts.pre_login);
        let pre = sealed
            .and_then(|s| self.inner.sealer.open(&aad(&k, ""), &s))
            .and_then(|p| serde_json::from_slice::<PreLogin>(&p).ok());
        Ok(pre.filter(|p| now - p.created < max))
    }

    async fn len(&self) -> Result<usize, PortError> {
        let now = self.clock.now().timestamp_millis();
        let mut c = self.inner.conn();
        let mut inv = COUNT.prepare_invoke();
        inv.key(self.inner.keys.session_index()).arg(now);
        let n: i64 = self
            .inner
            .run("session_len", inv.invoke_async(&mut c))
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
