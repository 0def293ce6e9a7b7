//! Live challenge status without hammering the IdP: one poller per pending verification across ALL replicas,
//! however many SSE clients and API pollers watch it, on however many replicas; fast while callers usually answer,
//! slower later, and slower still when the IdP's rate limit for the poll runs low.
//!
//! Each replica keeps a registry mapping (verification, owning agent) to a `tokio::sync::watch` channel its own
//! watchers read. The first local watcher starts a task for the entry. The task takes the entry's lease from the
//! [`Coordinator`] (shared through Redis when there are replicas, in memory otherwise): the lease holder calls
//! [`Engine::poll_verification`] once per interval, renews the lease, and on every change sends a hint (an empty
//! message: no data crosses the bus) on the entry's topic. A task without the lease waits for a hint (or the
//! interval, in case one was missed) and reads the stored verification with [`Engine::verification_view`], which
//! asks the IdP nothing; it takes over the poll when the holder stops renewing (a replica killed), within one lease
//! time. Watchers wake on changes, not on polls. A task stops at a final state, at an error, when the outstanding
//! challenge is a code the agent types in (nothing to poll), or when nobody has watched for a few intervals. A
//! watcher that is not the owner gets its own entry, whose engine call is refused before the IdP is asked.
//!
//! **The interval** is [`poll_interval`]: the [`PollSchedule`] by the time since the push was sent (the
//! verification record's send time, which every replica reads; before a view has said it, since this replica first
//! saw the challenge), stretched when the adapter's tracked budget for the
//! poll endpoint ([`fctr_ports::Challenger::poll_budget`]) runs low, so that this replica's pollers together
//! cannot spend what is left before the window resets.
//!
//! **At most one upstream poll per interval**, whoever watches: one task per entry on a replica; one lease holder
//! across replicas; an entry remembers its last upstream poll, so a task started again (an API client polling
//! after the last one stopped) does not poll before the interval is over (it reads the store meanwhile); and a
//! task that stops holding the lease keeps it until its next poll would have been due instead of releasing it, so
//! another replica cannot poll sooner either. A late watcher of a verification that has ended gets the stored
//! final state: the engine answers a settled verification from the store, never from the IdP.
//!
//! How verifications end is counted elsewhere, once per verification: [`crate::metrics::CountingAudit`].

use fctr_core::{Agent, Denial, Engine, RequestContext, VerificationView};
use fctr_ports::{
    Coordinator, FactorKind, IdentityProvider, PseudoId, Subscription, UpstreamBudget,
    VerificationId, VerificationStatus,
};
use futures::StreamExt as _;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The latest known state of a verification: `None` until the first poll answered.
pub type Snapshot = Option<Result<VerificationView, Denial>>;

/// How often the one poller of a pending push asks the IdP, by the time since the push was sent: every
/// [`fast`](Self::fast) for [`fast_for`](Self::fast_for), then every [`interval`](Self::interval) until
/// [`backoff_after`](Self::backoff_after), then doubling with each poll up to [`max`](Self::max).
///
/// The defaults (0.75 s for the first minute, 1 s to two minutes, then 2 s, 4 s, 5 s…) are set by what the agent
/// waits for: with approvals spread over the first minute, the wait from the tap to the next poll is uniform over
/// one interval, so its p95 is 0.95 × the interval. 0.75 s gives 0.71 s, leaving room for the poll's round trip
/// and the event to the page under the 0.8 s goal; a 1 s interval anywhere in the first minute would already make
/// 0.95 s. Past the first minute, answers are rare and the slower steps spare the IdP's rate limit: about 80 polls
/// in the first minute, 60 in the second, then 12 a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSchedule {
    /// The interval while callers usually answer (default 750 ms).
    pub fast: Duration,
    /// How long after the push the fast interval lasts (default 60 s).
    pub fast_for: Duration,
    /// The interval after that (default 1 s).
    pub interval: Duration,
    /// When backing off starts: the interval doubles with each poll from then on (default 120 s after the push).
    pub backoff_after: Duration,
    /// The longest interval when backing off (default 5 s).
    pub max: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            fast: Duration::from_millis(750),
            fast_for: Duration::from_secs(60),
            interval: Duration::from_secs(1),
            backoff_after: Duration::from_secs(120),
            max: Duration::from_secs(5),
        }
    }
}

