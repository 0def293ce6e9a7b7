//! Engine benchmarks: `cargo bench -p fctr-core --bench engine`.
//!
//! - `policy_decision`: one pure policy decision (role permission, target class and protection, factor check with
//!   no-downgrade) — target under 2 µs.
//! - `perform_action`: a full `perform_action` (authorize, protection, grant lookup and single-use take, audit
//!   intent and outcome, the IdP call, usage) over in-memory ports and a scripted IdP — target under 30 µs.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use fctr_core::policy::Policy;
use fctr_core::{Engine, Pseudonymizer, RequestContext};
use fctr_memory::{
    ManualClock, MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger,
};
use fctr_ports::{
    AccountStatus, Action, ActionKind, AgentId, Capabilities, FactorId, FactorInfo, FactorKind,
    FactorStatus, GroupRef, KeyId, Pii, RiskFacts, SecretString, SubjectId, TenantId, UserRecord,
};
use fctr_testkit::{ScriptedIdp, ScriptedUser};
use std::sync::Arc;

fn caps() -> Capabilities {
    Capabilities {
        provider: "bench".into(),
        push: true,
        push_number_matching: true,
        code_verification: true,
        name_search: true,
        actions: ActionKind::ALL.into_iter().collect(),
    }
}

fn policy_decision(c: &mut Criterion) {
    let policy = Policy::default();
    let caps = caps();
    let groups = vec![
        GroupRef {
            id: "00g1".into(),
            name: "Everyone".into(),
        },
        GroupRef {
            id: "00g2".into(),
            name: "Sales".into(),
        },
        GroupRef {
            id: "00g3".into(),
            name: "EMEA".into(),
        },
    ];
    let enrolled = vec![FactorKind::Push, FactorKind::Totp, FactorKind::Sms];
    let agent_groups = vec!["Everyone".to_owned(), "fctr-tier2".to_owned()];
    c.bench_function("policy_decision", |b| {
        b.iter(|| {
            let role = policy
                .role_for_groups(black_box(&agent_groups))
                .expect("role");
            let ok = policy.permits(role, fctr_core::policy::Permission::Verify)
                && !policy.is_protected(black_box(&groups));
            let class = policy.classify(black_box(&groups));
            let decision = policy.check_factor(
                class,
                black_box(&FactorKind::Push),
                black_box(&enrolled),
                &caps,
            );
            black_box((ok, decision.is_ok()))
        });
    });
}

fn perform_action(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A manual clock moved 37 s per iteration keeps each caller under the per-target challenge limit (at most
    // 100 in any hour) however many iterations criterion runs.
    let manual = ManualClock::new(chrono::Utc::now());
    let clock: Arc<dyn fctr_ports::Clock> = Arc::new(manual.clone());
    let idp = Arc::new(ScriptedIdp::new());
    let subject = SubjectId::parse("00ubench").expect("id");
    idp.add_user(ScriptedUser {
        record: UserRecord {
            id: subject.clone(),
            login: Pii::new("bench@example.com"),
            email: None,
            display_name: None,
            phone: None,
            status: AccountStatus::Active,
        },
        factors: vec![FactorInfo {
            id: FactorId::parse("push").expect("id"),
            kind: FactorKind::Push,
            status: FactorStatus::Active,
            vendor: None,
            label: None,
        }],
        groups: vec![GroupRef {
            id: "00g1".into(),
            name: "Everyone".into(),
        }],
        risk: RiskFacts::default(),
    });
    idp.script_push([fctr_ports::ChallengeState::Approved]);
    let pseudo = Pseudonymizer::new(
        KeyId::parse("k1").expect("key id"),
        &SecretString::from("b".repeat(32)),
    )
    .expect("key");
    // Generous limits: the bench verifies the same caller many times.
    let text = include_str!("../../examples/policy.toml")
        .replace(
            "challenges_per_target_per_hour = 5",
            "challenges_per_target_per_hour = 100",
        )
        .replace(
            "challenges_per_agent_per_hour = 60",
            "challenges_per_agent_per_hour = 10000",
        );
    let policy = Policy::parse(&text).expect("policy");
    let engine = Engine::builder()
        .idp(idp)
        .audit(Arc::new(MemoryAuditLog::new()))
        .usage(Arc::new(MemoryUsageLedger::new()))
        .grants(Arc::new(MemoryGrantStore::new(clock.clone())))
        .rate(Arc::new(MemoryRateLimiter::new(clock.clone())))
        .clock(clock)
        .policy(policy)
        .pseudonymizer(pseudo)
        .tenant(TenantId::parse("bench").expect("tenant"))
        .build()
        .expect("engine");
    let agent = engine.resolve_agent(
        AgentId::parse("agent").expect("id"),
        &["fctr-tier2".to_owned()],
    );
    let ctx = RequestContext::default();
    c.bench_function("perform_action", |b| {
        b.iter_batched(
            || {
                manual.advance(chrono::Duration::seconds(37));
                rt.block_on(async {
                    let v = engine
                        .begin_verification(&agent, &ctx, &subject, None)
                        .await
                        .expect("begin");
                    let v = engine
                        .poll_verification(&agent, &ctx, v.id)
                        .await
                        .expect("poll");
                    assert!(v.grant.is_some(), "verified");
                });
            },
            |()| {
                rt.block_on(async {
                    let out = engine
                        .perform_action(&agent, &ctx, &subject, Action::Unlock)
                        .await;
                    black_box(out.expect("action ran"));
                });
            },
            BatchSize::PerIteration,
        );
    });
}

criterion_group!(benches, policy_decision, perform_action);
criterion_main!(benches);
