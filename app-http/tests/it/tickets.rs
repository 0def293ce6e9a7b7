//! Issue 17 item 5, ticket write-back end to end: the portal, the fake Okta, and a wiremock fake of each ticket
//! system behind the real adapters. The note says what was done, by which agent, when and after which factor;
//! nothing about the caller. A failing system never holds the action back; the failures show in the audit log
//! and the counts.

use crate::helpers::*;
use axum::http::StatusCode;
use fctr_ports::{Clock as _, EventKind, Outcome, SecretString, TicketSink, TicketSystem};
use fctr_testkit::okta::FixtureUser;
use fctr_tickets::{TicketAdapter, TicketAuth, TicketConfig};
use fctr_wiring::NoteRetry;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// The canary caller: none of these may reach a ticket.
const ID: &str = "00uCANARYzq000000001";
const LOGIN: &str = "zq@example.com";
const FIRST: &str = "Quorvathine";
const LAST: &str = "Zilbertowska";
const PHONE: &str = "+1-555-0177";
const SYS_ID: &str = "0123456789abcdef0123456789abcdef";

fn adapter(server: &MockServer, system: TicketSystem) -> Arc<dyn TicketSink> {
    Arc::new(
        TicketAdapter::new(TicketConfig::new(
            system,
            url::Url::parse(&server.uri()).unwrap(),
            TicketAuth::Basic {
                user: "svc-fctr@example.com".into(),
                secret: SecretString::from("ticket-secret-tok".to_owned()),
            },
        ))
        .unwrap(),
    )
}

fn fast() -> NoteRetry {
    NoteRetry {
        attempts: 5,
        first_wait: Duration::from_millis(20),
        max_wait: Duration::from_millis(200),
        max_queued: 100,
    }
}

async fn portal(sink: Option<Arc<dyn TicketSink>>) -> TestApp {
    start_with(move |o| {
        o.fake.extra_users = vec![FixtureUser::caller(
            "zq",
            ID,
            LOGIN,
            FIRST,
            LAST,
            Some(PHONE),
        )];
        o.tickets = sink.map(|s| (s, fast()));
    })
    .await
}

/// Verifies the canary caller by push and resets their password with `ticket`; returns the response.
async fn act_with_ticket(t: &TestApp, ticket: &str) -> Resp {
    let mut b = t.sign_in("agent2").await;
    let (card, _) = t.verified(&mut b, "zq").await;
    let csrf = b.csrf.clone();
    t.post(
        &mut b,
        &format!("{card}/actions/reset_password"),
        &[
            ("csrf", csrf.as_str()),
            ("confirmed", "yes"),
            ("ticket", ticket),
        ],
    )
    .await
}

/// Every request body the fake got, as text.
async fn bodies(s: &MockServer) -> Vec<String> {
    s.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// Waits (bounded) until `n` requests matched `m` on the fake.
async fn wait_requests(s: &MockServer, m: &str, n: usize) -> Vec<Request> {
    for _ in 0..200 {
        let got: Vec<Request> = s
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == m)
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} {m} requests never arrived");
}

fn assert_no_caller_data(text: &str) {
    for canary in [ID, LOGIN, "zq@", FIRST, LAST, PHONE, "ticket-secret-tok"] {
        assert!(
            !text.contains(canary),
            "{canary} reached the ticket: {text}"
        );
    }
}

async fn note_events(t: &TestApp) -> Vec<fctr_ports::AuditEvent> {
    t.audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::TicketNote)
        .collect()
}

/// The note's text from a request body of `system`.
fn note_text(system: TicketSystem, body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    match system {
        TicketSystem::ServiceNow => v["work_notes"].as_str().unwrap().to_owned(),
        TicketSystem::Jira => v["body"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["content"][0]["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => v["ticket"]["comment"]["body"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn each_system_gets_exactly_one_note_with_the_facts_and_nothing_about_the_caller() {
    for (system, reference, verb, path_) in [
        (
            TicketSystem::ServiceNow,
            "INC0012345",
            "PATCH",
            format!("/api/now/table/incident/{SYS_ID}"),
        ),
        (
            TicketSystem::Jira,
            "HELP-123",
            "POST",
            "/rest/api/3/issue/HELP-123/comment".to_owned(),
        ),
        (
            TicketSystem::Zendesk,
            "#4321",
            "PUT",
            "/api/v2/tickets/4321.json".to_owned(),
        ),
    ] {
        let fake = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/now/table/incident"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({"result": [{"sys_id": SYS_ID}]})),
            )
            .mount(&fake)
            .await;
        Mock::given(method(verb))
            .and(path(path_.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
            .expect(1)
            .mount(&fake)
            .await;
        let t = portal(Some(adapter(&fake, system))).await;
        let before = t.clock.now();
        let r = act_with_ticket(&t, reference).await;
        assert_eq!(r.status, StatusCode::OK, "{system}: {}", r.body);
        assert!(r.body.contains("id=\"ticket-note\""), "{}", r.body);
        assert!(r.body.contains(system.label()), "{}", r.body);
        let sent = wait_requests(&fake, verb, 1).await;
        assert_eq!(sent.len(), 1, "{system}: one note");
        let text = note_text(system, &String::from_utf8_lossy(&sent[0].body));
        assert!(text.contains("Outcome: done"), "{text}");
        assert!(text.contains("Action: reset_password"), "{text}");
        assert!(text.contains("Verified with: push"), "{text}");
        assert!(text.contains("Agent: Agent Two"), "{text}");
        let at = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        assert!(text.contains(&format!("Time: {at}")), "{text} (clock {at})");
        for b in bodies(&fake).await {
            assert_no_caller_data(&b);
        }
        // Visible: the delivery is audited, with the ticket reference and no caller.
        let mut events = Vec::new();
        for _ in 0..100 {
            events = note_events(&t).await;
            if !events.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].outcome, Outcome::Success);
        assert_eq!(
            events[0].ticket.as_ref().map(|t| t.as_str()),
            Some(reference)
        );
        assert!(events[0].target.is_none());
        assert_no_caller_data(&serde_json::to_string(&events[0]).unwrap());
        let desk = t.demo.state.tickets().unwrap();
        assert_eq!(desk.counts().delivered.load(Ordering::Relaxed), 1);
        fake.verify().await;
    }
}

/// Answers 503 twice, then 200.
struct FlakyTwice(std::sync::atomic::AtomicUsize);

impl Respond for FlakyTwice {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, Ordering::SeqCst) < 2 {
            ResponseTemplate::new(503)
        } else {
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "1"}))
        }
    }
}

