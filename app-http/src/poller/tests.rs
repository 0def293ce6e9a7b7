//! The poller's tests: the interval function (pure), the schedule's checks, and deterministic runs on a paused
//! tokio clock (no sleeps in real time): two registries sharing one in-memory coordinator, as two replicas share
//! Redis, in front of an in-process identity provider that counts (and can hold) its polls.

use super::*;
use crate::metrics::{CountingAudit, VerificationOutcome};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_core::Pseudonymizer;
use fctr_core::policy::Policy;
use fctr_memory::{
    MemoryAuditLog, MemoryCoordinator, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger,
};
use fctr_ports::{
    AccountStatus, Action, ActionReceipt, AgentId, Capabilities, ChallengeContext, ChallengeState,
    ChallengeTicket, Challenger, Clock, CodeVerdict, Directory, FactorId, FactorInfo, FactorStatus,
    GroupRef, KeyId, Lifecycle, Pii, PortError, Reason, RiskFacts, SecretString, SubjectId,
    TenantId, UserQuery, UserRecord,
};
use fctr_testkit::{ScriptedIdp, ScriptedUser};

const MS: Duration = Duration::from_millis(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn budget(remaining: u64, limit: u64, reset_in: Duration) -> UpstreamBudget {
    UpstreamBudget {
        remaining,
        limit,
        reset_in,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The schedule and the interval function.

#[test]
fn the_default_schedule_is_fast_for_the_first_minute_then_steps_down_and_backs_off() {
    let s = PollSchedule::default();
    assert_eq!(s.interval_at(Duration::ZERO), 750 * MS);
    assert_eq!(s.interval_at(secs(59) + 999 * MS), 750 * MS);
    assert_eq!(s.interval_at(secs(60)), secs(1));
    assert_eq!(s.interval_at(secs(119)), secs(1));
    // From 120 s the interval doubles with each poll: 2 s (120..122), 4 s (122..126), then 5 s for good.
    assert_eq!(s.interval_at(secs(120)), secs(2));
    assert_eq!(s.interval_at(secs(121)), secs(2));
    assert_eq!(s.interval_at(secs(122)), secs(4));
    assert_eq!(s.interval_at(secs(125)), secs(4));
    assert_eq!(s.interval_at(secs(126)), secs(5));
    assert_eq!(s.interval_at(secs(100_000)), secs(5));
    assert_eq!(s.interval_at(Duration::MAX), secs(5));
    assert_eq!(s.check(), Ok(()));
}

/// The tap-to-screen goal the defaults are chosen for: approvals uniform over the first minute wait uniformly
/// over one interval for the next poll, whose p95 is 0.95 × the interval: it must leave room under 0.8 s.
#[test]
fn the_default_fast_interval_covers_the_first_minute_and_its_p95_wait_is_under_the_goal() {
    let s = PollSchedule::default();
    assert!(s.fast_for >= secs(60));
    let p95_wait = s.fast.mul_f64(0.95);
    assert!(p95_wait < 800 * MS, "{p95_wait:?}");
    // A 1 s interval anywhere in the first minute would not make it.
    assert!(secs(1).mul_f64(0.95) > 800 * MS);
}

#[test]
fn a_schedule_that_breaks_a_rule_names_the_key() {
    let ok = PollSchedule::default();
    let bad = |f: fn(&mut PollSchedule)| {
        let mut s = ok;
        f(&mut s);
        s.check().unwrap_err().0
    };
    assert_eq!(bad(|s| s.fast = 99 * MS), "fast_interval_ms");
    assert_eq!(bad(|s| s.fast = Duration::ZERO), "fast_interval_ms");
    assert_eq!(bad(|s| s.interval = secs(61)), "interval_ms");
    assert_eq!(bad(|s| s.max = secs(61)), "max_interval_ms");
    assert_eq!(bad(|s| s.fast = secs(2)), "fast_interval_ms");
    assert_eq!(bad(|s| s.max = 500 * MS), "max_interval_ms");
    assert_eq!(bad(|s| s.backoff_after = secs(30)), "backoff_after_secs");
    assert_eq!(bad(|s| s.backoff_after = secs(3601)), "backoff_after_secs");
}

#[test]
fn without_a_budget_or_with_plenty_left_the_schedule_decides() {
    let s = PollSchedule::default();
    assert_eq!(poll_interval(&s, Duration::ZERO, None, 50), 750 * MS);
    let plenty = budget(300, 600, secs(30));
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&plenty), 50),
        750 * MS
    );
    // Exactly a quarter left is not low yet.
    let quarter = budget(150, 600, secs(30));
    assert_eq!(poll_interval(&s, secs(70), Some(&quarter), 1000), secs(1));
}

