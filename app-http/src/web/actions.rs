//! Actions under a live grant, and the one-time secret page.

use super::{FactorForm, consequence, label, severity, when};
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
#[template(path = "confirm.html")]
struct ConfirmPage {
    c: Chrome,
    kind: &'static str,
    label: String,
    caller: String,
    login: String,
    consequence: &'static str,
    severity: &'static str,
    severity_words: &'static str,
    before_verification: bool,
    grant_note: String,
    handle: String,
    /// Policy holds this action on this caller for a second agent's approval (four-eyes).
    needs_approval: bool,
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage<'a> {
    c: Chrome,
    label: String,
    caller: String,
    ticket: String,
    handle: String,
    secret: Option<&'a str>,
    secret_kind: &'static str,
    expires: String,
    emailed: bool,
    /// The work note's status, when one was queued for the ticket (empty otherwise).
    note: String,
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
    if f.confirmed != "yes" {
        return confirm(&ctx, &agent, &subject, &handle, kind).await;
    }
    let (ctx, ticket) = match super::with_ticket(ctx, &f.ticket, &back) {
        Ok(x) => x,
        Err(r) => return r,
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
    let done = ctx
        .state
        .engine()
        .perform_action(&agent, &ctx.rctx, &subject, action)
        .await;
    // Four-eyes: nothing ran yet, so there is no result to write back.
    if let Err(d) = &done {
        if d.reason == fctr_ports::Reason::ApprovalPending {
            return waiting_for_approval(&ctx, d, kind, &back);
        }
    }
    // Ticket write-back: queued whatever the result, never awaited, never undoing anything.
    let note = write_back(&ctx, &agent, kind, done.as_ref()).await;
    let outcome = match done {
        Ok(o) => o,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    let receipt = outcome.receipt;
    let caller: String = f.caller.chars().take(200).collect();
    let page = SecretPage {
        c: ctx.chrome(),
        label: label(receipt.kind),
        caller,
        ticket: ticket.map(|t| t.as_str().to_owned()).unwrap_or_default(),
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
        note,
    };
    let mut r = render(StatusCode::OK, &page);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `receipt` (and its SecretString) is dropped, and zeroized, here.
    r
}

/// The answer to an action that waits for a second agent's approval (four-eyes): nothing ran; the agent runs it
/// again once it is approved.
fn waiting_for_approval(
    ctx: &Page,
    d: &fctr_core::Denial,
    kind: ActionKind,
    back: &str,
) -> Response {
    let id = d.approval.map(|i| i.to_string()).unwrap_or_default();
    ctx.message(
        StatusCode::ACCEPTED,
        "Waiting for a second agent's approval",
        &format!(
            "{} is waiting for a second agent's approval (request {id}). Nothing was done yet. Ask another agent \
             with the approver role to review it under Approvals; once they approve it, run the action again \
             while the caller's verification lasts.",
            label(kind)
        ),
        back,
    )
}

/// Queues the work note for the request's ticket, if a ticket system is configured and the request names a
/// ticket; the words for the result page (empty when nothing was queued). The note is the engine's
/// ([`fctr_core::Engine::action_note`]): the agent's display name from the IdP, nothing about the caller.
async fn write_back(
    ctx: &Page,
    agent: &fctr_core::Agent,
    kind: ActionKind,
    done: Result<&fctr_core::ActionOutcome, &fctr_core::Denial>,
) -> String {
    let (Some(desk), Some(_)) = (ctx.state.tickets(), ctx.rctx.ticket.as_ref()) else {
        return String::new();
    };
    // The agent's name as the IdP gives it, not the display cookie (which the agent's browser could change).
    let name = ctx.state.engine().agent_display_name(agent).await;
    let note = ctx.state.engine().action_note(kind, done, &name);
    match desk.submit(agent, &ctx.rctx, Some(kind), note) {
        Some(fctr_wiring::NoteStatus::Queued) => format!(
            "A work note is on its way to {} (retried for about ten minutes if need be; the audit log shows whether it arrived).",
            desk.system().label()
        ),
        Some(_) => format!(
            "No work note was sent to {}: too many notes are waiting. The audit log records it.",
            desk.system().label()
        ),
        None => String::new(),
    }
}

/// The confirmation step: the caller's name, what the action does, how severe it is, and whether it runs under a
/// verification or before one (the locked-out procedure). Reads the card again, so what it says is current.
async fn confirm(
    ctx: &Page,
    agent: &fctr_core::Agent,
    subject: &fctr_ports::SubjectId,
    handle: &str,
    kind: ActionKind,
) -> Response {
    let back = format!("/callers/{handle}");
    let card = match ctx
        .state
        .engine()
        .lookup_again(agent, &ctx.rctx, subject)
        .await
    {
        Ok(c) => c,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    let Some(view) = card.actions.iter().find(|a| a.kind == kind) else {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such action.",
            &back,
        );
    };
    if !view.applies {
        return ctx.message(
            StatusCode::CONFLICT,
            "Nothing to do",
            "This action does not apply to the account as it is now (for example, it is not locked out or not suspended). Nothing was done.",
            &back,
        );
    }
    if !view.available_now {
        // The engine refuses it anyway; say why before the agent confirms anything.
        let reason = if !view.permitted_for_role {
            fctr_ports::Reason::NotPermittedForRole
        } else if card.protected {
            fctr_ports::Reason::ProtectedTarget
        } else if !view.supported {
            fctr_ports::Reason::Unsupported
        } else {
            fctr_ports::Reason::NoLiveGrant
        };
        return ctx.denial_page(&fctr_core::Denial::new(reason), &back);
    }
    let now = ctx.state.0.clock.now();
    let u = &card.user;
    let (severity, severity_words) = severity(kind);
    let page = ConfirmPage {
        c: ctx.chrome(),
        kind: kind.as_str(),
        label: label(kind),
        caller: u.display_name.as_ref().map_or_else(
            || u.login.expose_pii().to_owned(),
            |n| n.expose_pii().to_owned(),
        ),
        login: u.login.expose_pii().to_owned(),
        consequence: consequence(kind),
        severity,
        severity_words,
        before_verification: view.before_verification,
        needs_approval: ctx
            .state
            .engine()
            .policy()
            .four_eyes()
            .applies(kind, card.class),
        grant_note: card
            .grant
            .as_ref()
            .map(|g| {
                let l = super::grant_line(g, now);
                if g.single_use {
                    format!("This uses your verification (valid {} more).", l.remaining)
                } else {
                    format!("Your verification stays valid {} more.", l.remaining)
                }
            })
            .unwrap_or_default(),
        handle: handle.to_owned(),
    };
    render(StatusCode::OK, &page)
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
