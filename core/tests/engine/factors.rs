//! Engine: factors and limits: two factors for privileged callers, wrong-code lockout, push throttling, weaker factors, single use, TAP terms, pushes without number matching.

use super::*;

#[tokio::test]
async fn privileged_caller_needs_two_distinct_factors() {
    let w = world();
    let a = w.agent("agent3", "fctr-tier3");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("priv"), Some(&fid("push3")))
        .await
        .unwrap();
    assert_eq!(v.required, 2);
    let _ = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!((v.status, v.approved), (VerificationStatus::Pending, 1));
    assert!(v.grant.is_none());
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("priv"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(
        d.reason,
        Reason::NoLiveGrant,
        "one factor of two is not enough"
    );
    // The same factor again proves nothing new.
    let d = w
        .engine
        .continue_verification(&a, &ctx(), v.id, Some(&fid("push3")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::FactorNotAccepted);
    let v = w
        .engine
        .continue_verification(&a, &ctx(), v.id, Some(&fid("totp3")))
        .await
        .unwrap();
    assert_eq!(v.factor, Some(FactorKind::Totp));
    w.idp.set_code(&sid("priv"), &fid("totp3"), "123456");
    let v = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("123456".to_owned()))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Verified);
    assert_eq!(
        v.grant.unwrap().factors,
        vec![FactorKind::Push, FactorKind::Totp]
    );
    w.engine
        .perform_action(&a, &ctx(), &sid("priv"), Action::ResetFactors)
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_codes_lock_verification_of_that_caller_for_everyone() {
    let w = world();
    let a = w.agent("agentA", "fctr-tier2");
    let b = w.agent("agentB", "fctr-tier2");
    let limit = w.engine.policy().limits().wrong_codes_before_lockout;
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("totp1")))
        .await
        .unwrap();
    w.idp.set_code(&sid("alice"), &fid("totp1"), "246810");
    for i in 1..=limit {
        let d = w
            .engine
            .submit_code(&a, &ctx(), v.id, SecretString::from("000000".to_owned()))
            .await
            .unwrap_err();
        let expected = if i == limit {
            Reason::VerificationLocked
        } else {
            Reason::WrongCode
        };
        assert_eq!(d.reason, expected, "attempt {i}");
    }
    // Even the right code is refused now, for any agent.
    let d = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("246810".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::VerificationLocked);
    let d = w
        .engine
        .begin_verification(&b, &ctx(), &sid("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::VerificationLocked);
    assert!(d.retry_after.is_some());
    w.assert_audited(Reason::VerificationLocked).await;
    // Another caller is unaffected.
    w.engine
        .begin_verification(&b, &ctx(), &sid("bob"), None)
        .await
        .unwrap();
    // After the lockout, verification works again.
    w.clock.advance(
        Duration::minutes(i64::from(w.engine.policy().limits().lockout_minutes))
            + Duration::seconds(1),
    );
    w.engine
        .begin_verification(&b, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn pushes_to_one_caller_are_throttled_across_agents() {
    let w = world();
    let per_target = w.engine.policy().limits().challenges_per_target_per_hour;
    for i in 0..per_target {
        let a = w.agent(&format!("agent{i}"), "fctr-tier2");
        w.engine
            .begin_verification(&a, &ctx(), &sid("alice"), None)
            .await
            .unwrap();
    }
    let late = w.agent("agentLate", "fctr-tier2");
    let d = w
        .engine
        .begin_verification(&late, &ctx(), &sid("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::RateLimited);
    assert!(d.retry_after.is_some());
    w.assert_audited(Reason::RateLimited).await;
    // Another caller, same agent: fine.
    w.engine
        .begin_verification(&late, &ctx(), &sid("bob"), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn weaker_factor_is_refused_when_a_stronger_one_is_enrolled() {
    let text = include_str!("../../../examples/policy.toml")
        .replace(
            "allow_restricted_pstn = false",
            "allow_restricted_pstn = true",
        )
        .replacen("accepted = [", "accepted = [\"sms\", ", 1);
    let policy = Policy::parse(&text).expect("policy allowing sms");
    let w = world_with(policy);
    let a = w.agent("agent2", "fctr-tier2");
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("smsy"), Some(&fid("sms5")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::DowngradeRefused);
    w.assert_audited(Reason::DowngradeRefused).await;
}

#[tokio::test]
async fn sms_is_not_accepted_by_default() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("smsy"), Some(&fid("sms5")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::FactorNotAccepted);
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("nope")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::FactorNotEnrolled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_use_grant_is_consumed_once_under_concurrency() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let engine = w.engine.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            engine
                .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);
    assert_eq!(w.idp.executed().len(), 1);
}

#[tokio::test]
async fn lookup_builds_the_card_and_audits_without_pii() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert_eq!(card.recommended_factor, Some(fid("push1")));
    assert!(card.factors.iter().all(|f| f.accepted));
    let reset = card
        .actions
        .iter()
        .find(|x| x.kind == ActionKind::ResetPassword)
        .unwrap();
    assert!(reset.permitted_for_role && !reset.available_now);
    let json = serde_json::to_string(&w.events().await).unwrap();
    for needle in ["alice", "agent2", "198.51.100.23", "example.com"] {
        assert!(
            !json.contains(needle),
            "{needle} reached the audit log: {json}"
        );
    }
    assert!(json.contains("198.51.100.0/24"));
}

#[tokio::test]
async fn tap_terms_come_from_policy_not_the_client() {
    let w = world();
    let a = w.agent("agent3", "fctr-tier3");
    w.verify_push(&a, "alice").await;
    let out = w
        .engine
        .perform_action(
            &a,
            &ctx(),
            &sid("alice"),
            Action::IssueTemporaryAccessPass {
                lifetime_minutes: 100_000,
                one_time: false,
            },
        )
        .await
        .unwrap();
    assert!(out.receipt.secret.is_some());
    let tap = w.engine.policy().temporary_access_pass();
    let expected = Action::IssueTemporaryAccessPass {
        lifetime_minutes: tap.lifetime_minutes,
        one_time: tap.one_time,
    };
    assert_eq!(w.idp.executed_actions(), vec![(sid("alice"), expected)]);
}

/// Entra's push carries no number: under the default policy it never verifies a caller on its own, and where a
/// TOTP factor is enrolled the plain push is refused as a downgrade.
#[tokio::test]
async fn push_without_number_matching_never_verifies_alone_by_default() {
    let w = common::world_with_caps(Policy::default(), |c| c.push_number_matching = false);
    let a = w.agent("agent2", "fctr-tier2");
    // alice also has TOTP, which is stronger than a push without number matching.
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::DowngradeRefused);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    assert_eq!(
        v.factor,
        Some(FactorKind::Totp),
        "policy prefers the TOTP code"
    );
    // smsy has only push (and SMS, not accepted): an approved push would be one factor of two and no second
    // factor exists, so the push is refused before it is sent, and the lookup recommends nothing.
    let card = w.engine.lookup(&a, &ctx(), &sid("smsy")).await.unwrap();
    assert_eq!(card.recommended_factor, None);
    let before = w.events().await.len();
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("smsy"), Some(&fid("push5")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NotEnoughFactors);
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("smsy"), None)
        .await
        .unwrap_err();
    assert_eq!(
        d.reason,
        Reason::NotEnoughFactors,
        "the preferred factor alone cannot verify"
    );
    let after = w.events().await;
    assert!(
        after[before..]
            .iter()
            .all(|e| e.kind != fctr_ports::EventKind::ChallengeStarted),
        "no challenge was started: {:?}",
        &after[before..]
    );
    w.assert_audited(Reason::NotEnoughFactors).await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("smsy"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
}

/// With `push_without_number_matching = "refuse"`, such a push is not offered at all.
#[tokio::test]
async fn push_without_number_matching_can_be_refused_outright() {
    let text = include_str!("../../../examples/policy.toml").replace(
        "push_without_number_matching = \"require_another_factor\"",
        "push_without_number_matching = \"refuse\"",
    );
    let policy = Policy::parse(&text).unwrap();
    let w = common::world_with_caps(policy, |c| c.push_number_matching = false);
    let a = w.agent("agent2", "fctr-tier2");
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::FactorNotAccepted);
    // The preferred factor is then the TOTP code.
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    assert_eq!(v.factor, Some(FactorKind::Totp));
}

/// A privileged caller on Entra: the TOTP code first, then the plain push as the second factor (an addition to
/// the stronger factor already proved, not a downgrade from it).
#[tokio::test]
async fn totp_then_plain_push_verifies_a_privileged_caller() {
    let w = common::world_with_caps(Policy::default(), |c| c.push_number_matching = false);
    let a = w.agent("agent3", "fctr-tier3");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("priv"), None)
        .await
        .unwrap();
    assert_eq!(v.factor, Some(FactorKind::Totp));
    w.idp.set_code(&sid("priv"), &fid("totp3"), "112233");
    let v = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("112233".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        (v.status, v.approved, v.required),
        (VerificationStatus::Pending, 1, 2)
    );
    let v = w
        .engine
        .continue_verification(&a, &ctx(), v.id, None)
        .await
        .unwrap();
    assert_eq!(
        v.factor,
        Some(FactorKind::Push),
        "the next factor is the one not yet proved"
    );
    let _ = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Verified, "{v:?}");
}

