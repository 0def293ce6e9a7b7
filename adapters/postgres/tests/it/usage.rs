//! The usage ledger: upserts, sorted reports, CSV and JSON.

use crate::common::*;
use fctr_ports::{Month, UsageKind, UsageLedger, UsageRecord};
use fctr_postgres::CSV_HEADER;

fn rec(t: &str, agent: u8, kind: UsageKind, count: u64) -> UsageRecord {
    UsageRecord {
        month: Month::parse("2026-11").unwrap(),
        tenant: tenant(t),
        agent: pseudo(agent),
        kind,
        count,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn record_adds_up_and_report_is_sorted() {
    let db = Db::new();
    let store = db.store().await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record(rec("globex", 1, UsageKind::Action, 2))
                .await
                .unwrap();
            store
                .record(rec("acme", 3, UsageKind::Verification, 1))
                .await
                .unwrap();
            store
                .record(rec("acme", 3, UsageKind::Action, 1))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store
        .record(rec("acme", 2, UsageKind::Action, 5))
        .await
        .unwrap();
    let mut other_month = rec("acme", 2, UsageKind::Action, 7);
    other_month.month = Month::parse("2026-12").unwrap();
    store.record(other_month).await.unwrap();

    let report = store
        .report(Month::parse("2026-11").unwrap())
        .await
        .unwrap();
    let rows: Vec<(String, u8, UsageKind, u64)> = report
        .iter()
        .map(|r| {
            let agent = (1..=3).find(|n| pseudo(*n) == r.agent).unwrap();
            (r.tenant.to_string(), agent, r.kind, r.count)
        })
        .collect();
    let mut expect = vec![
        ("acme".to_owned(), 2, UsageKind::Action, 5),
        ("acme".to_owned(), 3, UsageKind::Verification, 10),
        ("acme".to_owned(), 3, UsageKind::Action, 10),
        ("globex".to_owned(), 1, UsageKind::Action, 20),
    ];
    // Sorted by tenant, agent (pseudonym text) and kind (its declared order).
    expect.sort_by_key(|a| (a.0.clone(), pseudo(a.1), a.2));
    assert_eq!(rows, expect);
}

#[tokio::test]
async fn csv_and_json_reports_are_stable() {
    let db = Db::new();
    let store = db.store().await;
    store
        .record(rec("acme", 1, UsageKind::Verification, 3))
        .await
        .unwrap();
    let month = Month::parse("2026-11").unwrap();
    let csv = store.report_csv(month).await.unwrap();
    assert_eq!(CSV_HEADER, "month,tenant,agent,kind,count");
    assert_eq!(
        csv,
        format!(
            "month,tenant,agent,kind,count\n2026-11,acme,{},verification,3\n",
            pseudo(1)
        )
    );
    let json = store.report_json(month).await.unwrap();
    let back: Vec<UsageRecord> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, store.report(month).await.unwrap());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["month"], "2026-11");
    assert_eq!(v[0]["kind"], "verification");
    assert_eq!(v[0]["count"], 3);

    let empty = store
        .report_csv(Month::parse("2020-01").unwrap())
        .await
        .unwrap();
    assert_eq!(empty, "month,tenant,agent,kind,count\n");
}
