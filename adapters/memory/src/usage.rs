//! The in-memory usage ledger.

use crate::sync::lock;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    Month, PortError, PseudoId, PurgeReport, TenantId, UsageKind, UsageLedger, UsageRecord,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

type Row = (TenantId, PseudoId, UsageKind);

/// A pseudonymous usage ledger held in memory: one counter per month, tenant, agent and kind.
///
/// Counts saturate at `u64::MAX` rather than wrap. Recording a count of 0 changes nothing (no row appears).
/// Nothing survives a restart.
#[derive(Default)]
pub struct MemoryUsageLedger {
    months: Mutex<BTreeMap<Month, BTreeMap<Row, u64>>>,
}

impl MemoryUsageLedger {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UsageLedger for MemoryUsageLedger {
    async fn record(&self, usage: UsageRecord) -> Result<(), PortError> {
        if usage.count == 0 {
            return Ok(());
        }
        let mut months = lock(&self.months);
        let row = months
            .entry(usage.month)
            .or_default()
            .entry((usage.tenant, usage.agent, usage.kind))
            .or_insert(0);
        *row = row.saturating_add(usage.count);
        Ok(())
    }

    async fn report(&self, month: Month) -> Result<Vec<UsageRecord>, PortError> {
        let months = lock(&self.months);
        // BTreeMap order over (tenant, agent, kind) is the order the port asks for.
        Ok(months
            .get(&month)
            .into_iter()
            .flat_map(|rows| rows.iter())
            .map(|((tenant, agent, kind), count)| UsageRecord {
                month,
                tenant: tenant.clone(),
                agent: agent.clone(),
                kind: *kind,
                count: *count,
            })
            .collect())
    }

    /// Deletes every month that ends at or before `before`, i.e. every month earlier than the month containing
    /// `before`; the month containing `before` is kept whole. `removed` counts rows (month, tenant, agent, kind).
    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        let mut months = lock(&self.months);
        let kept = months.split_off(&Month::of(before));
        let removed = months.values().map(BTreeMap::len).sum::<usize>();
        *months = kept;
        Ok(PurgeReport {
            removed: u64::try_from(removed).unwrap_or(u64::MAX),
            anchors: Vec::new(),
        })
    }
}
