//! Tampering with the file through a separate connection is found, at the exact position.

use crate::common::*;
use fctr_ports::{AuditLog, BreakKind, ChainBreak, SealedEvent};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use secrecy::SecretString;
use sqlx::SqliteConnection;

fn key() -> SecretString {
    SecretString::from("test checkpoint key, not secret")
}

/// Ten `acme` events (seq 0..=9) and five `globex` events, with a checkpoint key.
async fn setup() -> (
    tempfile::TempDir,
    SqliteStore,
    Vec<SealedEvent>,
    SqliteConnection,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir, SqliteOptions::default().with_checkpoint_key(key())).await;
    let acme = append_n(&store, "acme", 0, 10).await;
    append_n(&store, "globex", 0, 5).await;
    let raw = raw(&db_path(&dir)).await;
    (dir, store, acme, raw)
}

async fn broken(store: &SqliteStore) -> ChainBreak {
    store.verify_chain().await.unwrap().unwrap_err()
}

async fn exec(raw: &mut SqliteConnection, sql: &str) -> u64 {
    sqlx::query(sql).execute(raw).await.unwrap().rows_affected()
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let (_dir, store, acme, _raw) = setup().await;
    store.checkpoint().await.unwrap();
    let s = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(s.events, 15);
    let head = s.heads.iter().find(|h| h.tenant == tenant("acme")).unwrap();
    assert_eq!((head.seq, head.hash), (9, acme[9].hash));
}

#[tokio::test]
async fn an_edited_field_is_found_at_its_seq() {
    let (_dir, store, _acme, mut raw) = setup().await;
    let n = exec(
        &mut raw,
        "UPDATE audit_events SET event = json_set(event, '$.outcome', 'denied') \
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
async fn an_edited_pseudonym_is_found_even_after_reopen() {
    let (dir, store, _acme, mut raw) = setup().await;
    let other = pseudo(99).to_string();
    sqlx::query(
        "UPDATE audit_events SET event = json_set(event, '$.agent', ?1) \
         WHERE tenant = 'globex' AND seq = 2",
    )
    .bind(other)
    .execute(&mut raw)
    .await
    .unwrap();
    store.close().await;
    let store = open_with(&dir, SqliteOptions::default().with_checkpoint_key(key())).await;
    let b = broken(&store).await;
    assert_eq!(
        (b.tenant, b.position, b.kind),
        (tenant("globex"), 2, BreakKind::Edited)
    );
}

#[tokio::test]
async fn a_deleted_event_is_a_sequence_gap_at_its_seq() {
    let (_dir, store, _acme, mut raw) = setup().await;
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
    let (_dir, store, _acme, mut raw) = setup().await;
    // Swap the event JSON of seq 3 and 6, keeping everything else.
    exec(
        &mut raw,
        "CREATE TEMP TABLE sw AS SELECT seq, event FROM audit_events WHERE tenant = 'acme' AND seq IN (3, 6)",
    )
    .await;
    exec(
        &mut raw,
        "UPDATE audit_events SET event = (SELECT event FROM sw WHERE sw.seq = 9 - audit_events.seq) \
         WHERE tenant = 'acme' AND seq IN (3, 6)",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (3, BreakKind::Edited));
}

#[tokio::test]
async fn swapped_rows_with_their_hashes_are_found_at_the_first_swapped_position() {
    let (_dir, store, _acme, mut raw) = setup().await;
    // Swap everything but the seq: each row still matches its own hash, but no longer links.
    exec(
        &mut raw,
        "CREATE TEMP TABLE sw AS SELECT seq, event, prev_hash, hash FROM audit_events \
         WHERE tenant = 'acme' AND seq IN (2, 7)",
    )
    .await;
    exec(
        &mut raw,
        "UPDATE audit_events SET \
           event = (SELECT event FROM sw WHERE sw.seq = 9 - audit_events.seq), \
           prev_hash = (SELECT prev_hash FROM sw WHERE sw.seq = 9 - audit_events.seq), \
           hash = (SELECT hash FROM sw WHERE sw.seq = 9 - audit_events.seq) \
         WHERE tenant = 'acme' AND seq IN (2, 7)",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (2, BreakKind::Unlinked));
}

#[tokio::test]
async fn a_truncated_tail_after_a_checkpoint_is_found() {
    let (_dir, store, acme, mut raw) = setup().await;
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
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    append_n(&store, "acme", 0, 6).await;
    store.checkpoint().await.unwrap();
    let mut raw = raw(&db_path(&dir)).await;
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
    let (_dir, store, _acme, mut raw) = setup().await;
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
    let (_dir, store, acme, mut raw) = setup().await;
    store.checkpoint().await.unwrap();
    // Cut the tail and move the checkpoint back to the new head, without the key.
    exec(
        &mut raw,
        "DELETE FROM audit_events WHERE tenant = 'acme' AND seq >= 7",
    )
    .await;
    sqlx::query("UPDATE audit_checkpoints SET seq = 6, hash = ?1 WHERE tenant = 'acme'")
        .bind(acme[6].hash.to_hex())
        .execute(&mut raw)
        .await
        .unwrap();
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (6, BreakKind::Truncated));
}

#[tokio::test]
async fn a_chain_longer_than_one_verification_chunk_finds_a_late_edit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
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
    let mut raw = raw(&db_path(&dir)).await;
    exec(
        &mut raw,
        "UPDATE audit_events SET event = json_set(event, '$.outcome', 'failed') \
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
    let (_dir, store, _acme, mut raw) = setup().await;
    exec(
        &mut raw,
        "UPDATE audit_events SET event = '{not json' WHERE tenant = 'acme' AND seq = 5",
    )
    .await;
    let b = broken(&store).await;
    assert_eq!((b.position, b.kind), (5, BreakKind::Edited));
}
