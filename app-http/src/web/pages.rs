//! Search, caller card, verification (live status), actions and the audit view.

use super::{Chrome, Ctx, render};
use crate::poller::Snapshot;
use askama::Template;
use axum::extract::{Form, Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use fctr_core::policy::Permission;
use fctr_core::{ActionRequest, Agent, AuditViewQuery, Denial, GrantView, VerificationView};
use fctr_ports::{
    ActionKind, EventKind, ExposeSecret, FactorId, FactorKind, Reason, SecretKind, SecretString,
    UserQuery, VerificationId, VerificationStatus,
};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

/// How long a page waits for the first poll of a verification.
const FIRST_POLL_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn remaining(until: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (*until - now).num_seconds().max(0);
    format!("{} min {} s", s / 60, s % 60)
}

fn label(kind: ActionKind) -> String {
    let d = kind.describe();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn role_permits(ctx: &Ctx, agent: &Agent, p: Permission) -> bool {
    let policy = ctx.state.engine().policy();
    agent
        .role()
        .and_then(|r| policy.role(r))
        .is_some_and(|r| policy.permits(r, p))
}

/// `GET /`.
pub(crate) async fn home(ctx: Ctx) -> Response {
    if ctx.session.is_some() {
        Redirect::to("/search").into_response()
    } else {
        ctx.sign_in_page(StatusCode::OK, "")
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    c: Chrome,
    query: String,
    searched: bool,
    results: Vec<ResultRow>,
}

struct ResultRow {
    handle: String,
    name: String,
    login: String,
    status: String,
}

/// `GET /search`.
pub(crate) async fn search_form(ctx: Ctx) -> Response {
    if let Err(r) = ctx.require() {
        return r;
    }
    render(
        StatusCode::OK,
        &SearchPage {
            c: ctx.chrome(),
            query: String::new(),
            searched: false,
            results: Vec::new(),
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    q: String,
}

/// `POST /search` (a POST so the search text never appears in a URL or an access log).
pub(crate) async fn search_submit(ctx: Ctx, Form(f): Form<SearchForm>) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&session, &agent, &f.csrf).await {
        return r;
    }
    let Ok(query) = UserQuery::guess(&f.q) else {
        return ctx.denial_page(&Denial::new(Reason::InvalidInput), "/search");
    };
    let users = match ctx.state.engine().search(&agent, &ctx.rctx, &query).await {
        Ok(u) => u,
        Err(d) => return ctx.denial_page(&d, "/search"),
    };
    let mut results = Vec::with_capacity(users.len());
    for u in &users {
        // One atomic step on the stored session per caller: a sign-out during the search leaves nothing to add
        // to, and another tab's handles stay.
        let Some(handle) = ctx.state.sessions().add_caller(&session.id, &u.id).await else {
            return ctx.sign_in_page(
                StatusCode::UNAUTHORIZED,
                "Your session has ended or you are not signed in.",
            );
        };
        results.push(ResultRow {
            handle,
            name: u
                .display_name
                .as_ref()
                .map(|n| n.expose_pii().to_owned())
                .unwrap_or_default(),
            login: u.login.expose_pii().to_owned(),
            status: u.status.as_str().to_owned(),
        });
    }
    render(
        StatusCode::OK,
        &SearchPage {
            c: ctx.chrome(),
            query: f.q,
            searched: true,
            results,
        },
    )
}

struct GrantLine {
    assurance: &'static str,
    expires_at: String,
    remaining: String,
    single_use: bool,
}

fn grant_line(g: &GrantView, now: DateTime<Utc>) -> GrantLine {
    GrantLine {
        assurance: g.assurance,
        expires_at: when(&g.expires_at),
        remaining: remaining(&g.expires_at, now),
        single_use: g.single_use,
    }
}

struct FactorRow {
    id: String,
    kind: String,
    assurance: &'static str,
    accepted: bool,
    refusal: String,
    recommended: bool,
    verb: &'static str,
}

struct ActionRow {
    label: String,
    permitted: bool,
    lines: Vec<String>,
}

struct Offer {
    kind: &'static str,
    label: String,
}

#[derive(Template)]
#[template(path = "caller.html")]
struct CallerPage {
    c: Chrome,
    handle: String,
    name: String,
    login: String,
    email: String,
    phone: String,
    status: String,
    class: &'static str,
    protected: bool,
    risk: Vec<String>,
    grant: Option<GrantLine>,
    factors: Vec<FactorRow>,
    can_verify: bool,
    offered: Vec<Offer>,
    actions: Vec<ActionRow>,
}

fn opt_time(label: &str, t: Option<&DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{label}: {}", when(t)),
        None => format!("{label}: unknown"),
    }
}

/// `GET /callers/{handle}`: the caller card.
pub(crate) async fn caller(ctx: Ctx, Path(handle): Path<String>) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(subject) = session.callers.get(&handle).cloned() else {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Unknown caller",
            "This caller link is not from your session. Search again.",
            "/search",
        );
    };
    let card = match ctx.state.engine().lookup(&agent, &ctx.rctx, &subject).await {
        Ok(c) => c,
        Err(d) => return ctx.denial_page(&d, "/search"),
    };
    let now = ctx.state.0.clock.now();
    let u = &card.user;
    let r = &card.risk;
    let risk = vec![
        if r.locked_out {
            "Account is locked out".to_owned()
        } else {
            "Not locked out".to_owned()
        },
        opt_time("Created", r.created.as_ref()),
        opt_time("Status changed", r.status_changed.as_ref()),
        opt_time("Password changed", r.password_changed.as_ref()),
        opt_time("Last sign-in", r.last_login.as_ref()),
        opt_time("Factors last changed", r.last_factor_change.as_ref()),
        match r.directory_synced {
            Some(true) => "Synced from an on-premises directory".to_owned(),
            Some(false) => "Cloud-only account".to_owned(),
            None => "Directory sync: unknown".to_owned(),
        },
    ];
    let factors = card
        .factors
        .iter()
        .map(|f| FactorRow {
            id: f.info.id.as_str().to_owned(),
            kind: f.info.kind.as_str().to_owned(),
            assurance: f.assurance,
            accepted: f.accepted,
            refusal: f
                .refusal
                .map(|r| Denial::new(r).message().to_owned())
                .unwrap_or_default(),
            recommended: card.recommended_factor.as_ref() == Some(&f.info.id),
            verb: if matches!(f.info.kind, FactorKind::Push) {
                "Send push"
            } else {
                "Verify with code"
            },
        })
        .collect();
    let offered = card
        .actions
        .iter()
        .filter(|a| a.available_now)
        .map(|a| Offer {
            kind: a.kind.as_str(),
            label: label(a.kind),
        })
        .collect();
    let actions = card
        .actions
        .iter()
        .filter(|a| a.supported)
        .map(|a| ActionRow {
            label: label(a.kind),
            permitted: a.permitted_for_role,
            lines: a.explanation.lines.clone(),
        })
        .collect();
    let page = CallerPage {
        c: ctx.chrome(),
        handle,
        name: u
            .display_name
            .as_ref()
            .map(|n| n.expose_pii().to_owned())
            .unwrap_or_default(),
        login: u.login.expose_pii().to_owned(),
        email: u
            .email
            .as_ref()
            .map(|n| n.expose_pii().to_owned())
            .unwrap_or_default(),
        phone: u
            .phone
            .as_ref()
            .map(|n| n.expose_pii().to_owned())
            .unwrap_or_default(),
        status: u.status.as_str().to_owned(),
        class: card.class.as_str(),
        protected: card.protected,
        risk,
        grant: card.grant.as_ref().map(|g| grant_line(g, now)),
        factors,
        can_verify: role_permits(&ctx, &agent, Permission::Verify) && !card.protected,
        offered,
        actions,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub(crate) struct FactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    factor_id: String,
}

fn parse_factor(s: &str) -> Result<Option<FactorId>, Denial> {
    if s.is_empty() {
        return Ok(None);
    }
    FactorId::parse(s.to_owned())
        .map(Some)
        .map_err(|_| Denial::new(Reason::InvalidInput))
}

/// `POST /callers/{handle}/verify`: starts a verification, then shows it.
pub(crate) async fn verify(
    ctx: Ctx,
    Path(handle): Path<String>,
    Form(f): Form<FactorForm>,
) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&session, &agent, &f.csrf).await {
        return r;
    }
    let Some(subject) = session.callers.get(&handle).cloned() else {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Unknown caller",
            "Search again.",
            "/search",
        );
    };
    let factor = match parse_factor(&f.factor_id) {
        Ok(x) => x,
        Err(d) => return ctx.denial_page(&d, &format!("/callers/{handle}")),
    };
    let agent = match ctx
        .agent_for_action(&session, &agent, &format!("/callers/{handle}"))
        .await
    {
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
    if !ctx
        .state
        .sessions()
        .add_verification(&session.id, id, &handle)
        .await
    {
        // Signed out while the challenge was being sent: the verification runs out on its own.
        return ctx.sign_in_page(
            StatusCode::UNAUTHORIZED,
            "Your session has ended or you are not signed in.",
        );
    }
    Redirect::to(&format!("/verifications/{id}")).into_response()
}

