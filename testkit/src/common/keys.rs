//! Key material: the service app's ES256 key pair (ring), the RS256 ID-token signing key (rsa), JWKs and
//! RFC 7638 thumbprints.

use std::sync::{Arc, OnceLock};

use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::util::{b64, b64url};

/// Errors creating key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// ring or rsa refused to generate or encode a key.
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// A generated EC P-256 key pair: PKCS#8 PEM private key and its public JWK.
pub(crate) struct EcKeyPair {
    pub private_pem: String,
    pub public_jwk: Value,
    pub kid: String,
}

/// Generates an EC P-256 key pair with ring and returns the PKCS#8 PEM and the public JWK (alg ES256).
pub(crate) fn generate_ec_p256() -> Result<EcKeyPair, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let public = pair.public_key().as_ref();
    if public.len() != 65 || public[0] != 4 {
        return Err(KeyError::Generate(
            "unexpected EC public key encoding".into(),
        ));
    }
    let x = b64url(&public[1..33]);
    let y = b64url(&public[33..65]);
    let kid = thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})).unwrap_or_default();
    let public_jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
    Ok(EcKeyPair {
        private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
        public_jwk,
        kid,
    })
}

/// PEM-armours DER bytes.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let body = b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA or EC public JWK.
pub(crate) fn thumbprint(jwk: &Value) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match s("kty")? {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        _ => return None,
    };
    Some(b64url(&Sha256::digest(canonical.as_bytes())))
}

/// Builds a verification key from a public JWK (RSA or EC). Private members are refused.
pub(crate) fn decoding_key(jwk: &Value) -> Option<DecodingKey> {
    if jwk.get("d").is_some() {
        return None;
    }
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    match s("kty")? {
        "RSA" => DecodingKey::from_rsa_components(s("n")?, s("e")?).ok(),
        "EC" => DecodingKey::from_ec_components(s("x")?, s("y")?).ok(),
        "OKP" if s("crv")? == "Ed25519" => DecodingKey::from_ed_components(s("x")?).ok(),
        _ => None,
    }
}

/// The key that signs ID tokens: RS256 by default, EdDSA (Ed25519) when a test asks for it.
pub(crate) struct Signer {
    pub alg: jsonwebtoken::Algorithm,
    pub encoding: EncodingKey,
    pub public_jwk: Value,
    pub kid: String,
}

static RSA_SIGNER: OnceLock<Arc<Signer>> = OnceLock::new();

/// The process-wide RS256 signing key, generated on first use (RSA-2048 generation takes a moment, so every fake
/// in one process shares it). Call from a blocking context.
pub(crate) fn rsa_signer() -> Result<Arc<Signer>, KeyError> {
    if let Some(s) = RSA_SIGNER.get() {
        return Ok(Arc::clone(s));
    }
    let signer = Arc::new(generate_rsa()?);
    Ok(Arc::clone(RSA_SIGNER.get_or_init(|| signer)))
}

/// Generates a fresh RSA-2048 signing key (not shared).
pub(crate) fn generate_rsa() -> Result<Signer, KeyError> {
    let mut rng = rand::thread_rng();
    let key =
        rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| KeyError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let encoding = EncodingKey::from_rsa_der(der.as_bytes());
    let n = b64url(&key.n().to_bytes_be());
    let e = b64url(&key.e().to_bytes_be());
    let kid = thumbprint(&json!({"kty": "RSA", "n": n, "e": e})).unwrap_or_default();
    let public_jwk =
        json!({"kty": "RSA", "alg": "RS256", "kid": kid, "use": "sig", "e": e, "n": n});
    Ok(Signer {
        alg: jsonwebtoken::Algorithm::RS256,
        encoding,
        public_jwk,
        kid,
    })
}

/// Generates a fresh Ed25519 signing key (ring) for EdDSA ID tokens; its JWK is an `OKP` key (RFC 8037).
pub(crate) fn generate_ed25519() -> Result<Signer, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let x = b64url(pair.public_key().as_ref());
    let kid = thumbprint(&json!({"kty": "OKP", "crv": "Ed25519", "x": x})).unwrap_or_default();
    Ok(Signer {
        alg: jsonwebtoken::Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": kid, "use": "sig", "x": x}),
        kid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_pair_signs_and_verifies_through_jwk() {
        let pair = generate_ec_p256().unwrap();
        assert!(
            pair.private_pem
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        let enc = EncodingKey::from_ec_pem(pair.private_pem.as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(pair.kid.clone());
        let token = jsonwebtoken::encode(&header, &json!({"sub": "x"}), &enc).unwrap();
        let dec = decoding_key(&pair.public_jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<Value>(&token, &dec, &v).unwrap();
    }

    #[test]
    fn ed25519_signs_and_verifies_through_jwk() {
        let signer = generate_ed25519().unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(signer.kid.clone());
        let token = jsonwebtoken::encode(&header, &json!({"sub": "x"}), &signer.encoding).unwrap();
        let dec = decoding_key(&signer.public_jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<Value>(&token, &dec, &v).unwrap();
        let other = generate_ed25519().unwrap();
        assert!(
            jsonwebtoken::decode::<Value>(&token, &decoding_key(&other.public_jwk).unwrap(), &v)
                .is_err()
        );
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = json!({"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
