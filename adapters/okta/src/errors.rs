//! Translating Okta's answers into [`PortError`]. Only codes (`E0000…`, OAuth error names) and numbers ever leave
//! this module: Okta's `errorSummary` and `error_description` can echo input (logins, names) and are dropped.

use crate::http::{Op, OpKind, Resp};
use fctr_ports::PortError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// The missing permission named for `E0000006`.
pub(crate) const MISSING_ADMIN_ROLE: &str = "an Okta admin role covering this user";

/// Okta's error object; only the code and the support id are read.
#[derive(Deserialize, Default)]
struct OktaErrorBody {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    #[serde(rename = "errorId")]
    error_id: Option<String>,
}

/// The parts of an Okta error that are safe to log and branch on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OktaError {
    /// `E0000xxx`, validated; `None` when absent or not code-shaped.
    pub(crate) code: Option<String>,
    /// Okta's support id, validated.
    pub(crate) id: Option<String>,
}

impl OktaError {
    pub(crate) fn parse(body: &[u8]) -> Self {
        let b: OktaErrorBody = serde_json::from_slice(body).unwrap_or_default();
        Self {
            code: b.error_code.filter(|c| is_okta_code(c)),
            id: b.error_id.filter(|c| {
                !c.is_empty()
                    && c.len() <= 64
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            }),
        }
    }

