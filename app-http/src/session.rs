//! Server-side agent sessions behind a small trait, so a shared store (Redis) can back them later.
//!
//! The cookie carries only a random session id (256 bits, base64url). Everything else (agent id, role, CSRF
//! token, the callers this session looked up) stays here. Timeouts use the engine's [`Clock`], so tests drive
//! them with a manual clock.

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use fctr_ports::{AgentId, Clock, SubjectId};
use rand::RngCore as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A random 256-bit token, base64url without padding.
#[must_use]
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A signed-in agent's session.
///
/// This is a snapshot read from a [`SessionStore`]: changing it changes nothing stored. Every change goes through
/// one of the store's atomic operations, so a request never writes back a copy it read earlier.
#[derive(Clone)]
pub struct Session {
    /// The session id (the cookie value).
    pub id: String,
    /// The synchronizer token every state-changing form carries.
    pub csrf: String,
    /// The agent.
    pub agent: AgentId,
    /// The role resolved at sign-in, or at the last re-check against the IdP.
    pub role: Option<String>,
    /// When the role was last checked against the IdP (sign-in, then every re-check).
    pub role_checked: DateTime<Utc>,
    /// When the session started (absolute timeout).
    pub created: DateTime<Utc>,
    /// Last request (idle timeout).
    pub last_seen: DateTime<Utc>,
    /// Opaque per-session handles for callers this session looked up, so no IdP id appears in a URL.
    pub callers: HashMap<String, SubjectId>,
    /// Verifications this session started, with the caller handle each is about.
    pub verifications: HashMap<fctr_ports::VerificationId, String>,
    /// Bumped by the store on every change (a Redis store compares it in its scripts).
    pub version: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("created", &self.created)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session for `agent` with `role`, fresh random id and CSRF token, started at `now`.
    #[must_use]
    pub fn start(agent: AgentId, role: Option<String>, now: DateTime<Utc>) -> Self {
        Self {
            id: random_token(),
            csrf: random_token(),
            agent,
            role,
            role_checked: now,
            created: now,
            last_seen: now,
            callers: HashMap::new(),
            verifications: HashMap::new(),
            version: 0,
        }
    }

    /// The handle this session already uses for `subject`, if any.
    #[must_use]
    pub fn handle_of(&self, subject: &SubjectId) -> Option<&str> {
        self.callers
            .iter()
            .find(|(_, s)| *s == subject)
            .map(|(h, _)| h.as_str())
    }
}

/// A random caller handle (96 bits, base64url).
fn random_handle() -> String {
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// State kept between the redirect to the IdP and the callback.
#[derive(Clone)]
pub struct PreLogin {
    /// The OIDC `state` sent.
    pub state: String,
    /// The nonce sent.
    pub nonce: String,
    /// The PKCE verifier.
    pub pkce_verifier: String,
    /// Where to go after sign-in (a local path).
    pub return_to: String,
    /// When the sign-in started.
    pub created: DateTime<Utc>,
}

impl std::fmt::Debug for PreLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreLogin([redacted])")
    }
}

/// Session timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Idle timeout (default 15 min).
    pub idle: Duration,
    /// Absolute timeout (default 12 h).
    pub absolute: Duration,
    /// How long a sign-in may take between redirect and callback (default 10 min).
    pub pre_login: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(15 * 60),
            absolute: Duration::from_secs(12 * 3600),
            pre_login: Duration::from_secs(600),
        }
    }
}

/// Where sessions live.
///
/// Every method is one atomic step on the stored session: there is no "read, change a copy, write it back", so a
/// request that read a session before a slow IdP call cannot undo what another request did meanwhile (a
/// sign-out, another tab's caller handles). A removed session leaves a tombstone until its id could no longer be
/// live anyway (the absolute timeout), and no method re-creates or changes a tombstoned id. A shared store
/// (Redis) implements each method as one server-side script over the session's key and its tombstone key.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session. Atomic: succeeds only when no session and no tombstone has this id (Redis: `SET NX`
    /// after checking the tombstone, in one script), and then returns `true`; otherwise stores nothing and
    /// returns `false`.
    async fn create(&self, session: Session) -> bool;
    /// Reads a session by id, if it exists and is within its timeouts. Read-only; changes nothing.
    async fn get(&self, id: &str) -> Option<Session>;
    /// Marks a request on the session: atomically, if the session exists and is within its timeouts, sets
    /// `last_seen` to now, bumps `version` and returns the updated session; if it exists but has timed out,
    /// removes it (leaving a tombstone) and returns `None`; if it does not exist (or is a tombstone), `None`.
    async fn touch(&self, id: &str) -> Option<Session>;
    /// Registers a caller in the stored session and returns its handle (the handle already in use for the same
    /// caller, or a new random one). Atomic on the stored session: handles added meanwhile by other requests
    /// (another tab) are kept. `None`, and nothing stored, when the session no longer exists.
    async fn add_caller(&self, id: &str, subject: &SubjectId) -> Option<String>;
    /// Records that the session started verification `vid` about caller `handle`. Atomic like
    /// [`SessionStore::add_caller`]; `false`, and nothing stored, when the session no longer exists.
    async fn add_verification(
        &self,
        id: &str,
        vid: fctr_ports::VerificationId,
        handle: &str,
    ) -> bool;
    /// Sets the role found by a re-check against the IdP and when it was checked. Atomic compare-and-set on the
    /// check time: stored only if the session still exists and `checked_at` is not older than the stored
    /// `role_checked` (a slow re-check never overwrites a newer one's result). Returns whether it was stored.
    async fn set_role(&self, id: &str, role: Option<String>, checked_at: DateTime<Utc>) -> bool;
    /// Removes a session and leaves a tombstone for its id until the absolute timeout, so no request that read it
    /// earlier can bring it back. Removing an id that is not a session changes nothing: a cookie value a client
    /// made up must not grow the store.
    async fn remove(&self, id: &str);
    /// Stores pre-login state under a random key (the pre-login cookie value).
    async fn put_pre_login(&self, key: &str, pre: PreLogin);
    /// Takes (reads and removes) pre-login state: a callback can use it once.
    async fn take_pre_login(&self, key: &str) -> Option<PreLogin>;
    /// Number of live sessions (metrics).
    async fn len(&self) -> usize;
    /// Whether no session is live.
    async fn is_empty(&self) -> bool {
        self.len().await == 0
    }
}

