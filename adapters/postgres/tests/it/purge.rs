//! Retention: audit purges move the anchor and keep the chain verifiable; usage purges drop whole months.

use crate::common::*;
use chrono::{TimeZone, Utc};
use fctr_ports::{
    AuditLog, AuditQuery, ChainAnchor, EventKind, Month, PortError, UsageKind, UsageLedger,
    UsageRecord,
};

#[tokio::test]
async fn audit_purge_removes_the_old_prefix_and_anchors_the_rest() {
    let db = Db::new();
    let store = db.store().await;
    let acme = append_n(&store, "acme", 0, 10).await; // at 0..=9
    let mut globex = append_n(&store, "globex", 0, 5).await; // at 0..=4
    globex.extend(append_n(&store, "globex", 20, 5).await); // at 20..=24
    store.checkpoint().await.unwrap();

    let report = AuditLog::purge_before(&store, at(5)).await.unwrap();
    assert_eq!(report.removed, 10);
    let mut anchors = report.anchors.clone();
    anchors.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    assert_eq!(
        anchors,
        vec![
            ChainAnchor {
                tenant: tenant("acme"),
                seq: 5,
                prev_hash: acme[4].hash
            },
            ChainAnchor {
                tenant: tenant("globex"),
                seq: 5,
                prev_hash: globex[4].hash
            },
        ]
    );
    // The event at exactly the cut-off is kept.
    let left = store.read(&AuditQuery::default()).await.unwrap();
    assert_eq!(left.len(), 10);
    assert!(left.iter().all(|s| s.event.at >= at(5)));
    assert!(left.iter().any(|s| s.event.at == at(5)));
    let summary = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 10);

    // Idempotent.
    let again = AuditLog::purge_before(&store, at(5)).await.unwrap();
    assert_eq!((again.removed, again.anchors.len()), (0, 0));

    // The chain continues after the purge, across a reopen.
    store.close().await;
    let store = db.store().await;
    let next = store
        .append(event("acme", 50, EventKind::Login))
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash), (10, acme[9].hash));
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 11);
}

#[tokio::test]
async fn purging_a_whole_chain_keeps_its_position() {
    let db = Db::new();
    let store = db.store().await;
    let acme = append_n(&store, "acme", 0, 4).await;
    store.checkpoint().await.unwrap();
    let r = AuditLog::purge_before(&store, at(1000)).await.unwrap();
    assert_eq!(r.removed, 4);
    assert_eq!(r.anchors[0].seq, 4);
    assert_eq!(r.anchors[0].prev_hash, acme[3].hash);
    assert!(store.verify_chain().await.unwrap().is_ok());
    store.close().await;
    let store = db.store().await;
    let next = store
        .append(event("acme", 2000, EventKind::Login))
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash), (4, acme[3].hash));
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 1);
}

#[tokio::test]
async fn a_purge_never_launders_a_broken_prefix() {
    let db = Db::new();
    let store = db.store().await;
    append_n(&store, "acme", 0, 10).await;
    let mut raw = db.raw().await;
    sqlx::query("DELETE FROM audit_events WHERE tenant = 'acme' AND seq = 2")
        .execute(&mut raw)
        .await
        .unwrap();
    let r = AuditLog::purge_before(&store, at(5)).await;
    assert!(matches!(r, Err(PortError::InvalidState)), "{r:?}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(left, 9, "nothing was deleted");
    let b = store.verify_chain().await.unwrap().unwrap_err();
    assert_eq!(b.position, 2);
}

#[tokio::test]
async fn a_purge_refuses_when_time_columns_were_edited() {
    let db = Db::new();
    let store = db.store().await;
    append_n(&store, "acme", 0, 10).await;
    let mut raw = db.raw().await;
    // Make recent events look old to the index, to get them purged.
    sqlx::query("UPDATE audit_events SET at = '2000-01-01T00:00:00.000000Z' WHERE seq >= 5")
        .execute(&mut raw)
        .await
        .unwrap();
    let r = AuditLog::purge_before(&store, at(5)).await;
    assert!(matches!(r, Err(PortError::InvalidState)), "{r:?}");
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 10);
}

fn rec(month: &str, t: &str, agent: u8, kind: UsageKind, count: u64) -> UsageRecord {
    UsageRecord {
        month: Month::parse(month).unwrap(),
        tenant: tenant(t),
        agent: pseudo(agent),
        kind,
        count,
    }
}

#[tokio::test]
async fn usage_purge_drops_whole_months_before_the_month_of_the_cut_off() {
    let db = Db::new();
    let store = db.store().await;
    for m in ["2026-09", "2026-10", "2026-11"] {
        store
            .record(rec(m, "acme", 1, UsageKind::Action, 1))
            .await
            .unwrap();
        store
            .record(rec(m, "acme", 2, UsageKind::Verification, 1))
            .await
            .unwrap();
    }
    // The last instant of October removes September only.
    let t = Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap();
    let r = UsageLedger::purge_before(&store, t).await.unwrap();
    assert_eq!(r.removed, 2);
    assert!(
        store
            .report(Month::parse("2026-09").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .report(Month::parse("2026-10").unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
    // The first instant of November removes October.
    let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    let r = UsageLedger::purge_before(&store, t).await.unwrap();
    assert_eq!(r.removed, 2);
    assert!(r.anchors.is_empty());
    assert_eq!(
        store
            .report(Month::parse("2026-11").unwrap())
            .await
            .unwrap()
            .len(),
        2
    );
}

/// With the whole chain purged and its head row gone, the head is rebuilt from the purge anchor: the chain goes
/// on where it was, never back at seq 0.
#[tokio::test]
async fn a_head_rebuilt_after_a_whole_chain_was_purged_starts_at_the_anchor() {
    let db = Db::new();
    let store = db.store().await;
    let acme = append_n(&store, "acme", 0, 4).await;
    AuditLog::purge_before(&store, at(1000)).await.unwrap();
    store.close().await;
    let mut raw = db.raw().await;
    assert_eq!(exec(&mut raw, "DELETE FROM audit_heads").await, 1);
    let store = db.store().await;
    let next = store
        .append(event("acme", 2000, EventKind::Login))
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash), (4, acme[3].hash));
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 1);
}

/// A purge on one replica while another appends to the same tenant: both succeed and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_purge_on_one_replica_while_another_appends() {
    let db = Db::new();
    let a = db.store().await;
    let b = db.store().await;
    append_n(&a, "acme", 0, 200).await;
    let appender = tokio::spawn({
        let b = b.clone();
        async move { append_n(&b, "acme", 10_000, 200).await }
    });
    let report = AuditLog::purge_before(&a, at(100)).await.unwrap();
    let appended = appender.await.unwrap();
    assert_eq!(report.removed, 100);
    assert_eq!(report.anchors[0].seq, 100);
    assert_eq!(appended.last().unwrap().seq, 399);
    assert_eq!(a.verify_chain().await.unwrap().unwrap().events, 300);
}
