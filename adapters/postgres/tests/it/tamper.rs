//! Tampering with the tables through a separate connection is found, at the exact position.

use crate::common::*;
use fctr_ports::{AuditLog, BreakKind, ChainBreak, SealedEvent};
use fctr_postgres::PostgresStore;
use sqlx::PgConnection;

/// Ten `acme` events (seq 0..=9) and five `globex` events, with a checkpoint key.
async fn setup() -> (Db, PostgresStore, Vec<SealedEvent>, PgConnection) {
    let db = Db::new();
    let store = db
        .store_with(db.options().with_checkpoint_key(checkpoint_key()))
        .await;
    let acme = append_n(&store, "acme", 0, 10).await;
    append_n(&store, "globex", 0, 5).await;
    let raw = db.raw().await;
    (db, store, acme, raw)
}

async fn broken(store: &PostgresStore) -> ChainBreak {
    store.verify_chain().await.unwrap().unwrap_err()
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let (_db, store, acme, _raw) = setup().await;
    store.checkpoint().await.unwrap();
    let s = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(s.events, 15);
    let head = s.heads.iter().find(|h| h.tenant == tenant("acme")).unwrap();
    assert_eq!((head.seq, head.hash), (9, acme[9].hash));
}

#[tokio::test]
async fn an_edited_field_is_found_at_its_seq() {
    let (_db, store, _acme, mut raw) = setup().await;
    let n = exec(
        &mut raw,
        "UPDATE audit_events SET event = replace(event, '\"outcome\":\"success\"', '\"outcome\":\"denied\"') \
         WHERE tenant = 'acme' AND seq = 4",
    )
    .await;
    assert_eq!(n, 1);
    let b = broken(&store).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("acme"), 4, BreakKind::Edited)
    );
}

#[tokio::test]
async fn an_edited_pseudonym_is_found_even_from_another_store() {
    let (db, store, _acme, mut raw) = setup().await;
    let n = sqlx::query(
        "UPDATE audit_events SET event = replace(event, $1, $2) WHERE tenant = 'globex' AND seq = 2",
    )
    .bind(format!("\"agent\":\"{}\"", pseudo(1)))
    .bind(format!("\"agent\":\"{}\"", pseudo(99)))
    .execute(&mut raw)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1);
    store.close().await;
    let other = db.store().await;
    let b = broken(&other).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("globex"), 2, BreakKind::Edited)
    );
}

#[tokio::test]
async fn a_reformatted_event_that_decodes_the_same_is_still_edited() {
    let (_db, store, _acme, mut raw) = setup().await;
    // Same JSON value, one space more: the stored bytes are what is hashed.
    exec(
        &mut raw,
        "UPDATE audit_events SET event = replace(event, '\"kind\":', '\"kind\": ') \
         WHERE tenant = 'acme' AND seq = 6",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (6, BreakKind::Edited));
}

#[tokio::test]
async fn a_deleted_event_is_a_sequence_gap_at_its_seq() {
    let (_db, store, _acme, mut raw) = setup().await;
    assert_eq!(
        exec(
            &mut raw,
            "DELETE FROM audit_events WHERE tenant = 'acme' AND seq = 4"
        )
        .await,
        1
    );
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (4, BreakKind::SequenceGap));
}

#[tokio::test]
async fn swapped_contents_are_found_at_the_first_swapped_position() {
    let (_db, store, _acme, mut raw) = setup().await;
    // Swap the event text of seq 3 and 6, keeping everything else.
    exec(
        &mut raw,
        "UPDATE audit_events AS a SET event = b.event FROM audit_events AS b \
         WHERE a.tenant = 'acme' AND b.tenant = 'acme' AND a.seq IN (3, 6) AND b.seq = 9 - a.seq",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (3, BreakKind::Edited));
}

