//! Test doubles that pause a request at a chosen step while others run: deterministic interleavings, not bursts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    Action, ActionKind, ActionReceipt, Capabilities, ChallengeContext, ChallengeState,
    ChallengeTicket, Challenger, CodeVerdict, Directory, FactorInfo, GrantConsumption, GrantRecord,
    GrantStore, GroupRef, IdentityProvider, Lifecycle, PortError, PseudoId, RiskFacts,
    SecretString, SubjectId, UserQuery, UserRecord, VerificationId, VerificationRecord,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// A point in a request where a test can park calls. Disarmed it lets every call through; `arm(n)` parks the next
/// `n` calls until `release`. It counts every call that reaches it, parked or not.
pub struct Gate {
    armed: AtomicUsize,
    calls: AtomicUsize,
    parked: watch::Sender<usize>,
    release: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            armed: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            parked: watch::channel(0).0,
            release: Semaphore::new(0),
        }
    }
}

impl Gate {
    /// Parks the next `n` calls.
    pub fn arm(&self, n: usize) {
        self.armed.store(n, Ordering::SeqCst);
    }

    /// Lets `n` parked (or future parked) calls go on.
    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    /// Calls that reached the gate so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls parked so far (released ones included).
    pub fn parked(&self) -> usize {
        *self.parked.borrow()
    }

    /// Waits until `n` calls have parked.
    pub async fn wait_parked(&self, n: usize) {
        let mut rx = self.parked.subscribe();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|p| *p >= n))
            .await
            .expect("calls reached the gate in time")
            .unwrap();
    }

    pub async fn pass(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let take = self
            .armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| a.checked_sub(1));
        if take.is_ok() {
            self.parked.send_modify(|p| *p += 1);
            self.release.acquire().await.unwrap().forget();
        }
    }
}

/// An identity provider that passes a gate inside `verify_code`, `execute` and `find_users` (the slow IdP calls
/// a second request can overtake).
pub struct GatedIdp {
    pub inner: Arc<dyn IdentityProvider>,
    pub verify_code: Gate,
    pub execute: Gate,
    pub find_users: Gate,
    /// Counts (and can park) `start` calls.
    pub start: Gate,
    /// When set, `groups` answers this error.
    pub groups_error: std::sync::Mutex<Option<fn() -> PortError>>,
    /// When set, `execute` answers this error.
    pub execute_error: std::sync::Mutex<Option<fn() -> PortError>>,
    /// When set, `verify_code` answers this verdict.
    pub verdict: std::sync::Mutex<Option<CodeVerdict>>,
    /// Counts (and can park) `poll` calls.
    pub poll: Gate,
    /// Counts (and can park) `groups` calls.
    pub groups: Gate,
}

impl GatedIdp {
    pub fn new(inner: Arc<dyn IdentityProvider>) -> Self {
        Self {
            inner,
            verify_code: Gate::default(),
            execute: Gate::default(),
            find_users: Gate::default(),
            start: Gate::default(),
            groups_error: std::sync::Mutex::new(None),
            execute_error: std::sync::Mutex::new(None),
            verdict: std::sync::Mutex::new(None),
            poll: Gate::default(),
            groups: Gate::default(),
        }
    }
}

#[async_trait]
impl Directory for GatedIdp {
    async fn find_users(&self, q: &UserQuery, limit: usize) -> Result<Vec<UserRecord>, PortError> {
        self.find_users.pass().await;
        self.inner.find_users(q, limit).await
    }
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.inner.get_user(id).await
    }
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        self.inner.list_factors(id).await
    }
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        if let Some(e) = *self.groups_error.lock().unwrap() {
            return Err(e());
        }
        // Read first, then park: a parked call holds what the IdP said before whatever runs meanwhile.
        let r = self.inner.groups(id).await;
        self.groups.pass().await;
        r
    }
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        self.inner.risk_facts(id).await
    }
}

#[async_trait]
impl Challenger for GatedIdp {
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        self.start.pass().await;
        self.inner.start(subject, factor, context).await
    }
    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        let r = self.inner.poll(ticket).await;
        self.poll.pass().await;
        r
    }
    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        self.verify_code.pass().await;
        if let Some(v) = *self.verdict.lock().unwrap() {
            return Ok(v);
        }
        self.inner.verify_code(subject, factor, code).await
    }
}

#[async_trait]
impl Lifecycle for GatedIdp {
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        self.execute.pass().await;
        if let Some(e) = *self.execute_error.lock().unwrap() {
            return Err(e());
        }
        self.inner.execute(subject, action).await
    }
}

