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
