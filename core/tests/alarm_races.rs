//! The alarms hold when requests arrive at the same moment: deterministic interleavings (a test double parks one
//! request at the dangerous step while another runs), on one engine or two engines sharing their stores (two
//! replicas).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::gate::{GatedIdp, GatedRate};
use common::{RecordingSink, World, ctx, sid, world_wrapped};
use fctr_core::policy::Policy;
use fctr_core::{Agent, Engine, Ports, Pseudonymizer};
use fctr_ports::{Action, AlertRule, KeyId, Reason, SecretString, TenantId, VerificationStatus};
use std::sync::Arc;

fn reset() -> Action {
    Action::ResetPassword { send_email: false }
}

/// A second engine (another replica) over the same stores and IdP, with its own alert sink.
fn replica(ports: Ports, policy: Policy) -> (Arc<Engine>, Arc<RecordingSink>) {
    let pseudo = Pseudonymizer::new(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("test-key-0123456789-0123456789-0123456789".to_owned()),
    )
    .unwrap();
    let sink = Arc::new(RecordingSink::default());
    let e = Engine::new(
        ports,
        Arc::new(policy),
        pseudo,
        TenantId::parse("acme").unwrap(),
    )
    .with_alert_sink(sink.clone());
    (Arc::new(e), sink)
}

/// Two replicas each count a lookup that crosses the threshold, both parked right after counting (both see a
/// count at or over it) before either decides to alert: exactly one alert leaves, from one of them.
#[tokio::test]
async fn two_replicas_crossing_a_velocity_threshold_at_once_raise_one_alert() {
    let policy = || {
        Policy::parse(
            "[alarms.velocity]\nlookups_per_agent = { count = 2, window_seconds = 600 }\n",
        )
        .unwrap()
    };
    let mut slot = None;
    let mut shared = None;
    let w: World = world_wrapped(
        policy(),
        |_| {},
        |ports| {
            let gated = Arc::new(GatedRate::new(ports.rate.clone(), "alarm:count:"));
            ports.rate = gated.clone();
            slot = Some(gated);
            shared = Some(ports.clone());
        },
    );
    let gate = slot.unwrap();
    let (other, other_sink) = replica(shared.unwrap(), policy());
    let a = w.agent("agent1", "fctr-tier1");
    // One lookup below the threshold.
    w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    gate.after_hit.arm(2);
    let spawn = |e: Arc<Engine>, a: Agent| {
        tokio::spawn(async move { e.lookup(&a, &ctx(), &sid("bob")).await.map(|_| ()) })
    };
    let t1 = spawn(w.engine.clone(), a.clone());
    let t2 = spawn(other.clone(), a.clone());
    gate.after_hit.wait_parked(2).await;
    gate.after_hit.release(2);
    t1.await.unwrap().unwrap();
    t2.await.unwrap().unwrap();
    w.engine.deliver_alerts().await;
    other.deliver_alerts().await;
    let mut rules = w.alerts.rules();
    rules.extend(other_sink.rules());
    assert_eq!(
        rules,
        vec![AlertRule::LookupsPerAgent],
        "one alert across both replicas"
    );
}

/// World with a gated IdP whose reads are not reused (every action reads the caller's groups again).
fn gated_world() -> (World, Arc<GatedIdp>) {
    let mut slot = None;
    let w = world_wrapped(
        Policy::default(),
        |_| {},
        |ports| {
            let idp = Arc::new(GatedIdp::new(ports.idp.clone()));
            ports.idp = idp.clone();
            slot = Some(idp);
        },
    );
    (w, slot.unwrap())
}

async fn begin(w: &World, a: &Agent) -> fctr_core::VerificationView {
    w.engine
        .begin_verification(a, &ctx(), &sid("alice"), None)
        .await
        .unwrap()
}

