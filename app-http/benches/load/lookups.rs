//! Load benchmark: phase (a): lookups.

use super::*;

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
    let sweep_mode = env_num("FCTR_BENCH_SWEEP", 0) != 0;
    // Each of a sweep's many runs is shorter by default.
    let secs = env_num("FCTR_BENCH_SECONDS", if sweep_mode { 5 } else { 10 });
    let clients = usize::try_from(env_num("FCTR_BENCH_CLIENTS", 64)).unwrap_or(64);
    let challenges = usize::try_from(env_num("FCTR_BENCH_CHALLENGES", 1000)).unwrap_or(1000);
    let watchers = env_num("FCTR_BENCH_WATCHERS", 3);
    let watch_secs = env_num("FCTR_BENCH_WATCH_SECONDS", 10);
    let with_direct = env_num("FCTR_BENCH_DIRECT", 1) != 0;
    let with_proxy = env_num("FCTR_BENCH_PROXY", 1) != 0;
    let verifications = usize::try_from(env_num("FCTR_BENCH_VERIFICATIONS", 200)).unwrap_or(200);
    // The sweep measures lookups only: no pending challenges, no verifications unless asked for.
    let challenges = if sweep_mode && std::env::var("FCTR_BENCH_CHALLENGES").is_err() {
        0
    } else {
        challenges
    };
    let verifications = if sweep_mode && std::env::var("FCTR_BENCH_VERIFICATIONS").is_err() {
        0
    } else {
        verifications
    };
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

    if challenges > 0 {
        pending_phase(&st, &t2, &cookie, challenges, watchers, watch_secs).await;
    }

    // (a) lookups: portal JSON API vs the same upstream requests sent straight to the fake.
    let callers: Arc<Vec<String>> = Arc::new(
        ["alice", "bob", "dave", "frank", "heidi", "ivan"]
            .iter()
            .map(|h| st.fake.fixtures().id_of(h))
            .chain(extra_callers().into_iter().map(|u| u.id))
            .collect(),
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
    // The bare proxy: the closed loop's reference for what the HTTP hops alone cost (`proxy.rs`); started only
    // when a closed loop will use it.
    let proxy_lookup: Option<LookupFn> =
        if with_proxy && !sweep_mode && env_num("FCTR_BENCH_CLOSED", 1) != 0 {
            let proxy_base =
                start_bare_proxy(fake_base.clone(), ssws.clone(), upstream.clone()).await;
            let xcl = callers.clone();
            Some(Arc::new(move |c: reqwest::Client, i: u64| {
                let n = usize::try_from(i).unwrap_or(0);
                Box::pin(fetch_ok(
                    c.get(format!("{proxy_base}/proxy/{}", xcl[n % xcl.len()])),
                ))
            }))
        } else {
            None
        };
    let (dcl, up) = (callers.clone(), upstream.clone());
    let direct_lookup: LookupFn = Arc::new(move |c: reqwest::Client, i: u64| {
        let n = usize::try_from(i).unwrap_or(0);
        let id = &dcl[n % dcl.len()];
        let reqs: Vec<_> = up
            .iter()
            .map(|m| fetch_ok(upstream_get(&c, &fake_base, &ssws, m, id)))
            .collect();
        Box::pin(async move {
            futures::future::join_all(reqs)
                .await
                .into_iter()
                .all(|ok| ok)
        })
    });
    // The portal's CPU: this process less the load thread (the caller: the probe runs there) and the fake's
    // threads.
    let cpu: CpuProbe = Arc::new(|| {
        let fake = threads_cpu(FAKE_THREADS);
        let rest = cpu_secs("/proc/self/stat") - cpu_secs("/proc/thread-self/stat");
        (rest - fake, fake)
    });
    if sweep_mode {
        let (_, capacity) = sweep(
            "one node (portal + fake Okta in this process, SQLite audit)",
            clients,
            secs,
            &portal_lookup,
            &direct_lookup,
            &cpu,
        )
        .await;
        print_capacity("one node", capacity);
        if verifications > 0 {
            verification_phase(&st, &tokens, verifications).await;
        }
        return;
    }
    let rates: Vec<f64> = std::env::var("FCTR_BENCH_RATES")
        .unwrap_or_else(|_| "200,500".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .filter(|r: &f64| *r > 0.0)
        .collect();
    let mut shapes = Vec::new();
    if env_num("FCTR_BENCH_CLOSED", 1) != 0 {
        shapes.push((
            format!("closed loop, {clients} clients"),
            Shape::Closed { clients },
        ));
    }
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
        let portal = drive(shape, secs, portal_lookup.clone(), cpu.clone()).await;
        let up1 = st.fake.api_requests.load(Ordering::Relaxed);
        let direct = if with_direct {
            drive(shape, secs, direct_lookup.clone(), cpu.clone()).await
        } else {
            Lat::none(secs)
        };
        // Only the closed loop measures throughput, which is what the proxy is a reference for.
        let proxy = match &proxy_lookup {
            Some(lookup) if matches!(shape, Shape::Closed { .. }) => {
                drive(shape, secs, lookup.clone(), cpu.clone()).await
            }
            _ => Lat::none(secs),
        };
        // Upstream requests per portal lookup, warm-up included.
        let per = (up1 - up0) as f64 / portal.sent.max(1) as f64;
        results.push((name, portal, direct, proxy, per));
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
        "    {:<42} {:<8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>9}",
        "", "", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "portal us", "fake us", "upstream"
    );
    for (name, portal, direct, proxy, per) in &results {
        for (who, l, up) in [
            ("portal", portal, *per),
            ("direct", direct, upstream.len() as f64),
            ("proxy", proxy, upstream.len() as f64),
        ] {
            // A run not made (`FCTR_BENCH_DIRECT=0`; the proxy outside the closed loop) prints no row.
            if l.sent == 0 {
                continue;
            }
            println!(
                "    {:<42} {:<8} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>9.0} {:>9.0} {:>9.1}",
                if who == "portal" { name.as_str() } else { "" },
                who,
                l.rps(),
                l.pct(0.50),
                l.pct(0.99),
                l.pct(1.0),
                l.errors,
                l.portal_us(),
                l.fake_us(),
                up
            );
        }
        // Without a direct run (`FCTR_BENCH_DIRECT=0`) there is nothing to compare with: no overhead, ratio or
        // verdict (they would print as NaN and inf).
        if direct.ok == 0 {
            println!(
                "    {:<42} no direct baseline (FCTR_BENCH_DIRECT=0): nothing to compare with",
                "  the portal adds"
            );
            continue;
        }
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        let d99 = portal.pct(0.99) - direct.pct(0.99);
        println!(
            "    {:<42} p50 +{:.2} ms, p99 +{d99:.2} ms   (target: p99 < +1 ms: {})",
            "  the portal adds",
            portal.pct(0.50) - direct.pct(0.50),
            verdict(d99 < 1.0)
        );
        if name.starts_with("closed") {
            let ratio = portal.rps() / direct.rps();
            println!(
                "    {:<42} {ratio:.2}x the direct baseline   (target: >= 0.7x: {})",
                "  portal throughput",
                verdict(ratio >= 0.7)
            );
            if proxy.ok > 0 {
                println!(
                    "    {:<42} {:.2}x the direct baseline; the portal does {:.2}x the bare proxy's lookups/s",
                    "  a bare proxy (HTTP hops only)",
                    proxy.rps() / direct.rps(),
                    portal.rps() / proxy.rps()
                );
            }
        }
    }
    println!(
        "    portal us / fake us: CPU per lookup of the portal (this process less the load thread and the fake's \
         threads; on a direct row, what the idle portal spent) and of the fake Okta's threads; upstream: \
         requests the fake served per lookup; proxy: a bare proxy on the portal's runtime that sends the same \
         upstream requests and answers their bodies, with no bearer check, limit, policy, audit or card (proxy.rs)"
    );
    if verifications > 0 {
        verification_phase(&st, &tokens, verifications).await;
    }
    println!();
    println!(
        "memory after the lookup load: {:.1} MiB (allocator high-water mark; not a target)",
        rss_self()
    );
}

