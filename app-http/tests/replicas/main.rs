//! Stateless replicas, proven with the real parts: portal processes behind haproxy (round robin, no stickiness),
//! sharing one Redis and one PostgreSQL. Every request goes through the load balancer, so consecutive requests
//! land on different replicas: a flow works only if nothing lives in one replica's memory.
//!
//! Needs `redis-server`, `redis-cli`, `haproxy`, `psql` and `pg_dump` (Debian packages; `bash scripts/test`
//! installs haproxy) and the machine's PostgreSQL (`bash scripts/services.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod agent;
mod cluster;

use agent::Agent;
use cluster::Cluster;
use std::time::Duration;

const CALLER: &str = "alice";
const LOGIN: &str = "alice@example.com";
const VERIFIED: &str = "data-status=\"verified\"";
const VERIFIED_JSON: &str = r#"data-status=\"verified\""#;

fn push_factor(c: &Cluster) -> String {
    c.fake
        .fixtures()
        .factor(CALLER, "push")
        .expect("alice has a push factor")
        .id
        .clone()
}

/// Approves the newest push to `login` on the fake phone with the right number.
async fn approve(c: &Cluster, login: &str) {
    let push = c
        .fake
        .phones()
        .wait_for_push(login, Duration::from_secs(10))
        .await
        .expect("the push arrives");
    c.fake
        .phones()
        .approve(&push.transaction_id, push.correct_answer.expect("a number"))
        .expect("approved");
}

