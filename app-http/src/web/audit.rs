//! The audit view: pseudonymous events, for roles with `view_audit`. The engine authorizes, reads and filters
//! ([`fctr_core::Engine::audit_view`]); this handler parses the filter and renders the rows.

use super::when;
use crate::auth::SignedIn;
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fctr_core::AuditViewQuery;
use fctr_ports::EventKind;
use serde::Deserialize;

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

/// `GET /audit`: pseudonymous events, for roles with `view_audit` (the engine authorizes, reads and filters).
pub(crate) async fn audit(me: SignedIn, Query(q): Query<AuditFilter>) -> Response {
    let SignedIn {
        page: ctx, agent, ..
    } = me;
    let query = AuditViewQuery::new(
        EventKind::parse(&q.kind),
        parse_local(&q.since),
        parse_local(&q.until),
    );
    let events = match ctx
        .state
        .engine()
        .audit_view(&agent, &ctx.rctx, &query)
        .await
    {
        Ok(e) => e,
        Err(d) => return ctx.denial_page(&d, "/search"),
    };
    let rows = events
        .iter()
        .map(|e| AuditRow {
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
        })
        .collect();
    render(
        StatusCode::OK,
        &AuditPage {
            c: ctx.chrome(),
            kinds: EventKind::ALL
                .iter()
                .map(|k| (k.as_str(), k.as_str() == q.kind))
                .collect(),
            since: q.since,
            until: q.until,
            events: rows,
        },
    )
}
