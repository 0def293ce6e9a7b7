//! The one hardened HTTP client, authentication, rate-limit bookkeeping and the retry rules.

use crate::errors::{rate_headers, retry_after, transport_error, www_authenticate_error};
use crate::token::{TokenKind, TokenSource};
use chrono::{DateTime, Utc};
use fctr_ports::{Egress, PortError};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use url::Url;
use zeroize::Zeroizing;

/// Largest response body read (users, factor lists and group pages are far smaller).
pub(crate) const MAX_BODY: usize = 2 * 1024 * 1024;

/// What kind of call, for error mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Read,
    Verify,
    Lifecycle,
}

/// One logical operation: its name for logs, its rate-limit bucket, the scope it needs and its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    pub(crate) name: &'static str,
    pub(crate) bucket: &'static str,
    pub(crate) scope: &'static str,
    pub(crate) kind: OpKind,
}

const READ: &str = "okta.users.read";
const MANAGE: &str = "okta.users.manage";

impl Op {
    pub(crate) const fn read(name: &'static str, bucket: &'static str) -> Self {
        Self {
            name,
            bucket,
            scope: READ,
            kind: OpKind::Read,
        }
    }
    pub(crate) const fn verify(name: &'static str) -> Self {
        Self {
            name,
            bucket: "factors",
            scope: MANAGE,
            kind: OpKind::Verify,
        }
    }
    pub(crate) const fn lifecycle(name: &'static str, bucket: &'static str) -> Self {
        Self {
            name,
            bucket,
            scope: MANAGE,
            kind: OpKind::Lifecycle,
        }
    }
}

/// A response, its body read (and zeroized when dropped: it may hold PII or a one-time secret).
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

/// The remaining rate-limit budget Okta reported for one endpoint bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBudget {
    /// The adapter's name for the endpoint bucket (`users.get`, `users.search`, `factors`, `factors.poll`,
    /// `lifecycle`, …).
    pub bucket: &'static str,
    /// `X-Rate-Limit-Limit`: requests allowed in the window.
    pub limit: u64,
    /// `X-Rate-Limit-Remaining`: requests left in the window.
    pub remaining: u64,
    /// When the window resets, in local time (computed from `X-Rate-Limit-Reset` − `Date`).
    pub resets_at: DateTime<Utc>,
}

struct Observed {
    budget: RateBudget,
    reset_instant: Instant,
}

/// The credential put on each request.
pub(crate) enum Credential {
    Ssws(SecretString),
    OAuth(Box<TokenSource>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ssws(_) => f.write_str("Ssws([redacted])"),
            Self::OAuth(t) => t.fmt(f),
        }
    }
}

/// Retry and slow-down settings.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_rate_limit_retries: u32,
    pub(crate) max_retry_wait: Duration,
    pub(crate) max_reported_retry_after: Duration,
    pub(crate) max_slow_down: Duration,
    pub(crate) slow_down_below: f64,
}

/// The HTTP side of the adapter.
pub(crate) struct Transport {
    pub(crate) client: reqwest::Client,
    pub(crate) org: Url,
    pub(crate) credential: Credential,
    pub(crate) limits: Limits,
    /// The egress path in words (`direct`, `via proxy host:port`, …), for transport-error logs.
    pub(crate) egress: String,
    budgets: Mutex<HashMap<&'static str, Observed>>,
    last_bucket: Mutex<Option<&'static str>>,
    /// Permits for requests at the org, shared by every transport of one adapter
    /// ([`crate::OktaConfig::max_in_flight`]).
    in_flight: Arc<Semaphore>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("org", &self.org.as_str())
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// Builds the one client: rustls, timeouts, no redirects, a User-Agent, `Accept: application/json`, and the
/// configured egress path ([`apply_egress`]).
pub(crate) fn build_client(
    user_agent: &str,
    connect_timeout: Duration,
    request_timeout: Duration,
    loopback: bool,
    egress: &Egress,
) -> Result<reqwest::Client, crate::ConfigError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .https_only(!loopback)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .default_headers(headers)
        .pool_idle_timeout(Duration::from_secs(60));
    b = apply_egress(b, egress, loopback)?;
    b.build().map_err(|_| crate::ConfigError::HttpClient)
}

