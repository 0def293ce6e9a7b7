//! Who is calling, decided in one place for the pages and the API.
//!
//! - `session`: the session loader (cookie → live session; the id capped; a timed-out session removed by the
//!   store; the role re-checked against the IdP when the last check is old) and the portal's cookies.
//! - `bearer`: API bearer tokens (verified by `openidconnect`, `require_mfa` applied, cached).
//! - `role`: the agent's role as the IdP says now, re-checked before every high-risk action.
//! - `csrf`: the one CSRF check (same-origin headers, then the session-bound token in constant time).
//! - Extractors, so no handler loads a session or checks CSRF by hand: `page::SignedIn` and
//!   `page::CsrfForm` for the pages (rejections render the sign-in or refusal page), `api::ApiAgent` for the
//!   API (rejections are the JSON error envelope).
//!
//! Layering: depends on `state`, `session`, `oidc`, `edge` and `reply`; the pages and the API depend on it, never
//! the other way round.

pub(crate) mod api;
pub(crate) mod bearer;
pub(crate) mod csrf;
pub(crate) mod page;
pub(crate) mod role;
pub(crate) mod session;

pub use api::ApiAgent;
pub(crate) use page::{CsrfForm, NoFields, SignedIn};
pub use role::{ROLE_CACHE_TTL, ROLE_RECHECK_EVERY};