#[derive(Default)]
struct Tables {
    sessions: HashMap<String, Session>,
    /// Removed session ids, with when their tombstone may go.
    tombstones: HashMap<String, DateTime<Utc>>,
    pre_login: HashMap<String, PreLogin>,
}

/// In-memory sessions (single node). One mutex over all tables makes every operation atomic.
pub struct MemorySessionStore {
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    inner: Mutex<Tables>,
}

impl std::fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemorySessionStore")
    }
}

impl MemorySessionStore {
    /// An empty store; `clock` and `timeouts` decide when entries are dropped.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>, timeouts: Timeouts) -> Self {
        Self {
            clock,
            timeouts,
            inner: Mutex::new(Tables::default()),
        }
    }

    fn absolute(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.timeouts.absolute).unwrap_or(chrono::Duration::hours(12))
    }

    fn sweep(&self, g: &mut Tables) {
        let now = self.clock.now();
        let t = self.timeouts;
        let expired: Vec<String> = g
            .sessions
            .iter()
            .filter(|(_, s)| !is_live(s, now, t))
            .map(|(k, _)| k.clone())
            .collect();
        for id in expired {
            g.sessions.remove(&id);
            g.tombstones.insert(id, now + self.absolute());
        }
        g.tombstones.retain(|_, until| *until > now);
        let pre = chrono::Duration::from_std(t.pre_login).unwrap_or(chrono::Duration::minutes(10));
        g.pre_login.retain(|_, p| now - p.created < pre);
    }

    /// Runs `f` on the live stored session `id` (bumping its version when `f` returns `Some`); a timed-out
    /// session is removed first.
    fn update<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> Option<T>) -> Option<T> {
        let mut g = self.inner.lock().ok()?;
        let now = self.clock.now();
        let live = is_live(g.sessions.get(id)?, now, self.timeouts);
        if !live {
            g.sessions.remove(id);
            g.tombstones.insert(id.to_owned(), now + self.absolute());
            return None;
        }
        let s = g.sessions.get_mut(id)?;
        let out = f(s)?;
        s.version += 1;
        Some(out)
    }
}

