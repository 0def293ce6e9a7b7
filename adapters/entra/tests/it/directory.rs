//! Directory: users, search, methods, groups, risk facts.

use crate::support::*;
use fctr_entra::{EntraAdapter, NameSearch};
use fctr_ports::{AccountStatus, Directory, FactorKind, FactorStatus, PortError, UserQuery};
use serde_json::json;
use wiremock::matchers::header;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn get_user_pins_the_request_and_maps_the_record() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_user(&server, user_json(), 2).await;
    let a = adapter(&server);
    let u = a.get_user(&subject()).await.unwrap();
    assert_eq!(u.id.as_str(), UID);
    assert_eq!(u.login.expose_pii(), UPN);
    assert_eq!(
        u.email.as_ref().unwrap().expose_pii(),
        "canary.mail@example.com"
    );
    assert_eq!(
        u.display_name.as_ref().unwrap().expose_pii(),
        "Canary Person"
    );
    assert_eq!(u.phone.as_ref().unwrap().expose_pii(), "+1 555 0199");
    assert_eq!(u.status, AccountStatus::Active);
    // The token is cached: a second call mints none.
    a.get_user(&subject()).await.unwrap();
}

#[tokio::test]
async fn disabled_account_maps_to_disabled_and_risk_facts_come_from_the_user() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let mut u = user_json();
    u["accountEnabled"] = json!(false);
    u["onPremisesSyncEnabled"] = json!(true);
    mount_user(&server, u, 2).await;
    let a = adapter(&server);
    assert_eq!(
        a.get_user(&subject()).await.unwrap().status,
        AccountStatus::Disabled
    );
    let r = a.risk_facts(&subject()).await.unwrap();
    assert_eq!(r.directory_synced, Some(true));
    assert!(!r.locked_out);
    assert_eq!(
        r.password_changed.unwrap().to_rfc3339(),
        "2025-01-02T03:04:05+00:00"
    );
    assert_eq!(r.created.unwrap().to_rfc3339(), "2024-06-07T08:09:10+00:00");
    assert_eq!(r.last_login, None);
}

#[tokio::test]
async fn login_lookup_uses_the_upn_path_with_hash_encoded() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "users/guest_x.com%23EXT%23@tenant.onmicrosoft.com")
        .and(query(&[("$select", SELECT)]))
        .and(NoHeader("consistencylevel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json()))
        .expect(1)
        .mount(&server)
        .await;
    let q = UserQuery::login("guest_x.com#EXT#@tenant.onmicrosoft.com").unwrap();
    let found = adapter(&server).find_users(&q, 10).await.unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn login_starting_with_dollar_uses_the_key_form() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "users('%24svc%27%27x@example.com')")
        .and(query(&[("$select", SELECT)]))
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json()))
        .expect(1)
        .mount(&server)
        .await;
    let q = UserQuery::login("$svc'x@example.com").unwrap();
    assert_eq!(adapter(&server).find_users(&q, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_login_falls_back_to_mail_with_quotes_doubled() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "users/o%27brien@example.com")
        .and(query(&[("$select", SELECT)]))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(graph_error("Request_ResourceNotFound")),
        )
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "users")
        .and(query(&[
            ("$filter", "mail eq 'o''brien@example.com'"),
            ("$select", SELECT),
            ("$top", "5"),
        ]))
        .and(NoHeader("consistencylevel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [user_json()]})))
        .expect(1)
        .mount(&server)
        .await;
    let q = UserQuery::login("o'brien@example.com").unwrap();
    let found = adapter(&server).find_users(&q, 5).await.unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test]
async fn email_and_login_without_at_sign() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "users")
        .and(query(&[
            (
                "$filter",
                "mail eq 'x'' or 1 eq 1 or mail eq ''@example.com'",
            ),
            ("$select", SELECT),
            ("$top", "999"),
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    let q = UserQuery::email("x' or 1 eq 1 or mail eq '@example.com").unwrap();
    assert!(a.find_users(&q, 5000).await.unwrap().is_empty());
    // No '@': no UPN or address can match, and no request is made.
    let q = UserQuery::login("just-a-name").unwrap();
    assert!(a.find_users(&q, 5).await.unwrap().is_empty());
    assert!(a.find_users(&q, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn name_prefix_search_uses_search_with_eventual_consistency() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "users")
        .and(query(&[
            ("$search", "\"displayName:jo OR x\""),
            ("$select", SELECT),
            ("$top", "3"),
        ]))
        .and(header("consistencylevel", "eventual"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [user_json()]})))
        .expect(1)
        .mount(&server)
        .await;
    let q = UserQuery::name_prefix("jo\" OR \"x\\").unwrap();
    let a = adapter(&server);
    assert_eq!(a.find_users(&q, 3).await.unwrap().len(), 1);
    // Nothing searchable left: no request.
    let q = UserQuery::name_prefix("\"\\\"").unwrap();
    assert!(a.find_users(&q, 3).await.unwrap().is_empty());
}

#[tokio::test]
async fn name_prefix_starts_with_mode_uses_a_basic_filter() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "users")
        .and(query(&[
            (
                "$filter",
                "startsWith(displayName,'d''ar') or startsWith(givenName,'d''ar') or startsWith(surname,'d''ar')",
            ),
            ("$select", SELECT),
            ("$top", "10"),
        ]))
        .and(NoHeader("consistencylevel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server, secret());
    c.name_search = NameSearch::StartsWith;
    let a = EntraAdapter::new(c).unwrap();
    let q = UserQuery::name_prefix("d'ar").unwrap();
    assert!(a.find_users(&q, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn search_follows_next_link_on_the_graph_base_only() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let next = format!("{}/v1.0/users?$skiptoken=abc", server.uri());
    graph("GET", "users")
        .and(query(&[("$skiptoken", "abc")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [user_json()]})))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "users")
        .and(query(&[
            ("$filter", "mail eq 'a@b.c'"),
            ("$select", SELECT),
            ("$top", "2"),
        ]))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"value": [user_json()], "@odata.nextLink": next})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    let q = UserQuery::email("a@b.c").unwrap();
    assert_eq!(a.find_users(&q, 2).await.unwrap().len(), 2);

    // A nextLink to another host is refused before any request.
    let server2 = MockServer::start().await;
    mount_token(&server2, 1).await;
    graph("GET", "users")
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"value": [user_json()], "@odata.nextLink": "https://evil.example/v1.0/users?x=1"}),
        ))
        .expect(1)
        .mount(&server2)
        .await;
    let a = adapter(&server2);
    assert!(matches!(
        a.find_users(&q, 5).await,
        Err(PortError::Malformed)
    ));
}

