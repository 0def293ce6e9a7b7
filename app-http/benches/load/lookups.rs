//! Load benchmark: phase (a): lookups.

use super::*;

pub(crate) struct Lat {
    /// Lookups started, warm-up included.
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) micros: Vec<u32>,
    pub(crate) elapsed: Duration,
    /// CPU seconds of this process minus the load thread over the recorded window: the portal and the fake
    /// (or the fake alone), without the load generator.
    pub(crate) server_cpu: f64,
}

impl Lat {
    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.micros[i.min(self.micros.len() - 1)]) / 1000.0
    }
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    /// Server-side CPU per successful lookup, in microseconds.
    pub(crate) fn cpu_us(&self) -> f64 {
        self.server_cpu * 1e6 / self.ok.max(1) as f64
    }
}

/// One lookup: the client to use and the lookup's number; `true` when every response was a success.
pub(crate) type LookupFn =
    Arc<dyn Fn(reqwest::Client, u64) -> BoxFuture<'static, bool> + Send + Sync>;

/// How the load is offered.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// `clients` tasks, each starting its next lookup as soon as the last one answered (saturation).
    Closed { clients: usize },
    /// `agents` tasks sharing a fixed schedule of `rate` lookups per second; latency counts from the scheduled
    /// start, so a lookup that had to wait for its agent's previous one is charged for the wait.
    Open { agents: usize, rate: f64 },
}

/// CPU seconds (user + system) from a `/proc/.../stat` file.
pub(crate) fn cpu_secs(stat: &str) -> f64 {
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
pub(crate) async fn drive(shape: Shape, secs: u64, lookup: LookupFn) -> Lat {
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

pub(crate) async fn drive_here(shape: Shape, secs: u64, lookup: LookupFn) -> Lat {
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
pub(crate) async fn fetch_ok(req: reqwest::RequestBuilder) -> bool {
    match req.send().await {
        Ok(r) => {
            let s = r.status().is_success();
            s && r.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// The upstream requests of one portal lookup, as the fake saw them, with the caller id as `{id}`.
pub(crate) async fn upstream_of_one_lookup(
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
pub(crate) async fn run(start_rss: f64) {
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
