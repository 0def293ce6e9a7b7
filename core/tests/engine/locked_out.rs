//! Engine: the locked-out procedure. A caller the IdP reports locked out cannot be challenged (Okta refuses), so
//! policy decides: unlock first (no grant needed, audited, once a day per caller) or escalate.

use super::*;
use fctr_core::policy::LockedOutProcedure;
use fctr_ports::{AccountStatus, EventKind, Outcome};

fn lock(w: &common::World, who: &str) {
    w.idp.set_status(&sid(who), AccountStatus::LockedOut);
}

/// `agent` asks for `kind` on `who`.
async fn act(
    w: &common::World,
    agent: &fctr_core::Agent,
    who: &str,
    kind: ActionKind,
) -> Result<fctr_core::ActionOutcome, fctr_core::Denial> {
    w.engine
        .perform_action(
            agent,
            &ctx(),
            &sid(who),
            fctr_core::ActionRequest::new(kind, None).unwrap(),
        )
        .await
}

#[tokio::test]
async fn the_card_of_a_locked_out_caller_offers_unlock_first_and_no_factor() {
    let w = world();
    lock(&w, "alice");
    let a = w.agent("agent2", "fctr-tier2");
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert_eq!(card.locked_out, Some(LockedOutProcedure::UnlockThenVerify));
    assert_eq!(card.recommended_factor, None, "a push would be refused");
    assert!(
        card.factors
            .iter()
            .all(|f| !f.accepted && f.refusal == Some(Reason::CallerLockedOut))
    );
    let unlock = card
        .actions
        .iter()
        .find(|x| x.kind == ActionKind::Unlock)
        .unwrap();
    assert!(unlock.applies && unlock.before_verification && unlock.available_now);
    let reset = card
        .actions
        .iter()
        .find(|x| x.kind == ActionKind::ResetPassword)
        .unwrap();
    assert!(
        !reset.available_now,
        "everything else still needs a verification"
    );

    // Not locked: no unlock offered at all.
    let card = w.engine.lookup(&a, &ctx(), &sid("bob")).await.unwrap();
    assert_eq!(card.locked_out, None);
    let unlock = card
        .actions
        .iter()
        .find(|x| x.kind == ActionKind::Unlock)
        .unwrap();
    assert!(!unlock.applies && !unlock.before_verification && !unlock.available_now);
}

#[tokio::test]
async fn a_locked_out_caller_is_unlocked_without_a_grant_once_a_day_then_verified() {
    let w = world();
    lock(&w, "alice");
    let a = w.agent("agent2", "fctr-tier2");
    act(&w, &a, "alice", ActionKind::Unlock)
        .await
        .expect("unlock before verification");
    assert_eq!(w.idp.executed(), vec![(sid("alice"), ActionKind::Unlock)]);
    let events = w.events().await;
    assert!(events.iter().any(|e| e.kind == EventKind::ActionIntent
        && e.reason == Some(Reason::CallerLockedOut)
        && e.action == Some(ActionKind::Unlock)));
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::ActionOutcome && e.outcome == Outcome::Success)
    );

    // Locked again the same day (someone guessing the password): the card escalates and the unlock is refused.
    lock(&w, "alice");
    let b = w.agent("agent2b", "fctr-tier2");
    let card = w.engine.lookup(&b, &ctx(), &sid("alice")).await.unwrap();
    assert!(card.unlock_used_up);
    assert_eq!(card.locked_out, Some(LockedOutProcedure::Escalate));
    assert!(card.actions.iter().all(|x| !x.before_verification));
    let d = act(&w, &b, "alice", ActionKind::Unlock).await.unwrap_err();
    assert_eq!(
        d.reason,
        Reason::CallerLockedOut,
        "escalate, not 'wait and retry'"
    );
    assert!(d.retry_after.is_some());
    assert_eq!(w.idp.executed().len(), 1, "nothing ran the second time");

    // A day later it works again; then the caller verifies as usual and nothing else ran without a grant.
    w.clock.advance(Duration::hours(25));
    act(&w, &b, "alice", ActionKind::Unlock).await.unwrap();
    let d = act(&w, &b, "alice", ActionKind::ResetPassword)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
    w.verify_push(&b, "alice").await;
}

#[tokio::test]
async fn an_unlocked_caller_needs_a_grant_to_be_unlocked_and_tier1_never_unlocks() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let d = act(&w, &a, "alice", ActionKind::Unlock).await.unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
    lock(&w, "alice");
    let t1 = w.agent("agent1", "fctr-tier1");
    let d = act(&w, &t1, "alice", ActionKind::Unlock).await.unwrap_err();
    assert_eq!(d.reason, Reason::NotPermittedForRole);
    // A protected caller stays untouchable even when locked out.
    lock(&w, "root");
    let d = act(&w, &a, "root", ActionKind::Unlock).await.unwrap_err();
    assert_eq!(d.reason, Reason::ProtectedTarget);
    assert!(w.idp.executed().is_empty());
}

#[tokio::test]
async fn the_escalate_procedure_refuses_the_unlock_and_shows_the_policy_words() {
    let policy = Policy::parse(
        "version = 1\n[locked_out]\nprocedure = \"escalate\"\nescalation = \"Call the IAM on-call (ext. 4242).\"\n",
    )
    .unwrap();
    let w = world_with(policy);
    lock(&w, "alice");
    let a = w.agent("agent2", "fctr-tier2");
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert_eq!(card.locked_out, Some(LockedOutProcedure::Escalate));
    assert_eq!(card.escalation, "Call the IAM on-call (ext. 4242).");
    assert!(card.actions.iter().all(|x| !x.available_now));
    let d = act(&w, &a, "alice", ActionKind::Unlock).await.unwrap_err();
    assert_eq!(d.reason, Reason::CallerLockedOut);
    assert!(w.idp.executed().is_empty());
}

#[test]
fn the_locked_out_section_is_checked() {
    for bad in [
        "version = 1\n[locked_out]\nprocedure = \"verify_anyway\"\n",
        "version = 1\n[locked_out]\nunlocks_per_caller_per_day = 0\n",
        "version = 1\n[locked_out]\nescalation = \"\"\n",
        "version = 1\n[locked_out]\nsurprise = 1\n",
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad}");
    }
}