#[derive(Template)]
#[template(path = "verification_status.html")]
struct StatusPart {
    id: String,
    status: &'static str,
    status_text: String,
    number: Option<u16>,
    reason: String,
    message: String,
    remedy: String,
    code_form: bool,
    next_factor: bool,
    grant: Option<GrantLine>,
    offered: Vec<Offer>,
    csrf: String,
    handle: String,
}

/// Renders the live part of the verification page; returns (html, done).
fn status_html(
    ctx_state: &crate::state::AppState,
    agent: &Agent,
    csrf: &str,
    handle: &str,
    id: VerificationId,
    snap: &Result<VerificationView, Denial>,
) -> (String, bool) {
    let now = ctx_state.0.clock.now();
    let mut part = StatusPart {
        id: id.to_string(),
        status: "error",
        status_text: String::new(),
        number: None,
        reason: String::new(),
        message: String::new(),
        remedy: String::new(),
        code_form: false,
        next_factor: false,
        grant: None,
        offered: Vec::new(),
        csrf: csrf.to_owned(),
        handle: handle.to_owned(),
    };
    let done = match snap {
        Err(d) => {
            part.status_text = "Refused.".into();
            part.reason = d.reason.as_str().into();
            part.message = d.message().into();
            part.remedy = d.remedy().into();
            true
        }
        Ok(v) => {
            part.status = v.status.as_str();
            part.number = v.number;
            let push = matches!(v.factor, Some(FactorKind::Push));
            part.status_text = match v.status {
                VerificationStatus::Challenged if push => {
                    "Waiting for the caller to approve the push on their phone\u{2026}".into()
                }
                VerificationStatus::Challenged => {
                    "Ask the caller to read the current code from their authenticator app.".into()
                }
                VerificationStatus::Pending => format!(
                    "{} of {} factors approved. Challenge the next factor.",
                    v.approved, v.required
                ),
                VerificationStatus::Verified => "Verified.".into(),
                VerificationStatus::Rejected => {
                    "Rejected: the caller denied the push or picked the wrong number.".into()
                }
                VerificationStatus::Expired => "Expired.".into(),
                _ => "Failed.".into(),
            };
            if let Some(r) = v.reason {
                let d = Denial::new(r);
                part.reason = r.as_str().into();
                part.message = d.message().into();
                part.remedy = d.remedy().into();
            }
            part.code_form = v.status == VerificationStatus::Challenged && !push;
            part.next_factor = v.status == VerificationStatus::Pending;
            if let Some(g) = &v.grant {
                part.grant = Some(grant_line(g, now));
                let policy = ctx_state.engine().policy();
                let role = agent.role().and_then(|r| policy.role(r));
                part.offered = g
                    .actions
                    .iter()
                    .filter(|k| role.is_some_and(|r| policy.permits(r, Permission::Act(**k))))
                    .map(|k| Offer {
                        kind: k.as_str(),
                        label: label(*k),
                    })
                    .collect();
            }
            v.status.is_final()
                || (v.status == VerificationStatus::Challenged && !push)
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

fn parse_vid(s: &str) -> Option<VerificationId> {
    VerificationId::parse(s).ok()
}

/// `GET /verifications/{id}`: the number, the live status, the code form, then the grant.
pub(crate) async fn verification(ctx: Ctx, Path(id): Path<String>) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
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
    let (html, done) = status_html(&ctx.state, &agent, &session.csrf, &handle, vid, &snap);
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
pub(crate) async fn events(ctx: Ctx, Path(id): Path<String>) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
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
            let (html, done) = status_html(&state, &agent, &csrf, &handle, vid, &res);
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
    csrf: String,
    #[serde(default)]
    code: String,
}

/// `POST /verifications/{id}/code`: checks the code the caller read out.
pub(crate) async fn submit_code(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&session, &agent, &f.csrf).await {
        return r;
    }
    let Some(vid) = parse_vid(&id) else {
        return ctx.denial_page(&Denial::new(Reason::VerificationNotFound), "/search");
    };
    let back = format!("/verifications/{vid}");
    let code = f.code.trim();
    if code.is_empty() || code.len() > 10 || !code.chars().all(|c| c.is_ascii_digit()) {
        return ctx.denial_page(&Denial::new(Reason::InvalidInput), &back);
    }
    let secret = SecretString::from(code.to_owned());
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
        Err(d) => ctx.denial_page(&d, &back),
    }
}