#[test]
fn a_low_budget_stretches_the_interval_by_the_pollers_sharing_it() {
    let s = PollSchedule::default();
    // 100 of 600 left (under a quarter), 60 kept in reserve: 40 polls for 20 s.
    let low = budget(100, 600, secs(20));
    // One poller: 20 s / 40 = 0.5 s, shorter than the schedule: the schedule stands.
    assert_eq!(poll_interval(&s, Duration::ZERO, Some(&low), 1), 750 * MS);
    // Ten pollers: 20 s × 10 / 40 = 5 s.
    assert_eq!(poll_interval(&s, Duration::ZERO, Some(&low), 10), secs(5));
    // Zero pollers counts as one (the task asking is about to poll).
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&low), 0),
        poll_interval(&s, Duration::ZERO, Some(&low), 1)
    );
    // More pollers than polls left before the reset: each waits for the reset (+1 s), no longer.
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&low), 1000),
        secs(21)
    );
}

#[test]
fn nothing_left_above_the_reserve_waits_for_the_reset() {
    let s = PollSchedule::default();
    for b in [
        budget(0, 600, secs(12)),
        budget(60, 600, secs(12)), // exactly the reserve
        budget(1, 5, secs(12)),    // a limit of 5: its reserve is the 1 left
    ] {
        assert_eq!(
            poll_interval(&s, Duration::ZERO, Some(&b), 1),
            secs(13),
            "{b:?}"
        );
    }
    // A reset sooner than the schedule's interval does not shorten it.
    let soon = budget(0, 600, 100 * MS);
    assert_eq!(poll_interval(&s, secs(200), Some(&soon), 1), secs(5));
}

#[test]
fn edge_cases_limit_zero_remaining_above_limit_and_a_reset_in_the_past() {
    let s = PollSchedule::default();
    // A throttle of unknown size (Entra after a 429, Okta's concurrency limit): wait for its end.
    let throttled = UpstreamBudget::exhausted_for(secs(30));
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&throttled), 1),
        secs(31)
    );
    // Limit 0 but something left: spread it, no reserve (its size is unknown).
    let unknown = budget(10, 0, secs(10));
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&unknown), 5),
        secs(5)
    );
    // More left than the limit (a window that grew): counts as the limit, i.e. plenty.
    let over = budget(10_000, 600, secs(30));
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&over), 500),
        750 * MS
    );
    // A reset already past: the figures describe a window that is over, so they say nothing.
    let stale = budget(0, 600, Duration::ZERO);
    assert_eq!(poll_interval(&s, Duration::ZERO, Some(&stale), 1), 750 * MS);
    // Huge figures saturate instead of overflowing.
    let huge = budget(u64::MAX, u64::MAX, Duration::MAX);
    assert_eq!(
        poll_interval(&s, Duration::ZERO, Some(&huge), usize::MAX),
        750 * MS
    );
    let huge_low = budget(u64::MAX / 5, u64::MAX, secs(60));
    assert!(poll_interval(&s, Duration::ZERO, Some(&huge_low), usize::MAX) <= secs(61));
}