/// Signs in as tier-3 agent and starts a push to the caller: (agent, card, verification path).
async fn pushed(c: &Cluster) -> (Agent, String, String) {
    let mut a = Agent::new(&c.lb);
    a.sign_in(&c.fake, "agent3").await;
    let card = a.find(LOGIN).await;
    let r = a.send_push(&card, &push_factor(c)).await;
    assert_eq!(r.status, 303, "push sent: {}{}", r.body, c.logs());
    (a, card, r.location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_flow_spans_the_replicas_and_a_watcher_on_another_sees_the_approval() {
    let c = Cluster::start(3).await;
    let (mut a, card, v) = pushed(&c).await;
    // The page view starts the poller on the replica that serves it (it takes the lease); the stream opened next
    // lands on another replica, which must learn of the approval through the shared store and the hint.
    let first = a.get(&v).await;
    assert_eq!(first.status, 200);
    let watcher = a.clone();
    let path = v.clone();
    let watch = tokio::spawn(async move {
        watcher
            .watch_until(&path, VERIFIED_JSON, Duration::from_secs(20))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    approve(&c, LOGIN).await;
    let stream_replica = watch.await.expect("the watcher saw the approval");
    assert!(!stream_replica.is_empty());
    assert_ne!(
        stream_replica, first.replica,
        "the watcher is on another replica than the poller"
    );
    let page = a.wait_for(&v, VERIFIED, Duration::from_secs(10)).await;
    assert_eq!(page.status, 200);
    let done = a.act(&card, "clear_sessions").await;
    assert_eq!(done.status, 200, "{}{}", done.body, c.logs());
    assert_eq!(
        c.fake.effects(LOGIN).expect("alice").sessions_revoked,
        1,
        "the action ran once"
    );
    // Round robin without stickiness: no two consecutive requests on the same replica, and every replica used.
    let served: Vec<&String> = a.served_by.iter().filter(|s| !s.is_empty()).collect();
    assert!(served.len() >= 6, "{served:?}");
    assert!(
        served.windows(2).all(|w| w[0] != w[1]),
        "consecutive requests on one replica: {served:?}"
    );
    for r in ["r1", "r2", "r3"] {
        assert!(
            served.iter().any(|s| s.as_str() == r),
            "{r} unused: {served:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_push_limit_per_caller_counts_across_replicas() {
    let c = Cluster::start(3).await;
    let mut a = Agent::new(&c.lb);
    a.sign_in(&c.fake, "agent3").await;
    let card = a.find(LOGIN).await;
    let factor = push_factor(&c);
    let mut replicas = Vec::new();
    for i in 1..=5 {
        let r = a.send_push(&card, &factor).await;
        assert_eq!(r.status, 303, "push {i} allowed: {}", r.body);
        replicas.push(r.replica);
    }
    replicas.sort();
    replicas.dedup();
    assert_eq!(
        replicas.len(),
        3,
        "the five pushes were spread over all replicas"
    );
    let sixth = a.send_push(&card, &factor).await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    assert!(sixth.body.contains("rate_limited"), "{}", sixth.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_grant_spent_by_32_concurrent_requests_over_all_replicas_runs_one_action() {
    let c = Cluster::start(3).await;
    let (mut a, card, v) = pushed(&c).await;
    approve(&c, LOGIN).await;
    a.wait_for(&v, VERIFIED, Duration::from_secs(15)).await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let mut me = a.clone();
        let card = card.clone();
        tasks.push(tokio::spawn(async move {
            me.act(&card, "clear_sessions").await
        }));
    }
    let mut ok = 0;
    let mut replicas = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.expect("a request");
        replicas.insert(r.replica.clone());
        if r.status == 200 {
            ok += 1;
        } else {
            assert!(
                r.body.contains("grant_used") || r.body.contains("no_live_grant"),
                "{} {}",
                r.status,
                r.body
            );
        }
    }
    assert_eq!(ok, 1, "exactly one request acted");
    assert_eq!(c.fake.effects(LOGIN).expect("alice").sessions_revoked, 1);
    assert_eq!(replicas.len(), 3, "{replicas:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_during_a_pending_push_loses_nothing() {
    let mut c = Cluster::start(3).await;
    let (mut a, card, v) = pushed(&c).await;
    // The first page view starts the poller (and takes its lease) on the replica that serves it: kill that one.
    let first = a.get(&v).await;
    assert_eq!(first.status, 200);
    c.kill(&first.replica).await;
    approve(&c, LOGIN).await;
    a.wait_for(&v, VERIFIED, Duration::from_secs(30)).await;
    let done = a.act(&card, "clear_sessions").await;
    assert_eq!(done.status, 200, "{}{}", done.body, c.logs());
    assert_eq!(c.fake.effects(LOGIN).expect("alice").sessions_revoked, 1);
    // Every acknowledged step is in the audit log, once, in one chain.
    let kinds = c.sql("SELECT kind FROM audit_events ORDER BY seq");
    for kind in [
        "challenge_started",
        "grant_issued",
        "action_intent",
        "action_outcome",
    ] {
        assert!(kinds.lines().any(|k| k == kind), "{kind} missing: {kinds}");
    }
    assert_eq!(
        kinds.lines().filter(|k| *k == "action_outcome").count(),
        1,
        "{kinds}"
    );
    let gaps = c.sql("SELECT count(*) FROM (SELECT seq - lag(seq) OVER (ORDER BY seq) AS d FROM audit_events) x WHERE d <> 1");
    assert_eq!(gaps.trim(), "0", "the chain has no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_away_is_refused_and_audited_and_service_resumes_by_itself() {
    let mut c = Cluster::start(2).await;
    let mut a = Agent::new(&c.lb);
    a.sign_in(&c.fake, "agent3").await;
    c.redis.stop().await;
    for _ in 0..2 {
        let r = a.get("/search").await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("state_unavailable"), "{}", r.body);
    }
    let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", c.replicas[0].port))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 503);
    let refused = c.sql("SELECT count(*) FROM audit_events WHERE event LIKE '%state_unavailable%'");
    assert!(
        refused.trim().parse::<u32>().unwrap_or(0) >= 2,
        "each refusal audited: {refused}"
    );
    c.redis.resume().await;
    // Redis came back empty: the old session is gone; a new sign-in and a whole flow work without a restart.
    let mut b = Agent::new(&c.lb);
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = b.get("/auth/login?return_to=%2Fsearch").await;
        if r.status == 303 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "never recovered: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.sign_in(&c.fake, "agent3").await;
    let card = b.find(LOGIN).await;
    let r = b.send_push(&card, &push_factor(&c)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    approve(&c, LOGIN).await;
    b.wait_for(&r.location, VERIFIED, Duration::from_secs(15))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn neither_redis_nor_postgres_holds_anything_readable_about_the_caller_or_the_agent() {
    let c = Cluster::start(2).await;
    let (mut a, card, v) = pushed(&c).await;
    approve(&c, LOGIN).await;
    a.wait_for(&v, VERIFIED, Duration::from_secs(15)).await;
    let page = a.get(&card).await;
    assert!(page.body.contains(LOGIN), "the agent saw the caller");
    let done = a.act(&card, "clear_sessions").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (redis, ttls) = c.redis.dump_all();
    assert!(!ttls.is_empty(), "the flow wrote to Redis");
    assert!(
        ttls.iter().all(|t| *t > 0),
        "every Redis key expires: {ttls:?}"
    );
    let pg = c.pg_dump();
    assert!(pg.contains("audit_events"), "the dump has the audit log");
    let f = c.fake.fixtures();
    let canaries = [
        LOGIN.to_owned(),
        "Anderson".to_owned(),
        f.id_of(CALLER),
        f.id_of("agent3"),
        "agent3@".to_owned(),
    ];
    for canary in &canaries {
        assert!(!redis.contains(canary.as_str()), "Redis holds {canary}");
        assert!(!pg.contains(canary.as_str()), "PostgreSQL holds {canary}");
    }
}
