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
