//! Shared helpers: a fresh random schema per test on the shared test database, dropped when the test ends
//! (passed or not), so these tests run in parallel with each other and with everything else using the database.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fctr_ports::{
    AuditEvent, AuditLog, EventKind, KeyId, Outcome, PseudoId, Reason, SealedEvent, TenantId,
};
use fctr_postgres::{PostgresOptions, PostgresStore};
use secrecy::SecretString;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

/// The test database: `FCTR_TEST_POSTGRES_URL`, default the local trust-auth server.
pub fn url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// A pseudonym under key `k1` with a MAC of `n` repeated.
pub fn pseudo(n: u8) -> PseudoId {
    PseudoId::from_mac(&KeyId::parse("k1").unwrap(), &[n; 32]).unwrap()
}

pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

/// `base() + secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    base() + Duration::seconds(secs)
}

pub fn event(t: &str, secs: i64, kind: EventKind) -> AuditEvent {
    let mut e = AuditEvent::new(tenant(t), at(secs), kind, Outcome::Success);
    e.agent = Some(pseudo(1));
    e.target = Some(pseudo(2));
    e.reason = Some(Reason::NoLiveGrant);
    e
}

/// A checkpoint key made at run time (no secret-looking literal in the source).
pub fn checkpoint_key() -> SecretString {
    SecretString::from(format!("{:064x}", rand::random::<u128>()))
}

/// One test's schema. Dropped (with everything in it) when this value is dropped.
pub struct Db {
    pub schema: String,
}

impl Db {
    pub fn new() -> Self {
        Self {
            schema: format!("fctr_t_{:016x}", rand::random::<u64>()),
        }
    }

    pub fn options(&self) -> PostgresOptions {
        PostgresOptions::default().with_schema(self.schema.clone())
    }

    pub async fn store(&self) -> PostgresStore {
        self.store_with(self.options()).await
    }

    pub async fn store_with(&self, o: PostgresOptions) -> PostgresStore {
        PostgresStore::connect(SecretString::from(url()), o)
            .await
            .unwrap()
    }

    /// A separate connection to the schema, as an attacker (or an operator, or another replica) would have.
    pub async fn raw(&self) -> PgConnection {
        PgConnectOptions::from_str(&url())
            .unwrap()
            .options([("search_path", self.schema.as_str())])
            .connect()
            .await
            .unwrap()
    }

    /// How many events the schema holds.
    pub async fn count(&self) -> i64 {
        let mut raw = self.raw().await;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        raw.close().await.unwrap();
        n
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Its own thread and runtime: Drop cannot await, and may run inside (or outside) a test's runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut c = PgConnectOptions::from_str(&url())
                    .ok()?
                    .options([("lock_timeout", "5000")])
                    .connect()
                    .await
                    .ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut c)
                    .await
                    .ok()?;
                c.close().await.ok()
            })
        })
        .join();
        if !matches!(done, Ok(Some(()))) {
            eprintln!("note: could not drop test schema {}", self.schema);
        }
    }
}

/// Appends `n` events to tenant `t`, one second apart from `start`.
pub async fn append_n(store: &PostgresStore, t: &str, start: i64, n: i64) -> Vec<SealedEvent> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            store
                .append(event(t, start + i, EventKind::Lookup))
                .await
                .unwrap(),
        );
    }
    out
}

/// Runs one SQL statement on a connection, returning the rows it touched.
pub async fn exec(raw: &mut PgConnection, sql: &str) -> u64 {
    sqlx::query(sql).execute(raw).await.unwrap().rows_affected()
}
