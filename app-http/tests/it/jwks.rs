//! The IdP's signing keys: a rotated key is picked up without a restart (refetch on an unknown key, bounded to one
//! fetch a minute and shared by concurrent misses; a scheduled refresh), and a failed fetch keeps the old keys.

use crate::api::{call, id_token};
use crate::helpers::*;
use axum::http::StatusCode;
use base64::Engine as _;
use std::sync::Arc;
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn kid_of(jwt: &str) -> String {
    let head = jwt.split('.').next().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&B64.decode(head).unwrap()).unwrap();
    v["kid"].as_str().unwrap_or_default().to_owned()
}

/// `jwt` with its header's `kid` replaced (payload and signature kept): the kid is in no JWKS, and the signature
/// no longer covers the header.
fn with_kid(jwt: &str, kid: &str) -> String {
    let (_, rest) = jwt.split_once('.').unwrap();
    let head =
        B64.encode(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
    format!("{head}.{rest}")
}

async fn search(t: &TestApp, token: &str) -> StatusCode {
    call(
        t,
        "POST",
        "/api/v1/users/search",
        Some(token),
        Some(serde_json::json!({"query": "alice@example.com"})),
    )
    .await
    .0
}

/// Polls `f` until it holds (bounded), or panics with `what`.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_rotated_signing_key_is_picked_up_without_restart() {
    let t = start().await;
    let fake = t.demo.fake.oidc();
    let before = id_token(&t, "agent2").await;
    assert_eq!(search(&t, &before).await, StatusCode::OK);
    let fetches = fake.jwks_requests();

    let new_kid = fake.rotate_signing_key().await.unwrap();
    let after = id_token(&t, "agent2").await;
    assert_eq!(kid_of(&after), new_kid);
    assert_ne!(kid_of(&before), new_kid);

    // (a) a bearer token signed by the new key is accepted, after one JWKS fetch.
    assert_eq!(
        search(&t, &after).await,
        StatusCode::OK,
        "a bearer token signed by the rotated key is accepted"
    );
    assert_eq!(fake.jwks_requests(), fetches + 1);

    // (b) a browser sign-in after the rotation works (the keys are already fresh: no further fetch).
    let mut b = Browser::default();
    let r = t.sign_in_with(&mut b, "agent1").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "sign-in after rotation: {}",
        r.body
    );
    assert!(b.session().is_some());
    assert_eq!(fake.jwks_requests(), fetches + 1);
}

#[tokio::test]
async fn a_browser_sign_in_is_the_first_to_meet_a_rotated_key() {
    let t = start().await;
    let fake = t.demo.fake.oidc();
    let fetches = fake.jwks_requests();
    fake.rotate_signing_key().await.unwrap();
    let mut b = Browser::default();
    let r = t.sign_in_with(&mut b, "agent1").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "sign-in after rotation: {}",
        r.body
    );
    assert!(b.session().is_some());
    assert_eq!(fake.jwks_requests(), fetches + 1);
}

