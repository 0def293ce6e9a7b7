//! # fctr-webhook: alerts to a signed webhook
//!
//! An [`AlertSink`] that POSTs each [`Alert`]'s PII-free JSON ([`Alert::payload`]) to one HTTPS URL, signed the
//! [Standard Webhooks](https://www.standardwebhooks.com/) way:
//!
//! - `webhook-id`: the alert's id (the same on every retry, so the receiver can deduplicate);
//! - `webhook-timestamp`: unix seconds of this attempt;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//!
//! The key is the secret's bytes, or, for a secret written `whsec_<base64>` (the Standard Webhooks form), the
//! base64-decoded bytes after the prefix. [`sign`] computes the header value; receivers recompute it.
//!
//! Delivery retries, in memory and bounded ([`WebhookOptions::attempts`]), on a timeout, a connection error,
//! `429` and `5xx`, waiting with exponential backoff (or the receiver's `Retry-After`, capped). Any other answer
//! is final. Redirects are not followed; the URL must be `https` unless it is a loopback address.

#![forbid(unsafe_code)]

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fctr_ports::{Alert, AlertSink, PortError};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;
use zeroize::Zeroizing;

/// Why the webhook could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The URL is not `https` (only loopback may use `http`).
    #[error("the alert webhook URL must use https (http only for a loopback address)")]
    InsecureUrl,
    /// The secret is empty, or `whsec_` followed by something that is not base64.
    #[error("the alert webhook secret is empty or not valid `whsec_<base64>`")]
    BadSecret,
    /// The HTTP client could not be built.
    #[error("the alert webhook HTTP client could not be built")]
    HttpClient,
}

/// How the webhook is reached.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Where alerts are POSTed.
    pub url: Url,
    /// The signing secret.
    pub secret: SecretString,
    /// Attempts per alert, the first included (default 4).
    pub attempts: u32,
    /// Wait before the first retry; doubled each time (default 500 ms).
    pub backoff: Duration,
    /// Longest wait between attempts, `Retry-After` included (default 30 s).
    pub max_backoff: Duration,
    /// Timeout of one attempt (default 5 s).
    pub timeout: Duration,
}

impl WebhookOptions {
    /// Options with the defaults.
    #[must_use]
    pub fn new(url: Url, secret: SecretString) -> Self {
        Self {
            url,
            secret,
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The signing key: the secret's bytes, or the decoded bytes of `whsec_<base64>`.
fn key_bytes(secret: &SecretString) -> Result<Zeroizing<Vec<u8>>, WebhookError> {
    let s = secret.expose_secret();
    if s.is_empty() {
        return Err(WebhookError::BadSecret);
    }
    match s.strip_prefix("whsec_") {
        Some(b) => match B64.decode(b) {
            Ok(k) if !k.is_empty() => Ok(Zeroizing::new(k)),
            _ => Err(WebhookError::BadSecret),
        },
        None => Ok(Zeroizing::new(s.as_bytes().to_vec())),
    }
}

/// The `webhook-signature` value for `body` sent as message `id` at unix second `timestamp`:
/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
#[must_use]
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Alerts to a signed webhook (see the crate docs).
pub struct WebhookSink {
    client: reqwest::Client,
    url: Url,
    key: Zeroizing<Vec<u8>>,
    attempts: u32,
    backoff: Duration,
    max_backoff: Duration,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl WebhookSink {
    /// A sink for `opts`.
    ///
    /// # Errors
    /// [`WebhookError::InsecureUrl`], [`WebhookError::BadSecret`], [`WebhookError::HttpClient`].
    pub fn new(opts: WebhookOptions) -> Result<Self, WebhookError> {
        let loopback = is_loopback(&opts.url);
        if opts.url.scheme() != "https" && !(loopback && opts.url.scheme() == "http") {
            return Err(WebhookError::InsecureUrl);
        }
        let key = key_bytes(&opts.secret)?;
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .https_only(!loopback)
            .connect_timeout(opts.timeout)
            .timeout(opts.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fctr-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| WebhookError::HttpClient)?;
        Ok(Self {
            client,
            url: opts.url,
            key,
            attempts: opts.attempts.max(1),
            backoff: opts.backoff,
            max_backoff: opts.max_backoff,
        })
    }

    /// One attempt: `Ok(())` delivered, `Err((retryable, wait hint, error))` otherwise.
    async fn attempt(
        &self,
        id: &str,
        body: &[u8],
    ) -> Result<(), (bool, Option<Duration>, PortError)> {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sent = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(&self.key, id, ts, body))
            .body(body.to_vec())
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err((true, None, PortError::Timeout)),
            Err(_) => return Err((true, None, PortError::Unavailable)),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let retryable = status.as_u16() == 429 || status.is_server_error();
        Err((
            retryable,
            retry_after,
            PortError::Upstream {
                status: status.as_u16(),
                code: None,
            },
        ))
    }
}

#[async_trait]
impl AlertSink for WebhookSink {
    async fn deliver(&self, alert: &Alert) -> Result<(), PortError> {
        let id = alert.id.to_string();
        let body = alert.payload();
        let mut wait = self.backoff;
        let mut last = PortError::Unavailable;
        for n in 1..=self.attempts {
            match self.attempt(&id, &body).await {
                Ok(()) => return Ok(()),
                Err((retryable, hint, e)) => {
                    tracing::warn!(attempt = n, rule = %alert.rule, error = e.code(), "alert delivery failed");
                    last = e;
                    if !retryable || n == self.attempts {
                        break;
                    }
                    tokio::time::sleep(hint.unwrap_or(wait).min(self.max_backoff)).await;
                    wait = wait.saturating_mul(2);
                }
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whsec_secrets_are_decoded_and_plain_ones_used_as_bytes() {
        let k = key_bytes(&SecretString::from("whsec_AAEC".to_owned())).unwrap();
        assert_eq!(k.as_slice(), &[0, 1, 2]);
        let k = key_bytes(&SecretString::from("plain".to_owned())).unwrap();
        assert_eq!(k.as_slice(), b"plain");
        assert!(key_bytes(&SecretString::from("whsec_!!".to_owned())).is_err());
        assert!(key_bytes(&SecretString::from(String::new())).is_err());
    }

    /// The Standard Webhooks reference vector.
    #[test]
    fn the_standard_webhooks_reference_vector() {
        let key = key_bytes(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ))
        .unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_signature_covers_id_timestamp_and_body() {
        let s = sign(b"k", "id", 1, b"{}");
        assert!(s.starts_with("v1,"));
        assert_ne!(s, sign(b"k", "id", 2, b"{}"));
        assert_ne!(s, sign(b"k", "id2", 1, b"{}"));
        assert_ne!(s, sign(b"k", "id", 1, b"{ }"));
        assert_ne!(s, sign(b"k2", "id", 1, b"{}"));
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let secret = || SecretString::from("s".to_owned());
        let o = WebhookOptions::new(Url::parse("http://alerts.example/h").unwrap(), secret());
        assert!(matches!(
            WebhookSink::new(o),
            Err(WebhookError::InsecureUrl)
        ));
        let o = WebhookOptions::new(Url::parse("http://127.0.0.1:9/h").unwrap(), secret());
        assert!(WebhookSink::new(o).is_ok());
    }
}
