//! Load benchmark for the portal: `cargo bench -p fctr-portal --bench load`.
//!
//! A plain `main` (no harness) that prints figures. Everything runs on loopback in this process: the fake Okta
//! (served here behind a layer that counts its `/api/v1/` requests), the portal (built by
//! `fctr_portal::startup::from_config` from a bench configuration that points at the fake, with a bench policy and
//! edge quota that allow the load), and the load generators. The SSE watchers of phase (b) run in a child process
//! (this binary again, `FCTR_BENCH_CHILD=sse`) so that their buffers do not count in the portal's resident memory.
//!
//! 1. Memory: `VmRSS` at start, with the fake Okta alone, and with the portal idle.
//! 2. (b) 1,000 pending push challenges (never answered), each watched by 3 SSE clients, for ~10 s: upstream
//!    polls (`fctr_upstream_polls_total` from `/metrics`) per challenge per poll interval, SSE events per stream,
//!    and (c) `VmRSS`.
//! 3. (a) Caller lookups through the JSON API (bearer ID tokens from the fake issuer) beside a direct baseline
//!    that sends the fake exactly the upstream requests one portal lookup makes (recorded from a probe lookup),
//!    concurrently as the engine does. Each is run closed-loop (64 clients back to back: saturation) and
//!    open-loop at fixed rates over 64 agents (latency from the scheduled start, so queueing is charged). The
//!    load generator runs on its own thread and runtime. Printed per run: lookups/s, p50, p99, max, errors,
//!    server-side CPU per lookup (this process minus the load thread) and upstream requests per lookup; per
//!    shape, what the portal adds at p50 and p99.
//!
//! Knobs (environment): `FCTR_BENCH_SECONDS` (length of each lookup run, default 10), `FCTR_BENCH_CLIENTS` (64),
//! `FCTR_BENCH_RATES` (open-loop rates, default `200,500`; `none` for none), `FCTR_BENCH_CHALLENGES` (1000),
//! `FCTR_BENCH_WATCHERS` (3), `FCTR_BENCH_WATCH_SECONDS` (10). Every phase is bounded in time and in request
//! count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

use base64::Engine as _;
use fctr_portal::config::Config;
use fctr_testkit::okta::{FakeOktaOptions, FakeOktaState, FixtureUser};
use futures::future::BoxFuture;
use sha2::{Digest as _, Sha256};
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The portal's poll interval (`PollSettings::default()`, what `from_config` uses).
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Extra callers the challenges are spread over (the policy allows at most 100 challenges per caller per hour).
const CALLERS: usize = 20;
/// A hard cap on requests per lookup phase, whatever the duration.
const MAX_REQUESTS: u64 = 2_000_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of a process in MiB (`VmRSS` of `/proc/<pid>/status`).
fn rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn rss_self() -> f64 {
    rss_mib("self")
}

fn main() {
    if std::env::var("FCTR_BENCH_CHILD").as_deref() == Ok("sse") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Ids come on stdin up to a `go` line; stdin closing later means stop.
        let mut stdin = std::io::stdin().lock();
        let mut ids = Vec::new();
        let mut line = String::new();
        while stdin.read_line(&mut line).unwrap_or(0) > 0 && line.trim() != "go" {
            ids.push(line.trim().to_owned());
            line.clear();
        }
        drop(stdin);
        let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
            let _ = eof_tx.send(());
        });
        rt.block_on(sse_child(ids, eof_rx));
        return;
    }
    let start_rss = rss_self();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(start_rss));
}

// ---------------------------------------------------------------------------------------------------------------
// The stack

