//! OAuth 2.0 client credentials with a `private_key_jwt` assertion against the org authorization server, with
//! optional DPoP. Tokens are cached until shortly before they expire.

use crate::config::{SCOPES, SigningAlgorithm};
use crate::dpop::DpopKey;
use crate::errors::oauth_error_name;
use fctr_ports::PortError;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use url::Url;
use zeroize::Zeroizing;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertion lifetime: short, well under Okta's one-hour maximum.
const ASSERTION_LIFETIME_SECS: i64 = 300;
/// Refresh this long before the token's expiry (at most half its lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
const MAX_TOKEN_BODY: usize = 64 * 1024;

/// Why the token endpoint refused to issue a token. Messages say what to check; none carries a secret or text
/// from the response (Okta's `error_description` is dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// `invalid_client`: the assertion was refused.
    #[error("client authentication failed (check client id, key id and registered public key)")]
    InvalidClient,
    /// `invalid_scope`: a requested scope is not granted to the service app.
    #[error("the service app was not granted scope {scope}")]
    InvalidScope {
        /// The scope (or space-separated scopes) that is missing.
        scope: &'static str,
    },
    /// `unauthorized_client`: the app may not use the client-credentials grant.
    #[error("the app is not allowed the client-credentials grant (it must be an API Services app)")]
    UnauthorizedClient,
    /// `invalid_dpop_proof`: the app requires DPoP (turn on `dpop`) or refused the proof.
    #[error(
        "the token endpoint refused the DPoP proof (does the app require DPoP? set dpop = true)"
    )]
    InvalidDpopProof,
    /// `use_dpop_nonce` twice in a row.
    #[error("the token endpoint kept asking for a new DPoP nonce")]
    DpopNonceLoop,
    /// Another OAuth error.
    #[error("the token endpoint refused the request (HTTP {status}, {code})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// OAuth error name, or `unknown`.
        code: String,
    },
    /// The token endpoint is rate limiting.
    #[error("the token endpoint is rate limiting")]
    RateLimited {
        /// How long to wait, if known.
        retry_after: Option<Duration>,
    },
    /// The token endpoint's answer could not be understood.
    #[error("the token endpoint's answer could not be understood")]
    Malformed,
    /// The token endpoint could not be reached.
    #[error("the token endpoint could not be reached")]
    Unavailable,
    /// The token endpoint did not answer in time.
    #[error("the token endpoint did not answer in time")]
    Timeout,
    /// The assertion or proof could not be signed.
    #[error("the client assertion could not be signed")]
    Signing,
}

impl From<TokenError> for PortError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::InvalidScope { scope } => PortError::Forbidden {
                missing: Some(if scope.contains(' ') {
                    format!("scopes {scope}")
                } else {
                    format!("scope {scope}")
                }),
            },
            TokenError::InvalidClient
            | TokenError::UnauthorizedClient
            | TokenError::InvalidDpopProof
            | TokenError::DpopNonceLoop => PortError::Unauthorized,
            TokenError::Refused { status, code } => {
                if status == 401 {
                    PortError::Unauthorized
                } else {
                    PortError::Upstream {
                        status,
                        code: Some(code),
                    }
                }
            }
            TokenError::RateLimited { retry_after } => PortError::RateLimited { retry_after },
            TokenError::Malformed => PortError::Malformed,
            TokenError::Unavailable => PortError::Unavailable,
            TokenError::Timeout => PortError::Timeout,
            TokenError::Signing => PortError::Unexpected(Box::new(TokenError::Signing)),
        }
    }
}

/// The token type, which decides the `Authorization` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Bearer,
    Dpop,
}

