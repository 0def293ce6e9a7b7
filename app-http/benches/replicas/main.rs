//! What the load balancer and the shared stores add to a caller lookup: the same signed-in agent searches for the
//! same caller N times through haproxy (round robin over three replicas on Redis and PostgreSQL) and N times
//! straight to one replica, and the bench prints p50/p95/p99 of each and the difference.
//!
//! ```text
//! cargo bench -p fctr-portal --bench replicas            # 2,000 lookups each way
//! FCTR_BENCH_LOOKUPS=5000 cargo bench -p fctr-portal --bench replicas
//! ```
//!
//! Needs what the replicas test needs (redis-server, haproxy, the machine's PostgreSQL); it reuses that test's
//! cluster and agent.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../tests/replicas/agent.rs"]
#[allow(dead_code)]
mod agent;
#[path = "../../tests/replicas/cluster.rs"]
#[allow(dead_code)]
mod cluster;

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
