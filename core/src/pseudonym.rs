//! Keyed pseudonyms (HMAC-SHA256) for people in audit events, usage records and logs.

use fctr_ports::{AgentId, KeyId, PseudoId, SubjectId};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use std::fmt;

/// Why a pseudonymization key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is shorter than 32 bytes.
    #[error("the pseudonymization key must be at least 32 bytes")]
    TooShort,
}

struct Key {
    id: KeyId,
    secret: SecretBox<[u8]>,
}

/// Mints pseudonyms: `<key id>:<base64url(HMAC-SHA256(key, "fctr-pseudo-v1" 0x00 normalized-id))>`, 256 bits.
///
/// The same identifier under the same key always gives the same pseudonym, so one person can be followed across
/// events without being named. The key is a secret, zeroized on drop, and never printed (`Debug` shows the key
/// id only). Keys rotate: the current key mints; retired keys are kept only to find older events
/// ([`Pseudonymizer::all_for_subject`]).
///
/// Agent ids and subject ids share one namespace on purpose: an agent's IdP user id and the same person's id as a
/// caller pseudonymize alike, so "agent acted on their own account" is visible in the audit log.
pub struct Pseudonymizer {
    current: Key,
    retired: Vec<Key>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("key_id", &self.current.id)
            .field(
                "retired",
                &self.retired.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn key(id: KeyId, secret: &SecretString) -> Result<Key, KeyError> {
    let bytes = secret.expose_secret().as_bytes();
    if bytes.len() < 32 {
        return Err(KeyError::TooShort);
    }
    Ok(Key {
        id,
        secret: SecretBox::new(bytes.to_vec().into_boxed_slice()),
    })
}

/// Normalizes an identifier: surrounding white space removed; UUID-shaped ids (Entra object ids) lowercased,
/// since GUIDs are case-insensitive; everything else kept as is (Okta ids are case-sensitive).
fn normalize(id: &str) -> String {
    let t = id.trim();
    let uuid_shaped = t.len() == 36 && t.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if uuid_shaped {
        t.to_ascii_lowercase()
    } else {
        t.to_owned()
    }
}

impl Pseudonymizer {
    /// A pseudonymizer with one current key (at least 32 bytes, e.g. 32 random bytes base64-encoded).
    ///
    /// # Errors
    /// [`KeyError::TooShort`] for a key under 32 bytes.
    pub fn new(key_id: KeyId, secret: &SecretString) -> Result<Self, KeyError> {
        Ok(Self {
            current: key(key_id, secret)?,
            retired: Vec::new(),
        })
    }

    /// Adds a retired key, used only to find events written before a rotation.
    ///
    /// # Errors
    /// [`KeyError::TooShort`] for a key under 32 bytes.
    pub fn with_retired(mut self, key_id: KeyId, secret: &SecretString) -> Result<Self, KeyError> {
        self.retired.push(key(key_id, secret)?);
        Ok(self)
    }

    /// The current key id.
    #[must_use]
    pub fn key_id(&self) -> &KeyId {
        &self.current.id
    }

    fn mint(k: &Key, id: &str) -> PseudoId {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(k.secret.expose_secret()) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        };
        mac.update(b"fctr-pseudo-v1\0");
        mac.update(normalize(id).as_bytes());
        let out = mac.finalize().into_bytes();
        match PseudoId::from_mac(&k.id, &out) {
            Ok(p) => p,
            Err(_) => unreachable_hmac(),
        }
    }

    /// The pseudonym of a caller.
    #[must_use]
    pub fn subject(&self, id: &SubjectId) -> PseudoId {
        Self::mint(&self.current, id.as_str())
    }

    /// The pseudonym of an agent.
    #[must_use]
    pub fn agent(&self, id: &AgentId) -> PseudoId {
        Self::mint(&self.current, id.as_str())
    }

    /// The pseudonyms of a caller under every key, current first: what to search for across a rotation.
    #[must_use]
    pub fn all_for_subject(&self, id: &SubjectId) -> Vec<PseudoId> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .map(|k| Self::mint(k, id.as_str()))
            .collect()
    }
}