/// The shortest interval anyone may configure.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The longest interval anyone may configure.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The latest the backing off may start.
pub const MAX_BACKOFF_AFTER: Duration = Duration::from_secs(3600);

impl PollSchedule {
    /// The interval `elapsed` after the push (before any rate-limit stretching).
    #[must_use]
    pub fn interval_at(&self, elapsed: Duration) -> Duration {
        if elapsed < self.fast_for {
            return self.fast;
        }
        if elapsed < self.backoff_after {
            return self.interval;
        }
        // Doubling with each poll: the k-th poll after `backoff_after` waits interval × 2^(k+1), capped.
        let mut at = self.backoff_after;
        let mut every = self.interval;
        loop {
            every = every
                .saturating_mul(2)
                .max(Duration::from_millis(1))
                .min(self.max);
            at = at.saturating_add(every);
            if elapsed < at || every >= self.max {
                return every;
            }
        }
    }

    /// Checks the schedule: every interval between [`MIN_INTERVAL`] and [`MAX_INTERVAL`], `fast <= interval <=
    /// max`, `fast_for <= backoff_after <= MAX_BACKOFF_AFTER`. The error names the field in words.
    ///
    /// # Errors
    /// `(field, problem)` for the first rule broken; field names are the configuration keys'
    /// (`fast_interval_ms`, `fast_for_secs`, `interval_ms`, `backoff_after_secs`, `max_interval_ms`).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let range = format!(
            "must be between {} and {} ms",
            MIN_INTERVAL.as_millis(),
            MAX_INTERVAL.as_millis()
        );
        for (name, v) in [
            ("fast_interval_ms", self.fast),
            ("interval_ms", self.interval),
            ("max_interval_ms", self.max),
        ] {
            if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&v) {
                return Err((name, range));
            }
        }
        if self.fast > self.interval {
            return Err((
                "fast_interval_ms",
                "must not be longer than interval_ms".into(),
            ));
        }
        if self.interval > self.max {
            return Err((
                "max_interval_ms",
                "must not be shorter than interval_ms".into(),
            ));
        }
        if self.fast_for > self.backoff_after {
            return Err((
                "backoff_after_secs",
                "must not be earlier than fast_for_secs".into(),
            ));
        }
        if self.backoff_after > MAX_BACKOFF_AFTER {
            return Err((
                "backoff_after_secs",
                format!("must be at most {}", MAX_BACKOFF_AFTER.as_secs()),
            ));
        }
        Ok(())
    }
}

/// Poll timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    /// The intervals by time since the push.
    pub schedule: PollSchedule,
    /// Intervals with no watcher before the poller stops (default 3).
    pub idle_ticks: u32,
    /// How long an entry is remembered after its poller stopped: when the challenge was first seen (so a watcher
    /// coming back keeps the schedule's place) and when it was last polled (so it is not polled again sooner than
    /// the interval). Default 10 minutes, the default verification window.
    pub keep: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            schedule: PollSchedule::default(),
            idle_ticks: 3,
            keep: Duration::from_secs(600),
        }
    }
}

/// Below this share of the limit, pollers stretch their interval.
const LOW_SHARE: u64 = 4; // a quarter
/// The share of the limit polls leave to the other calls that count against the same limit (lookups, pushes,
/// actions).
const RESERVE_SHARE: u64 = 10; // a tenth
/// Extra wait past a reset before the first poll of the new window (Okta gives the reset in whole seconds).
const RESET_SLACK: Duration = Duration::from_secs(1);