/// 50 tokens with unknown kids arrive together while the portal's one JWKS fetch is held at the fake: the 49
/// others wait for that fetch (none starts its own), all are refused, and within the minute no further fetch
/// happens; a minute later (the engine's clock), one more is allowed.
#[tokio::test]
async fn unknown_kids_cause_at_most_one_jwks_fetch_a_minute_shared_by_concurrent_misses() {
    let t = Arc::new(start().await);
    let fake = t.demo.fake.oidc();
    let real = id_token(&t, "agent2").await;
    let base = fake.jwks_requests();

    fake.hold_jwks();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let t = Arc::clone(&t);
        let forged = with_kid(&real, &format!("rotated-{i}-{}", uuid::Uuid::new_v4()));
        tasks.push(tokio::spawn(async move { search(&t, &forged).await }));
    }
    // One request's fetch is parked at the fake; the 49 others must be waiting for it inside the portal.
    eventually("a JWKS fetch on an unknown kid", || {
        fake.jwks_requests() == base + 1
    })
    .await;
    eventually("49 requests waiting for the in-flight JWKS fetch", || {
        t.demo.state.oidc().jwks_refresh_waiting() == 49
    })
    .await;
    assert_eq!(fake.jwks_requests(), base + 1, "one fetch in flight");
    fake.release_jwks();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fake.jwks_requests(), base + 1, "50 misses, one fetch");

    // Within the minute: refused without a fetch.
    let forged = with_kid(&real, "another-unknown-kid");
    assert_eq!(search(&t, &forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        fake.jwks_requests(),
        base + 1,
        "no second fetch within a minute"
    );

    // A minute later: one more fetch is allowed.
    t.clock.advance(chrono::TimeDelta::seconds(61));
    assert_eq!(search(&t, &forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        fake.jwks_requests(),
        base + 2,
        "one more fetch after the minute"
    );

    // The genuine token was never disturbed.
    assert_eq!(search(&t, &real).await, StatusCode::OK);
}

/// Right after a rotation, 8 requests with tokens under the new key arrive together while the first one's JWKS
/// fetch is held at the fake: the 7 others wait for it and reuse its keys (no fetch of their own), and all pass.
#[tokio::test]
async fn concurrent_tokens_under_a_new_key_share_one_fetch_and_all_pass() {
    let t = Arc::new(start().await);
    let fake = t.demo.fake.oidc();
    fake.rotate_signing_key().await.unwrap();
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(id_token(&t, "agent2").await);
    }
    let base = fake.jwks_requests();
    fake.hold_jwks();
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|tok| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { search(&t, &tok).await })
        })
        .collect();
    eventually("a JWKS fetch on the new kid", || {
        fake.jwks_requests() == base + 1
    })
    .await;
    eventually("7 requests waiting for the in-flight JWKS fetch", || {
        t.demo.state.oidc().jwks_refresh_waiting() == 7
    })
    .await;
    fake.release_jwks();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(fake.jwks_requests(), base + 1, "8 misses, one fetch");
}

#[tokio::test]
async fn the_keys_are_refreshed_on_a_schedule() {
    let t = start().await;
    let fake = t.demo.fake.oidc();
    let base = fake.jwks_requests();
    let tok = id_token(&t, "agent2").await;
    assert_eq!(search(&t, &tok).await, StatusCode::OK);
    assert_eq!(fake.jwks_requests(), base, "known key: no fetch");

    t.clock.advance(chrono::TimeDelta::minutes(61));
    let tok = id_token(&t, "agent3").await;
    assert_eq!(search(&t, &tok).await, StatusCode::OK);
    assert_eq!(fake.jwks_requests(), base + 1, "hourly refresh on use");
    let tok = id_token(&t, "agent2").await;
    assert_eq!(search(&t, &tok).await, StatusCode::OK);
    assert_eq!(fake.jwks_requests(), base + 1, "fresh again");
}

#[tokio::test]
async fn a_failed_jwks_fetch_keeps_the_old_keys() {
    let t = start().await;
    let fake = t.demo.fake.oidc();
    let old = id_token(&t, "agent2").await;
    fake.rotate_signing_key().await.unwrap();
    let new = id_token(&t, "agent2").await;
    t.demo.fake.faults().set(
        "GET /oauth2/v1/keys",
        fctr_testkit::okta::Fault::ServerError { status: 503 },
        Some(1),
    );
    // The fetch fails: the unknown token is refused, and a token under the old key still verifies.
    assert_eq!(search(&t, &new).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.demo.fake.faults().list(),
        serde_json::json!([]),
        "fetch tried"
    );
    assert_eq!(search(&t, &old).await, StatusCode::OK, "old keys kept");
    // A minute later the IdP answers again and the new key is picked up.
    t.clock.advance(chrono::TimeDelta::seconds(61));
    assert_eq!(search(&t, &new).await, StatusCode::OK);
}
