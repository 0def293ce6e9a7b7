//! "Not me" and velocity alarms: the response when a caller says a request was not theirs, the block it leaves,
//! the velocity counters, and raising alerts.
//!
//! All the shared state lives in the [`fctr_ports::RateLimiter`] (memory on one node, Redis across replicas): its
//! `hit` is one atomic step in every adapter, which is exactly what each piece needs, under keys built from
//! pseudonyms only:
//!
//! | key | rule | meaning |
//! |---|---|---|
//! | `alarm:block:<caller>` | 1 per `block_actions_seconds` | one hit = the caller is blocked until it leaves the window |
//! | `alarm:count:<rule>:<subject>` | counter over the rule's window | velocity events |
//! | `alarm:seen:<agent>:<caller>` | 1 per window | this agent already counted towards `distinct_agents_per_caller` |
//! | `alarm:fired:<rule>:<subject>` | 1 per window | the alert already fired this window (dedupe across replicas) |
//!
//! Alerts are audited when raised and queued in memory; [`Engine::deliver_alerts`] (driven by the shell) hands
//! them to the [`AlertSink`], whose adapter retries, and audits a delivery that finally fails.

use super::call::Call;
use super::{Agent, Engine, RequestContext, bad_key};
use crate::denial::Denial;
use crate::policy::{Permission, VelocityRule};
use fctr_ports::{
    Action, ActionKind, Alert, AlertRule, AlertSink, AuditDetail, EventKind, Outcome, PseudoId,
    RateDecision, RateKey, RateRule, Reason, Severity, SubjectId, VerificationId,
};
use std::sync::Arc;
use std::time::Duration;

/// Alerts held for delivery at most; beyond it the oldest is dropped (and counted).
const QUEUE_LIMIT: usize = 1000;

/// How many alerts are handed to the sink at once ([`Engine::deliver_alerts`]).
const DELIVERY_CONCURRENCY: usize = 8;

/// A limit the velocity counters never reach (they count; the threshold is compared by the engine).
const COUNTER_LIMIT: u32 = 1_000_000;

/// What one [`Engine::deliver_alerts`] round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertDelivery {
    /// Alerts the sink accepted.
    pub delivered: usize,
    /// Alerts whose delivery finally failed (audited as `alert_raised` / `failed`).
    pub failed: usize,
    /// Each alert handed to the sink, by rule, and whether it was delivered (for metrics).
    pub outcomes: Vec<(AlertRule, bool)>,
}

/// Alerts waiting for delivery (memory only; they carry pseudonyms only).
#[derive(Default)]
pub(crate) struct AlertQueue {
    sink: Option<Arc<dyn AlertSink>>,
    queue: std::sync::Mutex<std::collections::VecDeque<(Alert, Option<RequestContext>)>>,
    dropped: std::sync::atomic::AtomicU64,
}

impl AlertQueue {
    pub(crate) fn push(&self, alert: Alert, ctx: Option<RequestContext>) {
        if self.sink.is_none() {
            return;
        }
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() >= QUEUE_LIMIT {
            q.pop_front();
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        q.push_back((alert, ctx));
    }

    fn take(&self) -> Vec<(Alert, Option<RequestContext>)> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}

fn secs(n: u32) -> Duration {
    Duration::from_secs(u64::from(n))
}

/// The block's rule: one hit marks the caller blocked for the window.
fn block_rule(seconds: u32) -> RateRule {
    RateRule {
        limit: 1,
        window: secs(seconds),
    }
}

fn key(s: String) -> Result<RateKey, Denial> {
    RateKey::parse(s).map_err(bad_key)
}

impl Engine {
    /// The same engine, delivering its alerts to `sink` (see [`Engine::deliver_alerts`]). Without a sink alerts
    /// are still audited (and so reach the SIEM export), just not pushed anywhere.
    #[must_use]
    pub fn with_alert_sink(mut self, sink: Arc<dyn AlertSink>) -> Self {
        self.alerts = AlertQueue {
            sink: Some(sink),
            ..AlertQueue::default()
        };
        self
    }

