//! The control API under `/_fake/…` (not an Entra path), its Rust counterparts ([`Phones`], [`Faults`],
//! [`OidcControl`]) and the simulated phone page.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::FakeEntraState;
use super::state::{PushState, SessionKind, Shared, ts};
use crate::common::fault::{Fault, FaultRule};
use crate::common::oidc::IdTokenTweak;
use crate::common::page::{PAGE_CSP, html_page};
use crate::common::util::html_escape;
use crate::okta::PhoneAnswer;

/// A push (or voice call) waiting for an answer on a simulated phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPush {
    /// The connector `SessionId`.
    pub session_id: String,
    /// The client's `ContextId`.
    pub context_id: String,
    /// Object id of the user.
    pub user_id: String,
    /// The user's UPN.
    pub upn: String,
    /// Push or voice call.
    pub kind: SessionKind,
    /// The number to pick (`ValidEntropyNumber`), for asynchronous pushes.
    pub number: Option<u8>,
    /// The numbers the phone shows (the right one among them), or empty.
    pub choices: Vec<u8>,
    /// Whether the Begin call blocks (`SyncCall=true`).
    pub sync_call: bool,
    /// The `CallerName` of the Begin call.
    pub caller_name: Option<String>,
    /// When it was sent.
    pub created: DateTime<Utc>,
    /// When it reads `PhoneAppNoResponse`.
    pub expires_at: DateTime<Utc>,
    /// Whether the phone was told to ignore it.
    pub ignored: bool,
}

/// Why a simulated phone could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// No such session, or not a push or call.
    #[error("unknown push session")]
    UnknownSession,
    /// The push was already answered or has expired.
    #[error("push is no longer waiting ({0:?})")]
    NotWaiting(PushState),
}

/// Simulated phones: list pending pushes and calls, and answer them.
#[derive(Clone)]
pub struct Phones {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Phones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Phones")
    }
}

impl Phones {
    /// Pushes and calls still waiting (not answered, not expired), oldest first.
    pub fn pending(&self) -> Vec<PendingPush> {
        let now = self.shared.now();
        let inner = self.shared.lock();
        let mut out: Vec<PendingPush> = inner
            .sessions
            .values()
            .filter(|s| matches!(s.kind, SessionKind::Push | SessionKind::Voice))
            .filter(|s| !s.finished && s.state_at(now) == PushState::Waiting)
            .map(|s| PendingPush {
                session_id: s.id.clone(),
                context_id: s.context_id.clone(),
                user_id: s.user_id.clone(),
                upn: inner
                    .user_idx_by_id(&s.user_id)
                    .map(|i| inner.users[i].upn.clone())
                    .unwrap_or_default(),
                kind: s.kind,
                number: s.number,
                choices: s.choices.clone(),
                sync_call: s.sync_call,
                caller_name: s.caller_name.clone(),
                created: s.created,
                expires_at: s.expires_at,
                ignored: s.ignored,
            })
            .collect();
        out.sort_by_key(|p| p.created);
        out
    }

    /// Waits (polling every 20 ms, up to `timeout`) for a pending push to the user (id or UPN).
    pub async fn wait_for_push(&self, user: &str, timeout: Duration) -> Option<PendingPush> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(p) =
                self.pending().into_iter().rev().find(|p| {
                    p.user_id.eq_ignore_ascii_case(user) || p.upn.eq_ignore_ascii_case(user)
                })
            {
                return Some(p);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Answers a push or call. Returns its new state.
    ///
    /// # Errors
    /// [`PhoneError`] if the session is unknown or no longer waiting.
    pub fn answer(&self, session_id: &str, answer: PhoneAnswer) -> Result<PushState, PhoneError> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let s = inner
            .sessions
            .get_mut(session_id)
            .filter(|s| matches!(s.kind, SessionKind::Push | SessionKind::Voice))
            .ok_or(PhoneError::UnknownSession)?;
        let state = s.state_at(now);
        if state != PushState::Waiting || s.finished {
            return Err(PhoneError::NotWaiting(state));
        }
        match answer {
            PhoneAnswer::Approve { number } => {
                s.state = match (s.number, number) {
                    (Some(right), Some(n)) if n == right => PushState::Approved,
                    (Some(_), _) => PushState::Denied,
                    (None, _) => PushState::Approved,
                };
            }
            PhoneAnswer::Deny => s.state = PushState::Denied,
            PhoneAnswer::Ignore => s.ignored = true,
        }
        Ok(s.state)
    }

