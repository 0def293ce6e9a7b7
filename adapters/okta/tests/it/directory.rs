//! Directory: user lookup, search, factors, groups, risk facts.

use crate::support::*;
use fctr_ports::{AccountStatus, Directory, FactorKind, FactorStatus, PortError, UserQuery};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn get_user_pins_the_request_and_maps_the_profile_into_pii() {
    let server = MockServer::start().await;
    pinned("GET", "/api/v1/users/00u1abcDEF", None)
        .and(NoHeader("content-type"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u1abcDEF")))
        .expect(1)
        .mount(&server)
        .await;
    let u = ssws(&server).get_user(&sid("00u1abcDEF")).await.unwrap();
    assert_eq!(u.id.as_str(), "00u1abcDEF");
    assert_eq!(u.login.expose_pii(), "jane.canary@example.com");
    assert_eq!(u.email.unwrap().expose_pii(), "jane.canary@example.com");
    assert_eq!(u.display_name.unwrap().expose_pii(), "Jane Canary");
    assert_eq!(u.phone.unwrap().expose_pii(), "+1-555-415-1337");
    assert_eq!(u.status, AccountStatus::Active);
}

#[tokio::test]
async fn user_statuses_are_mapped() {
    let server = MockServer::start().await;
    let okta = ssws(&server);
    for (wire, want) in [
        ("STAGED", AccountStatus::Staged),
        ("PROVISIONED", AccountStatus::Provisioned),
        ("RECOVERY", AccountStatus::Recovery),
        ("PASSWORD_EXPIRED", AccountStatus::PasswordExpired),
        ("LOCKED_OUT", AccountStatus::LockedOut),
        ("SUSPENDED", AccountStatus::Suspended),
        ("DEPROVISIONED", AccountStatus::Deprovisioned),
        ("ACTIVATING", AccountStatus::Other("activating".into())),
    ] {
        server.reset().await;
        let mut u = user_json("00u2");
        u["status"] = json!(wire);
        pinned("GET", "/api/v1/users/00u2", None)
            .respond_with(ResponseTemplate::new(200).set_body_json(u))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(
            okta.get_user(&sid("00u2")).await.unwrap().status,
            want,
            "{wire}"
        );
    }
}

#[tokio::test]
async fn ids_are_path_segments_and_dot_segments_are_refused() {
    let server = MockServer::start().await;
    // `@` and `+` are legal in a segment; the request stays under /api/v1/users/.
    pinned("GET", "/api/v1/users/a+b@example.com", None)
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u3")))
        .expect(1)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    okta.get_user(&sid("a+b@example.com")).await.unwrap();
    // `..` would resolve to /api/v1/ and reach another endpoint: refused before any request.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .named("nothing else is called")
        .mount(&server)
        .await;
    assert!(matches!(
        okta.get_user(&sid("..")).await,
        Err(PortError::NotFound)
    ));
    assert!(matches!(
        okta.list_factors(&sid(".")).await,
        Err(PortError::NotFound)
    ));
}

#[tokio::test]
async fn find_by_login_also_matches_email_with_exact_quoting_and_encoding() {
    let server = MockServer::start().await;
    pinned(
        "GET",
        "/api/v1/users",
        Some(
            "search=profile.login%20eq%20%22jane.canary%40example.com%22%20or%20profile.email%20eq%20%22jane.canary%40example.com%22&limit=5",
        ),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!([user_json("00u1")])))
    .expect(1)
    .mount(&server)
    .await;
    let q = UserQuery::login("jane.canary@example.com").unwrap();
    let users = ssws(&server).find_users(&q, 5).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id.as_str(), "00u1");
}

