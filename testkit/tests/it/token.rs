use fctr_testkit::okta::FakeOktaOptions;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::helpers::*;

fn b64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn client_credentials_happy_path() {
    let okta = start().await;
    let a = sign_assertion(&okta, &assertion_claims(&okta));
    let resp = token_request(&okta, &a, "okta.users.read okta.users.manage").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "okta.users.read okta.users.manage");
    let token = body["access_token"].as_str().unwrap();
    let id = okta.fixtures().id_of("alice");
    assert_eq!(
        bearer(
            &okta,
            Method::GET,
            &format!("/api/v1/users/{id}"),
            token,
            None
        )
        .await
        .status(),
        200
    );
    // Tokens expire after an hour.
    okta.state().advance_clock(3601);
    assert_eq!(
        bearer(
            &okta,
            Method::GET,
            &format!("/api/v1/users/{id}"),
            token,
            None
        )
        .await
        .status(),
        401
    );
}

#[tokio::test]
async fn assertion_refusals() {
    let okta = start().await;
    let base = assertion_claims(&okta);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c["jti"] = json!(uuid_like());
        c
    };
    let cases = [
        (
            "wrong aud",
            with("aud", json!("https://other.example.com/oauth2/v1/token")),
        ),
        (
            "custom AS aud",
            with(
                "aud",
                json!(format!("{}oauth2/default/v1/token", okta.base_url())),
            ),
        ),
        ("expired", with("exp", json!(now() - 10))),
        ("exp too far", with("exp", json!(now() + 7200))),
        ("wrong iss", with("iss", json!("0oaother"))),
        ("wrong sub", with("sub", json!("0oaother"))),
        ("no exp", {
            let mut c = base.clone();
            c.as_object_mut().unwrap().remove("exp");
            c
        }),
        ("future iat", with("iat", json!(now() + 3000))),
    ];
    for (name, claims) in cases {
        let resp = token_request(&okta, &sign_assertion(&okta, &claims), "okta.users.read").await;
        assert_eq!(resp.status(), 401, "{name}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{name}");
    }
    // Bad signature: sign with another EC key under the registered kid.
    let rng = SystemRandom::new();
    let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(okta.service_app().key_id.clone());
    let forged = jsonwebtoken::encode(
        &header,
        &with("jti", json!(uuid_like())),
        &EncodingKey::from_ec_der(other.as_ref()),
    )
    .unwrap();
    oauth_error(
        token_request(&okta, &forged, "okta.users.read").await,
        401,
        "invalid_client",
    )
    .await;
    // Unknown kid.
    header.kid = Some("nope".into());
    let unknown = jsonwebtoken::encode(
        &header,
        &with("jti", json!(uuid_like())),
        &EncodingKey::from_ec_der(other.as_ref()),
    )
    .unwrap();
    let body = oauth_error(
        token_request(&okta, &unknown, "okta.users.read").await,
        401,
        "invalid_client",
    )
    .await;
    assert!(body["error_description"].as_str().unwrap().contains("kid"));
    // Replayed jti.
    let a = sign_assertion(&okta, &base);
    assert_eq!(
        token_request(&okta, &a, "okta.users.read").await.status(),
        200
    );
    let body = oauth_error(
        token_request(&okta, &a, "okta.users.read").await,
        401,
        "invalid_client",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );
    // Missing assertion.
    let resp = client()
        .post(url(&okta, "/oauth2/v1/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "okta.users.read"),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(resp, 401, "invalid_client").await;
}

#[tokio::test]
async fn scope_refusals() {
    let okta = start_with(FakeOktaOptions {
        service_app_scopes: vec!["okta.users.read".into()],
        ..Default::default()
    })
    .await;
    let a = sign_assertion(&okta, &assertion_claims(&okta));
    let body = oauth_error(
        token_request(&okta, &a, "okta.users.read okta.users.manage").await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("okta.users.manage")
    );
    let a = sign_assertion(&okta, &assertion_claims(&okta));
    oauth_error(token_request(&okta, &a, "").await, 400, "invalid_scope").await;
    let resp = client()
        .post(url(&okta, "/oauth2/v1/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    oauth_error(resp, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn rs256_assertion_with_registered_rsa_key() {
    let okta = start().await;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwk = json!({
        "kty": "RSA", "kid": "rsa-test-key", "alg": "RS256", "use": "sig",
        "n": b64url(&key.n().to_bytes_be()), "e": b64url(&key.e().to_bytes_be()),
    });
    okta.state().register_service_key(jwk);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-test-key".into());
    let enc = EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes());
    let a = jsonwebtoken::encode(&header, &assertion_claims(&okta), &enc).unwrap();
    assert_eq!(
        token_request(&okta, &a, "okta.users.read").await.status(),
        200
    );
}

struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl DpopKey {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let p = pair.public_key().as_ref();
        let jwk =
            json!({"kty": "EC", "crv": "P-256", "x": b64url(&p[1..33]), "y": b64url(&p[33..65])});
        Self { pair, jwk }
    }

    fn proof(
        &self,
        htm: &str,
        htu: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({"htm": htm, "htu": htu, "iat": now(), "jti": uuid_like()});
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        if let Some(t) = access_token {
            claims["ath"] = json!(b64url(&Sha256::digest(t.as_bytes())));
        }
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

#[tokio::test]
async fn dpop_nonce_dance_and_bound_token() {
    let okta = start_with(FakeOktaOptions {
        require_dpop: true,
        ..Default::default()
    })
    .await;
    let token_url = url(&okta, "/oauth2/v1/token");
    let key = DpopKey::new();
    let send = |proof: Option<String>| {
        let a = sign_assertion(&okta, &assertion_claims(&okta));
        let mut rb = client().post(&token_url).form(&[
            ("grant_type", "client_credentials"),
            ("scope", "okta.users.read"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", a.as_str()),
        ]);
        if let Some(p) = proof {
            rb = rb.header("DPoP", p);
        }
        rb.send()
    };
    oauth_error(send(None).await.unwrap(), 400, "invalid_dpop_proof").await;
    let resp = send(Some(key.proof("POST", &token_url, None, None)))
        .await
        .unwrap();
    let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_string();
    oauth_error(resp, 400, "use_dpop_nonce").await;
    let resp = send(Some(key.proof("POST", &token_url, Some(&nonce), None)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();

    let id = okta.fixtures().id_of("alice");
    let path = format!("/api/v1/users/{id}");
    let user_url = url(&okta, &path);
    let resp = client()
        .get(&user_url)
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", key.proof("GET", &user_url, None, Some(at)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // As a plain Bearer token, or with a proof by another key, it is refused.
    assert_eq!(
        bearer(&okta, Method::GET, &path, at, None).await.status(),
        401
    );
    let resp = client()
        .get(&user_url)
        .header("Authorization", format!("DPoP {at}"))
        .header(
            "DPoP",
            DpopKey::new().proof("GET", &user_url, None, Some(at)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
