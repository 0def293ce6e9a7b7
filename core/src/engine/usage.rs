//! The usage ledger: one pseudonymous row per verification or action, never dropped silently. A row the ledger
//! refuses is held in memory (counts merged) and written before the next row or by [`Engine::flush_usage`].

use super::{Agent, Engine};
use chrono::{DateTime, Utc};
use fctr_ports::{UsageKind, UsageRecord};

/// How many times one usage write is tried before it is held for later.
const USAGE_ATTEMPTS: usize = 3;

impl Engine {
    /// Records one usage row as part of the outcome it counts. Each write is tried [`USAGE_ATTEMPTS`] times;
    /// rows the ledger still refuses are held (counts merged) and written before the next row or by
    /// [`Engine::flush_usage`]. Returns whether everything is durable now.
    pub(crate) async fn record_usage(
        &self,
        agent: &Agent,
        kind: UsageKind,
        now: DateTime<Utc>,
    ) -> bool {
        self.hold_usage(UsageRecord {
            month: fctr_ports::Month::of(now),
            tenant: self.tenant.clone(),
            agent: agent.pseudo.clone(),
            kind,
            count: 1,
        });
        self.flush_usage().await == 0
    }

    fn hold_usage(&self, usage: UsageRecord) {
        let mut held = self
            .pending_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.iter_mut().find(|h| {
            h.month == usage.month
                && h.tenant == usage.tenant
                && h.agent == usage.agent
                && h.kind == usage.kind
        }) {
            Some(h) => h.count = h.count.saturating_add(usage.count),
            None => held.push(usage),
        }
    }

    /// Writes the usage rows the ledger refused earlier. Returns how many rows are still held (0: all durable).
    /// Shells call it on a schedule; every usage write calls it too.
    pub async fn flush_usage(&self) -> usize {
        let batch = std::mem::take(
            &mut *self
                .pending_usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for row in batch {
            let mut written = false;
            for _ in 0..USAGE_ATTEMPTS {
                if self.ports.usage.record(row.clone()).await.is_ok() {
                    written = true;
                    break;
                }
            }
            if !written {
                self.hold_usage(row);
            }
        }
        self.pending_usage()
    }

    /// Usage rows held because the ledger refused them (a metric and a readiness signal: non-zero means the
    /// ledger is failing; nothing is lost while the process runs).
    #[must_use]
    pub fn pending_usage(&self) -> usize {
        self.pending_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}