/// The provider says its pushes carry a number, but this push came back without one (an Okta org whose Okta
/// Verify sends plain approve/deny pushes): the approval is judged as a plain push. Under the default policy it
/// cannot verify a caller alone: a second, different factor is required and no grant is minted.
#[tokio::test]
async fn an_approved_push_that_came_back_without_a_number_does_not_verify_alone() {
    let w = world();
    w.idp.send_pushes_without_number();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap();
    assert_eq!(v.number, None, "no number to read out");
    let _ = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(
        (v.status, v.approved, v.required),
        (VerificationStatus::Pending, 1, 2),
        "{v:?}"
    );
    assert!(v.grant.is_none());
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
    // The TOTP code completes it.
    let v = w
        .engine
        .continue_verification(&a, &ctx(), v.id, None)
        .await
        .unwrap();
    assert_eq!(v.factor, Some(FactorKind::Totp));
    w.idp.set_code(&sid("alice"), &fid("totp1"), "135790");
    let v = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("135790".to_owned()))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Verified);
}

/// Under `push_without_number_matching = "refuse"`, a push that came back without a number counts for nothing.
#[tokio::test]
async fn under_refuse_a_push_without_a_number_counts_for_nothing() {
    let text = include_str!("../../../examples/policy.toml").replace(
        "push_without_number_matching = \"require_another_factor\"",
        "push_without_number_matching = \"refuse\"",
    );
    let w = world_with(Policy::parse(&text).unwrap());
    w.idp.send_pushes_without_number();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("push1")))
        .await
        .unwrap();
    let _ = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_ne!(v.status, VerificationStatus::Verified, "{v:?}");
    assert!(v.grant.is_none());
}
