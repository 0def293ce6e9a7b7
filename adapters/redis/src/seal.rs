//! Sealing: AES-256-GCM under a key derived from the configured seal key, bound to the Redis key it is stored at.

use crate::error::ConnectError;
use fctr_ports::PortError;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};

/// The first byte of every sealed value: the format (and key derivation) version.
const FORMAT_V1: u8 = 1;
/// HKDF salt and info: name this crate and the version, so the same secret used elsewhere derives another key.
const HKDF_SALT: &[u8] = b"fctr-redis";
const HKDF_INFO: &[u8] = b"fctr-redis seal v1 aes-256-gcm";
/// Fewest bytes of seal key accepted (a 256-bit key written as text is longer than this).
pub(crate) const MIN_SEAL_KEY_BYTES: usize = 32;

/// Seals and opens values. Holds only the derived key (ring does not print it; this type has no `Debug` that
/// shows anything).
pub(crate) struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// Derives the sealing key from `secret` with HKDF-SHA256.
    pub(crate) fn new(secret: &SecretString) -> Result<Self, ConnectError> {
        let ikm = secret.expose_secret().as_bytes();
        if ikm.len() < MIN_SEAL_KEY_BYTES {
            return Err(ConnectError::InvalidOptions {
                what: "the seal key must be at least 32 bytes",
            });
        }
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(ikm);
        let okm =
            prk.expand(&[HKDF_INFO], &AES_256_GCM)
                .map_err(|_| ConnectError::InvalidOptions {
                    what: "the seal key could not be derived",
                })?;
        let key = UnboundKey::from(okm);
        Ok(Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plain` for the Redis key (and field) named by `aad`: `version || nonce || ciphertext || tag`, with a
    /// fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, PortError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| PortError::Unavailable)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| PortError::Unavailable)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens a sealed value stored under `aad`. `None` when it is not ours, was moved from another key, was sealed
    /// under another seal key, or was changed.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != FORMAT_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sealer(fill: char) -> Sealer {
        Sealer::new(&SecretString::from(fill.to_string().repeat(40))).unwrap()
    }

    #[test]
    fn round_trip_binds_the_key_name_and_the_seal_key() {
        let s = sealer('a');
        let sealed = s.seal(b"p:s:1\0data", b"hello").unwrap();
        assert_eq!(
            s.open(b"p:s:1\0data", &sealed).as_deref(),
            Some(&b"hello"[..])
        );
        assert!(
            s.open(b"p:s:2\0data", &sealed).is_none(),
            "moved to another key"
        );
        assert!(
            sealer('b').open(b"p:s:1\0data", &sealed).is_none(),
            "another seal key"
        );
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(s.open(b"p:s:1\0data", &changed).is_none(), "changed");
        assert!(s.open(b"p:s:1\0data", &[]).is_none());
        assert!(s.open(b"p:s:1\0data", &[FORMAT_V1, 0, 0]).is_none());
    }

    #[test]
    fn nonces_are_fresh() {
        let s = sealer('a');
        assert_ne!(s.seal(b"k", b"x").unwrap(), s.seal(b"k", b"x").unwrap());
    }

    #[test]
    fn a_short_seal_key_is_refused() {
        let e = Sealer::new(&SecretString::from("short".to_owned())).unwrap_err();
        assert!(matches!(e, ConnectError::InvalidOptions { .. }));
    }
}
