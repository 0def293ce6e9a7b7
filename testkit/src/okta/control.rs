//! The control API under `/_fake/…` (not an Okta path), its Rust counterparts ([`Phones`], [`Faults`],
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

use super::FakeOktaState;
use super::state::{PushState, Shared};
use super::util::html_escape;

pub use crate::common::fault::Fault;
pub(crate) use crate::common::fault::FaultRule;

pub use crate::common::oidc::IdTokenTweak;

/// A push waiting for an answer on a simulated phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPush {
    /// Transaction id (the last segment of the poll href).
    pub transaction_id: String,
    /// Okta user id.
    pub user_id: String,
    /// The user's login.
    pub login: String,
    /// The push factor id.
    pub factor_id: String,
    /// The number the caller must pick, when number matching was requested.
    pub correct_answer: Option<u8>,
    /// The three numbers the phone shows (the right one among them), or empty without number matching.
    pub choices: Vec<u8>,
    /// When the push was sent.
    pub created: DateTime<Utc>,
    /// When it reads `TIMEOUT`.
    pub expires_at: DateTime<Utc>,
    /// `User-Agent` of the verify request (the phone shows it).
    pub user_agent: Option<String>,
    /// Client IP the phone shows (`X-Forwarded-For` of the verify request, if any).
    pub client_ip: Option<String>,
    /// Whether the phone was told to ignore it (it then times out).
    pub ignored: bool,
}

/// Why a simulated phone could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// No such transaction.
    #[error("unknown push transaction")]
    UnknownTransaction,
    /// The push was already answered or has expired.
    #[error("push is no longer waiting ({0:?})")]
    NotWaiting(PushState),
}

/// Simulated phones: list pending pushes and answer them.
#[derive(Clone)]
pub struct Phones {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Phones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Phones")
    }
}

/// What the phone does with a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PhoneAnswer {
    /// Approve, picking `number` (required with number matching; a wrong number rejects the push).
    Approve {
        /// The number picked.
        #[serde(default)]
        number: Option<u8>,
    },
    /// Deny ("No, it's not me").
    Deny,
    /// Leave it; the push times out.
    Ignore,
}

impl Phones {
    /// Pushes still waiting (not answered, not expired), oldest first.
    pub fn pending(&self) -> Vec<PendingPush> {
        let now = self.shared.now();
        let inner = self.shared.lock();
        let mut out: Vec<PendingPush> = inner
            .txs
            .values()
            .filter(|t| t.state_at(now) == PushState::Waiting)
            .map(|t| PendingPush {
                transaction_id: t.id.clone(),
                user_id: t.user_id.clone(),
                login: inner
                    .user_idx_by_id(&t.user_id)
                    .map(|i| inner.users[i].login.clone())
                    .unwrap_or_default(),
                factor_id: t.factor_id.clone(),
                correct_answer: t.correct_answer,
                choices: t.choices.clone(),
                created: t.created,
                expires_at: t.expires_at,
                user_agent: t.user_agent.clone(),
                client_ip: t.client_ip.clone(),
                ignored: t.ignored,
            })
            .collect();
        out.sort_by_key(|p| p.created);
        out
    }

    /// Waits (polling every 20 ms, up to `timeout`) for a pending push to the user (id or login).
    pub async fn wait_for_push(&self, user: &str, timeout: Duration) -> Option<PendingPush> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self
                .pending()
                .into_iter()
                .rev()
                .find(|p| p.user_id == user || p.login == user)
            {
                return Some(p);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Answers a push. Returns the transaction's new state.
    ///
    /// # Errors
    /// [`PhoneError`] if the transaction is unknown or no longer waiting.
    pub fn answer(
        &self,
        transaction_id: &str,
        answer: PhoneAnswer,
    ) -> Result<PushState, PhoneError> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let tx = inner
            .txs
            .get_mut(transaction_id)
            .ok_or(PhoneError::UnknownTransaction)?;
        let state = tx.state_at(now);
        if state != PushState::Waiting {
            return Err(PhoneError::NotWaiting(state));
        }
        match answer {
            PhoneAnswer::Approve { number } => {
                tx.state = match (tx.correct_answer, number) {
                    (Some(right), Some(n)) if n == right => PushState::Success,
                    (Some(_), _) => PushState::Rejected,
                    (None, _) => PushState::Success,
                };
            }
            PhoneAnswer::Deny => tx.state = PushState::Rejected,
            PhoneAnswer::Ignore => tx.ignored = true,
        }
        Ok(tx.state)
    }

