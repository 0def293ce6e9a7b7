//! The v2.0 and v1 token endpoints: secrets, certificate assertions, refusals with AADSTS codes.

use super::*;
use fctr_testkit::entra::{CONNECTOR_RESOURCE, CONNECTOR_SCOPE, GRAPH_SCOPE, MFA_CLIENT_ID};

#[tokio::test]
async fn client_secret_gets_a_graph_token_with_roles() {
    let e = start().await;
    let app = e.app();
    let resp = token_form(
        &e,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", app.client_secret.expose_secret()),
            ("scope", GRAPH_SCOPE),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["appid"], app.client_id);
    assert_eq!(claims["tid"], e.tenant_id());
    assert!(
        claims["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "User.Read.All")
    );
    // The token works on Graph.
    let resp = get(&e, "/users?$top=1", token).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn refusals_carry_aadsts_codes() {
    let e = start().await;
    let app = e.app();
    let base = |secret: &'static str, scope: &'static str| {
        let id = app.client_id.clone();
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", id),
            ("client_secret", secret.to_owned()),
            ("scope", scope.to_owned()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let e = &e;
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_form(e, &f).await
        }
    };
    aad_error(
        send(base("wrong", GRAPH_SCOPE)).await,
        401,
        "invalid_client",
        7_000_215,
    )
    .await;
    let mut unknown = base("x", GRAPH_SCOPE);
    unknown[1].1 = guid();
    aad_error(send(unknown).await, 400, "unauthorized_client", 700_016).await;
    let good = fctr_testkit::entra::DEFAULT_CLIENT_SECRET;
    aad_error(
        send(base(good, "https://graph.microsoft.com/User.Read.All")).await,
        400,
        "invalid_scope",
        1_002_012,
    )
    .await;
    aad_error(
        send(base(good, "https://example.com/.default")).await,
        400,
        "invalid_request",
        500_011,
    )
    .await;
    let mut no_scope = base(good, GRAPH_SCOPE);
    no_scope.pop();
    aad_error(send(no_scope).await, 400, "invalid_request", 900_144).await;
    // Bad tenant.
    let resp = client()
        .post(url(&e, "/not-a-tenant/oauth2/v2.0/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    aad_error(resp, 400, "invalid_request", 90_002).await;
    // The tenant's domain works in place of its id.
    let resp = client()
        .post(url(&e, "/fctrfake.onmicrosoft.com/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", good),
            ("scope", GRAPH_SCOPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn certificate_assertions_ps256_and_rs256() {
    let e = start().await;
    for ps in [true, false] {
        let a = sign_assertion(&e, &assertion_claims(&e), ps);
        let resp = assertion_request(&e, &a).await;
        assert_eq!(resp.status(), 200, "ps256={ps}");
        // Single-use jti.
        aad_error(
            assertion_request(&e, &a).await,
            401,
            "invalid_client",
            700_025,
        )
        .await;
    }
    let mut c = assertion_claims(&e);
    c["aud"] = json!("https://login.microsoftonline.com/x/oauth2/v2.0/token");
    aad_error(
        assertion_request(&e, &sign_assertion(&e, &c, true)).await,
        401,
        "invalid_client",
        700_023,
    )
    .await;
    let mut c = assertion_claims(&e);
    c["exp"] = json!(now() - 3600);
    aad_error(
        assertion_request(&e, &sign_assertion(&e, &c, true)).await,
        401,
        "invalid_client",
        700_024,
    )
    .await;
    let mut c = assertion_claims(&e);
    c["iss"] = json!(guid());
    aad_error(
        assertion_request(&e, &sign_assertion(&e, &c, true)).await,
        401,
        "invalid_client",
        700_021,
    )
    .await;
    // A thumbprint that is not registered.
    let cert = e.certificate();
    let key = EncodingKey::from_rsa_pem(cert.private_key_pem.expose_secret().as_bytes()).unwrap();
    let mut h = Header::new(Algorithm::PS256);
    h.x5t_s256 = Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let a = jsonwebtoken::encode(&h, &assertion_claims(&e), &key).unwrap();
    aad_error(
        assertion_request(&e, &a).await,
        401,
        "invalid_client",
        700_027,
    )
    .await;
    // Garbage.
    aad_error(
        assertion_request(&e, "not-a-jwt").await,
        400,
        "invalid_request",
        50_027,
    )
    .await;
}

#[tokio::test]
async fn connector_tokens_v1_and_v2_for_the_mfa_client_only_work_on_the_connector() {
    let e = start().await;
    let mfa = e.mfa_client();
    assert_eq!(mfa.client_id, MFA_CLIENT_ID);
    let v2 = token_for(
        &e,
        MFA_CLIENT_ID,
        mfa.client_secret.expose_secret(),
        CONNECTOR_SCOPE,
    )
    .await;
    let resp = client()
        .post(url(&e, &format!("/{}/oauth2/token", e.tenant_id())))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", MFA_CLIENT_ID),
            ("client_secret", mfa.client_secret.expose_secret()),
            ("resource", CONNECTOR_RESOURCE),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resource"], CONNECTOR_RESOURCE);
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().unwrap() > now());
    // A connector token is not a Graph token.
    let resp = get(&e, &format!("/users/{}", e.fixtures().id_of("alice")), &v2).await;
    let resp_h = resp.headers().get("www-authenticate").cloned();
    graph_error(resp, 401, "InvalidAuthenticationToken").await;
    assert!(resp_h.is_some());
}
