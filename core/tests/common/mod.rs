//! Shared test world: an engine over in-memory ports and a scripted IdP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{TimeZone, Utc};
use fctr_core::policy::Policy;
use fctr_core::{Agent, Engine, Ports, Pseudonymizer, RequestContext};
use fctr_memory::{
    ManualClock, MemoryApprovalStore, MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter,
    MemoryUsageLedger,
};
use fctr_ports::{
    AccountStatus, AgentId, AuditLog, AuditQuery, FactorId, FactorInfo, FactorKind, FactorStatus,
    GroupRef, KeyId, Outcome, Pii, Reason, RiskFacts, SecretString, SubjectId, TenantId,
    UserRecord, VerificationStatus,
};
use fctr_testkit::{ScriptedIdp, ScriptedUser};
use std::sync::Arc;

pub struct World {
    pub engine: Arc<Engine>,
    /// Every alert the engine delivered.
    pub alerts: Arc<RecordingSink>,
    pub idp: Arc<ScriptedIdp>,
    pub audit: Arc<MemoryAuditLog>,
    pub clock: ManualClock,
}

/// An alert sink that keeps what it is given.
#[derive(Default)]
pub struct RecordingSink {
    pub got: std::sync::Mutex<Vec<fctr_ports::Alert>>,
    /// When set, every delivery fails.
    pub fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl fctr_ports::AlertSink for RecordingSink {
    async fn deliver(&self, alert: &fctr_ports::Alert) -> Result<(), fctr_ports::PortError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(fctr_ports::PortError::Unavailable);
        }
        self.got.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

impl RecordingSink {
    /// The rules of the alerts delivered so far.
    pub fn rules(&self) -> Vec<fctr_ports::AlertRule> {
        self.got.lock().unwrap().iter().map(|a| a.rule).collect()
    }
}

pub fn sid(s: &str) -> SubjectId {
    SubjectId::parse(s).unwrap()
}

pub fn fid(s: &str) -> FactorId {
    FactorId::parse(s).unwrap()
}

fn factor(id: &str, kind: FactorKind) -> FactorInfo {
    FactorInfo {
        id: fid(id),
        kind,
        status: FactorStatus::Active,
        vendor: Some("OKTA".into()),
        label: None,
    }
}

pub fn user(id: &str, factors: Vec<FactorInfo>, groups: &[&str]) -> ScriptedUser {
    ScriptedUser {
        record: UserRecord {
            id: sid(id),
            login: Pii::new(format!("{id}@example.com")),
            email: Some(Pii::new(format!("{id}@example.com"))),
            display_name: Some(Pii::new(format!("User {id}"))),
            phone: None,
            status: AccountStatus::Active,
        },
        factors,
        groups: groups
            .iter()
            .map(|g| GroupRef {
                id: format!("g-{g}"),
                name: (*g).to_owned(),
            })
            .collect(),
        risk: RiskFacts::default(),
    }
}

pub fn world_with(policy: Policy) -> World {
    world_with_caps(policy, |_| {})
}

/// A world whose IdP capabilities are adjusted by `f`.
pub fn world_with_caps(policy: Policy, f: impl FnOnce(&mut fctr_ports::Capabilities)) -> World {
    world_wrapped(policy, f, |_| {})
}

/// A world whose IdP capabilities are adjusted by `f` and whose ports are replaced by `wrap` (test doubles that
/// wrap the in-memory ones) before the engine is built.
pub fn world_wrapped(
    policy: Policy,
    f: impl FnOnce(&mut fctr_ports::Capabilities),
    wrap: impl FnOnce(&mut Ports),
) -> World {
    world_full(policy, f, wrap, |a| a)
}

/// As [`world_wrapped`], with the four-eyes approval store (in memory) replaced by `approvals` (a test double
/// that wraps it).
pub fn world_full(
    policy: Policy,
    f: impl FnOnce(&mut fctr_ports::Capabilities),
    wrap: impl FnOnce(&mut Ports),
    approvals: impl FnOnce(Arc<dyn fctr_ports::ApprovalStore>) -> Arc<dyn fctr_ports::ApprovalStore>,
) -> World {
    world_engine(policy, f, wrap, approvals, |e| e)
}

/// As [`world_full`], with the engine changed by `tweak` before it is shared (sign-in links, for one).
pub fn world_engine(
    policy: Policy,
    f: impl FnOnce(&mut fctr_ports::Capabilities),
    wrap: impl FnOnce(&mut Ports),
    approvals: impl FnOnce(Arc<dyn fctr_ports::ApprovalStore>) -> Arc<dyn fctr_ports::ApprovalStore>,
    tweak: impl FnOnce(Engine) -> Engine,
) -> World {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap());
    let c: Arc<dyn fctr_ports::Clock> = Arc::new(clock.clone());
    let mut caps = fctr_ports::IdentityProvider::capabilities(&ScriptedIdp::new());
    f(&mut caps);
    let idp = Arc::new(
        ScriptedIdp::new()
            .with_clock(c.clone())
            .with_capabilities(caps),
    );
    idp.add_user(user(
        "alice",
        vec![
            factor("push1", FactorKind::Push),
            factor("totp1", FactorKind::Totp),
        ],
        &["Staff"],
    ));
    idp.add_user(user(
        "bob",
        vec![
            factor("push2", FactorKind::Push),
            factor("totp2", FactorKind::Totp),
        ],
        &["Staff"],
    ));
    idp.add_user(user(
        "priv",
        vec![
            factor("push3", FactorKind::Push),
            factor("totp3", FactorKind::Totp),
        ],
        &["fctr-privileged"],
    ));
    idp.add_user(user(
        "root",
        vec![factor("push4", FactorKind::Push)],
        &["fctr-protected"],
    ));
    idp.add_user(user(
        "smsy",
        vec![
            factor("sms5", FactorKind::Sms),
            factor("push5", FactorKind::Push),
        ],
        &[],
    ));
    let audit = Arc::new(MemoryAuditLog::new());
    let mut ports = Ports {
        idp: idp.clone(),
        audit: audit.clone(),
        usage: Arc::new(MemoryUsageLedger::new()),
        grants: Arc::new(MemoryGrantStore::new(c.clone())),
        rate: Arc::new(MemoryRateLimiter::new(c.clone())),
        clock: c.clone(),
    };
    let approvals = approvals(Arc::new(MemoryApprovalStore::new(c)));
    wrap(&mut ports);
    let pseudo = Pseudonymizer::new(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("test-key-0123456789-0123456789-0123456789".to_owned()),
    )
    .unwrap();
    let alerts = Arc::new(RecordingSink::default());
    let engine = Arc::new(tweak(
        Engine::new(
            ports,
            Arc::new(policy),
            pseudo,
            TenantId::parse("acme").unwrap(),
        )
        .with_alert_sink(alerts.clone())
        .with_approvals(approvals),
    ));
    World {
        engine,
        alerts,
        idp,
        audit,
        clock,
    }
}

