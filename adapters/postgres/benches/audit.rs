//! Throughput figures for the PostgreSQL audit log.
//!
//! `cargo bench -p fctr-postgres --bench audit` against `FCTR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), in a fresh schema dropped afterwards. Set `FCTR_BENCH_EVENTS` to
//! change the verification size (default 120000) and `FCTR_BENCH_TASKS` the appending tasks per store (default 64).
//! Prints:
//! - sustained appends/s from TWO store instances (two replicas) at once into ONE tenant, chained under the
//!   tenant's head lock, each acknowledged after its transaction committed;
//! - the same from one store, for comparison;
//! - verification speed in events/s over the whole chain.

use chrono::{Duration, TimeZone, Utc};
use fctr_ports::{AuditEvent, AuditLog, EventKind, KeyId, Outcome, PseudoId, TenantId};
use fctr_postgres::{PostgresOptions, PostgresStore};
use secrecy::SecretString;
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Instant;

fn url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn event(tenant: &TenantId, i: i64) -> AuditEvent {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::milliseconds(i);
    let mut e = AuditEvent::new(
        tenant.clone(),
        at,
        EventKind::ActionOutcome,
        Outcome::Success,
    );
    let k = KeyId::parse("k1").ok();
    e.agent = k
        .as_ref()
        .and_then(|k| PseudoId::from_mac(k, &[1; 32]).ok());
    e.target = k
        .as_ref()
        .and_then(|k| PseudoId::from_mac(k, &[(i % 251) as u8; 32]).ok());
    e
}

/// `tasks` tasks on each store, `per_task` appends each, all into one tenant. Returns events/s.
async fn appends(stores: &[PostgresStore], tasks: i64, per_task: i64, offset: i64) -> f64 {
    let Ok(tenant) = TenantId::parse("acme") else {
        return 0.0;
    };
    let start = Instant::now();
    let mut handles = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..tasks {
            let store = store.clone();
            let tenant = tenant.clone();
            let base = offset + (s as i64 * tasks + t) * per_task;
            handles.push(tokio::spawn(async move {
                for i in 0..per_task {
                    if store.append(event(&tenant, base + i)).await.is_err() {
                        eprintln!("append failed");
                    }
                }
            }));
        }
    }
    for h in handles {
        let _ = h.await;
    }
    (stores.len() as i64 * tasks * per_task) as f64 / start.elapsed().as_secs_f64()
}

async fn drop_schema(schema: &str) {
    let Ok(opts) = sqlx::postgres::PgConnectOptions::from_str(&url()) else {
        return;
    };
    if let Ok(mut c) = opts.connect().await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut c)
            .await;
        let _ = c.close().await;
    }
}

fn main() {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("no runtime");
        return;
    };
    let env = |k: &str, d: i64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let total = env("FCTR_BENCH_EVENTS", 120_000);
    let tasks = env("FCTR_BENCH_TASKS", 64).max(1);
    let schema = format!("fctr_bench_{:016x}", rand::random::<u64>());
    rt.block_on(async {
        let options = PostgresOptions::default().with_schema(schema.clone());
        let (Ok(a), Ok(b)) = (
            PostgresStore::connect(SecretString::from(url()), options.clone()).await,
            PostgresStore::connect(SecretString::from(url()), options).await,
        ) else {
            eprintln!("cannot connect to PostgreSQL (set FCTR_TEST_POSTGRES_URL)");
            return;
        };
        let both = [a.clone(), b.clone()];
        // Warm-up, then the measured runs.
        appends(&both, tasks, 20, 0).await;
        let commits = a.group_commits() + b.group_commits();
        let per = 300;
        let rate = appends(&both, tasks, per, 10_000_000).await;
        let batches = a.group_commits() + b.group_commits() - commits;
        println!(
            "append, 2 stores x {tasks} tasks, one tenant (durable ack, chained): {rate:>10.0} events/s \
             ({:.1} events per transaction)",
            (2 * tasks * per) as f64 / batches.max(1) as f64
        );
        let rate = appends(&both[..1], tasks, per, 20_000_000).await;
        println!("append, 1 store x {tasks} tasks, one tenant (for comparison):    {rate:>10.0} events/s");

        let have = 2 * tasks * 20 + 3 * tasks * per;
        if total > have {
            let per = (total - have + 2 * tasks - 1) / (2 * tasks);
            appends(&both, tasks, per, 30_000_000).await;
        }
        for run in 0..3 {
            let start = Instant::now();
            match a.verify_chain().await {
                Ok(Ok(s)) => {
                    let secs = start.elapsed().as_secs_f64();
                    println!(
                        "verify run {run}: {} events in {:.3} s = {:>10.0} events/s",
                        s.events,
                        secs,
                        s.events as f64 / secs
                    );
                }
                other => eprintln!("verify failed: {other:?}"),
            }
        }
        a.close().await;
        b.close().await;
        drop_schema(&schema).await;
    });
}
