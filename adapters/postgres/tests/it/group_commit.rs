//! Group commit: concurrent appends share transactions, and each is acknowledged only once its transaction
//! committed.

use crate::common::*;
use fctr_ports::{AuditLog, EventKind};
use fctr_postgres::PostgresStore;
use std::sync::Arc;

async fn concurrent_appends(store: &Arc<PostgresStore>, n: i64) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = Arc::clone(store);
            tokio::spawn(async move { s.append(event("acme", i, EventKind::Lookup)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits() {
    let db = Db::new();
    let store = Arc::new(db.store().await);
    let before = store.group_commits();
    concurrent_appends(&store, 256).await;
    let commits = store.group_commits() - before;
    assert!(
        commits <= 64,
        "256 concurrent appends took {commits} transactions: group commit is not batching"
    );
    assert!(commits >= 1);
    // Every acknowledged event is stored, in one unbroken chain.
    let summary = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_one_commits_each_append() {
    // The control for the test above: with batching off, every append is its own transaction.
    let db = Db::new();
    let store = Arc::new(db.store_with(db.options().with_max_batch(1)).await);
    let before = store.group_commits();
    concurrent_appends(&store, 32).await;
    assert_eq!(store.group_commits() - before, 32);
}
