//! Management API authorization: `SSWS`, `Bearer` and `DPoP` schemes, scopes, and JWT helpers shared with the
//! token endpoint.

use axum::http::{HeaderMap, Method, header};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::error::OktaError;
use super::keys;
use super::state::Shared;
use super::util::{b64url, ct_eq};
use super::{SCOPE_USERS_MANAGE, SCOPE_USERS_READ};

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Manage,
    Logs,
}

impl Need {
    fn scope(self) -> &'static str {
        match self {
            Need::Read => SCOPE_USERS_READ,
            Need::Manage => SCOPE_USERS_MANAGE,
            Need::Logs => super::SCOPE_LOGS_READ,
        }
    }
}

/// Checks the `Authorization` header (and `DPoP` proof) for a management API call.
pub(crate) fn authorize(
    st: &Shared,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    need: Need,
) -> Result<(), OktaError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(OktaError::invalid_token("Bearer", "invalid_token"));
    };
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("SSWS") {
        if !credential.is_empty() && ct_eq(credential, &st.cfg.api_token) {
            return Ok(());
        }
        return Err(OktaError::invalid_token("SSWS", "invalid_token"));
    }
    let dpop = scheme.eq_ignore_ascii_case("DPoP");
    if !dpop && !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(OktaError::invalid_token("Bearer", "invalid_token"));
    }
    let now = st.now_secs();
    let token = st.lock().access_tokens.get(credential).cloned();
    let Some(token) = token.filter(|t| t.expires_at > now) else {
        return Err(OktaError::invalid_token(
            if dpop { "DPoP" } else { "Bearer" },
            "invalid_token",
        ));
    };
    match (&token.jkt, dpop) {
        (Some(jkt), true) => {
            let proof = headers
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let checked = verify_dpop_proof(st, proof, method.as_str(), path, Some(credential))
                .and_then(|(thumb, _)| {
                    if &thumb == jkt {
                        Ok(())
                    } else {
                        Err("key mismatch".into())
                    }
                });
            if checked.is_err() {
                return Err(OktaError::invalid_token("DPoP", "invalid_dpop_proof"));
            }
        }
        (None, false) => {}
        // A DPoP-bound token presented as Bearer, or a Bearer token presented as DPoP.
        _ => {
            return Err(OktaError::invalid_token(
                if dpop { "DPoP" } else { "Bearer" },
                "invalid_token",
            ));
        }
    }
    if !token.scopes.iter().any(|s| s == need.scope()) {
        let mut e = OktaError::forbidden();
        let base = st.cfg.base();
        e.www_authenticate = Some(format!(
            "{scheme} authorization_uri=\"{base}/oauth2/v1/authorize\", realm=\"{base}\", scope=\"{}\", \
             error=\"insufficient_scope\", error_description=\"The access token provided does not contain the \
             required scopes.\", resource=\"{path}\"",
            need.scope(),
            scheme = if dpop { "DPoP" } else { "Bearer" },
        ));
        return Err(e);
    }
    Ok(())
}

pub(crate) use crate::common::jwt::{asymmetric_alg, jwt_header, verify_signature};

/// Verifies a DPoP proof (RFC 9449): `typ`, asymmetric `alg`, embedded public `jwk`, signature, `htm`, the path
/// of `htu`, fresh `iat`, single-use `jti`, and `ath` when `access_token` is given. Returns the key's thumbprint
/// and the claims.
pub(crate) fn verify_dpop_proof(
    st: &Shared,
    proof: &str,
    htm: &str,
    path: &str,
    access_token: Option<&str>,
) -> Result<(String, Value), String> {
    if proof.is_empty() {
        return Err("The DPoP proof JWT header is missing.".into());
    }
    let header = jwt_header(proof).ok_or("DPoP proof is not a JWT")?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("DPoP proof typ must be dpop+jwt".into());
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(asymmetric_alg)
        .ok_or("DPoP proof alg must be asymmetric")?;
    let jwk = header.get("jwk").ok_or("DPoP proof has no jwk")?;
    let key = keys::decoding_key(jwk).ok_or("DPoP proof jwk is not a usable public key")?;
    let thumb = keys::thumbprint(jwk).ok_or("DPoP proof jwk has no thumbprint")?;
    let claims = verify_signature(proof, &key, alg)?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if !s("htm").is_some_and(|m| m.eq_ignore_ascii_case(htm)) {
        return Err("DPoP proof htm does not match".into());
    }
    let htu_path = s("htu")
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.path().to_string());
    if htu_path.as_deref() != Some(path) {
        return Err("DPoP proof htu does not match".into());
    }
    let now = st.now_secs();
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("DPoP proof has no iat")?;
    if (iat - now).abs() > 300 {
        return Err("DPoP proof iat is not fresh".into());
    }
    let jti = s("jti").ok_or("DPoP proof has no jti")?.to_string();
    if let Some(at) = access_token {
        let ath = b64url(&Sha256::digest(at.as_bytes()));
        if s("ath") != Some(ath.as_str()) {
            return Err("DPoP proof ath does not match the access token".into());
        }
    }
    let mut inner = st.lock();
    inner.dpop_jtis.retain(|_, exp| *exp > now);
    if inner
        .dpop_jtis
        .insert(format!("{thumb}:{jti}"), now + 600)
        .is_some()
    {
        return Err("DPoP proof jti was already used".into());
    }
    Ok((thumb, claims))
}