#[tokio::test]
async fn methods_map_by_odata_type() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}/authentication/methods"))
        .and(no_query())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "a1", "displayName": "Canary iPhone", "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.2"},
            {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7", "phoneNumber": "+1 5550199", "phoneType": "mobile", "smsSignInState": "notEnabled"},
            {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "e37fc753-ff3b-4958-9484-eaa9425c82bc", "phoneNumber": "+1 5550100", "phoneType": "office", "smsSignInState": "notSupported"},
            {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": "f1", "displayName": "Key", "model": "YubiKey 5", "aaGuid": "x"},
            {"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod", "id": "s1", "secretKey": null},
            {"@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod", "id": "w1", "displayName": "PC", "keyStrength": "normal"},
            {"@odata.type": "#microsoft.graph.platformCredentialAuthenticationMethod", "id": "p1", "platform": "macOS"},
            {"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod", "id": "t1", "isUsable": false, "methodUsabilityReason": "Expired"},
            {"@odata.type": "#microsoft.graph.emailAuthenticationMethod", "id": "e1", "emailAddress": "canary@example.net"},
            {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490", "password": null},
            {"@odata.type": "#microsoft.graph.externalAuthenticationMethod", "id": "x1", "configurationId": "c"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let f = adapter(&server).list_factors(&subject()).await.unwrap();
    let kinds: Vec<FactorKind> = f.iter().map(|f| f.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            FactorKind::Push,
            FactorKind::Sms,
            FactorKind::Voice,
            FactorKind::WebAuthn,
            FactorKind::Totp,
            FactorKind::PlatformCredential,
            FactorKind::PlatformCredential,
            FactorKind::TemporaryAccessPass,
            FactorKind::Email,
            FactorKind::Password,
            FactorKind::Other("entra:externalauthenticationmethod".into()),
        ]
    );
    assert_eq!(f[7].status, FactorStatus::Inactive);
    assert_eq!(f[0].status, FactorStatus::Active);
    assert_eq!(
        f[0].vendor.as_deref(),
        Some("microsoftAuthenticatorAuthenticationMethod")
    );
    assert_eq!(f[0].label.as_ref().unwrap().expose_pii(), "Canary iPhone");
    assert_eq!(f[1].label.as_ref().unwrap().expose_pii(), "+1 5550199");
    assert_eq!(f[1].id.as_str(), "3179e48a-750b-4051-897c-87b9720928f7");
}

#[tokio::test]
async fn groups_cover_groups_and_roles_across_pages() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let next = format!(
        "{}/v1.0/users/{UID}/memberOf?$select=id,displayName&$skiptoken=p2",
        server.uri()
    );
    graph("GET", &format!("users/{UID}/memberOf"))
        .and(query(&[("$select", "id,displayName")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "Helpdesk Protected"},
            {"@odata.type": "#microsoft.graph.administrativeUnit", "id": "au1", "displayName": "AU"}
        ], "@odata.nextLink": next})))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", &format!("users/{UID}/memberOf"))
        .and(query(&[("$select", "id,displayName"), ("$skiptoken", "p2")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"@odata.type": "#microsoft.graph.directoryRole", "id": "r1", "displayName": "Global Administrator"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let g = adapter(&server).groups(&subject()).await.unwrap();
    let names: Vec<(&str, &str)> = g.iter().map(|g| (g.id.as_str(), g.name.as_str())).collect();
    assert_eq!(
        names,
        vec![("g1", "Helpdesk Protected"), ("r1", "Global Administrator")]
    );
}

#[tokio::test]
async fn unknown_user_is_not_found() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(graph_error("Request_ResourceNotFound")),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server).get_user(&subject()).await,
        Err(PortError::NotFound)
    ));
}
