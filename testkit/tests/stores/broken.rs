//! The suite must be able to fail: stores broken on purpose, in the ways the port docs warn about, fail the checks
//! that guard against them.
//!
//! The breakage is a race, so the doubles make the bad interleaving certain instead of hoping for it: each pauses
//! at its dangerous step (between its check and its write) on a [`Gate`] that holds the first `k` callers there
//! until all `k` have arrived. Every one of them has then checked before any has written, which is exactly the
//! interleaving an atomic store rules out.

use crate::memory::manual_time;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_memory::{MemoryGrantStore, MemoryRateLimiter};
use fctr_ports::{
    ActionKind, GrantConsumption, GrantRecord, GrantStore, PortError, PseudoId, RateDecision,
    RateKey, RateLimiter, RateRule, VerificationId, VerificationRecord,
};
use fctr_testkit::stores::{self, Made, Port, Replicas, StoreFixture, Verdict};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Holds the first `k` callers of [`Gate::pass`] until `k` have arrived, then lets them and everyone after through.
pub struct Gate {
    k: usize,
    arrived: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Gate {
    pub fn new(k: usize) -> Arc<Self> {
        Arc::new(Self {
            k,
            arrived: AtomicUsize::new(0),
            open: watch::Sender::new(k <= 1),
        })
    }

    /// The dangerous step: wait here until `k` callers are here.
    pub async fn pass(&self) {
        let mut open = self.open.subscribe();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 >= self.k {
            self.open.send_replace(true);
        }
        let _ = open.wait_for(|o| *o).await;
    }

    /// How many callers reached the dangerous step.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }
}

/// A grant store whose `consume` is find-then-take: it reads the grant, decides, pauses, and only then spends it,
/// answering `Consumed` whatever the take found. Everything else is the real in-memory store.
pub struct FindThenTake {
    inner: MemoryGrantStore,
    gate: Arc<Gate>,
}

#[async_trait]
impl GrantStore for FindThenTake {
    async fn put_verification(
        &self,
        record: &VerificationRecord,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, PortError> {
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
        let Some(g) = self.inner.find_grant(agent, subject).await? else {
            return self.inner.consume(agent, subject, action, now).await;
        };
        if now >= g.expires_at {
            return Ok(GrantConsumption::Expired);
        }
        if !g.actions.contains(&action) {
            return Ok(GrantConsumption::DoesNotCover);
        }
        self.gate.pass().await;
        // The take, its answer ignored: the decision was made on the find.
        let _ = self.inner.consume(agent, subject, action, now).await?;
        Ok(GrantConsumption::Consumed(g))
    }

    async fn restore(&self, grant: &GrantRecord, ttl: Duration) -> Result<bool, PortError> {
        self.inner.restore(grant, ttl).await
    }
}

/// A limiter that checks, pauses, then counts: `hit` peeks, and if the peek allows it, counts the hit and answers
/// allowed whatever the count found. Everything else is the real in-memory limiter.
pub struct CountAfterCheck {
    inner: MemoryRateLimiter,
    gate: Arc<Gate>,
}

#[async_trait]
impl RateLimiter for CountAfterCheck {
    async fn hit(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError> {
        match self.inner.peek(key, rule).await? {
            RateDecision::Allowed { remaining } => {
                self.gate.pass().await;
                let _ = self.inner.hit(key, rule).await?;
                Ok(RateDecision::Allowed {
                    remaining: remaining.saturating_sub(1),
                })
            }
            limited => Ok(limited),
        }
    }

    async fn peek(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError> {
        self.inner.peek(key, rule).await
    }

    async fn undo(&self, key: &RateKey, rule: RateRule) -> Result<(), PortError> {
        self.inner.undo(key, rule).await
    }

    async fn reset(&self, key: &RateKey) -> Result<(), PortError> {
        self.inner.reset(key).await
    }
}

/// The broken grant store and limiter, each instance pausing on the one gate.
struct Broken {
    gate: Arc<Gate>,
}

#[async_trait]
impl StoreFixture for Broken {
    fn name(&self) -> String {
        "broken on purpose".into()
    }

    async fn grants(&self) -> Made<dyn GrantStore> {
        let (clock, time) = manual_time();
        let store = FindThenTake {
            inner: MemoryGrantStore::new(clock),
            gate: Arc::clone(&self.gate),
        };
        Ok(Some(Replicas::shared(Arc::new(store), time)))
    }

    async fn rates(&self) -> Made<dyn RateLimiter> {
        let (clock, time) = manual_time();
        let store = CountAfterCheck {
            inner: MemoryRateLimiter::new(clock),
            gate: Arc::clone(&self.gate),
        };
        Ok(Some(Replicas::shared(Arc::new(store), time)))
    }
}

fn failure(report: &stores::Report, name: &str) -> String {
    match report.verdict(name) {
        Some(Verdict::Failed(why)) => why.clone(),
        other => panic!("{name} did not fail against a broken store: {other:?}\n{report}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn find_then_take_fails_the_single_use_check() {
    // Two consumes both find the live grant before either takes it.
    let gate = Gate::new(2);
    let fixture = Arc::new(Broken {
        gate: Arc::clone(&gate),
    });
    let report =
        stores::run_matching(fixture, |c| c.name() == "grant_consumed_once_concurrently").await;
    let why = failure(&report, "grant_consumed_once_concurrently");
    assert!(
        why.contains("of 32 concurrent consumes got the single-use grant (exactly one must)"),
        "{why}"
    );
    assert!(gate.arrived() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn count_after_check_fails_the_exactness_check() {
    // Six hits (one more than the limit of 5) all pass the check before any is counted.
    let gate = Gate::new(6);
    let fixture = Arc::new(Broken {
        gate: Arc::clone(&gate),
    });
    let report =
        stores::run_matching(fixture, |c| c.name() == "rate_exact_under_concurrency").await;
    let why = failure(&report, "rate_exact_under_concurrency");
    assert!(
        why.contains("of 40 concurrent hits were allowed under a limit of 5"),
        "{why}"
    );
    assert!(gate.arrived() >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broken_stores_pass_the_checks_that_race_no_consume_or_hit() {
    // Without a pause the same doubles pass every check whose consumes and hits run one at a time: the concurrency
    // checks are what catch them, and above they do so for certain, not by timing luck. (The refund check also
    // hits concurrently, so it catches the limiter too, but only when the race happens to go wrong.)
    let racing = [
        "grant_consumed_once_concurrently",
        "rate_exact_under_concurrency",
        "rate_undo_never_over_refunds",
    ];
    let fixture = Arc::new(Broken { gate: Gate::new(1) });
    let report = stores::run_matching(fixture, |c| {
        matches!(c.port(), Port::Grants | Port::Rates) && !racing.contains(&c.name())
    })
    .await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.results.len(),
        stores::grants::CHECKS.len() + stores::rates::CHECKS.len() - racing.len(),
        "{report}"
    );
}

/// A limiter whose backing service is down.
struct Down;

#[async_trait]
impl RateLimiter for Down {
    async fn hit(&self, _: &RateKey, _: RateRule) -> Result<RateDecision, PortError> {
        Err(PortError::Unavailable)
    }
    async fn peek(&self, _: &RateKey, _: RateRule) -> Result<RateDecision, PortError> {
        Err(PortError::Unavailable)
    }
    async fn undo(&self, _: &RateKey, _: RateRule) -> Result<(), PortError> {
        Err(PortError::Unavailable)
    }
    async fn reset(&self, _: &RateKey) -> Result<(), PortError> {
        Err(PortError::Unavailable)
    }
}

struct Outage;

#[async_trait]
impl StoreFixture for Outage {
    fn name(&self) -> String {
        "outage".into()
    }

    async fn rates(&self) -> Made<dyn RateLimiter> {
        let (_, time) = manual_time();
        Ok(Some(Replicas::shared(Arc::new(Down), time)))
    }

    async fn usage(&self) -> Made<dyn fctr_ports::UsageLedger> {
        Err("cannot reach the database".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_errors_and_fixture_errors_fail_naming_the_call() {
    let report = stores::run(Arc::new(Outage)).await;
    let why = failure(&report, "rate_peek_counts_nothing");
    assert_eq!(why, "peek: the store returned an error: unavailable");
    for c in stores::rates::CHECKS {
        assert!(
            matches!(report.verdict(c.name()), Some(Verdict::Failed(_))),
            "{report}"
        );
    }
    let why = failure(&report, "usage_concurrent_records_sum_exactly");
    assert!(
        why.contains("could not make a UsageLedger: cannot reach the database"),
        "{why}"
    );
    assert!(
        matches!(
            report.verdict("grant_consumed_once_concurrently"),
            Some(Verdict::Skipped(why)) if why.contains("does not implement GrantStore")
        ),
        "{report}"
    );
}