/// The promise the function makes, over a grid of budgets and poller counts: when the budget is low, `pollers`
/// pollers at this interval make at most what is left above the reserve before the reset (each polls again only
/// once a whole interval has passed), and never more than the schedule allows.
#[test]
fn pollers_at_the_interval_never_spend_the_reserve_before_the_reset() {
    let s = PollSchedule::default();
    for limit in [1u64, 2, 10, 60, 100, 600, 1200, 6000] {
        for remaining in [
            0,
            1,
            limit / 10,
            limit / 5,
            limit / 4,
            limit - limit / 10,
            limit,
        ] {
            for reset in [secs(1), secs(7), secs(30), secs(60)] {
                for pollers in [1usize, 2, 3, 10, 99, 1000] {
                    let b = budget(remaining, limit, reset);
                    let every = poll_interval(&s, Duration::ZERO, Some(&b), pollers);
                    assert!(every >= s.fast);
                    if remaining * 4 >= limit {
                        continue;
                    }
                    let reserve = limit.div_ceil(10);
                    let spendable = remaining.saturating_sub(reserve);
                    // Polls each poller makes strictly before the reset, after the one it just made.
                    let each = (reset.as_nanos() / every.as_nanos()) as u64;
                    let each = if reset.as_nanos() % every.as_nanos() == 0 {
                        each.saturating_sub(1)
                    } else {
                        each
                    };
                    assert!(
                        each * pollers as u64 <= spendable,
                        "limit {limit} remaining {remaining} reset {reset:?} pollers {pollers}: \
                         {each} each at {every:?} > {spendable}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic runs on a paused clock.

/// The engine's and the coordinator's clock, driven by tokio's (paused) time.
struct TokioClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base
            + chrono::Duration::from_std(self.start.elapsed())
                .unwrap_or_else(|_| chrono::Duration::zero())
    }
}

/// The scripted IdP behind a counter of polls, an answer that the test sets (the phone), an optional gate that
/// holds polls until the test lets them go, and a budget the test sets.
struct Upstream {
    inner: ScriptedIdp,
    polls: AtomicU64,
    answer: Mutex<ChallengeState>,
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    in_poll: AtomicUsize,
    budget: Mutex<Option<UpstreamBudget>>,
    fail: std::sync::atomic::AtomicBool,
    poll_times: Mutex<Vec<Instant>>,
}

impl Upstream {
    fn polls(&self) -> u64 {
        self.polls.load(Ordering::SeqCst)
    }
    fn answer(&self, s: ChallengeState) {
        *self.answer.lock().unwrap() = s;
    }
}

#[async_trait]
impl Directory for Upstream {
    async fn find_users(&self, q: &UserQuery, l: usize) -> Result<Vec<UserRecord>, PortError> {
        self.inner.find_users(q, l).await
    }
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.inner.get_user(id).await
    }
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        self.inner.list_factors(id).await
    }
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        self.inner.groups(id).await
    }
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        self.inner.risk_facts(id).await
    }
}

#[async_trait]
impl Challenger for Upstream {
    async fn start(
        &self,
        s: &SubjectId,
        f: &FactorInfo,
        c: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        self.inner.start(s, f, c).await
    }
    async fn poll(&self, _ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.poll_times.lock().unwrap().push(Instant::now());
        self.in_poll.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(g) = gate {
            let _permit = g.acquire().await;
        }
        self.in_poll.fetch_sub(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable);
        }
        Ok(self.answer.lock().unwrap().clone())
    }
    async fn verify_code(
        &self,
        s: &SubjectId,
        f: &FactorInfo,
        c: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        self.inner.verify_code(s, f, c).await
    }
    fn poll_budget(&self) -> Option<UpstreamBudget> {
        *self.budget.lock().unwrap()
    }
}

#[async_trait]
impl Lifecycle for Upstream {
    async fn execute(&self, s: &SubjectId, a: &Action) -> Result<ActionReceipt, PortError> {
        self.inner.execute(s, a).await
    }
}

