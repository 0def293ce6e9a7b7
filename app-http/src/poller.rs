//! Live challenge status without hammering the IdP: one poller per pending verification across ALL replicas,
//! however many SSE clients and API pollers watch it, on however many replicas.
//!
//! Each replica keeps a registry mapping (verification, owning agent) to a `tokio::sync::watch` channel its own
//! watchers read. The first local watcher starts a task for the entry. The task takes the entry's lease from the
//! [`Coordinator`] (shared through Redis when there are replicas, in memory otherwise): the lease holder calls
//! [`Engine::poll_verification`] every interval (backing off after a while), renews the lease, and on every
//! change sends a hint (an empty message: no data crosses the bus) on the entry's topic. A task without the lease
//! waits for a hint (or the interval, in case one was missed) and reads the stored verification with
//! [`Engine::verification_view`], which asks the IdP nothing; it takes over the poll when the holder stops renewing
//! (a replica killed), within one lease time. Watchers wake on changes, not on polls. A task stops at a final
//! state, at an error, when the outstanding challenge is a code the agent types in (nothing to poll), or when nobody
//! has watched for a few intervals. A watcher that is not the owner gets its own entry, whose engine call is
//! refused before the IdP is asked.

use fctr_core::{Agent, Denial, Engine, RequestContext, VerificationView};
use fctr_ports::{
    Coordinator, FactorKind, PseudoId, Subscription, VerificationId, VerificationStatus,
};
use futures::StreamExt as _;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The latest known state of a verification: `None` until the first poll answered.
pub type Snapshot = Option<Result<VerificationView, Denial>>;

/// Poll timing.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// First interval (default 2 s).
    pub interval: Duration,
    /// Interval after backing off (default 5 s).
    pub max_interval: Duration,
    /// How long to poll at the first interval before backing off (default 30 s).
    pub backoff_after: Duration,
    /// Intervals with no watcher before the poller stops (default 3).
    pub idle_ticks: u32,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(5),
            backoff_after: Duration::from_secs(30),
            idle_ticks: 3,
        }
    }
}

struct Entry {
    tx: watch::Sender<Snapshot>,
    task: Option<JoinHandle<()>>,
}

/// The registry of pollers.
pub struct PollRegistry {
    engine: Arc<Engine>,
    coordinator: Arc<dyn Coordinator>,
    /// This replica's name as a lease holder (random per process).
    me: String,
    settings: PollSettings,
    entries: Mutex<HashMap<(VerificationId, PseudoId), Entry>>,
    engine_polls: AtomicU64,
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
    view.status == VerificationStatus::Challenged && matches!(view.factor, Some(FactorKind::Push))
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

impl PollRegistry {
    /// A registry polling through `engine`, sharing leases and hints through `coordinator`.
    #[must_use]
    pub fn new(
        engine: Arc<Engine>,
        coordinator: Arc<dyn Coordinator>,
        settings: PollSettings,
    ) -> Self {
        Self {
            engine,
            coordinator,
            me: crate::session::random_token(),
            settings,
            entries: Mutex::new(HashMap::new()),
            engine_polls: AtomicU64::new(0),
        }
    }

    /// Engine polls made by pollers so far.
    #[must_use]
    pub fn engine_polls(&self) -> u64 {
        self.engine_polls.load(Ordering::Relaxed)
    }

