//! The gate holds when requests arrive at the same moment: deterministic interleavings (a test double parks one
//! request at the dangerous step while others run), plus bursts on a multi-threaded runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::gate::{GatedGrants, GatedIdp};
use common::{World, ctx, sid, world_wrapped};
use fctr_core::policy::Policy;
use fctr_core::{Agent, Denial};
use fctr_ports::{Action, ChallengeState, EventKind, Reason, SecretString, VerificationStatus};
use std::sync::Arc;

fn reset() -> Action {
    Action::ResetPassword { send_email: false }
}

/// A world whose IdP and grant store are gated.
fn gated_world() -> (World, Arc<GatedIdp>, Arc<GatedGrants>) {
    gated_world_with(Policy::default())
}

fn gated_world_with(policy: Policy) -> (World, Arc<GatedIdp>, Arc<GatedGrants>) {
    let mut idp_slot = None;
    let mut grants_slot = None;
    let w = world_wrapped(
        policy,
        |_| {},
        |ports| {
            let idp = Arc::new(GatedIdp::new(ports.idp.clone()));
            let grants = Arc::new(GatedGrants::new(ports.grants.clone()));
            ports.idp = idp.clone();
            ports.grants = grants.clone();
            idp_slot = Some(idp);
            grants_slot = Some(grants);
        },
    );
    (w, idp_slot.unwrap(), grants_slot.unwrap())
}

async fn act(w: &World, a: &Agent) -> Result<(), Denial> {
    w.engine
        .perform_action(a, &ctx(), &sid("alice"), reset())
        .await
        .map(|_| ())
}

/// `n` requests spend one single-use grant; every one of them is parked right after the grant store answered it,
/// then all go on. Exactly one action runs; every other request is told the grant is used.
async fn spend_one_grant_from(n: usize) {
    let (w, idp, grants) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    grants.after_consume.arm(n);
    let engine = w.engine.clone();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let engine = engine.clone();
            let a = a.clone();
            tokio::spawn(async move {
                engine
                    .perform_action(&a, &ctx(), &sid("alice"), reset())
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    grants.after_consume.wait_parked(n).await;
    grants.after_consume.release(n);
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(d) => assert_eq!(d.reason, Reason::GrantUsed),
        }
    }
    assert_eq!(ok, 1, "exactly one of {n} requests acts");
    assert_eq!(idp.execute.calls(), 1, "exactly one action reaches the IdP");
    assert_eq!(w.idp.executed().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_grant_spent_by_2_concurrent_requests_runs_one_action() {
    spend_one_grant_from(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_grant_spent_by_8_concurrent_requests_runs_one_action() {
    spend_one_grant_from(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_grant_spent_by_64_concurrent_requests_runs_one_action() {
    spend_one_grant_from(64).await;
}

/// Request A has spent the grant and is inside the IdP call when request B arrives: B is refused.
#[tokio::test]
async fn a_request_arriving_while_the_action_runs_is_refused() {
    let (w, idp, _) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    idp.execute.arm(1);
    let first = {
        let engine = w.engine.clone();
        let a = a.clone();
        tokio::spawn(async move {
            engine
                .perform_action(&a, &ctx(), &sid("alice"), reset())
                .await
                .map(|_| ())
        })
    };
    idp.execute.wait_parked(1).await;
    let second = act(&w, &a).await.unwrap_err();
    assert_eq!(second.reason, Reason::GrantUsed);
    idp.execute.release(1);
    first.await.unwrap().unwrap();
    assert_eq!(w.idp.executed().len(), 1);
}

/// 40 wrong codes submitted at once while the IdP is slow (every code parked inside the IdP until all 40 requests
/// have either reached it or been refused): at most the policy's number of codes ever reach the IdP.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_wrong_codes_put_at_most_the_lockout_number_on_the_idp() {
    let (w, idp, _) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&common::fid("totp1")))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Challenged);
    let limit = w.engine.policy().limits().wrong_codes_before_lockout as usize;
    assert!(limit < 40);
    idp.verify_code.arm(40);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let engine = w.engine.clone();
            let a = a.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let r = engine
                    .submit_code(
                        &a,
                        &ctx(),
                        v.id,
                        SecretString::from(format!("{:06}", 100_000 + i)),
                    )
                    .await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r
            })
        })
        .collect();
    // Every request has either parked inside the IdP or come back refused.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while idp.verify_code.parked() + done.load(std::sync::atomic::Ordering::SeqCst) < 40 {
        assert!(tokio::time::Instant::now() < deadline, "requests settled");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(
        idp.verify_code.parked(),
        limit,
        "only {limit} codes may reach the IdP while the others wait"
    );
    idp.verify_code.release(40);
    let mut locked = 0;
    for t in tasks {
        let d = t.await.unwrap().unwrap_err();
        assert!(
            matches!(d.reason, Reason::WrongCode | Reason::VerificationLocked),
            "{d:?}"
        );
        if d.reason == Reason::VerificationLocked {
            locked += 1;
        }
    }
    assert_eq!(
        idp.verify_code.calls(),
        limit,
        "wrong codes that reached the IdP"
    );
    assert!(locked >= 40 - limit);
    // And the caller stays locked: the right code is refused before the IdP sees it.
    let right = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("123456".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(right.reason, Reason::VerificationLocked);
    assert_eq!(idp.verify_code.calls(), limit);
}

