//! Four-eyes approval (docs/four-eyes.md): the approvers' queue and its approve / refuse forms. Who may see and
//! decide is the engine's rule ([`fctr_core::Engine::pending_approvals`], [`fctr_core::Engine::decide_approval`]);
//! these pages only show and post.

use super::labels;
use crate::auth::page::for_action;
use crate::auth::{CsrfForm, SignedIn};
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use fctr_core::Denial;
use fctr_ports::{ApprovalId, Reason};
use serde::Deserialize;

/// One row of the queue.
struct Row {
    id: String,
    action: String,
    class: &'static str,
    caller: String,
    factors: String,
    verified: String,
    requested_by: String,
    requested: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    c: Chrome,
    rows: Vec<Row>,
}

/// `GET /approvals`: the pending requests this agent may decide (never their own, never about themselves).
pub(crate) async fn approvals(me: SignedIn) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let agent = match for_action(&ctx, &session, &agent, "/").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let queue = match ctx
        .state
        .engine()
        .pending_approvals(&agent, &ctx.rctx)
        .await
    {
        Ok(q) => q,
        Err(d) => return ctx.denial_page(&d, "/"),
    };
    let rows = queue
        .iter()
        .map(|v| Row {
            id: v.id.to_string(),
            action: labels::action(v.action),
            class: v.class.as_str(),
            caller: v.caller.as_ref().map_or_else(
                || "(no name in the directory)".to_owned(),
                |p| p.expose_pii().to_owned(),
            ),
            factors: v
                .factors
                .iter()
                .map(labels::factor)
                .collect::<Vec<_>>()
                .join(", "),
            verified: super::when(&v.verified_at),
            requested_by: if v.requested_by.is_empty() {
                "(name not given)".to_owned()
            } else {
                v.requested_by.clone()
            },
            requested: super::when(&v.requested_at),
            expires: super::when(&v.expires_at),
        })
        .collect();
    let mut r = render(
        StatusCode::OK,
        &ApprovalsPage {
            c: ctx.chrome(),
            rows,
        },
    );
    // The queue names callers: never cached.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Deserialize)]
pub(crate) struct DecideForm {}

async fn decide(id: &str, me: SignedIn, approve: bool) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let Ok(id) = ApprovalId::parse(id) else {
        return ctx.denial_page(&Denial::new(Reason::ApprovalNotFound), "/approvals");
    };
    let agent = match for_action(&ctx, &session, &agent, "/approvals").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match ctx
        .state
        .engine()
        .decide_approval(&agent, &ctx.rctx, id, approve)
        .await
    {
        Ok(d) if d.approved => ctx.message(
            StatusCode::OK,
            "Approved",
            &format!(
                "You approved: {}. The requesting agent can now run it once, while their verification lasts.",
                labels::action(d.action)
            ),
            "/approvals",
        ),
        Ok(d) => ctx.message(
            StatusCode::OK,
            "Refused",
            &format!(
                "You refused: {}. It will not run, and the requesting agent's verification of the caller is spent.",
                labels::action(d.action)
            ),
            "/approvals",
        ),
        Err(d) => ctx.denial_page(&d, "/approvals"),
    }
}

/// `POST /approvals/{id}/approve`.
pub(crate) async fn approve(
    Path(id): Path<String>,
    CsrfForm(me, _): CsrfForm<DecideForm>,
) -> Response {
    decide(&id, me, true).await
}

/// `POST /approvals/{id}/refuse`.
pub(crate) async fn refuse(
    Path(id): Path<String>,
    CsrfForm(me, _): CsrfForm<DecideForm>,
) -> Response {
    decide(&id, me, false).await
}
