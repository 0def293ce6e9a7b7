//! The portal's in-memory caches, on `moka` (bounded, concurrent, entries expire on their own): bearer tokens
//! already verified ([`BearerCache`]) and agent roles read from the IdP ([`RoleCache`]). Memory only, never
//! shared between replicas; losing an entry costs one more check, never a wrong answer.
//!
//! Each entry also carries the time it stops being valid on the caller's clock (the engine's clock for roles, the
//! token's `exp` for bearers), checked on every read: moka's own expiry bounds how long memory is held, the
//! stored time decides what is served, so a manual clock in tests means what it says. When a cache is full, moka
//! evicts by its TinyLFU policy instead of the old "drop the expired, then everything".
//!
//! Layering: depends only on [`crate::oidc`] (the identity a token stands for).

use crate::oidc::Identity;
use chrono::{DateTime, Utc};
use fctr_core::Agent;
use moka::future::Cache;
use moka::policy::Expiry;
use std::time::{Duration, Instant};

/// Bearer tokens already verified, so that an integration calling the API many times with one token pays for the
/// signature check once (an RSA verification was the largest single cost of an API lookup).
///
/// An entry is the identity [`crate::oidc::Oidc::verify_bearer`] returned for a token, keyed by the token's SHA-256
/// (the token itself is not kept), and lives until the token's `exp` or [`BearerCache::MAX_AGE`] after it was
/// verified, whichever comes first. A token that was refused is never cached, so every refusal is decided (and
/// logged) by the full check. The cache holds at most [`BearerCache::CAPACITY`] tokens.
pub struct BearerCache {
    entries: Cache<[u8; 32], CachedBearer>,
}

#[derive(Clone)]
struct CachedBearer {
    identity: Identity,
    until: DateTime<Utc>,
    /// `until` less the time it was stored: how long moka keeps it.
    ttl: Duration,
}

/// Each bearer entry expires after its own time to live (the token's `exp`, capped).
struct BearerExpiry;

impl Expiry<[u8; 32], CachedBearer> for BearerExpiry {
    fn expire_after_create(&self, _: &[u8; 32], v: &CachedBearer, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &[u8; 32],
        v: &CachedBearer,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

impl Default for BearerCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(Self::CAPACITY as u64)
                .expire_after(BearerExpiry)
                .build(),
        }
    }
}

impl std::fmt::Debug for BearerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerCache").finish_non_exhaustive()
    }
}

impl BearerCache {
    /// Most tokens held.
    pub const CAPACITY: usize = 4096;
    /// Longest time a verification is reused, whatever the token's `exp`.
    pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    /// The identity of a token verified earlier and still live at `now`.
    pub async fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Identity> {
        let key = Self::key(token);
        let e = self.entries.get(&key).await?;
        if now < e.until {
            Some(e.identity)
        } else {
            self.entries.invalidate(&key).await;
            None
        }
    }

    /// Remembers the identity of a token that was just verified at `now`. The token's `exp` is read from its
    /// (verified) payload; without a readable `exp` nothing is cached.
    pub async fn put(&self, token: &str, identity: &Identity, now: DateTime<Utc>) {
        let Some(exp) = jwt_exp(token) else {
            return;
        };
        let until = exp.min(now + Self::MAX_AGE);
        let Ok(ttl) = (until - now).to_std() else {
            return;
        };
        if ttl.is_zero() {
            return;
        }
        let entry = CachedBearer {
            identity: identity.clone(),
            until,
            ttl,
        };
        self.entries.insert(Self::key(token), entry).await;
    }
}

/// The `exp` claim of a compact JWT whose signature was already checked.
fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    let exp = crate::oidc::payload_of(token)?.get("exp")?.as_i64()?;
    DateTime::from_timestamp(exp, 0)
}

/// How long a role read from the IdP is reused for the same agent, at most.
pub const ROLE_CACHE_TTL: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Roles read from the IdP, per agent (keyed by pseudonym), at most [`ROLE_CACHE_TTL`] old on the engine's clock.
/// Only roles found are kept, never a refusal or a failure. Memory only.
pub struct RoleCache {
    entries: Cache<String, (DateTime<Utc>, String)>,
}

