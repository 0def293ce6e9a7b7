//! Four-eyes approval end to end through the portal and the fake Okta: policy holds the password reset back; the
//! first agent's confirmed action waits; the approver sees it in the queue (pages and API), approves or refuses
//! with the forms (CSRF as every form); only then does the first agent's action run, once.

use crate::api::{call, id_token};
use crate::helpers::{Browser, TestApp, between, start_with};
use axum::http::StatusCode;
use fctr_ports::{EventKind, Outcome, Reason};

const POLICY: &str = r#"
[four_eyes]
actions = ["reset_password"]
approver_roles = ["tier3"]
"#;

async fn portal() -> TestApp {
    start_with(|o| o.policy = Some(fctr_core::policy::Policy::parse(POLICY).unwrap())).await
}

async fn reset(t: &TestApp, b: &mut Browser, card: &str) -> crate::helpers::Resp {
    let csrf = b.csrf.clone();
    t.post(
        b,
        &format!("{card}/actions/reset_password"),
        &[("csrf", csrf.as_str()), ("confirmed", "yes")],
    )
    .await
}

/// agent2 verifies alice and asks for the reset: it waits. Returns the card and the request id.
async fn waiting(t: &TestApp, b: &mut Browser) -> (String, String) {
    let (card, _) = t.verified(b, "alice").await;
    let r = reset(t, b, &card).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert!(
        r.body.contains("Waiting for a second agent") && r.body.contains("Nothing was done yet"),
        "{}",
        r.body
    );
    let id = between(&r.body, "(request ", ")").unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    (card, id)
}

async fn resets(t: &TestApp) -> usize {
    t.audit_events()
        .await
        .iter()
        .filter(|e| e.kind == EventKind::ActionOutcome && e.outcome == Outcome::Success)
        .count()
}

#[tokio::test]
async fn a_held_action_waits_for_the_approver_and_then_runs_once() {
    let t = portal().await;
    let mut a2 = t.sign_in("agent2").await;
    let (card, id) = waiting(&t, &mut a2).await;
    assert_eq!(resets(&t).await, 0);

    // agent2 is no approver: no queue, no decision.
    let r = t.get(&mut a2, "/approvals").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let csrf = a2.csrf.clone();
    let r = t
        .post(
            &mut a2,
            &format!("/approvals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("not_permitted_for_role"), "{}", r.body);

    // agent3 reviews it: action, caller as the portal shows them, factor, the requesting agent's name.
    let mut a3 = t.sign_in("agent3").await;
    let r = t.get(&mut a3, "/approvals").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body.contains(&format!("approve-{id}")), "{}", r.body);
    assert!(r.body.contains("Alice"), "{}", r.body);
    assert!(r.body.contains("Push"), "{}", r.body);
    assert!(r.body.contains("Agent Two"), "{}", r.body);
    // A form without the CSRF token decides nothing.
    let r = t
        .post(
            &mut a3,
            &format!("/approvals/{id}/approve"),
            &[("csrf", "nope")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        reset(&t, &mut a2, &card).await.status,
        StatusCode::ACCEPTED,
        "still waiting"
    );
    let csrf = a3.csrf.clone();
    let r = t
        .post(
            &mut a3,
            &format!("/approvals/{id}/approve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("You approved"), "{}", r.body);
    let r = t.get(&mut a3, "/approvals").await;
    assert!(r.body.contains("Nothing is waiting"), "{}", r.body);

    // agent2 runs it now: the one-time secret page.
    let r = reset(&t, &mut a2, &card).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("one-time-secret"), "{}", r.body);
    assert_eq!(resets(&t).await, 1);
    // Once only.
    let r = reset(&t, &mut a2, &card).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(resets(&t).await, 1);

    let events = t.audit_events().await;
    let decided: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::ApprovalDecided)
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].outcome, Outcome::Success);
    let json = serde_json::to_string(&events).unwrap();
    for pii in ["alice", "Alice", "example.com", "Agent Two", "agent2"] {
        assert!(!json.contains(pii), "{pii} in the audit log");
    }
}

#[tokio::test]
async fn the_api_lists_and_a_refusal_leaves_no_usable_grant() {
    let t = portal().await;
    let mut a2 = t.sign_in("agent2").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let (card, _) = t.verified(&mut a2, "alice").await;
    // The confirmation step says the action will wait for a second agent.
    let csrf = a2.csrf.clone();
    let r = t
        .post(
            &mut a2,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"needs-approval\""), "{}", r.body);
    let r = t
        .post(
            &mut a2,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert!(!r.body.contains("needs-approval"), "{}", r.body);
    // The API answers 202 with the request's id.
    let tok2 = id_token(&t, "agent2").await;
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{alice}/actions/reset_password"),
        Some(&tok2),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "pending_approval");
    let id = v["approval_id"].as_str().unwrap().to_owned();

    let tok3 = id_token(&t, "agent3").await;
    let (s, v, r) = call(&t, "GET", "/api/v1/approvals", Some(&tok3), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["id"], id.as_str());
    assert_eq!(v[0]["action"], "reset_password");
    assert_eq!(v[0]["target_class"], "standard");
    assert_eq!(v[0]["factors"][0], "push");
    // The requester cannot decide their own.
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        Some(&tok2),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/approvals/{id}/refuse"),
        Some(&tok3),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["decision"], "refused");
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/approvals/{id}/approve"),
        Some(&tok3),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "approval_already_decided");
    // Nothing runs under the grant any more: neither the held action nor another one.
    let r = reset(&t, &mut a2, &card).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("grant_expired"), "{}", r.body);
    let csrf = a2.csrf.clone();
    let r = t
        .post(
            &mut a2,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(resets(&t).await, 0);
    assert!(!t.denials(Reason::NotPermittedForRole).await.is_empty());
}