/// An action parked before the block check (reading the caller's groups) while another agent's caller says "not
/// me": when it goes on, it is refused as blocked and nothing runs but the protective clear-sessions.
#[tokio::test]
async fn an_action_that_reaches_the_gate_after_the_block_is_refused() {
    let (w, idp) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    let b = w.agent("agent3", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    let v = begin(&w, &b).await;
    // Past the reuse window of the verification's reads: the action reads the groups again, and parks there.
    w.clock.advance(chrono::Duration::seconds(31));
    idp.groups.arm(1);
    let action = {
        let (e, a) = (w.engine.clone(), a.clone());
        tokio::spawn(async move { e.perform_action(&a, &ctx(), &sid("alice"), reset()).await })
    };
    idp.groups.wait_parked(1).await;
    w.engine.report_not_me(&b, &ctx(), v.id).await.unwrap();
    idp.groups.release(1);
    let d = action.await.unwrap().unwrap_err();
    assert_eq!(d.reason, Reason::CallerBlocked);
    let kinds: Vec<_> = w.idp.executed().into_iter().map(|(_, k)| k).collect();
    assert_eq!(kinds, vec![fctr_ports::ActionKind::ClearSessions]);
}

/// The semantics chosen: an action already past the block check (here inside the IdP call) when the block is
/// recorded was started before it, and completes; the sessions are cleared after it, and every later action is
/// refused.
#[tokio::test]
async fn an_action_already_at_the_idp_when_the_block_lands_completes_and_the_next_is_refused() {
    let (w, idp) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    let b = w.agent("agent3", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    let v = begin(&w, &b).await;
    assert_eq!(v.status, VerificationStatus::Challenged);
    idp.execute.arm(1);
    let action = {
        let (e, a) = (w.engine.clone(), a.clone());
        tokio::spawn(async move { e.perform_action(&a, &ctx(), &sid("alice"), reset()).await })
    };
    idp.execute.wait_parked(1).await;
    // The response's own clear-sessions passes the (now disarmed) gate.
    w.engine.report_not_me(&b, &ctx(), v.id).await.unwrap();
    idp.execute.release(1);
    action.await.unwrap().unwrap();
    let kinds: Vec<_> = w.idp.executed().into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        kinds,
        vec![
            fctr_ports::ActionKind::ClearSessions,
            fctr_ports::ActionKind::ResetPassword
        ]
    );
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::CallerBlocked);
}

/// Two polls of the same denied push (two replicas' pollers) at once: one records the rejection and responds
/// once (one clear-sessions, one alert).
#[tokio::test]
async fn a_denied_push_polled_twice_at_once_responds_once() {
    let (w, idp) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([fctr_ports::ChallengeState::Rejected]);
    let v = begin(&w, &a).await;
    idp.poll.arm(2);
    let spawn = || {
        let (e, a) = (w.engine.clone(), a.clone());
        tokio::spawn(async move { e.poll_verification(&a, &ctx(), v.id).await })
    };
    let (p1, p2) = (spawn(), spawn());
    idp.poll.wait_parked(2).await;
    idp.poll.release(2);
    assert_eq!(
        p1.await.unwrap().unwrap().status,
        VerificationStatus::Rejected
    );
    assert_eq!(
        p2.await.unwrap().unwrap().status,
        VerificationStatus::Rejected
    );
    let cleared = w
        .idp
        .executed()
        .into_iter()
        .filter(|(_, k)| *k == fctr_ports::ActionKind::ClearSessions)
        .count();
    assert_eq!(cleared, 1);
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules(), vec![AlertRule::NotMe]);
}

/// A change log that always answers the same entries (an IdP's log read twice over the same window).
struct FixedFeed(Vec<fctr_ports::IdpChange>);

#[async_trait::async_trait]
impl fctr_ports::ChangeFeed for FixedFeed {
    async fn changes(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<fctr_ports::IdpChange>, fctr_ports::PortError> {
        Ok(self
            .0
            .iter()
            .filter(|c| c.at >= since && c.at < until)
            .cloned()
            .collect())
    }
    fn own_client_id(&self) -> Option<String> {
        Some("0oafctr".into())
    }
}

/// A console reset of Bob's password and a session clear on Carol by fctr's own client id, neither audited.
fn console_changes(w: &World) -> FixedFeed {
    let at = fctr_ports::Clock::now(&w.clock);
    FixedFeed(vec![
        fctr_ports::IdpChange {
            kind: fctr_ports::ActionKind::ResetPassword,
            target: sid("bob"),
            actor: fctr_ports::ChangeActor::Admin {
                id: sid("rogue-admin"),
                display: fctr_ports::Pii::new("rogue.admin@example.com"),
            },
            at,
            event_id: "evt-console-reset".into(),
        },
        fctr_ports::IdpChange {
            kind: fctr_ports::ActionKind::ClearSessions,
            target: sid("carol"),
            actor: fctr_ports::ChangeActor::App {
                client_id: "0oafctr".into(),
            },
            at,
            event_id: "evt-own-credential".into(),
        },
    ])
}

fn window(w: &World) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let now = fctr_ports::Clock::now(&w.clock);
    (
        now - chrono::Duration::minutes(30),
        now + chrono::Duration::seconds(1),
    )
}

