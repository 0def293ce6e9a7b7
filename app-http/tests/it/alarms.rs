//! "Not me" alarms end to end through the portal and the fake Okta: a push the caller denies clears their
//! sessions at the fake, sends a signed alert to a webhook receiver, and blocks the caller until the block ends;
//! the agent's "That was not me" button does the same; a burst of lookups raises one alert.

use crate::helpers::{Browser, TestApp, start_with};
use axum::http::StatusCode;
use fctr_ports::SecretString;
use fctr_webhook::{WebhookOptions, WebhookSink, sign};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET_B64: &str = "YWxhcm1zLXRlc3Qtd2ViaG9vay1rZXk=";

pub(crate) async fn receiver() -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    hook
}

/// A signed webhook sink delivering to `hook`.
pub(crate) fn webhook(hook: &MockServer) -> Arc<WebhookSink> {
    let url = format!("{}/hook", hook.uri()).parse().unwrap();
    Arc::new(
        WebhookSink::new(WebhookOptions::new(
            url,
            SecretString::from(format!("whsec_{SECRET_B64}")),
        ))
        .unwrap(),
    )
}

async fn portal(hook: &MockServer, policy: Option<&'static str>) -> TestApp {
    let sink = webhook(hook);
    start_with(move |o| {
        o.alerts = Some(sink);
        if let Some(p) = policy {
            o.policy = Some(fctr_core::policy::Policy::parse(p).unwrap());
        }
    })
    .await
}

/// Waits for `n` webhook deliveries and checks each one's signature the way a receiver would.
pub(crate) async fn alerts(hook: &MockServer, n: usize) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET_B64)
        .unwrap();
    for _ in 0..100 {
        let reqs = hook.received_requests().await.unwrap();
        if reqs.len() >= n {
            return reqs
                .iter()
                .map(|r| {
                    let h = |k: &str| r.headers.get(k).unwrap().to_str().unwrap().to_owned();
                    let ts: u64 = h("webhook-timestamp").parse().unwrap();
                    assert_eq!(
                        h("webhook-signature"),
                        sign(&key, &h("webhook-id"), ts, &r.body),
                        "the signature verifies"
                    );
                    let body = String::from_utf8(r.body.clone()).unwrap();
                    for pii in ["alice", "example.com", "Alice", "198.51.100"] {
                        assert!(!body.contains(pii), "{pii} in {body}");
                    }
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(v["id"].as_str().unwrap(), h("webhook-id"));
                    v
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} alerts never arrived");
}

async fn push_to_alice(t: &TestApp, b: &mut Browser) -> (String, String) {
    let card = t.find(b, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    let v = t.send_push(b, &card, &factor).await;
    (card, v)
}

async fn verify_refused_as_blocked(t: &TestApp, b: &mut Browser, card: &str) {
    let factor = t.factor_id("alice", "push");
    let csrf = b.csrf.clone();
    let r = t
        .post(
            b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &factor)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("caller_blocked"), "{}", r.body);
}

#[tokio::test]
async fn a_denied_push_clears_sessions_sends_a_signed_alert_and_blocks_the_caller() {
    let hook = receiver().await;
    let t = portal(&hook, None).await;
    let mut b = t.sign_in("agent2").await;
    let (card, v) = push_to_alice(&t, &mut b).await;
    let push = t
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    t.demo.fake.phones().deny(&push.transaction_id).unwrap();
    t.wait_page(&mut b, &v, "data-status=\"rejected\"").await;

    let got = alerts(&hook, 1).await;
    assert_eq!(got[0]["rule"], "not_me");
    assert_eq!(got[0]["severity"], "critical");
    let effects = t.demo.fake.state().effects("alice@example.com").unwrap();
    assert_eq!(
        effects.sessions_revoked, 1,
        "sessions cleared at the fake Okta"
    );
    assert_eq!(effects.oauth_tokens_revoked, 1);

    verify_refused_as_blocked(&t, &mut b, &card).await;
    // Until the block ends (the agent's session has ended by then too: a fresh sign-in).
    t.clock.advance(chrono::Duration::seconds(1801));
    let mut b = t.sign_in("agent2").await;
    push_to_alice(&t, &mut b).await;
}

#[tokio::test]
async fn the_not_me_button_responds_the_same_way() {
    let hook = receiver().await;
    let t = portal(&hook, None).await;
    let mut b = t.sign_in("agent2").await;
    let (card, v) = push_to_alice(&t, &mut b).await;
    let page = t.get(&mut b, &v).await;
    assert!(page.body.contains("/not-me"), "{}", page.body);
    let csrf = b.csrf.clone();
    let r = t
        .post(&mut b, &format!("{v}/not-me"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("that was not me"), "{}", r.body);
    let got = alerts(&hook, 1).await;
    assert_eq!(got[0]["rule"], "not_me");
    assert_eq!(
        t.demo
            .fake
            .state()
            .effects("alice@example.com")
            .unwrap()
            .sessions_revoked,
        1
    );
    verify_refused_as_blocked(&t, &mut b, &card).await;
    // Without the CSRF token nothing happens.
    let r = t.post(&mut b, &format!("{v}/not-me"), &[]).await;
    assert_ne!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_burst_of_lookups_by_one_agent_raises_one_alert() {
    let hook = receiver().await;
    let t = portal(
        &hook,
        Some("[alarms.velocity]\nlookups_per_agent = { count = 3, window_seconds = 600 }\n"),
    )
    .await;
    let mut b = t.sign_in("agent2").await;
    for _ in 0..8 {
        t.find(&mut b, "alice@example.com").await;
    }
    let got = alerts(&hook, 1).await;
    assert_eq!(got[0]["rule"], "lookups_per_agent");
    assert_eq!(got[0]["count"], 3);
    // Only one, however many lookups follow in the window.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);
}

/// The same response on Entra, through the production wiring: `[alerts]` in the configuration file (secret from a
/// file), the "That was not me" button on Bob's verification, Graph's `revokeSignInSessions` at the fake Entra, a
/// signed alert at the receiver, and Bob blocked.
#[tokio::test]
async fn on_entra_the_not_me_response_revokes_sessions_through_graph_and_alerts() {
    use crate::entra::{Credential, method, start_with_extra, write};
    use fctr_testkit::entra::FixtureMethod;
    let hook = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write(
        dir.path(),
        "alert-secret",
        format!("whsec_{SECRET_B64}\n").as_bytes(),
    );
    let extra = format!(
        "\n[alerts]\nwebhook_url = \"{}/hook\"\nwebhook_secret_file = \"{}\"\n",
        hook.uri(),
        secret.display()
    );
    let t = start_with_extra(Credential::Secret, &extra).await;
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let card = t.find(&mut b, "bob@example.com").await;
    let oath = method(&t.fake, "bob", FixtureMethod::SoftwareOath);
    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &oath)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let v = r.location();
    let r = t
        .post(&mut b, &format!("{v}/not-me"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = alerts(&hook, 1).await;
    assert_eq!(got[0]["rule"], "not_me");
    let bob = t.fake.fixtures().user("bob").unwrap().clone();
    assert_eq!(
        t.fake.state().effects(&bob.upn).unwrap().sessions_revoked,
        1,
        "revokeSignInSessions at the fake Entra"
    );
    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &oath)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("caller_blocked"), "{}", r.body);
}
