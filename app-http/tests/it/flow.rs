//! End to end: search, card, push with live status, action with a one-time secret; code path; denial; isolation.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use std::time::Duration;

#[tokio::test]
async fn tier2_verifies_by_push_and_resets_a_password_shown_once() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice").await;
    let r = t.get(&mut b, &card).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("alice@example.com"));
    assert!(r.body.contains("id=\"verify-button\""), "{}", r.body);
    assert!(r.body.contains("recommended"));
    assert!(r.body.contains("Okta Verify push with number"));
    assert!(
        r.body.contains("Verify the caller first."),
        "actions say why they wait"
    );
    let factor = t.factor_id("alice", "push");
    let v = t.send_push(&mut b, &card, &factor).await;
    let page = t.get(&mut b, &v).await;
    let push = t
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    let n = push.correct_answer.unwrap();
    assert!(
        page.body.contains(&format!(
            "id=\"number\" aria-label=\"Number to pick: {n}\">{n}<"
        )),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<noscript><meta http-equiv=\"refresh\""),
        "no-JS fallback"
    );
    t.demo
        .fake
        .phones()
        .approve(&push.transaction_id, n)
        .unwrap();
    let page = t.wait_page(&mut b, &v, "data-status=\"verified\"").await;
    assert!(page.body.contains("AAL2-capable"), "{}", page.body);
    assert!(page.body.contains("id=\"act-reset_password\""));
    let r = t.get(&mut b, &card).await;
    assert!(r.body.contains("Verified by you"));
    let csrf = b.csrf.clone();
    let action = format!("{card}/actions/reset_password");
    let r = t
        .post(
            &mut b,
            &action,
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let secret = between(&r.body, "id=\"one-time-secret\" class=\"one-time\">", "<")
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("http"), "a reset link: {secret}");
    // Reload: GET on the action URL shows no secret; a re-POST is refused (grant used).
    let g = t.get(&mut b, &action).await;
    assert_eq!(g.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(!g.body.contains(&secret));
    let again = t
        .post(
            &mut b,
            &action,
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("grant_used"), "{}", again.body);
    assert!(!again.body.contains(&secret));
    let card_page = t.get(&mut b, &card).await;
    assert!(!card_page.body.contains(&secret));
}

#[tokio::test]
async fn live_status_arrives_over_server_sent_events() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "bob@example.com").await;
    let factor = t.factor_id("bob", "push");
    let v = t.send_push(&mut b, &card, &factor).await;
    let req = Request::get(format!("{v}/events"))
        .header("cookie", b.cookie_header())
        .body(Body::empty())
        .unwrap();
    let resp = t.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body();
    let push = t
        .demo
        .fake
        .phones()
        .wait_for_push("bob@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    t.demo
        .fake
        .phones()
        .approve(&push.transaction_id, push.correct_answer.unwrap())
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\\\"done\\\"") && !seen.contains("\"done\":true") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("an event in time");
        let Some(Ok(f)) = frame else { break };
        if let Some(d) = f.data_ref() {
            seen.push_str(&String::from_utf8_lossy(d));
        }
    }
    assert!(seen.contains("event: status"), "{seen}");
    assert!(seen.contains("\"done\":true"), "{seen}");
    assert!(seen.contains("data-status=\\\"verified\\\""), "{seen}");
}

#[tokio::test]
async fn denied_push_shows_rejected_and_no_action() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    let v = t.send_push(&mut b, &card, &factor).await;
    let push = t
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    t.demo.fake.phones().deny(&push.transaction_id).unwrap();
    let page = t.wait_page(&mut b, &v, "data-status=\"rejected\"").await;
    assert!(page.body.contains("challenge_rejected"), "{}", page.body);
    assert!(!page.body.contains("/actions/"));
}

