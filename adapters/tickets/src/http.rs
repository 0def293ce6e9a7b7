//! The one HTTP client, and the mapping from a ticket system's answer to a [`PortError`].

use crate::{ConfigError, TicketAuth};
use fctr_ports::{Egress, PortError};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use secrecy::ExposeSecret as _;
use std::time::Duration;
use url::Url;

/// The largest response body read (ServiceNow's lookup answer); larger is [`PortError::Malformed`].
const BODY_LIMIT: usize = 64 * 1024;

/// The client, the instance's base URL and the credentials.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
    auth: TicketAuth,
}

impl Http {
    pub(crate) fn new(
        base: &Url,
        auth: TicketAuth,
        connect_timeout: Duration,
        request_timeout: Duration,
        loopback: bool,
        egress: &Egress,
    ) -> Result<Self, ConfigError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .https_only(!loopback)
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fctr-tickets/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .no_proxy();
        if let Some(p) = egress.proxy() {
            let mut proxy = reqwest::Proxy::all(p.url()).map_err(|_| ConfigError::HttpClient)?;
            if let Some(a) = p.authorization() {
                let mut v = HeaderValue::from_str(a.expose_secret())
                    .map_err(|_| ConfigError::HttpClient)?;
                v.set_sensitive(true);
                proxy = proxy.custom_http_auth(v);
            }
            b = b.proxy(proxy);
            if loopback {
                b = b.pool_max_idle_per_host(0);
            }
        }
        if let Some(ip) = egress.bind() {
            b = b.local_address(ip);
        }
        let client = b.build().map_err(|_| ConfigError::HttpClient)?;
        Ok(Self {
            client,
            base: base.as_str().trim_end_matches('/').to_owned(),
            auth,
        })
    }

    /// A request to `path` (which starts with `/` and holds only checked parts) with the credentials.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let b = self.client.request(method, format!("{}{path}", self.base));
        match &self.auth {
            TicketAuth::Basic { user, secret } => b.basic_auth(user, Some(secret.expose_secret())),
            TicketAuth::Bearer(t) => b.bearer_auth(t.expose_secret()),
        }
    }

    /// Sends and classifies: a 2xx answer's body (at most 64 KiB), or the port error for anything else.
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, PortError> {
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                PortError::Timeout
            } else {
                PortError::Unavailable
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return read_limited(resp).await;
        }
        Err(match status.as_u16() {
            401 => PortError::Unauthorized,
            403 => PortError::Forbidden { missing: None },
            404 => PortError::NotFound,
            408 => PortError::Timeout,
            429 => PortError::RateLimited {
                retry_after: retry_after(resp.headers()),
            },
            s => PortError::Upstream {
                status: s,
                code: None,
            },
        })
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, PortError> {
    if resp.content_length().is_some_and(|l| l > BODY_LIMIT as u64) {
        return Err(PortError::Malformed);
    }
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(|_| PortError::Unavailable)? {
        if out.len() + c.len() > BODY_LIMIT {
            return Err(PortError::Malformed);
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is zero.
pub(crate) fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_ignores_garbage() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        h.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
