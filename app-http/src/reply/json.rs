//! The API's error envelope: `{"error": {"code", "message", "retry_after"}}` with a stable code, the status from
//! [`super::denial_status`], `Retry-After` when a retry can succeed, and `WWW-Authenticate: Bearer` on 401. Never
//! a stack trace or upstream text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fctr_core::Denial;
use fctr_ports::Reason;
use serde::Serialize;
use utoipa::ToSchema;

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    retry_after: Option<u64>,
}

/// The error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's fields.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code (the engine's reason codes, or `unauthenticated`).
    pub code: String,
    /// Words for a person.
    pub message: String,
    /// Seconds until a retry can succeed (rate limits, lockouts).
    pub retry_after: Option<u64>,
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        Self {
            status: super::denial_status(d.reason),
            code: d.reason.as_str(),
            message: d.message(),
            retry_after: d.retry_after_secs(),
        }
    }
}

impl ApiError {
    /// No valid bearer token or session (401 with `WWW-Authenticate: Bearer`).
    pub(crate) fn unauthenticated() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: "A valid bearer token or session is required.",
            retry_after: None,
        }
    }
    /// A refusal for `r`, with the engine's words.
    pub(crate) fn reason(r: Reason) -> Self {
        Denial::new(r).into()
    }
    /// A refusal decided at the edge (allow-list, CSRF, rate limit).
    pub(crate) fn edge(status: StatusCode, r: Reason, retry_after: Option<u64>) -> Self {
        Self {
            status,
            code: r.as_str(),
            message: Denial::new(r).message(),
            retry_after,
        }
    }
    /// A request body that is not JSON.
    pub(crate) fn unsupported_media_type() -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "Request bodies must be application/json.",
            retry_after: None,
        }
    }
}

impl ApiError {
    /// No such API route (404 `not_found`).
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "No such API route.",
            retry_after: None,
        }
    }
    /// A request body that is not JSON at all (400 `malformed_json`): bad syntax, cut short, not UTF-8, or
    /// missing where one is required. Never says where or what, so nothing of the input comes back.
    pub(crate) fn malformed_json() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_json",
            message: "The request body is not valid JSON.",
            retry_after: None,
        }
    }
    /// A JSON body of the wrong shape (422 `invalid_body`): not an object, a missing or unknown field, a field of
    /// the wrong type. The OpenAPI document has the shape; the error does not repeat the input.
    pub(crate) fn invalid_body() -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_body",
            message: "The request body does not match the schema of this operation.",
            retry_after: None,
        }
    }
    /// A request body over the configured limit (413 `body_too_large`).
    pub(crate) fn body_too_large() -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "body_too_large",
            message: "The request body is larger than this server accepts.",
            retry_after: None,
        }
    }

    /// The envelope for an error response the framework or a middleware produced on an API path (no handler
    /// chose the words), by status alone: see [`envelope_errors`].
    fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            404 => return Self::not_found(),
            413 => return Self::body_too_large(),
            415 => return Self::unsupported_media_type(),
            422 => return Self::invalid_body(),
            405 => (
                "method_not_allowed",
                "This API route does not take that method (see the Allow header).",
            ),
            408 => ("request_timeout", "The request took too long."),
            s if s >= 500 => ("internal_error", "Internal error."),
            _ => ("bad_request", "The request was refused."),
        };
        Self {
            status,
            code,
            message,
            retry_after: None,
        }
    }
}

/// Middleware: on `/api/` paths, an error response that is not already the JSON envelope (axum's 405, the
/// body-limit layer's 413, the timeout layer's 408, the panic handler's 500, a route-less 404) is replaced by the
/// envelope for its status. The original body is dropped unread, so whatever the framework wrote about the input
/// never reaches the client. Headers the client needs (`Allow`, `Retry-After`) are kept.
pub(crate) async fn envelope_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let head = req.method() == axum::http::Method::HEAD;
    let resp = next.run(req).await;
    let status = resp.status();
    if !api || head || !(status.is_client_error() || status.is_server_error()) || is_json(&resp) {
        return resp;
    }
    let mut fixed = ApiError::for_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = resp.headers().get(&name) {
            fixed.headers_mut().insert(name, v.clone());
        }
    }
    fixed
}

fn is_json(r: &Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.to_owned(),
                retry_after: self.retry_after,
            },
        };
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}
