//! The in-memory audit log.

use crate::sync::lock;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, AuditLog, AuditQuery, ChainAnchor, ChainBreak, ChainCheckpoint, ChainHash,
    ChainSummary, PortError, PurgeReport, SealedEvent, TenantId, verify_tenant_chain,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One tenant's chain as stored.
#[derive(Default)]
struct Chain {
    /// The retained events, in stored order.
    events: Vec<SealedEvent>,
    /// Where the retained chain starts, once a purge has removed its beginning.
    anchor: Option<ChainAnchor>,
    /// The latest recorded head.
    checkpoint: Option<ChainCheckpoint>,
}

impl Chain {
    /// The `(seq, prev_hash)` the next appended event gets: after the last stored event, else at the anchor, else
    /// at genesis. Derived from what is stored, as a database-backed log would, so a tampered tail shows up as a
    /// break rather than being papered over.
    fn next_link(&self) -> (u64, ChainHash) {
        match (self.events.last(), &self.anchor) {
            (Some(last), _) => (last.seq.saturating_add(1), last.hash),
            (None, Some(anchor)) => (anchor.seq, anchor.prev_hash),
            (None, None) => (0, ChainHash::GENESIS),
        }
    }
}

#[derive(Default)]
struct State {
    chains: BTreeMap<TenantId, Chain>,
    fail_appends: bool,
}

/// An append-only, hash-chained audit log held in memory: one chain per tenant, sealed with
/// [`SealedEvent`]'s hash and checked with [`verify_tenant_chain`], exactly as every other store does.
///
/// Appends are serialized under one lock, so concurrent appends never fork a chain and sequence numbers stay
/// contiguous. "Durable" here means "in this process's memory": nothing survives a restart.
///
/// Besides the port, it can record checkpoints ([`MemoryAuditLog::checkpoint`]) and has two test hooks:
/// [`MemoryAuditLog::fail_appends`] and [`MemoryAuditLog::dangerous_tamper`].
#[derive(Default)]
pub struct MemoryAuditLog {
    state: Mutex<State>,
}

