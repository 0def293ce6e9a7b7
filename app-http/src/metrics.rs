//! Prometheus metrics, an identity-provider wrapper that counts upstream calls by operation, and an audit-log
//! wrapper that counts how verifications end.
//!
//! Metric names: `fctr_http_requests_total{route,method,status}`, `fctr_http_request_duration_seconds{route}`,
//! `fctr_verifications_total{outcome}` ([`CountingAudit`]), `fctr_idp_calls_total{op}`,
//! `fctr_upstream_polls_total`, `fctr_oidc_jwks_refresh_total{result,trigger}` (recorded in [`crate::oidc`]),
//! `fctr_pollers_running` (set in [`crate::ops`]), `fctr_alerts_total{rule,outcome}` (alerts handed to the alert
//! sink: `delivered` or `failed`, counted by the portal's delivery task), `fctr_ticket_notes_total{system,outcome}`
//! (ticket write-back attempts, from their `ticket_note` audit events: `delivered`, `retried`, `failed`;
//! [`ticket_note_labels`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    Action, ActionReceipt, Capabilities, ChallengeContext, ChallengeState, ChallengeTicket,
    Challenger, CodeVerdict, Directory, FactorInfo, GroupRef, IdentityProvider, Lifecycle,
    PortError, RiskFacts, SecretString, SubjectId, UpstreamBudget, UserQuery, UserRecord,
};
use fctr_ports::{
    AuditDetail, AuditEvent, AuditLog, AuditQuery, ChainBreak, ChainSummary, EventKind, Outcome,
    PurgeReport, Reason, SealedEvent,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use; `None` if another recorder was installed).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Counts calls to the wrapped identity provider (`fctr_idp_calls_total{op}`); `poll` calls are also counted
/// in [`CountingIdp::polls`] so tests and the bench can check the one-poller-per-challenge rule.
pub struct CountingIdp {
    inner: Arc<dyn IdentityProvider>,
    polls: AtomicU64,
}

impl std::fmt::Debug for CountingIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingIdp").finish_non_exhaustive()
    }
}

impl CountingIdp {
    /// Wraps a provider.
    #[must_use]
    pub fn new(inner: Arc<dyn IdentityProvider>) -> Self {
        Self {
            inner,
            polls: AtomicU64::new(0),
        }
    }

    /// Challenge polls sent upstream so far.
    #[must_use]
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }
}

fn count(op: &'static str) {
    metrics::counter!("fctr_idp_calls_total", "op" => op).increment(1);
}

#[async_trait]
impl Directory for CountingIdp {
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        count("find_users");
        self.inner.find_users(query, limit).await
    }
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        count("get_user");
        self.inner.get_user(id).await
    }
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        count("list_factors");
        self.inner.list_factors(id).await
    }
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        count("groups");
        self.inner.groups(id).await
    }
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        count("risk_facts");
        self.inner.risk_facts(id).await
    }
}

#[async_trait]
impl Challenger for CountingIdp {
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        count("start");
        self.inner.start(subject, factor, context).await
    }
    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        count("poll");
        metrics::counter!("fctr_upstream_polls_total").increment(1);
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.inner.poll(ticket).await
    }
    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        count("verify_code");
        self.inner.verify_code(subject, factor, code).await
    }
    fn poll_budget(&self) -> Option<UpstreamBudget> {
        self.inner.poll_budget()
    }
}

#[async_trait]
impl Lifecycle for CountingIdp {
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        count("execute");
        self.inner.execute(subject, action).await
    }
}

#[async_trait]
impl IdentityProvider for CountingIdp {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// How a verification ended, as `fctr_verifications_total{outcome}` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerificationOutcome {
    /// Every required factor approved: a grant was minted.
    Verified,
    /// The caller denied the push.
    Rejected,
    /// Nobody answered in time (the push or the verification window ran out).
    Expired,
    /// Anything else that ended it (an IdP error or an unknown push result).
    Failed,
}

impl VerificationOutcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 4] = [Self::Verified, Self::Rejected, Self::Expired, Self::Failed];

    /// The metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    /// The final outcome an audit event records, if it records one. The engine appends exactly one
    /// `challenge_result` event per state change of a verification (only the request that wins the
    /// compare-and-set on the stored record appends it), so these events count each verification once, however
    /// many pollers, watchers and replicas saw it end. A success that carries [`AuditDetail::Factors`] is one
    /// factor of several (the verification goes on); one without it is the last factor, and a grant follows.
    #[must_use]
    pub fn of(event: &AuditEvent) -> Option<Self> {
        if event.kind != EventKind::ChallengeResult {
            return None;
        }
        match event.outcome {
            Outcome::Success if matches!(event.detail, Some(AuditDetail::Factors { .. })) => None,
            Outcome::Success => Some(Self::Verified),
            Outcome::Pending => None,
            _ => Some(match event.reason {
                Some(Reason::ChallengeRejected) => Self::Rejected,
                Some(Reason::ChallengeTimedOut | Reason::VerificationExpired) => Self::Expired,
                _ => Self::Failed,
            }),
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Verified => 0,
            Self::Rejected => 1,
            Self::Expired => 2,
            Self::Failed => 3,
        }
    }
}