#[tokio::test]
async fn a_failing_system_does_not_hold_the_action_and_the_note_arrives_on_retry() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/HELP-7/comment"))
        .respond_with(FlakyTwice(std::sync::atomic::AtomicUsize::new(0)))
        .expect(3)
        .mount(&fake)
        .await;
    let t = portal(Some(adapter(&fake, TicketSystem::Jira))).await;
    let r = act_with_ticket(&t, "HELP-7").await;
    // The action is done and shown at once: its one-time secret is on the page.
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("id=\"one-time-secret\""), "{}", r.body);
    assert!(
        t.audit_events()
            .await
            .iter()
            .any(|e| e.kind == EventKind::ActionOutcome && e.outcome == Outcome::Success)
    );
    wait_requests(&fake, "POST", 3).await;
    let mut events = Vec::new();
    for _ in 0..100 {
        events = note_events(&t).await;
        if events.iter().any(|e| e.outcome == Outcome::Success) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outcomes: Vec<Outcome> = events.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Pending, Outcome::Pending, Outcome::Success],
        "{events:?}"
    );
    let detail = serde_json::to_string(&events[0].detail).unwrap();
    assert!(
        detail.contains("jira:upstream") && detail.contains("503"),
        "{detail}"
    );
    // The same attempts in the metric's labels and in the desk's counts.
    let labels: Vec<_> = events
        .iter()
        .filter_map(fctr_portal::metrics::ticket_note_labels)
        .collect();
    assert_eq!(
        labels,
        [
            ("jira", "retried"),
            ("jira", "retried"),
            ("jira", "delivered")
        ]
    );
    let desk = t.demo.state.tickets().unwrap();
    assert_eq!(desk.counts().retried.load(Ordering::Relaxed), 2);
    assert_eq!(desk.counts().delivered.load(Ordering::Relaxed), 1);
    assert_eq!(desk.queued(), 0);
    fake.verify().await;
}

#[tokio::test]
async fn a_reference_the_system_cannot_name_is_refused_and_nothing_is_done_or_sent() {
    let fake = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&fake)
        .await;
    let t = portal(Some(adapter(&fake, TicketSystem::ServiceNow))).await;
    let mut b = t.sign_in("agent2").await;
    let (card, _) = t.verified(&mut b, "zq").await;
    let csrf = b.csrf.clone();
    for bad in ["HELP-123", "zq@example.com", "Quorvathine"] {
        let r = t
            .post(
                &mut b,
                &format!("{card}/actions/reset_password"),
                &[
                    ("csrf", csrf.as_str()),
                    ("confirmed", "yes"),
                    ("ticket", bad),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(r.body.contains("Nothing was done"), "{}", r.body);
        assert!(!r.body.contains(bad), "the refusal echoes {bad}");
    }
    // Nothing ran: no intent, and the grant is still there for a proper reference.
    assert!(
        !t.audit_events()
            .await
            .iter()
            .any(|e| e.kind == EventKind::ActionIntent)
    );
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the grant was left unused: {}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(note_events(&t).await.is_empty());
    fake.verify().await;
}

#[tokio::test]
async fn no_ticket_system_or_no_reference_means_no_call() {
    // A system, but no reference.
    let fake = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&fake)
        .await;
    let t = portal(Some(adapter(&fake, TicketSystem::Zendesk))).await;
    let r = act_with_ticket(&t, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("id=\"ticket-note\""));
    // A reference, but no system: the reference is audited as before, nothing is posted.
    let t2 = portal(None).await;
    let r = act_with_ticket(&t2, "INC0012345").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("id=\"ticket-note\""));
    assert!(r.body.contains("id=\"ticket-ref\""));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(note_events(&t).await.is_empty() && note_events(&t2).await.is_empty());
    fake.verify().await;
}
