//! The PostgreSQL store (`fctr-postgres`): the audit log and the usage ledger. Each instance is a fresh random
//! schema on the test database, and its two replicas are two `PostgresStore`s on it (two connection pools, two
//! writer tasks), as two portal processes would be. The guard drops the schema when the check ends, and
//! [`Leftovers`] proves it did.

use crate::Leftovers;
use async_trait::async_trait;
use fctr_ports::{AuditLog, SecretString, UsageLedger};
use fctr_postgres::{PostgresOptions, PostgresStore};
use fctr_testkit::stores::{Made, Replicas, StoreFixture, WallTime};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// The test database: `FCTR_TEST_POSTGRES_URL`, default the local trust-auth server `scripts/services.sh` starts.
pub fn url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Audit and usage on PostgreSQL; the other ports are not this store's.
#[derive(Default)]
pub struct Postgres {
    /// Every schema handed out, to check afterwards that none is left.
    schemas: Mutex<Vec<String>>,
}

impl Postgres {
    /// Two replicas on one fresh schema, its name recorded, and the guard that drops it.
    async fn fresh(&self) -> Result<(PostgresStore, PostgresStore, Schema), String> {
        let schema = Schema(format!("fctr_suite_{:016x}", rand::random::<u64>()));
        self.schemas
            .lock()
            .map_err(|_| "the schema list is poisoned".to_owned())?
            .push(schema.0.clone());
        // The guard exists before the first connect: a schema made by a connect that then failed is dropped too.
        let a = connect(&schema.0)
            .await
            .map_err(|e| format!("replica a: {e}"))?;
        let b = connect(&schema.0)
            .await
            .map_err(|e| format!("replica b: {e}"))?;
        Ok((a, b, schema))
    }
}

/// A store on `schema` (created, with its tables, if missing).
///
/// `PostgresStore::connect`'s future cannot be proven `Send` (sqlx's `Acquire` impls and higher-ranked lifetimes,
/// "not general enough", as for `SqliteStore::open`), and the fixture's futures must be. So it runs on a blocking
/// thread that drives it on this runtime, where the store's writer task is spawned as usual.
async fn connect(schema: &str) -> Result<PostgresStore, String> {
    let runtime = tokio::runtime::Handle::current();
    let options = PostgresOptions::default().with_schema(schema);
    tokio::task::spawn_blocking(move || {
        runtime.block_on(async {
            PostgresStore::connect(SecretString::from(url()), options)
                .await
                .map_err(|e| format!("connect: {e}"))
        })
    })
    .await
    .map_err(|e| format!("the connecting task failed: {e}"))?
}

#[async_trait]
impl StoreFixture for Postgres {
    fn name(&self) -> String {
        "postgres".into()
    }

    async fn audit(&self) -> Made<dyn AuditLog> {
        let (a, b, schema) = self.fresh().await?;
        let (a, b): (Arc<dyn AuditLog>, Arc<dyn AuditLog>) = (Arc::new(a), Arc::new(b));
        Ok(Some(Replicas::new(a, b, Arc::new(WallTime)).keep(schema)))
    }

    async fn usage(&self) -> Made<dyn UsageLedger> {
        let (a, b, schema) = self.fresh().await?;
        let (a, b): (Arc<dyn UsageLedger>, Arc<dyn UsageLedger>) = (Arc::new(a), Arc::new(b));
        Ok(Some(Replicas::new(a, b, Arc::new(WallTime)).keep(schema)))
    }
}

#[async_trait]
impl Leftovers for Postgres {
    async fn leftovers(&self) -> Result<Vec<String>, String> {
        let schemas = self
            .schemas
            .lock()
            .map_err(|_| "the schema list is poisoned".to_owned())?
            .clone();
        if schemas.is_empty() {
            return Err("no schema was handed out".into());
        }
        let mut c = raw().await?;
        let left: Vec<String> = sqlx::query_scalar(
            "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = ANY($1) ORDER BY 1",
        )
        .bind(&schemas)
        .fetch_all(&mut c)
        .await
        .map_err(|e| format!("list schemas: {e}"))?;
        let _ = c.close().await;
        Ok(left.into_iter().map(|s| format!("schema {s}")).collect())
    }
}

/// A plain connection to the test database (a statement waits at most 5 s for a lock).
async fn raw() -> Result<PgConnection, String> {
    PgConnectOptions::from_str(&url())
        .map_err(|e| format!("PostgreSQL URL: {e}"))?
        .options([("lock_timeout", "5000")])
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// One instance's schema; dropping it (after both replicas) drops the schema and everything in it.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let schema = self.0.clone();
        // Its own thread and runtime: `Drop` cannot await, and runs inside the test's runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut c = raw().await?;
                // A name this module made: `fctr_suite_` and hex digits, safe to quote and interpolate.
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut c)
                    .await
                    .map_err(|e| format!("DROP SCHEMA: {e}"))?;
                let _ = c.close().await;
                Ok::<_, String>(())
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("note: could not drop test schema {}: {e}", self.0),
            Err(_) => eprintln!("note: dropping test schema {} panicked", self.0),
        }
    }
}
