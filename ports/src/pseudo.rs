//! Keyed pseudonyms: how audit events, usage records and logs name people without naming them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a pseudonymization key, e.g. `k1`. Recorded in every pseudonym so keys can be rotated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Parses a key id: 1 to 16 characters of `[a-z0-9_-]`.
    ///
    /// # Errors
    /// [`crate::IdError`] when the text breaks that rule.
    pub fn parse(s: impl Into<String>) -> Result<Self, crate::IdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(crate::IdError::Empty { what: "key id" });
        }
        if s.len() > 16 {
            return Err(crate::IdError::TooLong {
                what: "key id",
                max: 16,
            });
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(crate::IdError::BadCharacter { what: "key id" });
        }
        Ok(Self(s))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = crate::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}
impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.0
    }
}
impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A keyed pseudonym: `<key id>:<base64url(HMAC)>`, at least 128 bits of MAC. The same person under the same key
/// always gets the same pseudonym; without the key it cannot be reversed or recomputed.
///
/// `fctr-core` mints them; stores and logs only carry them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PseudoId(String);

impl PseudoId {
    /// Fewest MAC bytes a pseudonym carries (128 bits).
    pub const MIN_MAC_BYTES: usize = 16;
    /// Most MAC bytes a pseudonym carries (256 bits).
    pub const MAX_MAC_BYTES: usize = 32;

    /// Builds a pseudonym from a key id and MAC bytes (truncated to at most 32 bytes).
    ///
    /// # Errors
    /// [`crate::IdError::TooLong`] (reported as too short) when fewer than 16 MAC bytes are given.
    pub fn from_mac(key: &KeyId, mac: &[u8]) -> Result<Self, crate::IdError> {
        use base64::Engine as _;
        if mac.len() < Self::MIN_MAC_BYTES {
            return Err(crate::IdError::TooLong {
                what: "pseudonym MAC (too short)",
                max: Self::MIN_MAC_BYTES,
            });
        }
        let mac = &mac[..mac.len().min(Self::MAX_MAC_BYTES)];
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac);
        Ok(Self(format!("{}:{}", key.as_str(), b64)))
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`crate::IdError`] when the key id or the MAC part is malformed or too short.
    pub fn parse(s: impl Into<String>) -> Result<Self, crate::IdError> {
        use base64::Engine as _;
        let s = s.into();
        let (key, mac) = s
            .split_once(':')
            .ok_or(crate::IdError::BadCharacter { what: "pseudonym" })?;
        KeyId::parse(key)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| crate::IdError::BadCharacter { what: "pseudonym" })?;
        if bytes.len() < Self::MIN_MAC_BYTES || bytes.len() > Self::MAX_MAC_BYTES {
            return Err(crate::IdError::BadCharacter { what: "pseudonym" });
        }
        Ok(Self(s))
    }

    /// The key id part.
    #[must_use]
    pub fn key_id(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }

    /// The text form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PseudoId {
    type Error = crate::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}
impl From<PseudoId> for String {
    fn from(p: PseudoId) -> String {
        p.0
    }
}
impl fmt::Display for PseudoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for PseudoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PseudoId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rules() {
        let k = KeyId::parse("k1").unwrap();
        let p = PseudoId::from_mac(&k, &[7u8; 32]).unwrap();
        assert_eq!(p.key_id(), "k1");
        assert_eq!(PseudoId::parse(p.as_str()).unwrap(), p);
        assert!(PseudoId::from_mac(&k, &[7u8; 15]).is_err());
        assert!(PseudoId::parse("k1:short").is_err());
        assert!(PseudoId::parse("no-colon").is_err());
        assert!(PseudoId::parse("K1:AAAAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(KeyId::parse("k".repeat(17)).is_err());
    }
}
