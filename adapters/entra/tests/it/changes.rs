//! The directory audit log as a change feed: the window's `$filter`, every page followed (on the Graph base only),
//! entries mapped, and the missing permission named.

use crate::support::*;
use chrono::{DateTime, Utc};
use fctr_ports::{ActionKind, ChangeActor, ChangeFeed, PortError};
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

const ADMIN: &str = "99999999-0000-0000-0000-000000000001";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn entry(id: &str, activity: &str, when: &str, by: Value) -> Value {
    json!({
        "id": id,
        "category": "UserManagement",
        "activityDisplayName": activity,
        "activityDateTime": when,
        "result": "success",
        "initiatedBy": by,
        "targetResources": [{"id": UID, "type": "User", "userPrincipalName": UPN}]
    })
}

fn admin() -> Value {
    json!({"user": {"id": ADMIN, "userPrincipalName": "rogue.admin@example.com"}, "app": null})
}

const FILTER: &str =
    "activityDateTime ge 2026-12-03T09:00:00Z and activityDateTime le 2026-12-03T10:00:00Z";

#[tokio::test]
async fn every_page_of_the_window_is_read_and_mapped() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let next = format!(
        "{}/v1.0/auditLogs/directoryAudits?$skiptoken=page2",
        server.uri()
    );
    graph("GET", "auditLogs/directoryAudits")
        .and(query(&[("$filter", FILTER), ("$top", "999")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                entry("e1", "Reset user password", "2026-12-03T09:10:00.1234567Z", admin()),
                entry("e2", "Add member to group", "2026-12-03T09:11:00Z", admin()),
            ],
            "@odata.nextLink": next
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", "auditLogs/directoryAudits")
        .and(query(&[("$skiptoken", "page2")]))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                entry("e3", "Update StsRefreshTokenValidFrom Timestamp", "2026-12-03T09:05:00Z",
                    json!({"user": null, "app": {"appId": CLIENT_ID, "displayName": "fctr"}})),
                // `le until` on the wire: an entry at `until` itself is outside the port's window.
                entry("e4", "Reset user password", "2026-12-03T10:00:00Z", admin()),
            ]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    assert_eq!(a.own_client_id().as_deref(), Some(CLIENT_ID));
    let got = a
        .changes(at("2026-12-03T09:00:00Z"), at("2026-12-03T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    // Oldest first.
    assert_eq!(got[0].event_id, "e3");
    assert_eq!(got[0].kind, ActionKind::ClearSessions);
    assert_eq!(
        got[0].actor,
        ChangeActor::App {
            client_id: CLIENT_ID.into()
        }
    );
    assert_eq!(got[1].event_id, "e1");
    assert_eq!(got[1].kind, ActionKind::ResetPassword);
    assert_eq!(got[1].target.as_str(), UID);
    assert!(matches!(&got[1].actor, ChangeActor::Admin { id, .. } if id.as_str() == ADMIN));
}

#[tokio::test]
async fn a_next_link_off_the_graph_base_is_refused_not_followed() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "auditLogs/directoryAudits")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [entry("e1", "Reset user password", "2026-12-03T09:10:00Z", admin())],
            "@odata.nextLink": "https://evil.example.com/v1.0/auditLogs/directoryAudits?$skiptoken=x"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    let e = a
        .changes(at("2026-12-03T09:00:00Z"), at("2026-12-03T10:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Malformed), "{e:?}");
}

#[tokio::test]
async fn without_the_permission_the_error_names_it() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", "auditLogs/directoryAudits")
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    match a
        .changes(at("2026-12-03T09:00:00Z"), at("2026-12-03T10:00:00Z"))
        .await
        .unwrap_err()
    {
        PortError::Forbidden { missing: Some(m) } => {
            assert!(m.contains("AuditLog.Read.All"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

/// Against the fake Entra tenant: fctr's own revocation is logged under fctr's app id, a change made "in the admin
/// center" under the admin, both read back by the feed; without the permissions the feed names them.
#[tokio::test]
async fn against_the_fake_tenant_fctr_is_its_app_and_a_console_change_names_its_admin() {
    use fctr_entra::{EntraAdapter, EntraConfig, EntraCredential};
    use fctr_ports::{Action, Lifecycle, SubjectId};
    use fctr_testkit::entra::{DEFAULT_APP_PERMISSIONS, FakeEntra, FakeEntraOptions};

    let fake = FakeEntra::start(FakeEntraOptions::default()).await.unwrap();
    let mut cfg = EntraConfig::new(
        fake.tenant_id(),
        &fake.app().client_id,
        EntraCredential::client_secret(fake.client_secret()),
    )
    .unwrap();
    cfg.authority = fake.authority();
    cfg.graph_base = fake.graph_base();
    let a = EntraAdapter::new(cfg).unwrap();
    let alice = SubjectId::parse(fake.fixtures().id_of("alice")).unwrap();
    let bob = fake.fixtures().id_of("bob");
    let since = Utc::now() - chrono::TimeDelta::seconds(1);

    // Without the audit permissions (the default grant): refused, both named.
    match a
        .changes(since, Utc::now() + chrono::TimeDelta::seconds(1))
        .await
        .unwrap_err()
    {
        PortError::Forbidden { missing: Some(m) } => {
            assert!(
                m.contains("AuditLog.Read.All") && m.contains("Directory.Read.All"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }

    let mut perms: Vec<&str> = DEFAULT_APP_PERMISSIONS.to_vec();
    perms.extend(["AuditLog.Read.All", "Directory.Read.All"]);
    fake.state()
        .set_app_permissions(&fake.app().client_id, &perms);
    // A new token carries the new grant.
    let a = {
        let mut cfg = EntraConfig::new(
            fake.tenant_id(),
            &fake.app().client_id,
            EntraCredential::client_secret(fake.client_secret()),
        )
        .unwrap();
        cfg.authority = fake.authority();
        cfg.graph_base = fake.graph_base();
        EntraAdapter::new(cfg).unwrap()
    };
    a.execute(
        &alice,
        &Action::ClearSessions {
            revoke_oauth_tokens: false,
        },
    )
    .await
    .unwrap();
    fake.state()
        .console_change("rogue.admin@example.com", &bob, "Reset user password");
    assert_eq!(fake.state().directory_audit_len(), 2);

    let got = a
        .changes(since, Utc::now() + chrono::TimeDelta::seconds(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].kind, ActionKind::ClearSessions);
    assert_eq!(got[0].target, alice);
    assert_eq!(
        got[0].actor,
        ChangeActor::App {
            client_id: fake.app().client_id.clone()
        }
    );
    assert_eq!(a.own_client_id(), Some(fake.app().client_id.clone()));
    assert_eq!(got[1].kind, ActionKind::ResetPassword);
    assert_eq!(got[1].target.as_str(), bob);
    match &got[1].actor {
        ChangeActor::Admin { display, .. } => {
            assert_eq!(display.expose_pii(), "rogue.admin@example.com");
        }
        other => panic!("{other:?}"),
    }
    // A window before both changes holds neither.
    let none = a
        .changes(since - chrono::TimeDelta::hours(1), since)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}
