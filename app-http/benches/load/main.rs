//! Load benchmark for the portal: `cargo bench -p fctr-portal --bench load`.
//!
//! A plain `main` (no harness) that prints figures. Everything runs on loopback in this process: the fake Okta
//! (served here, on a runtime of its own whose threads are named `fake-okta`, behind a layer that counts its
//! `/api/v1/` requests), the portal (built by `fctr_portal::startup::from_config` from a bench configuration that
//! points at the fake, with a bench policy and edge quota that allow the load), and the load generators (each run
//! on a thread of its own). The SSE watchers of phase (b) run in a child process (this binary again,
//! `FCTR_BENCH_CHILD=sse`) so that their buffers do not count in the portal's resident memory. The portal's CPU is
//! this process's less the load thread's and the fake's threads' (`/proc/self/task/*/stat`).
//!
//! 1. Memory: `VmRSS` at start, with the fake Okta alone, and with the portal idle.
//! 2. (b) 1,000 pending push challenges (never answered), each watched by 3 SSE clients, for ~10 s: upstream
//!    polls (`fctr_upstream_polls_total` from `/metrics`) per challenge per poll interval, SSE events per stream,
//!    and (c) `VmRSS`.
//! 3. (a) Caller lookups through the JSON API (bearer ID tokens from the fake issuer) beside a direct baseline
//!    that sends the fake exactly the upstream requests one portal lookup makes (recorded from a probe lookup),
//!    concurrently as the engine does. Each is run closed-loop (64 clients back to back: saturation) and
//!    open-loop at fixed rates over 64 agents (latency from the scheduled start, so queueing is charged). Printed
//!    per run: lookups/s, p50, p99, max, errors, the portal's CPU per lookup (on a direct row: what the idle
//!    portal spent), the fake's CPU per lookup, and upstream requests per lookup; per shape, what the portal adds
//!    at p50 and p99; for the closed loop, the portal's throughput as a fraction of the direct baseline's, and a
//!    third row: a bare proxy (`proxy.rs`) on the portal's runtime that sends the same upstream requests with no
//!    logic of fctr's, the reference for what the HTTP hops alone allow.
//! 4. (d) The portal's CPU per verification: 200 push verifications, each begun through the API (agent2's bearer),
//!    watched on the live page's event stream (agent2's session), approved at once on the fake phone; 20 at a
//!    time (one per extra caller). Printed: verified / failed, begin-to-verified-on-screen p50 and p95, the
//!    portal's CPU per verification and the upstream requests per verification.
//!
//! The capacity sweep (`FCTR_BENCH_SWEEP=1`) replaces phases (b) to (d): open-loop lookups at rising rates (100/s
//! up by a quarter each step), the portal then the direct baseline at each rate, until the p99 overhead reaches
//! 1 ms (a failing rate is run once more before it counts); it prints every step and the capacity of one node: the
//! highest rate that stayed under. The same sweep for three replicas behind haproxy is
//! `FCTR_BENCH_SWEEP=1 cargo bench -p fctr-portal --bench replicas` (`benches/replicas/main.rs`); both use
//! `loadgen.rs`.
//!
//! ```text
//! cargo bench -p fctr-portal --bench load                       # phases 1 to 4, about 2.5 minutes
//! FCTR_BENCH_SWEEP=1 cargo bench -p fctr-portal --bench load    # the capacity of one node
//! FCTR_BENCH_CHALLENGES=0 FCTR_BENCH_VERIFICATIONS=0 FCTR_BENCH_RATES=none cargo bench -p fctr-portal --bench load
//! ```
//!
//! Knobs (environment): `FCTR_BENCH_SECONDS` (length of each lookup run, default 10; 5 in a sweep),
//! `FCTR_BENCH_CLIENTS` (64), `FCTR_BENCH_RATES` (open-loop rates, default `200,500`; `none` for none),
//! `FCTR_BENCH_CLOSED` (0: no closed loop), `FCTR_BENCH_DIRECT` (0: no direct baseline, to profile the portal
//! alone), `FCTR_BENCH_PROXY` (0: no bare proxy row), `FCTR_BENCH_CHALLENGES` (1000; 0 skips phase (b)),
//! `FCTR_BENCH_WATCHERS` (3), `FCTR_BENCH_WATCH_SECONDS` (10), `FCTR_BENCH_VERIFICATIONS` (200; 0 skips phase
//! (d)), `FCTR_BENCH_SWEEP` (1: the capacity sweep), `FCTR_BENCH_SWEEP_RATES` (the sweep's rates,
//! comma-separated), `FCTR_BENCH_SWEEP_P99_MS` (the sweep's p99 budget, default 1). Every phase is bounded in
//! time and in request count (at most 2,000,000 requests per run; a sweep ends at 20,000/s).
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
use sha2::{Digest as _, Sha256};
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// Shared with the replicas bench, which uses all of it.
#[allow(dead_code)]
mod loadgen;
mod lookups;
mod proxy;
mod sse;
mod stack;
mod verify;
use loadgen::*;
use lookups::*;
use proxy::*;
use sse::*;
use stack::*;
use verify::*;

/// The portal's poll interval in a push's first minute (`PollSchedule::default().fast`, what `from_config` uses
/// without `[poll]`): phase (b) runs within the first minute of its pushes.
const POLL_INTERVAL: Duration = Duration::from_millis(750);
/// Extra callers the challenges are spread over (the policy allows at most 100 challenges per caller per hour).
const CALLERS: usize = 20;

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
