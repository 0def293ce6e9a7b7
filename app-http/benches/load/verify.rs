//! Load benchmark: phase (d): the service's CPU per verification.
//!
//! Each verification is what an agent's screen does: begin a push through the API (bearer, agent2), watch it on
//! the live page's event stream (`/verifications/{id}/events`, agent2's session), the caller approves it on the
//! fake phone at once (the right number), and the stream's terminal event ends it. Up to one verification per
//! extra caller runs at a time (20 at once). The portal's CPU over the whole phase (this process less the fake's
//! threads and the drivers' thread) divided by the verifications is the figure; the upstream requests the fake
//! served are divided the same way.

use super::*;

/// Runs `n` verifications and prints the portal's CPU per verification.
pub(crate) async fn verification_phase(st: &Stack, tokens: &Arc<Vec<String>>, n: usize) {
    let cookie = session_cookie(st, "agent2").await;
    let token = tokens[1].clone();
    let callers: Vec<(String, String)> = extra_callers()
        .iter()
        .map(|u| (u.id.clone(), u.factors[0].id.clone()))
        .collect();
    let workers = callers.len().min(n.max(1));
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (base, fake_requests) = (st.base.clone(), st.fake.api_requests.clone());
    let phones = st.fake.phones();
    // The drivers run on a thread of their own (like the lookup load), so `/proc/thread-self` is theirs.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("driver runtime");
        rt.block_on(async move {
            let portal_cpu = || {
                cpu_secs("/proc/self/stat")
                    - cpu_secs("/proc/thread-self/stat")
                    - threads_cpu(FAKE_THREADS)
            };
            let (cpu0, up0, t0) = (
                portal_cpu(),
                fake_requests.load(Ordering::Relaxed),
                Instant::now(),
            );
            let c = http();
            let mut tasks = Vec::new();
            for (user, factor) in callers.into_iter().take(workers) {
                let (c, next, base, token, cookie) = (
                    c.clone(),
                    next.clone(),
                    base.clone(),
                    token.clone(),
                    cookie.clone(),
                );
                let phones = phones.clone();
                tasks.push(tokio::spawn(async move {
                    let mut took = Vec::new();
                    let mut failures = 0usize;
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let t = Instant::now();
                        if one(&c, &base, &token, &cookie, &phones, &user, &factor).await {
                            took.push(t.elapsed());
                        } else {
                            failures += 1;
                        }
                    }
                    (took, failures)
                }));
            }
            let mut took = Vec::new();
            let mut failures = 0;
            for t in tasks {
                let (mut d, f) = t.await.expect("verification task");
                took.append(&mut d);
                failures += f;
            }
            let cpu = portal_cpu() - cpu0;
            let upstream = fake_requests.load(Ordering::Relaxed) - up0;
            let _ = tx.send((took, failures, cpu, upstream, t0.elapsed()));
        });
    });
    let (mut took, failures, cpu, upstream, wall) = rx.await.expect("verification thread");
    took.sort();
    let done = took.len().max(1) as f64;
    let pct = |p: f64| {
        took.get(((took.len().max(1) - 1) as f64 * p).round() as usize)
            .map_or(f64::NAN, Duration::as_secs_f64)
    };
    println!();
    println!(
        "(d) {n} push verifications (begin through the API, watched on the live page's event stream, approved at \
         once on the fake phone), {workers} at a time, in {:.1} s",
        wall.as_secs_f64()
    );
    println!(
        "    verified: {}, failed: {failures}; begin to verified on screen p50 {:.2} s, p95 {:.2} s",
        took.len(),
        pct(0.5),
        pct(0.95)
    );
    let per_ms = cpu * 1000.0 / done;
    println!(
        "    portal CPU per verification: {per_ms:.2} ms   (target < 1 ms: {}); upstream requests per \
         verification: {:.1}",
        if per_ms < 1.0 { "met" } else { "NOT met" },
        upstream as f64 / done
    );
}

/// One verification; `true` once the stream says it is done and verified.
async fn one(
    c: &reqwest::Client,
    base: &str,
    token: &str,
    cookie: &str,
    phones: &fctr_testkit::okta::Phones,
    user: &str,
    factor: &str,
) -> bool {
    let before: Vec<String> = phones
        .pending()
        .into_iter()
        .filter(|p| p.user_id == user)
        .map(|p| p.transaction_id)
        .collect();
    let Ok(r) = c
        .post(format!("{base}/api/v1/users/{user}/verifications"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "factor_id": factor }))
        .send()
        .await
    else {
        return false;
    };
    if r.status().as_u16() != 201 {
        return false;
    }
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let Some(id) = body["id"].as_str() else {
        return false;
    };
    let Ok(mut events) = c
        .get(format!("{base}/verifications/{id}/events"))
        .header("cookie", cookie)
        .header("accept", "text/event-stream")
        .send()
        .await
    else {
        return false;
    };
    if !events.status().is_success() {
        return false;
    }
    let Some(push) = phones
        .pending()
        .into_iter()
        .find(|p| p.user_id == user && !before.contains(&p.transaction_id))
    else {
        return false;
    };
    if phones
        .approve(&push.transaction_id, push.correct_answer.unwrap_or(0))
        .is_err()
    {
        return false;
    }
    // The terminal event's data is `{"done":true,"html":"<section class=\"status-panel st-verified\" …`.
    let mut seen: Vec<u8> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Ok(Ok(Some(b))) => {
                seen.extend_from_slice(&b);
                if has(&seen, b"\"done\":true") {
                    return has(&seen, b"st-verified");
                }
            }
            _ => return false,
        }
    }
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
