//! `POST /oauth2/v1/token`: client credentials with `private_key_jwt` (service app, optional DPoP) and the
//! authorization code grant (agent sign-in, see [`super::oidc`]).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::FakeOktaState;
use super::auth::{asymmetric_alg, jwt_header, verify_dpop_proof, verify_signature};
use super::error::OAuthError;
use super::keys;
use super::state::AccessToken;
use super::util::random_id;

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

use crate::common::oidc::is_form;
pub(crate) use crate::common::oidc::no_store;

pub(crate) async fn token(
    State(st): State<FakeOktaState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !is_form(&headers) {
        return OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded.",
        )
        .into_response();
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        if form.insert(k.to_string(), v.into_owned()).is_some() {
            return OAuthError::invalid_request(format!("The '{k}' parameter is repeated."))
                .into_response();
        }
    }
    let result = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => client_credentials(&st, &headers, &form),
        Some("authorization_code") => super::oidc::exchange_code(&st, &headers, &form),
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )),
        None => Err(OAuthError::invalid_request(
            "The 'grant_type' parameter is required.",
        )),
    };
    match result {
        Ok(resp) => no_store(resp),
        Err(e) => e.into_response(),
    }
}

fn client_credentials(
    st: &FakeOktaState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let shared = &st.shared;
    let cfg = &shared.cfg;
    let client_id = cfg.service_client_id.as_str();
    if form.contains_key("client_secret") || headers.contains_key(header::AUTHORIZATION) {
        if form
            .get("client_id")
            .is_some_and(|c| c == &cfg.oidc_client_id)
        {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "The client is not authorized to use the provided grant type. Configured grant types: [authorization_code].",
            ));
        }
        return Err(OAuthError::invalid_client(
            "Client Credentials requests to the org authorization server must use the private_key_jwt token_endpoint_auth_method.",
        ));
    }
    let registered = shared.lock().service_keys.clone();
    let (jti, exp) = check_client_assertion(shared, form, client_id, &registered, true)?;
    let now = shared.now_secs();

    // Scopes.
    let requested: Vec<String> = form
        .get("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if requested.is_empty() {
        return Err(OAuthError::invalid_scope(
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        ));
    }
    let granted = shared.lock().service_scopes.clone();
    let missing: Vec<&str> = requested
        .iter()
        .filter(|r| !granted.contains(r))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "The following scopes are not granted to the client: {}.",
            missing.join(" ")
        )));
    }

    // DPoP, before the assertion's jti is spent so the client can retry with a nonce.
    let require_dpop = shared.lock().require_dpop;
    let mut jkt = None;
    if require_dpop {
        let proof = headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (thumb, proof_claims) =
            verify_dpop_proof(shared, proof, "POST", "/oauth2/v1/token", None)
                .map_err(OAuthError::invalid_dpop_proof)?;
        let nonce = shared.lock().dpop_nonce.clone();
        if proof_claims.get("nonce").and_then(Value::as_str) != Some(nonce.as_str()) {
            let mut e = OAuthError::new(
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof.",
            );
            e.dpop_nonce = Some(nonce);
            return Err(e);
        }
        jkt = Some(thumb);
    }

    let access_token = random_id(64);
    {
        let mut inner = shared.lock();
        inner.used_jtis.retain(|_, e| *e > now);
        if let Some(j) = jti {
            if inner.used_jtis.insert(j, exp).is_some() {
                return Err(OAuthError::invalid_client(
                    "The client_assertion token has already been used.",
                ));
            }
        }
        inner.access_tokens.retain(|_, t| t.expires_at > now);
        inner.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                scopes: requested.clone(),
                expires_at: now + 3600,
                jkt: jkt.clone(),
            },
        );
    }
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    Ok(Json(json!({
        "token_type": token_type,
        "expires_in": 3600,
        "access_token": access_token,
        "scope": requested.join(" "),
    }))
    .into_response())
}