const REMEMBER: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Two replicas run the schedule over the same window at the same moment, both parked right after claiming the
/// first finding: each finding is raised (audited and alerted) once across both, and a later overlapping round
/// raises nothing again.
#[tokio::test]
async fn two_replicas_scanning_the_same_window_raise_each_change_once() {
    let mut slot = None;
    let mut shared = None;
    let w: World = world_wrapped(
        Policy::default(),
        |_| {},
        |ports| {
            let gated = Arc::new(GatedRate::new(ports.rate.clone(), "oob:reported:"));
            ports.rate = gated.clone();
            slot = Some(gated);
            shared = Some(ports.clone());
        },
    );
    let gate = slot.unwrap();
    let (other, other_sink) = replica(shared.unwrap(), Policy::default());
    let feed = Arc::new(console_changes(&w));
    let (since, until) = window(&w);
    let tol = fctr_core::out_of_band::DEFAULT_TOLERANCE;
    gate.after_hit.arm(2);
    let spawn = |e: Arc<Engine>| {
        let feed = feed.clone();
        tokio::spawn(async move {
            e.scan_out_of_band(feed.as_ref(), since, until, tol, REMEMBER)
                .await
                .unwrap()
        })
    };
    let t1 = spawn(w.engine.clone());
    let t2 = spawn(other.clone());
    gate.after_hit.wait_parked(2).await;
    gate.after_hit.release(2);
    let (s1, s2) = (t1.await.unwrap(), t2.await.unwrap());
    assert_eq!((s1.findings, s2.findings), (2, 2), "both see both changes");
    assert_eq!(
        s1.raised + s2.raised,
        2,
        "each change raised once: {s1:?} {s2:?}"
    );
    w.engine.deliver_alerts().await;
    other.deliver_alerts().await;
    let mut alerts = w.alerts.got.lock().unwrap().clone();
    alerts.extend(other_sink.got.lock().unwrap().iter().cloned());
    let mut events: Vec<_> = alerts
        .iter()
        .map(|a| a.change.as_ref().unwrap().idp_event.clone())
        .collect();
    events.sort();
    assert_eq!(events, ["evt-console-reset", "evt-own-credential"]);

    // The next round overlaps the first: nothing new.
    gate.after_hit.arm(0);
    let again = w
        .engine
        .scan_out_of_band(feed.as_ref(), since, until, tol, REMEMBER)
        .await
        .unwrap();
    assert_eq!((again.findings, again.raised), (2, 0));
}

/// What a raised change carries: the alert names the action, the finding, the IdP's entry and the admin by
/// pseudonym (never their login or the target's id); the audit event records the same, pseudonymously.
#[tokio::test]
async fn a_raised_change_is_audited_and_alerted_with_pseudonyms_only() {
    let w = world_wrapped(Policy::default(), |_| {}, |_| {});
    let feed = console_changes(&w);
    let (since, until) = window(&w);
    let scan = w
        .engine
        .scan_out_of_band(
            &feed,
            since,
            until,
            fctr_core::out_of_band::DEFAULT_TOLERANCE,
            REMEMBER,
        )
        .await
        .unwrap();
    assert_eq!((scan.findings, scan.raised), (2, 2));
    w.engine.deliver_alerts().await;
    let pseudo = Pseudonymizer::new(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("test-key-0123456789-0123456789-0123456789".to_owned()),
    )
    .unwrap();
    let alerts = w.alerts.got.lock().unwrap().clone();
    let reset = alerts
        .iter()
        .find(|a| a.change.as_ref().unwrap().idp_event == "evt-console-reset")
        .unwrap();
    assert_eq!(reset.rule, AlertRule::OutOfBandChange);
    assert_eq!(reset.severity, fctr_ports::Severity::Warning);
    assert_eq!(reset.caller, Some(pseudo.subject(&sid("bob"))));
    let change = reset.change.as_ref().unwrap();
    assert_eq!(change.action, fctr_ports::ActionKind::ResetPassword);
    assert_eq!(change.finding, "outside_gate");
    assert_eq!(change.admin, Some(pseudo.subject(&sid("rogue-admin"))));
    let own = alerts
        .iter()
        .find(|a| a.change.as_ref().unwrap().idp_event == "evt-own-credential")
        .unwrap();
    assert_eq!(own.severity, fctr_ports::Severity::Critical);
    assert_eq!(own.change.as_ref().unwrap().app.as_deref(), Some("0oafctr"));
    for a in &alerts {
        let body = String::from_utf8(a.payload()).unwrap();
        for raw in ["rogue.admin", "rogue-admin", "\"bob\"", "carol"] {
            assert!(!body.contains(raw), "{raw} in {body}");
        }
    }

    let raised: Vec<_> = w
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == fctr_ports::EventKind::AlertRaised)
        .collect();
    assert_eq!(raised.len(), 2);
    let ev = raised
        .iter()
        .find(|e| e.action == Some(fctr_ports::ActionKind::ResetPassword))
        .unwrap();
    assert_eq!(ev.target, Some(pseudo.subject(&sid("bob"))));
    assert_eq!(ev.agent, Some(pseudo.subject(&sid("rogue-admin"))));
    assert!(matches!(
        &ev.detail,
        Some(fctr_ports::AuditDetail::Alert { rule, alert_id })
            if rule == "out_of_band_change" && *alert_id == reset.id
    ));
}

