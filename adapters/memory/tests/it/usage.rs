use crate::support::{assert_send_sync, multi_thread, pseudo, tenant};
use chrono::{TimeDelta, TimeZone, Utc};
use fctr_memory::{ManualClock, MemoryUsageLedger};
use fctr_ports::{Clock, Month, UsageKind, UsageLedger, UsageRecord};
use std::sync::Arc;

fn rec(month: &str, tenant_name: &str, agent: u8, kind: UsageKind, count: u64) -> UsageRecord {
    UsageRecord {
        month: Month::parse(month).unwrap(),
        tenant: tenant(tenant_name),
        agent: pseudo(agent),
        kind,
        count,
    }
}

fn months(report: &[UsageRecord]) -> Vec<(String, String, u64)> {
    report
        .iter()
        .map(|r| (r.tenant.to_string(), r.agent.to_string(), r.count))
        .collect()
}

#[tokio::test]
async fn sums_per_month_tenant_agent_kind_and_reports_sorted() {
    assert_send_sync::<MemoryUsageLedger>();
    let ledger: Arc<dyn UsageLedger> = Arc::new(MemoryUsageLedger::new());
    // Inserted out of order on purpose.
    for r in [
        rec("2026-03", "zeta", 1, UsageKind::Verification, 1),
        rec("2026-03", "acme", 2, UsageKind::Action, 4),
        rec("2026-03", "acme", 1, UsageKind::Action, 2),
        rec("2026-03", "acme", 1, UsageKind::Verification, 1),
        rec("2026-03", "acme", 1, UsageKind::Verification, 5),
        rec("2026-04", "acme", 1, UsageKind::Verification, 100),
        rec("2026-03", "acme", 3, UsageKind::Action, 0),
    ] {
        ledger.record(r).await.unwrap();
    }
    let report = ledger
        .report(Month::parse("2026-03").unwrap())
        .await
        .unwrap();
    assert_eq!(
        report,
        vec![
            rec("2026-03", "acme", 1, UsageKind::Verification, 6),
            rec("2026-03", "acme", 1, UsageKind::Action, 2),
            rec("2026-03", "acme", 2, UsageKind::Action, 4),
            rec("2026-03", "zeta", 1, UsageKind::Verification, 1),
        ],
        "summed, sorted by tenant, agent, kind; a zero count adds no row"
    );
    assert!(
        ledger
            .report(Month::parse("2026-05").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn counts_saturate() {
    let ledger = MemoryUsageLedger::new();
    ledger
        .record(rec("2026-03", "acme", 1, UsageKind::Action, u64::MAX))
        .await
        .unwrap();
    ledger
        .record(rec("2026-03", "acme", 1, UsageKind::Action, 5))
        .await
        .unwrap();
    let r = ledger
        .report(Month::parse("2026-03").unwrap())
        .await
        .unwrap();
    assert_eq!(r[0].count, u64::MAX);
}

async fn seeded() -> MemoryUsageLedger {
    let ledger = MemoryUsageLedger::new();
    for (m, a) in [
        ("2025-12", 1),
        ("2026-01", 1),
        ("2026-01", 2),
        ("2026-02", 1),
        ("2026-03", 1),
    ] {
        ledger
            .record(rec(m, "acme", a, UsageKind::Verification, 1))
            .await
            .unwrap();
    }
    ledger
}

async fn present(ledger: &MemoryUsageLedger) -> Vec<&'static str> {
    let mut out = Vec::new();
    for m in ["2025-12", "2026-01", "2026-02", "2026-03"] {
        if !ledger
            .report(Month::parse(m).unwrap())
            .await
            .unwrap()
            .is_empty()
        {
            out.push(m);
        }
    }
    out
}

#[tokio::test]
async fn purge_deletes_months_that_end_before_the_cutoff() {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());

    // Exactly at the start of March: February has ended, so it goes; March stays.
    let ledger = seeded().await;
    let report = ledger.purge_before(clock.now()).await.unwrap();
    assert_eq!(report.removed, 4, "Dec (1 row), Jan (2 rows), Feb (1 row)");
    assert!(report.anchors.is_empty());
    assert_eq!(present(&ledger).await, vec!["2026-03"]);

    // One microsecond earlier: February has not ended yet.
    let ledger = seeded().await;
    clock.advance(TimeDelta::microseconds(-1));
    let report = ledger.purge_before(clock.now()).await.unwrap();
    assert_eq!(report.removed, 3);
    assert_eq!(present(&ledger).await, vec!["2026-02", "2026-03"]);

    // Across a year boundary: the start of 2026 removes December 2025 only.
    let ledger = seeded().await;
    clock.set(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    assert_eq!(ledger.purge_before(clock.now()).await.unwrap().removed, 1);
    assert_eq!(
        present(&ledger).await,
        vec!["2026-01", "2026-02", "2026-03"]
    );
    // Idempotent.
    assert_eq!(ledger.purge_before(clock.now()).await.unwrap().removed, 0);
    assert_eq!(
        present(&ledger).await,
        vec!["2026-01", "2026-02", "2026-03"]
    );
}

#[test]
fn concurrent_records_are_all_counted() {
    let ledger = Arc::new(MemoryUsageLedger::new());
    multi_thread().block_on(async {
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    for _ in 0..250 {
                        ledger
                            .record(rec("2026-03", "acme", i % 2, UsageKind::Action, 1))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let report = ledger
            .report(Month::parse("2026-03").unwrap())
            .await
            .unwrap();
        assert_eq!(
            months(&report),
            vec![
                ("acme".into(), pseudo(0).to_string(), 2000),
                ("acme".into(), pseudo(1).to_string(), 2000),
            ]
        );
    });
}
