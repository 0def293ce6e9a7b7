//! The SQLite store (`fctr-sqlite`): the audit log and the usage ledger, one file per instance in a temporary
//! directory; both replicas share the one store (its single writer), as a process does.

use async_trait::async_trait;
use fctr_ports::{AuditLog, UsageLedger};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use fctr_testkit::stores::{Made, Replicas, StoreFixture, WallTime};
use std::sync::Arc;
use tempfile::TempDir;

/// Audit and usage on SQLite; the other ports are not this store's.
pub struct Sqlite;

/// A fresh database in its own temporary directory (kept until the check ends).
///
/// `SqliteStore::open`'s future cannot be proven `Send` (sqlx's `Acquire` impls and higher-ranked lifetimes, "not
/// general enough"), and the fixture's futures must be. So it runs on a blocking thread that drives it on this
/// runtime, where its writer task is spawned as usual.
async fn open() -> Result<(SqliteStore, TempDir), String> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(async {
            let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
            let store = SqliteStore::open(dir.path().join("fctr.db"), SqliteOptions::default())
                .await
                .map_err(|e| format!("open: {e}"))?;
            Ok((store, dir))
        })
    })
    .await
    .map_err(|e| format!("the opening task failed: {e}"))?
}

#[async_trait]
impl StoreFixture for Sqlite {
    fn name(&self) -> String {
        "sqlite".into()
    }

    async fn audit(&self) -> Made<dyn AuditLog> {
        let (store, dir) = open().await?;
        let store: Arc<dyn AuditLog> = Arc::new(store);
        Ok(Some(Replicas::shared(store, Arc::new(WallTime)).keep(dir)))
    }

    async fn usage(&self) -> Made<dyn UsageLedger> {
        let (store, dir) = open().await?;
        let store: Arc<dyn UsageLedger> = Arc::new(store);
        Ok(Some(Replicas::shared(store, Arc::new(WallTime)).keep(dir)))
    }
}

/// Each instance's directory is removed when its `TempDir` drops.
impl crate::Leftovers for Sqlite {}