/// Checks a `private_key_jwt` client assertion (RFC 7523) for `client_id` against its `registered` public keys:
/// type, signature, `iss`/`sub`, `aud` = the token endpoint, `exp` within the hour, `jti` not spent. Returns the
/// `jti` and `exp` for [`spend_jti`] (the caller spends it once everything else passed). `require_kid`: Okta
/// refuses a service app's assertion without `kid`; an app with one registered key also takes one without.
pub(crate) fn check_client_assertion(
    shared: &super::state::Shared,
    form: &HashMap<String, String>,
    client_id: &str,
    registered: &[Value],
    require_kid: bool,
) -> Result<(Option<String>, i64), OAuthError> {
    let cfg = &shared.cfg;
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(OAuthError::invalid_client(
            "The client_assertion_type is missing or invalid.",
        ));
    }
    let assertion = form
        .get("client_assertion")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| OAuthError::invalid_client("The client_assertion is missing."))?;
    if form.get("client_id").is_some_and(|c| c != client_id) {
        return Err(OAuthError::invalid_client(
            "The client_id does not match the client_assertion.",
        ));
    }
    let header = jwt_header(assertion)
        .ok_or_else(|| OAuthError::invalid_client("The client_assertion is not a JWT."))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(asymmetric_alg)
        .ok_or_else(|| OAuthError::invalid_client("The client_assertion alg is not supported."))?;
    let kid = header.get("kid").and_then(Value::as_str);
    if kid.is_none() && (require_kid || registered.len() != 1) {
        return Err(OAuthError::invalid_client(
            "The client_assertion token must contain a 'kid' header.",
        ));
    }
    let jwk = registered
        .iter()
        .find(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .cloned()
        .ok_or_else(|| {
            OAuthError::invalid_client("The client_assertion token has an unknown 'kid'.")
        })?;
    if let Some(key_alg) = jwk.get("alg").and_then(Value::as_str) {
        if asymmetric_alg(key_alg) != Some(alg) {
            return Err(OAuthError::invalid_client(
                "The client_assertion alg does not match the registered key.",
            ));
        }
    }
    let key = keys::decoding_key(&jwk).ok_or_else(|| {
        OAuthError::invalid_client("The registered key for this 'kid' is unusable.")
    })?;
    let claims = verify_signature(assertion, &key, alg)
        .map_err(|_| OAuthError::invalid_client("The client_assertion signature is invalid."))?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(client_id) || s("sub") != Some(client_id) {
        return Err(OAuthError::invalid_client(
            "The client_assertion token must have 'iss' and 'sub' equal to the client_id.",
        ));
    }
    let token_endpoint = cfg.token_endpoint();
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == &token_endpoint,
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str() == Some(token_endpoint.as_str()),
        _ => false,
    };
    if !aud_ok {
        return Err(OAuthError::invalid_client(format!(
            "The audience claim for client_assertion must be the endpoint invoked for the request: '{token_endpoint}'."
        )));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| {
        OAuthError::invalid_client("The client_assertion token must have an 'exp' claim.")
    })?;
    let now = shared.now_secs();
    if exp <= now {
        return Err(OAuthError::invalid_client(
            "The client_assertion token is expired.",
        ));
    }
    if exp > now + 3600 {
        return Err(OAuthError::invalid_client(
            "The client_assertion token has an expiration too far into the future (more than one hour).",
        ));
    }
    if let Some(iat) = claims.get("iat") {
        if iat.as_i64().is_none_or(|iat| iat > now + 60) {
            return Err(OAuthError::invalid_client(
                "The client_assertion token was issued in the future.",
            ));
        }
    }
    let jti = match claims.get("jti") {
        None => None,
        Some(Value::String(j)) => Some(j.clone()),
        Some(_) => {
            return Err(OAuthError::invalid_client(
                "The client_assertion 'jti' must be a string.",
            ));
        }
    };
    if let Some(j) = &jti {
        if shared.lock().used_jtis.contains_key(j) {
            return Err(OAuthError::invalid_client(
                "The client_assertion token has already been used.",
            ));
        }
    }

    Ok((jti, exp))
}

/// Records an assertion's `jti` as spent until its `exp`; refuses one already spent.
pub(crate) fn spend_jti(
    shared: &super::state::Shared,
    jti: Option<String>,
    exp: i64,
) -> Result<(), OAuthError> {
    let now = shared.now_secs();
    let mut inner = shared.lock();
    inner.used_jtis.retain(|_, e| *e > now);
    if let Some(j) = jti {
        if inner.used_jtis.insert(j, exp).is_some() {
            return Err(OAuthError::invalid_client(
                "The client_assertion token has already been used.",
            ));
        }
    }
    Ok(())
}