    /// Approves (picking `number` when one is shown).
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn approve(&self, session_id: &str, number: Option<u8>) -> Result<PushState, PhoneError> {
        self.answer(session_id, PhoneAnswer::Approve { number })
    }

    /// Denies.
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn deny(&self, session_id: &str) -> Result<PushState, PhoneError> {
        self.answer(session_id, PhoneAnswer::Deny)
    }

    /// Ignores (it times out).
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn ignore(&self, session_id: &str) -> Result<PushState, PhoneError> {
        self.answer(session_id, PhoneAnswer::Ignore)
    }
}

/// Fault injection on Graph routes (templates such as `/v1.0/users/{id}`, see `FIXTURES-entra.md`).
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    /// Injects `fault` on `route` for the next `times` matching requests (`None`: until cleared). `route` is
    /// `*`, a template (`/v1.0/users/{id}`) or method and template (`GET /v1.0/users/{id}`).
    pub fn set(&self, route: impl Into<String>, fault: Fault, times: Option<u32>) {
        self.shared.lock().faults.push(FaultRule {
            route: route.into(),
            fault,
            remaining: times,
        });
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.shared.lock().faults.clear();
    }

    /// Active fault rules as JSON.
    pub fn list(&self) -> serde_json::Value {
        serde_json::to_value(&self.shared.lock().faults).unwrap_or_default()
    }
}

/// OIDC test hooks.
#[derive(Clone)]
pub struct OidcControl {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for OidcControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OidcControl")
    }
}

impl OidcControl {
    /// The next ID token minted carries this defect (tweaks queue up, one per token).
    pub fn tweak_next_id_token(&self, tweak: IdTokenTweak) {
        self.shared.lock().id_token_tweaks.push_back(tweak);
    }

    /// Drops queued tweaks.
    pub fn clear_tweaks(&self) {
        self.shared.lock().id_token_tweaks.clear();
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP control API

fn control_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

pub(crate) async fn list_pushes(State(st): State<FakeEntraState>) -> Response {
    Json(st.phones().pending()).into_response()
}

pub(crate) async fn answer_push(
    State(st): State<FakeEntraState>,
    Path(session): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(answer) = serde_json::from_slice::<PhoneAnswer>(&body) else {
        return control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"action":"approve","number":NN} | {"action":"deny"} | {"action":"ignore"}"#,
        );
    };
    match st.phones().answer(&session, answer) {
        Ok(state) => Json(json!({"sessionId": session, "state": state})).into_response(),
        Err(PhoneError::UnknownSession) => control_error(StatusCode::NOT_FOUND, "unknown session"),
        Err(e) => control_error(StatusCode::CONFLICT, &e.to_string()),
    }
}

pub(crate) async fn totp_code(
    State(st): State<FakeEntraState>,
    Path(user): Path<String>,
) -> Response {
    let now = st.shared.now_secs();
    let step = crate::common::totp::STEP_SECONDS;
    match st.totp_now(&user) {
        Some(code) => Json(json!({
            "user": user,
            "code": code,
            "validForSeconds": step - now.rem_euclid(step),
        }))
        .into_response(),
        None => control_error(StatusCode::NOT_FOUND, "no such user or no OATH method"),
    }
}

#[derive(Deserialize)]
pub(crate) struct FaultRequest {
    #[serde(default = "star")]
    route: String,
    fault: Fault,
    #[serde(default)]
    times: Option<u32>,
}

fn star() -> String {
    "*".into()
}

pub(crate) async fn set_fault(
    State(st): State<FakeEntraState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<FaultRequest>(&body) {
        Ok(r) => {
            st.faults().set(r.route, r.fault, r.times);
            (StatusCode::CREATED, Json(st.faults().list())).into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, &format!("bad fault request: {e}")),
    }
}

pub(crate) async fn list_faults(State(st): State<FakeEntraState>) -> Response {
    Json(st.faults().list()).into_response()
}

