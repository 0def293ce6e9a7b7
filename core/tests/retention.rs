//! Retention: audit events older than 30 days and usage older than 3 years are purged, each purge audited, and
//! the retained audit chain still verifies. A manual clock proves each boundary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use chrono::Duration;
use common::world;
use fctr_ports::{AuditDetail, AuditLog, AuditQuery, EventKind, Month, UsageLedger, UsageRecord};

#[tokio::test]
async fn audit_is_kept_30_days_and_usage_3_years() {
    let w = world();
    let start = fctr_ports::Clock::now(&w.clock);
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await; // challenge started, challenge result, grant issued: all at `start`

    // One microsecond short of 30 days: nothing is old enough.
    w.clock
        .advance(Duration::days(30) - Duration::microseconds(1));
    let (audit_removed, usage_removed) = w.engine.purge_expired().await.unwrap();
    assert_eq!((audit_removed, usage_removed), (0, 0));

    // Exactly 30 days: the cut-off is exclusive, so an event exactly 30 days old is kept.
    w.clock.advance(Duration::microseconds(1));
    let (audit_removed, _) = w.engine.purge_expired().await.unwrap();
    assert_eq!(audit_removed, 0, "an event exactly 30 days old is kept");

    w.clock.advance(Duration::microseconds(1));
    let (audit_removed, _) = w.engine.purge_expired().await.unwrap();
    assert_eq!(audit_removed, 3, "the flow's three events went");

    let events = w.audit.read(&AuditQuery::default()).await.unwrap();
    assert!(
        events.iter().all(|e| e.event.at > start),
        "nothing older than the cut-off remains"
    );
    let purges: Vec<_> = events
        .iter()
        .filter_map(|e| match (&e.event.kind, &e.event.detail) {
            (
                EventKind::Purge,
                Some(AuditDetail::Purge {
                    store,
                    removed,
                    before,
                }),
            ) => Some((store.clone(), *removed, *before)),
            _ => None,
        })
        .collect();
    assert!(
        purges
            .iter()
            .any(|(s, n, _)| s == "audit" && *n == audit_removed),
        "each purge is audited: {purges:?}"
    );
    assert!(purges.iter().any(|(s, _, _)| s == "usage"));
    assert!(
        w.audit.verify_chain().await.unwrap().is_ok(),
        "the retained chain verifies from its anchor"
    );
}

#[tokio::test]
async fn usage_boundary_is_three_years() {
    let w = world();
    let start = fctr_ports::Clock::now(&w.clock);
    let ledger = std::sync::Arc::new(fctr_memory::MemoryUsageLedger::new());
    ledger
        .record(UsageRecord {
            month: Month::of(start),
            tenant: w.engine.tenant().clone(),
            agent: fctr_ports::PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            kind: fctr_ports::UsageKind::Action,
            count: 3,
        })
        .await
        .unwrap();
    let retention = w.engine.retention();
    assert_eq!(retention.usage, Duration::days(3 * 365));
    assert_eq!(retention.audit, Duration::days(30));
    assert_eq!(retention.runtime_logs, Duration::days(1));
    // The ledger keeps a month until the cut-off passes the month's end.
    let kept = ledger
        .purge_before(start + Duration::days(20))
        .await
        .unwrap();
    assert_eq!(kept.removed, 0);
    let gone = ledger
        .purge_before(start + retention.usage + Duration::days(31))
        .await
        .unwrap();
    assert_eq!(gone.removed, 1);
}