/// The interval before a poller's next upstream poll: the schedule's interval `elapsed` after the push, stretched
/// when the IdP's budget for the poll endpoint runs low. A pure function of its inputs.
///
/// - No budget (`None`), or a budget whose reset has passed (`reset_in` zero: the figures describe a window that
///   is over), or at least a quarter of the limit left: the schedule's interval.
/// - Less than that: `pollers` (this replica's pollers that poll upstream; at least 1) together may spend what is
///   left above a reserve of a tenth of the limit (for lookups, pushes and actions sharing it) before the reset,
///   and no more: the interval becomes `reset_in × pollers / spendable` if that is longer.
/// - Nothing spendable (or nothing left, or a throttle whose size is unknown, `limit` 0): wait for the reset
///   (`reset_in` plus a second).
///
/// `remaining` above `limit` counts as `limit`. The result is never longer than waiting for the reset: the first
/// poll of the next window brings fresh figures.
#[must_use]
pub fn poll_interval(
    schedule: &PollSchedule,
    elapsed: Duration,
    budget: Option<&UpstreamBudget>,
    pollers: usize,
) -> Duration {
    let base = schedule.interval_at(elapsed);
    let Some(b) = budget else {
        return base;
    };
    if b.reset_in.is_zero() {
        return base;
    }
    let remaining = if b.limit > 0 {
        b.remaining.min(b.limit)
    } else {
        b.remaining
    };
    if b.limit > 0 && remaining.saturating_mul(LOW_SHARE) >= b.limit {
        return base;
    }
    let until_reset = b.reset_in.saturating_add(RESET_SLACK);
    let reserve = b.limit.div_ceil(RESERVE_SHARE);
    let spendable = remaining.saturating_sub(reserve);
    if spendable == 0 {
        return base.max(until_reset);
    }
    let pollers = u64::try_from(pollers.max(1)).unwrap_or(u64::MAX);
    // reset_in × pollers / spendable, in nanoseconds (saturating: a huge figure only means "wait for the reset").
    let nanos = b
        .reset_in
        .as_nanos()
        .saturating_mul(u128::from(pollers))
        .div_ceil(u128::from(spendable));
    let stretched = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    base.max(stretched.min(until_reset))
}

/// What a registry remembers about an entry between its pollers: when this replica first saw the challenge and
/// when the record says it was sent, when it last polled upstream, and when the entry was last busy (for
/// forgetting it).
#[derive(Debug)]
struct Times {
    since: Instant,
    /// When the push was sent, by the verification's own record (earlier than `since` when another replica sent
    /// it or this poller started late).
    pushed: Mutex<Option<Instant>>,
    last_poll: Mutex<Option<Instant>>,
    touched: Mutex<Instant>,
}

