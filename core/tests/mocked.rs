//! Failure cases over mockall mocks of the ports: the engine must fail closed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{TimeZone, Utc};
use fctr_core::policy::Policy;
use fctr_core::{Engine, Ports, Pseudonymizer, RequestContext};
use fctr_memory::{
    ManualClock, MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger,
};
use fctr_ports::mock::{MockAuditLog, MockIdentityProvider};
use fctr_ports::{
    AccountStatus, Action, ActionKind, AgentId, Capabilities, ChallengeHandle, ChallengeTicket,
    EventKind, FactorId, FactorInfo, FactorKind, FactorStatus, KeyId, Pii, PortError, Reason,
    RiskFacts, SealedEvent, SecretString, SubjectId, TenantId, UserRecord,
};
use fctr_testkit::{ScriptedIdp, ScriptedUser};
use std::sync::Arc;

fn push() -> FactorInfo {
    FactorInfo {
        id: FactorId::parse("push1").unwrap(),
        kind: FactorKind::Push,
        status: FactorStatus::Active,
        vendor: None,
        label: None,
    }
}

fn caps() -> Capabilities {
    Capabilities {
        provider: "mock".into(),
        push: true,
        push_number_matching: true,
        code_verification: true,
        name_search: true,
        actions: ActionKind::ALL.into_iter().collect(),
    }
}

fn engine(
    idp: Arc<dyn fctr_ports::IdentityProvider>,
    audit: Arc<dyn fctr_ports::AuditLog>,
    clock: ManualClock,
) -> Engine {
    let c: Arc<dyn fctr_ports::Clock> = Arc::new(clock);
    let ports = Ports {
        idp,
        audit,
        usage: Arc::new(MemoryUsageLedger::new()),
        grants: Arc::new(MemoryGrantStore::new(c.clone())),
        rate: Arc::new(MemoryRateLimiter::new(c.clone())),
        clock: c,
    };
    let pseudo = Pseudonymizer::new(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("k".repeat(32)),
    )
    .unwrap();
    Engine::new(
        ports,
        Arc::new(Policy::default()),
        pseudo,
        TenantId::parse("acme").unwrap(),
    )
}

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap())
}

#[tokio::test]
async fn idp_error_during_poll_mints_no_grant_and_no_action_runs() {
    let clock = clock();
    let now = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let mut idp = MockIdentityProvider::new();
    idp.expect_capabilities().returning(caps);
    idp.expect_groups().returning(|_| Ok(vec![]));
    idp.expect_list_factors().returning(|_| Ok(vec![push()]));
    idp.expect_start().times(1).returning(move |_, f, _| {
        Ok(ChallengeTicket {
            factor: f.id.clone(),
            handle: ChallengeHandle::new("h"),
            number: Some(17),
            expires_at: now + chrono::Duration::minutes(5),
        })
    });
    idp.expect_poll().times(2).returning(|_| {
        Err(PortError::Upstream {
            status: 502,
            code: None,
        })
    });
    idp.expect_execute().times(0);
    // The unlock reads the account's status fresh (the locked-out procedure): active, so it needs a grant.
    idp.expect_get_user().returning(|s| {
        Ok(UserRecord {
            id: s.clone(),
            login: Pii::new("x@example.com"),
            email: None,
            display_name: None,
            phone: None,
            status: AccountStatus::Active,
        })
    });
    let audit = Arc::new(MemoryAuditLog::new());
    let e = engine(Arc::new(idp), audit, clock);
    let agent = e.resolve_agent(AgentId::parse("a2").unwrap(), &["fctr-tier2".into()]);
    let ctx = RequestContext::default();
    let subject = SubjectId::parse("00u1").unwrap();
    let v = e
        .begin_verification(&agent, &ctx, &subject, None)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            e.poll_verification(&agent, &ctx, v.id)
                .await
                .unwrap_err()
                .reason,
            Reason::IdpError
        );
    }
    let d = e
        .perform_action(&agent, &ctx, &subject, Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
}

#[tokio::test]
async fn audit_append_failure_on_intent_stops_the_action() {
    let clock = clock();
    let idp = Arc::new(ScriptedIdp::new());
    idp.add_user(ScriptedUser {
        record: UserRecord {
            id: SubjectId::parse("00u1").unwrap(),
            login: Pii::new("x@example.com"),
            email: None,
            display_name: None,
            phone: None,
            status: AccountStatus::Active,
        },
        factors: vec![push()],
        groups: vec![],
        risk: RiskFacts::default(),
    });
    let mut audit = MockAuditLog::new();
    audit.expect_append().returning(|ev| {
        if ev.kind == EventKind::ActionIntent {
            Err(PortError::Unavailable)
        } else {
            Ok(SealedEvent::seal(fctr_ports::ChainHash::GENESIS, 0, ev))
        }
    });
    let e = engine(idp.clone(), Arc::new(audit), clock);
    let agent = e.resolve_agent(AgentId::parse("a2").unwrap(), &["fctr-tier2".into()]);
    let ctx = RequestContext::default();
    let subject = SubjectId::parse("00u1").unwrap();
    let v = e
        .begin_verification(&agent, &ctx, &subject, None)
        .await
        .unwrap();
    let _ = e.poll_verification(&agent, &ctx, v.id).await.unwrap();
    let v = e.poll_verification(&agent, &ctx, v.id).await.unwrap();
    assert!(v.grant.is_some());
    let d = e
        .perform_action(
            &agent,
            &ctx,
            &subject,
            Action::ClearSessions {
                revoke_oauth_tokens: true,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::AuditUnavailable);
    assert!(
        idp.executed().is_empty(),
        "an action whose intent was not written must not run"
    );
}

#[tokio::test]
async fn audit_failure_before_a_push_sends_no_push() {
    let mut idp = MockIdentityProvider::new();
    idp.expect_capabilities().returning(caps);
    idp.expect_groups().returning(|_| Ok(vec![]));
    idp.expect_list_factors().returning(|_| Ok(vec![push()]));
    idp.expect_start().times(0);
    let mut audit = MockAuditLog::new();
    audit
        .expect_append()
        .returning(|_| Err(PortError::Unavailable));
    let e = engine(Arc::new(idp), Arc::new(audit), clock());
    let agent = e.resolve_agent(AgentId::parse("a2").unwrap(), &["fctr-tier2".into()]);
    let d = e
        .begin_verification(
            &agent,
            &RequestContext::default(),
            &SubjectId::parse("00u1").unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::AuditUnavailable);
}