    pub(crate) fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// `E` followed by 7 digits.
pub(crate) fn is_okta_code(c: &str) -> bool {
    c.len() == 8 && c.starts_with('E') && c[1..].chars().all(|d| d.is_ascii_digit())
}

/// An OAuth error name: lowercase letters and underscores, short. Anything else is dropped.
pub(crate) fn oauth_error_name(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .then(|| s.to_owned())
}

/// Reads the `error="…"` parameter of a `WWW-Authenticate` header, if it is code-shaped.
pub(crate) fn www_authenticate_error(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(reqwest::header::WWW_AUTHENTICATE) {
        let Ok(s) = v.to_str() else { continue };
        if let Some(i) = s.find("error=\"") {
            let rest = &s[i + 7..];
            if let Some(end) = rest.find('"') {
                if let Some(name) = oauth_error_name(&rest[..end]) {
                    return Some(name);
                }
            }
        }
    }
    None
}

/// The standard mapping, after any call-specific codes were handled by the caller.
pub(crate) fn map_error(resp: &Resp, op: &Op) -> PortError {
    let err = OktaError::parse(&resp.body);
    log_error(op, resp.status, &err);
    map_status(resp.status, &resp.headers, &err, op)
}

pub(crate) fn log_error(op: &Op, status: StatusCode, err: &OktaError) {
    tracing::warn!(
        op = op.name,
        status = status.as_u16(),
        okta_error_code = err.code.as_deref().unwrap_or("-"),
        okta_error_id = err.id.as_deref().unwrap_or("-"),
        "okta answered with an error"
    );
}

fn map_status(status: StatusCode, headers: &HeaderMap, err: &OktaError, op: &Op) -> PortError {
    let code = err.code.clone();
    match status.as_u16() {
        401 => PortError::Unauthorized,
        403 => {
            if let Some(e) = www_authenticate_error(headers) {
                if e == "insufficient_scope" || e == "invalid_scope" {
                    return PortError::Forbidden {
                        missing: Some(format!("scope {}", op.scope)),
                    };
                }
            }
            match code.as_deref() {
                Some("E0000006") => PortError::Forbidden {
                    missing: Some(MISSING_ADMIN_ROLE.to_owned()),
                },
                Some("E0000038" | "E0000032") => PortError::InvalidState,
                Some("E0000069") => PortError::AccountLocked,
                _ => PortError::Upstream { status: 403, code },
            }
        }
        404 => PortError::NotFound,
        400 if op.kind == OpKind::Lifecycle && err.is("E0000001") => PortError::InvalidState,
        // Factor not active (410 E0000154, 423 E0000180).
        410 | 423 => PortError::InvalidState,
        429 => PortError::RateLimited { retry_after: None },
        _ if err.is("E0000038") => PortError::InvalidState,
        s => PortError::Upstream { status: s, code },
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(HeaderName::from_bytes(name.as_bytes()).ok()?)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The server's `Date`, if present and parseable.
pub(crate) fn server_date(headers: &HeaderMap) -> Option<SystemTime> {
    let v = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(v).ok()
}

/// The furthest reset believed. Okta's windows are a minute long; a reset further away is nonsense (or hostile) and
/// would overflow the time arithmetic done with it, so it is read as this.
pub(crate) const MAX_RESET: Duration = Duration::from_secs(86_400);

/// Seconds until `X-Rate-Limit-Reset`, measured against the server's `Date` (or the local clock), never negative,
/// at most [`MAX_RESET`].
pub(crate) fn reset_in(headers: &HeaderMap) -> Option<Duration> {
    let reset = header_u64(headers, "x-rate-limit-reset")?;
    let now = server_date(headers).unwrap_or_else(SystemTime::now);
    let now_s = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Some(Duration::from_secs(reset.saturating_sub(now_s)).min(MAX_RESET))
}

/// How long to wait after a 429: `X-Rate-Limit-Reset − Date + 1 s`, else `Retry-After`, else 60 s; capped.
pub(crate) fn retry_after(headers: &HeaderMap, cap: Duration) -> Duration {
    let d = reset_in(headers)
        .map(|d| d + Duration::from_secs(1))
        .or_else(|| {
            let v = headers
                .get(reqwest::header::RETRY_AFTER)?
                .to_str()
                .ok()?
                .trim();
            if let Ok(secs) = v.parse::<u64>() {
                return Some(Duration::from_secs(secs));
            }
            let at = httpdate::parse_http_date(v).ok()?;
            let now = server_date(headers).unwrap_or_else(SystemTime::now);
            Some(at.duration_since(now).unwrap_or(Duration::ZERO))
        })
        .unwrap_or(Duration::from_secs(60));
    d.min(cap)
}

/// Rate-limit headers of one response.
pub(crate) fn rate_headers(headers: &HeaderMap) -> Option<(u64, u64, Duration)> {
    let limit = header_u64(headers, "x-rate-limit-limit")?;
    let remaining = header_u64(headers, "x-rate-limit-remaining")?;
    let reset = reset_in(headers)?;
    Some((limit, remaining, reset))
}

/// Maps a transport error without ever formatting it (its `Display` carries the URL, which holds ids and
/// search text). `Unavailable` means the request never left; `Timeout` means the outcome is unknown.
///
/// `egress` is the path in words (`via proxy host:port`): a proxy that cannot be reached or refuses the tunnel is
/// a transport error like an org that cannot be reached, so the log names the path tried.
pub(crate) fn transport_error(op: &Op, e: &reqwest::Error, egress: &str) -> PortError {
    let kind = if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    tracing::warn!(
        op = op.name,
        transport_error = kind,
        egress,
        "okta request failed"
    );
    if e.is_connect() {
        PortError::Unavailable
    } else if e.is_timeout() {
        PortError::Timeout
    } else {
        PortError::Unavailable
    }
}

/// A response body that could not be understood. The serde error is not formatted (it can quote the input);
/// only its category and position are logged.
pub(crate) fn malformed(op: &Op, e: Option<&serde_json::Error>) -> PortError {
    match e {
        Some(e) => tracing::warn!(
            op = op.name,
            category = ?e.classify(),
            line = e.line(),
            column = e.column(),
            "okta response could not be parsed"
        ),
        None => tracing::warn!(op = op.name, "okta response is missing a required field"),
    }
    PortError::Malformed
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn retry_after_uses_reset_minus_date_plus_one() {
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = headers(&[
            ("date", &httpdate::fmt_http_date(date)),
            ("x-rate-limit-reset", "1700000007"),
        ]);
        assert_eq!(
            retry_after(&h, Duration::from_secs(300)),
            Duration::from_secs(8)
        );
        assert_eq!(
            retry_after(&h, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        // Reset in the past: one second.
        let h = headers(&[
            ("date", &httpdate::fmt_http_date(date)),
            ("x-rate-limit-reset", "1699999990"),
        ]);
        assert_eq!(
            retry_after(&h, Duration::from_secs(300)),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "12")]), Duration::from_secs(300)),
            Duration::from_secs(12)
        );
        assert_eq!(
            retry_after(&HeaderMap::new(), Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(
            retry_after(
                &headers(&[("x-rate-limit-reset", "garbage")]),
                Duration::from_secs(300)
            ),
            Duration::from_secs(60)
        );
    }

    /// Regression: a reset far in the future (or a `Date` in 1970) overflowed `Duration` in `retry_after` and
    /// `Instant`/`DateTime` in the transport's budget bookkeeping, panicking the request. Found while writing
    /// the `okta_json` fuzz target, which covers these readers.
    #[test]
    fn absurd_rate_limit_resets_do_not_overflow() {
        for (date, reset) in [
            ("Thu, 01 Jan 1970 00:00:00 GMT", "18446744073709551615"),
            ("Sun, 29 Nov 2026 07:00:00 GMT", "18446744073709551615"),
            ("Sun, 29 Nov 2026 07:00:00 GMT", "9000000000000000"),
            ("Sun, 29 Nov 2026 07:00:00 GMT", "90000000000000"),
        ] {
            let h = headers(&[
                ("date", date),
                ("x-rate-limit-limit", "600"),
                ("x-rate-limit-remaining", "0"),
                ("x-rate-limit-reset", reset),
            ]);
            assert_eq!(
                retry_after(&h, Duration::from_secs(300)),
                Duration::from_secs(300)
            );
            let (_, _, r) = rate_headers(&h).unwrap();
            assert!(r <= MAX_RESET, "{reset}");
            // What `Transport::observe` does with it.
            let _ = std::time::Instant::now() + r;
            let _ = chrono::Utc::now() + chrono::Duration::from_std(r).unwrap_or_default();
        }
    }

    #[test]
    fn error_body_keeps_codes_only() {
        let e = OktaError::parse(
            br#"{"errorCode":"E0000068","errorSummary":"canary@example.com","errorId":"oae123"}"#,
        );
        assert_eq!(e.code.as_deref(), Some("E0000068"));
        assert_eq!(e.id.as_deref(), Some("oae123"));
        let e = OktaError::parse(br#"{"errorCode":"canary@example.com","errorId":"a b"}"#);
        assert_eq!(e, OktaError::default());
        assert_eq!(OktaError::parse(b"not json"), OktaError::default());
    }

    #[test]
    fn www_authenticate_error_is_code_shaped_only() {
        let h = headers(&[(
            "www-authenticate",
            r#"Bearer authorization_uri="x", realm="IdP", scope="okta.users.manage", error="insufficient_scope", error_description="canary""#,
        )]);
        assert_eq!(
            www_authenticate_error(&h).as_deref(),
            Some("insufficient_scope")
        );
        let h = headers(&[("www-authenticate", r#"Bearer error="Canary Person""#)]);
        assert_eq!(www_authenticate_error(&h), None);
    }
}
