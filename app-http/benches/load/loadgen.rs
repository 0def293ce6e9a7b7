//! Load generation shared by the `load` and `replicas` benches (the replicas bench includes this file by path,
//! so it depends on nothing of either bench): closed- and open-loop drivers on a thread of their own, latency
//! percentiles, CPU read from `/proc`, and the capacity sweep.

use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A hard cap on requests per run, whatever the duration.
pub(crate) const MAX_REQUESTS: u64 = 2_000_000;

/// The p99 overhead the sweep holds the service to, in milliseconds: `FCTR_BENCH_SWEEP_P99_MS`, default 1 (the
/// target); a looser budget finds where a slower stack (the replicated one) stops keeping up.
pub(crate) fn overhead_target_ms() -> f64 {
    std::env::var("FCTR_BENCH_SWEEP_P99_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v: &f64| *v > 0.0)
        .unwrap_or(1.0)
}

/// One run's figures.
pub(crate) struct Lat {
    /// Lookups started, warm-up included.
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    pub(crate) micros: Vec<u32>,
    pub(crate) elapsed: Duration,
    /// CPU seconds of the service measured (the portal, or the replicas) over the recorded window.
    pub(crate) portal_cpu: f64,
    /// CPU seconds of the fake IdP over the same window.
    pub(crate) fake_cpu: f64,
}

impl Lat {
    /// A run that was not made (its figures print as NaN).
    pub(crate) fn none(secs: u64) -> Self {
        Self {
            sent: 0,
            ok: 0,
            errors: 0,
            micros: Vec::new(),
            elapsed: Duration::from_secs(secs),
            portal_cpu: f64::NAN,
            fake_cpu: f64::NAN,
        }
    }
    /// Latency percentile `p` (0..=1) in milliseconds.
    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.micros[i.min(self.micros.len() - 1)]) / 1000.0
    }
    /// Successful lookups per second over the recorded window.
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
    /// The fake IdP's CPU per successful lookup, in microseconds.
    pub(crate) fn fake_us(&self) -> f64 {
        self.fake_cpu * 1e6 / self.ok.max(1) as f64
    }
    /// The service's own CPU per successful lookup, in microseconds.
    pub(crate) fn portal_us(&self) -> f64 {
        let us = self.portal_cpu * 1e6 / self.ok.max(1) as f64;
        // The service's CPU is the process's less the other threads', each read in clock ticks, so an idle service
        // can come out a tick below zero; shown as 0 (a run not made stays NaN).
        if us < 0.0 { 0.0 } else { us }
    }
}

/// One lookup: the client to use and the lookup's number; `true` when every response was a success.
pub(crate) type LookupFn =
    Arc<dyn Fn(reqwest::Client, u64) -> BoxFuture<'static, bool> + Send + Sync>;

/// Cumulative CPU seconds so far of (the service, the fake IdP). Called on the load thread, so
/// `/proc/thread-self` is the load generator.
pub(crate) type CpuProbe = Arc<dyn Fn() -> (f64, f64) + Send + Sync>;

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

/// CPU seconds of this process's threads named `name`.
pub(crate) fn threads_cpu(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    dir.filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| cpu_secs(&t.path().join("stat").display().to_string()))
        .sum()
}

/// CPU seconds of processes `pids` (children and threads included while they run).
pub(crate) fn pids_cpu(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|p| cpu_secs(&format!("/proc/{p}/stat")))
        .sum()
}

/// A client for the load: no redirects, a large idle pool, 30 s timeout.
pub(crate) fn load_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// Runs the load for `secs` seconds (after a 1 s warm-up that is not recorded) on a thread of its own with its
/// own single-threaded runtime and HTTP client, so the generator neither shares the service's worker threads nor
/// counts in its CPU figure.
pub(crate) async fn drive(shape: Shape, secs: u64, lookup: LookupFn, cpu: CpuProbe) -> Lat {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("load runtime");
        let lat = rt.block_on(drive_here(shape, secs, lookup, cpu));
        let _ = tx.send(lat);
    });
    rx.await.expect("load thread")
}

