//! Reading and purging: which events to read, what a purge removed.

use super::*;

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this tenant (all tenants when `None`).
    pub tenant: Option<TenantId>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<EventKind>,
    /// Only events about this caller or by this agent.
    pub pseudonym: Option<PseudoId>,
    /// At most this many events, oldest first (all when `None`).
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Whether an event matches the filters (time, tenant, kinds, pseudonym; not the limit).
    #[must_use]
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.tenant.as_ref().is_none_or(|t| t == &e.tenant)
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at < u)
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self
                .pseudonym
                .as_ref()
                .is_none_or(|p| e.agent.as_ref() == Some(p) || e.target.as_ref() == Some(p))
    }
}

/// What a purge removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// Records removed.
    pub removed: u64,
    /// New chain anchors (audit only), one per tenant whose chain start moved.
    pub anchors: Vec<ChainAnchor>,
}