/// A cached access token.
pub(crate) struct AccessToken {
    pub(crate) value: SecretString,
    pub(crate) kind: TokenKind,
    refresh_at: Instant,
    pub(crate) generation: u64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("kind", &self.kind)
            .field("generation", &self.generation)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token_type: String,
    access_token: SecretString,
    expires_in: Option<u64>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

/// Mints and caches access tokens.
pub(crate) struct TokenSource {
    client_id: String,
    key_id: String,
    key_pem: SecretString,
    algorithm: SigningAlgorithm,
    token_url: Url,
    /// The scopes asked for, space-separated (the management scopes, or `okta.logs.read` for the log reader).
    scopes: &'static str,
    pub(crate) dpop: Option<DpopKey>,
    cache: tokio::sync::Mutex<Option<Arc<AccessToken>>>,
    token_nonce: Mutex<Option<String>>,
    /// A nonce a resource server asked for (`use_dpop_nonce` on an API call); Okta does not currently.
    pub(crate) resource_nonce: Mutex<Option<String>>,
    generation: AtomicU64,
    timeout: Duration,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.client_id)
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("dpop", &self.dpop.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

impl TokenSource {
    pub(crate) fn new(
        client_id: String,
        key_id: String,
        key_pem: SecretString,
        algorithm: SigningAlgorithm,
        token_url: Url,
        dpop: Option<DpopKey>,
        timeout: Duration,
    ) -> Self {
        Self::with_scopes(
            client_id, key_id, key_pem, algorithm, token_url, SCOPES, dpop, timeout,
        )
    }

    /// A source asking for other scopes than the management ones (the log reader asks for `okta.logs.read` only,
    /// so a service app without that grant still gets its management token).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_scopes(
        client_id: String,
        key_id: String,
        key_pem: SecretString,
        algorithm: SigningAlgorithm,
        token_url: Url,
        scopes: &'static str,
        dpop: Option<DpopKey>,
        timeout: Duration,
    ) -> Self {
        Self {
            client_id,
            key_id,
            key_pem,
            algorithm,
            token_url,
            scopes,
            dpop,
            cache: tokio::sync::Mutex::new(None),
            token_nonce: Mutex::new(None),
            resource_nonce: Mutex::new(None),
            generation: AtomicU64::new(0),
            timeout,
        }
    }

    fn assertion(&self) -> Result<Zeroizing<String>, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Assertion {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: self.token_url.as_str(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = jsonwebtoken::Header::new(self.algorithm.jwt());
        header.kid = Some(self.key_id.clone());
        let pem = self.key_pem.expose_secret().as_bytes();
        let key = match self.algorithm {
            SigningAlgorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(pem),
            SigningAlgorithm::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| TokenError::Signing)?;
        jsonwebtoken::encode(&header, &claims, &key)
            .map(Zeroizing::new)
            .map_err(|_| TokenError::Signing)
    }

    /// A valid token: the cached one, or a new one.
    pub(crate) async fn token(
        &self,
        client: &reqwest::Client,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(Arc::clone(t));
            }
        }
        let t = Arc::new(self.fetch(client).await?);
        *cache = Some(Arc::clone(&t));
        Ok(t)
    }

    /// After a 401: drops the token if it is still the one that was refused (so concurrent callers refresh once)
    /// and returns a valid one.
    pub(crate) async fn refresh_after_401(
        &self,
        client: &reqwest::Client,
        refused_generation: u64,
    ) -> Result<Arc<AccessToken>, TokenError> {
        {
            let mut cache = self.cache.lock().await;
            if cache
                .as_ref()
                .is_some_and(|t| t.generation == refused_generation)
            {
                *cache = None;
            }
        }
        self.token(client).await
    }

    /// Mints a token, ignoring the cache (used by `check_credentials`).
    pub(crate) async fn fresh(&self, client: &reqwest::Client) -> Result<(), TokenError> {
        let t = Arc::new(self.fetch(client).await?);
        *self.cache.lock().await = Some(t);
        Ok(())
    }

