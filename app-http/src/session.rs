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
#[derive(Clone)]
pub struct Session {
    /// The session id (the cookie value).
    pub id: String,
    /// The synchronizer token every state-changing form carries.
    pub csrf: String,
    /// The agent.
    pub agent: AgentId,
    /// The role resolved at sign-in.
    pub role: Option<String>,
    /// When the session started (absolute timeout).
    pub created: DateTime<Utc>,
    /// Last request (idle timeout).
    pub last_seen: DateTime<Utc>,
    /// Opaque per-session handles for callers this session looked up, so no IdP id appears in a URL.
    pub callers: HashMap<String, SubjectId>,
    /// Verifications this session started, with the caller handle each is about.
    pub verifications: HashMap<fctr_ports::VerificationId, String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Registers a caller and returns its handle (the same handle for the same caller).
    pub fn handle_for(&mut self, subject: &SubjectId) -> String {
        if let Some((h, _)) = self.callers.iter().find(|(_, s)| *s == subject) {
            return h.clone();
        }
        let mut b = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        self.callers.insert(h.clone(), subject.clone());
        h
    }
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
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores (or replaces) a session.
    async fn put(&self, session: Session);
    /// Reads a session by id, if it exists (timeouts are checked by the caller).
    async fn get(&self, id: &str) -> Option<Session>;
    /// Removes a session.
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

/// In-memory sessions (single node).
pub struct MemorySessionStore {
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    inner: Mutex<(HashMap<String, Session>, HashMap<String, PreLogin>)>,
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
            inner: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    fn sweep(&self, g: &mut (HashMap<String, Session>, HashMap<String, PreLogin>)) {
        let now = self.clock.now();
        let t = self.timeouts;
        g.0.retain(|_, s| is_live(s, now, t));
        let pre = chrono::Duration::from_std(t.pre_login).unwrap_or(chrono::Duration::minutes(10));
        g.1.retain(|_, p| now - p.created < pre);
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
    async fn put(&self, session: Session) {
        if let Ok(mut g) = self.inner.lock() {
            self.sweep(&mut g);
            g.0.insert(session.id.clone(), session);
        }
    }

    async fn get(&self, id: &str) -> Option<Session> {
        self.inner.lock().ok()?.0.get(id).cloned()
    }

    async fn remove(&self, id: &str) {
        if let Ok(mut g) = self.inner.lock() {
            g.0.remove(id);
        }
    }

    async fn put_pre_login(&self, key: &str, pre: PreLogin) {
        if let Ok(mut g) = self.inner.lock() {
            self.sweep(&mut g);
            g.1.insert(key.to_owned(), pre);
        }
    }

    async fn take_pre_login(&self, key: &str) -> Option<PreLogin> {
        let now = self.clock.now();
        let pre = self.inner.lock().ok()?.1.remove(key)?;
        let max = chrono::Duration::from_std(self.timeouts.pre_login).ok()?;
        (now - pre.created < max).then_some(pre)
    }

    async fn len(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }
}