pub fn world() -> World {
    world_with(Policy::default())
}

pub fn ctx() -> RequestContext {
    RequestContext {
        request_id: None,
        client_ip: Some("198.51.100.23".parse().unwrap()),
        ticket: None,
    }
}

impl World {
    pub fn agent(&self, name: &str, group: &str) -> Agent {
        self.engine
            .resolve_agent(AgentId::parse(name).unwrap(), &[group.to_owned()])
    }

    /// Verifies `subject` by push for `agent` (push approved on the second poll).
    pub async fn verify_push(&self, agent: &Agent, subject: &str) {
        let v = self
            .engine
            .begin_verification(agent, &ctx(), &sid(subject), None)
            .await
            .unwrap();
        assert_eq!(v.status, VerificationStatus::Challenged);
        let v = self
            .engine
            .poll_verification(agent, &ctx(), v.id)
            .await
            .unwrap();
        assert_eq!(v.status, VerificationStatus::Challenged);
        let v = self
            .engine
            .poll_verification(agent, &ctx(), v.id)
            .await
            .unwrap();
        assert_eq!(v.status, VerificationStatus::Verified, "{v:?}");
    }

    pub async fn events(&self) -> Vec<fctr_ports::AuditEvent> {
        self.audit
            .read(&AuditQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.event)
            .collect()
    }

    /// The last event carries this reason.
    pub async fn assert_audited(&self, reason: Reason) {
        let events = self.events().await;
        let last = events.last().expect("an audit event");
        assert_eq!(last.reason, Some(reason), "last event {last:?}");
        assert!(matches!(
            last.outcome,
            Outcome::Denied | Outcome::Rejected | Outcome::Failed
        ));
    }
}
pub mod gate;
