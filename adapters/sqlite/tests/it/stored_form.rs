//! The stored form: `event` holds the canonical encoding, hashed as stored; rows of older builds (serde_json's field
//! order) still verify, but only in exactly that form.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, BreakKind, ChainBreak, PortError, SealedEvent};
use fctr_sqlite::SqliteStore;
use sqlx::SqliteConnection;

async fn broken(store: &SqliteStore) -> ChainBreak {
    store.verify_chain().await.unwrap().unwrap_err()
}

async fn exec(raw: &mut SqliteConnection, sql: &str) -> u64 {
    sqlx::query(sql).execute(raw).await.unwrap().rows_affected()
}

async fn stored(raw: &mut SqliteConnection, t: &str, seq: i64) -> String {
    sqlx::query_scalar("SELECT event FROM audit_events WHERE tenant = ?1 AND seq = ?2")
        .bind(t)
        .bind(seq)
        .fetch_one(raw)
        .await
        .unwrap()
}

/// Rewrites rows as a build before the canonical column wrote them: serde_json's encoding of the same event.
async fn make_legacy(raw: &mut SqliteConnection, events: &[SealedEvent]) {
    for s in events {
        let n = sqlx::query("UPDATE audit_events SET event = ?1 WHERE tenant = ?2 AND seq = ?3")
            .bind(serde_json::to_string(&s.event).unwrap())
            .bind(s.event.tenant.as_str())
            .bind(i64::try_from(s.seq).unwrap())
            .execute(&mut *raw)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 1);
    }
}

#[tokio::test]
async fn the_event_column_holds_exactly_the_hashed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let acme = append_n(&store, "acme", 0, 3).await;
    let mut raw = raw(&db_path(&dir)).await;
    for s in &acme {
        let text = stored(&mut raw, "acme", i64::try_from(s.seq).unwrap()).await;
        assert_eq!(text.as_bytes(), s.event.canonical_bytes().as_slice());
    }
    // Still JSON to SQLite and to readers.
    let agent: String = sqlx::query_scalar(
        "SELECT json_extract(event, '$.agent') FROM audit_events WHERE tenant = 'acme' AND seq = 0",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert_eq!(agent, pseudo(1).to_string());
    let read = store.read(&AuditQuery::default()).await.unwrap();
    assert_eq!(read, acme);
}

#[tokio::test]
async fn an_edit_that_decodes_to_the_same_event_is_edited() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    append_n(&store, "acme", 0, 6).await;
    let mut raw = raw(&db_path(&dir)).await;
    let original = stored(&mut raw, "acme", 2).await;
    for edited in [
        original.replacen(",\"id\":", ", \"id\":", 1),
        format!("{original}\n"),
        format!(" {original}"),
        original.replacen("\"lookup\"", "\"\\u006cookup\"", 1),
    ] {
        sqlx::query("UPDATE audit_events SET event = ?1 WHERE tenant = 'acme' AND seq = 2")
            .bind(&edited)
            .execute(&mut raw)
            .await
            .unwrap();
        // The same event to a reader ...
        let same = store.read(&AuditQuery::default()).await.unwrap();
        assert_eq!(same.len(), 6);
        // ... but not the bytes that were hashed.
        let b = broken(&store).await;
        assert_eq!(
            (b.tenant, b.position, b.kind),
            (tenant("acme"), 2, BreakKind::Edited),
            "{edited}"
        );
    }
    // Put back, it verifies again.
    sqlx::query("UPDATE audit_events SET event = ?1 WHERE tenant = 'acme' AND seq = 2")
        .bind(&original)
        .execute(&mut raw)
        .await
        .unwrap();
    assert!(store.verify_chain().await.unwrap().is_ok());
}

#[tokio::test]
async fn another_tenants_event_is_a_sequence_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    append_n(&store, "acme", 0, 4).await;
    append_n(&store, "globex", 0, 4).await;
    let mut raw = raw(&db_path(&dir)).await;
    exec(
        &mut raw,
        "UPDATE audit_events SET event = (SELECT event FROM audit_events g WHERE g.tenant = 'globex' AND g.seq = 1) \
         WHERE tenant = 'acme' AND seq = 1",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("acme"), 1, BreakKind::SequenceGap)
    );
}

#[tokio::test]
async fn rows_written_by_older_builds_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let acme = append_n(&store, "acme", 0, 5).await;
    let globex = append_n(&store, "globex", 0, 3).await;
    let mut raw = raw(&db_path(&dir)).await;
    make_legacy(&mut raw, &acme).await;
    make_legacy(&mut raw, &globex[..2]).await;
    store.checkpoint().await.unwrap();
    store.close().await;

    // A newer build opens the old file, appends canonically after the legacy rows, and verifies both.
    let store = open(&dir).await;
    let more = append_n(&store, "acme", 10, 3).await;
    assert_eq!((more[0].seq, more[0].prev_hash), (5, acme[4].hash));
    let s = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(s.events, 11);
    assert!(stored(&mut raw, "acme", 0).await.starts_with("{\"id\":"));
    assert!(stored(&mut raw, "acme", 5).await.starts_with("{\"agent\":"));
    let read = store
        .read(&AuditQuery {
            tenant: Some(tenant("acme")),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(read.len(), 8);
    assert_eq!(read[..5], acme[..]);

    // A field edited in a legacy row is found ...
    exec(
        &mut raw,
        "UPDATE audit_events SET event = json_set(event, '$.outcome', 'denied') \
         WHERE tenant = 'acme' AND seq = 3",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (3, BreakKind::Edited));
    // ... and so is a legacy row that decodes to the same event but is not exactly what was written.
    make_legacy(&mut raw, &acme[3..4]).await;
    assert!(store.verify_chain().await.unwrap().is_ok());
    let legacy = stored(&mut raw, "acme", 1).await;
    sqlx::query("UPDATE audit_events SET event = ?1 WHERE tenant = 'acme' AND seq = 1")
        .bind(legacy.replacen(",\"at\":", ",  \"at\":", 1))
        .execute(&mut raw)
        .await
        .unwrap();
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (1, BreakKind::Edited));
    make_legacy(&mut raw, &acme[1..2]).await;

    // Undecodable legacy-looking text is edited, as before.
    exec(
        &mut raw,
        "UPDATE audit_events SET event = '{\"id\":1}' WHERE tenant = 'globex' AND seq = 1",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("globex"), 1, BreakKind::Edited)
    );
}

#[tokio::test]
async fn purge_over_legacy_rows_works_and_refuses_an_edited_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let acme = append_n(&store, "acme", 0, 6).await;
    let mut raw = raw(&db_path(&dir)).await;
    make_legacy(&mut raw, &acme[..3]).await;
    let report = AuditLog::purge_before(&store, at(2)).await.unwrap();
    assert_eq!(report.removed, 2);
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 4);

    // Whitespace in a canonical row about to be purged: refused, nothing removed.
    let text = stored(&mut raw, "acme", 3).await;
    sqlx::query("UPDATE audit_events SET event = ?1 WHERE tenant = 'acme' AND seq = 3")
        .bind(format!("{text} "))
        .execute(&mut raw)
        .await
        .unwrap();
    assert!(matches!(
        AuditLog::purge_before(&store, at(5)).await,
        Err(PortError::InvalidState)
    ));
    assert_eq!(store.read(&AuditQuery::default()).await.unwrap().len(), 4);
}
