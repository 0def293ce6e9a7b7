//! Agent sessions and sign-in state as the portal stores them between requests (in memory, or in Redis so that
//! any replica can serve any request), and the [`SessionStore`] port.
//!
//! The cookie carries only a random session id. Everything else (the agent, the role, the CSRF token, the callers
//! the session looked up) lives in the store. A store shared by replicas must not keep the id itself as a key (it
//! is a bearer credential: key by a hash of it) and must not keep the agent's or callers' IdP ids readable (seal
//! the values): see `fctr-redis`.

use crate::error::PortError;
use crate::ids::{AgentId, SubjectId, VerificationId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A signed-in agent's session.
///
/// This is a snapshot read from a [`SessionStore`]: changing it changes nothing stored. Every change goes through
/// one of the store's atomic operations, so a request never writes back a copy it read earlier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub verifications: HashMap<VerificationId, String>,
    /// Bumped by the store on every change (a shared store compares it in its scripts).
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
    /// A new session for `agent` with `role`, started at `now`, under the random `id` and CSRF token `csrf` the
    /// caller drew (this crate draws no random numbers).
    #[must_use]
    pub fn new(
        id: String,
        csrf: String,
        agent: AgentId,
        role: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            csrf,
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

    /// Whether the session is within its idle and absolute timeouts at `now`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>, t: Timeouts) -> bool {
        now - self.last_seen < to_chrono(t.idle) && now - self.created < to_chrono(t.absolute)
    }
}

/// A `std` duration as a `chrono` one, saturating (a duration too long for chrono is "forever").
#[must_use]
pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// State kept between the redirect to the IdP and the callback. Secret: redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
/// sign-out, another tab's caller handles), on this replica or another. A removed session leaves a tombstone until
/// its id could no longer be live anyway (the absolute timeout), and no method re-creates or changes a tombstoned
/// id. A shared store implements each method as one server-side step (a script, or a compare-and-set on
/// [`Session::version`] retried on conflict).
///
/// Every method fails with [`PortError::Unavailable`] when the store cannot be reached; the portal then refuses
/// the request (fail closed) rather than treating the agent as signed out or signed in.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session. Atomic: succeeds only when no session and no tombstone has this id, and then returns
    /// `true`; otherwise stores nothing and returns `false`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn create(&self, session: &Session) -> Result<bool, PortError>;

    /// Reads a session by id, if it exists and is within its timeouts. Read-only; changes nothing.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn get(&self, id: &str) -> Result<Option<Session>, PortError>;

    /// Marks a request on the session: atomically, if the session exists and is within its timeouts, sets
    /// `last_seen` to now, bumps `version` and returns the updated session; if it exists but has timed out,
    /// removes it (leaving a tombstone) and returns `None`; if it does not exist (or is a tombstone), `None`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn touch(&self, id: &str) -> Result<Option<Session>, PortError>;

    /// Registers a caller in the stored session and returns its handle: the handle already in use for the same
    /// caller, or else `new_handle` (a random value the caller drew). Atomic on the stored session: handles added
    /// meanwhile by other requests (another tab, another replica) are kept. `None`, and nothing stored, when the
    /// session no longer exists.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn add_caller(
        &self,
        id: &str,
        subject: &SubjectId,
        new_handle: &str,
    ) -> Result<Option<String>, PortError>;

    /// Records that the session started verification `vid` about caller `handle`. Atomic like
    /// [`SessionStore::add_caller`]; `false`, and nothing stored, when the session no longer exists.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn add_verification(
        &self,
        id: &str,
        vid: VerificationId,
        handle: &str,
    ) -> Result<bool, PortError>;

    /// Sets the role found by a re-check against the IdP and when it was checked. Atomic compare-and-set on the
    /// check time: stored only if the session still exists and `checked_at` is not older than the stored
    /// `role_checked` (a slow re-check never overwrites a newer one's result). Returns whether it was stored.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn set_role(
        &self,
        id: &str,
        role: Option<String>,
        checked_at: DateTime<Utc>,
    ) -> Result<bool, PortError>;

    /// Removes a session and leaves a tombstone for its id until the absolute timeout, so no request that read it
    /// earlier can bring it back. Removing an id that is not a session changes nothing: a cookie value a client
    /// made up must not grow the store.
    ///
    /// # Errors
    /// [`PortError::Unavailable`]: the session may still exist; the caller must not claim it ended.
    async fn remove(&self, id: &str) -> Result<(), PortError>;

    /// Stores pre-login state under a random key (the pre-login cookie value) for the pre-login timeout.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn put_pre_login(&self, key: &str, pre: &PreLogin) -> Result<(), PortError>;

    /// Takes (reads and removes, atomically) pre-login state: a callback can use it once, on any replica, however
    /// many callbacks arrive at once. Expired state reads as `None`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn take_pre_login(&self, key: &str) -> Result<Option<PreLogin>, PortError>;

    /// Number of live sessions (a gauge: a shared store may count approximately).
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn len(&self) -> Result<usize, PortError>;

    /// Whether no session is live.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn is_empty(&self) -> Result<bool, PortError> {
        Ok(self.len().await? == 0)
    }
}
