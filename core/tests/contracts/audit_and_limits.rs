//! Engine contracts: the engine's parts, refusals and their audit, the lockout, held usage, session and edge events.

use super::*;

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
