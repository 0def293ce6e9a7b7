//! Fixture vocabulary both fake tenants share: what a fixture user is for, the protected and privileged group
//! names, and the deterministic TOTP secret of a fixture login.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// What a fixture user is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixtureRole {
    /// A caller: someone an agent verifies.
    Caller,
    /// An agent who signs in to the portal through the fake's OIDC pages.
    Agent,
}

/// Name of the protected group: members must never be reset through the helpdesk.
pub const PROTECTED_GROUP: &str = "fctr-protected";
/// Name of the privileged group.
pub const PRIVILEGED_GROUP: &str = "fctr-privileged";

/// The deterministic TOTP secret (20 bytes) of a fixture user: SHA-256("fctr-fake-totp:" + login), first 20 bytes.
pub fn totp_secret_for(login: &str) -> Vec<u8> {
    let digest = Sha256::digest(format!("fctr-fake-totp:{login}").as_bytes());
    digest[..20].to_vec()
}
