//! The one hardened HTTP client, bearer authentication with one refresh on 401, and the retry rules.

use crate::config::{ConfigError, EntraConfig};
use crate::errors::{Needs, graph_error, retry_after, transport_error};
use crate::token::TokenSource;
use fctr_ports::PortError;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use url::Url;
use zeroize::Zeroizing;

/// Largest response body read (user pages, method lists and connector answers are far smaller).
pub(crate) const MAX_BODY: usize = 4 * 1024 * 1024;

/// A response with its body read; the body is zeroized on drop (it may hold PII or a one-time secret).
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

/// Builds the adapter's single HTTP client: rustls, connect and request timeouts, no redirects, a User-Agent,
/// `Accept: application/json` by default.
pub(crate) fn build_client(config: &EntraConfig) -> Result<reqwest::Client, ConfigError> {
    if config.connect_timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout {
            field: "connect_timeout",
        });
    }
    if config.request_timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout {
            field: "request_timeout",
        });
    }
    let ua = config.user_agent.trim();
    if ua.is_empty() || !ua.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(ConfigError::BadUserAgent);
    }
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    let b = reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(false) // URLs are checked at configuration time (https, or loopback http for fakes)
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(ua.to_owned())
        .default_headers(headers);
    let plain_http = [&config.authority, &config.graph_base]
        .into_iter()
        .chain(config.connector.as_ref().map(|c| &c.endpoint))
        .any(|u| u.scheme() == "http");
    apply_egress(b, &config.egress, plain_http)?
        .build()
        .map_err(|_| ConfigError::HttpClient)
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
    egress: &fctr_ports::Egress,
    plain_http: bool,
) -> Result<reqwest::ClientBuilder, ConfigError> {
    let mut b = b.no_proxy();
    if let Some(p) = egress.proxy() {
        if plain_http {
            b = b.pool_max_idle_per_host(0);
        }
        let mut proxy = reqwest::Proxy::all(p.url()).map_err(|_| ConfigError::HttpClient)?;
        if let Some(auth) = p.authorization() {
            let mut v =
                HeaderValue::from_str(auth.expose_secret()).map_err(|_| ConfigError::HttpClient)?;
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

/// One request to send: method, URL, extra headers, body.
pub(crate) struct Req<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: &'a [(&'static str, &'static str)],
    /// Body bytes and their content type.
    pub(crate) body: Option<(&'a [u8], &'static str)>,
    /// A longer timeout than the client's (the connector's blocking push).
    pub(crate) timeout: Option<Duration>,
}

/// Sends a request with a bearer token from `tokens`; on 401 mints a fresh token and sends it once more (a 401
/// means the request was refused before anything ran, so this is safe for every method). Returns the response
/// whatever its status; transport failures are classified.
pub(crate) async fn send_authed(
    client: &reqwest::Client,
    tokens: &TokenSource,
    req: &Req<'_>,
) -> Result<Resp, PortError> {
    let (token, generation) = tokens.token(client).await.map_err(PortError::from)?;
    let resp = send_raw(client, req, token.expose_secret()).await?;
    if resp.status != StatusCode::UNAUTHORIZED {
        return Ok(resp);
    }
    tracing::debug!("entra: 401, refreshing the access token once");
    let (token, _) = tokens
        .refresh_after_401(client, generation)
        .await
        .map_err(PortError::from)?;
    send_raw(client, req, token.expose_secret()).await
}

async fn send_raw(client: &reqwest::Client, req: &Req<'_>, token: &str) -> Result<Resp, PortError> {
    let bearer = Zeroizing::new(format!("Bearer {token}"));
    let mut auth = HeaderValue::from_str(&bearer).map_err(|_| PortError::Malformed)?;
    auth.set_sensitive(true);
    let mut rb = client
        .request(req.method.clone(), req.url.clone())
        .header(AUTHORIZATION, auth);
    for (k, v) in req.headers {
        rb = rb.header(*k, *v);
    }
    if let Some((bytes, content_type)) = req.body {
        rb = rb.header(CONTENT_TYPE, content_type).body(bytes.to_vec());
    }
    if let Some(t) = req.timeout {
        rb = rb.timeout(t);
    }
    let mut resp = rb.send().await.map_err(|e| transport_error(&e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(PortError::Malformed);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Graph's throttling as last seen: after a 429 with `Retry-After`, the moment it ends. Graph publishes no budget
/// headers, so this is all a caller can pace itself by ([`fctr_ports::Challenger::poll_budget`]).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    until: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Records a 429 that said to wait `retry_after` (a later end replaces an earlier one, never the reverse).
    pub(crate) fn throttled_for(&self, retry_after: Duration) {
        let end = Instant::now() + retry_after;
        let mut until = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        if until.is_none_or(|u| u < end) {
            *until = Some(end);
        }
    }

    /// Nothing left until the throttle ends; `None` when not throttled (or no longer).
    pub(crate) fn budget(&self) -> Option<fctr_ports::UpstreamBudget> {
        let until = (*self.until.lock().unwrap_or_else(PoisonError::into_inner))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| fctr_ports::UpstreamBudget::exhausted_for(left))
    }
}

/// The Graph side: base URL, token source, retry limits and the throttle last seen.
pub(crate) struct Graph {
    pub(crate) client: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) tokens: TokenSource,
    pub(crate) max_rate_limit_retries: u32,
    pub(crate) max_retry_wait: Duration,
    pub(crate) throttle: Throttle,
}

impl Graph {
    /// A URL relative to the Graph base (`users/…`).
    pub(crate) fn url(&self, relative: &str) -> Result<Url, PortError> {
        self.base.join(relative).map_err(|_| PortError::Malformed)
    }

    /// Whether a `@odata.nextLink` stays on the configured Graph base (same scheme, host, port, path prefix).
    pub(crate) fn on_base(&self, link: &Url) -> bool {
        link.scheme() == self.base.scheme()
            && link.host_str() == self.base.host_str()
            && link.port_or_known_default() == self.base.port_or_known_default()
            && link.path().starts_with(self.base.path())
            && link.username().is_empty()
            && link.password().is_none()
    }

    /// A GET, safe to repeat: re-sent after a 429 (waiting `Retry-After`, at most
    /// `max_rate_limit_retries` times and never longer than `max_retry_wait` per wait) and once after a failed
    /// connection. Returns a 2xx response or the mapped error.
    pub(crate) async fn get(
        &self,
        url: Url,
        headers: &[(&'static str, &'static str)],
        needs: Needs,
    ) -> Result<Resp, PortError> {
        let req = Req {
            method: Method::GET,
            url,
            headers,
            body: None,
            timeout: None,
        };
        let mut rate_retries = 0;
        let mut transport_retried = false;
        loop {
            let resp = match send_authed(&self.client, &self.tokens, &req).await {
                Ok(r) => r,
                Err(PortError::Unavailable) if !transport_retried => {
                    transport_retried = true;
                    tracing::debug!("entra: GET connection failed, retrying once");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if resp.status.is_success() {
                return Ok(resp);
            }
            if resp.status == StatusCode::TOO_MANY_REQUESTS {
                if let Some(wait) = retry_after(&resp.headers) {
                    self.throttle.throttled_for(wait);
                }
            }
            if resp.status == StatusCode::TOO_MANY_REQUESTS
                && rate_retries < self.max_rate_limit_retries
            {
                if let Some(wait) = retry_after(&resp.headers) {
                    if wait <= self.max_retry_wait {
                        rate_retries += 1;
                        tracing::debug!(
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "entra: GET throttled, waiting Retry-After"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
            }
            return Err(self.fail(&resp, needs));
        }
    }

    /// A request that changes something (POST, PATCH, DELETE): sent once (plus the single re-send after a 401).
    /// Returns a 2xx response or the mapped error; never retried on 429, 5xx or a transport failure.
    pub(crate) async fn send_once(
        &self,
        method: Method,
        url: Url,
        json: Option<&[u8]>,
        needs: Needs,
    ) -> Result<Resp, PortError> {
        let req = Req {
            method,
            url,
            headers: &[],
            body: json.map(|b| (b, "application/json")),
            timeout: None,
        };
        let resp = send_authed(&self.client, &self.tokens, &req).await?;
        if resp.status.is_success() {
            Ok(resp)
        } else {
            if resp.status == StatusCode::TOO_MANY_REQUESTS {
                if let Some(wait) = retry_after(&resp.headers) {
                    self.throttle.throttled_for(wait);
                }
            }
            Err(self.fail(&resp, needs))
        }
    }

    fn fail(&self, resp: &Resp, needs: Needs) -> PortError {
        let err = graph_error(resp.status, &resp.headers, &resp.body, needs);
        let request_id = resp
            .headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::errors::safe_token);
        tracing::warn!(
            status = resp.status.as_u16(),
            code = ?crate::errors::graph_code(&resp.body),
            request_id = ?request_id,
            error = err.code(),
            "entra: Graph call failed"
        );
        err
    }
}
