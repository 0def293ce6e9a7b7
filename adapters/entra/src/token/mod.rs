//! Client-credentials tokens from the Entra v2.0 token endpoint: secret or signed certificate assertion, cached
//! until shortly before expiry.

use crate::config::{AssertionAlgorithm, CertificateRef, ConfigError, EntraCredential};
use crate::errors::{retry_after, safe_token, transport_error};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fctr_ports::PortError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;
use zeroize::Zeroizing;

mod error;
pub use error::TokenError;

/// The scope for Microsoft Graph application permissions.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The scope for the MFA connector.
pub const CONNECTOR_SCOPE: &str =
    "https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector/.default";

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertions live five minutes.
const ASSERTION_LIFETIME: i64 = 300;

/// The credential, prepared: thumbprint header computed, key checked.
enum Prepared {
    Secret(SecretString),
    Certificate {
        key_pem: SecretString,
        algorithm: Algorithm,
        /// `x5t#S256` (PS256) or `x5t` (RS256), base64url.
        thumbprint: String,
    },
}

/// The longest token lifetime believed (Entra issues 60–90 minutes); a longer `expires_in` is read as this, so the
/// cache arithmetic cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(86_400);

/// A cached access token.
struct Cached {
    token: SecretString,
    refresh_at: Instant,
    generation: u64,
}

/// Mints and caches client-credentials tokens for one client id and scope.
pub(crate) struct TokenSource {
    client_id: String,
    token_url: Url,
    scope: &'static str,
    credential: Prepared,
    cache: Mutex<Option<Cached>>,
    generation: std::sync::atomic::AtomicU64,
    field: &'static str,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url.as_str())
            .field("scope", &self.scope)
            .field(
                "credential",
                &match self.credential {
                    Prepared::Secret(_) => "client secret [redacted]",
                    Prepared::Certificate { .. } => "certificate [redacted]",
                },
            )
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_codes: Option<Vec<u32>>,
    #[serde(default)]
    error_description: Option<String>,
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        N(u64),
        S(String),
    }
    Ok(match Option::<NumOrStr>::deserialize(d)? {
        Some(NumOrStr::N(n)) => Some(n),
        Some(NumOrStr::S(s)) => s.parse().ok(),
        None => None,
    })
}

impl TokenSource {
    /// Prepares a token source. `field` names the configuration field in errors.
    pub(crate) fn new(
        authority: &Url,
        tenant: &str,
        client_id: &str,
        credential: &EntraCredential,
        scope: &'static str,
        field: &'static str,
    ) -> Result<Self, ConfigError> {
        let token_url = authority
            .join(&format!("{tenant}/oauth2/v2.0/token"))
            .map_err(|_| ConfigError::BadUrl { field: "authority" })?;
        let credential = match credential {
            EntraCredential::ClientSecret(s) => {
                if s.expose_secret().trim().is_empty() {
                    return Err(ConfigError::EmptySecret { field });
                }
                Prepared::Secret(s.clone())
            }
            EntraCredential::Certificate {
                private_key_pem,
                certificate,
                algorithm,
            } => {
                let (alg, thumbprint) = thumbprint(certificate, *algorithm, field)?;
                let prepared = Prepared::Certificate {
                    key_pem: private_key_pem.clone(),
                    algorithm: alg,
                    thumbprint,
                };
                // Sign once now, so a bad key is a configuration error, not a failure at the first lookup.
                let probe = Claims {
                    aud: "probe",
                    iss: "probe",
                    sub: "probe",
                    jti: String::new(),
                    nbf: 0,
                    iat: 0,
                    exp: 0,
                };
                sign(&prepared, &probe).map_err(|_| ConfigError::BadPrivateKey { field })?;
                prepared
            }
        };
        Ok(Self {
            client_id: client_id.to_owned(),
            token_url,
            scope,
            credential,
            cache: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
            field,
        })
    }

