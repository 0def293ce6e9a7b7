//! "Not me" and velocity alarms: the response (sessions cleared, alert, block), the block at the gate, velocity
//! alerts once per window.

use super::*;
use common::World;
use fctr_ports::{AlertRule, AuditDetail, Severity};

fn tier2(w: &World) -> fctr_core::Agent {
    w.agent("agent2", "fctr-tier2")
}

/// Begins a push verification of `subject` and polls it once with the caller denying the push.
async fn denied_push(w: &World, a: &fctr_core::Agent, subject: &str) {
    w.idp.script_push([ChallengeState::Rejected]);
    let v = w
        .engine
        .begin_verification(a, &ctx(), &sid(subject), None)
        .await
        .unwrap();
    let v = w.engine.poll_verification(a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Rejected);
    // Later pushes are approved on the second poll again.
    w.idp
        .script_push([ChallengeState::Waiting, ChallengeState::Approved]);
}

fn cleared(w: &World, subject: &str) -> usize {
    w.idp
        .executed()
        .iter()
        .filter(|(s, k)| s == &sid(subject) && *k == ActionKind::ClearSessions)
        .count()
}

#[tokio::test]
async fn a_denied_push_clears_sessions_alerts_and_blocks_the_caller() {
    let w = world();
    let a = tier2(&w);
    denied_push(&w, &a, "alice").await;
    assert_eq!(cleared(&w, "alice"), 1, "sessions cleared without a grant");

    let events = w.events().await;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::NotMe));
    let response: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::AlarmResponse)
        .collect();
    assert!(
        response
            .iter()
            .any(|e| e.action == Some(ActionKind::ClearSessions)
                && e.outcome == Outcome::Success
                && e.agent == Some(a.pseudonym().clone()))
    );
    assert!(
        response
            .iter()
            .any(|e| e.reason == Some(Reason::CallerBlocked))
    );
    let raised = events
        .iter()
        .find(|e| e.kind == EventKind::AlertRaised)
        .expect("alert audited");

    let done = w.engine.deliver_alerts().await;
    assert_eq!((done.delivered, done.failed), (1, 0));
    let got = w.alerts.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rule, AlertRule::NotMe);
    assert_eq!(got[0].severity, Severity::Critical);
    assert_eq!(got[0].agent.as_ref(), Some(a.pseudonym()));
    assert_eq!(
        raised.detail,
        Some(AuditDetail::Alert {
            rule: "not_me".into(),
            alert_id: got[0].id
        }),
        "the audit event and the webhook share the alert id"
    );

    // Blocked: a new verification and an action are refused, with the wait.
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::CallerBlocked);
    assert_eq!(d.retry_after, Some(Duration::seconds(1800)));
    w.assert_audited(Reason::CallerBlocked).await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::CallerBlocked);
    // Another caller is not blocked.
    w.verify_push(&a, "bob").await;

    // Until the block ends.
    w.clock.advance(Duration::seconds(1801));
    w.verify_push(&a, "alice").await;
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_agent_can_record_that_was_not_me() {
    let w = world();
    let a = tier2(&w);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    w.engine.report_not_me(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(cleared(&w, "alice"), 1);
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules(), vec![AlertRule::NotMe]);
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::CallerBlocked);
    // Another agent cannot report on this agent's verification.
    let other = w.agent("agent3", "fctr-tier2");
    let d = w
        .engine
        .report_not_me(&other, &ctx(), v.id)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::VerificationNotFound);
}

#[tokio::test]
async fn policy_can_turn_each_part_of_the_response_off() {
    let p = Policy::parse(
        "[alarms.not_me]\non_push_denied = true\nclear_sessions = false\nalert = false\nblock_actions_seconds = 0\n",
    )
    .unwrap();
    let w = world_with(p);
    let a = tier2(&w);
    denied_push(&w, &a, "alice").await;
    assert_eq!(cleared(&w, "alice"), 0);
    w.engine.deliver_alerts().await;
    assert!(!w.alerts.rules().contains(&AlertRule::NotMe));
    w.verify_push(&a, "alice").await;

    let p = Policy::parse("[alarms.not_me]\non_push_denied = false\n").unwrap();
    let w = world_with(p);
    let a = tier2(&w);
    denied_push(&w, &a, "alice").await;
    assert_eq!(cleared(&w, "alice"), 0);
    assert!(!w.events().await.iter().any(|e| e.kind == EventKind::NotMe));
    w.verify_push(&a, "alice").await;
}

#[tokio::test]
async fn many_lookups_by_one_agent_raise_one_alert_per_window() {
    let p = Policy::parse(
        "[alarms.velocity]\nlookups_per_agent = { count = 5, window_seconds = 600 }\n",
    )
    .unwrap();
    let w = world_with(p);
    let a = w.agent("agent1", "fctr-tier1");
    for _ in 0..12 {
        w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    }
    w.engine.deliver_alerts().await;
    let got = w.alerts.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rule, AlertRule::LookupsPerAgent);
    assert_eq!(got[0].count, Some(5));
    assert_eq!(got[0].window_seconds, Some(600));
    assert_eq!(got[0].caller, None);
    // The next window fires again.
    w.clock.advance(Duration::seconds(601));
    for _ in 0..5 {
        w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    }
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules().len(), 2);
}

#[tokio::test]
async fn several_agents_on_one_caller_raise_an_alert() {
    let w = world();
    let first = w.agent("agent1", "fctr-tier2");
    w.verify_push(&first, "bob").await;
    // The same agent again does not count twice.
    w.verify_push(&first, "bob").await;
    w.engine.deliver_alerts().await;
    assert!(w.alerts.rules().is_empty());
    for name in ["agent2", "agent3"] {
        w.verify_push(&w.agent(name, "fctr-tier2"), "bob").await;
    }
    w.engine.deliver_alerts().await;
    let got = w.alerts.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].rule, AlertRule::DistinctAgentsPerCaller);
    assert_eq!(got[0].count, Some(3));
    assert!(got[0].caller.is_some());
}

#[tokio::test]
async fn repeated_wrong_codes_raise_a_failures_alert() {
    let w = world();
    let a = tier2(&w);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = w
            .engine
            .submit_code(&a, &ctx(), v.id, SecretString::from("000000".to_owned()))
            .await;
    }
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules(), vec![AlertRule::FailuresPerCaller]);
}

#[tokio::test]
async fn a_failed_delivery_is_audited() {
    let w = world();
    let a = tier2(&w);
    w.alerts
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    w.engine.report_not_me(&a, &ctx(), v.id).await.unwrap();
    let done = w.engine.deliver_alerts().await;
    assert_eq!((done.delivered, done.failed), (0, 1));
    let failed: Vec<_> = w
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::AlertRaised && e.outcome == Outcome::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(matches!(&failed[0].detail, Some(AuditDetail::Alert { rule, .. }) if rule == "not_me"));
    // Nothing is left queued after the round.
    assert_eq!(
        w.engine.deliver_alerts().await,
        fctr_core::AlertDelivery::default()
    );
}
