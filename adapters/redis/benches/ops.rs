//! Latency of the Redis store's operations against a real Redis.
//!
//! `cargo bench -p fctr-redis --bench ops` (Redis at `FCTR_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`;
//! `bash scripts/services.sh` starts one). For each operation, prints p50 and p99 of one caller at a time, and the
//! throughput of 64 concurrent callers sharing one store (one multiplexed connection). Uses a random key prefix
//! and deletes its keys after.

#![allow(missing_docs)]

use chrono::{TimeDelta, Utc};
use fctr_ports::{
    ActionKind, AgentId, GrantId, GrantRecord, KeyId, PseudoId, RateKey, RateRule, SecretString,
    Session, SystemClock, TenantId, Timeouts, VerificationId,
};
use fctr_redis::{RedisOptions, RedisState};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEQUENTIAL: usize = 2000;
const TASKS: usize = 64;
const PER_TASK: usize = 100;

fn hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pseudo(i: u8) -> Option<PseudoId> {
    PseudoId::from_mac(&KeyId::parse("k1").ok()?, &[i; 16]).ok()
}

async fn measure<F, Fut>(name: &str, f: F)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for i in 0..SEQUENTIAL {
        let start = Instant::now();
        if !f(i).await {
            println!("{name:<28} failed");
            return;
        }
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let f = f.clone();
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    f(SEQUENTIAL + t * PER_TASK + i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let rate = (TASKS * PER_TASK) as f64 / start.elapsed().as_secs_f64();
    println!(
        "{name:<28} p50 {:>7.0} µs  p99 {:>7.0} µs  {:>8.0} ops/s with {TASKS} callers",
        p(0.5).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6,
        rate
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("FCTR_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("fctr-bench-{}", hex(8));
    let options = RedisOptions::new(SecretString::from(hex(32))).with_prefix(prefix.clone());
    let state = match RedisState::connect(SecretString::from(url.clone()), options).await {
        Ok(s) => s,
        Err(e) => {
            println!("no Redis ({e}); start one with `bash scripts/services.sh`");
            return;
        }
    };
    let (Some(agent), Some(caller)) = (pseudo(1), pseudo(2)) else {
        return;
    };
    let Ok(tenant) = TenantId::parse("acme".to_owned()) else {
        return;
    };

    let s = state.clone();
    measure("ping", move |_| {
        let s = s.clone();
        async move { s.ping().await.is_ok() }
    })
    .await;

    let grants = state.grant_store();
    let now = Utc::now();
    let grant = GrantRecord {
        id: GrantId::random(),
        tenant,
        verification: VerificationId::random(),
        agent: agent.clone(),
        subject: caller.clone(),
        actions: BTreeSet::from([ActionKind::ResetPassword]),
        factors: vec![],
        issued_at: now,
        expires_at: now + TimeDelta::minutes(10),
        single_use: false,
    };
    let _ = grants.put_grant(&grant, Duration::from_secs(600)).await;
    let g = grants.clone();
    measure("grant consume (script)", move |_| {
        let (g, a, c) = (g.clone(), agent.clone(), caller.clone());
        async move {
            g.consume(&a, &c, ActionKind::ResetPassword, Utc::now())
                .await
                .is_ok()
        }
    })
    .await;

    let limiter = state.rate_limiter();
    measure("rate hit (script, TIME)", move |i| {
        let l = limiter.clone();
        async move {
            let Ok(k) = RateKey::parse(format!("bench:{}", i % 50)) else {
                return false;
            };
            l.hit(
                &k,
                RateRule {
                    limit: 1_000_000,
                    window: Duration::from_secs(60),
                },
            )
            .await
            .is_ok()
        }
    })
    .await;

    let sessions = state.session_store(Arc::new(SystemClock), Timeouts::default());
    let Ok(agent_id) = AgentId::parse("00ubench".to_owned()) else {
        return;
    };
    let ids: Vec<String> = (0..64).map(|_| hex(16)).collect();
    for id in &ids {
        let _ = sessions
            .create(&Session::new(
                id.clone(),
                "c".into(),
                agent_id.clone(),
                None,
                Utc::now(),
            ))
            .await;
    }
    let ids = Arc::new(ids);
    let (s, ids2) = (sessions.clone(), ids.clone());
    measure("session get (read, open)", move |i| {
        let (s, ids) = (s.clone(), ids2.clone());
        async move { matches!(s.get(&ids[i % ids.len()]).await, Ok(Some(_))) }
    })
    .await;
    let s = sessions.clone();
    measure("session touch (read + CAS)", move |i| {
        let (s, ids) = (s.clone(), ids.clone());
        async move { matches!(s.touch(&ids[i % ids.len()]).await, Ok(Some(_))) }
    })
    .await;

    let coord = state.coordinator();
    measure("lease acquire (script)", move |i| {
        let c = coord.clone();
        async move {
            c.acquire(&format!("job:{}", i % 50), "me", Duration::from_secs(30))
                .await
                .is_ok()
        }
    })
    .await;

    // Tidy up.
    if let Ok(client) = redis::Client::open(url) {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query_async(&mut c)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query_async(&mut c).await;
            }
        }
    }
}