impl IdentityProvider for Upstream {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// One engine, two "replicas" (registries with their own holder names) on one coordinator.
struct Rig {
    idp: Arc<Upstream>,
    outcomes: Arc<CountingAudit>,
    engine: Arc<Engine>,
    r1: Arc<PollRegistry>,
    r2: Arc<PollRegistry>,
    agent: Agent,
    subject: SubjectId,
    factor: FactorId,
}

const EVERY: Duration = Duration::from_millis(500);

fn schedule() -> PollSettings {
    PollSettings {
        schedule: PollSchedule {
            fast: EVERY,
            fast_for: secs(600),
            interval: EVERY,
            backoff_after: secs(600),
            max: EVERY,
        },
        ..PollSettings::default()
    }
}

fn rig() -> Rig {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock {
        base: Utc::now(),
        start: Instant::now(),
    });
    let scripted = ScriptedIdp::new().with_clock(Arc::clone(&clock));
    let subject = SubjectId::parse("00ucaller").unwrap();
    let factor = FactorId::parse("opfpush").unwrap();
    scripted.add_user(ScriptedUser {
        record: UserRecord {
            id: subject.clone(),
            login: Pii::new("caller@example.com"),
            email: None,
            display_name: None,
            phone: None,
            status: AccountStatus::Active,
        },
        factors: vec![FactorInfo {
            id: factor.clone(),
            kind: FactorKind::Push,
            status: FactorStatus::Active,
            vendor: None,
            label: None,
        }],
        groups: vec![],
        risk: RiskFacts::default(),
    });
    let idp = Arc::new(Upstream {
        inner: scripted,
        polls: AtomicU64::new(0),
        answer: Mutex::new(ChallengeState::Waiting),
        gate: Mutex::new(None),
        in_poll: AtomicUsize::new(0),
        budget: Mutex::new(None),
        fail: std::sync::atomic::AtomicBool::new(false),
        poll_times: Mutex::new(Vec::new()),
    });
    let outcomes = Arc::new(CountingAudit::new(Arc::new(MemoryAuditLog::new())));
    let key = SecretString::from("poller-test-key-0123456789abcdef".to_owned());
    let engine = Arc::new(
        Engine::builder()
            .idp(Arc::clone(&idp) as Arc<dyn IdentityProvider>)
            .audit(Arc::clone(&outcomes) as Arc<dyn fctr_ports::AuditLog>)
            .usage(Arc::new(MemoryUsageLedger::new()))
            .grants(Arc::new(MemoryGrantStore::new(Arc::clone(&clock))))
            .rate(Arc::new(MemoryRateLimiter::new(Arc::clone(&clock))))
            .clock(Arc::clone(&clock))
            .policy(Policy::default())
            .pseudonymizer(Pseudonymizer::new(KeyId::parse("k1").unwrap(), &key).unwrap())
            .tenant(TenantId::parse("t").unwrap())
            .build()
            .unwrap(),
    );
    let coordinator: Arc<dyn Coordinator> = Arc::new(MemoryCoordinator::new(clock));
    let registry = || {
        Arc::new(PollRegistry::new(
            Arc::clone(&engine),
            Arc::clone(&coordinator),
            Arc::clone(&idp) as Arc<dyn IdentityProvider>,
            schedule(),
        ))
    };
    let (r1, r2) = (registry(), registry());
    let agent = engine.restore_agent(AgentId::parse("00uagent2").unwrap(), Some("tier2"));
    Rig {
        idp,
        outcomes,
        engine,
        r1,
        r2,
        agent,
        subject,
        factor,
    }
}

impl Rig {
    async fn push(&self) -> VerificationId {
        self.engine
            .begin_verification(
                &self.agent,
                &RequestContext::default(),
                &self.subject,
                Some(&self.factor),
            )
            .await
            .expect("push sent")
            .id
    }
}

async fn status_of(rx: &mut watch::Receiver<Snapshot>) -> VerificationStatus {
    let s = rx.wait_for(Option::is_some).await.unwrap().clone();
    s.unwrap().expect("a view").status
}

