//! Translating Graph, transport and header facts into [`PortError`]. Only codes are read from error bodies: Graph's
//! `message` can echo input (a UPN, a search term) and never reaches an error or a log.

use fctr_ports::PortError;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// What the failing call needed, for [`PortError::Forbidden`]'s `missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Needs(pub(crate) &'static str);

pub(crate) const USER_READ: Needs = Needs("Graph application permission User.Read.All");
pub(crate) const METHODS_READ: Needs =
    Needs("Graph application permission UserAuthenticationMethod.Read.All");
pub(crate) const METHODS_WRITE: Needs =
    Needs("Graph application permission UserAuthenticationMethod.ReadWrite.All");
pub(crate) const TAP_WRITE: Needs = Needs(
    "Graph application permission UserAuthMethod-TAP.ReadWrite.All (or UserAuthenticationMethod.ReadWrite.All)",
);
pub(crate) const GROUPS_READ: Needs = Needs(
    "Graph application permission GroupMember.Read.All with User.Read.All (or Directory.Read.All)",
);
pub(crate) const REVOKE: Needs = Needs("Graph application permission User.RevokeSessions.All");
pub(crate) const PASSWORD: Needs = Needs(
    "Graph application permission User-PasswordProfile.ReadWrite.All and the User Administrator role on the app \
     (Privileged Authentication Administrator for admin targets)",
);
pub(crate) const AUDIT_READ: Needs =
    Needs("Graph application permissions AuditLog.Read.All and Directory.Read.All");
pub(crate) const ENABLE_DISABLE: Needs = Needs(
    "Graph application permission User.EnableDisableAccount.All (with User.Read.All) and a role covering the user",
);

/// A factor reset that stopped part-way: some authentication methods were deleted, then Graph refused or failed
/// (or, for a method Graph kept refusing with 400, every other one was gone and it still refused). Returned inside
/// [`PortError::Unexpected`] so the engine audits the action as failed; nothing is retried automatically.
///
/// It carries counts and the cause (a [`PortError`], codes only), never a method id, type or detail.
#[derive(Debug, thiserror::Error)]
#[error(
    "the Entra factor reset was partial: {removed} of {total} authentication methods were removed, then it stopped"
)]
pub struct PartialFactorReset {
    removed: usize,
    total: usize,
    #[source]
    cause: PortError,
}

impl PartialFactorReset {
    pub(crate) fn new(removed: usize, total: usize, cause: PortError) -> Self {
        Self {
            removed,
            total,
            cause,
        }
    }

    /// Methods deleted before the reset stopped.
    #[must_use]
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// Methods the reset set out to delete (every method but the password).
    #[must_use]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Why it stopped.
    #[must_use]
    pub fn cause(&self) -> &PortError {
        &self.cause
    }
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphErrorInner,
}

#[derive(Deserialize)]
struct GraphErrorInner {
    #[serde(default)]
    code: Option<String>,
}

/// A vendor code we are willing to carry: letters, digits, `_`, `.`, `-`, at most 64.
pub(crate) fn safe_token(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    ok.then(|| s.to_owned())
}

/// Graph's `error.code`, if the body is a Graph error object and the code is well formed.
pub(crate) fn graph_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<GraphErrorBody>(body)
        .ok()
        .and_then(|b| b.error.code)
        .as_deref()
        .and_then(safe_token)
}

/// Maps a non-success Graph answer. 401 is handled by the caller (one token refresh) and lands here only when
/// it persists.
pub(crate) fn graph_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    needs: Needs,
) -> PortError {
    let code = graph_code(body);
    match status.as_u16() {
        401 => PortError::Unauthorized,
        403 => {
            if code.as_deref() == Some("insufficient_claims") {
                PortError::Forbidden {
                    missing: Some("a Conditional Access requirement for the app".to_owned()),
                }
            } else {
                PortError::Forbidden {
                    missing: Some(needs.0.to_owned()),
                }
            }
        }
        404 => PortError::NotFound,
        429 => PortError::RateLimited {
            retry_after: retry_after(headers),
        },
        s => PortError::Upstream { status: s, code },
    }
}

/// Classifies a transport error without formatting it (its text carries the URL, which can carry a UPN).
pub(crate) fn transport_error(e: &reqwest::Error) -> PortError {
    if e.is_timeout() {
        PortError::Timeout
    } else if e.is_decode() {
        PortError::Malformed
    } else {
        PortError::Unavailable
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn codes_only_never_messages() {
        let body = br#"{"error":{"code":"Authorization_RequestDenied","message":"canary@example.com is bad","innerError":{"date":"x"}}}"#;
        let e = graph_error(StatusCode::FORBIDDEN, &HeaderMap::new(), body, REVOKE);
        let s = format!("{e} {e:?}");
        assert!(s.contains("User.RevokeSessions.All"));
        assert!(!s.contains("canary"));
        let e = graph_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"error":{"code":"bad code with spaces","message":"x"}}"#,
            USER_READ,
        );
        assert!(matches!(
            e,
            PortError::Upstream {
                status: 400,
                code: None
            }
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let future = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(future)).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
