//! Showing the audit log to an agent whose role has `view_audit`: pseudonymous events, newest first.

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use crate::policy::Permission;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, AuditQuery, EventKind, FactorKind, Outcome, PseudoId, Reason, SealedEvent,
};

/// How far back the audit view reads when no start is given.
const DEFAULT_LOOKBACK_HOURS: i64 = 24;
/// Most events one audit view returns.
const AUDIT_VIEW_LIMIT: usize = 500;

/// Which events an agent asks to see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditViewQuery {
    /// Only this kind (every kind when `None`).
    pub kind: Option<EventKind>,
    /// From this instant (default: 24 hours ago).
    pub since: Option<DateTime<Utc>>,
    /// Up to this instant (default: now).
    pub until: Option<DateTime<Utc>>,
}

impl AuditViewQuery {
    /// Events of `kind` (every kind when `None`) between `since` and `until`.
    #[must_use]
    pub fn new(
        kind: Option<EventKind>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Self {
        Self { kind, since, until }
    }
}

/// One audit event as an agent sees it: pseudonyms only, as the log holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRow {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// How it ended.
    pub outcome: Outcome,
    /// The agent's pseudonym.
    pub agent: Option<PseudoId>,
    /// The caller's pseudonym.
    pub target: Option<PseudoId>,
    /// The factor kind involved.
    pub factor: Option<FactorKind>,
    /// The action involved.
    pub action: Option<ActionKind>,
    /// Why it was refused or failed.
    pub reason: Option<Reason>,
}

impl From<&SealedEvent> for AuditRow {
    fn from(s: &SealedEvent) -> Self {
        let e = &s.event;
        Self {
            at: e.at,
            kind: e.kind,
            outcome: e.outcome,
            agent: e.agent.clone(),
            target: e.target.clone(),
            factor: e.factor.clone(),
            action: e.action,
            reason: e.reason,
        }
    }
}

impl Engine {
    /// This tenant's audit events matching `query`, newest first (at most 500), for an agent whose role has
    /// [`Permission::ViewAudit`].
    ///
    /// # Errors
    /// [`Reason::NotPermittedForRole`] (audited) when the agent's role, or the lack of one, does not allow it;
    /// [`Reason::AuditUnavailable`] when the log cannot be read.
    pub async fn audit_view(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        query: &AuditViewQuery,
    ) -> Result<Vec<AuditRow>, Denial> {
        let c = Call::new(agent, ctx);
        // An agent without a role is refused like any other role that lacks the permission.
        let allowed = self
            .role_of(agent)
            .is_some_and(|r| self.policy.permits(r, Permission::ViewAudit));
        if !allowed {
            let b = self
                .event(&c, EventKind::Denied, Outcome::Denied)
                .reason(Reason::NotPermittedForRole);
            self.record(b).await;
            return Err(Denial::new(Reason::NotPermittedForRole));
        }
        let since = query
            .since
            .unwrap_or_else(|| self.now() - chrono::Duration::hours(DEFAULT_LOOKBACK_HOURS));
        let read = AuditQuery {
            tenant: Some(self.tenant.clone()),
            since: Some(since),
            until: query.until,
            kinds: query.kind.into_iter().collect(),
            pseudonym: None,
            limit: Some(AUDIT_VIEW_LIMIT),
        };
        // Not audited: the log that would record the refusal is the one that cannot be read.
        let events = self
            .ports
            .audit
            .read(&read)
            .await
            .map_err(|_| Denial::new(Reason::AuditUnavailable))?;
        Ok(events.iter().rev().map(AuditRow::from).collect())
    }
}
