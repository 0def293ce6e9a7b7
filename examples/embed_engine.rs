//! Embedding the fctr engine: in-memory ports, a scripted identity provider, and the whole flow of one call.
//!
//! Run it with `cargo run -p fctr-core --example embed_engine`. Replace `ScriptedIdp` (a test double from
//! `fctr-testkit`) with `fctr_okta::OktaAdapter` (or your own `IdentityProvider`) and `MemoryAuditLog` with
//! `fctr_sqlite::SqliteStore` for a real deployment, or let `fctr_wiring::Stack::from_config` build all of it from
//! the deployment configuration file.
#![allow(clippy::print_stdout)]

use fctr_core::policy::Policy;
use fctr_core::{ActionRequest, Engine, Pseudonymizer, RequestContext};
use fctr_memory::{MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger};
use fctr_ports::{
    AccountStatus, ActionKind, AgentId, AuditLog, AuditQuery, ExposeSecret, FactorId, FactorInfo,
    FactorKind, FactorStatus, KeyId, Pii, RiskFacts, SecretString, SubjectId, SystemClock,
    TenantId, UserQuery, UserRecord,
};
use fctr_testkit::{ScriptedIdp, ScriptedUser};
use std::error::Error;
use std::sync::Arc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // 1. An identity provider. Here a scripted one with one caller who has Okta Verify push and TOTP.
    let idp = Arc::new(ScriptedIdp::new());
    let caller = SubjectId::parse("00u-demo-caller")?;
    idp.add_user(ScriptedUser {
        record: UserRecord {
            id: caller.clone(),
            login: Pii::new("pat.caller@example.com"),
            email: Some(Pii::new("pat.caller@example.com")),
            display_name: Some(Pii::new("Pat Caller")),
            phone: None,
            status: AccountStatus::LockedOut,
        },
        factors: vec![
            FactorInfo {
                id: FactorId::parse("opf-push")?,
                kind: FactorKind::Push,
                status: FactorStatus::Active,
                vendor: None,
                label: None,
            },
            FactorInfo {
                id: FactorId::parse("ost-totp")?,
                kind: FactorKind::Totp,
                status: FactorStatus::Active,
                vendor: None,
                label: None,
            },
        ],
        groups: vec![],
        risk: RiskFacts {
            locked_out: true,
            ..RiskFacts::default()
        },
    });

    // 2. Stores and clock (in-memory: a single node), policy and pseudonymizer key.
    let clock: Arc<dyn fctr_ports::Clock> = Arc::new(SystemClock);
    let audit = Arc::new(MemoryAuditLog::new());
    let key = SecretString::from("example-only-key-use-32-random-bytes!!".to_owned());
    let engine = Engine::builder()
        .idp(idp.clone())
        .audit(audit.clone())
        .usage(Arc::new(MemoryUsageLedger::new()))
        .grants(Arc::new(MemoryGrantStore::new(clock.clone())))
        .rate(Arc::new(MemoryRateLimiter::new(clock.clone())))
        .clock(clock)
        .policy(Policy::default())
        .pseudonymizer(Pseudonymizer::new(KeyId::parse("k1")?, &key)?)
        .tenant(TenantId::parse("example")?)
        .build()?;
    engine.announce_policy().await?;
    let ctx = RequestContext::default();

    // 3. An agent signs in; policy maps the IdP group to a role.
    let agent = engine
        .sign_in(
            AgentId::parse("00u-agent-tier2")?,
            &["fctr-tier2".to_owned()],
            &ctx,
        )
        .await?;
    println!("agent signed in with role {:?}", agent.role());

    // 4. Look the caller up.
    let found = engine
        .search(&agent, &ctx, &UserQuery::login("pat.caller@example.com")?)
        .await?;
    println!("search found {} caller(s)", found.len());
    let card = engine.lookup(&agent, &ctx, &caller).await?;
    println!(
        "caller status {}, {} factor(s), recommended {:?}",
        card.user.status,
        card.factors.len(),
        card.recommended_factor
    );
    for a in card.actions.iter().filter(|a| a.permitted_for_role) {
        println!("  may {}: {}", a.kind, a.explanation.lines.join(" "));
    }

    // 5. An action before verification is refused, with a reason. A request says only what the agent asked for:
    // the engine decides its terms (a Temporary Access Pass's lifetime comes from policy, for instance).
    let unlock = ActionRequest::new(ActionKind::Unlock, None)?;
    match engine
        .perform_action(&agent, &ctx, &caller, unlock.clone())
        .await
    {
        Ok(_) => println!("unexpected: unlocked without verification"),
        Err(d) => println!(
            "refused before verification: {} -> {}",
            d.reason,
            d.remedy()
        ),
    }

    // 6. Verify: push with number matching; the scripted phone approves on the second poll.
    let v = engine
        .begin_verification(&agent, &ctx, &caller, None)
        .await?;
    println!("push sent: ask the caller to pick {:?}", v.number);
    let mut v = engine.poll_verification(&agent, &ctx, v.id).await?;
    while !v.status.is_final() && v.grant.is_none() {
        v = engine.poll_verification(&agent, &ctx, v.id).await?;
    }
    let grant = v.grant.ok_or("verification did not complete")?;
    println!(
        "verified: {} (grant until {}, single use: {})",
        grant.assurance, grant.expires_at, grant.single_use
    );

    // 7. Act under the grant. A one-time secret is shown once and then dropped (zeroized).
    let out = engine
        .perform_action(
            &agent,
            &ctx,
            &caller,
            ActionRequest::new(ActionKind::ResetPassword, None)?,
        )
        .await?;
    if let Some(secret) = out.receipt.secret {
        println!(
            "one-time {:?} to hand over: {} characters (shown once)",
            secret.kind,
            secret.value.expose_secret().len()
        );
    }
    match engine.perform_action(&agent, &ctx, &caller, unlock).await {
        Ok(_) => println!("unexpected: the single-use grant worked twice"),
        Err(d) => println!("second action refused: {} -> {}", d.reason, d.remedy()),
    }

    // 8. The audit trail: pseudonyms only, hash-chained.
    let events = audit.read(&AuditQuery::default()).await?;
    for e in &events {
        println!(
            "audit #{:>2} {:<18} {:?} reason={:?}",
            e.seq,
            e.event.kind.as_str(),
            e.event.outcome,
            e.event.reason
        );
    }
    let verdict = audit.verify_chain().await?;
    println!(
        "audit chain: {}",
        if verdict.is_ok() { "intact" } else { "BROKEN" }
    );
    Ok(())
}