async fn drive_here(shape: Shape, secs: u64, lookup: LookupFn, cpu: CpuProbe) -> Lat {
    let c = load_client();
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let warm_until = start + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(secs);
    let cpu0 = Arc::new(std::sync::Mutex::new(None::<(f64, f64)>));
    let tasks_n = match shape {
        Shape::Closed { clients } => clients,
        Shape::Open { agents, .. } => agents,
    };
    // CPU is sampled at the end of the warm-up by a timer task on this same thread.
    let sampler = {
        let (cpu0, cpu) = (cpu0.clone(), cpu.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(warm_until.into()).await;
            *cpu0.lock().unwrap() = Some(cpu());
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
    let mut lat = Lat::none(secs);
    for t in tasks {
        let (ok, errors, mut m) = t.await.expect("client task");
        lat.ok += ok;
        lat.errors += errors;
        lat.micros.append(&mut m);
    }
    let (portal1, fake1) = cpu();
    let _ = sampler.await;
    if let Some((portal0, fake0)) = *cpu0.lock().unwrap() {
        lat.portal_cpu = portal1 - portal0;
        lat.fake_cpu = fake1 - fake0;
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

/// One rate of a sweep: the service and the direct baseline at the same open-loop rate.
pub(crate) struct Step {
    pub(crate) rate: f64,
    pub(crate) portal: Lat,
    pub(crate) direct: Lat,
}

impl Step {
    /// p99 of the service less p99 of the direct baseline, in milliseconds.
    pub(crate) fn overhead_p99(&self) -> f64 {
        self.portal.pct(0.99) - self.direct.pct(0.99)
    }
    /// Why this step fails, if it does: over the overhead target, errors, or the offered rate not kept up.
    pub(crate) fn failure(&self) -> Option<String> {
        if self.portal.errors > 0 {
            return Some(format!("{} errors", self.portal.errors));
        }
        // An open loop that falls behind sends less than offered; then its latency is queueing.
        if self.portal.rps() < 0.95 * self.rate {
            return Some(format!(
                "served {:.0}/s of {:.0}/s",
                self.portal.rps(),
                self.rate
            ));
        }
        if self.direct.rps() < 0.95 * self.rate {
            return Some(format!(
                "the direct baseline served {:.0}/s of {:.0}/s (the fake and the load generator are the limit)",
                self.direct.rps(),
                self.rate
            ));
        }
        let o = self.overhead_p99();
        if o.is_nan() || o >= overhead_target_ms() {
            return Some(format!("p99 overhead {o:+.2} ms"));
        }
        None
    }
}

/// Rates a sweep offers: `FCTR_BENCH_SWEEP_RATES` (comma-separated) or from 100/s up by a quarter each step
/// to 20,000/s.
pub(crate) fn sweep_rates() -> Vec<f64> {
    if let Ok(list) = std::env::var("FCTR_BENCH_SWEEP_RATES") {
        return list
            .split(',')
            .filter_map(|r| r.trim().parse().ok())
            .filter(|r: &f64| *r > 0.0)
            .collect();
    }
    let mut out = Vec::new();
    let mut r: f64 = 100.0;
    while r <= 20_000.0 {
        out.push(r);
        // 100, 125, 160, 200, 250, 310, 390, 490, 610, 760, 950, 1190, …: rounded to two significant figures.
        let next = r * 1.25;
        let mag = 10f64.powf(next.log10().floor() - 1.0);
        r = (next / mag).round() * mag;
    }
    out
}

/// Steps the open-loop rate up (over `agents` agents, `secs` seconds per run) until the service's p99 overhead
/// over the direct baseline reaches [`overhead_target_ms`] (or it errs or falls behind). A failing step is run
/// once more before it counts (the machine is shared; a single stall should not end the sweep). Prints each step;
/// returns the steps and the highest rate that passed before the first confirmed failure.
pub(crate) async fn sweep(
    label: &str,
    agents: usize,
    secs: u64,
    portal: &LookupFn,
    direct: &LookupFn,
    cpu: &CpuProbe,
) -> (Vec<Step>, Option<f64>) {
    println!();
    println!(
        "capacity sweep, {label}: open loop over {agents} agents, {secs} s per run after a 1 s warm-up, the \
         portal then the direct baseline at each rate; stops when p99 overhead >= {} ms \
         (a failing rate is run twice)",
        overhead_target_ms()
    );
    println!(
        "    {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9}  verdict",
        "offered",
        "served",
        "p50 ms",
        "p99 ms",
        "direct99",
        "overhead",
        "portal us",
        "fake us",
        "errors"
    );
    let mut steps = Vec::new();
    let mut capacity = None;
    for rate in sweep_rates() {
        let mut failed_once = false;
        loop {
            let shape = Shape::Open { agents, rate };
            let p = drive(shape, secs, portal.clone(), cpu.clone()).await;
            let d = drive(shape, secs, direct.clone(), cpu.clone()).await;
            let step = Step {
                rate,
                portal: p,
                direct: d,
            };
            let failure = step.failure();
            println!(
                "    {:>8.0} {:>8.0} {:>9.2} {:>9.2} {:>9.2} {:>+9.2} {:>10.0} {:>9.0} {:>9}  {}",
                rate,
                step.portal.rps(),
                step.portal.pct(0.5),
                step.portal.pct(0.99),
                step.direct.pct(0.99),
                step.overhead_p99(),
                step.portal.portal_us(),
                step.portal.fake_us(),
                step.portal.errors,
                match (&failure, failed_once) {
                    (None, _) => "pass".to_owned(),
                    (Some(why), false) => format!("fail ({why}); once more"),
                    (Some(why), true) => format!("fail again ({why})"),
                }
            );
            steps.push(step);
            match failure {
                None => {
                    capacity = Some(rate);
                    break;
                }
                Some(_) if !failed_once => failed_once = true,
                Some(_) => return (steps, capacity),
            }
        }
    }
    (steps, capacity)
}

/// Prints the capacity a sweep found.
pub(crate) fn print_capacity(what: &str, capacity: Option<f64>) {
    let budget = overhead_target_ms();
    match capacity {
        Some(r) => println!(
            "    capacity of {what}: {r:.0} lookups/s (the highest rate whose p99 overhead stayed under {budget} ms)"
        ),
        None => println!(
            "    capacity of {what}: below the first rate tried (its p99 overhead was {budget} ms or more)"
        ),
    }
}