    /// Approves a push picking `number`.
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn approve(&self, transaction_id: &str, number: u8) -> Result<PushState, PhoneError> {
        self.answer(
            transaction_id,
            PhoneAnswer::Approve {
                number: Some(number),
            },
        )
    }

    /// Denies a push.
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn deny(&self, transaction_id: &str) -> Result<PushState, PhoneError> {
        self.answer(transaction_id, PhoneAnswer::Deny)
    }

    /// Ignores a push (it times out).
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn ignore(&self, transaction_id: &str) -> Result<PushState, PhoneError> {
        self.answer(transaction_id, PhoneAnswer::Ignore)
    }
}

/// Fault injection on Okta routes.
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
    /// Injects `fault` on `route` for the next `times` matching requests (`None`: until cleared).
    /// `route` is `*`, a route template such as `/api/v1/users/{id}`, or `GET /api/v1/users/{id}`. Templates
    /// are the fake's own: `/api/v1/users/{id}`, `/api/v1/users/{id}/factors`,
    /// `/api/v1/users/{id}/factors/{factor_id}/verify`, `/api/v1/users/{id}/factors/{factor_id}/transactions/{tx_id}`,
    /// `/api/v1/users/{id}/lifecycle/{action}`, `/oauth2/v1/token`, …
    pub fn set(&self, route: impl Into<String>, fault: Fault, times: Option<u32>) {
        self.shared.lock().faults.push(FaultRule {
            route: route.into(),
            fault,
            remaining: times,
        });
    }

    /// Injected 5xx answers carry `marker` in their `errorCauses` (`None`: the plain Okta body), so a test can
    /// prove an upstream body never reaches the agent or the logs.
    pub fn set_server_error_marker(&self, marker: Option<&str>) {
        self.shared
            .set_server_error_marker(marker.map(str::to_owned));
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

    /// Makes the discovery document advertise these ID-token algorithms besides RS256 (for example `HS256`), so
    /// a test can show the relying party keeps its own allow-list. Takes effect for clients discovering after
    /// the call.
    pub fn advertise_id_token_algs(&self, algs: &[&str]) {
        self.shared
            .set_extra_id_token_algs(algs.iter().map(|a| (*a).to_owned()).collect());
    }

    /// Rotates the ID-token signing key, as an IdP does: a fresh RSA key with a new `kid` signs every ID token
    /// from now on, and the JWKS publishes only it (the old key is withdrawn). Returns the new `kid`.
    ///
    /// # Errors
    /// [`KeyError`](super::KeyError) if the key cannot be generated.
    pub async fn rotate_signing_key(&self) -> Result<String, super::KeyError> {
        self.shared.keys.rotate().await
    }

    /// How many requests the JWKS endpoint (`/oauth2/v1/keys`) has received.
    #[must_use]
    pub fn jwks_requests(&self) -> u64 {
        self.shared.keys.jwks_requests()
    }

    /// Parks JWKS requests (after counting them) until [`OidcControl::release_jwks`]: a test can then run other
    /// requests while a relying party's key fetch is in flight.
    pub fn hold_jwks(&self) {
        self.shared.keys.hold();
    }

    /// Lets held and later JWKS requests through.
    pub fn release_jwks(&self) {
        self.shared.keys.release();
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP control API

fn control_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

pub(crate) async fn list_pushes(State(st): State<FakeOktaState>) -> Response {
    Json(st.phones().pending()).into_response()
}

pub(crate) async fn answer_push(
    State(st): State<FakeOktaState>,
    Path(tx): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(answer) = serde_json::from_slice::<PhoneAnswer>(&body) else {
        return control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"action":"approve","number":NN} | {"action":"deny"} | {"action":"ignore"}"#,
        );
    };
    match st.phones().answer(&tx, answer) {
        Ok(state) => Json(json!({"transactionId": tx, "state": state})).into_response(),
        Err(PhoneError::UnknownTransaction) => {
            control_error(StatusCode::NOT_FOUND, "unknown transaction")
        }
        Err(e) => control_error(StatusCode::CONFLICT, &e.to_string()),
    }
}