/// `POST /verifications/{id}/continue`: challenges the next factor.
pub(crate) async fn continue_verification(
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<FactorForm>,
) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&session, &agent, &f.csrf).await {
        return r;
    }
    let Some(vid) = parse_vid(&id) else {
        return ctx.denial_page(&Denial::new(Reason::VerificationNotFound), "/search");
    };
    let back = format!("/verifications/{vid}");
    let factor = match parse_factor(&f.factor_id) {
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
    ctx: Ctx,
    Path((handle, action)): Path<(String, String)>,
    Form(f): Form<FactorForm>,
) -> Response {
    let (session, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(&session, &agent, &f.csrf).await {
        return r;
    }
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
    let factor = match parse_factor(&f.factor_id) {
        Ok(x) => x,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    // The agent says what; the engine decides the terms.
    let action = match ActionRequest::new(kind, factor) {
        Ok(a) => a,
        Err(d) => return ctx.denial_page(&d, &back),
    };
    let agent = match ctx.agent_for_action(&session, &agent, &back).await {
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
pub(crate) async fn act_get(ctx: Ctx, Path((handle, _)): Path<(String, String)>) -> Response {
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
pub(crate) async fn audit(ctx: Ctx, Query(q): Query<AuditFilter>) -> Response {
    let (_, agent) = match ctx.require() {
        Ok(x) => x,
        Err(r) => return r,
    };
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
