//! Small contracts of the engine pinned by tests that mutation testing showed were missing
//! (`bash scripts/mutants.sh core`): every one of these fails if the line it names is changed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use chrono::Duration;
use common::gate::GatedIdp;
use common::{World, ctx, fid, sid, world, world_with};
use fctr_core::Retention;
use fctr_core::policy::Policy;
use fctr_ports::{
    ActionKind, AuditDetail, ChallengeState, CodeVerdict, EventKind, FailureReason, Outcome, Pii,
    PortError, Reason, SecretString, UserQuery, VerificationStatus,
};
use std::sync::Arc;

fn gated() -> (World, Arc<GatedIdp>) {
    let mut slot = None;
    let w = common::world_wrapped(
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

#[test]
fn an_agent_carries_the_role_its_groups_give_and_the_engine_its_policy_and_retention() {
    let w = world_with(
        Policy::parse("version = 1\n[limits]\nlookups_per_agent_per_hour = 7\n").unwrap(),
    );
    assert_eq!(w.agent("a", "fctr-tier2").role(), Some("tier2"));
    assert_eq!(w.engine.policy().limits().lookups_per_agent_per_hour, 7);
    let debug = format!("{:?}", w.engine);
    assert!(
        debug.contains("Engine") && debug.contains("acme"),
        "{debug}"
    );
    assert_eq!(w.engine.retention(), Retention::default());
}

#[test]
fn with_retention_is_kept() {
    let w = world();
    let r = Retention {
        audit: Duration::days(7),
        usage: Duration::days(400),
        runtime_logs: Duration::hours(6),
    };
    let Ok(engine) = Arc::try_unwrap(w.engine) else {
        panic!("the test holds the only engine");
    };
    assert_eq!(engine.with_retention(r).retention(), r);
}

/// A TOTP code is read back by the caller: nothing is sent to the IdP to start it.
#[tokio::test]
async fn a_code_factor_sends_nothing_to_start() {
    let (w, idp) = gated();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Challenged);
    assert_eq!(idp.start.calls(), 0);
    assert_eq!(v.challenge_expires_at, None);
    let v2 = w
        .engine
        .begin_verification(&a, &ctx(), &sid("bob"), Some(&fid("push2")))
        .await
        .unwrap();
    assert_eq!(idp.start.calls(), 1, "a push is sent");
    assert!(v2.challenge_expires_at.is_some());
}

/// Each IdP error maps to its own reason, and the audit event carries the port error code and HTTP status.
#[tokio::test]
async fn idp_errors_map_to_reasons_and_are_audited_with_their_code() {
    let (w, idp) = gated();
    let a = w.agent("agent2", "fctr-tier2");
    type Case = (fn() -> PortError, Reason, &'static str, Option<u16>);
    let cases: [Case; 5] = [
        (
            || PortError::NotFound,
            Reason::TargetNotFound,
            "not_found",
            None,
        ),
        (
            || PortError::Unsupported,
            Reason::Unsupported,
            "unsupported",
            None,
        ),
        (
            || PortError::RateLimited { retry_after: None },
            Reason::RateLimited,
            "rate_limited",
            None,
        ),
        (
            || PortError::Upstream {
                status: 503,
                code: None,
            },
            Reason::IdpError,
            "upstream",
            Some(503),
        ),
        (|| PortError::Timeout, Reason::IdpError, "timeout", None),
    ];
    for (err, reason, code, status) in cases {
        *idp.groups_error.lock().unwrap() = Some(err);
        let d = w
            .engine
            .begin_verification(&a, &ctx(), &sid("alice"), None)
            .await
            .unwrap_err();
        assert_eq!(d.reason, reason, "{code}");
        let last = w.events().await.pop().unwrap();
        assert_eq!(last.reason, Some(reason));
        assert_eq!(
            last.detail,
            Some(AuditDetail::Upstream {
                code: code.to_owned(),
                status
            })
        );
    }
}

/// The outcome recorded with a refusal: a caller's wrong answer is `rejected`, a failure of ours or the IdP's is
/// `failed`, a rule's refusal `denied`.
#[tokio::test]
async fn refusals_are_audited_with_the_right_outcome() {
    let (w, idp) = gated();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
    let d = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("000000".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::WrongCode);
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.reason, last.outcome),
        (Some(Reason::WrongCode), Outcome::Rejected)
    );

    *idp.groups_error.lock().unwrap() = Some(|| PortError::Timeout);
    w.engine
        .begin_verification(&a, &ctx(), &sid("bob"), None)
        .await
        .unwrap_err();
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.reason, last.outcome),
        (Some(Reason::IdpError), Outcome::Failed)
    );
    *idp.groups_error.lock().unwrap() = None;

    w.engine
        .begin_verification(&a, &ctx(), &sid("root"), None)
        .await
        .unwrap_err();
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.reason, last.outcome),
        (Some(Reason::ProtectedTarget), Outcome::Denied)
    );
}

