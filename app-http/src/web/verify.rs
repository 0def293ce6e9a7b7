//! A verification: starting it from the caller card, its page with the live status (server-sent events from the
//! one shared poller), the code form and the next factor.

use super::{FactorForm, GrantLine, Offer, factor_words, grant_line, parse_vid, when};
use crate::auth::page::for_action;
use crate::auth::{CsrfForm, SignedIn};
use crate::poller::Snapshot;
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use fctr_core::policy::Permission;
use fctr_core::{Agent, Denial, VerificationView};
use fctr_ports::{ActionKind, FactorKind, Reason, VerificationId, VerificationStatus};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

/// How long a page waits for the first poll of a verification.
const FIRST_POLL_WAIT: Duration = Duration::from_secs(10);

/// `POST /callers/{handle}/verify`: starts a verification, then shows it.
pub(crate) async fn verify(
    Path(handle): Path<String>,
    CsrfForm(me, f): CsrfForm<FactorForm>,
) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
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
        Err(d) => return ctx.denial_page(&d, &format!("/callers/{handle}")),
    };
    let (ctx, _) = match super::with_ticket(ctx, &f.ticket, &format!("/callers/{handle}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let agent = match for_action(&ctx, &session, &agent, &format!("/callers/{handle}")).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let view = match ctx
        .state
        .engine()
        .begin_verification(&agent, &ctx.rctx, &subject, factor.as_ref())
        .await
    {
        Ok(v) => v,
        Err(d) => return ctx.denial_page(&d, &format!("/callers/{handle}")),
    };
    let id = view.id;
    ctx.state.polls().publish(&agent, id, view);
    match ctx
        .state
        .sessions()
        .add_verification(&session.id, id, &handle)
        .await
    {
        Ok(true) => {}
        // Signed out while the challenge was being sent: the verification runs out on its own.
        Ok(false) => return ctx.session_ended(),
        Err(_) => return ctx.state_down_page(),
    }
    Redirect::to(&format!("/verifications/{id}")).into_response()
}

#[derive(Template)]
#[template(path = "verification_status.html")]
struct StatusPart {
    id: String,
    status: &'static str,
    heading: &'static str,
    status_text: String,
    number: Option<u16>,
    pending_secs: Option<i64>,
    reason: String,
    message: String,
    remedy: String,
    code_form: bool,
    code_error: String,
    next_factor: bool,
    retry: bool,
    /// The retry sends a new sign-in link (the one before was refused), not a push.
    retry_link: bool,
    grant: Option<GrantLine>,
    note: String,
    offered: Vec<Offer>,
    csrf: String,
    handle: String,
    /// The sign-in link to give the caller (empty when none, or once opened).
    link_url: String,
    /// The link as a QR code (SVG markup made here from the URL alone).
    link_qr: String,
    /// The caller opened the link and is signing in.
    link_opened: bool,
}

/// What the agent is told after a denied push when policy's "not me" response blocks the caller.
fn denied_push_response(rule: &fctr_core::policy::NotMePolicy) -> String {
    let minutes = rule.block_actions_seconds.div_ceil(60);
    let mut done = vec![format!(
        "verifying and helping this caller in the portal is blocked for {minutes} minute{}",
        if minutes == 1 { "" } else { "s" }
    )];
    if rule.clear_sessions {
        done.push("they were signed out everywhere".to_owned());
    }
    if rule.alert {
        done.push("security was alerted".to_owned());
    }
    let last = done.pop().unwrap_or_default();
    let list = if done.is_empty() {
        last
    } else {
        format!("{} and {last}", done.join(", "))
    };
    format!(
        "A denied push can mean someone else is on the phone: {list}. Do not try again on this call; follow your \
         escalation procedure."
    )
}

/// Renders the live part of the verification page; returns (html, done). `code_error` is an inline message for
/// the code form (a wrong code, with the attempts left).
fn status_html(
    ctx_state: &crate::state::AppState,
    agent: &Agent,
    csrf: &str,
    handle: &str,
    id: VerificationId,
    snap: &Result<VerificationView, Denial>,
    code_error: &str,
) -> (String, bool) {
    let now = ctx_state.0.clock.now();
    let provider = ctx_state.0.idp.capabilities().provider;
    let mut part = StatusPart {
        id: id.to_string(),
        status: "error",
        heading: "Verification refused",
        status_text: String::new(),
        number: None,
        pending_secs: None,
        reason: String::new(),
        message: String::new(),
        remedy: String::new(),
        code_form: false,
        code_error: code_error.to_owned(),
        next_factor: false,
        retry: false,
        retry_link: false,
        grant: None,
        note: String::new(),
        offered: Vec::new(),
        csrf: csrf.to_owned(),
        handle: handle.to_owned(),
        link_url: String::new(),
        link_qr: String::new(),
        link_opened: false,
    };
    let done = match snap {
        Err(d) => {
            part.status_text = d.message().into();
            part.reason = d.reason.as_str().into();
            part.remedy = d.remedy().into();
            part.retry = !handle.is_empty();
            true
        }
        Ok(v) => {
            part.status = v.status.as_str();
            part.number = v.number;
            let push = matches!(v.factor, Some(FactorKind::Push));
            let link = matches!(v.factor, Some(FactorKind::IdpSignIn));
            if let Some(l) = v
                .link
                .as_ref()
                .filter(|_| v.status == VerificationStatus::Challenged)
            {
                part.link_opened = l.opened;
                if let Some(t) = &l.token {
                    part.link_url = super::link::link_url(ctx_state.settings(), t);
                    part.link_qr = super::link::qr_svg(&part.link_url);
                }
            }
            let words = v
                .factor
                .as_ref()
                .map(|k| factor_words(k, &provider))
                .unwrap_or_default();
            part.pending_secs = v
                .challenge_expires_at
                .filter(|_| v.status == VerificationStatus::Challenged)
                .map(|t| (t - now).num_seconds().max(0));
            let link_refused = v.reason.is_some_and(|r| {
                matches!(
                    r,
                    Reason::SignInOtherUser
                        | Reason::SignInStale
                        | Reason::SignInNoMfa
                        | Reason::SignInFailed
                )
            });
            (part.heading, part.status_text) = match v.status {
                VerificationStatus::Challenged if link && part.link_opened => (
                    "The caller is signing in",
                    "The caller opened the link and is signing in to the identity provider\u{2026}".into(),
                ),
                VerificationStatus::Challenged if link => (
                    "Send the sign-in link",
                    "Give the caller this one-time link (read it out, send it, or let them scan the code). They open it on their own device and sign in with their usual account and MFA.".into(),
                ),
                VerificationStatus::Rejected if v.reason == Some(Reason::CallerBlocked) => (
                    "Not the caller",
                    "Whoever opened the sign-in link said they did not call the helpdesk.".into(),
                ),
                VerificationStatus::Rejected if link_refused => (
                    "Sign-in refused",
                    "The caller's sign-in did not verify them.".into(),
                ),
                VerificationStatus::Challenged if push => (
                    "Waiting for the caller",
                    format!(
                        "{words} sent. Waiting for the caller to approve it on their phone\u{2026}"
                    ),
                ),
                VerificationStatus::Challenged => (
                    "Ask for the code",
                    format!("Ask the caller to read the current code: {words}."),
                ),
                VerificationStatus::Pending => (
                    "One more factor",
                    format!(
                        "{} of {} factors approved. Verify the next one with a different factor.",
                        v.approved, v.required
                    ),
                ),
                VerificationStatus::Verified => ("Verified", "The caller is verified.".into()),
                VerificationStatus::Rejected => (
                    "Push denied",
                    "The caller denied the push or picked the wrong number.".into(),
                ),
                VerificationStatus::Expired => {
                    ("No answer", "The caller did not answer in time.".into())
                }
                _ => (
                    "Verification failed",
                    "The verification did not complete.".into(),
                ),
            };
            if let Some(r) = v.reason {
                let d = Denial::new(r);
                part.reason = r.as_str().into();
                // The heading and status line already say a push was denied or went unanswered.
                if !matches!(r, Reason::ChallengeRejected | Reason::ChallengeTimedOut) {
                    part.message = d.message().into();
                }
                part.remedy = d.remedy().into();
            }
            part.code_form = v.status == VerificationStatus::Challenged && !push && !link;
            part.next_factor = v.status == VerificationStatus::Pending;
            part.retry = v.status.is_final() && v.status != VerificationStatus::Verified;
            part.retry_link = link_refused;
            if matches!(
                v.reason,
                Some(Reason::SignInOtherUser | Reason::CallerBlocked)
            ) {
                // Someone else signed in: the remedy is to end the call and escalate, not to try again.
                part.retry = false;
            }
            let not_me = ctx_state.engine().policy().alarms().not_me;
            if v.status == VerificationStatus::Rejected
                && v.reason == Some(Reason::ChallengeRejected)
                && not_me.on_push_denied
                && not_me.block_actions_seconds > 0
            {
                // Policy's "not me" response has run: a new push would be refused, so none is offered.
                part.retry = false;
                part.message = denied_push_response(&not_me);
            }
            if let Some(g) = &v.grant {
                let line = grant_line(g, now);
                part.note = format!(
                    "Caller identity verified with fctr at {}: {} ({}). Verification {}.",
                    when(&now),
                    g.factors
                        .iter()
                        .map(|k| factor_words(k, &provider))
                        .collect::<Vec<_>>()
                        .join(" + "),
                    g.assurance,
                    id,
                );
                part.grant = Some(line);
                let policy = ctx_state.engine().policy();
                let role = agent.role().and_then(|r| policy.role(r));
                // Unlock and unsuspend apply only to an account in that state, which this page does not know:
                // the caller card offers them when they apply.
                part.offered = g
                    .actions
                    .iter()
                    .filter(|k| !matches!(k, ActionKind::Unlock | ActionKind::Unsuspend))
                    .filter(|k| role.is_some_and(|r| policy.permits(r, Permission::Act(**k))))
                    .map(|k| Offer::new(*k))
                    .collect();
            }
            v.status.is_final()
                || (v.status == VerificationStatus::Challenged && !push && !link)
                || v.status == VerificationStatus::Pending
        }
    };
    match part.render() {
        Ok(h) => (h, done),
        Err(_) => (String::new(), true),
    }
}

#[derive(Template)]
#[template(path = "verification.html")]
struct VerificationPage {
    c: Chrome,
    id: String,
    handle: String,
    done: bool,
    status_html: String,
}

/// `GET /verifications/{id}`: the number, the live status, the code form, then the grant.
pub(crate) async fn verification(me: SignedIn, Path(id): Path<String>) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let Some(vid) = parse_vid(&id) else {
        return ctx.denial_page(&Denial::new(Reason::VerificationNotFound), "/search");
    };
    let snap = ctx
        .state
        .polls()
        .current(&agent, vid, FIRST_POLL_WAIT)
        .await;
    if let Err(d) = &snap {
        if d.reason == Reason::VerificationNotFound {
            return ctx.denial_page(d, "/search");
        }
    }
    let handle = session.verifications.get(&vid).cloned().unwrap_or_default();
    let (html, done) = status_html(&ctx.state, &agent, &session.csrf, &handle, vid, &snap, "");
    render(
        StatusCode::OK,
        &VerificationPage {
            c: ctx.chrome(),
            id: vid.to_string(),
            handle,
            done,
            status_html: html,
        },
    )
}

