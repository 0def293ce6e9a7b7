//! The Redis store (`fctr-redis`): grants, rate limits, sessions and coordination. Each instance is a fresh random
//! key prefix on the test server, and its two replicas are two `RedisState`s (two connections, and two pub/sub
//! connections) on that prefix with the same seal key, as two portal processes would be. Time is the wall clock:
//! TTLs, leases and rate-limit windows run on the Redis server's clock, sessions on the system clock.
//!
//! Every key has a TTL anyway; the guard deletes the prefix's keys when the check ends so the test server stays
//! tidy, and [`Leftovers`] proves it did.

use crate::Leftovers;
use async_trait::async_trait;
use fctr_ports::{
    ApprovalStore, Coordinator, GrantStore, RateLimiter, SecretString, SessionStore, SystemClock,
    Timeouts,
};
use fctr_redis::{RedisOptions, RedisState};
use fctr_testkit::stores::{Made, Replicas, StoreFixture, WallTime};
use std::sync::{Arc, Mutex};

/// The Redis the tests use: `FCTR_TEST_REDIS_URL`, default the local server `scripts/services.sh` starts.
pub fn url() -> String {
    std::env::var("FCTR_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Grants, rates, sessions and coordination on Redis; audit and usage are not this store's.
#[derive(Default)]
pub struct Redis {
    /// Every prefix handed out, to check afterwards that none kept a key.
    prefixes: Mutex<Vec<String>>,
}

/// Two replicas on one fresh prefix, and the guard that deletes its keys.
async fn replicas() -> Result<(RedisState, RedisState, Prefix), String> {
    let prefix = Prefix(format!("fctr-suite-{:016x}", rand::random::<u64>()));
    // Drawn at run time (no secret-looking literal in the source); both replicas must seal under the same key.
    let seal = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let options = RedisOptions::new(SecretString::from(seal)).with_prefix(prefix.0.clone());
    let a = RedisState::connect(SecretString::from(url()), options.clone())
        .await
        .map_err(|e| format!("connect (replica a): {e}"))?;
    let b = RedisState::connect(SecretString::from(url()), options)
        .await
        .map_err(|e| format!("connect (replica b): {e}"))?;
    Ok((a, b, prefix))
}

impl Redis {
    /// Two fresh replicas, their prefix recorded.
    async fn fresh(&self) -> Result<(RedisState, RedisState, Prefix), String> {
        let r = replicas().await?;
        self.prefixes
            .lock()
            .map_err(|_| "the prefix list is poisoned".to_owned())?
            .push(r.2.0.clone());
        Ok(r)
    }
}

#[async_trait]
impl StoreFixture for Redis {
    fn name(&self) -> String {
        "redis".into()
    }

    async fn grants(&self) -> Made<dyn GrantStore> {
        let (a, b, prefix) = self.fresh().await?;
        Ok(Some(
            Replicas::new(a.grant_store(), b.grant_store(), Arc::new(WallTime)).keep(prefix),
        ))
    }

    async fn rates(&self) -> Made<dyn RateLimiter> {
        let (a, b, prefix) = self.fresh().await?;
        Ok(Some(
            Replicas::new(a.rate_limiter(), b.rate_limiter(), Arc::new(WallTime)).keep(prefix),
        ))
    }

    async fn sessions(&self, timeouts: Timeouts) -> Made<dyn SessionStore> {
        let (a, b, prefix) = self.fresh().await?;
        Ok(Some(
            Replicas::new(
                a.session_store(Arc::new(SystemClock), timeouts),
                b.session_store(Arc::new(SystemClock), timeouts),
                Arc::new(WallTime),
            )
            .keep(prefix),
        ))
    }

    async fn coordinator(&self) -> Made<dyn Coordinator> {
        let (a, b, prefix) = self.fresh().await?;
        Ok(Some(
            Replicas::new(a.coordinator(), b.coordinator(), Arc::new(WallTime)).keep(prefix),
        ))
    }

    async fn approvals(&self) -> Made<dyn ApprovalStore> {
        let (a, b, prefix) = self.fresh().await?;
        Ok(Some(
            Replicas::new(a.approval_store(), b.approval_store(), Arc::new(WallTime)).keep(prefix),
        ))
    }
}

#[async_trait]
impl Leftovers for Redis {
    async fn leftovers(&self) -> Result<Vec<String>, String> {
        let prefixes = self
            .prefixes
            .lock()
            .map_err(|_| "the prefix list is poisoned".to_owned())?
            .clone();
        if prefixes.is_empty() {
            return Err("no prefix was handed out".into());
        }
        let mut conn = raw().await?;
        let mut left = Vec::new();
        for p in prefixes {
            let n = keys_under(&mut conn, &p).await?.len();
            if n > 0 {
                left.push(format!("{n} keys under {p}:"));
            }
        }
        Ok(left)
    }
}

/// A plain connection to the test server.
async fn raw() -> Result<redis::aio::MultiplexedConnection, String> {
    let client = redis::Client::open(url()).map_err(|e| format!("redis URL: {e}"))?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// Every key under `prefix`.
async fn keys_under(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .map_err(|e| format!("SCAN: {e}"))?;
        out.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One instance's key prefix; dropping it (after both replicas) deletes every key under it.
struct Prefix(String);

impl Drop for Prefix {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        // Its own thread and runtime: `Drop` cannot await, and runs inside the test's runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = raw().await?;
                let keys = keys_under(&mut conn, &prefix).await?;
                if !keys.is_empty() {
                    let _: i64 = redis::cmd("DEL")
                        .arg(&keys)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| format!("DEL: {e}"))?;
                }
                Ok::<_, String>(())
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("note: could not delete the keys under {}: {e}", self.0),
            Err(_) => eprintln!("note: deleting the keys under {} panicked", self.0),
        }
    }
}