/// When the shared store cannot say whether a change was reported, it is raised again: a duplicate alert rather
/// than a missed one. A log that cannot be read raises nothing and is an error.
#[tokio::test]
async fn a_store_outage_repeats_an_alert_and_an_unreadable_log_raises_none() {
    let w = world_wrapped(
        Policy::default(),
        |_| {},
        |ports| ports.rate = Arc::new(DownRate),
    );
    let feed = console_changes(&w);
    let (since, until) = window(&w);
    let tol = fctr_core::out_of_band::DEFAULT_TOLERANCE;
    for _ in 0..2 {
        let s = w
            .engine
            .scan_out_of_band(&feed, since, until, tol, REMEMBER)
            .await
            .unwrap();
        assert_eq!(s.raised, 2);
    }
    struct Broken;
    #[async_trait::async_trait]
    impl fctr_ports::ChangeFeed for Broken {
        async fn changes(
            &self,
            _: chrono::DateTime<chrono::Utc>,
            _: chrono::DateTime<chrono::Utc>,
        ) -> Result<Vec<fctr_ports::IdpChange>, fctr_ports::PortError> {
            Err(fctr_ports::PortError::Unavailable)
        }
        fn own_client_id(&self) -> Option<String> {
            None
        }
    }
    let before = w.events().await.len();
    let e = w
        .engine
        .scan_out_of_band(&Broken, since, until, tol, REMEMBER)
        .await
        .unwrap_err();
    assert!(matches!(e, fctr_core::ChangeReportError::Feed(_)), "{e}");
    assert_eq!(w.events().await.len(), before, "nothing audited");
}

/// A rate store that is down.
struct DownRate;

#[async_trait::async_trait]
impl fctr_ports::RateLimiter for DownRate {
    async fn hit(
        &self,
        _: &fctr_ports::RateKey,
        _: fctr_ports::RateRule,
    ) -> Result<fctr_ports::RateDecision, fctr_ports::PortError> {
        Err(fctr_ports::PortError::Unavailable)
    }
    async fn peek(
        &self,
        _: &fctr_ports::RateKey,
        _: fctr_ports::RateRule,
    ) -> Result<fctr_ports::RateDecision, fctr_ports::PortError> {
        Err(fctr_ports::PortError::Unavailable)
    }
    async fn undo(
        &self,
        _: &fctr_ports::RateKey,
        _: fctr_ports::RateRule,
    ) -> Result<(), fctr_ports::PortError> {
        Err(fctr_ports::PortError::Unavailable)
    }
    async fn reset(&self, _: &fctr_ports::RateKey) -> Result<(), fctr_ports::PortError> {
        Err(fctr_ports::PortError::Unavailable)
    }
}

