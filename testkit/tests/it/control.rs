use std::time::{Duration, Instant};

use fctr_testkit::okta::Fault;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn fixtures_are_documented_and_served() {
    let okta = start().await;
    let f = okta.fixtures();
    for h in [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "agent0",
        "agent1", "agent2", "agent3",
    ] {
        let u = f.user(h).unwrap();
        assert!(u.login.ends_with("@example.com"));
        assert_eq!(u.id.len(), 20);
        assert!(u.id.starts_with("00u"));
    }
    assert_eq!(f.user("erin").unwrap().status, "LOCKED_OUT");
    assert_eq!(f.user("frank").unwrap().status, "PASSWORD_EXPIRED");
    assert_eq!(f.user("grace").unwrap().status, "SUSPENDED");
    assert_eq!(f.user("carol").unwrap().groups, ["fctr-protected"]);
    assert_eq!(f.user("dave").unwrap().groups, ["fctr-privileged"]);
    assert!(f.user("agent0").unwrap().groups.is_empty());
    assert_eq!(f.user("agent3").unwrap().groups, ["fctr-tier3"]);
    let served: Value = client()
        .get(url(&okta, "/_fake/fixtures"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["users"].as_array().unwrap().len(), f.users.len());
    // Documented secrets are stable.
    let doc = include_str!("../../FIXTURES.md");
    for g in &f.groups {
        assert!(
            doc.contains(&format!("`{}`", g.id)),
            "{} missing from FIXTURES.md",
            g.name
        );
    }
    for u in &f.users {
        assert!(doc.contains(&u.id), "{} missing from FIXTURES.md", u.handle);
        if let Some(s) = &u.totp_secret {
            assert!(
                doc.contains(s.as_str()),
                "{} secret missing from FIXTURES.md",
                u.handle
            );
        }
        for fac in &u.factors {
            assert!(
                doc.contains(&fac.id),
                "{} factor missing from FIXTURES.md",
                u.handle
            );
        }
    }
}

#[tokio::test]
async fn totp_control_endpoint() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let body: Value = client()
        .get(url(&okta, &format!("/_fake/totp/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["passCode"].as_str().unwrap().len(), 6);
    let fid = okta
        .fixtures()
        .factor("alice", "token:software:totp")
        .unwrap()
        .id
        .clone();
    let resp = post(
        &okta,
        &format!("/api/v1/users/{id}/factors/{fid}/verify"),
        Some(json!({"passCode": body["passCode"]})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = client()
        .get(url(&okta, "/_fake/totp/00unobody0000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn fault_latency_5xx_429_malformed_and_times() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let path = format!("/api/v1/users/{id}");
    okta.faults().set(
        "GET /api/v1/users/{id}",
        Fault::Latency { ms: 300 },
        Some(1),
    );
    let t = Instant::now();
    assert_eq!(get(&okta, &path).await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(get(&okta, &path).await.status(), 200);
    assert!(t.elapsed() < Duration::from_millis(300));

    okta.faults().set(
        "/api/v1/users/{id}",
        Fault::ServerError { status: 503 },
        Some(2),
    );
    okta_error(
        get(&okta, &path).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "E0000009",
    )
    .await;
    okta_error(
        get(&okta, &path).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "E0000009",
    )
    .await;
    assert_eq!(get(&okta, &path).await.status(), 200);

    // Through the control API: 429 with reset headers.
    let resp = client()
        .post(url(&okta, "/_fake/faults"))
        .json(&json!({"route": "GET /api/v1/users/{id}", "fault": {"kind": "rate_limited", "reset_after_secs": 7}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = get(&okta, &path).await;
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");
    let reset: i64 = resp.headers()["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let date = httpdate::parse_http_date(resp.headers()["date"].to_str().unwrap()).unwrap();
    let date = i64::try_from(
        date.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert!((6..=8).contains(&(reset - date)), "{reset} {date}");
    okta_error(resp, StatusCode::TOO_MANY_REQUESTS, "E0000047").await;

    okta.faults().set("*", Fault::MalformedJson, None);
    let resp = get(&okta, &path).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.is_err());
    // Other routes too ("*"), until cleared.
    assert!(
        get(&okta, &format!("{path}/factors"))
            .await
            .json::<Value>()
            .await
            .is_err()
    );
    let resp = client()
        .delete(url(&okta, "/_fake/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(get(&okta, &path).await.json::<Value>().await.is_ok());
}

#[tokio::test]
async fn fault_drop_connection() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    okta.faults()
        .set("GET /api/v1/users/{id}", Fault::DropConnection, Some(1));
    let err = client()
        .get(url(&okta, &format!("/api/v1/users/{id}")))
        .header("Authorization", format!("SSWS {}", okta.api_token()))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(
        get(&okta, &format!("/api/v1/users/{id}")).await.status(),
        200
    );
}

#[tokio::test]
async fn phone_page_answers_a_push() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let fid = okta.fixtures().factor("alice", "push").unwrap().id.clone();
    let body: Value = post(
        &okta,
        &format!("/api/v1/users/{id}/factors/{fid}/verify"),
        Some(json!({"useNumberMatchingChallenge": true})),
    )
    .await
    .json()
    .await
    .unwrap();
    let n = body["_embedded"]["challenge"]["correctAnswer"]
        .as_u64()
        .unwrap();
    let tx = body["_links"]["poll"]["href"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let resp = client()
        .get(url(&okta, "/_fake/phone"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    assert!(html.contains(&format!("value=\"{n}\"")));
    assert!(html.contains(&tx));
    assert!(html.contains("alice@example.com"));
    // Filtered to another user, nothing.
    let html = client()
        .get(url(&okta, "/_fake/phone?user=bob"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&tx));
    let resp = client()
        .post(url(&okta, "/_fake/phone"))
        .form(&[("tx", tx.as_str()), ("number", n.to_string().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let href = body["_links"]["poll"]["href"].as_str().unwrap();
    let r: Value = client()
        .get(href)
        .header("Authorization", format!("SSWS {}", okta.api_token()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["factorResult"], "SUCCESS");
}

#[tokio::test]
async fn graceful_shutdown_frees_the_port() {
    let okta = start().await;
    let addr = okta.local_addr();
    okta.shutdown().await;
    assert!(
        client()
            .get(format!("http://{addr}/_fake/fixtures"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn in_process_router() {
    use tower::ServiceExt as _;
    let state = fctr_testkit::okta::FakeOktaState::new_async(
        &fctr_testkit::okta::FakeOktaOptions::default(),
        url::Url::parse("http://fake.example.com").unwrap(),
    )
    .await
    .unwrap();
    let app = fctr_testkit::okta::router(state.clone());
    let req = axum::http::Request::get("/.well-known/openid-configuration")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-okta-request-id"));
    assert!(resp.headers().contains_key("x-rate-limit-limit"));
}
