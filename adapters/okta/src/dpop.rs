//! DPoP (RFC 9449) proofs with an ephemeral P-256 key, generated once per adapter with `ring`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use url::Url;

/// An ephemeral DPoP key. The private half never leaves this process and is not persisted.
pub(crate) struct DpopKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64url of the JOSE header (constant per key).
    header_b64: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DpopKey(ephemeral P-256)")
    }
}

/// A DPoP proof could not be signed.
#[derive(Debug)]
pub(crate) struct SignError;

impl DpopKey {
    /// Generates a fresh P-256 key.
    pub(crate) fn generate() -> Result<Self, SignError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| SignError)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| SignError)?;
        let public = pair.public_key().as_ref();
        // Uncompressed point: 0x04 || x (32) || y (32).
        if public.len() != 65 || public.first() != Some(&4) {
            return Err(SignError);
        }
        let (x, y) = (&public[1..33], &public[33..65]);
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": { "kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y) },
        });
        let header_b64 = B64.encode(serde_json::to_vec(&header).map_err(|_| SignError)?);
        Ok(Self {
            pair,
            rng,
            header_b64,
        })
    }

    /// A proof for one request. `htu` is the request URL without query or fragment; `nonce` is the server's
    /// last `DPoP-Nonce`; `access_token` (API calls only) adds `ath`.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &Url,
        nonce: Option<&str>,
        access_token: Option<&SecretString>,
    ) -> Result<String, SignError> {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut claims = serde_json::Map::new();
        claims.insert("htm".into(), method.into());
        claims.insert("htu".into(), htu.as_str().into());
        claims.insert("iat".into(), chrono::Utc::now().timestamp().into());
        claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        if let Some(n) = nonce {
            claims.insert("nonce".into(), n.into());
        }
        if let Some(t) = access_token {
            let digest = Sha256::digest(t.expose_secret().as_bytes());
            claims.insert("ath".into(), B64.encode(digest).into());
        }
        let payload = serde_json::to_vec(&claims).map_err(|_| SignError)?;
        let signing_input = format!("{}.{}", self.header_b64, B64.encode(payload));
        let sig = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| SignError)?;
        Ok(format!("{signing_input}.{}", B64.encode(sig.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    #[test]
    fn proof_is_a_valid_es256_jwt_with_the_claims() {
        let k = DpopKey::generate().unwrap();
        let url = Url::parse("https://acme.okta.com/api/v1/users/00u1?limit=1#f").unwrap();
        let token = SecretString::from("tok");
        let p = k.proof("GET", &url, Some("n1"), Some(&token)).unwrap();
        let parts: Vec<&str> = p.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        let x = B64.decode(header["jwk"]["x"].as_str().unwrap()).unwrap();
        let y = B64.decode(header["jwk"]["y"].as_str().unwrap()).unwrap();
        let mut point = vec![4u8];
        point.extend(x);
        point.extend(y);
        let sig = B64.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://acme.okta.com/api/v1/users/00u1");
        assert_eq!(claims["nonce"], "n1");
        assert_eq!(claims["ath"], B64.encode(Sha256::digest(b"tok")).as_str());
        let p2 = k.proof("GET", &url, None, None).unwrap();
        let c2: serde_json::Value =
            serde_json::from_slice(&B64.decode(p2.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_ne!(c2["jti"], claims["jti"]);
        assert!(c2.get("nonce").is_none() && c2.get("ath").is_none());
    }
}