    #[tracing::instrument(name = "okta.token", skip_all, fields(dpop = self.dpop.is_some()))]
    async fn fetch(&self, client: &reqwest::Client) -> Result<AccessToken, TokenError> {
        let mut nonce_retry_used = false;
        loop {
            let assertion = self.assertion()?;
            let body = Zeroizing::new(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "client_credentials")
                    .append_pair("scope", self.scopes)
                    .append_pair("client_assertion_type", ASSERTION_TYPE)
                    .append_pair("client_assertion", &assertion)
                    .finish(),
            );
            let mut req = client
                .post(self.token_url.clone())
                .timeout(self.timeout)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.as_bytes().to_vec());
            if let Some(k) = &self.dpop {
                let nonce = self
                    .token_nonce
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let proof = k
                    .proof("POST", &self.token_url, nonce.as_deref(), None)
                    .map_err(|_| TokenError::Signing)?;
                req = req.header("DPoP", proof);
            }
            let resp = req.send().await.map_err(|e| {
                tracing::warn!(
                    transport_error = if e.is_connect() {
                        "connect"
                    } else if e.is_timeout() {
                        "timeout"
                    } else {
                        "request"
                    },
                    "token request failed"
                );
                if e.is_connect() {
                    TokenError::Unavailable
                } else if e.is_timeout() {
                    TokenError::Timeout
                } else {
                    TokenError::Unavailable
                }
            })?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = Zeroizing::new(
                crate::http::read_limited(resp, MAX_TOKEN_BODY)
                    .await
                    .map_err(|e| match e {
                        PortError::Timeout => TokenError::Timeout,
                        PortError::Malformed => TokenError::Malformed,
                        _ => TokenError::Unavailable,
                    })?,
            );
            if status.is_success() {
                return self.accept(&bytes);
            }
            let body: TokenErrorBody = serde_json::from_slice(&bytes).unwrap_or(TokenErrorBody {
                error: None,
                error_description: None,
            });
            let code = body.error.as_deref().and_then(oauth_error_name);
            tracing::warn!(
                status = status.as_u16(),
                oauth_error = code.as_deref().unwrap_or("-"),
                "token endpoint refused the request"
            );
            match (status, code.as_deref()) {
                (_, Some("use_dpop_nonce")) if self.dpop.is_some() => {
                    let new_nonce = headers
                        .get("dpop-nonce")
                        .and_then(|v| v.to_str().ok())
                        .filter(|n| {
                            !n.is_empty()
                                && n.len() <= 512
                                && n.chars().all(|c| c.is_ascii_graphic())
                        })
                        .map(str::to_owned);
                    match new_nonce {
                        Some(n) if !nonce_retry_used => {
                            nonce_retry_used = true;
                            *self
                                .token_nonce
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner) = Some(n);
                            continue;
                        }
                        Some(_) => return Err(TokenError::DpopNonceLoop),
                        None => return Err(TokenError::Malformed),
                    }
                }
                (_, Some("invalid_client")) => return Err(TokenError::InvalidClient),
                (_, Some("invalid_scope")) => {
                    return Err(TokenError::InvalidScope {
                        scope: if self.scopes == SCOPES {
                            missing_scope(body.error_description.as_deref())
                        } else {
                            self.scopes
                        },
                    });
                }
                (_, Some("unauthorized_client")) => return Err(TokenError::UnauthorizedClient),
                (_, Some("invalid_dpop_proof")) => return Err(TokenError::InvalidDpopProof),
                (StatusCode::TOO_MANY_REQUESTS, _) => {
                    return Err(TokenError::RateLimited {
                        retry_after: Some(crate::errors::retry_after(
                            &headers,
                            Duration::from_secs(300),
                        )),
                    });
                }
                (s, c) => {
                    return Err(TokenError::Refused {
                        status: s.as_u16(),
                        code: c.unwrap_or("unknown").to_owned(),
                    });
                }
            }
        }
    }

    fn accept(&self, bytes: &[u8]) -> Result<AccessToken, TokenError> {
        let r: TokenResponse = serde_json::from_slice(bytes).map_err(|e| {
            tracing::warn!(category = ?e.classify(), "token response could not be parsed");
            TokenError::Malformed
        })?;
        let kind = if r.token_type.eq_ignore_ascii_case("bearer") {
            TokenKind::Bearer
        } else if r.token_type.eq_ignore_ascii_case("dpop") && self.dpop.is_some() {
            TokenKind::Dpop
        } else {
            tracing::warn!("token endpoint returned an unexpected token type");
            return Err(TokenError::Malformed);
        };
        if r.access_token.expose_secret().is_empty()
            || !r
                .access_token
                .expose_secret()
                .chars()
                .all(|c| c.is_ascii_graphic())
        {
            return Err(TokenError::Malformed);
        }
        if let Some(granted) = &r.scope {
            for wanted in self.scopes.split(' ') {
                if !granted.split(' ').any(|g| g == wanted) {
                    tracing::warn!(scope = wanted, "the issued token lacks a scope fctr needs");
                }
            }
        }
        let lifetime = Duration::from_secs(r.expires_in.unwrap_or(3600).clamp(1, 86_400));
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            dpop = kind == TokenKind::Dpop,
            "access token issued"
        );
        Ok(AccessToken {
            value: r.access_token,
            kind,
            refresh_at: Instant::now() + lifetime - margin,
            generation,
        })
    }
}