/// Two watchers on two registries (two replicas) sharing one coordinator start at the same moment: one upstream
/// poll per interval between them. The first poll is held inside the IdP for most of a lease time: the other
/// replica, finding the lease taken, reads the store instead of polling.
#[tokio::test(start_paused = true)]
async fn two_replicas_watching_at_once_poll_once_per_interval() {
    let t = rig();
    let id = t.push().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *t.idp.gate.lock().unwrap() = Some(Arc::clone(&gate));
    let mut w1 = t.r1.watch(&t.agent, id);
    let mut w2 = t.r2.watch(&t.agent, id);
    // Both tasks run their first round; one is inside the IdP's poll, held there.
    tokio::time::sleep(EVERY * 2).await;
    assert_eq!(
        t.idp.polls(),
        1,
        "one poll in flight, the other replica did not poll"
    );
    assert_eq!(t.idp.in_poll.load(Ordering::SeqCst), 1);
    assert_eq!(
        t.r1.engine_polls() + t.r2.engine_polls(),
        1,
        "only the lease holder polled"
    );
    // The follower answered its watcher from the store meanwhile.
    assert_eq!(status_of(&mut w2).await, VerificationStatus::Challenged);
    *t.idp.gate.lock().unwrap() = None;
    gate.add_permits(1);
    assert_eq!(status_of(&mut w1).await, VerificationStatus::Challenged);

    // Ten more intervals: about one poll per interval in all (±1 for where the window cuts).
    let before = t.idp.polls();
    tokio::time::sleep(EVERY * 10).await;
    let polls = t.idp.polls() - before;
    assert!((9..=11).contains(&polls), "{polls} polls in 10 intervals");

    // The caller approves: both replicas' watchers see it; it is counted once.
    t.idp.answer(ChallengeState::Approved);
    let verified =
        |s: &Snapshot| matches!(s, Some(Ok(v)) if v.status == VerificationStatus::Verified);
    let (a, b) = tokio::join!(w1.wait_for(verified), w2.wait_for(verified));
    assert!(a.is_ok() && b.is_ok());
    drop((a, b));
    let at_end = t.idp.polls();
    assert_eq!(t.outcomes.ended(VerificationOutcome::Verified), 1);

    // Late watchers (an API client polling after the pollers stopped, on either replica, again and again): the
    // final state from the store, no upstream poll, still counted once.
    drop((w1, w2));
    tokio::time::sleep(EVERY * 5).await;
    for _ in 0..5 {
        for r in [&t.r1, &t.r2] {
            let v = r.current(&t.agent, id, secs(5)).await.expect("a view");
            assert_eq!(v.status, VerificationStatus::Verified);
            assert!(v.grant.is_some());
        }
        tokio::time::sleep(EVERY / 5).await;
    }
    assert_eq!(t.idp.polls(), at_end, "no upstream poll after the end");
    assert_eq!(t.outcomes.ended(VerificationOutcome::Verified), 1);
    for o in [
        VerificationOutcome::Rejected,
        VerificationOutcome::Expired,
        VerificationOutcome::Failed,
    ] {
        assert_eq!(t.outcomes.ended(o), 0, "{o:?}");
    }
}

/// An API client that polls after the poller stopped (nobody watched for a few intervals) starts it again, but
/// not sooner than one interval after the last upstream poll, on this replica and on the other.
#[tokio::test(start_paused = true)]
async fn a_poller_started_again_waits_out_the_interval_since_the_last_poll() {
    let t = rig();
    let id = t.push().await;
    // A watcher for a moment, then none: the poller stops after its idle intervals.
    let v = t.r1.current(&t.agent, id, secs(5)).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Challenged);
    let mut stopped = false;
    for _ in 0..100 {
        tokio::time::sleep(EVERY / 10).await;
        if t.r1.running() == 0 {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the poller stops with no watcher");
    let last = t.idp.polls();
    // Immediately, an API client asks each replica in turn, every tenth of an interval, for two intervals.
    let started = Instant::now();
    while started.elapsed() < EVERY * 2 {
        for r in [&t.r1, &t.r2] {
            let v = r.current(&t.agent, id, secs(5)).await.unwrap();
            assert_eq!(v.status, VerificationStatus::Challenged);
        }
        tokio::time::sleep(EVERY / 10).await;
    }
    let restarted = t.idp.polls() - last;
    assert!(restarted >= 1, "the poller did start again");
    assert!(restarted <= 3, "{restarted} polls in two intervals");
    // Every upstream poll of the whole run, before and after the stop, is at least an interval after the one
    // before it.
    let times = t.idp.poll_times.lock().unwrap().clone();
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= EVERY - MS, "polls {:?} apart", w[1] - w[0]);
    }
}

/// No caller answers within a moment of the push, so the first upstream poll waits one interval after it: the
/// page watching at once gets the state from the store. A watcher that comes later than one interval after the
/// push is polled for at once.
#[tokio::test(start_paused = true)]
async fn the_first_poll_is_one_interval_after_the_push_not_at_once() {
    let t = rig();
    let id = t.push().await;
    let mut w = t.r1.watch(&t.agent, id);
    assert_eq!(status_of(&mut w).await, VerificationStatus::Challenged);
    assert_eq!(
        t.idp.polls(),
        0,
        "the page's first state came from the store"
    );
    tokio::time::sleep(EVERY - 2 * MS).await;
    assert_eq!(t.idp.polls(), 0);
    tokio::time::sleep(4 * MS).await;
    assert_eq!(t.idp.polls(), 1, "polled one interval after the push");
}

