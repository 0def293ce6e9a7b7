//! Tap-to-screen as the agent sees it: from the caller's tap on the phone to the agent's page saying "verified".
//!
//! ```text
//! cargo bench -p fctr-portal --bench tap                          # one node, then 3 replicas behind haproxy
//! FCTR_TAP_TARGETS=node cargo bench -p fctr-portal --bench tap    # one node only (no Redis/haproxy/PostgreSQL)
//! FCTR_TAP_TARGETS=replicas cargo bench -p fctr-portal --bench tap
//! ```
//!
//! For each target, N push verifications (`FCTR_TAP_N`, default 100) are started the way the agent starts them
//! (the caller card's form, with the agent's session and CSRF token), and for each the live page's event stream is
//! opened (`GET /verifications/{id}/events`, the stream the browser page reads). Each push is approved on the fake
//! Okta's simulated phone (`phones().approve`, with the right number) at a moment drawn uniformly over the first
//! minute after it was sent (stratified: the N moments cover 0 to `FCTR_TAP_SPREAD_SECS`, default 59.5 s, one per
//! N-th, in random order; the fake's pushes time out at 60 s). Tap-to-screen is the time from the approval to the
//! arrival of the stream's event whose status is `verified`. Printed: p50, p95, max, errors (refused pushes,
//! streams that failed or never said verified), the upstream polls (`fctr_upstream_polls_total` of every portal
//! process) per verification per poll interval, and the fake's rate-limit refusals (429) of push polls.
//!
//! - **node**: the portal in this process, built by `startup::from_config` as in production, on the fake Okta
//!   (also here), SQLite audit, in-memory state: the load bench's stack (`benches/load/stack.rs`).
//! - **replicas**: three `fctr-portal` processes behind haproxy (round robin) on Redis and PostgreSQL, the
//!   replicas test's cluster (`tests/replicas/cluster.rs`; needs `redis-server`, `haproxy` and PostgreSQL at
//!   `FCTR_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`). Requests and streams go
//!   through the load balancer, so a stream is usually served by another replica than the one that sent the push
//!   (it learns of the approval through Redis).
//!
//! The portals run their default poll schedule (0.75 s for the first minute). The fake's per-bucket rate limit is
//! raised (`FCTR_TAP_FAKE_LIMIT`, default 1,000,000 a minute) so that it measures the schedule; set it to the real
//! tenant's figure (Okta's default for the endpoint is in the hundreds a minute) to see the poller stretch its
//! interval instead of being refused. The client (streams and approvals) runs on its own thread and runtime.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use base64::Engine as _;
use fctr_portal::config::Config;
use fctr_testkit::okta::{FakeOktaOptions, FakeOktaState, FixtureUser};
use rand::Rng as _;
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "../../tests/replicas/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "../load/stack.rs"]
#[allow(dead_code)]
mod stack;

/// Extra callers of the one-node stack (`stack.rs` seeds them; its bench policy allows 100 pushes per caller an
/// hour).
const CALLERS: usize = 20;
/// The portal's default fast poll interval (what the figures are measured against).
const FAST: Duration = Duration::from_millis(750);
/// How an event stream says verified (the status part is JSON-encoded HTML in the event's data).
const VERIFIED: &str = r#"data-status=\"verified\""#;

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A signed-in agent's browser, reduced to what the bench needs: its cookie, its CSRF token, and where it sends
/// requests (the portal, or the load balancer) with which `Origin` (the public URL).
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn cookies(r: &reqwest::Response) -> Vec<(String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn between<'a>(s: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let i = s.find(before)? + before.len();
    let j = s[i..].find(after)? + i;
    Some(&s[i..j])
}