    /// The token endpoint URL (also the assertion audience).
    pub(crate) fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// Builds a signed client assertion (certificate credentials only).
    fn assertion(&self) -> Result<Zeroizing<String>, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            aud: self.token_url.as_str(),
            iss: &self.client_id,
            sub: &self.client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        sign(&self.credential, &claims)
    }

    /// A valid token and its generation (for [`TokenSource::refresh_after_401`]).
    pub(crate) async fn token(
        &self,
        client: &reqwest::Client,
    ) -> Result<(SecretString, u64), TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok((c.token.clone(), c.generation));
            }
        }
        let fresh = self.fetch(client).await?;
        let out = (fresh.token.clone(), fresh.generation);
        *cache = Some(fresh);
        Ok(out)
    }

    /// Drops the token of generation `used` (refused with a 401) and mints a new one; if another task already
    /// replaced it, returns that one.
    pub(crate) async fn refresh_after_401(
        &self,
        client: &reqwest::Client,
        used: u64,
    ) -> Result<(SecretString, u64), TokenError> {
        {
            let mut cache = self.cache.lock().await;
            if cache.as_ref().is_some_and(|c| c.generation == used) {
                *cache = None;
            }
        }
        self.token(client).await
    }

    /// The application permissions (`roles` claim) of the token cached now: what the tenant actually granted.
    /// `None` when no token is cached or its payload cannot be read; an empty list when it carries no roles.
    pub(crate) async fn granted_roles(&self) -> Option<Vec<String>> {
        let cache = self.cache.lock().await;
        roles_of(cache.as_ref()?.token.expose_secret())
    }

    /// Mints a token now, bypassing the cache (for credential checks).
    pub(crate) async fn check(&self, client: &reqwest::Client) -> Result<(), TokenError> {
        let fresh = self.fetch(client).await?;
        *self.cache.lock().await = Some(fresh);
        Ok(())
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<Cached, TokenError> {
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("client_id", &self.client_id);
            form.append_pair("scope", self.scope);
            form.append_pair("grant_type", "client_credentials");
            match &self.credential {
                Prepared::Secret(s) => {
                    form.append_pair("client_secret", s.expose_secret());
                }
                Prepared::Certificate { .. } => {
                    let assertion = self.assertion()?;
                    form.append_pair("client_assertion_type", ASSERTION_TYPE);
                    form.append_pair("client_assertion", &assertion);
                }
            }
            Zeroizing::new(form.finish())
        };
        let resp = client
            .post(self.token_url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| match transport_error(&e) {
                PortError::Timeout => TokenError::Timeout,
                _ => TokenError::Unavailable,
            })?;
        let status = resp.status();
        let retry = retry_after(resp.headers());
        let bytes = Zeroizing::new(
            resp.bytes()
                .await
                .map_err(|e| match transport_error(&e) {
                    PortError::Timeout => TokenError::Timeout,
                    _ => TokenError::Unavailable,
                })?
                .to_vec(),
        );
        if status.is_success() {
            return self.accept(&bytes);
        }
        let err = classify(status, retry, &bytes);
        tracing::warn!(field = self.field, status = status.as_u16(), error = %err, "entra: token request refused");
        Err(err)
    }

    /// Reads a successful token-endpoint answer into a cached token.
    fn accept(&self, bytes: &[u8]) -> Result<Cached, TokenError> {
        let parsed: TokenResponse =
            serde_json::from_slice(bytes).map_err(|_| TokenError::Malformed)?;
        let token = Zeroizing::new(parsed.access_token);
        if token.is_empty()
            || parsed
                .token_type
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(TokenError::Malformed);
        }
        let lifetime = parsed
            .expires_in
            .unwrap_or(3599)
            .min(MAX_LIFETIME.as_secs());
        let margin = (lifetime / 2).min(300);
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        tracing::debug!(
            field = self.field,
            expires_in = lifetime,
            "entra: access token minted"
        );
        Ok(Cached {
            token: SecretString::from(token.as_str().to_owned()),
            refresh_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin)),
            generation,
        })
    }
}

/// Maps a token-endpoint failure. Only the OAuth `error` token and the numeric AADSTS code are read.
/// The `roles` claim of an access token (a JWT; Entra signs it for Graph, which verifies it: fctr only reads which
/// permissions it carries). `None` when the token is not a readable JWT.
fn roles_of(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    Some(roles)
}

fn classify(status: StatusCode, retry: Option<Duration>, body: &[u8]) -> TokenError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return TokenError::RateLimited { retry_after: retry };
    }
    let parsed: Option<TokenErrorBody> = serde_json::from_slice(body).ok();
    let Some(parsed) = parsed else {
        return if status.is_server_error() {
            TokenError::Rejected {
                status: status.as_u16(),
                error: None,
                code: None,
            }
        } else {
            TokenError::Malformed
        };
    };
    let code = parsed
        .error_codes
        .as_ref()
        .and_then(|c| c.first().copied())
        .or_else(|| aadsts_prefix(parsed.error_description.as_deref()));
    let error = parsed.error.as_deref().and_then(safe_token);
    match code {
        Some(c @ (7_000_215 | 7_000_222)) => TokenError::InvalidClientSecret { code: c },
        Some(700_016) => TokenError::UnknownApplication,
        Some(c @ (90_002 | 900_023)) => TokenError::TenantNotFound { code: c },
        Some(c @ (700_027 | 700_023 | 7_000_274 | 700_021)) => {
            TokenError::CertificateRejected { code: c }
        }
        Some(700_024) => TokenError::ClockSkew,
        Some(7_000_112) => TokenError::ApplicationDisabled,
        Some(c @ (70_011 | 1_002_012 | 500_011)) => TokenError::InvalidScope { code: c },
        _ => TokenError::Rejected {
            status: status.as_u16(),
            error,
            code,
        },
    }
}

