//! Throughput figures for the SQLite audit log.
//!
//! `cargo bench -p fctr-sqlite --bench audit` (set `FCTR_BENCH_EVENTS` to change the verification size,
//! default 120000). Prints:
//! - sustained appends/s with chaining and durable acknowledgement (`synchronous=FULL`, one fsync per batch) from
//!   64 concurrent tasks;
//! - the latency of one durable append at a low rate (one every 5 ms, `FCTR_BENCH_PACED` of them, default 2000;
//!   each its own fsync): p50, p90, p99 and max from the call to the acknowledgement, the part of a caller lookup
//!   that the IdP reads must hide;
//! - the same for the disk alone, the floor under that latency: five 4 KiB pages written over a preallocated file
//!   and `sync_data`, one every 5 ms (`FCTR_BENCH_PACED` times), on a thread of its own, with no SQLite;
//! - verification speed in events/s over the whole file.

use chrono::{Duration, TimeZone, Utc};
use fctr_ports::{AuditEvent, AuditLog, EventKind, KeyId, Outcome, PseudoId, TenantId};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use std::time::Instant;

fn event(tenant: &TenantId, i: i64) -> AuditEvent {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::milliseconds(i);
    let mut e = AuditEvent::new(
        tenant.clone(),
        at,
        EventKind::ActionOutcome,
        Outcome::Success,
    );
    let k = KeyId::parse("k1").ok();
    e.agent = k
        .as_ref()
        .and_then(|k| PseudoId::from_mac(k, &[1; 32]).ok());
    e.target = k
        .as_ref()
        .and_then(|k| PseudoId::from_mac(k, &[(i % 251) as u8; 32]).ok());
    e
}

async fn appends(store: &SqliteStore, tasks: i64, per_task: i64, offset: i64) -> f64 {
    let tenants: Vec<TenantId> = ["acme", "globex", "initech", "umbrella"]
        .iter()
        .filter_map(|t| TenantId::parse(*t).ok())
        .collect();
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        let tenant = tenants[(t as usize) % tenants.len()].clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                if store
                    .append(event(&tenant, offset + t * per_task + i))
                    .await
                    .is_err()
                {
                    eprintln!("append failed");
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    (tasks * per_task) as f64 / start.elapsed().as_secs_f64()
}

/// One append every 5 ms, each timed from the call to its durable acknowledgement; prints the percentiles.
async fn paced(store: &SqliteStore, n: usize) {
    let Some(tenant) = TenantId::parse("acme").ok() else {
        return;
    };
    let mut took: Vec<std::time::Duration> = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
    for i in 0..n {
        tick.tick().await;
        let e = event(&tenant, 5_000_000 + i as i64);
        let start = Instant::now();
        if store.append(e).await.is_err() {
            eprintln!("append failed");
            return;
        }
        took.push(start.elapsed());
    }
    print_latency("append latency, one every 5 ms", took);
}

/// The disk's own flush latency, the floor under a durable append's: `n` times, 5 ms apart, five 4 KiB pages (about
/// what one appended event writes to the WAL: the table's and its three indexes' pages, and frame headers) written
/// in place over a preallocated file, then `sync_data`, timed together.
fn disk_flush(path: &std::path::Path, n: usize) {
    use std::os::unix::fs::FileExt;
    const PAGE: usize = 4096;
    const SLOTS: u64 = 1024;
    let path = path.to_path_buf();
    let run = move || -> std::io::Result<Vec<std::time::Duration>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        file.set_len(SLOTS * PAGE as u64)?;
        file.write_all_at(&vec![0u8; SLOTS as usize * PAGE], 0)?;
        file.sync_all()?;
        let page = [0x5au8; PAGE];
        let mut took = Vec::with_capacity(n);
        for i in 0..n as u64 {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let start = Instant::now();
            for k in 0..5 {
                file.write_all_at(&page, ((i * 5 + k) % SLOTS) * PAGE as u64)?;
            }
            file.sync_data()?;
            took.push(start.elapsed());
        }
        Ok(took)
    };
    match std::thread::spawn(run).join() {
        Ok(Ok(took)) => print_latency("disk flush alone, one every 5 ms", took),
        Ok(Err(e)) => eprintln!("disk flush failed: {e}"),
        Err(_) => eprintln!("disk flush thread panicked"),
    }
}

/// Prints p50, p90, p99 and max of `took` in ms.
fn print_latency(what: &str, mut took: Vec<std::time::Duration>) {
    took.sort();
    let at = |q: f64| {
        let i = ((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1));
        took.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{what} ({}): p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        took.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

fn main() {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("no runtime");
        return;
    };
    let total: i64 = std::env::var("FCTR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120_000);
    rt.block_on(async {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(store) =
            SqliteStore::open(dir.path().join("bench.db"), SqliteOptions::default()).await
        else {
            eprintln!("open failed");
            return;
        };
        // Warm-up, then the measured run.
        appends(&store, 64, 50, 0).await;
        let rate = appends(&store, 64, 500, 10_000).await;
        println!("append (64 tasks, durable ack, chained): {rate:>10.0} events/s");
        let n = std::env::var("FCTR_BENCH_PACED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        paced(&store, n).await;
        disk_flush(&dir.path().join("flush.bin"), n);

        // Fill up to `total` events for verification.
        let have = 64 * 50 + 64 * 500;
        if total > have {
            let per = (total - have + 63) / 64;
            appends(&store, 64, per, 1_000_000).await;
        }
        for run in 0..3 {
            let start = Instant::now();
            match store.verify_chain().await {
                Ok(Ok(s)) => {
                    let secs = start.elapsed().as_secs_f64();
                    println!(
                        "verify run {run}: {} events in {:.3} s = {:>10.0} events/s",
                        s.events,
                        secs,
                        s.events as f64 / secs
                    );
                }
                other => eprintln!("verify failed: {other:?}"),
            }
        }
        store.close().await;
    });
}
