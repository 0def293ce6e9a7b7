//! Engine contracts: search, the caller card, verifications and their pushes, grants shown.

use super::*;

/// A search returns the IdP's matches (and is audited as a lookup).
#[tokio::test]
async fn search_returns_the_matching_callers() {
    let w = world();
    let a = w.agent("agent1", "fctr-tier1");
    let found = w
        .engine
        .search(
            &a,
            &ctx(),
            &UserQuery::Login(Pii::new("alice@example.com".to_owned())),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, sid("alice"));
    assert_eq!(w.events().await.pop().unwrap().kind, EventKind::Lookup);
}

/// The caller card: a protected caller's factors are never "accepted"; a verified caller's actions are available
/// now, and the live grant is shown until it expires.
#[tokio::test]
async fn the_caller_card_reflects_protection_and_the_live_grant() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let root = w.engine.lookup(&a, &ctx(), &sid("root")).await.unwrap();
    assert!(root.protected);
    assert!(
        root.factors.iter().all(|f| !f.accepted),
        "protected: nothing accepted"
    );
    let alice = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert!(alice.factors.iter().any(|f| f.accepted));
    assert!(alice.grant.is_none());
    w.verify_push(&a, "alice").await;
    let alice = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert!(alice.grant.is_some(), "the live grant is on the card");
    let unlock = alice
        .actions
        .iter()
        .find(|x| x.kind == ActionKind::Unlock)
        .unwrap();
    assert!(unlock.available_now);
    w.clock.advance(Duration::minutes(11));
    let alice = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert!(alice.grant.is_none(), "an expired grant is not shown");
    assert!(alice.actions.iter().all(|x| !x.available_now));
}

/// A verification waiting for its second factor that outlives its window is stored as expired.
#[tokio::test]
async fn a_pending_verification_past_its_window_is_stored_expired() {
    let w = world();
    let a = w.agent("agent3", "fctr-tier3");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("priv"), Some(&fid("totp3")))
        .await
        .unwrap();
    w.idp.set_code(&sid("priv"), &fid("totp3"), "112233");
    let v = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("112233".to_owned()))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Pending);
    w.clock.advance(Duration::minutes(11));
    let d = w
        .engine
        .continue_verification(&a, &ctx(), v.id, None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::VerificationExpired);
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Expired);
}

/// Events about a stored verification name its caller (by pseudonym).
#[tokio::test]
async fn events_of_a_stored_verification_name_the_caller() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
    w.engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("000000".to_owned()))
        .await
        .unwrap_err();
    let last = w.events().await.pop().unwrap();
    assert_eq!(last.kind, EventKind::CodeSubmitted);
    assert_eq!(
        last.target,
        Some(w.engine.pseudonymizer().subject(&sid("alice")))
    );
}

/// A push that times out ends the verification as expired; one the IdP fails ends it as failed; each view says
/// why.
#[tokio::test]
async fn ended_pushes_show_why() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([ChallengeState::TimedOut]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(
        (v.status, v.reason),
        (VerificationStatus::Expired, Some(Reason::ChallengeTimedOut))
    );
    w.idp
        .script_push([ChallengeState::Failed(FailureReason::IdpError)]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("bob"), Some(&fid("push2")))
        .await
        .unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(
        (v.status, v.reason),
        (VerificationStatus::Failed, Some(Reason::IdpError))
    );
}

/// The result event of an ended push: the caller's no (or silence) is `rejected`, the IdP's failure `failed`.
/// (The "not me" response to a denied push is off here: its events would follow the result, and its block would
/// refuse the next push; tests/engine/alarms.rs covers it.)
#[tokio::test]
async fn ended_pushes_are_audited_with_the_right_outcome() {
    let w = world_with(Policy::parse("[alarms.not_me]\non_push_denied = false\n").unwrap());
    let a = w.agent("agent2", "fctr-tier2");
    for (script, outcome) in [
        (ChallengeState::Rejected, Outcome::Rejected),
        (ChallengeState::TimedOut, Outcome::Rejected),
        (
            ChallengeState::Failed(FailureReason::IdpError),
            Outcome::Failed,
        ),
    ] {
        w.idp.script_push([script]);
        let v = w
            .engine
            .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
            .await
            .unwrap();
        w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
        let last = w.events().await.pop().unwrap();
        assert_eq!(
            (last.kind, last.outcome),
            (EventKind::ChallengeResult, outcome)
        );
    }
}

/// Two polls see the same approval at the same moment (both parked after the IdP answered): one stores it and
/// mints the grant, the other loses the compare-and-set and shows what the winner stored. One grant, no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_polls_of_one_approval_mint_one_grant() {
    let (w, idp) = gated();
    w.idp.script_push([ChallengeState::Approved]);
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap();
    idp.poll.arm(2);
    let polls: Vec<_> = (0..2)
        .map(|_| {
            let engine = w.engine.clone();
            let a = a.clone();
            tokio::spawn(async move { engine.poll_verification(&a, &ctx(), v.id).await })
        })
        .collect();
    idp.poll.wait_parked(2).await;
    idp.poll.release(2);
    for p in polls {
        let v = p.await.unwrap().unwrap();
        assert_eq!(v.status, VerificationStatus::Verified);
    }
    let issued = w
        .events()
        .await
        .iter()
        .filter(|e| e.kind == EventKind::GrantIssued)
        .count();
    assert_eq!(issued, 1);
}

/// Polling a verified verification shows its grant while it is live and unused, and only its own grant.
#[tokio::test]
async fn a_verified_verification_shows_its_own_live_grant_only() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let first = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap();
    w.engine
        .poll_verification(&a, &ctx(), first.id)
        .await
        .unwrap();
    let v = w
        .engine
        .poll_verification(&a, &ctx(), first.id)
        .await
        .unwrap();
    assert!(v.grant.is_some());
    let again = w
        .engine
        .poll_verification(&a, &ctx(), first.id)
        .await
        .unwrap();
    assert!(again.grant.is_some(), "shown while live");
    // Exactly at its expiry it is gone.
    w.clock.advance(Duration::minutes(10));
    let late = w
        .engine
        .poll_verification(&a, &ctx(), first.id)
        .await
        .unwrap();
    assert!(late.grant.is_none(), "expired at expires_at");
    // A newer verification's grant is not the older one's.
    w.verify_push(&a, "alice").await;
    let old = w
        .engine
        .poll_verification(&a, &ctx(), first.id)
        .await
        .unwrap();
    assert!(old.grant.is_none());
    // A spent grant is not shown.
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), fctr_ports::Action::Unlock)
        .await
        .unwrap();
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert!(card.grant.is_none());
}