impl Default for RoleCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(Self::CAPACITY as u64)
                .time_to_live(ROLE_CACHE_TTL.to_std().unwrap_or(Duration::from_secs(60)))
                .build(),
        }
    }
}

impl std::fmt::Debug for RoleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleCache").finish_non_exhaustive()
    }
}

impl RoleCache {
    /// Most agents held.
    pub const CAPACITY: usize = 4096;

    /// The role stored for `agent`, if it was read from the IdP less than [`ROLE_CACHE_TTL`] before `now`.
    pub async fn get(&self, agent: &Agent, now: DateTime<Utc>) -> Option<String> {
        let (at, role) = self.entries.get(agent.pseudonym().as_str()).await?;
        (now >= at && now - at < ROLE_CACHE_TTL).then_some(role)
    }

    /// Stores the role of `agent` (just read from the IdP at `now`); an agent without a role is not stored.
    pub async fn put(&self, agent: &Agent, now: DateTime<Utc>) {
        let Some(role) = agent.role() else {
            return;
        };
        self.entries
            .insert(
                agent.pseudonym().as_str().to_owned(),
                (now, role.to_owned()),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn jwt(payload: &serde_json::Value, sig: &str) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{sig}",
            b64(br#"{"alg":"RS256"}"#),
            b64(payload.to_string().as_bytes())
        )
    }

    fn agent() -> Identity {
        Identity {
            subject: "00uagent".to_owned(),
            groups: Some(vec!["helpdesk-tier2".to_owned()]),
            name: None,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_verified_token_is_reused_until_it_expires() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sig");
        assert!(cache.get(&t, at(1_000_000)).await.is_none());
        cache.put(&t, &agent(), at(1_000_000)).await;
        let got = cache.get(&t, at(1_000_050)).await;
        assert_eq!(got.map(|i| i.subject), Some("00uagent".to_owned()));
        assert!(
            cache.get(&t, at(1_000_100)).await.is_none(),
            "expired at its exp"
        );
    }

    #[tokio::test]
    async fn reuse_is_capped_at_max_age() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 2_000_000 }), "sig");
        cache.put(&t, &agent(), at(1_000_000)).await;
        let max = BearerCache::MAX_AGE.num_seconds();
        assert!(cache.get(&t, at(1_000_000 + max - 1)).await.is_some());
        assert!(cache.get(&t, at(1_000_000 + max)).await.is_none());
    }

    #[tokio::test]
    async fn any_other_token_is_not_found() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sig");
        cache.put(&t, &agent(), at(1_000_000)).await;
        // Same header and payload, another signature: a forgery must go through the full check.
        let forged = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sih");
        assert!(cache.get(&forged, at(1_000_001)).await.is_none());
        assert!(cache.get(&format!("{t} "), at(1_000_001)).await.is_none());
    }

    #[tokio::test]
    async fn tokens_without_a_usable_exp_are_not_cached() {
        let cache = BearerCache::default();
        for t in [
            jwt(&serde_json::json!({ "sub": "x" }), "sig"),
            jwt(&serde_json::json!({ "exp": "soon" }), "sig"),
            jwt(&serde_json::json!({ "exp": 999_999 }), "sig"),
            "not-a-jwt".to_owned(),
        ] {
            cache.put(&t, &agent(), at(1_000_000)).await;
            assert!(cache.get(&t, at(1_000_000)).await.is_none(), "{t}");
        }
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = BearerCache::default();
        for i in 0..(BearerCache::CAPACITY + 10) {
            let t = jwt(&serde_json::json!({ "exp": 1_000_100, "n": i }), "sig");
            cache.put(&t, &agent(), at(1_000_000)).await;
        }
        cache.entries.run_pending_tasks().await;
        let held = cache.entries.entry_count();
        assert!(held <= BearerCache::CAPACITY as u64, "{held}");
    }

    #[tokio::test]
    async fn the_cache_does_not_print_tokens_or_identities() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sig");
        cache.put(&t, &agent(), at(1_000_000)).await;
        let shown = format!("{cache:?}");
        assert!(
            !shown.contains("00uagent") && !shown.contains("sig"),
            "{shown}"
        );
    }
}