/// A right code is refunded: it does not bring the caller closer to the lockout.
#[tokio::test]
async fn a_right_code_does_not_count_towards_the_lockout() {
    let policy =
        Policy::parse("version = 1\n[limits]\nchallenges_per_target_per_hour = 100\n").unwrap();
    let (w, idp, _) = gated_world_with(policy);
    let a = w.agent("agent3", "fctr-tier3");
    let limit = w.engine.policy().limits().wrong_codes_before_lockout as usize;
    for _ in 0..(limit + 2) {
        let v = w
            .engine
            .begin_verification(&a, &ctx(), &sid("alice"), Some(&common::fid("totp1")))
            .await
            .unwrap();
        w.idp
            .set_code(&sid("alice"), &common::fid("totp1"), "246810");
        let v = w
            .engine
            .submit_code(&a, &ctx(), v.id, SecretString::from("246810".to_owned()))
            .await
            .unwrap();
        assert_eq!(v.status, VerificationStatus::Verified);
    }
    assert_eq!(idp.verify_code.calls(), limit + 2);
}

/// Two agents unlock the same locked-out caller before verification (the locked-out procedure) at the same
/// moment: the first is parked inside the IdP's unlock, after its status read, its count and its audited intent;
/// the second still reads the account as locked out, and the once-a-day count refuses it. One unlock runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_unlocks_before_verification_at_once_run_one() {
    let (w, idp, _) = gated_world();
    w.idp
        .set_status(&sid("alice"), fctr_ports::AccountStatus::LockedOut);
    let a = w.agent("agent2", "fctr-tier2");
    let b = w.agent("agent2b", "fctr-tier2");
    idp.execute.arm(1);
    let first = {
        let engine = w.engine.clone();
        tokio::spawn(async move {
            engine
                .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
                .await
                .map(|_| ())
        })
    };
    idp.execute.wait_parked(1).await;
    let second = w
        .engine
        .perform_action(&b, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(second.reason, Reason::CallerLockedOut);
    idp.execute.release(1);
    first.await.unwrap().unwrap();
    assert_eq!(w.idp.executed().len(), 1, "one unlock reached the IdP");
}

/// The reuse window never outlives an action: a card whose read of the caller's groups began before an action ran
/// (parked inside the IdP while the action runs and drops what was known) is shown, but not kept for the next
/// step, which reads the IdP again. (Without the drop's marker the parked read would be kept and reused.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_read_in_flight_while_an_action_runs_is_not_reused_after_it() {
    let (w, idp, _) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    // Past the window of the verification's reads: the next card reads the groups again.
    w.clock.advance(chrono::Duration::seconds(31));
    idp.groups.arm(1);
    let card = {
        let (engine, a) = (w.engine.clone(), a.clone());
        tokio::spawn(async move { engine.lookup(&a, &ctx(), &sid("alice")).await })
    };
    idp.groups.wait_parked(1).await;
    // The action reads the groups itself (the parked read is not in the window yet), runs, and drops alice.
    act(&w, &a).await.unwrap();
    w.clock.advance(chrono::Duration::seconds(1));
    let reads_before = idp.groups.calls();
    idp.groups.release(1);
    card.await.unwrap().unwrap();
    // A step that reuses the window (a confirmation) finds nothing to reuse: it reads the groups again.
    w.engine
        .lookup_again(&a, &ctx(), &sid("alice"))
        .await
        .unwrap();
    assert_eq!(
        idp.groups.calls(),
        reads_before + 1,
        "the step after the action read the groups again"
    );
    // And that read is reused by the next step.
    w.engine
        .lookup_again(&a, &ctx(), &sid("alice"))
        .await
        .unwrap();
    assert_eq!(idp.groups.calls(), reads_before + 1);
}

/// The approval judges the factors by the class the verification began with: polling a push to approval reads
/// no groups (the action checks protection again before it runs).
#[tokio::test]
async fn the_approval_reads_no_groups() {
    let (w, idp, _) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    w.clock.advance(chrono::Duration::seconds(31));
    let before = idp.groups.calls();
    for _ in 0..2 {
        w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    }
    let v = w.engine.verification_view(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Verified);
    assert_eq!(idp.groups.calls(), before);
}

/// The short-lived store is down when a push is approved: no grant is stored, so none is announced. The result is
/// still audited (the caller did approve), the request is refused as such, and no action can run.
#[tokio::test]
async fn an_approval_whose_grant_cannot_be_stored_announces_no_grant() {
    let (w, _idp, grants) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([ChallengeState::Approved]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    grants
        .fail_put_grant
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let d = w
        .engine
        .poll_verification(&a, &ctx(), v.id)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::StateUnavailable);
    let kinds: Vec<EventKind> = w.events().await.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::ChallengeResult), "{kinds:?}");
    assert!(!kinds.contains(&EventKind::GrantIssued), "{kinds:?}");
    w.assert_audited(Reason::StateUnavailable).await;
    grants
        .fail_put_grant
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(act(&w, &a).await.unwrap_err().reason, Reason::NoLiveGrant);
}
