//! Engine contracts: factor counts, code verdicts, grants bound, action errors, number matching, multi-use grants.

use super::*;

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
        (CodeVerdict::Locked, Reason::CallerLockedOut),
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
        // Each verdict on its own: past the wrong-code lockout window (3 by default) before the next.
        w.clock.advance(chrono::Duration::minutes(31));
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
    let text = include_str!("../../../examples/policy.toml").replace(
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
