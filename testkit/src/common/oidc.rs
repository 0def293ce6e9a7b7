//! OAuth and OIDC helpers shared by the fakes: query parsing, redirects, PKCE strings, and ID-token signing with
//! test tweaks.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::keys::{Signer, pem};
use super::util::{b64url, b64url_decode, random_id};

/// Parses a query string into a map (later values win).
pub(crate) fn query_map(q: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Whether the request body is declared `application/x-www-form-urlencoded` (token endpoints take nothing else).
pub(crate) fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as token responses carry.
pub(crate) fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A 302 to `location`, not cached.
pub(crate) fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    no_store(resp)
}

/// `base` with `params` appended as a query.
pub(crate) fn with_params(base: &str, params: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", ser.finish())
}

/// RFC 7636 `code_verifier` / `code_challenge` syntax: 43–128 unreserved characters.
pub(crate) fn valid_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// How the OIDC web app (the portal's client) must authenticate at the token endpoint, when a test pins it
/// (RFC 7591 names). Unpinned, the fakes take either secret method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebClientAuth {
    /// HTTP Basic with the client secret only.
    ClientSecretBasic,
    /// The client secret in the form body only.
    ClientSecretPost,
    /// A `private_key_jwt` assertion signed by a registered key only (no secret accepted).
    PrivateKeyJwt,
}

impl WebClientAuth {
    /// The registered name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// A change to make to the next ID token, for the portal's security tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenTweak {
    /// `nonce` differs from the one sent.
    WrongNonce,
    /// `aud` is another client id.
    WrongAudience,
    /// `iss` is another issuer.
    WrongIssuer,
    /// `exp` (and `iat`) lie in the past.
    Expired,
    /// `amr` is `["pwd"]` (no MFA).
    AmrPwdOnly,
    /// The header `kid` is not in the JWKS.
    UnknownKid,
    /// The signature does not verify.
    BadSignature,
    /// No `nonce` claim.
    MissingNonce,
    /// The header says `alg: none` and the signature is empty (an unsecured JWS).
    AlgNone,
    /// HS256, keyed with the issuer's RSA public key as PEM text (`-----BEGIN PUBLIC KEY-----`, SPKI): the
    /// algorithm-confusion attack on a verifier that takes the algorithm from the token.
    HmacWithPublicKeyPem,
    /// HS256, keyed with the issuer's RSA public key as PKCS#1 DER bytes (the `n`/`e` a library would load).
    HmacWithPublicKeyDer,
    /// HS256, keyed with the client secret (valid for a confidential client only if the relying party allows
    /// HMAC algorithms; the fake signs it in its own token endpoint, as only it knows the secret).
    HmacWithClientSecret,
    /// Signed correctly, then the payload is changed (a `groups` claim naming every tier) keeping the signature.
    TamperedPayload,
    /// `nbf` lies an hour ahead (`iat` and `exp` are normal): not yet valid.
    NotYetValid,
    /// No `amr` claim at all (an IdP that does not say how the user authenticated).
    NoAmr,
    /// `auth_time` an hour back: the IdP reused an old session instead of honouring `prompt=login` and
    /// `max_age=0`.
    StaleAuthTime,
    /// No `amr`, and no `acr`/`acrs` either: nothing says the user used a second factor.
    NoMfaClaims,
}

