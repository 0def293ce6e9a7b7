use std::time::{SystemTime, UNIX_EPOCH};

use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Client, Method, Response, StatusCode};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

pub async fn start() -> FakeOkta {
    start_with(FakeOktaOptions::default()).await
}

pub async fn start_with(opts: FakeOktaOptions) -> FakeOkta {
    FakeOkta::start(opts).await.expect("fake starts")
}

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn url(okta: &FakeOkta, path: &str) -> String {
    format!("{}{}", okta.base_url().as_str().trim_end_matches('/'), path)
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

/// A request with SSWS auth.
pub async fn ssws(okta: &FakeOkta, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut rb = client()
        .request(method, url(okta, path))
        .header("Authorization", format!("SSWS {}", okta.api_token()))
        .header("Accept", "application/json")
        .header("User-Agent", "fctr-it/1.0");
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

pub async fn get(okta: &FakeOkta, path: &str) -> Response {
    ssws(okta, Method::GET, path, None).await
}

pub async fn post(okta: &FakeOkta, path: &str, body: Option<Value>) -> Response {
    ssws(okta, Method::POST, path, body).await
}

/// Asserts an Okta error body with `code` and `status`, returns the body.
pub async fn okta_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status, "status");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["errorLink"], code);
    assert!(body["errorSummary"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        body["errorId"]
            .as_str()
            .is_some_and(|s| s.starts_with("oae"))
    );
    assert!(body["errorCauses"].is_array());
    body
}

/// Default client assertion claims for the service app.
pub fn assertion_claims(okta: &FakeOkta) -> Value {
    let app = okta.service_app();
    json!({
        "iss": app.client_id,
        "sub": app.client_id,
        "aud": app.token_url.as_str(),
        "iat": now(),
        "exp": now() + 300,
        "jti": uuid_like(),
    })
}

pub fn uuid_like() -> String {
    use rand::Rng as _;
    format!("{:032x}", rand::thread_rng().r#gen::<u128>())
}

/// Signs claims with the service app's ES256 key.
pub fn sign_assertion(okta: &FakeOkta, claims: &Value) -> String {
    let app = okta.service_app();
    let key = EncodingKey::from_ec_pem(app.private_key_pem.expose_secret().as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(app.key_id.clone());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub async fn token_request(okta: &FakeOkta, assertion: &str, scope: &str) -> Response {
    client()
        .post(url(okta, "/oauth2/v1/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

/// An access token with the given scopes.
pub async fn access_token(okta: &FakeOkta, scope: &str) -> String {
    let a = sign_assertion(okta, &assertion_claims(okta));
    let resp = token_request(okta, &a, scope).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

pub async fn bearer(
    okta: &FakeOkta,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut rb = client().request(method, url(okta, path)).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

pub async fn oauth_error(resp: Response, status: u16, error: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    body
}