/// Sends every request of `b` the way `egress` says, and no other way: proxies from the environment
/// (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are dropped; the configured proxy, if any, takes every request
/// (loopback targets too: no `NO_PROXY` exception), `https` ones through a `CONNECT` tunnel so TLS stays end to
/// end, with its credentials in a sensitive `Proxy-Authorization` header; `bind` fixes the source address.
///
/// A forward proxy relaying plain `http` (not a `CONNECT` tunnel) may close the client connection after each
/// response (tinyproxy does) without saying so; a request sent on that pooled connection in the moment before the
/// close is seen fails. So with a proxy and plain-http targets (only the loopback fakes: real IdPs are https),
/// idle connections are not reused. `https` targets keep their pooled `CONNECT` tunnels.
pub(crate) fn apply_egress(
    b: reqwest::ClientBuilder,
    egress: &Egress,
    plain_http: bool,
) -> Result<reqwest::ClientBuilder, crate::ConfigError> {
    let mut b = b.no_proxy();
    if let Some(p) = egress.proxy() {
        if plain_http {
            b = b.pool_max_idle_per_host(0);
        }
        let mut proxy = reqwest::Proxy::all(p.url()).map_err(|_| crate::ConfigError::HttpClient)?;
        if let Some(auth) = p.authorization() {
            let mut v = HeaderValue::from_str(auth.expose_secret())
                .map_err(|_| crate::ConfigError::HttpClient)?;
            v.set_sensitive(true);
            proxy = proxy.custom_http_auth(v);
        }
        b = b.proxy(proxy);
    }
    if let Some(ip) = egress.bind() {
        b = b.local_address(ip);
    }
    Ok(b)
}

/// Reads a body, refusing one larger than `limit`.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, PortError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(PortError::Malformed);
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > limit {
                    let mut z = Zeroizing::new(out);
                    z.clear();
                    return Err(PortError::Malformed);
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                let _ = Zeroizing::new(out);
                return Err(if e.is_timeout() {
                    PortError::Timeout
                } else {
                    PortError::Unavailable
                });
            }
        }
    }
}

impl Transport {
    pub(crate) fn new(
        client: reqwest::Client,
        org: Url,
        credential: Credential,
        limits: Limits,
        egress: &Egress,
        in_flight: Arc<Semaphore>,
    ) -> Self {
        Self {
            client,
            org,
            credential,
            limits,
            egress: egress.to_string(),
            budgets: Mutex::new(HashMap::new()),
            last_bucket: Mutex::new(None),
            in_flight,
        }
    }

