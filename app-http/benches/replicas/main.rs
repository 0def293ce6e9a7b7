//! The replicated stack under load: three `fctr-portal` processes behind haproxy (round robin) on Redis and
//! PostgreSQL, with the testkit's fake Okta in this process (the cluster of `tests/replicas/cluster.rs`).
//!
//! Two modes:
//!
//! - **What the load balancer adds** (default): the same signed-in agent searches for the same caller N times
//!   through haproxy and N times straight to one replica (sequential, page path `POST /search`), and the bench
//!   prints p50/p95/p99 of each and the difference.
//! - **Capacity sweep** (`FCTR_BENCH_SWEEP=1`): caller lookups through the JSON API (`GET /api/v1/users/{id}`,
//!   bearer ID tokens of agent1..agent3 from the fake issuer) through haproxy, open loop over 64 agents, at rising
//!   rates beside a direct baseline that sends the fake the same upstream requests one lookup makes (recorded
//!   from a probe lookup); it stops when the p99 overhead reaches 1 ms and prints the capacity: the highest rate
//!   that stayed under (the same sweep as `cargo bench --bench load` with `FCTR_BENCH_SWEEP=1`, see
//!   `benches/load/loadgen.rs`). Per rate: served rate, p50/p99, the direct p99, the overhead, the replicas' CPU
//!   per lookup (the three portal processes, from `/proc`) and this process's (the fake Okta's; the load
//!   generator's thread excluded). haproxy's and Redis's CPU per lookup are printed at the end.
//!
//! ```text
//! cargo bench -p fctr-portal --bench replicas            # 2,000 lookups each way
//! FCTR_BENCH_LOOKUPS=5000 cargo bench -p fctr-portal --bench replicas
//! FCTR_BENCH_SWEEP=1 cargo bench -p fctr-portal --bench replicas
//! FCTR_BENCH_SWEEP=1 FCTR_BENCH_SECONDS=5 FCTR_BENCH_SWEEP_RATES=100,200,400 cargo bench -p fctr-portal --bench replicas
//! ```
//!
//! Sweep knobs: `FCTR_BENCH_SECONDS` (per run, default 5), `FCTR_BENCH_CLIENTS` (agents, 64),
//! `FCTR_BENCH_SWEEP_RATES` (comma-separated rates instead of 100/s up by a quarter each step to 20,000/s). Every
//! run is bounded in time and in requests; a sweep stops at the first rate that fails twice.
//!
//! Needs what the replicas test needs (redis-server, haproxy, the machine's PostgreSQL); it reuses that test's
//! cluster and agent. Everything shares this machine's cores: three replicas on one machine measure the
//! replicated path (load balancer hop, Redis for shared state, PostgreSQL for the audit chain), not three
//! machines' capacity.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    missing_docs
)]

#[path = "../../tests/replicas/agent.rs"]
#[allow(dead_code)]
mod agent;
#[path = "../../tests/replicas/cluster.rs"]
#[allow(dead_code)]
mod cluster;
// Shared with the load bench.
#[path = "../load/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

