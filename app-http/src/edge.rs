//! The network edge: what runs before any handler. The client address (`X-Forwarded-For` believed only from a
//! trusted proxy), the IP allow-list, the per-IP sign-in rate limit, the cross-site check on state-changing
//! requests that carry a session cookie, and strict content types on the API.
//!
//! Every refusal here is audited through [`fctr_core::Engine::audit_edge_denial`] with the client address
//! truncated by the audit builder (a /24 or a /48), never the full address. Refusals for the IP allow-list are
//! audited at most [`DENIAL_AUDITS_PER_MINUTE`] times a minute per truncated address, so a scan from outside
//! cannot fill the audit log; each is still counted in `fctr_edge_denials_total`.
//!
//! Layering: this module depends on `state`, `net` and `reply` only (never on the pages, the API or `auth`).

pub use crate::net::{ClientIp, EdgeSettings, check_transport, parse_cidrs};

use crate::reply::{self, ApiError};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use fctr_core::RequestContext;
use fctr_ports::{RateDecision, RateKey, RateRule, Reason, RequestId, TruncatedIp};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How many IP allow-list refusals per truncated address per minute reach the audit log.
pub const DENIAL_AUDITS_PER_MINUTE: u32 = 10;

/// The audit context of a request: its request id and the client address the edge resolved.
pub(crate) fn request_context(parts: &axum::http::request::Parts) -> RequestContext {
    RequestContext {
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| RequestId::parse(v.to_owned()).ok()),
        client_ip: parts.extensions.get::<ClientIp>().map(|c| c.0),
        ticket: None,
    }
}

fn context(req: &Request, client_ip: Option<IpAddr>) -> RequestContext {
    RequestContext {
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| RequestId::parse(v.to_owned()).ok()),
        client_ip,
        ticket: None,
    }
}

fn rate_key(parts: &[&str]) -> Option<RateKey> {
    RateKey::parse(parts.join(":")).ok()
}

/// Counts a hit; `Some(retry_after)` when over the limit. A limiter failure fails closed.
pub(crate) async fn over_limit(
    st: &AppState,
    key: Option<RateKey>,
    limit: u32,
    window: Duration,
) -> Option<Duration> {
    let Some(key) = key else {
        return Some(window);
    };
    match st
        .0
        .edge_limiter
        .hit(&key, RateRule { limit, window })
        .await
    {
        Ok(RateDecision::Allowed { .. }) => None,
        Ok(RateDecision::Limited { retry_after }) => Some(retry_after),
        Err(_) => Some(window),
    }
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn denial(
    st: &AppState,
    path: &str,
    status: StatusCode,
    reason: Reason,
    retry_after: Option<Duration>,
) -> Response {
    let secs = retry_after.map(|d| d.as_secs().max(1));
    let mut r = if is_api(path) {
        ApiError::edge(status, reason, secs).into_response()
    } else {
        reply::html::refusal_page(
            reply::html::Chrome::signed_out(st.settings()),
            &fctr_core::Denial::new(reason),
            status,
            secs,
        )
    };
    if let Some(s) = secs {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    ::metrics::counter!("fctr_edge_denials_total", "reason" => reason.as_str()).increment(1);
    r
}

/// The same-origin check every state-changing request riding on a session cookie must pass, here at the edge
/// and again with the session-bound token in `auth::csrf` (one function for both): `Origin`, when sent, is
/// exactly the public origin, and `Sec-Fetch-Site`, when sent, is `same-origin` or `none`.
///
/// `Referrer-Policy: no-referrer` makes browsers send `Origin: null` on form POSTs (Fetch spec, "serializing a
/// request origin"); that is accepted only when the browser itself says the request is same-origin (page script
/// cannot set `Sec-Fetch-Site`).
pub(crate) fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some("null") => fetch_site == Some("same-origin"),
        Some(o) => o == origin,
        None => true,
    };
    let fetch_ok = fetch_site.is_none_or(|s| s == "same-origin" || s == "none");
    origin_ok && fetch_ok
}