/// Counts verifications by how they end (`fctr_verifications_total{outcome}`), at the one place each outcome is
/// recorded exactly once: the engine's `challenge_result` audit event (see [`VerificationOutcome::of`]). Push and
/// code verifications alike. An event is counted when the engine hands it to the log, whether or not the store
/// kept it: the change it reports has happened either way (the engine counts unrecorded events separately).
pub struct CountingAudit {
    inner: Arc<dyn AuditLog>,
    counts: [AtomicU64; 4],
}

impl std::fmt::Debug for CountingAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingAudit").finish_non_exhaustive()
    }
}

impl CountingAudit {
    /// Wraps an audit log.
    #[must_use]
    pub fn new(inner: Arc<dyn AuditLog>) -> Self {
        Self {
            inner,
            counts: Default::default(),
        }
    }

    /// Verifications that ended with `outcome` through this log so far (the metric is process-wide; this is
    /// this wrapper's own count, for tests and benches).
    #[must_use]
    pub fn ended(&self, outcome: VerificationOutcome) -> u64 {
        self.counts[outcome.index()].load(Ordering::Relaxed)
    }
}

/// The labels of `fctr_ticket_notes_total` for a `ticket_note` event: the system (from its detail code
/// `system:…`) and `delivered`, `retried` or `failed`. `None` for any other event.
#[must_use]
pub fn ticket_note_labels(event: &AuditEvent) -> Option<(&'static str, &'static str)> {
    if event.kind != EventKind::TicketNote {
        return None;
    }
    let system = match &event.detail {
        Some(AuditDetail::Upstream { code, .. }) => code
            .split(':')
            .next()
            .and_then(fctr_ports::TicketSystem::parse)
            .map_or("unknown", fctr_ports::TicketSystem::as_str),
        _ => "unknown",
    };
    let outcome = match event.outcome {
        Outcome::Success => "delivered",
        Outcome::Pending => "retried",
        _ => "failed",
    };
    Some((system, outcome))
}

#[async_trait]
impl AuditLog for CountingAudit {
    async fn append(&self, event: AuditEvent) -> Result<SealedEvent, PortError> {
        let outcome = VerificationOutcome::of(&event);
        if let Some((system, outcome)) = ticket_note_labels(&event) {
            metrics::counter!("fctr_ticket_notes_total", "system" => system, "outcome" => outcome)
                .increment(1);
        }
        let r = self.inner.append(event).await;
        if let Some(o) = outcome {
            self.counts[o.index()].fetch_add(1, Ordering::Relaxed);
            metrics::counter!("fctr_verifications_total", "outcome" => o.as_str()).increment(1);
        }
        r
    }
    async fn read(&self, query: &AuditQuery) -> Result<Vec<SealedEvent>, PortError> {
        self.inner.read(query).await
    }
    async fn verify_chain(&self) -> Result<Result<ChainSummary, ChainBreak>, PortError> {
        self.inner.verify_chain().await
    }
    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError> {
        self.inner.purge_before(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fctr_ports::TenantId;

    fn event(kind: EventKind, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(TenantId::parse("t").unwrap(), Utc::now(), kind, outcome)
    }

    #[test]
    fn only_final_challenge_results_are_outcomes() {
        use VerificationOutcome as V;
        let with_reason = |o: Outcome, r: Reason| {
            let mut e = event(EventKind::ChallengeResult, o);
            e.reason = Some(r);
            e
        };
        assert_eq!(
            V::of(&event(EventKind::ChallengeResult, Outcome::Success)),
            Some(V::Verified)
        );
        let mut one_of_two = event(EventKind::ChallengeResult, Outcome::Success);
        one_of_two.detail = Some(AuditDetail::Factors {
            approved: 1,
            required: 2,
        });
        assert_eq!(V::of(&one_of_two), None, "one factor of two is not the end");
        let cases = [
            (Outcome::Rejected, Reason::ChallengeRejected, V::Rejected),
            (Outcome::Rejected, Reason::ChallengeTimedOut, V::Expired),
            (Outcome::Rejected, Reason::VerificationExpired, V::Expired),
            (Outcome::Failed, Reason::IdpError, V::Failed),
        ];
        for (o, r, want) in cases {
            assert_eq!(V::of(&with_reason(o, r)), Some(want), "{o:?} {r:?}");
        }
        for kind in [
            EventKind::ChallengeStarted,
            EventKind::CodeSubmitted,
            EventKind::GrantIssued,
        ] {
            assert_eq!(V::of(&event(kind, Outcome::Success)), None, "{kind:?}");
        }
        assert_eq!(
            V::of(&event(EventKind::ChallengeResult, Outcome::Pending)),
            None
        );
    }

    #[tokio::test]
    async fn each_final_event_counts_once_and_is_passed_through() {
        let inner = Arc::new(fctr_memory::MemoryAuditLog::new());
        let counting = CountingAudit::new(inner.clone());
        counting
            .append(event(EventKind::ChallengeStarted, Outcome::Pending))
            .await
            .unwrap();
        counting
            .append(event(EventKind::ChallengeResult, Outcome::Success))
            .await
            .unwrap();
        assert_eq!(counting.ended(VerificationOutcome::Verified), 1);
        assert_eq!(counting.ended(VerificationOutcome::Failed), 0);
        let all = inner.read(&AuditQuery::default()).await.unwrap();
        assert_eq!(all.len(), 2, "every event reaches the log");
    }
}