pub(crate) async fn clear_faults(State(st): State<FakeEntraState>) -> Response {
    st.faults().clear();
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn effects(
    State(st): State<FakeEntraState>,
    Path(user): Path<String>,
) -> Response {
    match (st.effects(&user), st.account_enabled(&user)) {
        (Some(e), Some(enabled)) => {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["accountEnabled"] = json!(enabled);
            Json(v).into_response()
        }
        _ => control_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

pub(crate) async fn fixtures(State(st): State<FakeEntraState>) -> Response {
    Json(st.fixtures().clone()).into_response()
}

#[derive(Deserialize)]
pub(crate) struct ClockRequest {
    advance_seconds: i64,
}

pub(crate) async fn clock(State(st): State<FakeEntraState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<ClockRequest>(&body) {
        Ok(r) => {
            st.advance_clock(r.advance_seconds);
            Json(json!({"now": ts(st.shared.now())})).into_response()
        }
        Err(_) => control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"advance_seconds":N}"#,
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct RateRequest {
    per_minute: u32,
}

pub(crate) async fn rate_limit(
    State(st): State<FakeEntraState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<RateRequest>(&body) {
        Ok(r) => {
            st.set_rate_limit(r.per_minute);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => control_error(StatusCode::BAD_REQUEST, r#"body must be {"per_minute":N}"#),
    }
}

#[derive(Deserialize)]
pub(crate) struct TweakRequest {
    tweak: IdTokenTweak,
}

pub(crate) async fn tweak(State(st): State<FakeEntraState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<TweakRequest>(&body) {
        Ok(r) => {
            st.oidc().tweak_next_id_token(r.tweak);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, &format!("bad tweak: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Simulated phone page

#[derive(Deserialize)]
pub(crate) struct PhoneQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    msg: Option<String>,
}

pub(crate) async fn phone_page(
    State(st): State<FakeEntraState>,
    Query(q): Query<PhoneQuery>,
) -> Response {
    let filter = q.user.clone().unwrap_or_default();
    let pending: Vec<PendingPush> = st
        .phones()
        .pending()
        .into_iter()
        .filter(|p| !p.ignored)
        .filter(|p| filter.is_empty() || p.user_id == filter || p.upn.eq_ignore_ascii_case(&filter))
        .collect();
    let mut body = String::from("<h1>Simulated phone</h1>");
    if let Some(msg) = &q.msg {
        body.push_str(&format!("<p><strong>{}</strong></p>", html_escape(msg)));
    }
    if pending.is_empty() {
        body.push_str("<p>No pending notifications. This page refreshes every 3 seconds.</p>");
    }
    for p in &pending {
        let title = match p.kind {
            SessionKind::Voice => "Incoming call: press # to approve",
            _ => "Microsoft Authenticator: approve sign-in?",
        };
        body.push_str(&format!(
            "<div class=\"card\"><h2>{}</h2><p><strong>{}</strong></p><p class=\"muted\">{} &middot; expires {}</p>\
<form method=\"post\" action=\"phone\"><input type=\"hidden\" name=\"session\" value=\"{}\">\
<input type=\"hidden\" name=\"user\" value=\"{}\">",
            html_escape(title),
            html_escape(&p.upn),
            html_escape(p.caller_name.as_deref().unwrap_or("unknown application")),
            html_escape(&ts(p.expires_at)),
            html_escape(&p.session_id),
            html_escape(&filter),
        ));
        if p.choices.is_empty() {
            body.push_str("<button name=\"action\" value=\"approve\">Approve</button>");
        } else {
            body.push_str("<p>Enter the number shown to sign in:</p>");
            for n in &p.choices {
                body.push_str(&format!(
                    "<button name=\"number\" value=\"{n}\">{n}</button>"
                ));
            }
        }
        body.push_str("<button name=\"action\" value=\"deny\">Deny</button></form></div>");
    }
    html_page("FAKE ENTRA", "Simulated phone", &body, Some(3), PAGE_CSP)
}

#[derive(Deserialize)]
pub(crate) struct PhoneForm {
    session: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

pub(crate) async fn phone_answer(
    State(st): State<FakeEntraState>,
    Form(f): Form<PhoneForm>,
) -> Response {
    let Some(answer) =
        crate::common::page::phone_form_answer(f.action.as_deref(), f.number.as_deref())
    else {
        return control_error(StatusCode::BAD_REQUEST, "approve, pick a number or deny");
    };
    let msg = match st.phones().answer(&f.session, answer) {
        Ok(PushState::Approved) => "Approved.",
        Ok(PushState::Denied) => "Denied.",
        Ok(_) => "Noted.",
        Err(_) => "That notification is no longer waiting.",
    };
    crate::common::page::back_to_phone(msg, f.user)
}
