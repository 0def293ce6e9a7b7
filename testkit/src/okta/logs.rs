//! The System Log (`GET /api/v1/logs`): every admin change the fake serves is recorded with the calling client
//! as its actor, and [`FakeOktaState::console_change`] records one "made in the Admin Console" by a named admin.
//!
//! Served: `since`/`until` (on `published`), `filter` (only `eventType eq "…"` joined by `or`, which is what
//! fctr sends), `limit` (default 100, at most 1000), `after` (the cursor in the `Link: <…>; rel="next"` header),
//! `sortOrder` (ASCENDING only). Needs scope `okta.logs.read` (403 with `insufficient_scope` otherwise).

use axum::Json;
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::FakeOktaState;
use super::auth::{Need, authorize};
use super::error::OktaError;
use super::state::Shared;
use super::util::random_id;

/// Who a recorded change is attributed to.
#[derive(Debug, Clone)]
pub(crate) enum LogActor {
    /// The service app (a Bearer/DPoP token): `PublicClientApp` with the client id.
    App(String),
    /// A person: an SSWS token's owner, or an admin in the console.
    User { id: String, login: String },
}

/// One System Log entry.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub uuid: String,
    pub published: DateTime<Utc>,
    pub event_type: String,
    pub actor: LogActor,
    pub target_id: String,
    pub seq: u64,
}

impl LogEntry {
    fn json(&self) -> Value {
        let actor = match &self.actor {
            LogActor::App(id) => json!({
                "id": id, "type": "PublicClientApp", "alternateId": id, "displayName": "fctr service app",
                "detailEntry": null
            }),
            LogActor::User { id, login } => json!({
                "id": id, "type": "User", "alternateId": login, "displayName": login, "detailEntry": null
            }),
        };
        json!({
            "uuid": self.uuid,
            "published": self.published.to_rfc3339_opts(SecondsFormat::Millis, true),
            "eventType": self.event_type,
            "version": "0",
            "severity": "INFO",
            "displayMessage": self.event_type,
            "legacyEventType": null,
            "actor": actor,
            "client": {"userAgent": null, "zone": "null", "device": "Unknown", "id": null, "ipAddress": "127.0.0.1"},
            "outcome": {"result": "SUCCESS", "reason": null},
            "target": [{"id": self.target_id, "type": "User", "alternateId": "redacted", "displayName": "redacted", "detailEntry": null}],
            "transaction": {"type": "WEB", "id": random_id(12), "detail": {}},
            "debugContext": {"debugData": {}},
            "authenticationContext": {"authenticationStep": 0, "externalSessionId": "unknown"},
            "securityContext": {}
        })
    }
}

/// The SSWS token's owner as the log names them.
pub(crate) const API_TOKEN_ADMIN_ID: &str = "00uapitokenadmin0001";
const API_TOKEN_ADMIN_LOGIN: &str = "api-token-admin@example.com";

/// Who is calling, from the `Authorization` header already accepted by [`authorize`].
pub(crate) fn caller(st: &Shared, headers: &HeaderMap) -> LogActor {
    let scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("ssws") => LogActor::User {
            id: API_TOKEN_ADMIN_ID.into(),
            login: API_TOKEN_ADMIN_LOGIN.into(),
        },
        _ => LogActor::App(st.cfg.service_client_id.clone()),
    }
}

/// Records one change.
pub(crate) fn record(st: &Shared, actor: LogActor, event_type: &str, target_id: &str) {
    let now = st.now();
    let mut inner = st.lock();
    let seq = inner.system_log.len() as u64;
    inner.system_log.push(LogEntry {
        uuid: random_id(20),
        published: now,
        event_type: event_type.into(),
        actor,
        target_id: target_id.into(),
        seq,
    });
}

fn param_time(q: &[(String, String)], name: &str) -> Result<Option<DateTime<Utc>>, OktaError> {
    match q.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| OktaError::validation(name, format!("{name}: Invalid date."))),
    }
}

