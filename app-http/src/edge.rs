//! The network edge: what runs before any handler. The client address (`X-Forwarded-For` believed only from a
//! trusted proxy), the IP allow-list, the per-IP sign-in rate limit, the cross-site check on state-changing
//! requests that carry a session cookie, and strict content types on the API.
//!
//! Every refusal here is audited through [`fctr_core::Engine::audit_edge_denial`] with the client address
//! truncated by the audit builder (a /24 or a /48), never the full address. Refusals for the IP allow-list are
//! audited at most [`DENIAL_AUDITS_PER_MINUTE`] times a minute per truncated address, so a scan from outside
//! cannot fill the audit log; each is still counted in `fctr_edge_denials_total`.

use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fctr_core::RequestContext;
use fctr_ports::{RateDecision, RateKey, RateRule, Reason, RequestId, TruncatedIp};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// How many IP allow-list refusals per truncated address per minute reach the audit log.
pub const DENIAL_AUDITS_PER_MINUTE: u32 = 10;

/// The edge's settings, from `[network]` and `[limits]`.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Who may reach the portal at all.
    pub allow: Vec<IpNet>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `/auth/login` and `/auth/callback` per truncated client IP per minute.
    pub sign_in_per_ip_per_minute: u32,
    /// API requests per agent per minute.
    pub api_per_agent_per_minute: u32,
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Time allowed to produce a response.
    pub request_timeout: Duration,
}

