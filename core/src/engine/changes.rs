//! Out-of-band change detection as a use case: read the IdP's log of changes, read fctr's own audit for the same
//! window, and report what fctr's audit does not account for ([`crate::out_of_band`]).

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use crate::out_of_band::{Finding, Severity as FindingSeverity, audit_query, find_out_of_band};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{
    Alert, AlertRule, AuditDetail, ChangeActor, ChangeFeed, ChangeRef, EventKind, Outcome,
    PortError, RateDecision, RateKey, RateRule, Reason, Severity as AlertSeverity,
};
use sha2::{Digest, Sha256};
use std::time::Duration;

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
        // The IdP's log is read from a tolerance before `since`: an fctr action just before the window is matched
        // with its own entry there, and cannot account for a different change just inside it. Only changes in the
        // window are reported.
        let changes = feed
            .changes(since - tolerance, until)
            .await
            .map_err(ChangeReportError::Feed)?;
        let mut query = audit_query(since - tolerance, until, tolerance);
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
        let mut findings =
            find_out_of_band(&changes, &audit, &self.pseudo, own.as_deref(), tolerance);
        findings.retain(|f| f.at >= since);
        Ok(findings)
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

/// What one scheduled scan did ([`Engine::scan_out_of_band`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutOfBandScan {
    /// Changes in the window that fctr's audit does not account for.
    pub findings: usize,
    /// Of those, the ones no earlier scan (on any replica) had reported: each audited and alerted now.
    pub raised: usize,
}

/// The shared-store key under which a finding is reported once: a digest of the tenant and the IdP's log entry id
/// (an entry id is the IdP's, of any shape; the digest is short and plain ASCII).
fn reported_key(tenant: &str, event_id: &str) -> Option<RateKey> {
    let digest = Sha256::new()
        .chain_update(tenant.as_bytes())
        .chain_update([0])
        .chain_update(event_id.as_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    RateKey::parse(format!("oob:reported:{hex}")).ok()
}

impl Engine {
    /// One round of the out-of-band schedule: the report for `since..until` ([`Engine::out_of_band_changes`]),
    /// and for each finding not reported before, an `alert_raised` audit event (rule `out_of_band_change`; the
    /// change's kind as the event's action, its target's pseudonym as target, the admin's pseudonym as agent when
    /// a person made it) and an alert for the sink ([`Engine::with_alert_sink`]) naming the action, the finding,
    /// the IdP's log entry id and the admin's pseudonym or the app's client id.
    ///
    /// "Not reported before" is one atomic step in the shared store per IdP log entry (a hit on
    /// `oob:reported:<digest>` that lives `remember`), so replicas scanning the same window raise each finding
    /// once, and overlapping windows do not repeat it. When the store cannot be reached the finding is raised
    /// anyway: a duplicate alert is better than a missed one. When the audit event cannot be written the claim is
    /// given back, so a later scan records it (the alert may then go out twice).
    ///
    /// # Errors
    /// [`ChangeReportError`] as for [`Engine::out_of_band_changes`]; nothing is raised then.
    pub async fn scan_out_of_band(
        &self,
        feed: &dyn ChangeFeed,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        tolerance: TimeDelta,
        remember: Duration,
    ) -> Result<OutOfBandScan, ChangeReportError> {
        let findings = self
            .out_of_band_changes(feed, since, until, tolerance)
            .await?;
        let mut scan = OutOfBandScan {
            findings: findings.len(),
            raised: 0,
        };
        let once = RateRule {
            limit: 1,
            window: remember,
        };
        for f in &findings {
            let key = reported_key(self.tenant.as_str(), &f.event_id);
            let first = match &key {
                Some(key) => !matches!(
                    self.ports.rate.hit(key, once).await,
                    Ok(RateDecision::Limited { .. })
                ),
                None => true,
            };
            if !first {
                continue;
            }
            if !self.raise_change(f).await {
                // Not durably recorded: give the claim back so that a later scan (here or on another replica)
                // records it. The alert is queued all the same; it may then be sent twice.
                if let Some(key) = &key {
                    let _ = self.ports.rate.reset(key).await;
                }
            }
            scan.raised += 1;
        }
        Ok(scan)
    }

    /// Audits and queues the alert for one finding; whether the audit event was written.
    async fn raise_change(&self, f: &Finding) -> bool {
        let severity = match f.severity {
            FindingSeverity::OwnCredential => AlertSeverity::Critical,
            _ => AlertSeverity::Warning,
        };
        let app = match &f.actor {
            ChangeActor::App { client_id } => Some(client_id.clone()),
            _ => None,
        };
        let alert = Alert::new(AlertRule::OutOfBandChange, severity, self.now())
            .caller(f.target.clone())
            .change(ChangeRef {
                action: f.kind,
                finding: f.severity.as_str(),
                idp_event: f.event_id.clone(),
                admin: f.actor_pseudonym.clone(),
                app,
            });
        let mut b = self
            .system_event(EventKind::AlertRaised, Outcome::Success, None)
            .detail(AuditDetail::Alert {
                rule: AlertRule::OutOfBandChange.as_str().to_owned(),
                alert_id: alert.id,
            })
            .action(f.kind)
            .target(&f.target);
        if let Some(admin) = &f.actor_pseudonym {
            b = b.agent(admin);
        }
        let recorded = self.ports.audit.append(b.build()).await.is_ok();
        if !recorded {
            self.unrecorded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.alerts.push(alert, None);
        recorded
    }
}
