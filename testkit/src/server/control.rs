//! The control plane both fakes serve under `/_fake/…` (not a vendor path; unauthenticated by design, loopback
//! only): pushes and their answers, TOTP codes, faults, effects, fixtures, the clock, the rate limit, the next
//! ID token's defect and the simulated phone page. A fake plugs in through [`Tenant`]: its records, its JSON
//! field names and the words on its phone page.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Core;
use super::fault::{Fault, Faults};
use super::phones::{PhoneAnswer, PhoneBook};
use super::serve::Launch;
use crate::common::oidc::IdTokenTweak;
use crate::common::page::{PAGE_CSP, html_page};
use crate::common::totp::STEP_SECONDS;
use crate::common::util::html_escape;

/// The words of a fake's simulated phone page.
pub(crate) struct PhoneWords {
    /// The page banner (`FAKE OKTA`).
    pub banner: &'static str,
    /// Shown when nothing waits.
    pub no_pending: &'static str,
    /// The form field carrying the push id.
    pub id_field: &'static str,
    /// The approve button without number matching.
    pub approve: &'static str,
    /// The line above the number buttons.
    pub pick_number: &'static str,
    /// The deny button.
    pub deny: &'static str,
}

/// A push (or call) waiting on a simulated phone, as the control plane lists and shows it.
pub(crate) trait Pending: Serialize + Send + 'static {
    /// The id answers name (transaction, session).
    fn id(&self) -> &str;
    /// The user's id.
    fn user_id(&self) -> &str;
    /// The user's sign-in name (login, UPN).
    fn login(&self) -> &str;
    /// Whether the phone was told to ignore it.
    fn ignored(&self) -> bool;
    /// The numbers the phone shows, or empty.
    fn choices(&self) -> &[u8];
    /// The card's HTML above its form (escaped), given the vendor's timestamp format.
    fn card_head(&self, ts: fn(DateTime<Utc>) -> String) -> String;
}

/// What a fake tenant plugs into the skeleton.
pub(crate) trait Tenant:
    Launch + PhoneBook<Pending: Pending, State: Serialize + Send, Error: std::error::Error + Send>
{
    /// The words of the phone page.
    const PHONE: PhoneWords;
    /// `GET /_fake/pushes/{id}/answer`'s field naming the push.
    const ANSWER_ID_FIELD: &'static str;
    /// The 404 of an answer to an unknown push.
    const UNKNOWN_PUSH: &'static str;
    /// `GET /_fake/totp/{user}`'s field names for the user and the code.
    const TOTP_FIELDS: (&'static str, &'static str);
    /// The 404 of `GET /_fake/totp/{user}`.
    const NO_TOTP: &'static str;
    /// The route template of "get user", where the contract suite injects faults.
    const GET_USER_ROUTE: &'static str;

    /// The vendor-neutral state.
    fn core(&self) -> &Arc<Core>;
    /// The vendor's timestamp format.
    fn timestamp(t: DateTime<Utc>) -> String;
    /// The seeded fixtures as JSON.
    fn fixtures_json(&self) -> Value;
    /// The side-effect counters of a user (plus the status the vendor shows beside them).
    fn effects_json(&self, user: &str) -> Option<Value>;
    /// The TOTP code valid now for a user.
    fn totp_code(&self, user: &str) -> Option<String>;
    /// How many times a user's sessions were revoked.
    fn sessions_revoked(&self, user: &str) -> Option<u64>;
    /// Whether `e` says the push is unknown (404) rather than no longer waiting (409).
    fn is_unknown(e: &Self::Error) -> bool;

    /// Fault injection.
    fn faults(&self) -> Faults {
        Faults::new(self.core())
    }
}

/// The shared `/_fake/…` routes; `phone_post` answers the phone page's form (its field names are the vendor's).
pub(crate) fn routes<T: Tenant>(phone_post: MethodRouter<T>) -> Router<T> {
    Router::new()
        .route("/_fake/pushes", get(list_pushes::<T>))
        .route("/_fake/pushes/{id}/answer", post(answer_push::<T>))
        .route("/_fake/totp/{user}", get(totp_code::<T>))
        .route(
            "/_fake/faults",
            get(list_faults::<T>)
                .post(set_fault::<T>)
                .delete(clear_faults::<T>),
        )
        .route("/_fake/users/{user}/effects", get(effects::<T>))
        .route("/_fake/fixtures", get(fixtures::<T>))
        .route("/_fake/clock", post(clock::<T>))
        .route("/_fake/rate-limit", post(rate_limit::<T>))
        .route("/_fake/oidc/next-id-token", post(tweak::<T>))
        .route("/_fake/phone", get(phone_page::<T>).merge(phone_post))
}

/// A control-plane error: `{"error": msg}`.
pub(crate) fn control_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

async fn list_pushes<T: Tenant>(State(st): State<T>) -> Response {
    Json(st.pending_pushes()).into_response()
}

async fn answer_push<T: Tenant>(
    State(st): State<T>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(answer) = serde_json::from_slice::<PhoneAnswer>(&body) else {
        return control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"action":"approve","number":NN} | {"action":"deny"} | {"action":"ignore"}"#,
        );
    };
    match st.answer_push(&id, answer) {
        Ok(state) => {
            let mut body = serde_json::Map::new();
            body.insert(T::ANSWER_ID_FIELD.into(), json!(id));
            body.insert("state".into(), json!(state));
            Json(Value::Object(body)).into_response()
        }
        Err(e) if T::is_unknown(&e) => control_error(StatusCode::NOT_FOUND, T::UNKNOWN_PUSH),
        Err(e) => control_error(StatusCode::CONFLICT, &e.to_string()),
    }
}

