//! Shared fixtures.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use fctr_ports::{
    ActionKind, AuditEvent, EventKind, FactorKind, GrantId, GrantRecord, KeyId, Outcome, PseudoId,
    SubjectId, TenantId, VerificationId, VerificationRecord, VerificationStatus,
};
use std::collections::BTreeSet;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap()
}

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// A distinct pseudonym per `n`.
pub fn pseudo(n: u8) -> PseudoId {
    PseudoId::from_mac(&KeyId::parse("k1").unwrap(), &[n; 16]).unwrap()
}

pub fn event(tenant_name: &str, at: DateTime<Utc>, kind: EventKind) -> AuditEvent {
    AuditEvent::new(tenant(tenant_name), at, kind, Outcome::Success)
}

/// An event `minutes` after `t0`.
pub fn event_at(tenant_name: &str, minutes: i64) -> AuditEvent {
    event(
        tenant_name,
        t0() + TimeDelta::minutes(minutes),
        EventKind::Lookup,
    )
}

pub fn verification(version: u64) -> VerificationRecord {
    VerificationRecord {
        id: VerificationId::random(),
        tenant: tenant("acme"),
        agent: pseudo(1),
        subject: SubjectId::parse("00u1abc").unwrap(),
        subject_pseudo: pseudo(2),
        status: VerificationStatus::Pending,
        challenge: None,
        approved: Vec::new(),
        required_factors: 1,
        privileged: Some(false),
        created_at: t0(),
        expires_at: t0() + TimeDelta::minutes(10),
        grant: None,
        ended_by: None,
        version,
    }
}

pub fn grant(agent: u8, subject: u8) -> GrantRecord {
    GrantRecord {
        id: GrantId::random(),
        tenant: tenant("acme"),
        verification: VerificationId::random(),
        agent: pseudo(agent),
        subject: pseudo(subject),
        actions: BTreeSet::from([ActionKind::ResetPassword]),
        factors: vec![FactorKind::Push],
        issued_at: t0(),
        expires_at: t0() + TimeDelta::minutes(10),
        single_use: true,
    }
}

pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap()
}

pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Compile-time check that a store can be shared as `Arc<dyn Port>` across threads.
pub fn assert_send_sync<T: Send + Sync + ?Sized>() {}
