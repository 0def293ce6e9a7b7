//! The key layout. Every key starts with the configured prefix; what follows names no person and carries no bearer
//! credential: opaque random ids (verification ids) or SHA-256 hashes of whatever the caller gave.

use fctr_ports::{PseudoId, RateKey, VerificationId};
use sha2::{Digest, Sha256};

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// Lowercase hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lowercase hex SHA-256 of several parts, each length-prefixed so that no two different lists hash alike.
fn sha256_hex_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P:v:<verification id>`: a hash `{ver, data(sealed)}`.
    pub(crate) fn verification(&self, id: VerificationId) -> String {
        format!("{}:v:{id}", self.prefix)
    }

    /// `P:g:<sha256(agent pseudonym, caller pseudonym)>`: a hash, see `grant.rs`.
    pub(crate) fn grant(&self, agent: &PseudoId, subject: &PseudoId) -> String {
        let h = sha256_hex_parts(&[agent.as_str().as_bytes(), subject.as_str().as_bytes()]);
        format!("{}:g:{h}", self.prefix)
    }

    /// `P:r:<sha256(rate key)>`: a sorted set of hit times.
    pub(crate) fn rate(&self, key: &RateKey) -> String {
        format!("{}:r:{}", self.prefix, sha256_hex(key.as_str().as_bytes()))
    }

    /// The SHA-256 of a session id: the only form in which a session id reaches Redis.
    pub(crate) fn session_hash(id: &str) -> String {
        sha256_hex(id.as_bytes())
    }

    /// `P:s:<sha256(session id)>`: a hash `{ver, data(sealed)}`, alive while the session may be.
    pub(crate) fn session(&self, hash: &str) -> String {
        format!("{}:s:{hash}", self.prefix)
    }

    /// `P:sx:<sha256(session id)>`: the id is taken (a live session or a tombstone).
    pub(crate) fn session_taken(&self, hash: &str) -> String {
        format!("{}:sx:{hash}", self.prefix)
    }

    /// `P:sidx`: live-session index (sorted set of session hashes by the time they stop being live).
    pub(crate) fn session_index(&self) -> String {
        format!("{}:sidx", self.prefix)
    }

    /// `P:pl:<sha256(pre-login key)>`: sealed pre-login state.
    pub(crate) fn pre_login(&self, key: &str) -> String {
        format!("{}:pl:{}", self.prefix, sha256_hex(key.as_bytes()))
    }

    /// `P:l:<sha256(lease key)>`: the SHA-256 of the holder.
    pub(crate) fn lease(&self, key: &str) -> String {
        format!("{}:l:{}", self.prefix, sha256_hex(key.as_bytes()))
    }

    /// `P:c:<sha256(value key)>`: a sealed coordinator value.
    pub(crate) fn value(&self, key: &str) -> String {
        format!("{}:c:{}", self.prefix, sha256_hex(key.as_bytes()))
    }

    /// `P:t:<sha256(topic)>`: the pub/sub channel of a topic.
    pub(crate) fn topic(&self, topic: &str) -> String {
        format!("{}:t:{}", self.prefix, sha256_hex(topic.as_bytes()))
    }

    /// `P:t:*`: the one pattern each store instance subscribes to.
    pub(crate) fn topic_pattern(&self) -> String {
        format!("{}:t:*", self.prefix)
    }
}

/// The associated data a sealed value is bound to: the Redis key name and, for a hash, the field.
pub(crate) fn aad(key: &str, field: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(key.len() + 1 + field.len());
    v.extend_from_slice(key.as_bytes());
    v.push(0);
    v.extend_from_slice(field.as_bytes());
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(
            sha256_hex_parts(&[b"ab", b"c"]),
            sha256_hex_parts(&[b"a", b"bc"])
        );
    }

    #[test]
    fn keys_carry_hashes_not_values() {
        let k = Keys::new("fctr");
        let s = k.session(&Keys::session_hash("raw-session-id"));
        assert!(s.starts_with("fctr:s:") && !s.contains("raw-session-id"));
        assert!(!k.pre_login("raw-pre").contains("raw-pre"));
        let rk = RateKey::parse("code:k1:abc").unwrap();
        assert!(!k.rate(&rk).contains("abc"));
        assert!(!k.lease("poll:x").contains("poll"));
        assert!(!k.topic("events:x").contains("events"));
        assert_eq!(k.topic_pattern(), "fctr:t:*");
    }
}
