//! `private_key_jwt` client authentication (OpenID Connect Core 9, RFC 7523): the portal proves who it is at the
//! token endpoint with a short-lived JWT signed by its own private key, so no shared secret exists to leak.
//!
//! The assertion: `iss` = `sub` = the client id, `aud` = the token endpoint URL, `jti` random and unique, `iat`
//! now, `exp` five minutes later (Okta allows at most an hour; Entra ten minutes); header `kid` and/or
//! `x5t#S256` as configured. Each token request gets a fresh one.

use fctr_wiring::config::{ClientKey, ClientKeyAlg};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

/// The assertion type parameter value (RFC 7523 section 2.2).
pub(super) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of one assertion.
const LIFETIME_SECS: i64 = 300;

/// A loaded signing key and the header it signs with.
pub(super) struct Assertions {
    key: EncodingKey,
    header: Header,
    client_id: String,
}

impl Assertions {
    /// Loads the key. `None` when the PEM is not a key of the configured algorithm's type (nothing about the
    /// key is reported).
    pub(super) fn new(key: &ClientKey, client_id: &str) -> Option<Self> {
        let pem = key.pem.expose_secret().as_bytes();
        let (alg, encoding) = match key.alg {
            ClientKeyAlg::RS256 => (Algorithm::RS256, EncodingKey::from_rsa_pem(pem).ok()?),
            ClientKeyAlg::PS256 => (Algorithm::PS256, EncodingKey::from_rsa_pem(pem).ok()?),
            ClientKeyAlg::ES256 => (Algorithm::ES256, EncodingKey::from_ec_pem(pem).ok()?),
            ClientKeyAlg::EdDSA => (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem).ok()?),
        };
        let mut header = Header::new(alg);
        header.typ = Some("JWT".into());
        header.kid.clone_from(&key.kid);
        header.x5t_s256.clone_from(&key.x5t_s256);
        let me = Self {
            key: encoding,
            header,
            client_id: client_id.to_owned(),
        };
        // jsonwebtoken parses lazily for some key types: sign once now so a bad key fails at start, not at the
        // first agent's sign-in.
        me.sign("https://token.invalid/", 0).ok()?;
        Some(me)
    }

    /// The JWS algorithm name (checked against the provider's advertised list).
    pub(super) fn alg_name(&self) -> &'static str {
        match self.header.alg {
            Algorithm::RS256 => "RS256",
            Algorithm::PS256 => "PS256",
            Algorithm::ES256 => "ES256",
            _ => "EdDSA",
        }
    }

    /// A fresh assertion for `audience` (the token endpoint URL), issued at `now` (Unix seconds).
    pub(super) fn sign(&self, audience: &str, now: i64) -> Result<SecretString, ()> {
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let jwt =
            Zeroizing::new(jsonwebtoken::encode(&self.header, &claims, &self.key).map_err(|_| ())?);
        Ok(SecretString::from(jwt.as_str().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_the_wrong_type_is_refused_at_load() {
        let key = ClientKey {
            pem: SecretString::from(format!(
                "-----BEGIN {l}-----\nAAAA\n-----END {l}-----\n",
                l = "PRIVATE KEY"
            )),
            alg: ClientKeyAlg::RS256,
            kid: None,
            x5t_s256: None,
        };
        assert!(Assertions::new(&key, "client").is_none());
    }
}
