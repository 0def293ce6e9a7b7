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

/// Two portal replicas on one Redis prefix (two connections, as two processes) each run an engine. A sign-in link
/// made on one is opened by two browsers at once, one request on each replica: it opens once. The caller's
/// callback lands on the other replica, and the agent's poll on the first mints the grant.
#[tokio::test]
async fn a_sign_in_link_opens_once_across_two_replicas() {
    use fctr_core::policy::Policy;
    use fctr_core::{Engine, Ports, Pseudonymizer, RequestContext, SignInEvidence, SignInLinks};
    use fctr_ports::{
        AccountStatus, AgentId, Clock, FactorId, FactorInfo, FactorKind, FactorStatus, GroupRef,
        KeyId, Pii, Reason, RiskFacts, SubjectId, TenantId, UserRecord, VerificationStatus,
    };
    use fctr_testkit::{ScriptedIdp, ScriptedUser};

    let (a, b, _prefix) = replicas().await.expect("two replicas on the test Redis");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let idp = Arc::new(ScriptedIdp::new().with_clock(clock.clone()));
    idp.add_user(ScriptedUser {
        record: UserRecord {
            id: SubjectId::parse("alice").unwrap(),
            login: Pii::new("alice@example.com".to_owned()),
            email: None,
            display_name: None,
            phone: None,
            status: AccountStatus::Active,
        },
        factors: vec![FactorInfo {
            id: FactorId::parse("push1").unwrap(),
            kind: FactorKind::Push,
            status: FactorStatus::Active,
            vendor: None,
            label: None,
        }],
        groups: vec![GroupRef {
            id: "g-staff".into(),
            name: "Staff".into(),
        }],
        risk: RiskFacts::default(),
    });
    let audit = Arc::new(fctr_memory::MemoryAuditLog::new());
    let usage = Arc::new(fctr_memory::MemoryUsageLedger::new());
    let policy = Arc::new(
        Policy::parse("[factors.default]\naccepted = [\"idp_sign_in\", \"push\"]\n").unwrap(),
    );
    let engine = |state: &RedisState| {
        Engine::new(
            Ports {
                idp: idp.clone(),
                audit: audit.clone(),
                usage: usage.clone(),
                grants: state.grant_store(),
                rate: state.rate_limiter(),
                clock: clock.clone(),
            },
            policy.clone(),
            Pseudonymizer::new(
                KeyId::parse("k1").unwrap(),
                &SecretString::from("replica-test-key-0123456789-0123456789".to_owned()),
            )
            .unwrap(),
            TenantId::parse("acme").unwrap(),
        )
        .with_sign_in_links(SignInLinks::default())
    };
    let (one, two) = (engine(&a), engine(&b));
    let ctx = RequestContext::default();
    let agent = one.resolve_agent(
        AgentId::parse("agent2").unwrap(),
        &["fctr-tier2".to_owned()],
    );
    let alice = SubjectId::parse("alice").unwrap();
    let v = one
        .begin_verification(
            &agent,
            &ctx,
            &alice,
            Some(&FactorId::parse("idp_sign_in").unwrap()),
        )
        .await
        .unwrap();
    let token = v.link.as_ref().and_then(|l| l.token.clone()).unwrap();

    let (on_one, on_two) = tokio::join!(
        one.open_sign_in_link(&ctx, &token),
        two.open_sign_in_link(&ctx, &token)
    );
    let (opened, refused) = match (on_one, on_two) {
        (Ok(o), Err(d)) | (Err(d), Ok(o)) => (o, d),
        (x, y) => panic!("exactly one replica opens the link: {x:?} / {y:?}"),
    };
    assert_eq!(refused.reason, Reason::SignInLinkInvalid);

    let evidence = SignInEvidence::Token {
        subject: "alice".to_owned(),
        auth_time: Some(clock.now()),
        mfa: true,
    };
    two.finish_sign_in_link(&ctx, &opened, &evidence)
        .await
        .unwrap();
    let done = one.poll_verification(&agent, &ctx, v.id).await.unwrap();
    assert_eq!(done.status, VerificationStatus::Verified);
    assert!(done.grant.is_some());
}