impl Times {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            since: now,
            pushed: Mutex::new(None),
            last_poll: Mutex::new(None),
            touched: Mutex::new(now),
        }
    }
    /// How long the push has been out: from the record's send time when a view said it, else from when this
    /// replica first saw it.
    fn age(&self) -> Duration {
        let seen = self.since.elapsed();
        self.pushed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map_or(seen, |p| p.elapsed().max(seen))
    }
    /// Notes the send time a view gives. Wall clocks of replicas may differ: a send time in the future counts as
    /// now, and one more than an hour back is ignored (no push lives that long).
    fn pushed_at(&self, at: Option<chrono::DateTime<chrono::Utc>>) {
        let Some(at) = at else { return };
        let ago = (chrono::Utc::now() - at).to_std().unwrap_or(Duration::ZERO);
        if ago > Duration::from_secs(3600) {
            return;
        }
        if let Some(p) = Instant::now().checked_sub(ago) {
            *self.pushed.lock().unwrap_or_else(PoisonError::into_inner) = Some(p);
        }
    }
    fn pushed(&self) -> Option<Instant> {
        *self.pushed.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// How long until an upstream poll is due: one interval after this replica's last poll, and never sooner than
    /// one interval after the push (no caller answers within a moment of the push: a poll then would always find
    /// it waiting, and spend one of the tenant's requests for nothing).
    fn until_due(&self, every: Duration) -> Duration {
        let now = Instant::now();
        [self.last_poll(), self.pushed()]
            .into_iter()
            .flatten()
            .map(|t| (t + every).saturating_duration_since(now))
            .max()
            .unwrap_or(Duration::ZERO)
    }
    fn last_poll(&self) -> Option<Instant> {
        *self
            .last_poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
    fn polled_now(&self) {
        *self
            .last_poll
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }
    fn touch(&self) {
        *self.touched.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }
    fn idle_for(&self) -> Duration {
        self.touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

struct Entry {
    tx: watch::Sender<Snapshot>,
    task: Option<JoinHandle<()>>,
    times: Arc<Times>,
}

impl Entry {
    fn new() -> Self {
        Self {
            tx: watch::channel(None).0,
            task: None,
            times: Arc::new(Times::new()),
        }
    }
    fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// How often at most [`PollRegistry`] walks its entries to forget the stale ones.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The registry of pollers.
pub struct PollRegistry {
    engine: Arc<Engine>,
    coordinator: Arc<dyn Coordinator>,
    /// Where the poll budget comes from (the engine's identity provider).
    budget: Arc<dyn IdentityProvider>,
    /// This replica's name as a lease holder (random per process).
    me: String,
    settings: PollSettings,
    entries: Mutex<HashMap<(VerificationId, PseudoId), Entry>>,
    /// When `entries` was last pruned, and how many it kept: a prune walks every entry, so it runs at most once
    /// per [`PRUNE_EVERY`] unless the map has doubled since.
    pruned: Mutex<(Instant, usize)>,
    engine_polls: AtomicU64,
    /// Tasks of this registry that hold their entry's lease (they poll upstream): what the budget is shared by.
    leading: AtomicUsize,
}

impl std::fmt::Debug for PollRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollRegistry")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Whether a view needs more polling: a push (or other started factor) is outstanding.
fn needs_polling(view: &VerificationView) -> bool {
    // A sign-in link is watched the same way (its poll reads the shared store, not the IdP).
    view.status == VerificationStatus::Challenged
        && matches!(view.factor, Some(FactorKind::Push | FactorKind::IdpSignIn))
}

/// Stores `snapshot` and wakes the watchers only if it differs from what they last saw: a push left waiting
/// poll after poll sends no SSE event (the keep-alive keeps the stream open).
fn publish_if_changed(tx: &watch::Sender<Snapshot>, snapshot: Snapshot) -> bool {
    tx.send_if_modified(|current| {
        if *current == snapshot {
            false
        } else {
            *current = snapshot;
            true
        }
    })
}

/// Whether a snapshot is final for the poller.
fn settled(s: &Snapshot) -> bool {
    match s {
        None => false,
        Some(Ok(v)) => !needs_polling(v),
        Some(Err(_)) => true,
    }
}

/// Counts a task among the registry's upstream pollers while it holds the lease.
struct Leading<'a> {
    count: &'a AtomicUsize,
    on: bool,
}

impl Leading<'_> {
    fn set(&mut self, on: bool) {
        if on != self.on {
            if on {
                self.count.fetch_add(1, Ordering::Relaxed);
            } else {
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
            self.on = on;
        }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

impl PollRegistry {
    /// A registry polling through `engine`, sharing leases and hints through `coordinator`, pacing itself by the
    /// poll budget `budget` reports (the engine's identity provider).
    #[must_use]
    pub fn new(
        engine: Arc<Engine>,
        coordinator: Arc<dyn Coordinator>,
        budget: Arc<dyn IdentityProvider>,
        settings: PollSettings,
    ) -> Self {
        Self {
            engine,
            coordinator,
            budget,
            me: crate::session::random_token(),
            settings,
            entries: Mutex::new(HashMap::new()),
            pruned: Mutex::new((Instant::now(), 0)),
            engine_polls: AtomicU64::new(0),
            leading: AtomicUsize::new(0),
        }
    }

    /// Engine polls made by pollers so far (those that held the lease).
    #[must_use]
    pub fn engine_polls(&self) -> u64 {
        self.engine_polls.load(Ordering::Relaxed)
    }

    /// Pollers currently running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.entries
            .lock()
            .map_or(0, |e| e.values().filter(|x| x.running()).count())
    }

    /// Entries remembered (watched, polling, or stopped less than `keep` ago).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// The interval a poller of this registry would use now, `elapsed` after the push: [`poll_interval`] with the
    /// current poll budget and this registry's upstream pollers.
    #[must_use]
    pub fn interval_now(&self, elapsed: Duration) -> Duration {
        poll_interval(
            &self.settings.schedule,
            elapsed,
            self.budget.poll_budget().as_ref(),
            self.leading.load(Ordering::Relaxed),
        )
    }

    /// Forgets entries nobody watches, whose poller stopped more than `keep` ago. Called on every watch and
    /// publish, but walks the map at most once per [`PRUNE_EVERY`] (or when it has doubled since the last walk):
    /// walking thousands of remembered entries on every request was a tenth of the portal's CPU per verification.
    /// An entry forgotten a second late costs nothing but its memory for that second.
    fn prune(&self, entries: &mut HashMap<(VerificationId, PseudoId), Entry>) {
        let mut pruned = self.pruned.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, kept) = *pruned;
        if at.elapsed() < PRUNE_EVERY && entries.len() < kept.saturating_mul(2).max(64) {
            return;
        }
        let keep = self.settings.keep;
        entries
            .retain(|_, e| e.tx.receiver_count() > 0 || e.running() || e.times.idle_for() < keep);
        *pruned = (Instant::now(), entries.len());
    }

    /// Watches a verification as `agent`, starting its poller if none runs.
    pub fn watch(self: &Arc<Self>, agent: &Agent, id: VerificationId) -> watch::Receiver<Snapshot> {
        let key = (id, agent.pseudonym().clone());
        let Ok(mut entries) = self.entries.lock() else {
            let (_tx, rx) =
                watch::channel(Some(Err(Denial::new(fctr_ports::Reason::InvalidState))));
            return rx;
        };
        self.prune(&mut entries);
        let entry = entries.entry(key).or_insert_with(Entry::new);
        if !entry.running() {
            if entry.task.is_some() {
                // What a stopped poller last saw may be out of date (a grant used since, an approval another
                // replica stored, an IdP error that a new look may clear): the new task answers first, from the
                // store if the interval since the last poll is not over. Cleared without waking anyone, so no
                // watcher sees the gap. (A view just published, with no poller yet, is fresh and stays.)
                entry.tx.send_if_modified(|s| {
                    *s = None;
                    false
                });
            }
            entry.task = Some(self.spawn(agent.clone(), id, entry));
        }
        entry.tx.subscribe()
    }

    /// Publishes a result obtained elsewhere (a code submitted, another factor started), so watchers see it
    /// and a poller starts again if the new state needs one.
    pub fn publish(self: &Arc<Self>, agent: &Agent, id: VerificationId, view: VerificationView) {
        let key = (id, agent.pseudonym().clone());
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        self.prune(&mut entries);
        let entry = entries.entry(key).or_insert_with(Entry::new);
        let poll = needs_polling(&view);
        entry.tx.send_replace(Some(Ok(view)));
        entry.times.touch();
        if poll && !entry.running() && entry.tx.receiver_count() > 0 {
            entry.task = Some(self.spawn(agent.clone(), id, entry));
        }
        drop(entries);
        // Watchers on other replicas look again.
        let (coordinator, topic) = (Arc::clone(&self.coordinator), topic(id, agent.pseudonym()));
        tokio::spawn(async move {
            if coordinator.publish(&topic, Vec::new()).await.is_err() {
                tracing::debug!("poll hint not sent: coordinator unavailable");
            }
        });
    }

    /// The current state, waiting up to `wait` for the first poll.
    ///
    /// # Errors
    /// The engine's denial, or [`fctr_ports::Reason::IdpError`] when no answer came in time.
    pub async fn current(
        self: &Arc<Self>,
        agent: &Agent,
        id: VerificationId,
        wait: Duration,
    ) -> Result<VerificationView, Denial> {
        let mut rx = self.watch(agent, id);
        let got = tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await;
        match got {
            Ok(Ok(s)) => s
                .clone()
                .unwrap_or(Err(Denial::new(fctr_ports::Reason::IdpError))),
            _ => Err(Denial::new(fctr_ports::Reason::IdpError)),
        }
    }

    fn spawn(self: &Arc<Self>, agent: Agent, id: VerificationId, entry: &Entry) -> JoinHandle<()> {
        let me = Arc::clone(self);
        let (tx, times) = (entry.tx.clone(), Arc::clone(&entry.times));
        times.touch();
        tokio::spawn(async move { me.run(agent, id, tx, times).await })
    }

    async fn run(
        self: Arc<Self>,
        agent: Agent,
        id: VerificationId,
        tx: watch::Sender<Snapshot>,
        times: Arc<Times>,
    ) {
        let ctx = RequestContext::default();
        // One name serves as the lease key and the hint topic.
        let key = topic(id, agent.pseudonym());
        // Subscribed before the first look, so no hint sent after it is missed.
        let mut hints: Option<Subscription> = self.coordinator.subscribe(&key).await.ok();
        let mut idle = 0u32;
        let mut holds = false;
        let mut leading = Leading {
            count: &self.leading,
            on: false,
        };
        let mut every;
        let mut first = true;
        loop {
            every = self.interval_now(times.age());
            // Not before the interval since this replica's last upstream poll is over (a task started again
            // soon after the last one stopped, or an interval that grew since), nor before one interval after the
            // push. When neither is known yet (the first look of a new entry), the first look reads the store,
            // which gives the send time.
            let mut not_yet = times.until_due(every);
            if first && not_yet.is_zero() && times.last_poll().is_none() && times.pushed().is_none()
            {
                not_yet = every;
            }
            first = false;
            let leader = if not_yet.is_zero() {
                // Held for three intervals and renewed every interval: a killed holder's lease runs out soon.
                holds = self
                    .coordinator
                    .acquire(&key, &self.me, every.saturating_mul(3))
                    .await
                    .unwrap_or(false);
                holds
            } else {
                if holds {
                    // The interval grew (the budget ran low): keep the lease over the longer wait.
                    holds = self
                        .coordinator
                        .acquire(
                            &key,
                            &self.me,
                            not_yet.saturating_add(every.saturating_mul(2)),
                        )
                        .await
                        .unwrap_or(false);
                }
                false
            };
            leading.set(holds);
            let result = if leader {
                times.polled_now();
                self.engine_polls.fetch_add(1, Ordering::Relaxed);
                self.engine.poll_verification(&agent, &ctx, id).await
            } else {
                self.engine.verification_view(&agent, &ctx, id).await
            };
            if let Ok(v) = &result {
                times.pushed_at(v.challenge_started_at);
            }
            let snapshot = Some(result);
            let done = settled(&snapshot);
            let changed = publish_if_changed(&tx, snapshot);
            if changed && leader && self.coordinator.publish(&key, Vec::new()).await.is_err() {
                tracing::debug!("poll hint not sent: coordinator unavailable");
            }
            if done {
                break;
            }
            if tx.receiver_count() == 0 {
                idle += 1;
                if idle >= self.settings.idle_ticks {
                    break;
                }
            } else {
                idle = 0;
            }
            // Due again an interval after this poll; after a look in the store, when the poll is due (the send
            // time may be known now: a push older than an interval is polled at once).
            let next = if not_yet.is_zero() {
                every
            } else {
                times.until_due(every)
            };
            match (&mut hints, leader) {
                (Some(h), false) => {
                    // A hint, or the interval in case one was lost; a closed bus falls back to the interval.
                    if let Ok(None) = tokio::time::timeout(next, h.next()).await {
                        hints = None;
                    }
                }
                _ => tokio::time::sleep(next).await,
            }
            if hints.is_none() {
                hints = self.coordinator.subscribe(&key).await.ok();
            }
        }
        times.touch();
        if holds {
            // Keep the lease until this replica's next poll would have been due, so that no replica polls sooner;
            // give it up at once if that is already past.
            let left = times.last_poll().map_or(Duration::ZERO, |t| {
                (t + every).saturating_duration_since(Instant::now())
            });
            let kept = left >= Duration::from_millis(1)
                && self
                    .coordinator
                    .acquire(&key, &self.me, left)
                    .await
                    .unwrap_or(false);
            if !kept && self.coordinator.release(&key, &self.me).await.is_err() {
                tracing::debug!("poll lease not released: it runs out on its own");
            }
        }
    }
}

/// The lease key and hint topic of one (verification, owning agent) entry: opaque ids and a pseudonym only.
fn topic(id: VerificationId, agent: &PseudoId) -> String {
    format!("poll:{id}:{}", agent.as_str())
}

#[cfg(test)]
mod tests;
