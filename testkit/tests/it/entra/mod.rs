//! The fake Entra tenant over real HTTP.

mod connector;
mod graph;
mod lifecycle;
mod oidc;
mod token;

use std::time::{SystemTime, UNIX_EPOCH};

use fctr_testkit::entra::{FakeEntra, FakeEntraOptions, GRAPH_SCOPE};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Method, Response};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

pub async fn start() -> FakeEntra {
    FakeEntra::start(FakeEntraOptions::default())
        .await
        .expect("fake starts")
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn url(e: &FakeEntra, path: &str) -> String {
    format!("{}{}", e.base_url().as_str().trim_end_matches('/'), path)
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn guid() -> String {
    use rand::Rng as _;
    let n: u128 = rand::thread_rng().r#gen();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// POSTs a token request form to the v2.0 endpoint.
pub async fn token_form(e: &FakeEntra, form: &[(&str, &str)]) -> Response {
    client()
        .post(e.app().token_url.as_str())
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A token for `client_id` / `secret` and `scope`.
pub async fn token_for(e: &FakeEntra, client_id: &str, secret: &str, scope: &str) -> String {
    let resp = token_form(
        e,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A Graph token for fctr's app.
pub async fn app_token(e: &FakeEntra) -> String {
    let app = e.app();
    token_for(
        e,
        &app.client_id,
        app.client_secret.expose_secret(),
        GRAPH_SCOPE,
    )
    .await
}

/// A Graph token for the reader app.
pub async fn reader_token(e: &FakeEntra) -> String {
    let app = e.reader_app();
    token_for(
        e,
        &app.client_id,
        app.client_secret.expose_secret(),
        GRAPH_SCOPE,
    )
    .await
}

/// Default assertion claims for fctr's app.
pub fn assertion_claims(e: &FakeEntra) -> Value {
    let app = e.app();
    json!({
        "aud": app.token_url.as_str(),
        "iss": app.client_id,
        "sub": app.client_id,
        "jti": guid(),
        "nbf": now(),
        "iat": now(),
        "exp": now() + 300,
    })
}

/// Signs an assertion with the registered certificate: PS256 + `x5t#S256`, or RS256 + `x5t`.
pub fn sign_assertion(e: &FakeEntra, claims: &Value, ps256: bool) -> String {
    let cert = e.certificate();
    let key = EncodingKey::from_rsa_pem(cert.private_key_pem.expose_secret().as_bytes()).unwrap();
    let mut header = Header::new(if ps256 {
        Algorithm::PS256
    } else {
        Algorithm::RS256
    });
    if ps256 {
        header.x5t_s256 = Some(cert.x5t_s256.clone());
    } else {
        header.x5t = Some(cert.x5t.clone());
    }
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub async fn assertion_request(e: &FakeEntra, assertion: &str) -> Response {
    let app = e.app();
    token_form(
        e,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("scope", GRAPH_SCOPE),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// A Graph request with a bearer token.
pub async fn graph(
    e: &FakeEntra,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut rb = client()
        .request(method, url(e, &format!("/v1.0{path}")))
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

pub async fn get(e: &FakeEntra, path: &str, token: &str) -> Response {
    graph(e, Method::GET, path, token, None).await
}

/// Asserts a Graph error body with `code` and `status`; returns the body.
pub async fn graph_error(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let inner = &body["error"]["innerError"];
    assert!(
        inner["request-id"].as_str().is_some_and(|s| s.len() == 36),
        "{body}"
    );
    assert!(inner["date"].is_string());
    body
}

/// Asserts an AADSTS token error; returns the body.
pub async fn aad_error(resp: Response, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("AADSTS{code}:")))
    );
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    body
}
