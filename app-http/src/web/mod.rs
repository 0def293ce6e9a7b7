//! The server-rendered pages: sign-in, search, caller card, verification with live status, actions, audit; one
//! file per resource. Who is calling is decided by the extractors of [`crate::auth`] (`Page`, `SignedIn`,
//! `CsrfForm`): no handler loads a session or checks CSRF itself.
//!
//! Layering: depends on `auth`, `reply`, `state`, `input` and `poller`; nothing but the router depends on it.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod caller;
pub(crate) mod labels;
pub(crate) mod search;
pub(crate) mod sign_in;
pub(crate) mod verify;

use crate::reply::html::Page;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fctr_core::policy::Permission;
use fctr_core::{Agent, GrantView};
use fctr_ports::{ActionKind, VerificationId};
use serde::Deserialize;

/// A time as the pages show it.
pub(crate) fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Time left until `until`, in minutes and seconds.
pub(crate) fn remaining(until: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (*until - now).num_seconds().max(0);
    format!("{} min {} s", s / 60, s % 60)
}

/// An action's name as a button label.
pub(crate) fn label(kind: ActionKind) -> String {
    let d = kind.describe();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Whether the agent's role has permission `p`.
pub(crate) fn role_permits(st: &AppState, agent: &Agent, p: Permission) -> bool {
    let policy = st.engine().policy();
    agent
        .role()
        .and_then(|r| policy.role(r))
        .is_some_and(|r| policy.permits(r, p))
}

/// A live grant, in words.
pub(crate) struct GrantLine {
    pub assurance: &'static str,
    pub expires_at: String,
    pub remaining: String,
    pub single_use: bool,
}

/// The grant line of a caller card or verification page.
pub(crate) fn grant_line(g: &GrantView, now: DateTime<Utc>) -> GrantLine {
    GrantLine {
        assurance: g.assurance,
        expires_at: when(&g.expires_at),
        remaining: remaining(&g.expires_at, now),
        single_use: g.single_use,
    }
}

/// An action offered now under a live grant.
pub(crate) struct Offer {
    pub kind: &'static str,
    pub label: String,
}

/// A form naming a factor (optional: policy's preferred one when empty).
#[derive(Deserialize)]
pub(crate) struct FactorForm {
    #[serde(default)]
    pub factor_id: String,
}

/// A verification id from the path.
pub(crate) fn parse_vid(s: &str) -> Option<VerificationId> {
    VerificationId::parse(s).ok()
}

/// The 404 page (every unknown path), with the security headers like every other response.
pub(crate) async fn not_found(ctx: Page) -> Response {
    ctx.message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        "/",
    )
}
