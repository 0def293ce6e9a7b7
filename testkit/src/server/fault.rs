//! Fault injection shared by the fakes: the fault kinds, route rules, the [`Faults`] handle, and the responses
//! that are the same for every vendor (a malformed body, a dropped connection).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Core;
use super::serve::ConnKill;

/// A fault to inject on matching vendor routes (Okta management API, Microsoft Graph). The error bodies are the
/// vendor's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Wait this long, then answer normally.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// 429 with the vendor's rate-limit body and headers: Okta E0000047 with `X-Rate-Limit-Remaining: 0` and a
    /// reset this many seconds ahead; Graph `TooManyRequests` with `Retry-After` of this many seconds.
    RateLimited {
        /// Seconds until the reset (`X-Rate-Limit-Reset`, `Retry-After`).
        reset_after_secs: u64,
    },
    /// A 5xx (or any status) with the vendor's error body (Okta E0000009, Graph `generalException` /
    /// `serviceNotAvailable`).
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// 200 with `Content-Type: application/json` and a truncated, unparsable body.
    MalformedJson,
    /// Close the connection without writing any response.
    DropConnection,
}

/// A fault rule: which route, what, how many more times (`None`: until cleared).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FaultRule {
    /// `*`, a route template (`/api/v1/users/{id}`) or method and template (`GET /api/v1/users/{id}`).
    pub route: String,
    pub fault: Fault,
    pub remaining: Option<u32>,
}

impl FaultRule {
    pub fn matches(&self, method: &str, template: &str) -> bool {
        let r = self.route.trim();
        if r == "*" {
            return true;
        }
        match r.split_once(' ') {
            Some((m, t)) => m.eq_ignore_ascii_case(method) && t.trim() == template,
            None => r == template,
        }
    }
}

/// Fault injection on a fake's vendor routes (Okta management API and token endpoint, Microsoft Graph).
#[derive(Clone)]
pub struct Faults {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    pub(crate) fn new(core: &Arc<Core>) -> Self {
        Self {
            core: Arc::clone(core),
        }
    }

    /// Injects `fault` on `route` for the next `times` matching requests (`None`: until cleared).
    /// `route` is `*`, a route template of the fake's own, or method and template (`GET /api/v1/users/{id}`).
    /// Okta templates: `/api/v1/users/{id}`, `/api/v1/users/{id}/factors`,
    /// `/api/v1/users/{id}/factors/{factor_id}/verify`,
    /// `/api/v1/users/{id}/factors/{factor_id}/transactions/{tx_id}`, `/api/v1/users/{id}/lifecycle/{action}`,
    /// `/oauth2/v1/token`, …; Graph templates such as `/v1.0/users/{id}` (see `FIXTURES-entra.md`).
    pub fn set(&self, route: impl Into<String>, fault: Fault, times: Option<u32>) {
        self.core.edge().faults.push(FaultRule {
            route: route.into(),
            fault,
            remaining: times,
        });
    }

    /// Injected 5xx answers carry `marker` in their `errorCauses` (`None`: the plain body), so a test can prove
    /// an upstream body never reaches the agent or the logs. Only the fake Okta's error body has such a field;
    /// the fake Entra ignores the marker.
    pub fn set_server_error_marker(&self, marker: Option<&str>) {
        self.core.set_server_error_marker(marker.map(str::to_owned));
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.core.edge().faults.clear();
    }

    /// Active fault rules as JSON.
    pub fn list(&self) -> serde_json::Value {
        serde_json::to_value(&self.core.edge().faults).unwrap_or_default()
    }
}

/// Takes the first rule matching `method` and `template`, counting it down (and dropping spent rules).
pub(crate) fn take(rules: &mut Vec<FaultRule>, method: &str, template: &str) -> Option<Fault> {
    let mut hit = None;
    if let Some(rule) = rules.iter_mut().find(|r| r.matches(method, template)) {
        hit = Some(rule.fault.clone());
        if let Some(n) = rule.remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
    }
    rules.retain(|r| r.remaining != Some(0));
    hit
}

/// 200, `Content-Type: application/json`, a truncated body starting with `prefix`.
pub(crate) fn malformed_json(prefix: &'static str) -> Response {
    let mut resp = (StatusCode::OK, prefix).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The handle a fault uses to drop the request's connection (`None` in-process: there is no connection).
pub(crate) fn conn_kill(req: &Request) -> Option<ConnKill> {
    req.extensions().get::<ConnKill>().cloned()
}

/// Drops the connection behind `kill` without a response. In-process (no connection to drop), a body that
/// fails at once.
pub(crate) async fn dropped(kill: Option<ConnKill>) -> Response {
    if let Some(kill) = kill {
        kill.0.notify_one();
        // The connection (and this future with it) is dropped; this is only a backstop.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other(
            "connection dropped by fault injection",
        ))
    });
    Response::new(Body::from_stream(stream))
}
