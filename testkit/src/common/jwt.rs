//! JWS helpers shared by the fakes' token endpoints: header decoding, signature checks, algorithm parsing.

use std::str::FromStr as _;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::util::b64url_decode;

/// Splits a compact JWS and decodes its header.
pub(crate) fn jwt_header(token: &str) -> Option<Value> {
    let head = token.split('.').next()?;
    serde_json::from_slice(&b64url_decode(head)?).ok()
}

/// Verifies a JWS signature with `key` and `alg` and returns the claims; checks no claim.
pub(crate) fn verify_signature(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<Value, String> {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    jsonwebtoken::decode::<Value>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// Parses an asymmetric JWS `alg` (never `none` or HMAC).
pub(crate) fn asymmetric_alg(name: &str) -> Option<Algorithm> {
    let alg = Algorithm::from_str(name).ok()?;
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::EdDSA
    )
    .then_some(alg)
}