/// Parses `eventType eq "a" or eventType eq "b"`; anything else is a 400 (the fake serves what fctr sends).
fn event_types(filter: &str) -> Result<Vec<String>, OktaError> {
    filter
        .split(" or ")
        .map(|part| {
            part.trim()
                .strip_prefix("eventType eq \"")
                .and_then(|r| r.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
                .map(str::to_owned)
                .ok_or_else(|| OktaError::validation("filter", "Invalid filter expression."))
        })
        .collect()
}

pub(crate) async fn list_logs(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, OktaError> {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Logs)?;
    let q: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let since = param_time(&q, "since")?;
    let until = param_time(&q, "until")?;
    let types = get("filter").map(event_types).transpose()?;
    let limit: usize = match get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| OktaError::validation("limit", "limit: Invalid value."))?,
    };
    if get("sortOrder").is_some_and(|s| s != "ASCENDING") {
        return Err(OktaError::validation(
            "sortOrder",
            "the fake serves ASCENDING only",
        ));
    }
    let after: Option<u64> = match get("after") {
        None => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| OktaError::validation("after", "after: Invalid cursor."))?,
        ),
    };
    let entries: Vec<LogEntry> = st
        .shared
        .lock()
        .system_log
        .iter()
        .filter(|e| after.is_none_or(|a| e.seq > a))
        .filter(|e| since.is_none_or(|s| e.published >= s))
        .filter(|e| until.is_none_or(|u| e.published < u))
        .filter(|e| types.as_ref().is_none_or(|t| t.contains(&e.event_type)))
        .take(limit + 1)
        .cloned()
        .collect();
    let more = entries.len() > limit;
    let page: Vec<&LogEntry> = entries.iter().take(limit).collect();
    let body: Vec<Value> = page.iter().map(|e| e.json()).collect();
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    // A bounded query ends; the next link is sent only while more entries are waiting.
    if let (true, Some(last)) = (more, page.last()) {
        let Ok(mut next) = url::Url::parse(&format!("{}/api/v1/logs", st.shared.cfg.base())) else {
            return Ok(resp);
        };
        {
            let mut qp = next.query_pairs_mut();
            for (k, v) in q.iter().filter(|(k, _)| k != "after") {
                qp.append_pair(k, v);
            }
            qp.append_pair("after", &last.seq.to_string());
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
    Ok(resp)
}

impl FakeOktaState {
    /// Records a change "made in the Admin Console" by the admin `admin_login` (a seeded user's login, or any
    /// login: the actor id is then made up), to user `user_id`, as System Log `event_type` (e.g.
    /// `user.account.reset_password`). It does not change the user: it is what the log would show.
    pub fn console_change(&self, admin_login: &str, user_id: &str, event_type: &str) {
        let admin_id = {
            let inner = self.shared.lock();
            inner
                .user_idx_by_any(admin_login)
                .map(|i| inner.users[i].id.clone())
                .unwrap_or_else(|| format!("00uconsole{}", random_id(10)))
        };
        record(
            &self.shared,
            LogActor::User {
                id: admin_id,
                login: admin_login.into(),
            },
            event_type,
            user_id,
        );
    }

    /// How many System Log entries are recorded (of every type).
    #[must_use]
    pub fn system_log_len(&self) -> usize {
        self.shared.lock().system_log.len()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsoleChange {
    admin: String,
    user: String,
    #[serde(rename = "eventType")]
    event_type: String,
}

/// `POST /_fake/console-change {"admin": "<login>", "user": "<user id>", "eventType": "user.account.reset_password"}`:
/// [`FakeOktaState::console_change`] from outside the process.
pub(crate) async fn console_change(
    State(st): State<FakeOktaState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<ConsoleChange>(&body) {
        Ok(r) if !r.admin.is_empty() && !r.user.is_empty() && r.event_type.starts_with("user.") => {
            st.console_change(&r.admin, &r.user, &r.event_type);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": r#"body must be {"admin": "...", "user": "...", "eventType": "user.…"}"#})),
        )
            .into_response(),
    }
}