struct Stack {
    fake: Fake,
    base: String,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The fake Okta, served here behind a layer that counts (and on demand records) its `/api/v1/` requests: the
/// upstream requests a portal lookup really makes, which the direct baseline then replays.
struct Fake {
    state: FakeOktaState,
    base: url::Url,
    api_requests: Arc<AtomicU64>,
    record: Arc<std::sync::Mutex<Option<Vec<String>>>>,
}

impl Fake {
    fn fixtures(&self) -> &fctr_testkit::okta::Fixtures {
        self.state.fixtures()
    }
    fn phones(&self) -> fctr_testkit::okta::Phones {
        self.state.phones()
    }
    fn oidc_client(&self) -> fctr_testkit::okta::OidcClient {
        self.state.oidc_client()
    }
    fn api_token(&self) -> &str {
        self.state.api_token()
    }
    fn base_url(&self) -> url::Url {
        self.base.clone()
    }
}

fn extra_callers() -> Vec<FixtureUser> {
    (0..CALLERS)
        .map(|i| {
            let handle = format!("bench{i:02}");
            let id = format!("00u{handle:0<17}");
            FixtureUser::caller(
                &handle,
                &id,
                &format!("{handle}@example.com"),
                "Bench",
                &format!("Caller{i:02}"),
                None,
            )
        })
        .collect()
}

async fn start_fake() -> Fake {
    let opts = FakeOktaOptions {
        // The fake's own per-route rate limit (600/min by default) would throttle the load, not the portal.
        rate_limit_per_minute: 100_000_000,
        extra_users: extra_callers(),
        ..FakeOktaOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake");
    let base = url::Url::parse(&format!(
        "http://{}",
        listener.local_addr().expect("address")
    ))
    .expect("fake URL");
    let state = FakeOktaState::new_async(&opts, base.clone())
        .await
        .expect("fake Okta state");
    let api_requests = Arc::new(AtomicU64::new(0));
    let record: Arc<std::sync::Mutex<Option<Vec<String>>>> = Arc::default();
    let (n, rec) = (api_requests.clone(), record.clone());
    let app = fctr_testkit::okta::router(state.clone()).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let path = req.uri().path().to_owned();
            if path.starts_with("/api/v1/") {
                n.fetch_add(1, Ordering::Relaxed);
                if let Some(v) = rec.lock().unwrap().as_mut() {
                    v.push(format!("{} {path}", req.method()));
                }
            }
            next.run(req)
        },
    ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake {
        state,
        base,
        api_requests,
        record,
    }
}

async fn start_stack(fake: Fake) -> Stack {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let base = format!("http://{addr}");
    fake.state.add_redirect_uri(format!("{base}/auth/callback"));

    // The production wiring (`from_config`) pointed at the fake, with a bench policy: the default policy's
    // limits (5 challenges per caller, 60 per agent, 300 lookups per agent, per hour) would refuse the load.
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let token = write("okta-token", fake.api_token());
    let client = fake.oidc_client();
    let secret = write(
        "oidc-secret",
        secrecy::ExposeSecret::expose_secret(&client.client_secret),
    );
    let key = write("pseudo-key", &"7".repeat(64));
    let policy = write(
        "policy.toml",
        "version = 1\n[limits]\nchallenges_per_target_per_hour = 100\n\
         challenges_per_agent_per_hour = 10000\nlookups_per_agent_per_hour = 100000\n",
    );
    let audit = dir.path().join("audit.sqlite").display().to_string();
    let toml = format!(
        "[server]\npublic_url = \"{base}\"\ntenant = \"bench\"\n\n\
         [limits]\napi_per_agent_per_minute = 100000000\n\n\
         [okta]\norg_url = \"{org}\"\napi_token_file = \"{token}\"\n\n\
         [sign_in]\nissuer = \"{issuer}\"\nclient_id = \"{cid}\"\nclient_secret_file = \"{secret}\"\n\n\
         [policy]\nfile = \"{policy}\"\n\n\
         [pseudonymization]\nkey_id = \"bench\"\nkey_file = \"{key}\"\n\n\
         [audit]\nsqlite_path = \"{audit}\"\ncheckpoint_key_file = \"{key}\"\n",
        org = fake.base_url(),
        issuer = client.issuer,
        cid = client.client_id,
    );
    let cfg = Config::parse(&toml, Path::new("bench.toml")).expect("bench configuration");
    let state = fctr_portal::startup::from_config(&cfg)
        .await
        .expect("portal starts");
    let app = fctr_portal::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stack {
        fake,
        base,
        addr,
        _dir: dir,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

fn between<'a>(s: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let i = s.find(before)? + before.len();
    let j = s[i..].find(after)? + i;
    Some(&s[i..j])
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Picks `agent` on the fake's sign-in page for an authorize URL; returns the redirect (callback) URL.
async fn pick_agent(c: &reqwest::Client, fake: &Fake, authorize: &str, agent: &str) -> String {
    let page = c
        .get(authorize)
        .send()
        .await
        .expect("authorize")
        .text()
        .await
        .expect("page");
    let request_id = between(&page, "name=\"request_id\" value=\"", "\"")
        .unwrap_or_else(|| panic!("no sign-in page: {page}"));
    let mut post = url::Url::parse(authorize).expect("authorize URL");
    post.set_query(None);
    let r = c
        .post(post)
        .form(&[
            ("request_id", request_id),
            ("user", &fake.fixtures().id_of(agent)),
        ])
        .send()
        .await
        .expect("sign-in form");
    location(&r)
}

/// An ID token for `agent` from the fake issuer (code flow with PKCE, as the portal does), used as the API's
/// bearer token.
async fn bearer(st: &Stack, agent: &str) -> String {
    let c = http();
    let client = st.fake.oidc_client();
    let issuer = client.issuer.as_str().trim_end_matches('/').to_owned();
    let verifier = format!("bench-verifier-{agent}-{}", "x".repeat(40));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let redirect = format!("{}/auth/callback", st.base);
    let mut authorize = url::Url::parse(&format!("{issuer}/oauth2/v1/authorize")).expect("URL");
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
    let back = pick_agent(&c, &st.fake, authorize.as_str(), agent).await;
    let code = url::Url::parse(&back)
        .expect("callback URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {back}"));
    let secret = secrecy::ExposeSecret::expose_secret(&client.client_secret).to_owned();
    let tokens: serde_json::Value = c
        .post(format!("{issuer}/oauth2/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
            ("client_id", &client.client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token JSON");
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {tokens}"))
        .to_owned()
}

/// A portal session cookie (`fctr=…`) for `agent`, through the portal's own sign-in.
async fn session_cookie(st: &Stack, agent: &str) -> String {
    let c = http();
    let r = c
        .get(format!("{}/auth/login?return_to=%2Fsearch", st.base))
        .send()
        .await
        .expect("login");
    let pre = cookie_from(&r, "fctr-login").expect("pre-login cookie");
    let authorize = location(&r);
    let back = pick_agent(&c, &st.fake, &authorize, agent).await;
    let r = c
        .get(&back)
        .header("cookie", format!("fctr-login={pre}"))
        .send()
        .await
        .expect("callback");
    let sid = cookie_from(&r, "fctr").unwrap_or_else(|| panic!("no session: {}", r.status()));
    format!("fctr={sid}")
}

fn cookie_from(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// A counter from the portal's `/metrics` (sum over labels).
async fn metric(st: &Stack, name: &str) -> f64 {
    metric_without(st, name, None).await
}

/// A counter from the portal's `/metrics`, summed over the series whose labels do not contain `skip`.
async fn metric_without(st: &Stack, name: &str, skip: Option<&str>) -> f64 {
    let text = http()
        .get(format!("{}/metrics", st.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| skip.is_none_or(|s| !l.contains(s)))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

// ---------------------------------------------------------------------------------------------------------------
// Phase (b): pending challenges watched over SSE

async fn begin_challenges(st: &Stack, token: &str, n: usize) -> Vec<String> {
    let c = http();
    let callers: Vec<(String, String)> = extra_callers()
        .iter()
        .map(|u| (u.id.clone(), u.factors[0].id.clone()))
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, next, callers) = (c.clone(), next.clone(), callers.clone());
        let (base, token) = (st.base.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (user, factor) = &callers[i % callers.len()];
                let r = c
                    .post(format!("{base}/api/v1/users/{user}/verifications"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "factor_id": factor }))
                    .send()
                    .await
                    .expect("begin");
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                match body["id"].as_str() {
                    Some(id) if status.as_u16() == 201 => ids.push(id.to_owned()),
                    _ => failures.push(format!("{status} {body}")),
                }
            }
            (ids, failures)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let (mut got, failures) = t.await.expect("task");
        assert!(
            failures.is_empty(),
            "challenges refused: {} (first: {})",
            failures.len(),
            failures[0]
        );
        ids.append(&mut got);
    }
    ids
}

/// The child: opens `watchers` SSE streams per verification id read from stdin, prints `ready <ok> <failed>`
/// once each has its first event, then reads until stdin closes and prints `events <n>`.
async fn sse_child(ids: Vec<String>, eof: tokio::sync::oneshot::Receiver<()>) {
    let addr = std::env::var("FCTR_BENCH_PORTAL").expect("portal address");
    let cookie = std::env::var("FCTR_BENCH_COOKIE").expect("cookie");
    let watchers = env_num("FCTR_BENCH_WATCHERS", 3);
    let ready = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for id in &ids {
        for _ in 0..watchers {
            let (addr, cookie, id) = (addr.clone(), cookie.clone(), id.clone());
            let (ready, failed, events) = (ready.clone(), failed.clone(), events.clone());
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let req = format!(
                    "GET /verifications/{id}/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
                     Accept: text/event-stream\r\n\r\n"
                );
                if s.write_all(req.as_bytes()).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut buf = vec![0u8; 4096];
                let mut head = String::new();
                let mut first = true;
                loop {
                    let n = tokio::select! {
                        r = s.read(&mut buf) => r.unwrap_or(0),
                        _ = stop.changed() => 0,
                    };
                    if n == 0 {
                        if first {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    let seen = chunk.matches("event: status").count() as u64;
                    events.fetch_add(seen, Ordering::Relaxed);
                    if first {
                        head.push_str(&chunk);
                        if head.contains("event: status") {
                            first = false;
                            if head.starts_with("HTTP/1.1 200") {
                                ready.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failed.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        } else if head.len() > 64 * 1024 || head.starts_with("HTTP/1.1 4") {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }));
        }
    }
    let total = ids.len() * usize::try_from(watchers).unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "ready {} {}",
        ready.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    let _ = out.flush();
    let base = events.load(Ordering::Relaxed);
    let _ = eof.await;
    let _ = writeln!(
        out,
        "events {} {:.1}",
        events.load(Ordering::Relaxed) - base,
        rss_self()
    );
    let _ = out.flush();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Phase (a): lookups

struct Lat {
    /// Lookups started, warm-up included.
    sent: u64,
    ok: u64,
    errors: u64,
    micros: Vec<u32>,
    elapsed: Duration,
    /// CPU seconds of this process minus the load thread over the recorded window: the portal and the fake
    /// (or the fake alone), without the load generator.
    server_cpu: f64,
}

impl Lat {
    fn pct(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.micros[i.min(self.micros.len() - 1)]) / 1000.0
    }
    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    /// Server-side CPU per successful lookup, in microseconds.
    fn cpu_us(&self) -> f64 {
        self.server_cpu * 1e6 / self.ok.max(1) as f64
    }
}

/// One lookup: the client to use and the lookup's number; `true` when every response was a success.
type LookupFn = Arc<dyn Fn(reqwest::Client, u64) -> BoxFuture<'static, bool> + Send + Sync>;

/// How the load is offered.
#[derive(Clone, Copy)]
enum Shape {
    /// `clients` tasks, each starting its next lookup as soon as the last one answered (saturation).
    Closed { clients: usize },
    /// `agents` tasks sharing a fixed schedule of `rate` lookups per second; latency counts from the scheduled
    /// start, so a lookup that had to wait for its agent's previous one is charged for the wait.
    Open { agents: usize, rate: f64 },
}

/// CPU seconds (user + system) from a `/proc/.../stat` file.
fn cpu_secs(stat: &str) -> f64 {
    let s = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the `(comm)`, which may itself contain spaces: state is field 3, utime 14, stime 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // `rest` starts at field 3, so field n is at index n - 3. Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs the load for `secs` seconds (after a 1 s warm-up that is not recorded) on a thread of its own with its
/// own single-threaded runtime and HTTP client, so the generator neither shares the portal's worker threads nor
/// counts in the server CPU figure.
async fn drive(shape: Shape, secs: u64, lookup: LookupFn) -> Lat {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("load runtime");
        let lat = rt.block_on(drive_here(shape, secs, lookup));
        let _ = tx.send(lat);
    });
    rx.await.expect("load thread")
}

async fn drive_here(shape: Shape, secs: u64, lookup: LookupFn) -> Lat {
    let c = http();
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let warm_until = start + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(secs);
    let cpu0 = Arc::new(std::sync::Mutex::new(None::<(f64, f64)>));
    let tasks_n = match shape {
        Shape::Closed { clients } => clients,
        Shape::Open { agents, .. } => agents,
    };
    // Server CPU is sampled at the end of the warm-up by a timer task on this same thread.
    let sampler = {
        let cpu0 = cpu0.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(warm_until.into()).await;
            *cpu0.lock().unwrap() = Some((
                cpu_secs("/proc/self/stat"),
                cpu_secs("/proc/thread-self/stat"),
            ));
        })
    };
    let mut tasks = Vec::new();
    for k in 0..tasks_n {
        let (lookup, sent, c) = (lookup.clone(), sent.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut j = 0u64;
            loop {
                // When this lookup is due: now (closed loop), or on the shared schedule (open loop).
                let due = match shape {
                    Shape::Closed { .. } => Instant::now(),
                    Shape::Open { agents, rate } => {
                        let n = j as f64 * agents as f64 + k as f64;
                        start + Duration::from_secs_f64(n / rate)
                    }
                };
                j += 1;
                if due >= end {
                    break;
                }
                let i = sent.fetch_add(1, Ordering::Relaxed);
                if i >= MAX_REQUESTS {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let good = lookup(c.clone(), i).await;
                let us = u32::try_from(due.elapsed().as_micros()).unwrap_or(u32::MAX);
                if due >= warm_until {
                    if good {
                        ok += 1;
                        micros.push(us);
                    } else {
                        errors += 1;
                    }
                }
            }
            (ok, errors, micros)
        }));
    }
    let mut lat = Lat {
        sent: 0,
        ok: 0,
        errors: 0,
        micros: Vec::new(),
        elapsed: Duration::from_secs(secs),
        server_cpu: f64::NAN,
    };
    for t in tasks {
        let (ok, errors, mut m) = t.await.expect("client task");
        lat.ok += ok;
        lat.errors += errors;
        lat.micros.append(&mut m);
    }
    let (proc1, mine1) = (
        cpu_secs("/proc/self/stat"),
        cpu_secs("/proc/thread-self/stat"),
    );
    let _ = sampler.await;
    if let Some((proc0, mine0)) = *cpu0.lock().unwrap() {
        lat.server_cpu = (proc1 - proc0) - (mine1 - mine0);
    }
    // Closed loop: the last lookups may end after `end`; the window is what was actually recorded.
    lat.elapsed = Instant::now()
        .saturating_duration_since(warm_until)
        .max(lat.elapsed);
    lat.sent = sent.load(Ordering::Relaxed).min(MAX_REQUESTS);
    lat.micros.sort_unstable();
    lat
}

/// Sends `req` and reads the whole body; `true` for a 2xx.
async fn fetch_ok(req: reqwest::RequestBuilder) -> bool {
    match req.send().await {
        Ok(r) => {
            let s = r.status().is_success();
            s && r.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// The upstream requests of one portal lookup, as the fake saw them, with the caller id as `{id}`.
async fn upstream_of_one_lookup(
    st: &Stack,
    c: &reqwest::Client,
    token: &str,
    caller: &str,
) -> Vec<String> {
    *st.fake.record.lock().unwrap() = Some(Vec::new());
    let r = c
        .get(format!("{}/api/v1/users/{caller}", st.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("probe lookup");
    assert!(r.status().is_success(), "probe lookup: {}", r.status());
    let _ = r.bytes().await;
    let mut seen = st.fake.record.lock().unwrap().take().unwrap_or_default();
    seen.sort();
    seen.iter().map(|p| p.replace(caller, "{id}")).collect()
}

// ---------------------------------------------------------------------------------------------------------------

#[allow(clippy::too_many_lines)]
async fn run(start_rss: f64) {
    let secs = env_num("FCTR_BENCH_SECONDS", 10);
    let clients = usize::try_from(env_num("FCTR_BENCH_CLIENTS", 64)).unwrap_or(64);
    let challenges = usize::try_from(env_num("FCTR_BENCH_CHALLENGES", 1000)).unwrap_or(1000);
    let watchers = env_num("FCTR_BENCH_WATCHERS", 3);
    let watch_secs = env_num("FCTR_BENCH_WATCH_SECONDS", 10);
    println!(
        "fctr-portal load bench: {} CPU(s), {clients} clients x {secs} s lookups, {challenges} challenges x \
         {watchers} SSE watchers x {watch_secs} s; loopback only",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );

    // Memory with nothing, with the fake alone, with the portal idle.
    let fake = start_fake().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_fake = rss_self();
    let st = start_stack(fake).await;
    let c = http();
    let ready = c
        .get(format!("{}/readyz", st.base))
        .send()
        .await
        .expect("readyz");
    assert!(ready.status().is_success(), "readyz: {}", ready.status());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_self();
    println!();
    println!("(c) resident memory (VmRSS of this process)");
    println!("    at start (runtime only)                 {start_rss:8.1} MiB");
    println!("    + fake Okta (in-process)                {rss_fake:8.1} MiB");
    println!("    + portal, idle                          {rss_idle:8.1} MiB");
    println!(
        "    portal alone, estimated (start + its increment) {:8.1} MiB   (target < 60 MiB)",
        rss_idle - rss_fake + start_rss
    );

    let t2 = bearer(&st, "agent2").await;
    let tokens = Arc::new(vec![
        bearer(&st, "agent1").await,
        t2.clone(),
        bearer(&st, "agent3").await,
    ]);
    let cookie = session_cookie(&st, "agent2").await;
    let alice = st.fake.fixtures().id_of("alice");
    let probe = c
        .get(format!("{}/api/v1/users/{alice}", st.base))
        .bearer_auth(&t2)
        .send()
        .await
        .expect("lookup");
    assert!(probe.status().is_success(), "lookup: {}", probe.status());

    // (b) pending challenges watched over SSE.
    let t = Instant::now();
    let ids = begin_challenges(&st, &t2, challenges).await;
    let began = t.elapsed();
    let pending = st.fake.phones().pending().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_unwatched = rss_self();
    let exe = std::env::current_exe().expect("this binary");
    let mut child = Command::new(exe)
        .env("FCTR_BENCH_CHILD", "sse")
        .env("FCTR_BENCH_PORTAL", st.addr.to_string())
        .env("FCTR_BENCH_COOKIE", &cookie)
        .env("FCTR_BENCH_WATCHERS", watchers.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("SSE child");
    let child_pid = child.id().to_string();
    let mut stdin = child.stdin.take().expect("stdin");
    for id in &ids {
        writeln!(stdin, "{id}").expect("write ids");
    }
    writeln!(stdin, "go").expect("go");
    stdin.flush().expect("flush");
    let stdout = child.stdout.take().expect("stdout");
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line_tx.send(l).is_err() {
                break;
            }
        }
    });
    let t = Instant::now();
    let ready_line = tokio::time::timeout(Duration::from_secs(90), line_rx.recv())
        .await
        .expect("SSE watchers connect in time")
        .expect("ready line");
    let connected = t.elapsed();
    let polls0 = metric(&st, "fctr_upstream_polls_total").await;
    let w0 = Instant::now();
    let mut rss_peak = rss_self();
    let mut child_rss = rss_mib(&child_pid);
    while w0.elapsed() < Duration::from_secs(watch_secs) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(rss_self());
        child_rss = child_rss.max(rss_mib(&child_pid));
    }
    let polls1 = metric(&st, "fctr_upstream_polls_total").await;
    let window = w0.elapsed();
    let pollers = metric(&st, "fctr_pollers_running").await;
    let still_pending = st.fake.phones().pending().len();
    drop(stdin);
    let events_line = tokio::time::timeout(Duration::from_secs(30), line_rx.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let _ = child.wait();
    let watchers_left = Instant::now();
    let polls = polls1 - polls0;
    let intervals = window.as_secs_f64() / POLL_INTERVAL.as_secs_f64();
    let per = polls / ids.len() as f64 / intervals;
    let mut ev = events_line.split(' ').skip(1);
    let events: f64 = ev.next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    let streams = ids.len() as f64 * watchers as f64;
    println!();
    println!(
        "(b) {} pending push challenges, {watchers} SSE watchers each",
        ids.len()
    );
    println!(
        "    challenges started in {:.1} s ({:.0}/s); pushes waiting at the fake: {pending}, still after: {still_pending}",
        began.as_secs_f64(),
        ids.len() as f64 / began.as_secs_f64()
    );
    println!(
        "    SSE streams connected: {ready_line} (ok failed) in {:.1} s",
        connected.as_secs_f64()
    );
    println!(
        "    upstream polls in {:.1} s: {polls:.0} = {per:.3} per challenge per {:?} interval   (must be <= 1)",
        window.as_secs_f64(),
        POLL_INTERVAL
    );
    println!("    pollers running (gauge at the end): {pollers:.0}");
    println!(
        "    SSE status events received: {events:.0} = {:.2} per stream per interval",
        events / streams / intervals
    );
    println!();
    println!("(c) resident memory with {} pending challenges", ids.len());
    println!("    unwatched (no poller yet)               {rss_unwatched:8.1} MiB");
    println!(
        "    watched by {:.0} SSE streams (peak)        {rss_peak:8.1} MiB   (target < 150 MiB)",
        streams
    );
    println!("    the SSE clients' own process (peak)     {child_rss:8.1} MiB   (not the portal)");
    let verdict = if per <= 1.0 { "OK" } else { "OVER" };
    println!("    polls per challenge per interval: {verdict}");

    // (a) lookups: portal JSON API vs the same upstream requests sent straight to the fake.
    let callers: Arc<Vec<String>> = Arc::new(
        ["alice", "bob", "dave", "frank", "heidi", "ivan"]
            .iter()
            .map(|h| st.fake.fixtures().id_of(h))
            .chain(extra_callers().into_iter().map(|u| u.id))
            .collect(),
    );
    // Let the pollers of (b) stop (three idle intervals after the watchers left) so (a) runs on a quiet stack.
    // A poller stops `idle_ticks` intervals after its last watcher is gone; a watcher is gone once the server
    // notices its connection closed (at the latest on the next write: the SSE keep-alive, as an unchanged status
    // sends nothing).
    while metric(&st, "fctr_pollers_running").await > 0.0
        && watchers_left.elapsed() < Duration::from_secs(40)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let left = metric(&st, "fctr_pollers_running").await;
    println!(
        "    pollers running {:.1} s after the SSE clients disconnected: {left:.0}",
        watchers_left.elapsed().as_secs_f64()
    );
    // What one portal lookup sends upstream: the direct baseline replays exactly these, concurrently (as the
    // engine issues them).
    let upstream = Arc::new(upstream_of_one_lookup(&st, &c, &t2, &callers[0]).await);
    let fake_base = st.fake.base_url().as_str().trim_end_matches('/').to_owned();
    let ssws = format!("SSWS {}", st.fake.api_token());
    let (pb, pt, pcl) = (st.base.clone(), tokens.clone(), callers.clone());
    let portal_lookup: LookupFn = Arc::new(move |c: reqwest::Client, i: u64| {
        let n = usize::try_from(i).unwrap_or(0);
        let req = c
            .get(format!("{pb}/api/v1/users/{}", pcl[n % pcl.len()]))
            .bearer_auth(&pt[n % pt.len()]);
        Box::pin(fetch_ok(req))
    });
    let (dcl, up) = (callers.clone(), upstream.clone());
    let direct_lookup: LookupFn = Arc::new(move |c: reqwest::Client, i: u64| {
        let n = usize::try_from(i).unwrap_or(0);
        let id = &dcl[n % dcl.len()];
        let reqs: Vec<_> = up
            .iter()
            .map(|m| {
                let path = m.trim_start_matches("GET ").replace("{id}", id);
                fetch_ok(
                    c.get(format!("{fake_base}{path}"))
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
    let rates: Vec<f64> = std::env::var("FCTR_BENCH_RATES")
        .unwrap_or_else(|_| "200,500".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .filter(|r: &f64| *r > 0.0)
        .collect();
    let mut shapes = vec![(
        format!("closed loop, {clients} clients"),
        Shape::Closed { clients },
    )];
    for r in &rates {
        shapes.push((
            format!("open loop, {r:.0}/s over {clients} agents"),
            Shape::Open {
                agents: clients,
                rate: *r,
            },
        ));
    }
    let mut results = Vec::new();
    for (name, shape) in shapes {
        let up0 = st.fake.api_requests.load(Ordering::Relaxed);
        let portal = drive(shape, secs, portal_lookup.clone()).await;
        let up1 = st.fake.api_requests.load(Ordering::Relaxed);
        let direct = drive(shape, secs, direct_lookup.clone()).await;
        // Upstream requests per portal lookup, warm-up included.
        let per = (up1 - up0) as f64 / portal.sent.max(1) as f64;
        results.push((name, portal, direct, per));
    }
    println!();
    println!(
        "(a) caller lookups, {secs} s per run after a 1 s warm-up; the load generator runs on its own thread"
    );
    println!(
        "    one portal lookup sends upstream: {}; the direct baseline sends the same, concurrently",
        upstream.join(", ")
    );
    println!(
        "    {:<42} {:<8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9}",
        "", "", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "cpu us", "upstream"
    );
    for (name, portal, direct, per) in &results {
        for (who, l, up) in [
            ("portal", portal, *per),
            ("direct", direct, upstream.len() as f64),
        ] {
            println!(
                "    {:<42} {:<8} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>9.0} {:>9.1}",
                if who == "portal" { name.as_str() } else { "" },
                who,
                l.rps(),
                l.pct(0.50),
                l.pct(0.99),
                l.pct(1.0),
                l.errors,
                l.cpu_us(),
                up
            );
        }
        let d99 = portal.pct(0.99) - direct.pct(0.99);
        println!(
            "    {:<42} p50 +{:.2} ms, p99 +{d99:.2} ms   (target: p99 < +1 ms: {})",
            "  the portal adds",
            portal.pct(0.50) - direct.pct(0.50),
            if d99 < 1.0 { "met" } else { "NOT met" }
        );
    }
    println!(
        "    cpu us: CPU of the server side (portal + fake, or the fake alone) per lookup, load generator \
         excluded; upstream: requests the fake served per lookup"
    );
    println!();
    println!(
        "memory after the lookup load: {:.1} MiB (allocator high-water mark; not a target)",
        rss_self()
    );
}
