//! The audit view: pseudonymous events, for roles with `view_audit`. (The use case moves into the engine; this
//! handler is kept as it was.)

use super::{role_permits, when};
use crate::auth::SignedIn;
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fctr_core::Denial;
use fctr_core::policy::Permission;
use fctr_ports::{AuditQuery, EventKind, Reason};
use serde::Deserialize;

const KINDS: [EventKind; 13] = [
    EventKind::Login,
    EventKind::Logout,
    EventKind::Lookup,
    EventKind::ChallengeStarted,
    EventKind::ChallengeResult,
    EventKind::CodeSubmitted,
    EventKind::GrantIssued,
    EventKind::ActionIntent,
    EventKind::ActionOutcome,
    EventKind::Denied,
    EventKind::PolicyLoaded,
    EventKind::Purge,
    EventKind::Checkpoint,
];

#[derive(Deserialize)]
pub(crate) struct AuditFilter {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

struct AuditRow {
    at: String,
    kind: &'static str,
    outcome: String,
    agent: String,
    target: String,
    what: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    kinds: Vec<(&'static str, bool)>,
    since: String,
    until: String,
    events: Vec<AuditRow>,
}

fn parse_local(s: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .ok()
        .map(|n| n.and_utc())
}

fn snake<T: serde::Serialize>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `GET /audit`: pseudonymous events, for roles with `view_audit`.
pub(crate) async fn audit(me: SignedIn, Query(q): Query<AuditFilter>) -> Response {
    let SignedIn {
        page: ctx, agent, ..
    } = me;
    if !role_permits(&ctx.state, &agent, Permission::ViewAudit) {
        ctx.state
            .engine()
            .audit_edge_denial(Some(&agent), Reason::NotPermittedForRole, &ctx.rctx)
            .await;
        return ctx.denial_page(&Denial::new(Reason::NotPermittedForRole), "/search");
    }
    let now = ctx.state.0.clock.now();
    let since = parse_local(&q.since).unwrap_or(now - chrono::Duration::hours(24));
    let until = parse_local(&q.until);
    let kinds: Vec<EventKind> = KINDS.into_iter().filter(|k| k.as_str() == q.kind).collect();
    let query = AuditQuery {
        tenant: Some(ctx.state.engine().tenant().clone()),
        since: Some(since),
        until,
        kinds,
        pseudonym: None,
        limit: Some(500),
    };
    let events = match ctx.state.0.audit.read(&query).await {
        Ok(e) => e,
        Err(_) => return ctx.denial_page(&Denial::new(Reason::AuditUnavailable), "/search"),
    };
    let rows = events
        .iter()
        .rev()
        .map(|s| {
            let e = &s.event;
            AuditRow {
                at: when(&e.at),
                kind: e.kind.as_str(),
                outcome: snake(&e.outcome),
                agent: e
                    .agent
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                target: e
                    .target
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                what: match (&e.factor, &e.action) {
                    (Some(f), _) => f.as_str().to_owned(),
                    (None, Some(a)) => a.as_str().to_owned(),
                    _ => String::new(),
                },
                reason: e.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            }
        })
        .collect();
    render(
        StatusCode::OK,
        &AuditPage {
            c: ctx.chrome(),
            kinds: KINDS
                .iter()
                .map(|k| (k.as_str(), k.as_str() == q.kind))
                .collect(),
            since: q.since,
            until: q.until,
            events: rows,
        },
    )
}
