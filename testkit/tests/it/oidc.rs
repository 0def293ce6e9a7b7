use fctr_testkit::okta::{FakeOkta, FakeOktaOptions, IdTokenTweak};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Response;
use secrecy::ExposeSecret as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::helpers::*;

const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-this-is-a-verifier";

fn challenge(verifier: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize_url(okta: &FakeOkta, overrides: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", okta.oidc_client().client_id),
        ("response_type", "code".to_string()),
        ("scope", "openid profile email groups".to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("state", "st-123".to_string()),
        ("nonce", "n-456".to_string()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_string()),
    ];
    for (k, v) in overrides {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k, (*v).to_string()));
        }
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    url(okta, &format!("/oauth2/v1/authorize?{q}"))
}

/// Runs authorize + login as `agent`, returns the redirect's code.
async fn login(okta: &FakeOkta, agent: &str) -> String {
    let resp = client().get(authorize_url(okta, &[])).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"));
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script"));
    assert!(html.contains("agent1@example.com") && html.contains("agent0@example.com"));
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let request_id = &html[start..start + html[start..].find('"').unwrap()];
    let user = okta.fixtures().id_of(agent);
    let resp = client()
        .post(url(okta, "/oauth2/v1/authorize"))
        .form(&[("request_id", request_id), ("user", user.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(REDIRECT));
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-123");
    q["code"].clone()
}

async fn exchange(okta: &FakeOkta, code: &str, verifier: &str, redirect: &str) -> Response {
    let c = okta.oidc_client();
    client()
        .post(url(okta, "/oauth2/v1/token"))
        .basic_auth(&c.client_id, Some(c.client_secret.expose_secret()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap()
}

async fn verify_id_token(
    okta: &FakeOkta,
    token: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks: Value = client()
        .get(url(okta, "/oauth2/v1/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| Some(k["kid"].as_str().unwrap()) == header.kid.as_deref())
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let dk =
        DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap())?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[okta.oidc_client().client_id]);
    v.set_issuer(&[okta.issuer().as_str().trim_end_matches('/')]);
    v.leeway = 0;
    Ok(jsonwebtoken::decode::<Value>(token, &dk, &v)?.claims)
}

#[tokio::test]
async fn discovery_document() {
    let okta = start().await;
    let d: Value = client()
        .get(url(&okta, "/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = okta.base_url().as_str().trim_end_matches('/').to_string();
    assert_eq!(d["issuer"], iss);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{iss}/oauth2/v1/authorize")
    );
    assert_eq!(d["token_endpoint"], format!("{iss}/oauth2/v1/token"));
    assert_eq!(d["jwks_uri"], format!("{iss}/oauth2/v1/keys"));
    assert_eq!(d["userinfo_endpoint"], format!("{iss}/oauth2/v1/userinfo"));
    assert_eq!(d["end_session_endpoint"], format!("{iss}/oauth2/v1/logout"));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let jwks: Value = client()
        .get(url(&okta, "/oauth2/v1/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(jwks["keys"][0]["kid"].is_string());
}

#[tokio::test]
async fn code_pkce_happy_path_and_userinfo() {
    let okta = start().await;
    let code = login(&okta, "agent2").await;
    let resp = exchange(&okta, &code, VERIFIER, REDIRECT).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let claims = verify_id_token(&okta, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["sub"], okta.fixtures().id_of("agent2"));
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "mfa"]));
    assert_eq!(claims["preferred_username"], "agent2@example.com");
    assert_eq!(claims["email"], "agent2@example.com");
    assert_eq!(claims["name"], "Agent Two");
    assert!(
        claims["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "fctr-tier2")
    );
    assert!(claims["auth_time"].is_i64() && claims["iat"].is_i64());
    let at = body["access_token"].as_str().unwrap();
    let ui: Value = client()
        .get(url(&okta, "/oauth2/v1/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["sub"], claims["sub"]);
    let resp = client()
        .get(url(&okta, "/oauth2/v1/userinfo"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Reusing the code fails.
    oauth_error(
        exchange(&okta, &code, VERIFIER, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn client_secret_post_and_agent0_has_no_fctr_group() {
    let okta = start().await;
    let code = login(&okta, "agent0").await;
    let c = okta.oidc_client();
    let resp = client()
        .post(url(&okta, "/oauth2/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let claims = verify_id_token(&okta, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["groups"], serde_json::json!(["Everyone"]));
}

#[tokio::test]
async fn token_exchange_refusals() {
    let okta = start().await;
    let code = login(&okta, "agent1").await;
    oauth_error(
        exchange(
            &okta,
            &code,
            "wrong-verifier-wrong-verifier-wrong-verifier-123",
            REDIRECT,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    let code = login(&okta, "agent1").await;
    oauth_error(
        exchange(
            &okta,
            &code,
            VERIFIER,
            "http://localhost:8080/auth/callback",
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    let code = login(&okta, "agent1").await;
    let resp = client()
        .post(url(&okta, "/oauth2/v1/token"))
        .basic_auth(okta.oidc_client().client_id, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(resp, 401, "invalid_client").await;
    // Codes last 300 s.
    let code = login(&okta, "agent1").await;
    okta.state().advance_clock(301);
    oauth_error(
        exchange(&okta, &code, VERIFIER, REDIRECT).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn authorize_refusals() {
    let okta = start_with(FakeOktaOptions {
        extra_redirect_uris: vec!["http://127.0.0.1:9999/cb".into()],
        ..Default::default()
    })
    .await;
    // Unregistered redirect URI or client: an error page, no redirect.
    for o in [
        [("redirect_uri", "http://evil.example.com/cb")],
        [("client_id", "0oaunknown")],
    ] {
        let resp = client().get(authorize_url(&okta, &o)).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
    }
    // The extra redirect URI is registered.
    let resp = client()
        .get(authorize_url(
            &okta,
            &[("redirect_uri", "http://127.0.0.1:9999/cb")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Other errors redirect with error=.
    for (o, err) in [
        (("response_type", "token"), "unsupported_response_type"),
        (("code_challenge_method", "plain"), "invalid_request"),
        (("code_challenge", ""), "invalid_request"),
        (("nonce", ""), "invalid_request"),
        (("state", ""), "invalid_request"),
        (("scope", "profile"), "invalid_scope"),
    ] {
        let resp = client()
            .get(authorize_url(&okta, &[o]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302, "{o:?}");
        let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q["error"], err, "{o:?}");
    }
}

#[tokio::test]
async fn id_token_tweaks() {
    let okta = start().await;
    for (tweak, check) in [
        (IdTokenTweak::WrongNonce, "nonce"),
        (IdTokenTweak::AmrPwdOnly, "amr"),
        (IdTokenTweak::WrongAudience, "aud"),
        (IdTokenTweak::Expired, "exp"),
        (IdTokenTweak::UnknownKid, "kid"),
        (IdTokenTweak::BadSignature, "sig"),
    ] {
        okta.oidc().tweak_next_id_token(tweak);
        let code = login(&okta, "agent1").await;
        let body: Value = exchange(&okta, &code, VERIFIER, REDIRECT)
            .await
            .json()
            .await
            .unwrap();
        let verified = verify_id_token(&okta, body["id_token"].as_str().unwrap()).await;
        match check {
            "nonce" => assert_ne!(verified.unwrap()["nonce"], "n-456"),
            "amr" => assert_eq!(verified.unwrap()["amr"], serde_json::json!(["pwd"])),
            _ => assert!(verified.is_err(), "{tweak:?}"),
        }
    }
    // Through the control API.
    let resp = client()
        .post(url(&okta, "/_fake/oidc/next-id-token"))
        .json(&serde_json::json!({"tweak": "amr_pwd_only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let code = login(&okta, "agent1").await;
    let body: Value = exchange(&okta, &code, VERIFIER, REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        verify_id_token(&okta, body["id_token"].as_str().unwrap())
            .await
            .unwrap()["amr"],
        serde_json::json!(["pwd"])
    );
    // Then back to normal.
    let code = login(&okta, "agent1").await;
    let body: Value = exchange(&okta, &code, VERIFIER, REDIRECT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        verify_id_token(&okta, body["id_token"].as_str().unwrap())
            .await
            .unwrap()["amr"],
        serde_json::json!(["pwd", "mfa"])
    );
}

#[tokio::test]
async fn runtime_redirect_uri_and_logout() {
    let okta = start().await;
    okta.state()
        .add_redirect_uri("http://127.0.0.1:7777/callback");
    assert!(
        okta.oidc_client()
            .redirect_uris
            .contains(&"http://127.0.0.1:7777/callback".to_string())
    );
    let resp = client()
        .get(url(
            &okta,
            "/oauth2/v1/logout?post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2F&state=s1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(
        resp.headers()["location"],
        "http://127.0.0.1:8080/?state=s1"
    );
    let resp = client()
        .get(url(
            &okta,
            "/oauth2/v1/logout?post_logout_redirect_uri=http%3A%2F%2Fevil.example.com%2F",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
