//! The webhook against a local receiver (wiremock): signed as Standard Webhooks says, retried on 5xx, final on 4xx.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine as _;
use chrono::Utc;
use fctr_ports::{Alert, AlertRule, AlertSink, PortError, PseudoId, SecretString, Severity};
use fctr_webhook::{WebhookOptions, WebhookSink, sign};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=";

fn alert() -> Alert {
    Alert::new(AlertRule::NotMe, Severity::Critical, Utc::now())
        .caller(PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap())
        .agent(PseudoId::parse("k1:BBBBBBBBBBBBBBBBBBBBBA").unwrap())
}

fn sink(server: &MockServer, attempts: u32) -> WebhookSink {
    let mut o = WebhookOptions::new(
        format!("{}/hook", server.uri()).parse().unwrap(),
        SecretString::from(SECRET.to_owned()),
    );
    o.attempts = attempts;
    o.backoff = Duration::from_millis(10);
    WebhookSink::new(o).unwrap()
}

/// Checks a request the way a receiver would: recompute the HMAC independently of the crate's `sign`.
fn verify(req: &wiremock::Request) -> bool {
    let h = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_owned();
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&req.body);
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let fresh = ts.parse::<i64>().unwrap() >= Utc::now().timestamp() - 60;
    sig == format!("v1,{want}") && fresh
}

#[tokio::test]
async fn a_delivery_is_signed_and_carries_pseudonyms_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let a = alert();
    sink(&server, 3).deliver(&a).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    let r = &reqs[0];
    assert!(verify(r), "signature verifies");
    assert_eq!(r.headers.get("webhook-id").unwrap(), &a.id.to_string());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["rule"], "not_me");
    assert_eq!(v["caller"], "k1:AAAAAAAAAAAAAAAAAAAAAA");
    // A tampered body no longer verifies.
    let mut bad = r.clone();
    bad.body.push(b' ');
    assert!(!verify(&bad));
    // The crate's `sign` agrees with the independent computation.
    let ts: u64 = r
        .headers
        .get("webhook-timestamp")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert_eq!(
        r.headers
            .get("webhook-signature")
            .unwrap()
            .to_str()
            .unwrap(),
        sign(&key, &a.id.to_string(), ts, &r.body)
    );
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_alert_on_the_third_attempt_with_the_same_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let a = alert();
    sink(&server, 4).deliver(&a).await.unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.headers.get("webhook-id").unwrap(), &a.id.to_string());
        assert!(verify(r));
    }
}

#[tokio::test]
async fn retries_are_bounded_and_a_client_error_is_final() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let e = sink(&server, 3).deliver(&alert()).await.unwrap_err();
    assert!(
        matches!(e, PortError::Upstream { status: 500, .. }),
        "{e:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    let e = sink(&server, 3).deliver(&alert()).await.unwrap_err();
    assert!(
        matches!(e, PortError::Upstream { status: 400, .. }),
        "{e:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_429_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    sink(&server, 2).deliver(&alert()).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