/// When the next upstream poll is due: an interval after the push and after this replica's last poll, whichever
/// is later; at once for a push older than an interval that this replica never polled.
#[test]
fn a_poll_is_due_an_interval_after_the_push_and_after_the_last_poll() {
    let every = secs(1);
    let fresh = Times::new();
    assert_eq!(fresh.until_due(every), Duration::ZERO, "nothing known yet");
    fresh.pushed_at(Some(Utc::now()));
    let wait = fresh.until_due(every);
    assert!(wait > 900 * MS && wait <= every, "{wait:?}");
    let old = Times::new();
    old.pushed_at(Some(Utc::now() - chrono::Duration::seconds(3)));
    assert_eq!(
        old.until_due(every),
        Duration::ZERO,
        "an old push is polled at once"
    );
    old.polled_now();
    let wait = old.until_due(every);
    assert!(
        wait > 900 * MS && wait <= every,
        "then an interval after that poll: {wait:?}"
    );
}

/// A budget under a quarter of its limit stretches the interval (the registry's pollers share it); at zero the
/// pollers wait for the reset.
#[tokio::test(start_paused = true)]
async fn a_low_budget_slows_the_pollers_down_and_none_left_stops_them_until_the_reset() {
    let t = rig();
    let id = t.push().await;
    // 14 of 100 left, 10 in reserve: 4 polls in the next 10 s for the one poller: one every 2.5 s, the first
    // 2.5 s after the push (at 2.5, 5 and 7.5 s).
    *t.idp.budget.lock().unwrap() = Some(budget(14, 100, secs(10)));
    let _w = t.r1.watch(&t.agent, id);
    tokio::time::sleep(secs(10) - MS).await;
    let polls = t.idp.polls();
    assert_eq!(polls, 3, "{polls} polls in 10 s");
    assert_eq!(t.r1.interval_now(Duration::ZERO), 2500 * MS);
    // Nothing left: no poll until the reset (20 s away) is past.
    *t.idp.budget.lock().unwrap() = Some(budget(0, 100, secs(20)));
    tokio::time::sleep(secs(3)).await; // the interval under way (2.5 s) ends
    let before = t.idp.polls();
    tokio::time::sleep(secs(15)).await;
    assert_eq!(t.idp.polls(), before, "no poll while nothing is left");
    // A fresh window: back to the schedule.
    *t.idp.budget.lock().unwrap() = None;
    tokio::time::sleep(secs(10)).await;
    assert!(t.idp.polls() > before + 5, "polling resumed");
}

/// A stopped poller's last answer may be stale (here: an IdP error that has cleared since). The next watcher is
/// not answered from it but from a fresh look at the store, and that look does not poll upstream before the
/// interval since the failed poll is over.
#[tokio::test(start_paused = true)]
async fn a_watcher_after_an_error_gets_a_fresh_answer_without_an_early_poll() {
    let t = rig();
    let id = t.push().await;
    let mut w = t.r1.watch(&t.agent, id);
    assert_eq!(status_of(&mut w).await, VerificationStatus::Challenged);
    t.idp.fail.store(true, Ordering::SeqCst);
    let err = w
        .wait_for(|s| matches!(s, Some(Err(_))))
        .await
        .unwrap()
        .clone();
    assert_eq!(err.unwrap().unwrap_err().reason, Reason::IdpError);
    drop(w);
    tokio::task::yield_now().await;
    assert_eq!(t.r1.running(), 0, "a poller stops at an error");
    t.idp.fail.store(false, Ordering::SeqCst);
    let polls = t.idp.polls();
    let v =
        t.r1.current(&t.agent, id, secs(5))
            .await
            .expect("a fresh view");
    assert_eq!(v.status, VerificationStatus::Challenged);
    assert_eq!(t.idp.polls(), polls, "answered from the store, not polled");
    // Once the interval is over, the push is polled again.
    let _w = t.r1.watch(&t.agent, id);
    tokio::time::sleep(EVERY + MS).await;
    assert_eq!(t.idp.polls(), polls + 1);
}