#[tokio::test]
async fn find_by_email_pins_the_expression() {
    let server = MockServer::start().await;
    pinned(
        "GET",
        "/api/v1/users",
        Some("search=profile.email%20eq%20%22a%2Bb%40example.com%22&limit=10"),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
    .expect(1)
    .mount(&server)
    .await;
    let q = UserQuery::email("a+b@example.com").unwrap();
    assert!(ssws(&server).find_users(&q, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn name_prefix_injection_stays_inside_the_literal() {
    let server = MockServer::start().await;
    let text = r#"Jo" or profile.login sw "\"#;
    let expected = r#"profile.firstName sw "Jo\" or profile.login sw \"\\" or profile.lastName sw "Jo\" or profile.login sw \"\\""#;
    pinned_any_query("GET", "/api/v1/users")
        .and(QueryKeys(&["search", "limit"]))
        .and(wiremock::matchers::query_param("search", expected))
        .and(wiremock::matchers::query_param("limit", "200"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let q = UserQuery::name_prefix(text).unwrap();
    // A limit above Okta's page size is capped at 200.
    ssws(&server).find_users(&q, 500).await.unwrap();
}

#[tokio::test]
async fn find_with_zero_limit_sends_nothing_and_results_are_truncated() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            user_json("00u1"),
            user_json("00u2"),
            user_json("00u3")
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let q = UserQuery::name_prefix("Ja").unwrap();
    assert!(okta.find_users(&q, 0).await.unwrap().is_empty());
    // Okta returned more than asked: only `limit` come back.
    assert_eq!(okta.find_users(&q, 2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn list_factors_maps_types_and_statuses() {
    let server = MockServer::start().await;
    let f = |id: &str, t: &str, st: &str| {
        json!({"id": id, "factorType": t, "provider": "OKTA", "status": st,
               "profile": {"name": "Jane's iPhone", "credentialId": "jane.canary@example.com"}})
    };
    let body = json!([
        f("opf1", "push", "ACTIVE"),
        f("ost1", "token:software:totp", "ACTIVE"),
        f("oht1", "token:hotp", "PENDING_ACTIVATION"),
        f("ohw1", "token:hardware", "NOT_SETUP"),
        f("ohw2", "token", "DISABLED"),
        f("sms1", "sms", "ACTIVE"),
        f("clf1", "call", "EXPIRED"),
        f("eml1", "email", "ACTIVE"),
        f("ufs1", "question", "ACTIVE"),
        f("fwf1", "webauthn", "ACTIVE"),
        f("fuf1", "u2f", "INACTIVE"),
        f("sn1", "signed_nonce", "ACTIVE"),
        f("dsf1", "web", "ENROLLED"),
    ]);
    pinned("GET", "/api/v1/users/00u1/factors", None)
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let got = ssws(&server).list_factors(&sid("00u1")).await.unwrap();
    let kinds: Vec<(String, FactorKind, FactorStatus)> = got
        .iter()
        .map(|f| (f.id.as_str().to_owned(), f.kind.clone(), f.status))
        .collect();
    use FactorKind as K;
    use FactorStatus as S;
    let want = vec![
        ("opf1", K::Push, S::Active),
        ("ost1", K::Totp, S::Active),
        ("oht1", K::Hotp, S::PendingActivation),
        ("ohw1", K::HardwareOtp, S::PendingActivation),
        ("ohw2", K::HardwareOtp, S::Inactive),
        ("sms1", K::Sms, S::Active),
        ("clf1", K::Voice, S::Inactive),
        ("eml1", K::Email, S::Active),
        ("ufs1", K::SecurityQuestion, S::Active),
        ("fwf1", K::WebAuthn, S::Active),
        ("fuf1", K::WebAuthn, S::Inactive),
        ("sn1", K::PlatformCredential, S::Active),
        ("dsf1", K::Other("web".into()), S::Inactive),
    ];
    let want: Vec<(String, FactorKind, FactorStatus)> = want
        .into_iter()
        .map(|(a, b, c)| (a.to_owned(), b, c))
        .collect();
    assert_eq!(kinds, want);
    assert_eq!(got[0].vendor.as_deref(), Some("OKTA"));
    assert_eq!(got[0].label.as_ref().unwrap().expose_pii(), "Jane's iPhone");
}

#[tokio::test]
async fn groups_follow_next_links_on_the_org_only() {
    let server = MockServer::start().await;
    let next = format!(
        "{}/api/v1/users/00u1/groups?after=00g2&limit=2",
        server.uri()
    );
    pinned("GET", "/api/v1/users/00u1/groups", None)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", format!("<{next}>; rel=\"next\"").as_str())
                .set_body_json(json!([
                    {"id": "00g1", "profile": {"name": "Everyone"}},
                    {"id": "00g2", "profile": {"name": "Protected Admins"}}
                ])),
        )
        .expect(1)
        .mount(&server)
        .await;
    pinned(
        "GET",
        "/api/v1/users/00u1/groups",
        Some("after=00g2&limit=2"),
    )
    .respond_with(
        ResponseTemplate::new(200)
            .set_body_json(json!([{"id": "00g3", "profile": {"name": "Sales"}}])),
    )
    .expect(1)
    .mount(&server)
    .await;
    let g = ssws(&server).groups(&sid("00u1")).await.unwrap();
    let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["Everyone", "Protected Admins", "Sales"]);
    assert_eq!(g[2].id, "00g3");

    // A next link off the org is refused (and not followed).
    let evil = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&evil)
        .await;
    server.reset().await;
    pinned("GET", "/api/v1/users/00u1/groups", None)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!(
                        "<{}/api/v1/users/00u1/groups?after=x>; rel=\"next\"",
                        evil.uri()
                    )
                    .as_str(),
                )
                .set_body_json(json!([{"id": "00g1", "profile": {"name": "Everyone"}}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        ssws(&server).groups(&sid("00u1")).await,
        Err(PortError::Malformed)
    ));
}

#[tokio::test]
async fn risk_facts_come_from_the_user_object() {
    let server = MockServer::start().await;
    let mut u = user_json("00u1");
    u["status"] = json!("LOCKED_OUT");
    u["credentials"]["provider"]["type"] = json!("ACTIVE_DIRECTORY");
    u["lastLogin"] = json!(null);
    pinned("GET", "/api/v1/users/00u1", None)
        .respond_with(ResponseTemplate::new(200).set_body_json(u))
        .expect(1)
        .mount(&server)
        .await;
    let r = ssws(&server).risk_facts(&sid("00u1")).await.unwrap();
    assert!(r.locked_out);
    assert_eq!(r.created.unwrap().to_rfc3339(), "2024-01-02T03:04:05+00:00");
    assert_eq!(
        r.status_changed.unwrap().to_rfc3339(),
        "2024-02-01T00:00:00+00:00"
    );
    assert_eq!(
        r.password_changed.unwrap().to_rfc3339(),
        "2025-12-24T10:00:00+00:00"
    );
    assert_eq!(r.last_login, None);
    assert_eq!(r.directory_synced, Some(true));
}
