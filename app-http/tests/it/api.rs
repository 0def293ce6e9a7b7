//! The JSON API, OpenAPI, operations endpoints.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use sha2::Digest as _;
use std::time::Duration;

/// An ID token for `handle` straight from the fake's OIDC provider (code + PKCE), as an integration would hold.
pub async fn id_token(t: &TestApp, handle: &str) -> String {
    let base = t.demo.fake.base_url();
    let client = t.demo.fake.oidc_client();
    let verifier = "v".repeat(50);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = format!("{PUBLIC}/auth/callback");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut authorize = base.join("/oauth2/v1/authorize").unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid groups")
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", "s1")
        .append_pair("nonce", "n1")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let page = http
        .get(authorize.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request_id = between(&page, "name=\"request_id\" value=\"", "\"")
        .unwrap()
        .to_owned();
    authorize.set_query(None);
    let user = t.demo.fake.fixtures().id_of(handle);
    let r = http
        .post(authorize)
        .form(&[("request_id", request_id.as_str()), ("user", user.as_str())])
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(r.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let secret = secrecy::ExposeSecret::expose_secret(&client.client_secret).to_owned();
    let tok: serde_json::Value = http
        .post(base.join("/oauth2/v1/token").unwrap())
        .basic_auth(&client.client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tok["id_token"].as_str().unwrap().to_owned()
}

pub async fn call(
    t: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value, Resp) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let req = match body {
        Some(v) => req
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let r = t.send(req).await;
    let v = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v, r)
}

#[tokio::test]
async fn api_flow_with_a_bearer_token() {
    let t = start().await;
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
    let (s, card, _) = call(&t, "GET", &format!("/api/v1/users/{id}"), Some(&tok), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(card["login"], "alice@example.com");
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
    assert!(e["error"]["message"].is_string());
    let push = card["recommended_factor"].as_str().unwrap().to_owned();
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{id}/verifications"),
        Some(&tok),
        Some(serde_json::json!({"factor_id": push})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vid = v["id"].as_str().unwrap().to_owned();
    assert!(v["number"].is_number());
    let p = t
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    t.demo
        .fake
        .phones()
        .approve(&p.transaction_id, p.correct_answer.unwrap())
        .unwrap();
    let mut status = String::new();
    for _ in 0..100 {
        let (_, v, _) = call(
            &t,
            "GET",
            &format!("/api/v1/verifications/{vid}"),
            Some(&tok),
            None,
        )
        .await;
        status = v["status"].as_str().unwrap_or_default().to_owned();
        if status == "verified" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "verified");
    let (s, v, r) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{id}/actions/reset_password"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(v["secret"]["kind"], "reset_link");
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{id}/actions/reset_password"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "grant_used");
}

#[tokio::test]
async fn api_refuses_missing_bad_and_roleless_tokens() {
    let t = start().await;
    let (s, v, r) = call(&t, "GET", "/api/v1/users/00ualice000000000000", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthenticated");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let (s, _, _) = call(
        &t,
        "GET",
        "/api/v1/users/00ualice000000000000",
        Some("not.a.jwt"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let tok = id_token(&t, "agent2").await;
    let mut parts: Vec<String> = tok.split('.').map(str::to_owned).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"sub":"x","groups":["fctr-tier3"]}"#);
    let (s, _, _) = call(
        &t,
        "GET",
        "/api/v1/users/00ualice000000000000",
        Some(&parts.join(".")),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "tampered payload");
    let none = id_token(&t, "agent0").await;
    let (s, v, _) = call(
        &t,
        "GET",
        "/api/v1/users/00ualice000000000000",
        Some(&none),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "no_role");
}

#[tokio::test]
async fn api_with_a_session_needs_the_csrf_header_for_changes() {
    let t = start().await;
    let b = t.sign_in("agent2").await;
    let id = t.demo.fake.fixtures().id_of("alice");
    let get = Request::get(format!("/api/v1/users/{id}"))
        .header("cookie", b.cookie_header())
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(get).await.status, StatusCode::OK);
    let post = |csrf: Option<&str>| {
        let mut r = Request::post(format!("/api/v1/users/{id}/verifications"))
            .header("cookie", b.cookie_header());
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.body(Body::empty()).unwrap()
    };
    let r = t.send(post(None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("csrf_rejected"));
    assert!(t.demo.fake.phones().pending().is_empty());
    let r = t.send(post(Some(&b.csrf))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn openapi_and_operations_endpoints() {
    let t = start().await;
    let (s, v, _) = call(&t, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/v1/users/search",
        "/api/v1/users/{id}",
        "/api/v1/verifications/{id}",
        "/api/v1/users/{id}/actions/{action}",
    ] {
        assert!(v["paths"][p].is_object(), "{p} documented");
    }
    let (s, v, _) = call(&t, "GET", "/api/v1/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
    assert_eq!(
        call(&t, "GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&t, "GET", "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let (s, _, r) = call(&t, "GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(r.body.contains("fctr_http_requests_total"), "{}", r.body);
    assert!(r.body.contains("fctr_idp_calls_total"));
}
