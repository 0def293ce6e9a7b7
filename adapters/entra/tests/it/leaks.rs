//! Secrets and personal data never reach `Debug`, errors or logs.

use crate::support::*;
use fctr_entra::{EntraAdapter, EntraCredential};
use fctr_ports::{
    Action, ChallengeContext, Challenger, Directory, FactorKind, Lifecycle, UserQuery,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[test]
fn debug_of_config_and_adapter_shows_no_secret() {
    let server_uri = "http://127.0.0.1:9";
    let mut c = fctr_entra::EntraConfig::new(TENANT, CLIENT_ID, certificate()).unwrap();
    c.graph_base = format!("{server_uri}/v1.0/").parse().unwrap();
    let mut conn = fctr_entra::MfaConnectorConfig::new(EntraCredential::client_secret(
        SecretString::from(CONNECTOR_SECRET),
    ))
    .unwrap();
    conn.endpoint = format!("{server_uri}/Connector/").parse().unwrap();
    c.connector = Some(conn);
    let key_body: String = rsa_key().0.lines().nth(1).unwrap().to_owned();
    let cfg = format!("{c:?} {c:#?}");
    let a = EntraAdapter::new(c).unwrap();
    let ad = format!("{a:?} {a:#?}");
    for s in [cfg, ad] {
        assert!(!s.contains(CONNECTOR_SECRET), "{s}");
        assert!(!s.contains(&key_body), "{s}");
        assert!(!s.contains("PRIVATE KEY"), "{s}");
    }
    let secret_cfg = fctr_entra::EntraConfig::new(TENANT, CLIENT_ID, secret()).unwrap();
    assert!(!format!("{secret_cfg:?}").contains(SECRET));
}

#[tokio::test]
async fn a_full_flow_logs_no_pii_and_no_secret() {
    let (logs, _guard) = Logs::capture();

    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_connector_token(&server, 1).await;
    mount_user(&server, user_json(), 4).await;
    graph("GET", "users/canary.person@example.com")
        .respond_with(
            ResponseTemplate::new(404).set_body_json(graph_error("Request_ResourceNotFound")),
        )
        .mount(&server)
        .await;
    graph("GET", "users")
        .respond_with(
            ResponseTemplate::new(400).set_body_json(graph_error("Request_UnsupportedQuery")),
        )
        .mount(&server)
        .await;
    graph(
        "POST",
        &format!("users/{UID}/authentication/temporaryAccessPassMethods"),
    )
    .respond_with(ResponseTemplate::new(201).set_body_json(json!({
        "id": "t1", "temporaryAccessPass": "CANARYTAP77", "startDateTime": "2025-03-01T10:00:00Z", "lifetimeInMinutes": 60
    })))
    .mount(&server)
    .await;
    graph("PATCH", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{CONNECTOR_PATH}BeginTwoWayAuthentication")))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<BeginTwoWayAuthenticationResponse><Result><Value>Success</Value></Result><SessionId>s-1</SessionId><AuthenticationResult>challenge</AuthenticationResult></BeginTwoWayAuthenticationResponse>",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{CONNECTOR_PATH}EndTwoWayAuthentication")))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<EndTwoWayAuthenticationResponse><Result><Value>OathCodeIncorrect</Value></Result><AuthenticationResult>false</AuthenticationResult></EndTwoWayAuthenticationResponse>",
        ))
        .mount(&server)
        .await;

    let a = adapter_with_connector(&server);
    a.get_user(&subject()).await.unwrap();
    let e = a
        .find_users(&UserQuery::login(UPN).unwrap(), 5)
        .await
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("canary"));
    let tap = a
        .execute(
            &subject(),
            &Action::IssueTemporaryAccessPass {
                lifetime_minutes: 60,
                one_time: true,
            },
        )
        .await
        .unwrap();
    let pw = a
        .execute(&subject(), &Action::ExpirePassword)
        .await
        .unwrap();
    let pw_value =
        secrecy::ExposeSecret::expose_secret(&pw.secret.as_ref().unwrap().value).to_owned();
    assert!(!format!("{tap:?} {pw:?}").contains("CANARYTAP77"));
    assert!(!format!("{pw:?}").contains(&pw_value));
    let v = a
        .verify_code(
            &subject(),
            &factor("s1", FactorKind::Totp),
            SecretString::from("918273"),
        )
        .await
        .unwrap();
    assert_eq!(v, fctr_ports::CodeVerdict::Wrong);
    let _ = a
        .start(
            &subject(),
            &factor("a1", FactorKind::Push),
            &ChallengeContext::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let text = logs.text();
    assert!(text.contains("entra:"), "nothing logged?");
    for needle in [
        "canary",
        "Canary",
        "0199",
        SECRET,
        CONNECTOR_SECRET,
        TOKEN,
        CONNECTOR_TOKEN,
        "CANARYTAP77",
        "918273",
        pw_value.as_str(),
        UID,
    ] {
        assert!(!text.contains(needle), "{needle} leaked into logs:\n{text}");
    }
}
