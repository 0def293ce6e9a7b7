//! The live-status poller against the fake Okta: it slows down before the IdP's rate limit is spent (no 429 is
//! ever caused by polling), and a verification is counted once however many watch it, and however long an API
//! client keeps polling after it ended.

use crate::api::{call, id_token};
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fctr_portal::metrics::VerificationOutcome;
use std::time::Duration;

/// The fake Okta's bucket of push polls.
const POLL_BUCKET: &str = "GET /api/v1/users/{id}/factors/{factor_id}/transactions/{tx_id}";

async fn pushed(t: &TestApp, b: &mut Browser) -> String {
    let card = t.find(b, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    t.send_push(b, &card, &factor).await
}

async fn stream(t: &TestApp, b: &Browser, v: &str) -> axum::http::Response<Body> {
    let req = Request::get(format!("{v}/events"))
        .header("cookie", b.cookie_header())
        .body(Body::empty())
        .unwrap();
    let r = t.oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r
}

/// With the fake's poll bucket at 20 requests a minute and the test's 50 ms interval (20 polls a second), a
/// poller that ignored the budget would spend the bucket in a second and be refused about two seconds later (the
/// adapter's own pause near the end only delays it). This one polls fast while at least a quarter is left, then
/// spreads what is left above the reserve (2) over the rest of the window: no refusal, and the interval grows to
/// tens of seconds.
#[tokio::test]
async fn a_low_rate_limit_slows_the_poller_down_and_polling_causes_no_429() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let v = pushed(&t, &mut b).await;
    t.demo.fake.set_rate_limit(20);
    let before = t.demo.idp.polls();
    let watcher = stream(&t, &b, &v).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let polls = t.demo.idp.polls() - before;
    let refused = t.demo.fake.rate_limit_refusals();
    assert_eq!(
        refused.get(POLL_BUCKET).copied().unwrap_or(0),
        0,
        "polls refused: {refused:?}"
    );
    assert!(
        refused.is_empty(),
        "nothing else was refused either: {refused:?}"
    );
    // Fast at first (16 polls to get under a quarter of 20), then a trickle; never into the reserve of 2.
    assert!((12..=18).contains(&polls), "{polls} polls in 4 s");
    let budget = fctr_ports::Challenger::poll_budget(t.demo.idp.as_ref()).expect("observed");
    assert!(budget.remaining >= 2, "{budget:?}");
    let every = t.demo.state.polls().interval_now(Duration::ZERO);
    assert!(every >= Duration::from_secs(5), "interval now {every:?}");
    drop(watcher);
}

/// One verification, watched by two SSE streams and an API client that keeps polling long after it ended (its
/// poller stopped in between, and each GET starts one again): `fctr_verifications_total{outcome="verified"}`
/// counts it once (the engine's one `challenge_result` event), and the late polls send nothing upstream.
#[tokio::test]
async fn a_verification_is_counted_once_however_many_watch_it_and_however_late() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let tok = id_token(&t, "agent2").await;
    let v = pushed(&t, &mut b).await;
    let id = v.rsplit('/').next().unwrap().to_owned();
    let s1 = stream(&t, &b, &v).await;
    let s2 = stream(&t, &b, &v).await;
    let (s, body, _) = call(
        &t,
        "GET",
        &format!("/api/v1/verifications/{id}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "challenged");
    let push = t
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    t.demo
        .fake
        .phones()
        .approve(&push.transaction_id, push.correct_answer.unwrap())
        .unwrap();
    t.wait_page(&mut b, &v, "data-status=\"verified\"").await;
    drop((s1, s2));
    // Past the idle intervals: the poller has stopped.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let polls = t.demo.idp.polls();
    for _ in 0..10 {
        let (s, body, _) = call(
            &t,
            "GET",
            &format!("/api/v1/verifications/{id}"),
            Some(&tok),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "verified");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(t.demo.idp.polls(), polls, "no upstream poll after the end");
    assert_eq!(t.demo.outcomes.ended(VerificationOutcome::Verified), 1);
    let events = t.audit_events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == fctr_ports::EventKind::ChallengeResult)
            .count(),
        1,
        "one challenge_result event"
    );
}

/// Codes were never counted: a verification by a code read back counts as verified too, once.
#[tokio::test]
async fn a_code_verification_is_counted() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "bob@example.com").await;
    let factor = t.factor_id("bob", "token:software:totp");
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &factor)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let v = r.location();
    let code = t.demo.fake.totp_now("bob").unwrap();
    let r = t
        .post(
            &mut b,
            &format!("{v}/code"),
            &[("csrf", csrf.as_str()), ("code", code.as_str())],
        )
        .await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{}",
        r.status
    );
    t.wait_page(&mut b, &v, "data-status=\"verified\"").await;
    assert_eq!(t.demo.outcomes.ended(VerificationOutcome::Verified), 1);
}