/// Reads the number of a leading `AADSTS<digits>:` (the code only; the rest of the description is ignored).
fn aadsts_prefix(description: Option<&str>) -> Option<u32> {
    let rest = description?.strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    digits.parse().ok()
}

fn thumbprint(
    cert: &CertificateRef,
    algorithm: AssertionAlgorithm,
    field: &'static str,
) -> Result<(Algorithm, String), ConfigError> {
    use crate::config::thumbprint_bytes;
    match (algorithm, cert) {
        (AssertionAlgorithm::Ps256, CertificateRef::Der(der)) => {
            if der.is_empty() {
                return Err(ConfigError::BadCertificate {
                    field,
                    rule: "the certificate DER is empty",
                });
            }
            Ok((
                Algorithm::PS256,
                URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            ))
        }
        (AssertionAlgorithm::Ps256, CertificateRef::Sha256Thumbprint(t)) => {
            let b = thumbprint_bytes(t, 32).ok_or(ConfigError::BadCertificate {
                field,
                rule: "the SHA-256 thumbprint must be 64 hex digits or 43 base64url characters",
            })?;
            Ok((Algorithm::PS256, URL_SAFE_NO_PAD.encode(b)))
        }
        (AssertionAlgorithm::Ps256, CertificateRef::Sha1Thumbprint(_)) => {
            Err(ConfigError::BadCertificate {
                field,
                rule: "PS256 needs the SHA-256 thumbprint (x5t#S256): give the certificate DER or its SHA-256 thumbprint, or choose RS256",
            })
        }
        (AssertionAlgorithm::Rs256, CertificateRef::Der(der)) => {
            if der.is_empty() {
                return Err(ConfigError::BadCertificate {
                    field,
                    rule: "the certificate DER is empty",
                });
            }
            let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
            Ok((Algorithm::RS256, URL_SAFE_NO_PAD.encode(d.as_ref())))
        }
        (AssertionAlgorithm::Rs256, CertificateRef::Sha1Thumbprint(t)) => {
            let b = thumbprint_bytes(t, 20).ok_or(ConfigError::BadCertificate {
                field,
                rule: "the SHA-1 thumbprint must be 40 hex digits or 27 base64url characters",
            })?;
            Ok((Algorithm::RS256, URL_SAFE_NO_PAD.encode(b)))
        }
        (AssertionAlgorithm::Rs256, CertificateRef::Sha256Thumbprint(_)) => {
            Err(ConfigError::BadCertificate {
                field,
                rule: "RS256 needs the SHA-1 thumbprint (x5t): give the certificate DER or its SHA-1 thumbprint, or choose PS256",
            })
        }
    }
}

fn sign(credential: &Prepared, claims: &Claims<'_>) -> Result<Zeroizing<String>, TokenError> {
    let Prepared::Certificate {
        key_pem,
        algorithm,
        thumbprint,
    } = credential
    else {
        return Err(TokenError::Signing);
    };
    let mut header = Header::new(*algorithm);
    header.typ = Some("JWT".to_owned());
    match algorithm {
        Algorithm::PS256 => header.x5t_s256 = Some(thumbprint.clone()),
        _ => header.x5t = Some(thumbprint.clone()),
    }
    let key = EncodingKey::from_rsa_pem(key_pem.expose_secret().as_bytes())
        .map_err(|_| TokenError::Signing)?;
    jsonwebtoken::encode(&header, claims, &key)
        .map(Zeroizing::new)
        .map_err(|_| TokenError::Signing)
}

/// Fuzzing hook (feature `fuzzing`): a token-endpoint body through what [`TokenSource::fetch`] does with it, as
/// a success body ([`TokenSource::accept`]) and as a refusal body ([`classify`]) for a few statuses.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_bodies(bytes: &[u8]) {
    static SOURCE: std::sync::OnceLock<Option<TokenSource>> = std::sync::OnceLock::new();
    let source = SOURCE.get_or_init(|| {
        let authority = Url::parse(crate::DEFAULT_AUTHORITY).ok()?;
        TokenSource::new(
            &authority,
            "contoso.onmicrosoft.com",
            "00000000-0000-0000-0000-000000000002",
            &EntraCredential::ClientSecret(SecretString::from("fuzz")),
            crate::GRAPH_SCOPE,
            "fuzz",
        )
        .ok()
    });
    if let Some(s) = source {
        let _ = s.accept(bytes);
    }
    for status in [
        StatusCode::BAD_REQUEST,
        StatusCode::UNAUTHORIZED,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::SERVICE_UNAVAILABLE,
    ] {
        let _ = classify(status, None, bytes);
    }
}

#[cfg(test)]
mod tests;
