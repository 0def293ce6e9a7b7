//! Out-of-band change detection as a use case: read the IdP's log of changes, read fctr's own audit for the same
//! window, and report what fctr's audit does not account for ([`crate::out_of_band`]).

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use crate::out_of_band::{Finding, audit_query, find_out_of_band};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{ChangeFeed, PortError, Reason};

/// Why an out-of-band report could not be made (the operator's path, [`Engine::out_of_band_changes`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeReportError {
    /// The IdP's log could not be read (a missing scope is named in [`PortError::Forbidden`]).
    #[error("the IdP's change log could not be read: {0}")]
    Feed(#[source] PortError),
    /// fctr's own audit log could not be read.
    #[error("the audit log could not be read: {0}")]
    Audit(#[source] PortError),
    /// The window is empty or reversed.
    #[error("the time window is empty (since must be before until)")]
    EmptyWindow,
}

impl Engine {
    /// The changes the IdP recorded between `since` and `until` that this tenant's audit does not account for,
    /// matched within `tolerance` (see [`find_out_of_band`]). The operator's path (the CLI, the portal's
    /// schedule): no agent, not audited.
    ///
    /// # Errors
    /// [`ChangeReportError`]: the feed or the audit log could not be read, or the window is empty. Never a
    /// partial report.
    pub async fn out_of_band_changes(
        &self,
        feed: &dyn ChangeFeed,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        tolerance: TimeDelta,
    ) -> Result<Vec<Finding>, ChangeReportError> {
        if until <= since {
            return Err(ChangeReportError::EmptyWindow);
        }
        let changes = feed
            .changes(since, until)
            .await
            .map_err(ChangeReportError::Feed)?;
        let mut query = audit_query(since, until, tolerance);
        query.tenant = Some(self.tenant.clone());
        let audit: Vec<_> = self
            .ports
            .audit
            .read(&query)
            .await
            .map_err(ChangeReportError::Audit)?
            .into_iter()
            .map(|s| s.event)
            .collect();
        let own = feed.own_client_id();
        Ok(find_out_of_band(
            &changes,
            &audit,
            &self.pseudo,
            own.as_deref(),
            tolerance,
        ))
    }

    /// [`Engine::out_of_band_changes`] for an agent whose role may view the audit log (the auditor's page).
    ///
    /// # Errors
    /// [`Reason::NotPermittedForRole`] (audited) without the permission; [`Reason::AuditUnavailable`] when either
    /// log cannot be read; [`Reason::InvalidInput`] for an empty window.
    pub async fn out_of_band_view(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        feed: &dyn ChangeFeed,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        tolerance: TimeDelta,
    ) -> Result<Vec<Finding>, Denial> {
        let c = Call::new(agent, ctx);
        self.may_view_audit(&c).await?;
        self.out_of_band_changes(feed, since, until, tolerance)
            .await
            .map_err(|e| match e {
                ChangeReportError::EmptyWindow => Denial::new(Reason::InvalidInput),
                ChangeReportError::Feed(_) | ChangeReportError::Audit(_) => {
                    Denial::new(Reason::AuditUnavailable)
                }
            })
    }
}