/// Loopback and the private ranges: an internal tool is not on the internet unless someone says so.
const DEFAULT_ALLOW: [&str; 6] = [
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
];

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            allow: DEFAULT_ALLOW
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            trusted_proxies: Vec::new(),
            sign_in_per_ip_per_minute: 30,
            api_per_agent_per_minute: 120,
            body_limit_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl EdgeSettings {
    /// Whether `ip` is on the allow-list.
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow.iter().any(|n| n.contains(&ip))
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The client address: the TCP peer, or, when the peer is a trusted proxy, the first address in
    /// `X-Forwarded-For` that is not a trusted proxy, reading from the right (the entries to its left were
    /// written by the client and prove nothing). `None` when the proxy chain holds an unparsable entry where the
    /// client should be.
    #[must_use]
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if !self.trusted(peer) {
            return Some(peer);
        }
        // Every X-Forwarded-For line, in order, as one list.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let ip = parse_hop(hop)?.to_canonical();
            client = ip;
            if !self.trusted(ip) {
                return Some(ip);
            }
        }
        // Only trusted hops: the leftmost one is the best we know.
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an address, `v4:port` or `[v6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if hop.len() > 64 {
        return None;
    }
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Parses CIDRs (a bare address is a /32 or /128).
///
/// # Errors
/// The first entry that is neither a CIDR nor an address, in words.
pub fn parse_cidrs(v: &[String]) -> Result<Vec<IpNet>, String> {
    v.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{s:?} is not a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32) or an address")
                })
        })
        .collect()
}

/// Plain HTTP is for loopback, or behind a TLS-terminating proxy whose address is trusted.
///
/// # Errors
/// What to set, in words.
pub fn check_transport(
    listen: SocketAddr,
    tls: bool,
    behind_tls_proxy: bool,
    has_trusted_proxies: bool,
) -> Result<(), String> {
    if behind_tls_proxy && !has_trusted_proxies {
        return Err("server.behind_tls_proxy = true needs network.trusted_proxies (the proxy's addresses): \
             without it the allow-list and the per-IP limits would see only the proxy"
            .into());
    }
    if tls || behind_tls_proxy || listen.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing plain HTTP on {listen}: add a [tls] section (cert_file, key_file), set \
         server.behind_tls_proxy = true when a TLS-terminating proxy is in front, or listen on loopback"
    ))
}

/// The client address the edge resolved, for handlers and the audit context.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The audit context of a request: its request id and the client address the edge resolved.
pub(crate) fn request_context(parts: &axum::http::request::Parts) -> RequestContext {
    RequestContext {
        request_id: parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| RequestId::parse(v.to_owned()).ok()),
        client_ip: parts.extensions.get::<ClientIp>().map(|c| c.0),
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
        crate::api::ApiError::edge(status, reason, secs).into_response()
    } else {
        let d = fctr_core::Denial::new(reason);
        let demo = st.settings().demo.as_ref();
        let page = crate::web::MessagePage {
            c: crate::web::Chrome {
                demo: demo.is_some(),
                phone_url: demo.map(|d| d.phone_url.to_string()),
                ..crate::web::Chrome::default()
            },
            tone: "bad",
            heading: "Refused".into(),
            message: d.message().into(),
            remedy: d.remedy().into(),
            reason: reason.as_str().into(),
            retry_after: secs,
            back: String::new(),
            back_label: String::new(),
        };
        crate::web::render(status, &page)
    };
    if let Some(s) = secs {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    ::metrics::counter!("fctr_edge_denials_total", "reason" => reason.as_str()).increment(1);
    r
}

fn same_site(headers: &HeaderMap, origin: &str) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // `Referrer-Policy: no-referrer` makes browsers send `Origin: null` on form POSTs; accept it only when the
        // browser itself says the request is same-origin (page script cannot set `Sec-Fetch-Site`).
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
    let allowed = client.is_some_and(|ip| edge.allows(ip));
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

    if path == "/auth/login" || path == "/auth/callback" {
        let t = TruncatedIp::from_ip(client);
        let key = rate_key(&["edge", "sign_in", "ip", t.as_str()]);
        if let Some(retry) = over_limit(
            &st,
            key,
            edge.sign_in_per_ip_per_minute,
            Duration::from_secs(60),
        )
        .await
        {
            tracing::warn!(client = t.as_str(), "sign-in rate limit");
            st.engine()
                .audit_edge_denial(None, Reason::RateLimited, &context(&req, Some(client)))
                .await;
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
        let sid =
            crate::web::cookie(req.headers(), st.settings().session_cookie()).map(str::to_owned);
        if let Some(sid) = sid.filter(|_| !bearer) {
            if !same_site(req.headers(), &st.settings().origin()) {
                let agent = match st.sessions().get(&sid).await {
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
            return crate::api::ApiError::unsupported_media_type().into_response();
        }
    }
    next.run(req).await
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

    fn settings(trusted: &[&str]) -> EdgeSettings {
        EdgeSettings {
            trusted_proxies: parse_cidrs(
                &trusted.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )
            .unwrap(),
            ..EdgeSettings::default()
        }
    }

    fn xff(v: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for x in v {
            h.append("x-forwarded-for", HeaderValue::from_str(x).unwrap());
        }
        h
    }

    #[test]
    fn xff_from_an_untrusted_peer_is_ignored() {
        let s = settings(&["10.0.0.5"]);
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(s.client_ip(peer, &xff(&["10.1.1.1"])), Some(peer));
    }

    #[test]
    fn xff_is_read_from_the_right_skipping_trusted_hops() {
        let s = settings(&["10.0.0.0/29"]);
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = xff(&["10.9.9.9, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(s.client_ip(peer, &h), Some("198.51.100.7".parse().unwrap()));
        let h = xff(&["garbage, 198.51.100.7:4444"]);
        assert_eq!(s.client_ip(peer, &h), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(s.client_ip(peer, &xff(&["not-an-ip"])), None);
        assert_eq!(s.client_ip(peer, &HeaderMap::new()), Some(peer));
    }

    #[test]
    fn mapped_ipv6_is_its_ipv4_address() {
        let s = EdgeSettings::default();
        assert!(s.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!s.allows("::ffff:8.8.8.8".parse().unwrap()));
        assert!(s.allows("fd00::1".parse().unwrap()));
        assert!(!s.allows("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn plain_http_only_on_loopback_or_behind_a_trusted_proxy() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_transport(lo, false, false, false).is_ok());
        assert!(check_transport(any, false, false, false).is_err());
        assert!(check_transport(any, true, false, false).is_ok());
        assert!(check_transport(any, false, true, true).is_ok());
        assert!(check_transport(any, false, true, false).is_err());
    }

    #[test]
    fn cidrs_parse_or_name_the_bad_entry() {
        assert!(
            parse_cidrs(&[
                "10.0.0.0/8".into(),
                "2001:db8::/32".into(),
                "192.0.2.1".into()
            ])
            .is_ok()
        );
        let e = parse_cidrs(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
    }

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