/// Signs ID-token `claims` with `signer` (its algorithm), applying `tweak` (the portal's security tests): `nonce` is the
/// one sent, `other_client` the `aud` a wrong-audience token carries.
pub(crate) fn sign_id_token(
    signer: &Signer,
    mut claims: Map<String, Value>,
    tweak: Option<IdTokenTweak>,
    nonce: &str,
    other_client: &str,
    now: i64,
) -> Result<String, ()> {
    let mut header = Header::new(signer.alg);
    header.kid = Some(signer.kid.clone());
    match tweak {
        None
        | Some(
            IdTokenTweak::BadSignature
            | IdTokenTweak::TamperedPayload
            | IdTokenTweak::HmacWithClientSecret,
        ) => {}
        Some(IdTokenTweak::AlgNone) => {
            let head = b64url(br#"{"alg":"none","typ":"JWT"}"#);
            let body = serde_json::to_vec(&Value::Object(claims)).map_err(|_| ())?;
            return Ok(format!("{head}.{}.", b64url(&body)));
        }
        Some(IdTokenTweak::HmacWithPublicKeyPem | IdTokenTweak::HmacWithPublicKeyDer) => {
            let (pem, der) = public_key_forms(signer)?;
            let key = if tweak == Some(IdTokenTweak::HmacWithPublicKeyPem) {
                EncodingKey::from_secret(pem.as_bytes())
            } else {
                EncodingKey::from_secret(&der)
            };
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(signer.kid.clone());
            return jsonwebtoken::encode(&h, &Value::Object(claims), &key).map_err(|_| ());
        }
        Some(IdTokenTweak::NotYetValid) => {
            claims.insert("nbf".into(), json!(now + 3600));
        }
        Some(IdTokenTweak::WrongNonce) => {
            claims.insert("nonce".into(), json!(format!("not-{nonce}")));
        }
        Some(IdTokenTweak::MissingNonce) => {
            claims.remove("nonce");
        }
        Some(IdTokenTweak::WrongAudience) => {
            claims.insert("aud".into(), json!(other_client));
        }
        Some(IdTokenTweak::WrongIssuer) => {
            claims.insert("iss".into(), json!("https://evil.example.com"));
        }
        Some(IdTokenTweak::Expired) => {
            claims.insert("iat".into(), json!(now - 7200));
            claims.insert("exp".into(), json!(now - 3600));
        }
        Some(IdTokenTweak::AmrPwdOnly) => {
            claims.insert("amr".into(), json!(["pwd"]));
        }
        Some(IdTokenTweak::NoAmr) => {
            claims.remove("amr");
        }
        Some(IdTokenTweak::StaleAuthTime) => {
            claims.insert("auth_time".into(), json!(now - 3600));
        }
        Some(IdTokenTweak::NoMfaClaims) => {
            claims.insert("amr".into(), json!(["pwd"]));
            claims.remove("acr");
            claims.remove("acrs");
        }
        Some(IdTokenTweak::UnknownKid) => header.kid = Some(format!("unknown-{}", random_id(12))),
    }
    let mut token =
        jsonwebtoken::encode(&header, &Value::Object(claims), &signer.encoding).map_err(|_| ())?;
    if tweak == Some(IdTokenTweak::TamperedPayload) {
        // Same header and signature, a payload that grants more.
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(());
        };
        let mut v: Value = b64url_decode(payload)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(())?;
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "groups".into(),
                json!(["fctr-tier1", "fctr-tier2", "fctr-tier3"]),
            );
        }
        let body = serde_json::to_vec(&v).map_err(|_| ())?;
        token = format!("{head}.{}.{sig}", b64url(&body));
    }
    if tweak == Some(IdTokenTweak::BadSignature) {
        // Re-sign different claims' signature onto this token: a well-formed but wrong signature.
        let other = jsonwebtoken::encode(&header, &json!({"sub": "tampered"}), &signer.encoding)
            .map_err(|_| ())?;
        if let (Some(pos), Some(sig)) = (token.rfind('.'), other.rsplit('.').next()) {
            token = format!("{}.{sig}", &token[..pos]);
        }
    }
    Ok(token)
}

/// The signer's public key as SPKI PEM text and as PKCS#1 DER bytes, rebuilt from its JWK.
fn public_key_forms(signer: &Signer) -> Result<(String, Vec<u8>), ()> {
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    use rsa::pkcs8::EncodePublicKey as _;
    let part = |k: &str| {
        signer
            .public_jwk
            .get(k)
            .and_then(Value::as_str)
            .and_then(b64url_decode)
            .map(|b| rsa::BigUint::from_bytes_be(&b))
            .ok_or(())
    };
    let key = rsa::RsaPublicKey::new(part("n")?, part("e")?).map_err(|_| ())?;
    let der = key.to_pkcs1_der().map_err(|_| ())?.as_bytes().to_vec();
    let spki = key.to_public_key_der().map_err(|_| ())?;
    Ok((pem("PUBLIC KEY", spki.as_bytes()), der))
}

/// Signs `claims` HS256 with `secret` (the [`IdTokenTweak::HmacWithClientSecret`] token), `kid` as given.
pub(crate) fn sign_hs256(claims: &Value, secret: &[u8], kid: &str) -> Result<String, ()> {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret)).map_err(|_| ())
}
