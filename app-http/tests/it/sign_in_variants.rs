//! Agent sign-in against providers that differ from the default fake Okta in ways certified providers do: groups
//! released only at userinfo, EdDSA ID tokens, `client_secret_post` and `private_key_jwt` client authentication,
//! and a discovery document that does not list the configured method.

use crate::api::{call, id_token};
use crate::helpers::{TestApp, start_with};
use axum::http::StatusCode;
use base64::Engine as _;
use fctr_portal::demo::{DemoOptions, start_demo};
use fctr_portal::oidc::{ClientAuth, ClientKey, ClientKeyAlg, OidcSettings};
use fctr_testkit::okta::{FakeOkta, WebClientAuth};
use secrecy::SecretString;
use serde_json::{Value, json};

type Hook = Box<dyn FnOnce(&FakeOkta, &mut OidcSettings) + Send>;

async fn start_signing_in(hook: Hook) -> TestApp {
    start_with(move |o: &mut DemoOptions| o.sign_in = Some(hook)).await
}

/// Signs `handle` in; returns the callback's status and body, and whether /search then opens.
async fn try_sign_in(t: &TestApp, handle: &str) -> (StatusCode, String, bool) {
    let mut b = crate::helpers::Browser::default();
    let r = t.sign_in_with(&mut b, handle).await;
    let search = t.get(&mut b, "/search").await;
    (r.status, r.body, search.status == StatusCode::OK)
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A fresh key pair for `private_key_jwt`: the PKCS#8 PEM private key and its public JWK with `kid`.
fn client_key(alg: ClientKeyAlg, kid: &str) -> (SecretString, Value) {
    let (rc_alg, jwk) = match alg {
        ClientKeyAlg::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, "EC"),
        ClientKeyAlg::EdDSA => (&rcgen::PKCS_ED25519, "OKP"),
        _ => unreachable!("rcgen (ring) makes EC and Ed25519 keys"),
    };
    let pair = rcgen::KeyPair::generate_for(rc_alg).unwrap();
    let raw = pair.public_key_raw();
    let public = if jwk == "EC" {
        json!({"kty": "EC", "crv": "P-256", "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65]),
               "kid": kid, "alg": "ES256", "use": "sig"})
    } else {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": kid, "alg": "EdDSA", "use": "sig"})
    };
    (SecretString::from(pair.serialize_pem()), public)
}

fn secret_of(fake: &FakeOkta) -> SecretString {
    fake.oidc_client().client_secret.clone()
}