async fn totp_code<T: Tenant>(State(st): State<T>, Path(user): Path<String>) -> Response {
    let now = st.core().clock.now_secs();
    let (user_field, code_field) = T::TOTP_FIELDS;
    match st.totp_code(&user) {
        Some(code) => {
            let mut body = serde_json::Map::new();
            body.insert(user_field.into(), json!(user));
            body.insert(code_field.into(), json!(code));
            body.insert(
                "validForSeconds".into(),
                json!(STEP_SECONDS - now.rem_euclid(STEP_SECONDS)),
            );
            Json(Value::Object(body)).into_response()
        }
        None => control_error(StatusCode::NOT_FOUND, T::NO_TOTP),
    }
}

#[derive(Deserialize)]
struct FaultRequest {
    #[serde(default = "star")]
    route: String,
    fault: Fault,
    #[serde(default)]
    times: Option<u32>,
}

fn star() -> String {
    "*".into()
}

async fn set_fault<T: Tenant>(State(st): State<T>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultRequest>(&body) {
        Ok(r) => {
            st.faults().set(r.route, r.fault, r.times);
            (StatusCode::CREATED, Json(st.faults().list())).into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, &format!("bad fault request: {e}")),
    }
}

async fn list_faults<T: Tenant>(State(st): State<T>) -> Response {
    Json(st.faults().list()).into_response()
}

async fn clear_faults<T: Tenant>(State(st): State<T>) -> Response {
    st.faults().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn effects<T: Tenant>(State(st): State<T>, Path(user): Path<String>) -> Response {
    match st.effects_json(&user) {
        Some(v) => Json(v).into_response(),
        None => control_error(StatusCode::NOT_FOUND, "no such user"),
    }
}

async fn fixtures<T: Tenant>(State(st): State<T>) -> Response {
    Json(st.fixtures_json()).into_response()
}

#[derive(Deserialize)]
struct ClockRequest {
    advance_seconds: i64,
}

async fn clock<T: Tenant>(State(st): State<T>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<ClockRequest>(&body) {
        Ok(r) => {
            st.core().clock.advance(r.advance_seconds);
            Json(json!({"now": T::timestamp(st.core().clock.now())})).into_response()
        }
        Err(_) => control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"advance_seconds":N}"#,
        ),
    }
}

#[derive(Deserialize)]
struct RateRequest {
    per_minute: u32,
}

async fn rate_limit<T: Tenant>(State(st): State<T>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<RateRequest>(&body) {
        Ok(r) => {
            st.core().edge().set_rate_limit(r.per_minute);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => control_error(StatusCode::BAD_REQUEST, r#"body must be {"per_minute":N}"#),
    }
}

#[derive(Deserialize)]
struct TweakRequest {
    tweak: IdTokenTweak,
}

async fn tweak<T: Tenant>(State(st): State<T>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<TweakRequest>(&body) {
        Ok(r) => {
            st.core().push_tweak(r.tweak);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, &format!("bad tweak: {e}")),
    }
}

#[derive(Deserialize)]
struct PhoneQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    msg: Option<String>,
}

/// `GET /_fake/phone[?user=…]`: the pushes waiting (not ignored), each with its number or approve button.
async fn phone_page<T: Tenant>(State(st): State<T>, Query(q): Query<PhoneQuery>) -> Response {
    let words = &T::PHONE;
    let filter = q.user.clone().unwrap_or_default();
    let pending: Vec<T::Pending> = st
        .pending_pushes()
        .into_iter()
        .filter(|p| !p.ignored())
        .filter(|p| {
            filter.is_empty() || p.user_id() == filter || p.login().eq_ignore_ascii_case(&filter)
        })
        .collect();
    let mut body = String::from("<h1>Simulated phone</h1>");
    if let Some(msg) = &q.msg {
        body.push_str(&format!("<p><strong>{}</strong></p>", html_escape(msg)));
    }
    if pending.is_empty() {
        body.push_str(words.no_pending);
    }
    for p in &pending {
        body.push_str("<div class=\"card\">");
        body.push_str(&p.card_head(T::timestamp));
        body.push_str(&format!(
            "<form method=\"post\" action=\"phone\"><input type=\"hidden\" name=\"{}\" value=\"{}\">\
<input type=\"hidden\" name=\"user\" value=\"{}\">",
            words.id_field,
            html_escape(p.id()),
            html_escape(&filter),
        ));
        if p.choices().is_empty() {
            body.push_str(&format!(
                "<button name=\"action\" value=\"approve\">{}</button>",
                words.approve
            ));
        } else {
            body.push_str(words.pick_number);
            for n in p.choices() {
                body.push_str(&format!(
                    "<button name=\"number\" value=\"{n}\">{n}</button>"
                ));
            }
        }
        body.push_str(&format!(
            "<button name=\"action\" value=\"deny\">{}</button></form></div>",
            words.deny
        ));
    }
    html_page(words.banner, "Simulated phone", &body, Some(3), PAGE_CSP)
}
