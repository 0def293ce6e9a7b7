//! The in-memory store of four-eyes approval requests.

use crate::sync::{add_std, lock};
use crate::ttl::TtlMap;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, ApprovalDecision, ApprovalId, ApprovalRecord, ApprovalStatus, ApprovalStore, Clock,
    DecideOutcome, PortError, PseudoId, TakeOutcome, TenantId,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// (tenant, agent, caller, action): the slot that names the latest request.
type SlotKey = (TenantId, PseudoId, PseudoId, ActionKind);

/// Four-eyes approval requests held in memory with TTLs.
///
/// - A request stored with `ttl` lives while `now < stored_at + ttl` by the store's clock; from then on it reads as
///   absent. Decisions and takes keep the request's TTL.
/// - [`ApprovalStore::decide`] and [`ApprovalStore::take`] are atomic (one lock held from the read to the write):
///   of any number of concurrent calls for one request, exactly one decides (or takes) it.
///
/// Single node only (use the Redis adapter for replicas).
pub struct MemoryApprovalStore {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

struct State {
    records: TtlMap<(TenantId, ApprovalId), ApprovalRecord>,
    slots: TtlMap<SlotKey, ApprovalId>,
    /// When each stored request's TTL runs out (kept beside the map so a decision can keep it).
    expiry: TtlMap<ApprovalId, DateTime<Utc>>,
}

impl MemoryApprovalStore {
    /// An empty store reading time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Mutex::new(State {
                records: TtlMap::new(),
                slots: TtlMap::new(),
                expiry: TtlMap::new(),
            }),
        }
    }

    /// Entries held (requests), including expired ones not yet collected. For tests and metrics.
    #[must_use]
    pub fn stored_len(&self) -> usize {
        lock(&self.state).records.stored_len()
    }
}

impl State {
    /// Replaces a live record in place, keeping its TTL.
    fn replace(&mut self, r: ApprovalRecord, now: DateTime<Utc>) {
        let until = self.expiry.get(&r.id, now).copied();
        if let Some(until) = until {
            self.records.insert((r.tenant.clone(), r.id), r, until, now);
        }
    }
}

#[async_trait]
impl ApprovalStore for MemoryApprovalStore {
    async fn put(&self, record: &ApprovalRecord, ttl: Duration) -> Result<bool, PortError> {
        let now = self.clock.now();
        let until = add_std(now, ttl);
        let mut st = lock(&self.state);
        let key = (record.tenant.clone(), record.id);
        if st.records.get(&key, now).is_some() {
            return Ok(false);
        }
        st.records.insert(key, record.clone(), until, now);
        st.expiry.insert(record.id, until, until, now);
        let slot = (
            record.tenant.clone(),
            record.agent.clone(),
            record.subject_pseudo.clone(),
            record.action,
        );
        st.slots.insert(slot, record.id, until, now);
        Ok(true)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let now = self.clock.now();
        Ok(lock(&self.state)
            .records
            .get(&(tenant.clone(), id), now)
            .cloned())
    }

    async fn find(
        &self,
        tenant: &TenantId,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let now = self.clock.now();
        let mut st = lock(&self.state);
        let slot = (tenant.clone(), agent.clone(), subject.clone(), action);
        let Some(id) = st.slots.get(&slot, now).copied() else {
            return Ok(None);
        };
        Ok(st.records.get(&(tenant.clone(), id), now).cloned())
    }

    async fn pending(&self, tenant: &TenantId) -> Result<Vec<ApprovalRecord>, PortError> {
        let now = self.clock.now();
        let mut st = lock(&self.state);
        st.records.sweep(now);
        let mut out: Vec<ApprovalRecord> = st
            .records
            .values()
            .filter(|r| r.tenant == *tenant && r.status == ApprovalStatus::Pending)
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn decide(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        decision: &ApprovalDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, PortError> {
        let store_now = self.clock.now();
        let mut st = lock(&self.state);
        let Some(current) = st.records.get(&(tenant.clone(), id), store_now).cloned() else {
            return Ok(DecideOutcome::Missing);
        };
        if current.status != ApprovalStatus::Pending {
            return Ok(DecideOutcome::AlreadyDecided(current.status));
        }
        if current.expires_at <= now {
            return Ok(DecideOutcome::Expired);
        }
        let decided = ApprovalRecord {
            status: if decision.approve {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Refused
            },
            decided_by: Some(decision.by.clone()),
            decided_at: Some(decision.at),
            ..current
        };
        st.replace(decided.clone(), store_now);
        Ok(DecideOutcome::Decided(Box::new(decided)))
    }

    async fn take(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        now: DateTime<Utc>,
    ) -> Result<TakeOutcome, PortError> {
        let store_now = self.clock.now();
        let mut st = lock(&self.state);
        let Some(current) = st.records.get(&(tenant.clone(), id), store_now).cloned() else {
            return Ok(TakeOutcome::Missing);
        };
        if current.status != ApprovalStatus::Approved {
            return Ok(TakeOutcome::NotApproved(current.status));
        }
        if current.expires_at <= now {
            return Ok(TakeOutcome::Expired);
        }
        let used = ApprovalRecord {
            status: ApprovalStatus::Used,
            ..current
        };
        st.replace(used.clone(), store_now);
        Ok(TakeOutcome::Taken(Box::new(used)))
    }
}