impl Browser {
    /// Signs `agent` in through the portal at `base` and the fake's login page.
    async fn sign_in(base: &str, fake: &FakeOktaState, agent: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let r = http
            .get(format!("{base}/auth/login?return_to=%2Fsearch"))
            .send()
            .await
            .expect("login");
        let mut jar = cookies(&r);
        let authorize = location(&r);
        let page = http
            .get(&authorize)
            .send()
            .await
            .expect("authorize")
            .text()
            .await
            .expect("page");
        let request_id =
            between(&page, "name=\"request_id\" value=\"", "\"").expect("sign-in page");
        let mut post = url::Url::parse(&authorize).expect("authorize URL");
        post.set_query(None);
        let r = http
            .post(post)
            .form(&[
                ("request_id", request_id),
                ("user", &fake.fixtures().id_of(agent)),
            ])
            .send()
            .await
            .expect("sign-in form");
        let back = location(&r);
        let jar_header = |jar: &[(String, String)]| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let r = http
            .get(&back)
            .header("cookie", jar_header(&jar))
            .send()
            .await
            .expect("callback");
        assert!(r.status().is_success(), "callback: {}", r.status());
        jar.extend(cookies(&r));
        let cookie = jar_header(&jar);
        let page = http
            .get(format!("{base}/search"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("search page")
            .text()
            .await
            .expect("search page");
        let csrf = between(&page, "name=\"csrf\" value=\"", "\"")
            .expect("a CSRF token")
            .to_owned();
        Self {
            http,
            base: base.to_owned(),
            cookie,
            csrf,
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .expect("the portal answers")
    }

    /// The caller card of `login`.
    async fn card(&self, login: &str) -> String {
        let r = self
            .post("/search", &[("csrf", &self.csrf), ("q", login)])
            .await;
        let body = r.text().await.expect("results");
        format!(
            "/callers/{}",
            between(&body, "href=\"/callers/", "\"").expect("a result")
        )
    }

    /// Sends a push from a card: the verification page's path, or why not.
    async fn push(&self, card: &str, factor: &str) -> Result<String, String> {
        let r = self
            .post(
                &format!("{card}/verify"),
                &[("csrf", &self.csrf), ("factor_id", factor)],
            )
            .await;
        if r.status().as_u16() == 303 {
            Ok(location(&r))
        } else {
            Err(format!("{}", r.status()))
        }
    }

    /// Reads the verification's event stream until it says verified: when that event arrived.
    async fn until_verified(&self, verification: &str, limit: Duration) -> Result<Instant, String> {
        let mut resp = self
            .http
            .get(format!("{}{verification}/events", self.base))
            .header("cookie", &self.cookie)
            .header("accept", "text/event-stream")
            .timeout(limit)
            .send()
            .await
            .map_err(|e| format!("stream: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("stream: {}", resp.status()));
        }
        let mut seen = String::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    let at = Instant::now();
                    seen.push_str(&String::from_utf8_lossy(&c));
                    if seen.contains(VERIFIED) {
                        return Ok(at);
                    }
                    // Keep only a tail long enough to hold a split needle.
                    if seen.len() > 64 * 1024 {
                        seen.drain(..seen.len() - 1024);
                    }
                }
                Ok(None) => return Err("stream ended without verified".into()),
                Err(e) => return Err(format!("stream: {e}")),
            }
        }
    }
}

/// What one target is: where the agent's browser goes, the fake Okta, the callers to push to (login, push factor
/// id), and the portal processes' metrics endpoints.
struct Target {
    name: &'static str,
    base: String,
    fake: FakeOktaState,
    callers: Vec<(String, String)>,
    metrics: Vec<String>,
}

async fn upstream_polls(metrics: &[String]) -> f64 {
    metric_sum(metrics, "fctr_upstream_polls_total", "").await
}

/// A counter summed over every portal process, over the series whose line contains `label` (`""`: all).
async fn metric_sum(metrics: &[String], name: &str, label: &str) -> f64 {
    let http = reqwest::Client::new();
    let mut sum = 0.0;
    for url in metrics {
        let text = http
            .get(url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        sum += text
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter(|l| l.contains(label))
            .filter_map(|l| l.rsplit(' ').next())
            .filter_map(|v| v.parse::<f64>().ok())
            .sum::<f64>();
    }
    sum
}

struct Outcome {
    tap: Result<Duration, String>,
    pending: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The client side of one run (on its own runtime): sign in, send the pushes one after another, open each
/// stream, approve each at its moment, and collect the outcomes.
async fn run_client(
    t: Arc<Target>,
    n: usize,
    spread: Duration,
    seed: u64,
) -> (Vec<Outcome>, usize) {
    let b = Browser::sign_in(&t.base, &t.fake, "agent3").await;
    let mut cards = Vec::new();
    for (login, _) in &t.callers {
        cards.push(b.card(login).await);
    }
    // One moment per N-th of the spread, jittered within it, in random order.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut slots: Vec<usize> = (0..n).collect();
    slots.shuffle(&mut rng);
    let offsets: Vec<Duration> = slots
        .iter()
        .map(|&k| spread.mul_f64((k as f64 + rng.gen_range(0.0..1.0)) / n as f64))
        .collect();
    let mut seen_tx: BTreeSet<String> = t
        .fake
        .phones()
        .pending()
        .into_iter()
        .map(|p| p.transaction_id)
        .collect();
    let mut refused = 0usize;
    let mut tasks = Vec::new();
    for (i, offset) in offsets.into_iter().enumerate() {
        let c = i % t.callers.len();
        let (login, factor) = &t.callers[c];
        let v = match b.push(&cards[c], factor).await {
            Ok(v) => v,
            Err(e) => {
                refused += 1;
                eprintln!("    push {i} refused: {e}");
                continue;
            }
        };
        let sent = Instant::now();
        let push = t
            .fake
            .phones()
            .pending()
            .into_iter()
            .find(|p| !seen_tx.contains(&p.transaction_id) && &p.login == login)
            .expect("the push reached the phone");
        seen_tx.insert(push.transaction_id.clone());
        let (b, fake) = (b.clone(), t.fake.clone());
        tasks.push(tokio::spawn(async move {
            let watch = {
                let b = b.clone();
                let v = v.clone();
                tokio::spawn(async move { b.until_verified(&v, Duration::from_secs(150)).await })
            };
            tokio::time::sleep_until((sent + offset).into()).await;
            let tapped = Instant::now();
            let approved = fake.phones().approve(
                &push.transaction_id,
                push.correct_answer.unwrap_or_default(),
            );
            let pending = tapped - sent;
            let tap = match (approved, watch.await) {
                (Err(e), _) => Err(format!("approve: {e}")),
                (_, Err(e)) => Err(format!("watcher: {e}")),
                (_, Ok(Err(e))) => Err(e),
                (Ok(_), Ok(Ok(at))) => Ok(at.saturating_duration_since(tapped)),
            };
            Outcome { tap, pending }
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("a verification's task"));
    }
    (out, refused)
}

async fn measure(t: Target, n: usize, spread: Duration, seed: u64) {
    let polls0 = upstream_polls(&t.metrics).await;
    let verified = || {
        metric_sum(
            &t.metrics,
            "fctr_verifications_total",
            "outcome=\"verified\"",
        )
    };
    let verified0 = verified().await;
    let refusals0: u64 = t.fake.rate_limit_refusals().values().sum();
    let t = Arc::new(t);
    let started = Instant::now();
    let client = {
        let t = Arc::clone(&t);
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime")
                .block_on(run_client(t, n, spread, seed))
        })
    };
    let (outcomes, refused) = tokio::task::spawn_blocking(move || client.join().expect("client"))
        .await
        .expect("client thread");
    let took = started.elapsed();
    // The pollers stop once they see the end; give the last ones a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let polls = upstream_polls(&t.metrics).await - polls0;
    let counted = metric_sum(
        &t.metrics,
        "fctr_verifications_total",
        "outcome=\"verified\"",
    )
    .await
        - verified0;
    let poll_refusals = t
        .fake
        .rate_limit_refusals()
        .iter()
        .filter(|(k, _)| k.contains("/transactions/"))
        .map(|(_, v)| *v)
        .sum::<u64>();
    let all_refusals = t.fake.rate_limit_refusals().values().sum::<u64>() - refusals0;

    let mut taps: Vec<Duration> = outcomes
        .iter()
        .filter_map(|o| o.tap.as_ref().ok().copied())
        .collect();
    taps.sort();
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| o.tap.as_ref().err())
        .collect();
    // Poller-intervals: each verification was pending `pending` at the fast interval; its poller polls one
    // interval after the push and once per interval after that, the last of which sees the approval.
    let intervals: f64 = outcomes
        .iter()
        .map(|o| o.pending.as_secs_f64() / FAST.as_secs_f64())
        .sum();
    let bound: f64 = outcomes
        .iter()
        .map(|o| (o.pending.as_secs_f64() / FAST.as_secs_f64()).floor() + 1.0)
        .sum();
    let s = |d: Duration| d.as_secs_f64();
    let mean = if taps.is_empty() {
        0.0
    } else {
        taps.iter().map(|d| d.as_secs_f64()).sum::<f64>() / taps.len() as f64
    };
    println!(
        "{}: {n} push verifications, approvals over the first {:.1} s, run took {:.1} s",
        t.name,
        spread.as_secs_f64(),
        took.as_secs_f64()
    );
    println!(
        "  verified on the agent's stream: {}/{n}; pushes refused: {refused}; errors: {}",
        taps.len(),
        errors.len()
    );
    for e in errors.iter().take(5) {
        println!("    error: {e}");
    }
    println!(
        "  tap-to-screen   p50 {:.3} s   p95 {:.3} s   max {:.3} s   (mean {:.3} s, min {:.3} s)   goal p95 <= 0.8 s: {}",
        s(percentile(&taps, 0.50)),
        s(percentile(&taps, 0.95)),
        s(taps.last().copied().unwrap_or_default()),
        mean,
        s(taps.first().copied().unwrap_or_default()),
        if !taps.is_empty()
            && percentile(&taps, 0.95) <= Duration::from_millis(800)
            && errors.is_empty()
        {
            "met"
        } else {
            "NOT MET"
        }
    );
    let per = |p: f64| if intervals > 0.0 { p / intervals } else { 0.0 };
    println!(
        "  upstream polls  {polls:.0} ({:.1} per verification) while pending {:.1} poller-intervals of {FAST:?}: \
         {:.3} per verification per interval",
        polls / n.max(1) as f64,
        intervals,
        per(polls),
    );
    println!(
        "  one poll per interval (the first an interval after the push, then one per interval until the approval \
         is seen) allows \
         {bound:.0}: {}",
        if polls <= bound { "held" } else { "EXCEEDED" }
    );
    println!(
        "  429s from the fake's rate limit: {poll_refusals} on push polls, {all_refusals} in all"
    );
    println!(
        "  fctr_verifications_total{{outcome=\"verified\"}} over every portal process: {counted:.0} for {} \
         verified ({})",
        taps.len(),
        if (counted - taps.len() as f64).abs() < 0.5 {
            "each once"
        } else {
            "MISCOUNTED"
        }
    );
}

fn main() {
    let n = env_num("FCTR_TAP_N", 100.0).max(1.0) as usize;
    let spread = Duration::from_secs_f64(env_num("FCTR_TAP_SPREAD_SECS", 59.5).clamp(0.0, 59.5));
    let limit = env_num("FCTR_TAP_FAKE_LIMIT", 1_000_000.0).max(1.0) as u32;
    let seed = env_num("FCTR_TAP_SEED", 16.0) as u64;
    let targets = std::env::var("FCTR_TAP_TARGETS").unwrap_or_else(|_| "node,replicas".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for target in targets.split(',').map(str::trim) {
            match target {
                "node" => {
                    let fake = stack::start_fake().await;
                    fake.state.set_rate_limit(limit);
                    let st = stack::start_stack(fake).await;
                    let callers: Vec<FixtureUser> = stack::extra_callers();
                    let t = Target {
                        name: "one node (in-process portal, SQLite audit, in-memory state)",
                        base: st.base.clone(),
                        fake: st.fake.state.clone(),
                        callers: callers
                            .iter()
                            .map(|u| (u.login.clone(), u.factors[0].id.clone()))
                            .collect(),
                        metrics: vec![format!("{}/metrics", st.base)],
                    };
                    measure(t, n, spread, seed).await;
                }
                "replicas" => {
                    // The shipped example policy, with the push limits raised for the run (5 per caller and 60 per
                    // agent an hour would refuse it).
                    let policy = include_str!("../../../examples/policy.toml")
                        .replace(
                            "challenges_per_target_per_hour = 5",
                            "challenges_per_target_per_hour = 100",
                        )
                        .replace(
                            "challenges_per_agent_per_hour = 60",
                            "challenges_per_agent_per_hour = 10000",
                        );
                    let c = cluster::Cluster::start_with_policy(3, Some(&policy)).await;
                    c.fake.set_rate_limit(limit);
                    let t = Target {
                        name: "3 replicas behind haproxy (Redis + PostgreSQL)",
                        base: c.lb.clone(),
                        fake: (*c.fake).clone(),
                        callers: ["alice", "bob"]
                            .iter()
                            .map(|h| {
                                let f = c.fake.fixtures().factor(h, "push").expect("a push factor");
                                (format!("{h}@example.com"), f.id.clone())
                            })
                            .collect(),
                        metrics: c
                            .replicas
                            .iter()
                            .map(|r| format!("http://127.0.0.1:{}/metrics", r.port))
                            .collect(),
                    };
                    measure(t, n, spread, seed).await;
                    drop(c);
                }
                other => eprintln!("unknown target {other:?} (node, replicas)"),
            }
        }
    });
}
