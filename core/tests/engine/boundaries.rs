//! Engine: the edges of the use cases: self-actions, explain, usage that cannot be written.

use super::*;

#[tokio::test]
async fn an_agent_cannot_verify_or_act_on_their_own_account() {
    let w = world();
    // The agent's IdP id is the caller's.
    let a = w.agent("alice", "fctr-tier3");
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SelfAction);
    w.assert_audited(Reason::SelfAction).await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SelfAction);
    assert!(w.idp.executed().is_empty());
    // Someone else's account is fine.
    w.verify_push(&a, "bob").await;
}

#[tokio::test]
async fn policy_can_allow_self_actions_explicitly() {
    let w = world_with(
        Policy::parse("version = 1\n[verification]\nallow_agent_self_actions = true\n").unwrap(),
    );
    let a = w.agent("alice", "fctr-tier3");
    w.verify_push(&a, "alice").await;
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap();
}

/// `explain` about a real caller says whether they are privileged or protected: it is authorized, counted
/// against the lookup quota and audited, like a lookup.
#[tokio::test]
async fn explain_about_a_caller_is_authorized_rate_limited_and_audited() {
    let w = world_with(
        Policy::parse("version = 1\n[limits]\nlookups_per_agent_per_hour = 2\n").unwrap(),
    );
    let nobody = w.agent("nobody", "Staff");
    let d = w
        .engine
        .explain(&nobody, &ctx(), Some(&sid("root")), ActionKind::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoRole);
    let a = w.agent("agent1", "fctr-tier1");
    let before = w.events().await.len();
    let e = w
        .engine
        .explain(&a, &ctx(), Some(&sid("root")), ActionKind::Unlock)
        .await
        .unwrap();
    assert!(format!("{e:?}").contains("rotect"), "{e:?}");
    let events = w.events().await;
    assert_eq!(events.len(), before + 1);
    assert_eq!(events[before].kind, EventKind::Lookup);
    assert!(events[before].target.is_some());
    w.engine
        .explain(&a, &ctx(), Some(&sid("bob")), ActionKind::Unlock)
        .await
        .unwrap();
    let d = w
        .engine
        .explain(&a, &ctx(), Some(&sid("priv")), ActionKind::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::RateLimited);
    // Without a caller it reads policy only: no quota, no event.
    let n = w.events().await.len();
    w.engine
        .explain(&a, &ctx(), None, ActionKind::Unlock)
        .await
        .unwrap();
    assert_eq!(w.events().await.len(), n);
}

/// A usage write the ledger refuses is retried, shown in the outcome and held, never dropped; it is written once
/// the ledger recovers.
#[tokio::test]
async fn usage_that_cannot_be_written_is_visible_and_retried() {
    let usage = Arc::new(common::gate::FlakyUsage::default());
    let u = usage.clone();
    let w = common::world_wrapped(Policy::default(), |_| {}, move |p| p.usage = u);
    let a = w.agent("agent2", "fctr-tier2");
    usage
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    w.verify_push(&a, "alice").await;
    assert_eq!(
        w.engine.pending_usage(),
        1,
        "the verification's row is held"
    );
    let out = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap();
    assert!(!out.usage_recorded);
    assert_eq!(w.engine.pending_usage(), 2);
    assert!(
        usage.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 3,
        "retried"
    );
    usage
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(w.engine.flush_usage().await, 0);
    let month = fctr_ports::Month::of(w.clock.get());
    let rows = usage.report(month).await.unwrap();
    let total: u64 = rows.iter().map(|r| r.count).sum();
    assert_eq!(total, 2, "{rows:?}");
}