pub(crate) async fn totp_code(
    State(st): State<FakeOktaState>,
    Path(user): Path<String>,
) -> Response {
    let now = st.shared.now_secs();
    match st.totp_now(&user) {
        Some(code) => Json(json!({
            "userId": user,
            "passCode": code,
            "validForSeconds": super::totp::STEP_SECONDS - now.rem_euclid(super::totp::STEP_SECONDS),
        }))
        .into_response(),
        None => control_error(StatusCode::NOT_FOUND, "no such user or no TOTP factor"),
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
    State(st): State<FakeOktaState>,
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

pub(crate) async fn list_faults(State(st): State<FakeOktaState>) -> Response {
    Json(st.faults().list()).into_response()
}

pub(crate) async fn clear_faults(State(st): State<FakeOktaState>) -> Response {
    st.faults().clear();
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn effects(State(st): State<FakeOktaState>, Path(user): Path<String>) -> Response {
    let status = st.user_status(&user);
    match (st.effects(&user), status) {
        (Some(e), Some(s)) => {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["status"] = json!(s);
            Json(v).into_response()
        }
        _ => control_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

pub(crate) async fn fixtures(State(st): State<FakeOktaState>) -> Response {
    Json(st.fixtures().clone()).into_response()
}

#[derive(Deserialize)]
pub(crate) struct ClockRequest {
    advance_seconds: i64,
}

pub(crate) async fn clock(State(st): State<FakeOktaState>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<ClockRequest>(&body) {
        Ok(r) => {
            st.advance_clock(r.advance_seconds);
            Json(json!({"now": super::state::ts(st.shared.now())})).into_response()
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
    State(st): State<FakeOktaState>,
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
#[serde(deny_unknown_fields)]
pub(crate) struct PlainPushRequest {
    /// A user (handle, login or id); absent for the whole org.
    #[serde(default)]
    user: Option<String>,
    plain: bool,
}

/// `POST /_fake/plain-pushes {"user"?: "...", "plain": true}`: pushes come back without a number challenge.
pub(crate) async fn plain_pushes(
    State(st): State<FakeOktaState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<PlainPushRequest>(&body) {
        Ok(r) if st.set_plain_pushes(r.user.as_deref(), r.plain) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => control_error(StatusCode::NOT_FOUND, "no such user"),
        Err(_) => control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"user"?: "...", "plain": true|false}"#,
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct TweakRequest {
    tweak: IdTokenTweak,
}

pub(crate) async fn tweak(State(st): State<FakeOktaState>, body: axum::body::Bytes) -> Response {
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

pub(crate) use crate::common::page::PAGE_CSP;

/// An HTML page with the fake Okta banner and strict headers.
pub(crate) fn html_page(title: &str, body: &str, refresh: Option<u32>, csp: &str) -> Response {
    crate::common::page::html_page("FAKE OKTA", title, body, refresh, csp)
}

#[derive(Deserialize)]
pub(crate) struct PhoneQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    msg: Option<String>,
}

pub(crate) async fn phone_page(
    State(st): State<FakeOktaState>,
    Query(q): Query<PhoneQuery>,
) -> Response {
    let filter = q.user.clone().unwrap_or_default();
    let pending: Vec<PendingPush> = st
        .phones()
        .pending()
        .into_iter()
        .filter(|p| !p.ignored)
        .filter(|p| {
            filter.is_empty() || p.user_id == filter || p.login.eq_ignore_ascii_case(&filter)
        })
        .collect();
    let mut body = String::from("<h1>Simulated phone</h1>");
    if let Some(msg) = &q.msg {
        body.push_str(&format!("<p><strong>{}</strong></p>", html_escape(msg)));
    }
    if pending.is_empty() {
        body.push_str("<p>No pending push notifications. This page refreshes every 3 seconds.</p>");
    }
    for p in &pending {
        let user_hidden = format!(
            "<input type=\"hidden\" name=\"user\" value=\"{}\">",
            html_escape(&filter)
        );
        body.push_str("<div class=\"card\">");
        body.push_str(&format!(
            "<h2>Okta Verify</h2><p>Did you just try to sign in?</p><p><strong>{}</strong></p>\
<p class=\"muted\">Request from {} &middot; {} &middot; expires {}</p>",
            html_escape(&p.login),
            html_escape(p.client_ip.as_deref().unwrap_or("unknown location")),
            html_escape(p.user_agent.as_deref().unwrap_or("unknown browser")),
            html_escape(&super::state::ts(p.expires_at)),
        ));
        body.push_str(&format!(
            "<form method=\"post\" action=\"phone\"><input type=\"hidden\" name=\"tx\" value=\"{}\">{user_hidden}",
            html_escape(&p.transaction_id)
        ));
        if p.choices.is_empty() {
            body.push_str("<button name=\"action\" value=\"approve\">Yes, it's me</button>");
        } else {
            body.push_str("<p>Tap the number shown on the sign-in screen:</p>");
            for n in &p.choices {
                body.push_str(&format!(
                    "<button name=\"number\" value=\"{n}\">{n}</button>"
                ));
            }
        }
        body.push_str(
            "<button name=\"action\" value=\"deny\">No, it's not me</button></form></div>",
        );
    }
    html_page("Simulated phone", &body, Some(3), PAGE_CSP)
}

#[derive(Deserialize)]
pub(crate) struct PhoneForm {
    tx: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

pub(crate) async fn phone_answer(
    State(st): State<FakeOktaState>,
    Form(f): Form<PhoneForm>,
) -> Response {
    let Some(answer) =
        crate::common::page::phone_form_answer(f.action.as_deref(), f.number.as_deref())
    else {
        return control_error(StatusCode::BAD_REQUEST, "approve, pick a number or deny");
    };
    let msg = match st.phones().answer(&f.tx, answer) {
        Ok(PushState::Success) => "Approved.",
        Ok(PushState::Rejected) => "Rejected.",
        Ok(_) => "Noted.",
        Err(_) => "That push is no longer waiting.",
    };
    crate::common::page::back_to_phone(msg, f.user)
}

impl super::FakeOktaState {
    /// Removes `user` (handle, login or id) from the group named `group`, as an admin would in the Okta console.
    /// Returns whether the user was a member.
    pub fn remove_from_group(&self, user: &str, group: &str) -> bool {
        let mut inner = self.shared.lock();
        let Some(gid) = inner
            .groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.id.clone())
        else {
            return false;
        };
        let Some(i) = self.user_index(&inner, user) else {
            return false;
        };
        let before = inner.users[i].groups.len();
        inner.users[i].groups.retain(|g| g != &gid);
        inner.users[i].groups.len() != before
    }

    /// Sets the first and last name of `user` (handle, login or id). Returns whether the user exists.
    pub fn set_user_name(&self, user: &str, first: &str, last: &str) -> bool {
        let mut inner = self.shared.lock();
        let Some(i) = self.user_index(&inner, user) else {
            return false;
        };
        inner.users[i].first_name = first.to_owned();
        inner.users[i].last_name = last.to_owned();
        true
    }

    fn user_index(&self, inner: &super::state::Inner, user: &str) -> Option<usize> {
        let id = self
            .shared
            .fixtures
            .user(user)
            .map_or_else(|| user.to_owned(), |f| f.id.clone());
        inner.user_idx_by_any(&id)
    }
}
