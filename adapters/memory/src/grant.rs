//! The in-memory grant store.

use crate::sync::{add_std, lock};
use crate::ttl::TtlMap;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, Clock, GrantConsumption, GrantRecord, GrantStore, PortError, PseudoId,
    VerificationId, VerificationRecord,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Verifications in progress and the grants they mint, held in memory with TTLs.
///
/// - An entry stored with `ttl` lives while `now < stored_at + ttl` by the store's clock; from then on it reads as
///   absent (`Ok(None)`, and a compare-and-swap against it fails). The records' own `expires_at` fields are the
///   engine's business and are not consulted: the store's expiry is the TTL it was given.
/// - Verifications are keyed by id; grants by (agent pseudonym, subject pseudonym), one grant per pair.
/// - [`GrantStore::consume`] is atomic (one lock held from the read to the "used" mark): of any number of
///   concurrent calls for a single-use grant, exactly one gets it. A spent grant leaves a "used" marker in its
///   slot until its TTL runs out, so later attempts read [`GrantConsumption::AlreadyUsed`].
/// - Expired entries are collected opportunistically on later writes (and when read), so memory stays bounded by
///   the live entries; [`MemoryGrantStore::purge_expired`] collects them on demand.
///
/// Single node only: two processes with their own store share nothing (use the Redis adapter for that).
pub struct MemoryGrantStore {
    clock: Arc<dyn Clock>,
    verifications: Mutex<TtlMap<VerificationId, VerificationRecord>>,
    grants: Mutex<TtlMap<(PseudoId, PseudoId), Slot>>,
}

/// What one (agent, caller) slot holds.
enum Slot {
    Live(GrantRecord),
    /// A spent single-use grant (kept for the "already used" answer and for [`GrantStore::restore`]).
    Used(GrantRecord),
}

impl MemoryGrantStore {
    /// An empty store reading time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            verifications: Mutex::new(TtlMap::new()),
            grants: Mutex::new(TtlMap::new()),
        }
    }

    /// Drops every expired verification and grant now; returns how many were dropped.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now();
        let v = lock(&self.verifications).sweep(now);
        let g = lock(&self.grants).sweep(now);
        v + g
    }

    /// Entries held (verifications plus grants), including expired ones not yet collected. For tests and metrics.
    #[must_use]
    pub fn stored_len(&self) -> usize {
        lock(&self.verifications).stored_len() + lock(&self.grants).stored_len()
    }
}

#[async_trait]
impl GrantStore for MemoryGrantStore {
    async fn put_verification(
        &self,
        record: &VerificationRecord,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, PortError> {
        let now = self.clock.now();
        let mut map = lock(&self.verifications);
        let current = map.get(&record.id, now).map(|r| r.version);
        let write = match (expected_version, current) {
            (None, None) => true,
            (Some(expected), Some(current)) => expected == current,
            (None, Some(_)) | (Some(_), None) => false,
        };
        if write {
            map.insert(record.id, record.clone(), add_std(now, ttl), now);
        } else {
            map.maybe_sweep(now);
        }
        Ok(write)
    }

    async fn get_verification(
        &self,
        id: VerificationId,
    ) -> Result<Option<VerificationRecord>, PortError> {
        let now = self.clock.now();
        Ok(lock(&self.verifications).get(&id, now).cloned())
    }

    async fn put_grant(&self, grant: &GrantRecord, ttl: Duration) -> Result<(), PortError> {
        let now = self.clock.now();
        let key = (grant.agent.clone(), grant.subject.clone());
        lock(&self.grants).insert(key, Slot::Live(grant.clone()), add_std(now, ttl), now);
        Ok(())
    }

    async fn find_grant(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
    ) -> Result<Option<GrantRecord>, PortError> {
        let now = self.clock.now();
        let key = (agent.clone(), subject.clone());
        Ok(match lock(&self.grants).get(&key, now) {
            Some(Slot::Live(g)) => Some(g.clone()),
            Some(Slot::Used(_)) | None => None,
        })
    }

    async fn consume(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
        at: DateTime<Utc>,
    ) -> Result<GrantConsumption, PortError> {
        let now = self.clock.now();
        let key = (agent.clone(), subject.clone());
        let mut grants = lock(&self.grants);
        let Some(slot) = grants.get_mut(&key, now) else {
            return Ok(GrantConsumption::Missing);
        };
        let g = match slot {
            Slot::Used(_) => return Ok(GrantConsumption::AlreadyUsed),
            Slot::Live(g) => g,
        };
        if at >= g.expires_at {
            return Ok(GrantConsumption::Expired);
        }
        if !g.actions.contains(&action) {
            return Ok(GrantConsumption::DoesNotCover);
        }
        let g = g.clone();
        if g.single_use {
            *slot = Slot::Used(g.clone());
        }
        Ok(GrantConsumption::Consumed(g))
    }

    async fn restore(&self, grant: &GrantRecord, ttl: Duration) -> Result<bool, PortError> {
        let now = self.clock.now();
        let key = (grant.agent.clone(), grant.subject.clone());
        let mut grants = lock(&self.grants);
        let ours = matches!(grants.get(&key, now), Some(Slot::Used(g)) if g.id == grant.id);
        if ours {
            grants.insert(key, Slot::Live(grant.clone()), add_std(now, ttl), now);
        }
        Ok(ours)
    }
}