impl IdentityProvider for GatedIdp {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// A grant store that passes a gate right after `consume` has read and decided (the point where the old
/// find-then-take sequence could be overtaken). With `tamper` set it also lies: `consume` hands out the grant with
/// its binding changed, as a broken or hostile store might (the engine must still refuse it).
pub struct GatedGrants {
    pub inner: Arc<dyn GrantStore>,
    pub after_consume: Gate,
    /// Parks `put_verification` before it writes (a compare-and-set another request can overtake).
    pub before_put: Gate,
    pub tamper: Option<fn(&mut GrantRecord)>,
    /// When set, `put_grant` fails (the short-lived store is down when a verification completes).
    pub fail_put_grant: std::sync::atomic::AtomicBool,
}

impl GatedGrants {
    pub fn new(inner: Arc<dyn GrantStore>) -> Self {
        Self {
            inner,
            after_consume: Gate::default(),
            before_put: Gate::default(),
            tamper: None,
            fail_put_grant: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl GrantStore for GatedGrants {
    async fn put_verification(
        &self,
        record: &VerificationRecord,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, PortError> {
        self.before_put.pass().await;
        self.inner
            .put_verification(record, expected_version, ttl)
            .await
    }
    async fn get_verification(
        &self,
        id: VerificationId,
    ) -> Result<Option<VerificationRecord>, PortError> {
        self.inner.get_verification(id).await
    }
    async fn put_grant(&self, grant: &GrantRecord, ttl: Duration) -> Result<(), PortError> {
        if self.fail_put_grant.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable);
        }
        self.inner.put_grant(grant, ttl).await
    }
    async fn find_grant(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
    ) -> Result<Option<GrantRecord>, PortError> {
        self.inner.find_grant(agent, subject).await
    }
    async fn consume(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
        now: DateTime<Utc>,
    ) -> Result<GrantConsumption, PortError> {
        let r = match (
            self.inner.consume(agent, subject, action, now).await,
            self.tamper,
        ) {
            (Ok(GrantConsumption::Consumed(mut g)), Some(tamper)) => {
                tamper(&mut g);
                Ok(GrantConsumption::Consumed(g))
            }
            (r, _) => r,
        };
        self.after_consume.pass().await;
        r
    }
    async fn restore(&self, grant: &GrantRecord, ttl: Duration) -> Result<bool, PortError> {
        self.inner.restore(grant, ttl).await
    }
}

/// A usage ledger that refuses writes while `failing` is set.
#[derive(Default)]
pub struct FlakyUsage {
    pub inner: fctr_memory::MemoryUsageLedger,
    pub failing: std::sync::atomic::AtomicBool,
    pub attempts: AtomicUsize,
}

#[async_trait]
impl fctr_ports::UsageLedger for FlakyUsage {
    async fn record(&self, usage: fctr_ports::UsageRecord) -> Result<(), PortError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable);
        }
        self.inner.record(usage).await
    }
    async fn report(
        &self,
        month: fctr_ports::Month,
    ) -> Result<Vec<fctr_ports::UsageRecord>, PortError> {
        self.inner.report(month).await
    }
    async fn purge_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<fctr_ports::PurgeReport, PortError> {
        self.inner.purge_before(before).await
    }
}

/// A rate limiter that passes a gate right after a counted hit on a key with a chosen prefix (`alarm:count:`: the
/// velocity count is taken, the alert not yet decided).
pub struct GatedRate {
    pub inner: Arc<dyn fctr_ports::RateLimiter>,
    pub prefix: &'static str,
    pub after_hit: Gate,
}

impl GatedRate {
    pub fn new(inner: Arc<dyn fctr_ports::RateLimiter>, prefix: &'static str) -> Self {
        Self {
            inner,
            prefix,
            after_hit: Gate::default(),
        }
    }
}

#[async_trait]
impl fctr_ports::RateLimiter for GatedRate {
    async fn hit(
        &self,
        key: &fctr_ports::RateKey,
        rule: fctr_ports::RateRule,
    ) -> Result<fctr_ports::RateDecision, PortError> {
        let r = self.inner.hit(key, rule).await;
        if key.as_str().starts_with(self.prefix) {
            self.after_hit.pass().await;
        }
        r
    }
    async fn peek(
        &self,
        key: &fctr_ports::RateKey,
        rule: fctr_ports::RateRule,
    ) -> Result<fctr_ports::RateDecision, PortError> {
        self.inner.peek(key, rule).await
    }
    async fn undo(
        &self,
        key: &fctr_ports::RateKey,
        rule: fctr_ports::RateRule,
    ) -> Result<(), PortError> {
        self.inner.undo(key, rule).await
    }
    async fn reset(&self, key: &fctr_ports::RateKey) -> Result<(), PortError> {
        self.inner.reset(key).await
    }
}
