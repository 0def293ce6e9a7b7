//! Actions under a live grant, and the one-time secret page.

use super::{FactorForm, label, when};
use crate::auth::page::for_action;
use crate::auth::{CsrfForm, SignedIn};
use crate::reply::html::{Chrome, Page};
use crate::reply::render;
use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use fctr_ports::{ActionKind, ExposeSecret, SecretKind};

/// The words for a kind of one-time secret.
pub(crate) fn secret_kind_words(k: SecretKind) -> &'static str {
    match k {
        SecretKind::ResetLink => "password reset link",
        SecretKind::TemporaryPassword => "temporary password",
        SecretKind::TemporaryAccessPass => "Temporary Access Pass",
        _ => "one-time secret",
    }
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage<'a> {
    c: Chrome,
    label: String,
    handle: String,
    secret: Option<&'a str>,
    secret_kind: &'static str,
    expires: String,
    emailed: bool,
}

/// `POST /callers/{handle}/actions/{action}`: runs the action under the agent's live grant. A one-time secret is
/// rendered straight into this response (no-store) and never stored; reloading cannot show it again.
pub(crate) async fn act(
    Path((handle, action)): Path<(String, String)>,
    CsrfForm(me, f): CsrfForm<FactorForm>,
) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let back = format!("/callers/{handle}");
    let Some(kind) = ActionKind::parse(&action) else {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such action.",
            &back,
        );
    };
    let Some(subject) = session.callers.get(&handle).cloned() else {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Unknown caller",
            "Search again.",
            "/search",
        );
    };
    let factor = match crate::input::factor(Some(&f.factor_id)) {
        Ok(x) => x,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    // The agent says what; the engine decides the terms.
    let action = match fctr_core::ActionRequest::new(kind, factor) {
        Ok(a) => a,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    let agent = match for_action(&ctx, &session, &agent, &back).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let outcome = match ctx
        .state
        .engine()
        .perform_action(&agent, &ctx.rctx, &subject, action)
        .await
    {
        Ok(o) => o,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    let receipt = outcome.receipt;
    let page = SecretPage {
        c: ctx.chrome(),
        label: label(receipt.kind),
        handle,
        secret: receipt.secret.as_ref().map(|s| s.value.expose_secret()),
        secret_kind: receipt
            .secret
            .as_ref()
            .map_or("", |s| secret_kind_words(s.kind)),
        expires: receipt
            .secret
            .as_ref()
            .and_then(|s| s.expires_at.as_ref())
            .map(when)
            .unwrap_or_default(),
        emailed: receipt.emailed,
    };
    let mut r = render(StatusCode::OK, &page);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `receipt` (and its SecretString) is dropped, and zeroized, here.
    r
}

/// `GET /callers/{handle}/actions/{action}`: actions change state, so GET is refused (405); this is also what a
/// reload of a one-time secret page lands on, and it shows no secret.
pub(crate) async fn act_get(ctx: Page, Path((handle, _)): Path<(String, String)>) -> Response {
    let mut r = ctx.message(
        StatusCode::METHOD_NOT_ALLOWED,
        "Nothing to show",
        "Actions run only from the caller card. A one-time secret is shown once and never again.",
        &format!("/callers/{handle}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}
