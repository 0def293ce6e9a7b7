//! Nothing is written outside the data directory, and the file is in WAL mode.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, UsageLedger};

#[tokio::test]
async fn only_the_database_and_its_wal_files_exist_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    append_n(&store, "acme", 0, 300).await;
    append_n(&store, "globex", 0, 300).await;
    store.checkpoint().await.unwrap();
    // A read that sorts (no index covers it) and a purge.
    let q = AuditQuery {
        pseudonym: Some(pseudo(1)),
        ..AuditQuery::default()
    };
    assert_eq!(store.read(&q).await.unwrap().len(), 600);
    AuditLog::purge_before(&store, at(100)).await.unwrap();
    UsageLedger::purge_before(&store, at(100)).await.unwrap();
    assert!(store.verify_chain().await.unwrap().is_ok());

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        assert!(
            ["fctr.db", "fctr.db-wal", "fctr.db-shm"].contains(&n.as_str()),
            "unexpected file {n}"
        );
    }
    assert!(names.contains(&"fctr.db".to_owned()));

    let mut raw = raw(&db_path(&dir)).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store.close().await;
}

#[tokio::test]
async fn open_fails_cleanly_for_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = fctr_sqlite::SqliteStore::open(
        dir.path().join("missing").join("fctr.db"),
        fctr_sqlite::SqliteOptions::default(),
    )
    .await;
    assert!(matches!(r, Err(fctr_sqlite::StoreError::Open(_))));
}
