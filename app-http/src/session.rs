//! Server-side agent sessions: the types and the store port live in `fctr-ports` ([`SessionStore`]; memory in
//! `fctr-memory`, Redis in `fctr-redis`), so any replica can serve any request. This module draws the random
//! values the portal puts in them.
//!
//! The cookie carries only a random session id (256 bits, base64url). Everything else (agent id, role, CSRF
//! token, the callers this session looked up) stays in the store. Timeouts use the engine's clock, so tests drive
//! them with a manual clock.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use fctr_ports::AgentId;
pub use fctr_ports::{PreLogin, Session, SessionStore, Timeouts};
use rand::RngCore as _;

/// A random 256-bit token, base64url without padding.
#[must_use]
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A random caller handle (96 bits, base64url).
#[must_use]
pub fn random_handle() -> String {
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A new session for `agent` with `role`, started at `now`, with a fresh random id and CSRF token.
#[must_use]
pub fn start(agent: AgentId, role: Option<String>, now: DateTime<Utc>) -> Session {
    Session::new(random_token(), random_token(), agent, role, now)
}