#[tokio::test]
async fn totp_code_verifies_and_a_replay_is_refused() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "bob@example.com").await;
    let factor = t.factor_id("bob", "token:software:totp");
    let v = t.send_push(&mut b, &card, &factor).await;
    let page = t.get(&mut b, &v).await;
    assert!(page.body.contains("name=\"code\""), "{}", page.body);
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{v}/code"),
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    // Inline at the code form, with the attempts left: the agent stays on the page.
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"code-error\""), "{}", r.body);
    assert!(
        r.body.contains("The code is wrong") || r.body.contains("already used"),
        "{}",
        r.body
    );
    assert!(r.body.contains("attempts left"), "{}", r.body);
    let code = t.demo.fake.state().totp_now("bob").unwrap();
    let r = t
        .post(
            &mut b,
            &format!("{v}/code"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = t.get(&mut b, &v).await;
    assert!(
        page.body.contains("data-status=\"verified\""),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn another_agents_verification_is_not_visible() {
    let t = start().await;
    let mut a = t.sign_in("agent2").await;
    let mut m = t.sign_in("agent3").await;
    let card = t.find(&mut a, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    let v = t.send_push(&mut a, &card, &factor).await;
    let r = t.get(&mut m, &v).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("verification_not_found"));
    assert!(!r.body.contains("id=\"number\""));
    let csrf = m.csrf.clone();
    let r = t
        .post(
            &mut m,
            &format!("{v}/code"),
            &[("csrf", &csrf), ("code", "123456")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_expired_grant_is_refused_with_the_reason() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let (card, _) = t.verified(&mut b, "alice").await;
    t.clock.advance(chrono::TimeDelta::minutes(11));
    // Keep the session alive (idle timeout is 15 min); the grant lives 10 min by default.
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.body.contains("grant_expired") || r.body.contains("no_live_grant"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn protected_caller_cannot_be_verified() {
    let t = start().await;
    let mut b = t.sign_in("agent3").await;
    let card = t.find(&mut b, "carol@example.com").await;
    let r = t.get(&mut b, &card).await;
    assert!(r.body.contains("protected"), "{}", r.body);
    let factor = t.factor_id("carol", "push");
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &factor)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("protected_target"));
}

#[tokio::test]
async fn one_poller_per_challenge_however_many_watchers() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    let v = t.send_push(&mut b, &card, &factor).await;
    let before = t.demo.idp.polls();
    let mut streams = Vec::new();
    for _ in 0..10 {
        let req = Request::get(format!("{v}/events"))
            .header("cookie", b.cookie_header())
            .body(Body::empty())
            .unwrap();
        streams.push(t.oneshot(req).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(520)).await;
    let polls = t.demo.idp.polls() - before;
    // Interval 50 ms: about 10 polls in 520 ms for ONE poller; ten pollers would make about 100.
    assert!(polls <= 14, "{polls} upstream polls for one challenge");
    assert!(polls >= 3, "{polls}");
    drop(streams);
}

#[tokio::test]
async fn audit_view_is_for_view_audit_roles_and_pseudonymous() {
    let t = start().await;
    let mut b2 = t.sign_in("agent2").await;
    let _ = t.find(&mut b2, "alice@example.com").await;
    let r = t.get(&mut b2, "/audit").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut b3 = t.sign_in("agent3").await;
    let r = t.get(&mut b3, "/audit").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<td>Caller looked up</td>"), "{}", r.body);
    assert!(r.body.contains("<td>Agent signed in</td>"));
    for pii in ["alice", "agent2@", "00ualice"] {
        assert!(!r.body.contains(pii), "{pii} in audit view");
    }
    let r = t.get(&mut b3, "/audit?kind=login").await;
    assert!(r.body.contains("<td>Agent signed in</td>"));
    assert!(!r.body.contains("<td>Caller looked up</td>"));
}

/// A ticket reference rides on the request's audit events as typed; a value shaped like personal data (an e-mail
/// address, a name) is refused with a clear page before anything is sent or changed, and is never recorded.
#[tokio::test]
async fn a_ticket_reference_is_audited_as_given_and_personal_data_is_refused() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let csrf = b.csrf.clone();
    let before = t.audit_events().await.len();
    for bad in ["alice@example.com", "Alice Smith", "INC12ab"] {
        let r = t
            .post(
                &mut b,
                &format!("{card}/verify"),
                &[("csrf", csrf.as_str()), ("ticket", bad)],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body.contains("Ticket reference not accepted"));
        assert!(!r.body.contains(bad), "the refusal does not echo {bad}");
    }
    assert_eq!(
        t.audit_events().await.len(),
        before,
        "nothing was sent or audited"
    );
    assert!(
        t.demo
            .fake
            .phones()
            .wait_for_push("alice@example.com", Duration::from_millis(200))
            .await
            .is_none(),
        "no push was sent"
    );

    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", csrf.as_str()), ("ticket", "INC0012345")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let events = t.audit_events().await;
    let started = events
        .iter()
        .rev()
        .find(|e| e.kind == fctr_ports::EventKind::ChallengeStarted)
        .expect("the challenge is audited");
    assert_eq!(
        started.ticket.as_ref().map(fctr_ports::TicketRef::as_str),
        Some("INC0012345")
    );
    assert!(
        events[before..]
            .iter()
            .all(|e| !format!("{e:?}").contains("alice")),
        "no personal data in the events"
    );
}
