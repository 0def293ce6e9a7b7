//! Ticket write-back delivery: a work note for a ticket is handed to [`TicketDesk::submit`], which returns at
//! once; a background task posts it through the [`TicketSink`] with bounded retries and backoff, and audits every
//! attempt ([`Engine::record_ticket_note`]). A failed write-back never blocks or undoes the action.
//!
//! Everything is in memory: the ticket reference and the note live only in the task. A note still waiting when
//! the process stops is lost; the audit log then shows its last attempt as `pending` and no `success`.

use fctr_core::{Agent, Engine, NoteDelivery, RequestContext};
use fctr_ports::{
    ActionKind, PortError, TicketRef, TicketSink, TicketSystem, WorkNote, WrongTicketShape,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How a note is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteRetry {
    /// Attempts in all, the first included (default 5).
    pub attempts: u32,
    /// The wait after the first failure (default 15 s); each later wait is three times the one before
    /// (15 s, 45 s, 135 s, 405 s: the fifth attempt about ten minutes after the first).
    pub first_wait: Duration,
    /// The longest wait, also for a `Retry-After` (default 10 minutes).
    pub max_wait: Duration,
    /// Notes waiting or in flight at most; more are refused and audited as given up (default 1000).
    pub max_queued: usize,
}

impl Default for NoteRetry {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_wait: Duration::from_secs(15),
            max_wait: Duration::from_secs(600),
            max_queued: 1000,
        }
    }
}

/// What happened to notes since start, for metrics.
#[derive(Debug, Default)]
pub struct NoteCounts {
    /// Posted.
    pub delivered: AtomicU64,
    /// Attempts that failed and were retried.
    pub retried: AtomicU64,
    /// Notes given up after the last attempt or a final refusal.
    pub failed: AtomicU64,
    /// Notes refused because too many were waiting.
    pub dropped: AtomicU64,
}

/// The status of a note just submitted, for the agent's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteStatus {
    /// Queued: it is being posted (and retried if need be).
    Queued,
    /// Too many notes are waiting: this one is not sent (audited).
    Dropped,
}

/// The write-back service: one ticket system, its sink, the engine that audits, the retry rule.
pub struct TicketDesk {
    sink: Arc<dyn TicketSink>,
    engine: Arc<Engine>,
    retry: NoteRetry,
    queued: Arc<AtomicUsize>,
    counts: Arc<NoteCounts>,
}

impl std::fmt::Debug for TicketDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketDesk")
            .field("system", &self.sink.system())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Whether another attempt can help: rate limits, timeouts, an unreachable system, 5xx. A refusal (401, 403,
/// 404, another 4xx, a reference of the wrong shape) will not change by itself.
fn retryable(e: &PortError) -> bool {
    match e {
        PortError::RateLimited { .. } | PortError::Timeout | PortError::Unavailable => true,
        PortError::Upstream { status, .. } => *status >= 500,
        _ => false,
    }
}

impl TicketDesk {
    /// A desk posting through `sink`, auditing through `engine`.
    #[must_use]
    pub fn new(sink: Arc<dyn TicketSink>, engine: Arc<Engine>, retry: NoteRetry) -> Self {
        Self {
            sink,
            engine,
            retry,
            queued: Arc::new(AtomicUsize::new(0)),
            counts: Arc::new(NoteCounts::default()),
        }
    }

    /// The ticket system.
    #[must_use]
    pub fn system(&self) -> TicketSystem {
        self.sink.system()
    }

    /// Checks a reference against the system before anything is done with it.
    ///
    /// # Errors
    /// [`WrongTicketShape`] when the system cannot name it.
    pub fn check(&self, t: &TicketRef) -> Result<(), WrongTicketShape> {
        self.system().accept(t).map(drop)
    }

    /// The counts since start.
    #[must_use]
    pub fn counts(&self) -> &NoteCounts {
        &self.counts
    }

    /// Notes waiting or in flight now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Hands a note for the ticket `ctx` names to the background task and returns at once. Nothing when `ctx`
    /// names no ticket. Must be called inside a Tokio runtime.
    pub fn submit(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        action: Option<ActionKind>,
        note: WorkNote,
    ) -> Option<NoteStatus> {
        let ticket = ctx.ticket.clone()?;
        let system = self.system();
        let engine = Arc::clone(&self.engine);
        let (agent, ctx) = (agent.clone(), ctx.clone());
        let taken = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.retry.max_queued).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let e = PortError::Unavailable;
                engine
                    .record_ticket_note(&agent, &ctx, action, system, NoteDelivery::GaveUp(&e))
                    .await;
            });
            return Some(NoteStatus::Dropped);
        }
        let sink = Arc::clone(&self.sink);
        let retry = self.retry;
        let queued = Arc::clone(&self.queued);
        let counts = Arc::clone(&self.counts);
        tokio::spawn(async move {
            let mut wait = retry.first_wait;
            for attempt in 1..=retry.attempts.max(1) {
                match sink.post_note(&ticket, &note).await {
                    Ok(()) => {
                        counts.delivered.fetch_add(1, Ordering::Relaxed);
                        engine
                            .record_ticket_note(
                                &agent,
                                &ctx,
                                action,
                                system,
                                NoteDelivery::Delivered,
                            )
                            .await;
                        break;
                    }
                    Err(e) if retryable(&e) && attempt < retry.attempts => {
                        counts.retried.fetch_add(1, Ordering::Relaxed);
                        engine
                            .record_ticket_note(
                                &agent,
                                &ctx,
                                action,
                                system,
                                NoteDelivery::WillRetry(&e),
                            )
                            .await;
                        let asked = match e {
                            PortError::RateLimited {
                                retry_after: Some(d),
                            } => d,
                            _ => Duration::ZERO,
                        };
                        tokio::time::sleep(wait.max(asked).min(retry.max_wait)).await;
                        wait = wait.saturating_mul(3).min(retry.max_wait);
                    }
                    Err(e) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        engine
                            .record_ticket_note(
                                &agent,
                                &ctx,
                                action,
                                system,
                                NoteDelivery::GaveUp(&e),
                            )
                            .await;
                        break;
                    }
                }
            }
            queued.fetch_sub(1, Ordering::SeqCst);
        });
        Some(NoteStatus::Queued)
    }
}
