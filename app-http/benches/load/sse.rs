//! Load benchmark: phase (b): pending challenges watched over SSE.

use super::*;

pub(crate) async fn begin_challenges(st: &Stack, token: &str, n: usize) -> Vec<String> {
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
pub(crate) async fn sse_child(ids: Vec<String>, eof: tokio::sync::oneshot::Receiver<()>) {
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