/// A change whose audit event cannot be written is alerted but not remembered as raised: the next scan, with the
/// audit log back, records it (and only then is it raised for good).
#[tokio::test]
async fn a_change_the_audit_could_not_record_is_raised_again_by_the_next_scan() {
    let w = world_wrapped(Policy::default(), |_| {}, |_| {});
    let feed = console_changes(&w);
    let (since, until) = window(&w);
    let tol = fctr_core::out_of_band::DEFAULT_TOLERANCE;
    w.audit.fail_appends(true);
    let first = w
        .engine
        .scan_out_of_band(&feed, since, until, tol, REMEMBER)
        .await
        .unwrap();
    assert_eq!(first.raised, 2);
    assert_eq!(w.engine.unrecorded_events(), 2);
    w.audit.fail_appends(false);
    let second = w
        .engine
        .scan_out_of_band(&feed, since, until, tol, REMEMBER)
        .await
        .unwrap();
    assert_eq!(second.raised, 2, "recorded this time");
    let third = w
        .engine
        .scan_out_of_band(&feed, since, until, tol, REMEMBER)
        .await
        .unwrap();
    assert_eq!(third.raised, 0, "and then remembered");
    let raised = w
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == fctr_ports::EventKind::AlertRaised)
        .count();
    assert_eq!(raised, 2);
}

/// The window's start: an fctr reset just before `since` is matched with its own entry there (read from a
/// tolerance before), so it cannot account for another reset of the same person just inside the window, which is
/// reported.
#[tokio::test]
async fn an_action_just_before_the_window_does_not_hide_a_change_just_inside_it() {
    let w = world_wrapped(Policy::default(), |_| {}, |_| {});
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap();
    let fctr_at = fctr_ports::Clock::now(&w.clock);
    let feed = FixedFeed(vec![
        fctr_ports::IdpChange {
            kind: fctr_ports::ActionKind::ResetPassword,
            target: sid("alice"),
            actor: fctr_ports::ChangeActor::App {
                client_id: "0oafctr".into(),
            },
            at: fctr_at,
            event_id: "evt-fctr".into(),
        },
        fctr_ports::IdpChange {
            kind: fctr_ports::ActionKind::ResetPassword,
            target: sid("alice"),
            // An actor the log does not name, so fctr's record could account for it.
            actor: fctr_ports::ChangeActor::Unknown,
            at: fctr_at + chrono::Duration::seconds(20),
            event_id: "evt-console".into(),
        },
    ]);
    let since = fctr_at + chrono::Duration::seconds(10);
    let found = w
        .engine
        .out_of_band_changes(
            &feed,
            since,
            since + chrono::Duration::minutes(10),
            fctr_core::out_of_band::DEFAULT_TOLERANCE,
        )
        .await
        .unwrap();
    let ids: Vec<_> = found.iter().map(|f| f.event_id.as_str()).collect();
    assert_eq!(ids, ["evt-console"]);
}

/// A sink whose receiver answers slowly: it records the order deliveries start in and the most in flight at once.
#[derive(Default)]
struct SlowSink {
    started: std::sync::Mutex<Vec<AlertRule>>,
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl fctr_ports::AlertSink for SlowSink {
    async fn deliver(&self, alert: &fctr_ports::Alert) -> Result<(), fctr_ports::PortError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.started.lock().unwrap().push(alert.rule);
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        Err(fctr_ports::PortError::Unavailable)
    }
}

/// A receiver that is down holds each alert for the sink's whole retry budget: twenty warnings queued before a
/// critical "not me" alert do not delay it (critical first), and several are in flight at once (bounded).
#[tokio::test]
async fn a_critical_alert_is_not_held_behind_warnings_when_the_receiver_is_slow() {
    let sink = Arc::new(SlowSink::default());
    let mut shared = None;
    let w = world_wrapped(Policy::default(), |_| {}, |p| shared = Some(p.clone()));
    let engine = Engine::new(
        shared.unwrap(),
        Arc::new(Policy::default()),
        Pseudonymizer::new(
            KeyId::parse("k1").unwrap(),
            &SecretString::from("test-key-0123456789-0123456789-0123456789".to_owned()),
        )
        .unwrap(),
        TenantId::parse("acme").unwrap(),
    )
    .with_alert_sink(sink.clone());
    let at = fctr_ports::Clock::now(&w.clock);
    for _ in 0..20 {
        engine
            .raise_alert(fctr_ports::Alert::new(
                AlertRule::LookupsPerAgent,
                fctr_ports::Severity::Warning,
                at,
            ))
            .await;
    }
    engine
        .raise_alert(fctr_ports::Alert::new(
            AlertRule::NotMe,
            fctr_ports::Severity::Critical,
            at,
        ))
        .await;
    let done = engine.deliver_alerts().await;
    assert_eq!(done.failed, 21, "each failure audited");
    assert_eq!(sink.started.lock().unwrap()[0], AlertRule::NotMe);
    let most = sink.most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=8).contains(&most), "in flight at once: {most}");
}