/// `GET /verifications/{id}/events`: server-sent events with the live part of the page, until it settles.
pub(crate) async fn events(me: SignedIn, Path(id): Path<String>) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let Some(vid) = parse_vid(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Another agent's verification is unknown here as on its page (8.3.1), by the same check: its first poll is
    // refused by the engine, and no stream is opened.
    if let Err(d) = ctx
        .state
        .polls()
        .current(&agent, vid, FIRST_POLL_WAIT)
        .await
    {
        if d.reason == Reason::VerificationNotFound {
            return ctx.denial_page(&d, "/search");
        }
    }
    let handle = session.verifications.get(&vid).cloned().unwrap_or_default();
    let rx = ctx.state.polls().watch(&agent, vid);
    let state = ctx.state.clone();
    let csrf = session.csrf.clone();
    let stream = futures::stream::unfold((rx, false, true), move |(mut rx, done, first)| {
        let state = state.clone();
        let agent = agent.clone();
        let csrf = csrf.clone();
        let handle = handle.clone();
        async move {
            if done {
                return None;
            }
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let snap: Snapshot = match rx.wait_for(Option::is_some).await {
                Ok(s) => s.clone(),
                Err(_) => return None,
            };
            let res = snap?;
            let (html, done) = status_html(&state, &agent, &csrf, &handle, vid, &res, "");
            let ev = Event::default()
                .event("status")
                .json_data(serde_json::json!({ "html": html, "done": done }))
                .unwrap_or_else(|_| Event::default().event("status").data("{}"));
            Some((Ok::<Event, Infallible>(ev), (rx, done, false)))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The verification page again, with an inline error at the code form (422: the code was not accepted).
async fn code_page(
    ctx: &crate::reply::html::Page,
    agent: &Agent,
    session: &crate::session::Session,
    vid: VerificationId,
    error: &str,
) -> Response {
    let snap = ctx.state.polls().current(agent, vid, FIRST_POLL_WAIT).await;
    let handle = session.verifications.get(&vid).cloned().unwrap_or_default();
    let (html, done) = status_html(&ctx.state, agent, &session.csrf, &handle, vid, &snap, error);
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &VerificationPage {
            c: ctx.chrome(),
            id: vid.to_string(),
            handle,
            done,
            status_html: html,
        },
    )
}

/// `POST /verifications/{id}/code`: checks the code the caller read out.
pub(crate) async fn submit_code(
    Path(id): Path<String>,
    CsrfForm(me, f): CsrfForm<CodeForm>,
) -> Response {
    let SignedIn {
        page: ctx,
        agent,
        session,
    } = me;
    let Some(vid) = parse_vid(&id) else {
        return ctx.denial_page(&Denial::new(Reason::VerificationNotFound), "/search");
    };
    let back = format!("/verifications/{vid}");
    let secret = match crate::input::code(&f.code) {
        Ok(c) => c.into_secret(),
        Err(_) => {
            return code_page(
                &ctx,
                &agent,
                &session,
                vid,
                "A code is 6 to 8 digits. Ask the caller to read it again.",
            )
            .await;
        }
    };
    match ctx
        .state
        .engine()
        .submit_code(&agent, &ctx.rctx, vid, secret)
        .await
    {
        Ok(view) => {
            ctx.state.polls().publish(&agent, vid, view);
            Redirect::to(&back).into_response()
        }
        Err(d) if matches!(d.reason, Reason::WrongCode | Reason::CodeReplayed) => {
            let left = ctx.state.engine().code_attempts_left(&agent, vid).await;
            let attempts = match left {
                Some(0) => {
                    " No attempts left: code checks for this caller are now locked for a while."
                        .to_owned()
                }
                Some(1) => " 1 attempt left.".to_owned(),
                Some(n) if n < 1000 => format!(" {n} attempts left."),
                _ => String::new(),
            };
            let error = format!("{} {}{attempts}", d.message(), d.remedy());
            code_page(&ctx, &agent, &session, vid, &error).await
        }
        Err(d) => ctx.denial_page(&d, &back),
    }
}

/// `POST /verifications/{id}/continue`: challenges the next factor.
/// The "That was not me" form: nothing but the CSRF token.
#[derive(Deserialize)]
pub(crate) struct NotMeForm {}

/// `POST /verifications/{id}/not-me`: the agent records that the caller said the request was not theirs; policy's
/// response runs (docs/alarms.md) and the agent sees the outcome.
pub(crate) async fn not_me(
    Path(id): Path<String>,
    CsrfForm(me, _): CsrfForm<NotMeForm>,
) -> Response {
    let SignedIn {
        page: ctx, agent, ..
    } = me;
    let Some(vid) = parse_vid(&id) else {
        return ctx.denial_page(&Denial::new(Reason::VerificationNotFound), "/search");
    };
    match ctx
        .state
        .engine()
        .report_not_me(&agent, &ctx.rctx, vid)
        .await
    {
        Ok(()) => ctx.message(
            StatusCode::OK,
            "Recorded: \"that was not me\"",
            "The security team is alerted and, as policy sets, the caller's sessions are cleared and changes to \
             their account are blocked for a while. Do not verify or change the account on this call.",
            "/search",
        ),
        Err(d) => ctx.denial_page(&d, &format!("/verifications/{vid}")),
    }
}

pub(crate) async fn continue_verification(
    Path(id): Path<String>,
    CsrfForm(me, f): CsrfForm<FactorForm>,
) -> Response {
    let SignedIn {
        page: ctx, agent, ..
    } = me;
    let Some(vid) = parse_vid(&id) else {
        return ctx.denial_page(&Denial::new(Reason::VerificationNotFound), "/search");
    };
    let back = format!("/verifications/{vid}");
    let factor = match crate::input::factor(Some(&f.factor_id)) {
        Ok(x) => x,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    match ctx
        .state
        .engine()
        .continue_verification(&agent, &ctx.rctx, vid, factor.as_ref())
        .await
    {
        Ok(view) => {
            ctx.state.polls().publish(&agent, vid, view);
            Redirect::to(&back).into_response()
        }
        Err(d) => ctx.denial_page(&d, &back),
    }
}