    /// Pollers currently running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.entries.lock().map_or(0, |e| {
            e.values()
                .filter(|x| x.task.as_ref().is_some_and(|t| !t.is_finished()))
                .count()
        })
    }

    /// Watches a verification as `agent`, starting its poller if none runs.
    pub fn watch(self: &Arc<Self>, agent: &Agent, id: VerificationId) -> watch::Receiver<Snapshot> {
        let key = (id, agent.pseudonym().clone());
        let Ok(mut entries) = self.entries.lock() else {
            let (_tx, rx) =
                watch::channel(Some(Err(Denial::new(fctr_ports::Reason::InvalidState))));
            return rx;
        };
        // Forget finished entries nobody watches.
        entries.retain(|_, e| {
            e.tx.receiver_count() > 0 || e.task.as_ref().is_some_and(|t| !t.is_finished())
        });
        let entry = entries.entry(key).or_insert_with(|| Entry {
            tx: watch::channel(None).0,
            task: None,
        });
        let rx = entry.tx.subscribe();
        let running = entry.task.as_ref().is_some_and(|t| !t.is_finished());
        if !running && !settled(&entry.tx.borrow()) {
            entry.task = Some(self.spawn(agent.clone(), id, entry.tx.clone()));
        }
        rx
    }

    /// Publishes a result obtained elsewhere (a code submitted, another factor started), so watchers see it
    /// and a poller starts again if the new state needs one.
    pub fn publish(self: &Arc<Self>, agent: &Agent, id: VerificationId, view: VerificationView) {
        let key = (id, agent.pseudonym().clone());
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let entry = entries.entry(key).or_insert_with(|| Entry {
            tx: watch::channel(None).0,
            task: None,
        });
        let poll = needs_polling(&view);
        entry.tx.send_replace(Some(Ok(view)));
        let running = entry.task.as_ref().is_some_and(|t| !t.is_finished());
        if poll && !running && entry.tx.receiver_count() > 0 {
            entry.task = Some(self.spawn(agent.clone(), id, entry.tx.clone()));
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

    fn spawn(
        self: &Arc<Self>,
        agent: Agent,
        id: VerificationId,
        tx: watch::Sender<Snapshot>,
    ) -> JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move { me.run(agent, id, tx).await })
    }

    async fn run(self: Arc<Self>, agent: Agent, id: VerificationId, tx: watch::Sender<Snapshot>) {
        let ctx = RequestContext::default();
        let started = tokio::time::Instant::now();
        // One name serves as the lease key and the hint topic.
        let key = topic(id, agent.pseudonym());
        // Subscribed before the first look, so no hint sent after it is missed.
        let mut hints: Option<Subscription> = self.coordinator.subscribe(&key).await.ok();
        let mut idle = 0u32;
        let mut leader: bool;
        loop {
            let every = if started.elapsed() < self.settings.backoff_after {
                self.settings.interval
            } else {
                self.settings.max_interval
            };
            // Held for three intervals and renewed every interval: a killed holder's lease runs out soon.
            leader = self
                .coordinator
                .acquire(&key, &self.me, every.saturating_mul(3))
                .await
                .unwrap_or(false);
            let result = if leader {
                self.engine_polls.fetch_add(1, Ordering::Relaxed);
                self.engine.poll_verification(&agent, &ctx, id).await
            } else {
                self.engine.verification_view(&agent, &ctx, id).await
            };
            let snapshot = Some(result);
            let done = settled(&snapshot);
            if done && leader {
                if let Some(Ok(v)) = &snapshot {
                    metrics::counter!("fctr_verifications_total", "outcome" => v.status.as_str())
                        .increment(1);
                }
            }
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
            match (&mut hints, leader) {
                (Some(h), false) => {
                    // A hint, or the interval in case one was lost; a closed bus falls back to the interval.
                    if let Ok(None) = tokio::time::timeout(every, h.next()).await {
                        hints = None;
                    }
                }
                _ => tokio::time::sleep(every).await,
            }
            if hints.is_none() {
                hints = self.coordinator.subscribe(&key).await.ok();
            }
        }
        if leader && self.coordinator.release(&key, &self.me).await.is_err() {
            tracing::debug!("poll lease not released: it runs out on its own");
        }
    }
}

/// The lease key and hint topic of one (verification, owning agent) entry: opaque ids and a pseudonym only.
fn topic(id: VerificationId, agent: &PseudoId) -> String {
    format!("poll:{id}:{}", agent.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fctr_ports::Reason;

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
}