/// The lockout lasts `lockout_minutes`, not a minute more or less.
#[tokio::test]
async fn the_lockout_lasts_lockout_minutes() {
    let w = world_with(
        Policy::parse(
            "version = 1\n[limits]\nchallenges_per_target_per_hour = 100\nlockout_minutes = 15\n",
        )
        .unwrap(),
    );
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
    for _ in 0..5 {
        w.engine
            .submit_code(&a, &ctx(), v.id, SecretString::from("000000".to_owned()))
            .await
            .unwrap_err();
    }
    w.clock.advance(Duration::minutes(14));
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap_err();
    assert_eq!(
        d.reason,
        Reason::VerificationLocked,
        "still locked after 14 minutes"
    );
    w.clock.advance(Duration::minutes(1));
    w.engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
}

/// Held usage rows merge per (month, tenant, agent, kind): two verifications the ledger refused are one row of 2.
#[tokio::test]
async fn held_usage_rows_merge_per_row_key_only() {
    let usage = Arc::new(common::gate::FlakyUsage::default());
    let u = usage.clone();
    let w = common::world_wrapped(Policy::default(), |_| {}, move |p| p.usage = u);
    usage
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let a = w.agent("agent2", "fctr-tier2");
    let b = w.agent("agent3", "fctr-tier3");
    w.verify_push(&a, "alice").await;
    w.verify_push(&a, "bob").await;
    assert_eq!(
        w.engine.pending_usage(),
        1,
        "same agent, same kind: one row"
    );
    w.verify_push(&b, "alice").await;
    assert_eq!(w.engine.pending_usage(), 2, "another agent: another row");
    w.clock.advance(Duration::days(40));
    w.verify_push(&b, "bob").await;
    assert_eq!(w.engine.pending_usage(), 3, "another month: another row");
    usage
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(w.engine.flush_usage().await, 0);
}

/// Sign-out, failed sign-ins, policy loads and edge refusals each leave their event.
#[tokio::test]
async fn session_and_edge_events_are_audited() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.engine.sign_out(&a, &ctx()).await;
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.kind, last.outcome),
        (EventKind::Logout, Outcome::Success)
    );
    assert_eq!(last.agent.as_ref(), Some(a.pseudonym()));

    w.engine.sign_in_failed(&ctx()).await;
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.kind, last.outcome, last.reason),
        (
            EventKind::Login,
            Outcome::Failed,
            Some(Reason::AuthenticationFailed)
        )
    );

    w.engine.announce_policy().await.unwrap();
    let last = w.events().await.pop().unwrap();
    assert_eq!(last.kind, EventKind::PolicyLoaded);
    assert!(matches!(last.detail, Some(AuditDetail::Policy { .. })));

    w.engine
        .audit_edge_denial(Some(&a), Reason::CsrfRejected, &ctx())
        .await;
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.kind, last.outcome, last.reason),
        (
            EventKind::Denied,
            Outcome::Denied,
            Some(Reason::CsrfRejected)
        )
    );
    assert_eq!(last.agent.as_ref(), Some(a.pseudonym()));
}

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
        (
            VerificationStatus::Expired,
            Some(Reason::VerificationExpired)
        )
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
#[tokio::test]
async fn ended_pushes_are_audited_with_the_right_outcome() {
    let w = world();
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

/// One factor of two approved: the verification waits for the next, and the event says how far it got.
#[tokio::test]
async fn a_first_factor_of_two_is_audited_with_the_count() {
    let w = world();
    let a = w.agent("agent3", "fctr-tier3");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("priv"), Some(&fid("push3")))
        .await
        .unwrap();
    w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Pending);
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        (last.kind, last.outcome, last.detail),
        (
            EventKind::ChallengeResult,
            Outcome::Success,
            Some(AuditDetail::Factors {
                approved: 1,
                required: 2
            })
        )
    );
}

/// What the IdP says of a code maps to the reason the agent sees.
#[tokio::test]
async fn code_verdicts_map_to_reasons() {
    let (w, idp) = gated();
    let a = w.agent("agent2", "fctr-tier2");
    for (verdict, reason) in [
        (CodeVerdict::Replayed, Reason::CodeReplayed),
        (CodeVerdict::Locked, Reason::VerificationLocked),
        (CodeVerdict::OutsideWindow, Reason::WrongCode),
    ] {
        let v = w
            .engine
            .begin_verification(&a, &ctx(), &sid("bob"), Some(&fid("totp2")))
            .await
            .unwrap();
        *idp.verdict.lock().unwrap() = Some(verdict);
        let d = w
            .engine
            .submit_code(&a, &ctx(), v.id, SecretString::from("123456".to_owned()))
            .await
            .unwrap_err();
        assert_eq!(d.reason, reason, "{verdict:?}");
        *idp.verdict.lock().unwrap() = None;
    }
}