#[tokio::test]
async fn groups_released_only_at_userinfo_still_give_the_role() {
    let t = start_signing_in(Box::new(|fake, _| {
        fake.oidc().release_groups_only_at_userinfo(true);
    }))
    .await;
    // The ID token really has no groups claim now.
    let tok = id_token(&t, "agent2").await;
    let payload = tok.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(claims.get("groups").is_none(), "{claims}");
    let (status, body, search) = try_sign_in(&t, "agent2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(search, "signed in with the role from userinfo");

    // A bearer token without the claim gets the role the directory gives (the API has no access token for
    // userinfo).
    let (s, v, _) = call(
        &t,
        "POST",
        "/api/v1/users/search",
        Some(&tok),
        Some(json!({"query": "alice@example.com"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_claim_in_neither_place_gets_a_page_naming_it() {
    let t = start_signing_in(Box::new(|fake, settings| {
        fake.oidc().release_groups_only_at_userinfo(true);
        settings.groups_claim = "fctr_roles".into();
    }))
    .await;
    let failed = |events: Vec<fctr_ports::AuditEvent>| {
        events
            .into_iter()
            .filter(|e| {
                e.kind == fctr_ports::EventKind::Login && e.outcome == fctr_ports::Outcome::Failed
            })
            .count()
    };
    let before = failed(t.audit_events().await);
    let (status, body, search) = try_sign_in(&t, "agent2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("fctr_roles"),
        "the page names the claim: {body}"
    );
    assert!(body.contains("userinfo"), "{body}");
    assert!(!search, "no session");
    assert_eq!(
        failed(t.audit_events().await),
        before + 1,
        "audited as a failed sign-in"
    );
}

#[tokio::test]
async fn eddsa_id_tokens_are_accepted() {
    let t = start_signing_in(Box::new(|fake, _| {
        fake.oidc().sign_id_tokens_with_eddsa().unwrap();
    }))
    .await;
    let tok = id_token(&t, "agent2").await;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tok.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let (status, body, search) = try_sign_in(&t, "agent2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(search);
}

#[tokio::test]
async fn client_secret_post_is_used_when_configured_and_basic_is_refused_by_such_an_app() {
    let t = start_signing_in(Box::new(|fake, settings| {
        fake.oidc()
            .require_client_auth(Some(WebClientAuth::ClientSecretPost));
        settings.client_auth = ClientAuth::SecretPost(secret_of(fake));
    }))
    .await;
    let (status, body, search) = try_sign_in(&t, "agent2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(search);

    // The same app with the portal still on Basic: the provider refuses, the agent sees "sign-in failed".
    let t = start_signing_in(Box::new(|fake, _| {
        fake.oidc()
            .require_client_auth(Some(WebClientAuth::ClientSecretPost));
    }))
    .await;
    let (status, _, search) = try_sign_in(&t, "agent2").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!search);
}

#[tokio::test]
async fn private_key_jwt_signs_in_with_no_secret_and_a_fresh_assertion_each_time() {
    for alg in [ClientKeyAlg::ES256] {
        let (pem, jwk) = client_key(alg, "portal-key-1");
        let t = start_signing_in(Box::new(move |fake, settings| {
            fake.oidc()
                .require_client_auth(Some(WebClientAuth::PrivateKeyJwt));
            fake.oidc().register_client_key(jwk);
            settings.client_auth = ClientAuth::PrivateKeyJwt(ClientKey {
                pem,
                alg,
                kid: Some("portal-key-1".into()),
                x5t_s256: None,
            });
        }))
        .await;
        // Twice: the fake refuses a spent `jti`, so the second only passes with a fresh assertion.
        for _ in 0..2 {
            let (status, body, search) = try_sign_in(&t, "agent2").await;
            assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
            assert!(search);
        }
    }
}

#[tokio::test]
async fn private_key_jwt_with_a_key_the_provider_does_not_know_fails() {
    let (pem, _) = client_key(ClientKeyAlg::ES256, "portal-key-1");
    let (_, other_jwk) = client_key(ClientKeyAlg::ES256, "portal-key-1");
    let t = start_signing_in(Box::new(move |fake, settings| {
        fake.oidc()
            .require_client_auth(Some(WebClientAuth::PrivateKeyJwt));
        fake.oidc().register_client_key(other_jwk);
        settings.client_auth = ClientAuth::PrivateKeyJwt(ClientKey {
            pem,
            alg: ClientKeyAlg::ES256,
            kid: Some("portal-key-1".into()),
            x5t_s256: None,
        });
    }))
    .await;
    let (status, _, search) = try_sign_in(&t, "agent2").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!search);
}

/// Start-up checks against the discovery document: a method the provider does not list, and an assertion
/// algorithm it does not list, each stop the portal with an error naming both sides.
#[tokio::test]
async fn a_method_or_algorithm_the_provider_does_not_list_stops_the_start() {
    let mut o = DemoOptions::new(url::Url::parse(crate::helpers::PUBLIC).unwrap());
    o.sign_in = Some(Box::new(|fake, settings| {
        fake.oidc()
            .advertise_client_auth_methods(&["client_secret_basic"]);
        settings.client_auth = ClientAuth::SecretPost(secret_of(fake));
    }));
    let e = start_demo(o).await.unwrap_err().to_string();
    assert!(
        e.contains("client_secret_post") && e.contains("client_secret_basic"),
        "{e}"
    );
    assert!(!e.contains(&"-".repeat(5)), "no key material: {e}");

    let (pem, _) = client_key(ClientKeyAlg::EdDSA, "k");
    let mut o = DemoOptions::new(url::Url::parse(crate::helpers::PUBLIC).unwrap());
    o.sign_in = Some(Box::new(move |_, settings| {
        settings.client_auth = ClientAuth::PrivateKeyJwt(ClientKey {
            pem,
            alg: ClientKeyAlg::EdDSA,
            kid: None,
            x5t_s256: None,
        });
    }));
    let e = start_demo(o).await.unwrap_err().to_string();
    assert!(e.contains("EdDSA") && e.contains("ES256"), "{e}");

    // A key of the wrong type for the algorithm.
    let (pem, _) = client_key(ClientKeyAlg::EdDSA, "k");
    let mut o = DemoOptions::new(url::Url::parse(crate::helpers::PUBLIC).unwrap());
    o.sign_in = Some(Box::new(move |_, settings| {
        settings.client_auth = ClientAuth::PrivateKeyJwt(ClientKey {
            pem,
            alg: ClientKeyAlg::RS256,
            kid: None,
            x5t_s256: None,
        });
    }));
    let e = start_demo(o).await.unwrap_err().to_string();
    assert!(e.contains("client_key"), "{e}");
}