/// Stale entries are forgotten `keep` after their poller stopped, although the walk that forgets them runs at
/// most once a second; and a burst doubles the map at most before it is walked.
#[tokio::test(start_paused = true)]
async fn entries_nobody_watches_are_forgotten_after_keep_and_a_burst_is_walked_early() {
    let t = rig();
    let registry = Arc::new(PollRegistry::new(
        Arc::clone(&t.engine),
        Arc::new(MemoryCoordinator::new(Arc::new(TokioClock {
            base: Utc::now(),
            start: Instant::now(),
        }))),
        Arc::clone(&t.idp) as Arc<dyn IdentityProvider>,
        PollSettings {
            keep: secs(5),
            ..schedule()
        },
    ));
    // Unknown verifications: each poller answers "not found" and stops.
    let burst = |n: usize| {
        for _ in 0..n {
            drop(registry.watch(&t.agent, VerificationId::random()));
        }
    };
    let settle = || async {
        for _ in 0..100 {
            if registry.running() == 0 {
                break;
            }
            tokio::time::sleep(MS).await;
        }
        assert_eq!(registry.running(), 0);
    };
    burst(100);
    settle().await;
    assert_eq!(registry.remembered(), 100, "kept for `keep`");
    tokio::time::sleep(secs(6)).await;
    burst(1);
    assert_eq!(registry.remembered(), 1, "the hundred are forgotten");
    // A hundred more; a walk at 4.6 s keeps them (not stale yet). At 5.2 s they are stale but the last walk was
    // 0.6 s ago: a burst of 150 walks anyway once the map has doubled since (202), and forgets them.
    burst(100);
    settle().await;
    tokio::time::sleep(4600 * MS).await;
    burst(1);
    assert_eq!(registry.remembered(), 102);
    tokio::time::sleep(600 * MS).await;
    burst(150);
    // Kept: the one of the walk at 4.6 s and the burst; the hundred and the one before them were stale.
    assert_eq!(
        registry.remembered(),
        1 + 150,
        "the stale ones went in the burst"
    );
}

#[test]
fn an_unchanged_result_wakes_no_watcher() {
    let (tx, mut rx) = watch::channel::<Snapshot>(None);
    publish_if_changed(&tx, Some(Err(Denial::new(Reason::IdpError))));
    assert!(
        rx.has_changed().unwrap_or(false),
        "the first result is news"
    );
    rx.mark_unchanged();
    publish_if_changed(&tx, Some(Err(Denial::new(Reason::IdpError))));
    assert!(
        !rx.has_changed().unwrap_or(true),
        "the same result again is not"
    );
    publish_if_changed(&tx, Some(Err(Denial::new(Reason::VerificationNotFound))));
    assert!(rx.has_changed().unwrap_or(false), "a different one is");
    assert_eq!(
        rx.borrow_and_update()
            .as_ref()
            .and_then(|r| r.as_ref().err())
            .map(|d| d.reason),
        Some(Reason::VerificationNotFound)
    );
}

#[test]
fn the_schedule_counts_from_the_push_the_record_gives_not_from_when_this_replica_first_saw_it() {
    let t = Times::new();
    assert!(
        t.age() < secs(1),
        "before a view: since this replica saw it"
    );
    // Another replica sent the push 50 s ago: this one is in the slower part of the schedule at once.
    t.pushed_at(Some(Utc::now() - chrono::Duration::seconds(50)));
    assert!(t.age() >= secs(49) && t.age() < secs(52), "{:?}", t.age());
    // A send time ahead of this replica's clock counts as now, never as earlier than seen.
    let skewed = Times::new();
    skewed.pushed_at(Some(Utc::now() + chrono::Duration::seconds(30)));
    assert!(skewed.age() < secs(1), "{:?}", skewed.age());
    // One further back than any push lives is ignored (a wrong clock, not a real push).
    let old = Times::new();
    old.pushed_at(Some(Utc::now() - chrono::Duration::hours(2)));
    assert!(old.age() < secs(1), "{:?}", old.age());
    // No send time: nothing changes.
    t.pushed_at(None);
    assert!(t.age() >= secs(49));
}
