//! Throughput of the fake Okta: `GET /api/v1/users/{id}` with SSWS auth from concurrent keep-alive clients.
//!
//! `cargo bench -p fctr-testkit --bench fake_okta` (env `FAKE_OKTA_BENCH_SECS`, `FAKE_OKTA_BENCH_CLIENTS`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not this bench".
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && a != "fake_okta")
    {
        return;
    }
    let secs = env_or("FAKE_OKTA_BENCH_SECS", 5);
    let clients = env_or("FAKE_OKTA_BENCH_CLIENTS", 32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let okta = FakeOkta::start(FakeOktaOptions { rate_limit_per_minute: u32::MAX, ..Default::default() })
            .await
            .expect("fake starts");
        let url = format!("{}api/v1/users/{}", okta.base_url(), okta.fixtures().id_of("alice"));
        let auth = format!("SSWS {}", okta.api_token());
        let http = reqwest::Client::builder().pool_max_idle_per_host(usize::try_from(clients).unwrap()).build().unwrap();
        // Warm up.
        for _ in 0..100 {
            assert!(http.get(&url).header("Authorization", &auth).send().await.unwrap().status().is_success());
        }
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (http, url, auth, done, errors) = (http.clone(), url.clone(), auth.clone(), done.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    match http.get(&url).header("Authorization", &auth).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed().as_secs_f64();
        let n = done.load(Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let rate = n as f64 / elapsed;
        println!(
            "fake_okta GET /api/v1/users/{{id}}: {n} requests in {elapsed:.2} s with {clients} clients \
             (client and server on one 2-worker runtime): {rate:.0} req/s, {} errors",
            errors.load(Ordering::Relaxed)
        );
        okta.shutdown().await;
    });
}
