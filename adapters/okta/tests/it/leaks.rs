//! Secrets and PII never show in `Debug`, errors or logs.

use crate::support::*;
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::{
    Action, ChallengeContext, Challenger, Directory, FactorKind, Lifecycle, SecretString, UserQuery,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn debug_of_config_and_adapter_shows_no_token_or_key() {
    let server = MockServer::start().await;
    let c = config(&server, OktaAuth::ApiToken(SecretString::from(SSWS)));
    assert!(!format!("{c:?}").contains(SSWS));
    let okta = OktaAdapter::new(c).unwrap();
    assert!(!format!("{okta:?}").contains(SSWS));
    assert!(!format!("{okta:#?}").contains("0123456789"));

    let (pem, _) = ec_key();
    let key_body: String = pem.lines().nth(1).unwrap().to_owned();
    let c = config(&server, jwt_auth(&pem, true));
    assert!(!format!("{c:?}").contains(&key_body));
    let okta = OktaAdapter::new(c).unwrap();
    Mock::given(method("POST"))
        .and(path("/oauth2/v1/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "DPoP", "expires_in": 3600, "access_token": "CANARY-ACCESS-TOKEN"
        })))
        .expect(1)
        .mount(&server)
        .await;
    okta.check_credentials().await.unwrap();
    for s in [format!("{okta:?}"), format!("{okta:#?}")] {
        assert!(!s.contains(&key_body), "{s}");
        assert!(!s.contains("CANARY-ACCESS-TOKEN"), "{s}");
        assert!(s.contains("0oaTESTCLIENT"), "{s}");
    }
}

#[tokio::test]
async fn logs_carry_no_pii_or_secret() {
    let logs = LogBuf::default();
    let _guard = logs.install();
    let server = MockServer::start().await;
    let canary_login = "canary.login@example.com";
    let mut u = user_json("00uCANARYID");
    u["profile"]["login"] = json!(canary_login);
    // Successful flows.
    Mock::given(method("GET"))
        .and(path("/api/v1/users"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-rate-limit-limit", "600")
                .insert_header("x-rate-limit-remaining", "599")
                .insert_header("x-rate-limit-reset", "9999999999")
                .set_body_json(json!([u])),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/api/v1/users/00uCANARYID/lifecycle/expire_password_with_temp_password",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"tempPassword": "CANARYTEMPPW"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/users/00uCANARYID/lifecycle/reset_password"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"resetPasswordUrl": "https://x/reset_password/CANARYLINK"})),
        )
        .mount(&server)
        .await;
    // Failing flows whose bodies echo input.
    Mock::given(method("POST"))
        .and(path("/api/v1/users/00uCANARYID/factors/ost1/verify"))
        .respond_with(ResponseTemplate::new(403).set_body_json(okta_error(
            "E0000068",
            "passcode 987123 canary.login@example.com",
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/users/00uCANARYID/factors/opf1/verify"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("{\"factorResult\": \"canary.login@example.com"),
        )
        .mount(&server)
        .await;

    let okta = ssws(&server);
    let id = sid("00uCANARYID");
    let q = UserQuery::login(canary_login).unwrap();
    let found = okta.find_users(&q, 1).await.unwrap();
    assert_eq!(found.len(), 1);
    okta.execute(&id, &Action::ExpirePassword).await.unwrap();
    okta.execute(&id, &Action::ResetPassword { send_email: false })
        .await
        .unwrap();
    let v = okta
        .verify_code(
            &id,
            &factor("ost1", FactorKind::Totp),
            SecretString::from("987123"),
        )
        .await
        .unwrap();
    assert_eq!(v, fctr_ports::CodeVerdict::Wrong);
    let e = okta
        .start(
            &id,
            &factor("opf1", FactorKind::Push),
            &ChallengeContext::default(),
        )
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("canary"));

    let text = logs.text();
    // The logs say something (so this test can fail) ...
    assert!(
        text.contains("okta.find_users") && text.contains("E0000068"),
        "{text}"
    );
    assert!(text.contains("rate_remaining=599"), "{text}");
    // ... but nothing personal or secret.
    for needle in ["canary", "CANARY", "987123", SSWS, "Jane", "1337", "jane"] {
        assert!(!text.contains(needle), "{needle} leaked:\n{text}");
    }
}

#[test]
fn config_debug_via_new_redacts_key() {
    let (pem, _) = ec_key();
    let c = OktaConfig::new(
        "https://acme.okta.com".parse().unwrap(),
        jwt_auth(&pem, false),
    );
    let s = format!("{c:#?}");
    assert!(s.contains("[redacted]") && !s.contains("BEGIN"));
}
