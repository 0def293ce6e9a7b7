//! The gate through the real router and the fake Okta: an Okta push that comes back without a number challenge
//! is judged as a plain push, whatever the adapter's capabilities say.

use crate::api::{call, id_token};
use crate::helpers::*;
use axum::http::StatusCode;
use fctr_testkit::okta::PhoneAnswer;
use std::time::Duration;

async fn status_after_poll(t: &TestApp, tok: &str, vid: &str, until: &[&str]) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, v, _) = call(
            t,
            "GET",
            &format!("/api/v1/verifications/{vid}"),
            Some(tok),
            None,
        )
        .await;
        if until.contains(&v["status"].as_str().unwrap_or_default()) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never reached {until:?}: {last}");
}

#[tokio::test]
async fn a_push_without_a_number_cannot_verify_alone_under_the_default_policy() {
    let t = start().await;
    assert!(t.demo.fake.state().set_plain_pushes(Some("alice"), true));
    let tok = id_token(&t, "agent2").await;
    let (s, v, _) = call(
        &t,
        "POST",
        "/api/v1/users/search",
        Some(&tok),
        Some(serde_json::json!({"query": "alice@example.com"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v[0]["id"].as_str().unwrap().to_owned();
    let push = t.factor_id("alice", "push");
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{id}/verifications"),
        Some(&tok),
        Some(serde_json::json!({"factor_id": push})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["number"].is_null(), "the fake sent no number: {v}");
    let vid = v["id"].as_str().unwrap().to_owned();
    let p = t
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(p.correct_answer, None);
    t.demo
        .fake
        .phones()
        .answer(&p.transaction_id, PhoneAnswer::Approve { number: None })
        .unwrap();
    // Approved, but a plain push is one factor of two: the verification waits for another factor.
    let v = status_after_poll(&t, &tok, &vid, &["pending", "verified"]).await;
    assert_eq!(v["status"], "pending", "{v}");
    assert_eq!(v["required"], 2, "{v}");
    let (s, e, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{id}/actions/unlock"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(e["error"]["code"], "no_live_grant");

    // The same flow with number matching back on verifies with one push.
    assert!(t.demo.fake.state().set_plain_pushes(Some("alice"), false));
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{id}/verifications"),
        Some(&tok),
        Some(serde_json::json!({"factor_id": push})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["number"].is_number());
}