impl MemoryAuditLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the tenant's current head (last stored event) as its latest checkpoint and returns it; from then on
    /// [`AuditLog::verify_chain`] reports the chain as truncated if it no longer reaches that head with that hash
    /// (unless a purge legitimately removed it). `None`, and nothing recorded, when the tenant has no stored
    /// events.
    ///
    /// In production the engine would also write the checkpoint somewhere the log's own writer cannot rewrite
    /// (an `EventKind::Checkpoint` event, an external notary); here it is kept beside the chain.
    pub fn checkpoint(&self, tenant: &TenantId) -> Option<ChainCheckpoint> {
        let mut state = lock(&self.state);
        let chain = state.chains.get_mut(tenant)?;
        let last = chain.events.last()?;
        let cp = ChainCheckpoint {
            tenant: tenant.clone(),
            seq: last.seq,
            hash: last.hash,
        };
        chain.checkpoint = Some(cp.clone());
        Some(cp)
    }

    /// The tenant's latest recorded checkpoint, if any.
    #[must_use]
    pub fn latest_checkpoint(&self, tenant: &TenantId) -> Option<ChainCheckpoint> {
        lock(&self.state)
            .chains
            .get(tenant)
            .and_then(|c| c.checkpoint.clone())
    }

    /// Where the tenant's retained chain starts after purges (`None`: at seq 0 from genesis).
    #[must_use]
    pub fn anchor(&self, tenant: &TenantId) -> Option<ChainAnchor> {
        lock(&self.state)
            .chains
            .get(tenant)
            .and_then(|c| c.anchor.clone())
    }

    /// Test hook: while `true`, [`AuditLog::append`] returns [`PortError::Unavailable`] and stores nothing, as a
    /// store whose disk or database is gone would.
    pub fn fail_appends(&self, fail: bool) {
        lock(&self.state).fail_appends = fail;
    }

    /// Test hook: hands the tenant's stored events (oldest first) to `tamper`, which may edit, delete, reorder,
    /// truncate or forge them, as an attacker with write access to the store could. Named `dangerous_` because it
    /// breaks the log's whole promise; it exists so tests can check that [`AuditLog::verify_chain`] notices.
    ///
    /// Later appends continue from whatever the last stored event then is.
    pub fn dangerous_tamper<R>(
        &self,
        tenant: &TenantId,
        tamper: impl FnOnce(&mut Vec<SealedEvent>) -> R,
    ) -> R {
        let mut state = lock(&self.state);
        let chain = state.chains.entry(tenant.clone()).or_default();
        tamper(&mut chain.events)
    }
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    async fn append(&self, event: AuditEvent) -> Result<SealedEvent, PortError> {
        // The expensive part (serializing) does not depend on the chain; do it before taking the lock.
        let canonical = event.canonical_bytes();
        let mut state = lock(&self.state);
        if state.fail_appends {
            return Err(PortError::Unavailable);
        }
        let chain = state.chains.entry(event.tenant.clone()).or_default();
        let (seq, prev_hash) = chain.next_link();
        // Same result as `SealedEvent::seal(prev_hash, seq, event)`, over bytes computed outside the lock.
        let sealed = SealedEvent {
            seq,
            prev_hash,
            hash: ChainHash::compute_canonical(&prev_hash, seq, &canonical),
            event,
        };
        chain.events.push(sealed.clone());
        Ok(sealed)
    }

    /// Matching events, oldest first: ordered by time (`at`), then tenant, then sequence number. Within one tenant
    /// whose events were appended in time order this is chain order.
    async fn read(&self, query: &AuditQuery) -> Result<Vec<SealedEvent>, PortError> {
        let state = lock(&self.state);
        let chains: Box<dyn Iterator<Item = &Chain>> = match &query.tenant {
            Some(t) => Box::new(state.chains.get(t).into_iter()),
            None => Box::new(state.chains.values()),
        };
        let mut found: Vec<&SealedEvent> = chains
            .flat_map(|c| c.events.iter())
            .filter(|e| query.matches(&e.event))
            .collect();
        sort_and_limit(&mut found, query.limit);
        Ok(found.into_iter().cloned().collect())
    }

    async fn verify_chain(&self) -> Result<Result<ChainSummary, ChainBreak>, PortError> {
        let state = lock(&self.state);
        let mut summary = ChainSummary::default();
        for (tenant, chain) in &state.chains {
            match verify_tenant_chain(
                tenant,
                &chain.events,
                chain.anchor.as_ref(),
                chain.checkpoint.as_ref(),
            ) {
                Ok(head) => {
                    summary.events += u64::try_from(chain.events.len()).unwrap_or(u64::MAX);
                    summary.heads.extend(head);
                }
                Err(brk) => return Ok(Err(brk)),
            }
        }
        Ok(Ok(summary))
    }

    /// Removes, per tenant, the longest prefix of the chain whose events are all strictly before `before` (it stops
    /// at the first event at or after `before`, so the retained chain stays contiguous even if times are out of
    /// order), and records an anchor for each tenant whose chain start moved.
    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        let mut state = lock(&self.state);
        let mut report = PurgeReport::default();
        for (tenant, chain) in &mut state.chains {
            let cut = chain
                .events
                .iter()
                .position(|e| e.event.at >= before)
                .unwrap_or(chain.events.len());
            let Some(last_removed) = cut.checked_sub(1).and_then(|i| chain.events.get(i)) else {
                continue;
            };
            let anchor = ChainAnchor {
                tenant: tenant.clone(),
                seq: last_removed.seq.saturating_add(1),
                prev_hash: last_removed.hash,
            };
            chain.events.drain(..cut);
            chain.anchor = Some(anchor.clone());
            report.anchors.push(anchor);
            report.removed = report
                .removed
                .saturating_add(u64::try_from(cut).unwrap_or(u64::MAX));
        }
        Ok(report)
    }
}

/// Sorts oldest first (time, tenant, seq) and keeps at most `limit`.
fn sort_and_limit(found: &mut Vec<&SealedEvent>, limit: Option<usize>) {
    found.sort_by(|a, b| {
        (a.event.at, &a.event.tenant, a.seq).cmp(&(b.event.at, &b.event.tenant, b.seq))
    });
    if let Some(limit) = limit {
        found.truncate(limit);
    }
}