#[tokio::test]
async fn swapped_rows_with_their_hashes_are_found_at_the_first_swapped_position() {
    let (_db, store, _acme, mut raw) = setup().await;
    // Swap everything but the seq: each row still matches its own hash, but no longer links.
    exec(
        &mut raw,
        "UPDATE audit_events AS a SET event = b.event, prev_hash = b.prev_hash, hash = b.hash \
         FROM audit_events AS b \
         WHERE a.tenant = 'acme' AND b.tenant = 'acme' AND a.seq IN (2, 7) AND b.seq = 9 - a.seq",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (2, BreakKind::Unlinked));
}

#[tokio::test]
async fn a_truncated_tail_after_a_checkpoint_is_found() {
    let (_db, store, acme, mut raw) = setup().await;
    let cps = store.checkpoint().await.unwrap();
    let cp = cps.iter().find(|c| c.tenant == tenant("acme")).unwrap();
    assert_eq!((cp.seq, cp.hash), (9, acme[9].hash));
    // Nothing moved: a second checkpoint records nothing new.
    assert!(store.checkpoint().await.unwrap().is_empty());
    assert_eq!(
        exec(
            &mut raw,
            "DELETE FROM audit_events WHERE tenant = 'acme' AND seq >= 7"
        )
        .await,
        3
    );
    let b = broken(&store).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("acme"), 7, BreakKind::Truncated)
    );
}

#[tokio::test]
async fn a_truncated_tail_is_found_without_a_key_too() {
    let db = Db::new();
    let store = db.store().await;
    append_n(&store, "acme", 0, 6).await;
    store.checkpoint().await.unwrap();
    let mut raw = db.raw().await;
    exec(
        &mut raw,
        "DELETE FROM audit_events WHERE tenant = 'acme' AND seq = 5",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (5, BreakKind::Truncated));
}

#[tokio::test]
async fn a_forged_checkpoint_mac_is_refused() {
    let (_db, store, _acme, mut raw) = setup().await;
    store.checkpoint().await.unwrap();
    assert!(store.verify_chain().await.unwrap().is_ok());
    exec(
        &mut raw,
        "UPDATE audit_checkpoints SET mac = '00' || substr(mac, 3) WHERE tenant = 'acme'",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("acme"), 9, BreakKind::Truncated)
    );
}

#[tokio::test]
async fn a_checkpoint_rewritten_to_hide_truncation_is_refused() {
    let (_db, store, acme, mut raw) = setup().await;
    store.checkpoint().await.unwrap();
    // Cut the tail and move the checkpoint back to the new head, without the key.
    exec(
        &mut raw,
        "DELETE FROM audit_events WHERE tenant = 'acme' AND seq >= 7",
    )
    .await;
    sqlx::query("UPDATE audit_checkpoints SET seq = 6, hash = $1 WHERE tenant = 'acme'")
        .bind(acme[6].hash.to_hex())
        .execute(&mut raw)
        .await
        .unwrap();
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (6, BreakKind::Truncated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chain_longer_than_one_verification_chunk_finds_a_late_edit() {
    let db = Db::new();
    let store = db.store().await;
    let mut tasks = Vec::new();
    for k in 0..10i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            append_n(&store, "acme", k * 10_000, 1000).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 10_000);
    let mut raw = db.raw().await;
    exec(
        &mut raw,
        "UPDATE audit_events SET event = replace(event, '\"outcome\":\"success\"', '\"outcome\":\"failed\"') \
         WHERE tenant = 'acme' AND seq IN (9000, 9500)",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (9000, BreakKind::Edited));
    // A gap right at a chunk boundary (4096 rows per chunk).
    exec(
        &mut raw,
        "DELETE FROM audit_events WHERE tenant = 'acme' AND seq = 4096",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (4096, BreakKind::SequenceGap));
}

#[tokio::test]
async fn undecodable_rows_are_reported_as_edited() {
    let (_db, store, _acme, mut raw) = setup().await;
    exec(
        &mut raw,
        "UPDATE audit_events SET event = '{not json' WHERE tenant = 'acme' AND seq = 5",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (5, BreakKind::Edited));
}
