//! The OIDC v2 provider: discovery, login page, code + PKCE, ID-token claims, refusals.

use super::*;
use fctr_testkit::entra::{FakeEntra, IdTokenTweak};
use jsonwebtoken::{DecodingKey, Validation};
use sha2::{Digest as _, Sha256};

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk-abcdefghij";
const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";

fn challenge() -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        Sha256::digest(VERIFIER.as_bytes()),
    )
}

fn authorize_url(e: &FakeEntra, extra: &[(&str, &str)]) -> String {
    let c = challenge();
    let client_id = e.oidc_client().client_id;
    let mut params = vec![
        ("client_id", client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", c.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        params.push((k, v));
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    url(e, &format!("/{}/oauth2/v2.0/authorize?{q}", e.tenant_id()))
}

/// Signs in as `handle` and returns the code.
async fn sign_in(e: &FakeEntra, handle: &str) -> String {
    let page = client().get(authorize_url(e, &[])).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let rid = html
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let resp = client()
        .post(url(e, &format!("/{}/oauth2/v2.0/authorize", e.tenant_id())))
        .form(&[
            ("request_id", rid.as_str()),
            ("user", &e.fixtures().id_of(handle)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st4te");
    q["code"].clone()
}

async fn redeem(e: &FakeEntra, code: &str, verifier: &str, secret: &str) -> reqwest::Response {
    let c = e.oidc_client();
    token_form(
        e,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &c.client_id),
            ("client_secret", secret),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn verify(e: &FakeEntra, id_token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks: Value = client()
        .get(url(e, &format!("/{}/discovery/v2.0/keys", e.tenant_id())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(id_token)?
        .kid
        .unwrap_or_default();
    let Some(k) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
    else {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
    };
    let key = DecodingKey::from_rsa_components(k["n"].as_str().unwrap(), k["e"].as_str().unwrap())?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[e.oidc_client().client_id]);
    v.set_issuer(&[e.oidc_client().issuer.as_str()]);
    Ok(jsonwebtoken::decode::<Value>(id_token, &key, &v)?.claims)
}

#[tokio::test]
async fn discovery_and_login_page() {
    let e = start().await;
    let d: Value = client()
        .get(url(
            &e,
            &format!("/{}/v2.0/.well-known/openid-configuration", e.tenant_id()),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = e.base_url().as_str().trim_end_matches('/').to_owned();
    assert_eq!(d["issuer"], format!("{base}/{}/v2.0", e.tenant_id()));
    assert_eq!(d["issuer"], e.oidc_client().issuer.as_str());
    assert_eq!(d["token_endpoint"], e.app().token_url.as_str());
    assert_eq!(
        d["jwks_uri"],
        format!("{base}/{}/discovery/v2.0/keys", e.tenant_id())
    );
    assert!(
        d["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "private_key_jwt")
    );
    let html = client()
        .get(authorize_url(&e, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for a in ["agent0@example.com", "agent1@example.com", "fctr.tier3"] {
        assert!(html.contains(a), "{a}");
    }
    assert!(
        !html.contains("alice@example.com"),
        "callers are not listed"
    );
    assert!(html.contains("FAKE ENTRA"));
}

#[tokio::test]
async fn code_flow_with_pkce_mints_a_verifiable_id_token() {
    let e = start().await;
    let code = sign_in(&e, "agent1").await;
    let resp = redeem(
        &e,
        &code,
        VERIFIER,
        fctr_testkit::entra::DEFAULT_PORTAL_CLIENT_SECRET,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let claims = verify(&e, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    let f = e.fixtures();
    assert_eq!(claims["tid"], e.tenant_id());
    assert_eq!(claims["oid"], f.id_of("agent1"));
    assert_ne!(claims["sub"], f.id_of("agent1"), "sub is pairwise");
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["roles"], json!(["fctr.tier1"]));
    assert_eq!(claims["groups"], json!([f.group("fctr-tier1").unwrap().id]));
    assert_eq!(claims["preferred_username"], "agent1@example.com");
    assert_eq!(claims["email"], "agent1@example.com");
    // userinfo with the access token.
    let ui: Value = client()
        .get(url(&e, "/oidc/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["sub"], claims["sub"]);
    // agent0 has no role; dave's token would carry wids, agents carry none.
    let code = sign_in(&e, "agent0").await;
    let body: Value = redeem(
        &e,
        &code,
        VERIFIER,
        fctr_testkit::entra::DEFAULT_PORTAL_CLIENT_SECRET,
    )
    .await
    .json()
    .await
    .unwrap();
    let claims = verify(&e, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert!(claims.get("roles").is_none());
    assert_eq!(claims["groups"], json!([]));
}

#[tokio::test]
async fn refusals() {
    let e = start().await;
    let secret = fctr_testkit::entra::DEFAULT_PORTAL_CLIENT_SECRET;
    // Unregistered redirect URI: an error page, no redirect.
    let resp = client()
        .get(authorize_url(
            &e,
            &[("redirect_uri", "https://evil.example.com/cb")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("AADSTS50011"));
    let resp = client()
        .get(authorize_url(&e, &[("client_id", &guid())]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Errors after the redirect URI is known go back to it.
    for (k, v, err) in [
        ("scope", "profile", "invalid_scope"),
        ("prompt", "none", "login_required"),
        ("response_type", "token", "unsupported_response_type"),
    ] {
        let resp = client()
            .get(authorize_url(&e, &[(k, v)]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        let loc = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            loc.starts_with(REDIRECT)
                && loc.contains(&format!("error={err}"))
                && loc.contains("state=st4te"),
            "{loc}"
        );
    }
    // Wrong verifier (and the code is spent anyway).
    let code = sign_in(&e, "agent2").await;
    aad_error(
        redeem(&e, &code, &"x".repeat(43), secret).await,
        400,
        "invalid_grant",
        501_481,
    )
    .await;
    aad_error(
        redeem(&e, &code, VERIFIER, secret).await,
        400,
        "invalid_grant",
        70_008,
    )
    .await;
    let code = sign_in(&e, "agent2").await;
    aad_error(
        redeem(&e, &code, VERIFIER, "wrong").await,
        401,
        "invalid_client",
        7_000_215,
    )
    .await;
    // Tweaked tokens fail validation.
    e.oidc().tweak_next_id_token(IdTokenTweak::WrongAudience);
    let code = sign_in(&e, "agent2").await;
    let body: Value = redeem(&e, &code, VERIFIER, secret)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        verify(&e, body["id_token"].as_str().unwrap())
            .await
            .is_err()
    );
    e.oidc().tweak_next_id_token(IdTokenTweak::WrongNonce);
    let code = sign_in(&e, "agent2").await;
    let body: Value = redeem(&e, &code, VERIFIER, secret)
        .await
        .json()
        .await
        .unwrap();
    let claims = verify(&e, body["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_ne!(claims["nonce"], "n0nce");
}