    /// The most recently observed budget.
    pub(crate) fn rate_budget(&self) -> Option<RateBudget> {
        let last = (*self
            .last_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner))?;
        self.budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(last)
            .map(|o| o.budget.clone())
    }

    /// The budget last observed for `bucket`, with the time left until its reset (zero once it has passed).
    pub(crate) fn upstream_budget(&self, bucket: &str) -> Option<fctr_ports::UpstreamBudget> {
        let budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let o = budgets.get(bucket)?;
        Some(fctr_ports::UpstreamBudget {
            remaining: o.budget.remaining,
            limit: o.budget.limit,
            reset_in: o.reset_instant.saturating_duration_since(Instant::now()),
        })
    }

    /// Every observed budget, by bucket.
    pub(crate) fn rate_budgets(&self) -> Vec<RateBudget> {
        let mut v: Vec<RateBudget> = self
            .budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|o| o.budget.clone())
            .collect();
        v.sort_by_key(|b| b.bucket);
        v
    }

    fn observe(&self, op: &Op, headers: &HeaderMap) {
        let Some((limit, remaining, reset)) = rate_headers(headers) else {
            return;
        };
        let budget = RateBudget {
            bucket: op.bucket,
            limit,
            remaining,
            resets_at: Utc::now() + chrono::Duration::from_std(reset).unwrap_or_default(),
        };
        tracing::debug!(
            op = op.name,
            bucket = op.bucket,
            rate_limit = limit,
            rate_remaining = remaining,
            rate_reset_s = reset.as_secs(),
            "okta rate budget"
        );
        self.budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                op.bucket,
                Observed {
                    budget,
                    reset_instant: Instant::now() + reset,
                },
            );
        *self
            .last_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(op.bucket);
    }

    /// How long to pause before a request to this bucket: when under the slow-down fraction, spread what is left
    /// over the time to the reset, bounded.
    fn slow_down(&self, op: &Op) -> Option<Duration> {
        if self.limits.max_slow_down.is_zero() {
            return None;
        }
        let budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let o = budgets.get(op.bucket)?;
        if o.budget.limit == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let threshold = o.budget.limit as f64 * self.limits.slow_down_below;
        #[allow(clippy::cast_precision_loss)]
        if o.budget.remaining as f64 >= threshold {
            return None;
        }
        let until = o.reset_instant.checked_duration_since(Instant::now())?;
        let share = until / u32::try_from(o.budget.remaining + 1).unwrap_or(u32::MAX);
        Some(share.min(self.limits.max_slow_down))
    }

    /// Sends one logical request. Handles authentication (and one re-send after a 401 with a fresh token), 429
    /// (re-sent only for GET, bounded), transport errors (re-sent once only for GET), and records the rate
    /// budget. Any other status is returned for the caller to map. `body` is JSON.
    pub(crate) async fn send(
        &self,
        op: &Op,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> Result<Resp, PortError> {
        let idempotent = method == Method::GET;
        let mut rate_retries = 0u32;
        let mut transport_retried = false;
        let mut auth_retried = false;
        let mut retry_for: Option<String> = None;
        let mut token = self.current_token().await?;
        loop {
            if let Some(pause) = self.slow_down(op) {
                tracing::info!(
                    op = op.name,
                    bucket = op.bucket,
                    pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                    "okta rate budget low: slowing down"
                );
                tokio::time::sleep(pause).await;
            }
            let mut req = self.client.request(method.clone(), url.clone());
            req = self.authorize(req, &method, url, token.as_deref())?;
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            } else if method == Method::POST {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(Vec::new());
            }
            if let Some(id) = &retry_for {
                req = req
                    .header("X-Okta-Retry-For", id.as_str())
                    .header("X-Okta-Retry-Count", rate_retries.to_string());
            }
            // Held from sending until the body is read (or the response dropped), so that at most
            // `max_in_flight` requests are at the org at once. The token request before sending and the waits
            // (slow-down above, a 429's wait below) hold none; the rare fresh token after a 401 is asked for
            // while this one is still held.
            let permit = self
                .in_flight
                .acquire()
                .await
                .map_err(|_| PortError::Unavailable)?;
            let mut resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let err = transport_error(op, &e, &self.egress);
                    let before_sending = e.is_connect();
                    if idempotent && !transport_retried && (before_sending || !e.is_timeout()) {
                        transport_retried = true;
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = resp.status();
            // Taken, not cloned: the body is read from `resp` below, its headers are not needed there.
            let headers = std::mem::take(resp.headers_mut());
            self.observe(op, &headers);
            tracing::debug!(op = op.name, status = status.as_u16(), "okta answered");

            if status == StatusCode::UNAUTHORIZED && !auth_retried {
                if let Some(t) = self.after_401(&headers, token.as_deref()).await? {
                    auth_retried = true;
                    token = t;
                    drop(resp);
                    continue;
                }
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&headers, self.limits.max_reported_retry_after);
                let okta_code = {
                    let body =
                        Zeroizing::new(read_limited(resp, 64 * 1024).await.unwrap_or_default());
                    crate::errors::OktaError::parse(&body)
                };
                crate::errors::log_error(op, status, &okta_code);
                if idempotent
                    && rate_retries < self.limits.max_rate_limit_retries
                    && wait <= self.limits.max_retry_wait
                {
                    rate_retries += 1;
                    retry_for = Some(
                        headers
                            .get("x-okta-request-id")
                            .and_then(|v| v.to_str().ok())
                            .filter(|v| v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
                            .unwrap_or("unknown")
                            .to_owned(),
                    );
                    tracing::info!(
                        op = op.name,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        retry = rate_retries,
                        "okta rate limited: waiting to re-send a GET"
                    );
                    drop(permit);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(PortError::RateLimited {
                    retry_after: Some(wait),
                });
            }
            let body = match read_limited(resp, MAX_BODY).await {
                Ok(b) => Zeroizing::new(b),
                Err(e) => return Err(e),
            };
            drop(permit);
            return Ok(Resp {
                status,
                headers,
                body,
            });
        }
    }

    async fn current_token(
        &self,
    ) -> Result<Option<std::sync::Arc<crate::token::AccessToken>>, PortError> {
        match &self.credential {
            Credential::Ssws(_) => Ok(None),
            Credential::OAuth(ts) => Ok(Some(ts.token(&self.client).await?)),
        }
    }

    /// After a 401 on an OAuth call: take a resource nonce if one was asked for, else a fresh token. `None`
    /// means there is nothing to try (SSWS).
    async fn after_401(
        &self,
        headers: &HeaderMap,
        token: Option<&crate::token::AccessToken>,
    ) -> Result<Option<Option<std::sync::Arc<crate::token::AccessToken>>>, PortError> {
        let (Credential::OAuth(ts), Some(t)) = (&self.credential, token) else {
            return Ok(None);
        };
        if t.kind == TokenKind::Dpop
            && www_authenticate_error(headers).as_deref() == Some("use_dpop_nonce")
        {
            if let Some(n) = headers
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .filter(|n| {
                    !n.is_empty() && n.len() <= 512 && n.chars().all(|c| c.is_ascii_graphic())
                })
            {
                *ts.resource_nonce
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(n.to_owned());
                return Ok(Some(Some(ts.token(&self.client).await?)));
            }
        }
        tracing::info!("okta refused the access token: fetching a new one");
        Ok(Some(Some(
            ts.refresh_after_401(&self.client, t.generation).await?,
        )))
    }

    fn authorize(
        &self,
        req: reqwest::RequestBuilder,
        method: &Method,
        url: &Url,
        token: Option<&crate::token::AccessToken>,
    ) -> Result<reqwest::RequestBuilder, PortError> {
        match (&self.credential, token) {
            (Credential::Ssws(t), _) => Ok(req.header(
                reqwest::header::AUTHORIZATION,
                sensitive(&format!("SSWS {}", t.expose_secret()))?,
            )),
            (Credential::OAuth(ts), Some(t)) => match t.kind {
                TokenKind::Bearer => Ok(req.header(
                    reqwest::header::AUTHORIZATION,
                    sensitive(&format!("Bearer {}", t.value.expose_secret()))?,
                )),
                TokenKind::Dpop => {
                    let key = ts.dpop.as_ref().ok_or(PortError::Malformed)?;
                    let nonce = ts
                        .resource_nonce
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    let proof = key
                        .proof(method.as_str(), url, nonce.as_deref(), Some(&t.value))
                        .map_err(|_| PortError::Unexpected(Box::new(crate::TokenError::Signing)))?;
                    Ok(req
                        .header(
                            reqwest::header::AUTHORIZATION,
                            sensitive(&format!("DPoP {}", t.value.expose_secret()))?,
                        )
                        .header("DPoP", proof))
                }
            },
            (Credential::OAuth(_), None) => Err(PortError::Unauthorized),
        }
    }
}

/// A header value marked sensitive (hyper and h2 then keep it out of their own logs and HPACK tables).
fn sensitive(v: &str) -> Result<HeaderValue, PortError> {
    let z = Zeroizing::new(v.to_owned());
    let mut h = HeaderValue::from_str(&z).map_err(|_| PortError::Unauthorized)?;
    h.set_sensitive(true);
    Ok(h)
}

/// Whether `candidate` is on the org (same scheme, host and port), has no credentials or fragment, and its path
/// starts with `prefix`.
pub(crate) fn on_org(org: &Url, candidate: &Url, prefix: &str) -> bool {
    candidate.scheme() == org.scheme()
        && candidate.host_str().map(str::to_ascii_lowercase)
            == org.host_str().map(str::to_ascii_lowercase)
        && candidate.port_or_known_default() == org.port_or_known_default()
        && candidate.username().is_empty()
        && candidate.password().is_none()
        && candidate.fragment().is_none()
        && candidate.path().starts_with(prefix)
}

/// The `rel="next"` target of a `Link` header, if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(reqwest::header::LINK) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                if let Some(t) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                    return Some(t.to_owned());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_org_checks_origin_and_path() {
        let org = Url::parse("https://acme.okta.com/").unwrap();
        let ok =
            Url::parse("https://acme.okta.com/api/v1/users/00u1/factors/f1/transactions/v2mst.x")
                .unwrap();
        assert!(on_org(&org, &ok, "/api/v1/users/"));
        for bad in [
            "http://acme.okta.com/api/v1/users/x",
            "https://evil.example/api/v1/users/x",
            "https://acme.okta.com:8443/api/v1/users/x",
            "https://acme.okta.com.evil.example/api/v1/users/x",
            "https://u:p@acme.okta.com/api/v1/users/x",
            "https://acme.okta.com/api/v1/apps/x",
            "https://acme.okta.com/api/v1/users/../../oauth2/v1/token",
            "https://acme.okta.com/api/v1/users/%2e%2e/%2e%2e/apps",
            "https://acme.okta.com/api/v1/users/x#frag",
        ] {
            let u = Url::parse(bad).unwrap();
            assert!(!on_org(&org, &u, "/api/v1/users/"), "{bad} accepted");
        }
    }

    #[test]
    fn next_link_parses() {
        let mut h = HeaderMap::new();
        h.append(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://a/api/v1/users/x/groups?limit=2>; rel=\"self\""),
        );
        h.append(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://a/api/v1/users/x/groups?after=g2&limit=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://a/api/v1/users/x/groups?after=g2&limit=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