    /// Alerts dropped because the delivery queue was full (a metric; non-zero means the sink is far behind).
    #[must_use]
    pub fn alerts_dropped(&self) -> u64 {
        self.alerts
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Raises an alert from outside the engine (e.g. a detector of changes made at the IdP outside fctr): audited
    /// as `alert_raised` and queued for the sink. Best effort: an audit failure is counted in
    /// [`Engine::unrecorded_events`] and the alert is still queued.
    pub async fn raise_alert(&self, alert: Alert) {
        let mut b = self
            .system_event(EventKind::AlertRaised, Outcome::Success, None)
            .detail(AuditDetail::Alert {
                rule: alert.rule.as_str().to_owned(),
                alert_id: alert.id,
            });
        if let Some(a) = &alert.agent {
            b = b.agent(a);
        }
        if let Some(t) = &alert.caller {
            b = b.target(t);
        }
        self.record(b).await;
        self.alerts.push(alert, None);
    }

    /// Hands every queued alert to the sink once (the sink retries by itself) and audits each that finally fails.
    /// Critical alerts go first, and up to 8 are in flight at once, so a receiver that is
    /// down (each alert then spends the sink's whole retry budget) does not hold a "not me" alert behind a queue
    /// of warnings. The shell calls this in a loop; with no sink it does nothing.
    pub async fn deliver_alerts(&self) -> AlertDelivery {
        use futures::StreamExt as _;
        let mut done = AlertDelivery::default();
        let Some(sink) = self.alerts.sink.clone() else {
            return done;
        };
        let mut batch = self.alerts.take();
        // Stable: within a severity, the order they were raised in.
        batch.sort_by_key(|(a, _)| std::cmp::Reverse(a.severity));
        let mut results = futures::stream::iter(batch)
            .map(|(alert, ctx)| {
                let sink = Arc::clone(&sink);
                async move {
                    let ok = sink.deliver(&alert).await.is_ok();
                    (alert, ctx, ok)
                }
            })
            .buffer_unordered(DELIVERY_CONCURRENCY);
        while let Some((alert, ctx, ok)) = results.next().await {
            if ok {
                done.delivered += 1;
                done.outcomes.push((alert.rule, true));
                continue;
            }
            done.failed += 1;
            done.outcomes.push((alert.rule, false));
            let mut b = self
                .system_event(EventKind::AlertRaised, Outcome::Failed, ctx.as_ref())
                .detail(AuditDetail::Alert {
                    rule: alert.rule.as_str().to_owned(),
                    alert_id: alert.id,
                });
            if let Some(a) = &alert.agent {
                b = b.agent(a);
            }
            if let Some(t) = &alert.caller {
                b = b.target(t);
            }
            self.record(b).await;
        }
        done
    }

    /// Raises an alert in a call: audited with the call's agent and caller, then queued.
    pub(crate) async fn raise(&self, c: &Call<'_>, alert: Alert) {
        let b = self
            .event(c, EventKind::AlertRaised, Outcome::Success)
            .detail(AuditDetail::Alert {
                rule: alert.rule.as_str().to_owned(),
                alert_id: alert.id,
            });
        self.record(b).await;
        self.alerts.push(alert, Some(c.ctx().clone()));
    }

    /// Refuses (audited, `caller_blocked`) while the "not me" response blocks `target`; the store being down
    /// refuses too (fail closed).
    pub(crate) async fn refuse_blocked(
        &self,
        c: &Call<'_>,
        target: &PseudoId,
    ) -> Result<(), Denial> {
        let seconds = self.policy.alarms().not_me.block_actions_seconds;
        if seconds == 0 {
            return Ok(());
        }
        let k = key(format!("alarm:block:{}", target.as_str()))?;
        match self.ports.rate.peek(&k, block_rule(seconds)).await {
            Ok(RateDecision::Allowed { .. }) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => Err(self
                .deny_with(
                    c,
                    Denial::after(
                        Reason::CallerBlocked,
                        chrono::Duration::from_std(retry_after).unwrap_or(chrono::Duration::MAX),
                    ),
                    None,
                )
                .await),
            Err(_) => Err(self.deny(c, Reason::StateUnavailable).await),
        }
    }

    /// The agent records that the caller said "that was not me" about their verification `id`: audited, then
    /// policy's response runs (clear sessions, alert, block), whatever state the verification is in.
    ///
    /// # Errors
    /// [`Reason::VerificationNotFound`] (unknown, or another agent's), the role denials of verifying,
    /// [`Reason::AuditUnavailable`] (nothing else happens without the event).
    pub async fn report_not_me(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        id: VerificationId,
    ) -> Result<(), Denial> {
        let (rec, c) = self.load_own(agent, ctx, id).await?;
        self.authorize(&c, Permission::Verify).await?;
        self.must_append(
            &c,
            self.event(&c, EventKind::NotMe, Outcome::Rejected)
                .reason(Reason::CallerBlocked),
        )
        .await?;
        self.not_me_response(&c, &rec.subject, &rec.subject_pseudo)
            .await;
        Ok(())
    }

    /// A push the caller denied: when policy says so, the same response as a reported "not me".
    pub(crate) async fn push_denied(&self, c: &Call<'_>, subject: &SubjectId, target: &PseudoId) {
        if !self.policy.alarms().not_me.on_push_denied {
            return;
        }
        self.record(
            self.event(c, EventKind::NotMe, Outcome::Rejected)
                .reason(Reason::ChallengeRejected),
        )
        .await;
        self.not_me_response(c, subject, target).await;
    }

    /// Policy's response to "not me": block first (so a request racing this one is refused as early as possible),
    /// then clear the caller's sessions (a protective action: no grant needed, audited as fctr's own action naming
    /// the agent whose call triggered it), then the alert. Each step is best effort and audited; none undoes
    /// another.
    pub(crate) async fn not_me_response(
        &self,
        c: &Call<'_>,
        subject: &SubjectId,
        target: &PseudoId,
    ) {
        let rule = self.policy.alarms().not_me;
        if rule.block_actions_seconds > 0 {
            let blocked = match key(format!("alarm:block:{}", target.as_str())) {
                Ok(k) => self
                    .ports
                    .rate
                    .hit(&k, block_rule(rule.block_actions_seconds))
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            self.record(
                self.event(
                    c,
                    EventKind::AlarmResponse,
                    if blocked {
                        Outcome::Success
                    } else {
                        Outcome::Failed
                    },
                )
                .reason(Reason::CallerBlocked),
            )
            .await;
        }
        if rule.clear_sessions
            && self
                .ports
                .idp
                .capabilities()
                .actions
                .contains(&ActionKind::ClearSessions)
        {
            let cc = Call::new(c.agent(), c.ctx())
                .about(target.clone())
                .action(ActionKind::ClearSessions);
            let action = Action::ClearSessions {
                revoke_oauth_tokens: true,
            };
            // The intent is recorded before the call, as for every action; this one runs even if the log
            // refuses it (it only ever protects the caller).
            self.record(self.event(&cc, EventKind::AlarmResponse, Outcome::Pending))
                .await;
            let done = self.ports.idp.execute(subject, &action).await;
            self.reads.forget(subject, self.now());
            let b = match done {
                Ok(_) => self.event(&cc, EventKind::AlarmResponse, Outcome::Success),
                Err(e) => self
                    .event(&cc, EventKind::AlarmResponse, Outcome::Failed)
                    .reason(Reason::IdpError)
                    .detail(super::call::upstream_detail(&e)),
            };
            self.record(b).await;
        }
        if rule.alert {
            let alert = Alert::new(AlertRule::NotMe, Severity::Critical, self.now())
                .caller(target.clone())
                .agent(c.agent().pseudo.clone());
            self.raise(c, alert).await;
        }
    }

    /// Counts one velocity event for `subject` under `rule`, and raises the rule's alert the first time the count
    /// reaches the threshold in a window. The first-time check is one atomic step in the shared store
    /// (`alarm:fired:…`, one hit per window), so two replicas crossing the threshold at the same moment raise
    /// one alert. Best effort: a store error raises nothing.
    async fn velocity(
        &self,
        c: &Call<'_>,
        rule: AlertRule,
        limit: Option<VelocityRule>,
        subject: &PseudoId,
        about_caller: bool,
    ) {
        let Some(limit) = limit else { return };
        let window = secs(limit.window_seconds);
        let Ok(count_key) = key(format!(
            "alarm:count:{}:{}",
            rule.as_str(),
            subject.as_str()
        )) else {
            return;
        };
        let counter = RateRule {
            limit: COUNTER_LIMIT,
            window,
        };
        let count = match self.ports.rate.hit(&count_key, counter).await {
            Ok(RateDecision::Allowed { remaining }) => COUNTER_LIMIT.saturating_sub(remaining),
            _ => return,
        };
        if count < limit.count {
            return;
        }
        let Ok(fired) = key(format!(
            "alarm:fired:{}:{}",
            rule.as_str(),
            subject.as_str()
        )) else {
            return;
        };
        let once = RateRule { limit: 1, window };
        if !matches!(
            self.ports.rate.hit(&fired, once).await,
            Ok(RateDecision::Allowed { .. })
        ) {
            return;
        }
        let mut alert = Alert::new(rule, Severity::Warning, self.now())
            .agent(c.agent().pseudo.clone())
            .counted(count, u64::from(limit.window_seconds));
        if about_caller {
            alert = alert.caller(subject.clone());
        }
        self.raise(c, alert).await;
    }

    /// A lookup by the call's agent (velocity `lookups_per_agent`).
    pub(crate) async fn count_lookup(&self, c: &Call<'_>) {
        let v = self.policy.alarms().velocity;
        let agent = c.agent().pseudo.clone();
        self.velocity(
            c,
            AlertRule::LookupsPerAgent,
            v.lookups_per_agent,
            &agent,
            false,
        )
        .await;
    }

    /// A failed verification step (a denied push, a wrong or replayed code) by the call's agent on `target`.
    pub(crate) async fn count_failure(&self, c: &Call<'_>, target: &PseudoId) {
        let v = self.policy.alarms().velocity;
        let agent = c.agent().pseudo.clone();
        self.velocity(
            c,
            AlertRule::FailuresPerCaller,
            v.failures_per_caller,
            target,
            true,
        )
        .await;
        self.velocity(
            c,
            AlertRule::FailuresPerAgent,
            v.failures_per_agent,
            &agent,
            false,
        )
        .await;
        self.count_agent_on_caller(c, target).await;
    }

    /// A verification of `target` by the call's agent ended (verified or refused): counts towards
    /// `distinct_agents_per_caller` once per agent per window.
    pub(crate) async fn count_agent_on_caller(&self, c: &Call<'_>, target: &PseudoId) {
        let Some(limit) = self.policy.alarms().velocity.distinct_agents_per_caller else {
            return;
        };
        let Ok(seen) = key(format!(
            "alarm:seen:{}:{}",
            c.agent().pseudo.as_str(),
            target.as_str()
        )) else {
            return;
        };
        let once = RateRule {
            limit: 1,
            window: secs(limit.window_seconds),
        };
        if matches!(
            self.ports.rate.hit(&seen, once).await,
            Ok(RateDecision::Allowed { .. })
        ) {
            self.velocity(
                c,
                AlertRule::DistinctAgentsPerCaller,
                Some(limit),
                target,
                true,
            )
            .await;
        }
    }
}