/// The edge middleware (see the module docs). Runs before routing, so it guards every route, the fallback
/// included.
pub(crate) async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let edge = &st.settings().edge;
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        // Served without connection info: the allow-list cannot be checked, so nothing is served.
        tracing::error!(
            "no peer address: serve with into_make_service_with_connect_info::<SocketAddr>()"
        );
        return denial(
            &st,
            &path,
            StatusCode::FORBIDDEN,
            Reason::IpNotAllowed,
            None,
        );
    };
    let client = edge.client_ip(peer, req.headers());
    // A caller opens a sign-in link from their own device, wherever it is: the link pages (and the stylesheet
    // and icon they use) are outside the allow-list, and rate-limited like the agents' sign-in below.
    let caller_page =
        path.starts_with("/link/") || path == "/static/app.css" || path == "/static/favicon.svg";
    let allowed = caller_page || client.is_some_and(|ip| edge.allows(ip));
    if !allowed {
        let audited_ip = client.unwrap_or(peer);
        let t = TruncatedIp::from_ip(audited_ip);
        tracing::warn!(
            client = t.as_str(),
            "refused: address not on the allow-list"
        );
        let throttle = rate_key(&["edge", "audit", "ip_not_allowed", t.as_str()]);
        if over_limit(
            &st,
            throttle,
            DENIAL_AUDITS_PER_MINUTE,
            Duration::from_secs(60),
        )
        .await
        .is_none()
        {
            st.engine()
                .audit_edge_denial(None, Reason::IpNotAllowed, &context(&req, Some(audited_ip)))
                .await;
        }
        return denial(
            &st,
            &path,
            StatusCode::FORBIDDEN,
            Reason::IpNotAllowed,
            None,
        );
    }
    let client = client.unwrap_or(peer);
    req.extensions_mut().insert(ClientIp(client));

    let link = path.starts_with("/link/");
    if path == "/auth/login" || path == "/auth/callback" || link {
        let t = TruncatedIp::from_ip(client);
        // The callers' link pages count in a bucket of their own: reachable from anywhere, they must not use up
        // the agents' sign-in budget of a shared address.
        let bucket = if link { "link" } else { "sign_in" };
        let key = rate_key(&["edge", bucket, "ip", t.as_str()]);
        if let Some(retry) = over_limit(
            &st,
            key,
            edge.sign_in_per_ip_per_minute,
            Duration::from_secs(60),
        )
        .await
        {
            tracing::warn!(client = t.as_str(), bucket, "sign-in rate limit");
            // Audited at most DENIAL_AUDITS_PER_MINUTE times a minute per address: a flood writes no flood of
            // audit events.
            let throttle = rate_key(&["edge", "audit", "rate_limited", t.as_str()]);
            if over_limit(
                &st,
                throttle,
                DENIAL_AUDITS_PER_MINUTE,
                Duration::from_secs(60),
            )
            .await
            .is_none()
            {
                st.engine()
                    .audit_edge_denial(None, Reason::RateLimited, &context(&req, Some(client)))
                    .await;
            }
            return denial(
                &st,
                &path,
                StatusCode::TOO_MANY_REQUESTS,
                Reason::RateLimited,
                Some(retry),
            );
        }
    }

    let unsafe_method = !matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if unsafe_method {
        // Cross-site requests riding on the session cookie are refused here, before any handler; the handlers
        // then check the session-bound token. Bearer-token API calls carry no ambient credential: exempt.
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "));
        let sid = CookieJar::from_headers(req.headers())
            .get(st.settings().session_cookie())
            .map(|c| c.value().to_owned());
        if let Some(sid) = sid.filter(|_| !bearer) {
            if !same_origin(req.headers(), &st.settings().origin()) {
                let agent = match st.sessions().get(&sid).await.ok().flatten() {
                    Some(s) => Some(
                        st.engine()
                            .restore_agent(s.agent.clone(), s.role.as_deref()),
                    ),
                    None => None,
                };
                tracing::warn!("CSRF: cross-site state-changing request refused");
                st.engine()
                    .audit_edge_denial(
                        agent.as_ref(),
                        Reason::CsrfRejected,
                        &context(&req, Some(client)),
                    )
                    .await;
                return denial(
                    &st,
                    &path,
                    StatusCode::FORBIDDEN,
                    Reason::CsrfRejected,
                    None,
                );
            }
        }
        if is_api(&path) && !json_or_empty(req.headers()) {
            return ApiError::unsupported_media_type().into_response();
        }
    }
    // The request metrics, here rather than as a layer of their own (one boxed future less per request).
    crate::track(req, next).await
}

/// An API request body must be JSON; an empty body (no content type, no length or zero) is fine.
fn json_or_empty(h: &HeaderMap) -> bool {
    let ct = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match ct {
        Some(ct) => {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
        }
        None => {
            let len = h
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            len == Some(0) || (len.is_none() && !h.contains_key(header::TRANSFER_ENCODING))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn api_bodies_must_be_json() {
        let mut h = HeaderMap::new();
        assert!(json_or_empty(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!json_or_empty(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(json_or_empty(&h));
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        assert!(!json_or_empty(&h));
    }
}
