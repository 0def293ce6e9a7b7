//! How refusals and pages are rendered, for every layer above: the JSON error envelope of the API (`json`) and
//! the HTML frame, refusal and sign-in pages of the portal (`html`). A denial is mapped to an HTTP status in one
//! place, `denial_status`.
//!
//! Layering: depends on `state` and `session` only, so the edge, `auth`, the pages and the API can all use it.

pub(crate) mod html;
pub(crate) mod json;

pub(crate) use html::render;
pub(crate) use json::envelope_errors;
pub use json::{ApiError, ErrorBody, ErrorDetail};

use axum::http::StatusCode;
use fctr_ports::Reason;

/// The HTTP status for a refusal.
pub(crate) fn denial_status(r: Reason) -> StatusCode {
    match r {
        Reason::RateLimited | Reason::VerificationLocked => StatusCode::TOO_MANY_REQUESTS,
        Reason::TargetNotFound | Reason::VerificationNotFound | Reason::ApprovalNotFound => {
            StatusCode::NOT_FOUND
        }
        Reason::ApprovalPending => StatusCode::ACCEPTED,
        Reason::ApprovalAlreadyDecided | Reason::ApprovalExpired => StatusCode::CONFLICT,
        Reason::InvalidInput => StatusCode::BAD_REQUEST,
        Reason::IdpError => StatusCode::BAD_GATEWAY,
        Reason::AuditUnavailable | Reason::StateUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Reason::AuthenticationFailed => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}
