//! Retention: audit events and usage records older than their periods are purged, and each purge is itself
//! audited (how many, from which store, before when).

use super::Engine;
use chrono::{DateTime, Utc};
use fctr_ports::{AuditDetail, EventKind, Outcome, PortError};

impl Engine {
    /// Purges audit events and usage records older than the retention periods, auditing each purge.
    ///
    /// # Errors
    /// [`PortError`] when a store cannot be written.
    pub async fn purge_expired(&self) -> Result<(u64, u64), PortError> {
        let now = self.now();
        let audit_before = now - self.retention.audit;
        let usage_before = now - self.retention.usage;
        let a = self.ports.audit.purge_before(audit_before).await?;
        self.purge_event("audit", a.removed, audit_before).await?;
        let u = self.ports.usage.purge_before(usage_before).await?;
        self.purge_event("usage", u.removed, usage_before).await?;
        Ok((a.removed, u.removed))
    }

    async fn purge_event(
        &self,
        store: &str,
        removed: u64,
        before: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let b = self
            .system_event(EventKind::Purge, Outcome::Success, None)
            .detail(AuditDetail::Purge {
                store: store.to_owned(),
                removed,
                before: chrono::SubsecRound::trunc_subsecs(before, 6),
            });
        self.ports.audit.append(b.build()).await.map(|_| ())
    }
}