/// HMAC-SHA256 takes keys of any length and a 32-byte MAC always makes a valid pseudonym: this cannot happen.
#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA256 accepts any key length and yields 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, secret: &str) -> Pseudonymizer {
        Pseudonymizer::new(
            KeyId::parse(id).unwrap(),
            &SecretString::from(secret.to_owned()),
        )
        .unwrap()
    }

    #[test]
    fn only_uuid_shaped_ids_are_lowercased() {
        assert_eq!(normalize("  ABCDEF "), "ABCDEF", "short hex stays as it is");
        let long_not_hex = format!("00u{}", "Z".repeat(33)); // 36 characters, not a UUID
        assert_eq!(long_not_hex.len(), 36);
        assert_eq!(normalize(&long_not_hex), long_not_hex);
        assert_eq!(
            normalize("6E7B768E-07E2-4810-8459-485F84F8F204"),
            "6e7b768e-07e2-4810-8459-485f84f8f204"
        );
    }

    #[test]
    fn debug_names_key_ids_never_secrets() {
        let current = "debug-canary-".repeat(3);
        let p = p("k2", &current)
            .with_retired(
                KeyId::parse("k1").unwrap(),
                &SecretString::from("old-canary-".repeat(4)),
            )
            .unwrap();
        let d = format!("{p:?}");
        assert!(
            d.starts_with("Pseudonymizer") && d.contains("k2") && d.contains("k1"),
            "{d}"
        );
        assert!(!d.contains("canary"), "{d}");
    }

    #[test]
    fn stable_keyed_and_unreadable() {
        let a = p("k1", "0123456789abcdef0123456789abcdef");
        let b = p("k1", "fedcba9876543210fedcba9876543210");
        let s = SubjectId::parse("00uCANARY42").unwrap();
        assert_eq!(a.subject(&s), a.subject(&s));
        assert_ne!(
            a.subject(&s),
            b.subject(&s),
            "a different key gives a different pseudonym"
        );
        assert!(!a.subject(&s).as_str().contains("CANARY"));
        assert!(a.subject(&s).as_str().starts_with("k1:"));
        // 256-bit MAC, base64url without padding: 43 characters.
        assert_eq!(a.subject(&s).as_str().len(), "k1:".len() + 43);
        assert!(!format!("{a:?}").contains("0123456789"));
    }

    #[test]
    fn agent_and_subject_share_a_namespace_and_guids_normalize() {
        let a = p("k1", "0123456789abcdef0123456789abcdef");
        let g = "6E7B768E-07E2-4810-8459-485F84F8F204";
        let s = SubjectId::parse(g).unwrap();
        let s_lower = SubjectId::parse(g.to_ascii_lowercase()).unwrap();
        assert_eq!(a.subject(&s), a.subject(&s_lower));
        assert_eq!(a.subject(&s), a.agent(&AgentId::parse(g).unwrap()));
        let okta_a = SubjectId::parse("00uAbC").unwrap();
        let okta_b = SubjectId::parse("00uabc").unwrap();
        assert_ne!(
            a.subject(&okta_a),
            a.subject(&okta_b),
            "Okta ids are case-sensitive"
        );
    }

    #[test]
    fn short_keys_refused_and_rotation_finds_old() {
        assert_eq!(
            Pseudonymizer::new(
                KeyId::parse("k1").unwrap(),
                &SecretString::from("short".to_owned())
            )
            .unwrap_err(),
            KeyError::TooShort
        );
        let old = p("k1", "0123456789abcdef0123456789abcdef");
        let new = p("k2", "fedcba9876543210fedcba9876543210")
            .with_retired(
                KeyId::parse("k1").unwrap(),
                &SecretString::from("0123456789abcdef0123456789abcdef".to_owned()),
            )
            .unwrap();
        let s = SubjectId::parse("00u1").unwrap();
        let all = new.all_for_subject(&s);
        assert_eq!(all[0], new.subject(&s));
        assert_eq!(all[1], old.subject(&s));
    }
}
