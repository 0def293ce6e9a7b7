//! Prometheus metrics, and an identity-provider wrapper that counts upstream calls by operation.
//!
//! Metric names: `fctr_http_requests_total{route,method,status}`, `fctr_http_request_duration_seconds{route}`,
//! `fctr_verifications_total{outcome}`, `fctr_idp_calls_total{op}`, `fctr_upstream_polls_total`,
//! `fctr_oidc_jwks_refresh_total{result,trigger}` (recorded in [`crate::oidc`]).

use async_trait::async_trait;
use fctr_ports::{
    Action, ActionReceipt, Capabilities, ChallengeContext, ChallengeState, ChallengeTicket,
    Challenger, CodeVerdict, Directory, FactorInfo, GroupRef, IdentityProvider, Lifecycle,
    PortError, RiskFacts, SecretString, SubjectId, UserQuery, UserRecord,
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