/// Whether a session is within its idle and absolute timeouts at `now`.
#[must_use]
pub fn is_live(s: &Session, now: DateTime<Utc>, t: Timeouts) -> bool {
    let idle = chrono::Duration::from_std(t.idle).unwrap_or(chrono::Duration::zero());
    let abs = chrono::Duration::from_std(t.absolute).unwrap_or(chrono::Duration::zero());
    now - s.last_seen < idle && now - s.created < abs
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, session: Session) -> bool {
        let Ok(mut g) = self.inner.lock() else {
            return false;
        };
        self.sweep(&mut g);
        if g.sessions.contains_key(&session.id) || g.tombstones.contains_key(&session.id) {
            return false;
        }
        g.sessions.insert(session.id.clone(), session);
        true
    }

    async fn get(&self, id: &str) -> Option<Session> {
        let g = self.inner.lock().ok()?;
        let s = g.sessions.get(id)?;
        is_live(s, self.clock.now(), self.timeouts).then(|| s.clone())
    }

    async fn touch(&self, id: &str) -> Option<Session> {
        let now = self.clock.now();
        self.update(id, |s| {
            s.last_seen = now;
            Some(())
        })?;
        self.inner.lock().ok()?.sessions.get(id).cloned()
    }

    async fn add_caller(&self, id: &str, subject: &SubjectId) -> Option<String> {
        self.update(id, |s| {
            if let Some(h) = s.handle_of(subject) {
                return Some(h.to_owned());
            }
            let h = random_handle();
            s.callers.insert(h.clone(), subject.clone());
            Some(h)
        })
    }

    async fn add_verification(
        &self,
        id: &str,
        vid: fctr_ports::VerificationId,
        handle: &str,
    ) -> bool {
        self.update(id, |s| {
            s.verifications.insert(vid, handle.to_owned());
            Some(())
        })
        .is_some()
    }

    async fn set_role(&self, id: &str, role: Option<String>, checked_at: DateTime<Utc>) -> bool {
        self.update(id, |s| {
            if checked_at < s.role_checked {
                return None;
            }
            s.role = role;
            s.role_checked = checked_at;
            Some(())
        })
        .is_some()
    }

    async fn remove(&self, id: &str) {
        if let Ok(mut g) = self.inner.lock() {
            if g.sessions.remove(id).is_some() {
                let until = self.clock.now() + self.absolute();
                g.tombstones.insert(id.to_owned(), until);
            }
        }
    }

    async fn put_pre_login(&self, key: &str, pre: PreLogin) {
        if let Ok(mut g) = self.inner.lock() {
            self.sweep(&mut g);
            g.pre_login.insert(key.to_owned(), pre);
        }
    }

    async fn take_pre_login(&self, key: &str) -> Option<PreLogin> {
        let now = self.clock.now();
        let pre = self.inner.lock().ok()?.pre_login.remove(key)?;
        let max = chrono::Duration::from_std(self.timeouts.pre_login).ok()?;
        (now - pre.created < max).then_some(pre)
    }

    async fn len(&self) -> usize {
        let now = self.clock.now();
        self.inner
            .lock()
            .map(|g| {
                g.sessions
                    .values()
                    .filter(|s| is_live(s, now, self.timeouts))
                    .count()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fctr_memory::ManualClock;

    fn store() -> (Arc<ManualClock>, MemorySessionStore) {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let s = MemorySessionStore::new(clock.clone(), Timeouts::default());
        (clock, s)
    }

    fn session(now: DateTime<Utc>) -> Session {
        Session::start(AgentId::parse("00uagent".to_owned()).unwrap(), None, now)
    }

    #[tokio::test]
    async fn a_removed_session_cannot_be_created_touched_or_changed_again() {
        let (clock, st) = store();
        let s = session(clock.now());
        let id = s.id.clone();
        assert!(st.create(s.clone()).await);
        assert!(!st.create(s.clone()).await, "an id is created once");
        st.remove(&id).await;
        assert!(
            !st.create(s.clone()).await,
            "a tombstone blocks re-creation"
        );
        assert!(st.touch(&id).await.is_none());
        assert!(st.get(&id).await.is_none());
        let subject = SubjectId::parse("00ucaller".to_owned()).unwrap();
        assert!(st.add_caller(&id, &subject).await.is_none());
        assert!(!st.set_role(&id, Some("tier3".into()), clock.now()).await);
        assert!(st.is_empty().await);
    }

    #[tokio::test]
    async fn removing_a_made_up_id_leaves_nothing_behind() {
        let (clock, st) = store();
        for i in 0..1000 {
            st.remove(&format!("made-up-{i}")).await;
        }
        assert_eq!(st.inner.lock().unwrap().tombstones.len(), 0);
        // And a session with such an id (were one ever minted) is not blocked by it.
        let mut s = session(clock.now());
        s.id = "made-up-7".to_owned();
        assert!(st.create(s).await);
    }

    #[tokio::test]
    async fn handles_from_two_requests_both_stay_and_a_caller_keeps_one_handle() {
        let (clock, st) = store();
        let s = session(clock.now());
        let id = s.id.clone();
        assert!(st.create(s).await);
        let a = SubjectId::parse("00ua".to_owned()).unwrap();
        let b = SubjectId::parse("00ub".to_owned()).unwrap();
        let ha = st.add_caller(&id, &a).await.unwrap();
        let hb = st.add_caller(&id, &b).await.unwrap();
        assert_eq!(st.add_caller(&id, &a).await.unwrap(), ha);
        let now = st.get(&id).await.unwrap();
        assert_eq!(now.callers.get(&ha), Some(&a));
        assert_eq!(now.callers.get(&hb), Some(&b));
    }

    #[tokio::test]
    async fn set_role_never_stores_an_older_check_over_a_newer_one() {
        let (clock, st) = store();
        let s = session(clock.now());
        let id = s.id.clone();
        let early = clock.now();
        assert!(st.create(s).await);
        clock.advance(chrono::Duration::seconds(5));
        assert!(st.set_role(&id, Some("tier1".into()), clock.now()).await);
        assert!(
            !st.set_role(&id, Some("tier3".into()), early).await,
            "stale"
        );
        let got = st.get(&id).await.unwrap();
        assert_eq!(got.role.as_deref(), Some("tier1"));
        assert!(got.version >= 1);
    }

    #[tokio::test]
    async fn a_timed_out_session_is_removed_on_touch() {
        let (clock, st) = store();
        let s = session(clock.now());
        let id = s.id.clone();
        assert!(st.create(s.clone()).await);
        clock.advance(chrono::Duration::minutes(16));
        assert!(st.touch(&id).await.is_none());
        assert!(!st.create(s).await);
    }
}