/// Names the missing scope when Okta's description mentions one of ours; the description itself is dropped.
fn missing_scope(description: Option<&str>) -> &'static str {
    let d = description.unwrap_or_default();
    // Check the longer-prefixed names first; "okta.users.manage" does not contain "okta.users.read".
    let manage = d.contains("okta.users.manage");
    let read = d.contains("okta.users.read");
    match (read, manage) {
        (false, true) => "okta.users.manage",
        (true, false) => "okta.users.read",
        _ => SCOPES,
    }
}

/// Fuzzing hook (feature `fuzzing`): a token-endpoint body through what [`TokenSource::fetch`] does with it, a
/// success body through [`TokenSource::accept`] (with and without DPoP) and a refusal body through the error
/// decoding (`error` name, missing scope).
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_bodies(bytes: &[u8]) {
    static SOURCES: std::sync::OnceLock<Vec<TokenSource>> = std::sync::OnceLock::new();
    let sources = SOURCES.get_or_init(|| {
        let Ok(url) = Url::parse("https://acme.okta.com/oauth2/v1/token") else {
            return Vec::new();
        };
        let source = |dpop| {
            TokenSource::new(
                "0oafuzz".to_owned(),
                "kid".to_owned(),
                SecretString::from("not a key"),
                SigningAlgorithm::Es256,
                url.clone(),
                dpop,
                Duration::from_secs(1),
            )
        };
        let mut v = vec![source(None)];
        if let Ok(k) = DpopKey::generate() {
            v.push(source(Some(k)));
        }
        v
    });
    for s in sources {
        let _ = s.accept(bytes);
    }
    let body: TokenErrorBody = serde_json::from_slice(bytes).unwrap_or(TokenErrorBody {
        error: None,
        error_description: None,
    });
    let _ = body.error.as_deref().and_then(oauth_error_name);
    let _ = missing_scope(body.error_description.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_scope_names_only_known_scopes() {
        assert_eq!(
            missing_scope(Some(
                "The following scopes are not allowed: okta.users.manage"
            )),
            "okta.users.manage"
        );
        assert_eq!(
            missing_scope(Some("okta.users.read canary")),
            "okta.users.read"
        );
        assert_eq!(missing_scope(Some("canary@example.com")), SCOPES);
        assert_eq!(missing_scope(None), SCOPES);
    }

    #[test]
    fn token_errors_map_to_port_errors() {
        let e: PortError = TokenError::InvalidScope {
            scope: "okta.users.manage",
        }
        .into();
        assert_eq!(e.to_string(), "forbidden: missing scope okta.users.manage");
        let e: PortError = TokenError::InvalidClient.into();
        assert!(matches!(e, PortError::Unauthorized));
        assert_eq!(
            TokenError::InvalidScope {
                scope: "okta.users.read"
            }
            .to_string(),
            "the service app was not granted scope okta.users.read"
        );
    }
}