use loadgen::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn lookups(a: &mut agent::Agent, n: usize) -> Vec<Duration> {
    let csrf = a.csrf.clone();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = a
            .post("/search", &[("csrf", &csrf), ("q", "alice@example.com")])
            .await;
        out.push(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.body);
    }
    out.sort();
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::var("FCTR_BENCH_SWEEP").is_ok_and(|v| v != "0") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(capacity_sweep());
        return;
    }
    let n: usize = std::env::var("FCTR_BENCH_LOOKUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The shipped example policy, with the per-agent lookup limit (300 an hour) raised for the run.
        let policy = include_str!("../../../examples/policy.toml").replace(
            "lookups_per_agent_per_hour = 300",
            "lookups_per_agent_per_hour = 100000",
        );
        let c = cluster::Cluster::start_with_policy(3, Some(&policy)).await;
        // The fake's own limit would otherwise refuse a long run.
        c.fake.set_rate_limit(1_000_000);
        let mut lb = agent::Agent::new(&c.lb);
        lb.sign_in(&c.fake, "agent3").await;
        // The same session straight to replica r1 (it is in Redis, so any replica knows it); the Origin stays the
        // public URL, as a browser on the portal's page would send it.
        let mut direct = lb.clone();
        direct.set_base(&format!("http://127.0.0.1:{}", c.replicas[0].port));
        lookups(&mut lb, n / 10).await; // warm up both paths
        lookups(&mut direct, n / 10).await;
        let via_lb = lookups(&mut lb, n).await;
        let straight = lookups(&mut direct, n).await;
        println!("lookups: {n} each way, one agent, sequential, 3 replicas on Redis + PostgreSQL");
        println!("{:<22} {:>9} {:>9} {:>9}", "", "p50 ms", "p95 ms", "p99 ms");
        for (name, d) in [("through haproxy", &via_lb), ("straight to r1", &straight)] {
            println!(
                "{name:<22} {:>9.3} {:>9.3} {:>9.3}",
                ms(percentile(d, 0.50)),
                ms(percentile(d, 0.95)),
                ms(percentile(d, 0.99))
            );
        }
        println!(
            "{:<22} {:>9.3} {:>9.3} {:>9.3}",
            "added by the LB",
            ms(percentile(&via_lb, 0.50)) - ms(percentile(&straight, 0.50)),
            ms(percentile(&via_lb, 0.95)) - ms(percentile(&straight, 0.95)),
            ms(percentile(&via_lb, 0.99)) - ms(percentile(&straight, 0.99))
        );
    });
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An ID token for `agent` from the fake issuer (authorization code flow with PKCE, redirect to the load
/// balancer's callback), used as the API's bearer token.
async fn bearer(c: &cluster::Cluster, agent: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let http = load_client();
    let client = c.fake.oidc_client();
    let issuer = client.issuer.as_str().trim_end_matches('/').to_owned();
    let verifier = format!("bench-verifier-{agent}-{}", "x".repeat(40));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = format!("{}/auth/callback", c.lb);
    let mut authorize = url::Url::parse(&format!("{issuer}/oauth2/v1/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile groups")
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", "bench-state")
        .append_pair("nonce", "bench-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let page = http
        .get(authorize.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request_id = agent::between(&page, "name=\"request_id\" value=\"", "\"")
        .expect("the fake's sign-in page")
        .to_owned();
    let mut post = authorize.clone();
    post.set_query(None);
    let r = http
        .post(post)
        .form(&[
            ("request_id", request_id.as_str()),
            ("user", &c.fake.fixtures().id_of(agent)),
        ])
        .send()
        .await
        .unwrap();
    let back = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let code = url::Url::parse(&back)
        .expect("callback URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let secret = secrecy::ExposeSecret::expose_secret(&client.client_secret).to_owned();
    let tokens: serde_json::Value = http
        .post(format!("{issuer}/oauth2/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"].as_str().expect("an ID token").to_owned()
}

/// `FCTR_BENCH_SWEEP=1`: the capacity of three replicas behind haproxy (see the module docs).
async fn capacity_sweep() {
    let secs = env_num("FCTR_BENCH_SECONDS", 5);
    let agents = usize::try_from(env_num("FCTR_BENCH_CLIENTS", 64)).unwrap_or(64);
    // The shipped example policy with the per-agent lookup limit (300 an hour) raised to its maximum (100,000;
    // the sweep spreads its lookups over three agents), and the edge's per-agent API quota (120 a minute)
    // raised: the sweep measures lookups, not refusals.
    let policy = include_str!("../../../examples/policy.toml").replace(
        "lookups_per_agent_per_hour = 300",
        "lookups_per_agent_per_hour = 100000",
    );
    let c = cluster::Cluster::start_with(
        3,
        Some(&policy),
        "[limits]\napi_per_agent_per_minute = 100000000\n",
    )
    .await;
    c.fake.set_rate_limit(100_000_000);
    let tokens = Arc::new(vec![
        bearer(&c, "agent1").await,
        bearer(&c, "agent2").await,
        bearer(&c, "agent3").await,
    ]);
    let callers: Arc<Vec<String>> = Arc::new(
        ["alice", "bob", "dave", "frank", "heidi", "ivan"]
            .iter()
            .map(|h| c.fake.fixtures().id_of(h))
            .collect(),
    );
    // What one lookup sends upstream, as the fake saw it: the direct baseline sends exactly that.
    let http = load_client();
    for t in tokens.iter() {
        // Warm each replica's bearer and role caches (round robin: three lookups reach three replicas).
        for _ in 0..3 {
            let r = http
                .get(format!("{}/api/v1/users/{}", c.lb, callers[0]))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "lookup: {}", r.status());
        }
    }
    c.fake.peers().clear();
    let r = http
        .get(format!("{}/api/v1/users/{}", c.lb, callers[0]))
        .bearer_auth(&tokens[0])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "probe lookup: {}", r.status());
    let mut upstream: Vec<String> = c
        .fake
        .peers()
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/"))
        .map(|r| format!("{} {}", r.method, r.path.replace(&callers[0], "{id}")))
        .collect();
    upstream.sort();
    println!(
        "three replicas behind haproxy on Redis and PostgreSQL; one lookup sends upstream: {}",
        upstream.join(", ")
    );
    let upstream = Arc::new(upstream);
    let (lb, pt, pcl) = (c.lb.clone(), tokens.clone(), callers.clone());
    let portal: LookupFn = Arc::new(move |h: reqwest::Client, i: u64| {
        let n = usize::try_from(i).unwrap_or(0);
        let req = h
            .get(format!("{lb}/api/v1/users/{}", pcl[n % pcl.len()]))
            .bearer_auth(&pt[n % pt.len()]);
        Box::pin(fetch_ok(req))
    });
    let fake_base = c.fake.base_url().as_str().trim_end_matches('/').to_owned();
    let ssws = format!("SSWS {}", c.fake.api_token());
    let (dcl, up) = (callers.clone(), upstream.clone());
    let direct: LookupFn = Arc::new(move |h: reqwest::Client, i: u64| {
        let n = usize::try_from(i).unwrap_or(0);
        let id = &dcl[n % dcl.len()];
        let reqs: Vec<_> = up
            .iter()
            .filter_map(|m| m.strip_prefix("GET "))
            .map(|path| {
                fetch_ok(
                    h.get(format!("{fake_base}{}", path.replace("{id}", id)))
                        .header("authorization", &ssws)
                        .header("accept", "application/json"),
                )
            })
            .collect();
        Box::pin(async move {
            futures::future::join_all(reqs)
                .await
                .into_iter()
                .all(|ok| ok)
        })
    });
    let (replicas, haproxy, redis) = c.pids();
    let cpu: CpuProbe = Arc::new(move || {
        let rest = cpu_secs("/proc/self/stat") - cpu_secs("/proc/thread-self/stat");
        (pids_cpu(&replicas), rest)
    });
    let others: Vec<u32> = haproxy.into_iter().chain(redis).collect();
    let (others0, t0) = (pids_cpu(&others), Instant::now());
    let (steps, capacity) = sweep(
        "three replicas behind haproxy (Redis, PostgreSQL)",
        agents,
        secs,
        &portal,
        &direct,
        &cpu,
    )
    .await;
    let lookups: u64 = steps.iter().map(|s| s.portal.sent).sum();
    println!(
        "    portal us: the three replicas' CPU per lookup; fake us: this process less the load thread (the fake \
         Okta); haproxy + Redis over the sweep: {:.0} us per lookup ({:.0} s)",
        (pids_cpu(&others) - others0) * 1e6 / lookups.max(1) as f64,
        t0.elapsed().as_secs_f64()
    );
    print_capacity("three replicas", capacity);
}