/// Phase (b): `n` pending push challenges, each watched by `watchers` SSE streams in a child process for
/// `watch_secs`; prints polls per challenge per interval, SSE events and (c) memory, then waits for the pollers
/// to stop so that what follows runs on a quiet stack.
pub(crate) async fn pending_phase(
    st: &Stack,
    t2: &str,
    cookie: &str,
    challenges: usize,
    watchers: u64,
    watch_secs: u64,
) {
    // (b) pending challenges watched over SSE.
    let t = Instant::now();
    let ids = begin_challenges(st, t2, challenges).await;
    let began = t.elapsed();
    let pending = st.fake.phones().pending().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_unwatched = rss_self();
    let exe = std::env::current_exe().expect("this binary");
    let mut child = Command::new(exe)
        .env("FCTR_BENCH_CHILD", "sse")
        .env("FCTR_BENCH_PORTAL", st.addr.to_string())
        .env("FCTR_BENCH_COOKIE", cookie)
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
    let polls0 = metric(st, "fctr_upstream_polls_total").await;
    let w0 = Instant::now();
    let mut rss_peak = rss_self();
    let mut child_rss = rss_mib(&child_pid);
    while w0.elapsed() < Duration::from_secs(watch_secs) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(rss_self());
        child_rss = child_rss.max(rss_mib(&child_pid));
    }
    let polls1 = metric(st, "fctr_upstream_polls_total").await;
    let window = w0.elapsed();
    let pollers = metric(st, "fctr_pollers_running").await;
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
    // Polls at least an interval apart fit `floor(window / interval) + 1` times in the window (a poll at each
    // end): the bound, per challenge.
    let bound = ids.len() as f64 * (intervals.floor() + 1.0);
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
        "    upstream polls in {:.1} s: {polls:.0} = {per:.3} per challenge per {:?} interval; at most one per \
         interval allows {bound:.0} (a poll at each end of the window)",
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
    let verdict = if polls <= bound { "OK" } else { "OVER" };
    println!("    at most one poll per challenge per interval: {verdict}");

    // Let the pollers of (b) stop (three idle intervals after the watchers left) so (a) runs on a quiet stack.
    // A poller stops `idle_ticks` intervals after its last watcher is gone; a watcher is gone once the server
    // notices its connection closed (at the latest on the next write: the SSE keep-alive, as an unchanged status
    // sends nothing).
    while metric(st, "fctr_pollers_running").await > 0.0
        && watchers_left.elapsed() < Duration::from_secs(40)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let left = metric(st, "fctr_pollers_running").await;
    println!(
        "    pollers running {:.1} s after the SSE clients disconnected: {left:.0}",
        watchers_left.elapsed().as_secs_f64()
    );
}