/// A store that hands out a grant bound to someone else is not believed (defence in depth): nothing runs.
#[tokio::test]
async fn a_grant_bound_to_someone_else_is_refused_even_from_the_store() {
    type Tamper = fn(&mut fctr_ports::GrantRecord);
    let cases: [(Tamper, Reason); 3] = [
        (|g| g.subject = g.agent.clone(), Reason::GrantOtherSubject),
        (
            |g| g.tenant = fctr_ports::TenantId::parse("other").unwrap(),
            Reason::GrantOtherSubject,
        ),
        (|g| g.agent = g.subject.clone(), Reason::GrantOtherAgent),
    ];
    for (tamper, reason) in cases {
        let w = common::world_wrapped(
            Policy::default(),
            |_| {},
            |ports| {
                let mut lying = common::gate::GatedGrants::new(ports.grants.clone());
                lying.tamper = Some(tamper);
                ports.grants = Arc::new(lying);
            },
        );
        let a = w.agent("agent2", "fctr-tier2");
        w.verify_push(&a, "alice").await;
        let d = w
            .engine
            .perform_action(&a, &ctx(), &sid("alice"), fctr_ports::Action::Unlock)
            .await
            .unwrap_err();
        assert_eq!(d.reason, reason);
        assert!(w.idp.executed().is_empty());
    }
}

/// The IdP refusing an action maps to the reason the agent sees.
#[tokio::test]
async fn action_errors_map_to_reasons() {
    let cases: [(fn() -> PortError, Reason); 3] = [
        (|| PortError::Unsupported, Reason::Unsupported),
        (|| PortError::InvalidState, Reason::InvalidState),
        (|| PortError::Timeout, Reason::IdpError),
    ];
    for (err, reason) in cases {
        let (w, idp) = gated();
        let a = w.agent("agent2", "fctr-tier2");
        w.verify_push(&a, "alice").await;
        *idp.execute_error.lock().unwrap() = Some(err);
        let d = w
            .engine
            .perform_action(&a, &ctx(), &sid("alice"), fctr_ports::Action::Unlock)
            .await
            .unwrap_err();
        assert_eq!(d.reason, reason);
        let last = w.events().await.pop().unwrap();
        assert_eq!(
            (last.kind, last.reason),
            (EventKind::ActionOutcome, Some(reason))
        );
    }
}

fn refuse_plain_pushes() -> Policy {
    let text = include_str!("../../examples/policy.toml").replace(
        "push_without_number_matching = \"require_another_factor\"",
        "push_without_number_matching = \"refuse\"",
    );
    Policy::parse(&text).unwrap()
}

async fn push_then_totp(w: &World, a: &fctr_core::Agent) -> VerificationStatus {
    let v = w
        .engine
        .begin_verification(a, &ctx(), &sid("priv"), Some(&fid("push3")))
        .await
        .unwrap();
    w.engine.poll_verification(a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Pending);
    let v = w
        .engine
        .continue_verification(a, &ctx(), v.id, Some(&fid("totp3")))
        .await
        .unwrap();
    w.idp.set_code(&sid("priv"), &fid("totp3"), "445566");
    w.engine
        .submit_code(a, &ctx(), v.id, SecretString::from("445566".to_owned()))
        .await
        .unwrap()
        .status
}

/// Under `refuse`, a privileged caller's number-matched push counts whichever order the factors come in, and a
/// push that came back without a number never counts, even once it is in the past.
#[tokio::test]
async fn number_matching_is_remembered_per_approved_push() {
    let w = world_with(refuse_plain_pushes());
    let a = w.agent("agent3", "fctr-tier3");
    assert_eq!(push_then_totp(&w, &a).await, VerificationStatus::Verified);

    // TOTP first, then the push.
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("priv"), Some(&fid("totp3")))
        .await
        .unwrap();
    w.idp.set_code(&sid("priv"), &fid("totp3"), "778899");
    let v = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("778899".to_owned()))
        .await
        .unwrap();
    let v = w
        .engine
        .continue_verification(&a, &ctx(), v.id, Some(&fid("push3")))
        .await
        .unwrap();
    w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Verified);

    // A plain push first: the TOTP code after it does not complete a two-factor verification.
    let w = world_with(refuse_plain_pushes());
    w.idp.send_pushes_without_number();
    let a = w.agent("agent3", "fctr-tier3");
    assert_eq!(push_then_totp(&w, &a).await, VerificationStatus::Pending);
}

/// With `single_use_grants = false` the grant says so, and serves more than one action until it expires.
#[tokio::test]
async fn a_multi_use_grant_says_so_and_serves_several_actions() {
    let w = world_with(
        Policy::parse("version = 1\n[verification]\nsingle_use_grants = false\n").unwrap(),
    );
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap();
    w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert!(!v.grant.unwrap().single_use);
    for _ in 0..2 {
        w.engine
            .perform_action(&a, &ctx(), &sid("alice"), fctr_ports::Action::Unlock)
            .await
            .unwrap();
    }
    assert_eq!(w.idp.executed().len(), 2);
}
