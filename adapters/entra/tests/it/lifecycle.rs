//! Lifecycle actions: exact requests, secrets returned once, and no retries on 429/5xx.

use crate::support::*;
use fctr_entra::{EntraAdapter, supported_actions};
use fctr_ports::{
    Action, ActionKind, FactorId, IdentityProvider, Lifecycle, PortError, SecretKind,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{any, body_json, header};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn json_body() -> wiremock::matchers::HeaderExactMatcher {
    header("content-type", "application/json")
}

#[tokio::test]
async fn clear_sessions_posts_revoke_without_body_and_accepts_200_true() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("POST", &format!("users/{UID}/revokeSignInSessions"))
        .and(no_query())
        .and(EmptyBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": true}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let r = adapter(&server)
        .execute(
            &subject(),
            &Action::ClearSessions {
                revoke_oauth_tokens: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.kind, ActionKind::ClearSessions);
    assert!(r.secret.is_none());
}

#[tokio::test]
async fn clear_sessions_accepts_204_too() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("POST", &format!("users/{UID}/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    adapter(&server)
        .execute(
            &subject(),
            &Action::ClearSessions {
                revoke_oauth_tokens: false,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn lifecycle_calls_are_never_retried_on_429_or_5xx() {
    for (status, retry) in [(429, Some("0")), (500, None), (503, Some("0")), (504, None)] {
        let server = MockServer::start().await;
        mount_token(&server, 1).await;
        let mut resp = ResponseTemplate::new(status).set_body_json(graph_error("generalException"));
        if let Some(r) = retry {
            resp = resp.insert_header("retry-after", r);
        }
        graph("POST", &format!("users/{UID}/revokeSignInSessions"))
            .respond_with(resp.clone())
            .expect(1)
            .mount(&server)
            .await;
        graph("PATCH", &format!("users/{UID}"))
            .respond_with(resp)
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter(&server);
        let e = a
            .execute(
                &subject(),
                &Action::ClearSessions {
                    revoke_oauth_tokens: false,
                },
            )
            .await
            .unwrap_err();
        let e2 = a.execute(&subject(), &Action::Suspend).await.unwrap_err();
        for e in [e, e2] {
            if status == 429 {
                assert!(
                    matches!(e, PortError::RateLimited { retry_after: Some(d) } if d == Duration::ZERO),
                    "{e:?}"
                );
            } else {
                assert!(
                    matches!(e, PortError::Upstream { status: s, code: Some(ref c) } if s == status && c == "generalException"),
                    "{e:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn expire_password_patches_a_strong_temporary_password() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_user(&server, user_json(), 1).await;
    let capture = Capture::default();
    graph("PATCH", &format!("users/{UID}"))
        .and(no_query())
        .and(json_body())
        .and(capture.clone())
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let r = adapter(&server)
        .execute(&subject(), &Action::ExpirePassword)
        .await
        .unwrap();
    assert_eq!(r.kind, ActionKind::ExpirePassword);
    let secret = r.secret.unwrap();
    assert_eq!(secret.kind, SecretKind::TemporaryPassword);
    let pw = secret.value.expose_secret().to_owned();
    let body: Value = serde_json::from_slice(&capture.bodies()[0]).unwrap();
    assert_eq!(
        body,
        json!({"passwordProfile": {
            "password": pw,
            "forceChangePasswordNextSignIn": true,
            "forceChangePasswordNextSignInWithMfa": false
        }})
    );
    assert!(pw.len() >= 16);
    assert!(pw.chars().any(|c| c.is_ascii_uppercase()));
    assert!(pw.chars().any(|c| c.is_ascii_lowercase()));
    assert!(pw.chars().any(|c| c.is_ascii_digit()));
    assert!(pw.chars().any(|c| c.is_ascii_punctuation()));
    assert!(!format!("{:?}", secret.value).contains(&pw));
}

#[tokio::test]
async fn expire_password_refuses_synced_users_unless_allowed() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let mut u = user_json();
    u["onPremisesSyncEnabled"] = json!(true);
    mount_user(&server, u, 1).await;
    graph("PATCH", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server)
            .execute(&subject(), &Action::ExpirePassword)
            .await,
        Err(PortError::InvalidState)
    ));

    // Allowed: no read first, straight to the PATCH.
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("PATCH", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server, secret());
    c.allow_password_set_on_synced_users = true;
    EntraAdapter::new(c)
        .unwrap()
        .execute(&subject(), &Action::ExpirePassword)
        .await
        .unwrap();
}

#[tokio::test]
async fn password_forbidden_names_the_permission_and_role() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_user(&server, user_json(), 1).await;
    graph("PATCH", &format!("users/{UID}"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(graph_error("Authorization_RequestDenied")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = adapter(&server)
        .execute(&subject(), &Action::ExpirePassword)
        .await
        .unwrap_err();
    let PortError::Forbidden { missing: Some(m) } = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("User-PasswordProfile.ReadWrite.All"));
    assert!(m.contains("User Administrator"));
    assert!(!e.to_string().contains("canary"));
}

fn tap_response() -> Value {
    json!({
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "id": "6f1ba4a8-1234-4b1e-9bd0-3f2b8d0a0c01",
        "temporaryAccessPass": "CANARY-TAP-#9q",
        "createdDateTime": "2025-03-01T10:00:00Z",
        "startDateTime": "2025-03-01T10:00:00Z",
        "lifetimeInMinutes": 60,
        "isUsableOnce": true,
        "isUsable": true,
        "methodUsabilityReason": "EnabledByPolicy"
    })
}

#[tokio::test]
async fn tap_is_requested_exactly_and_returned_once_with_expiry() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph(
        "POST",
        &format!("users/{UID}/authentication/temporaryAccessPassMethods"),
    )
    .and(no_query())
    .and(json_body())
    .and(body_json(
        json!({"lifetimeInMinutes": 60, "isUsableOnce": true}),
    ))
    .respond_with(ResponseTemplate::new(201).set_body_json(tap_response()))
    .expect(1)
    .mount(&server)
    .await;
    let r = adapter(&server)
        .execute(
            &subject(),
            &Action::IssueTemporaryAccessPass {
                lifetime_minutes: 60,
                one_time: true,
            },
        )
        .await
        .unwrap();
    let s = r.secret.unwrap();
    assert_eq!(s.kind, SecretKind::TemporaryAccessPass);
    assert_eq!(s.value.expose_secret(), "CANARY-TAP-#9q");
    assert_eq!(
        s.expires_at.unwrap().to_rfc3339(),
        "2025-03-01T11:00:00+00:00"
    );
}

#[tokio::test]
async fn tap_lifetime_is_clamped_into_the_configured_bounds() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let a = adapter(&server);
    for (asked, sent, once) in [(5, 60, false), (100_000, 480, true), (90, 90, false)] {
        graph(
            "POST",
            &format!("users/{UID}/authentication/temporaryAccessPassMethods"),
        )
        .and(body_json(
            json!({"lifetimeInMinutes": sent, "isUsableOnce": once}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(tap_response()))
        .expect(1)
        .mount(&server)
        .await;
        a.execute(
            &subject(),
            &Action::IssueTemporaryAccessPass {
                lifetime_minutes: asked,
                one_time: once,
            },
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn tap_without_pass_in_answer_is_malformed_and_forbidden_names_tap_permission() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let mut body = tap_response();
    body["temporaryAccessPass"] = Value::Null;
    graph(
        "POST",
        &format!("users/{UID}/authentication/temporaryAccessPassMethods"),
    )
    .respond_with(ResponseTemplate::new(201).set_body_json(body))
    .up_to_n_times(1)
    .expect(1)
    .mount(&server)
    .await;
    graph(
        "POST",
        &format!("users/{UID}/authentication/temporaryAccessPassMethods"),
    )
    .respond_with(
        ResponseTemplate::new(403).set_body_json(graph_error("Authorization_RequestDenied")),
    )
    .expect(1)
    .mount(&server)
    .await;
    let a = adapter(&server);
    let act = Action::IssueTemporaryAccessPass {
        lifetime_minutes: 60,
        one_time: true,
    };
    assert!(matches!(
        a.execute(&subject(), &act).await,
        Err(PortError::Malformed)
    ));
    let e = a.execute(&subject(), &act).await.unwrap_err();
    assert!(
        matches!(&e, PortError::Forbidden { missing: Some(m) } if m.contains("UserAuthMethod-TAP.ReadWrite.All")),
        "{e:?}"
    );
}

fn methods_json() -> Value {
    json!({"value": [
        {"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod", "id": "b172893e-1234-4fd7-a4f4-9a0a1cba9c8f"},
        {"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod", "id": "6f1ba4a8-1234-4b1e-9bd0-3f2b8d0a0c01"},
        {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"}
    ]})
}

#[tokio::test]
async fn remove_factor_deletes_at_the_type_specific_path() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}/authentication/methods"))
        .respond_with(ResponseTemplate::new(200).set_body_json(methods_json()))
        .expect(4)
        .mount(&server)
        .await;
    graph(
        "DELETE",
        &format!(
            "users/{UID}/authentication/softwareOathMethods/b172893e-1234-4fd7-a4f4-9a0a1cba9c8f"
        ),
    )
    .and(no_query())
    .and(EmptyBody)
    .respond_with(ResponseTemplate::new(204))
    .expect(1)
    .mount(&server)
    .await;
    graph(
        "DELETE",
        &format!(
            "users/{UID}/authentication/temporaryAccessPassMethods/6f1ba4a8-1234-4b1e-9bd0-3f2b8d0a0c01"
        ),
    )
    .respond_with(ResponseTemplate::new(204))
    .expect(1)
    .mount(&server)
    .await;
    let a = adapter(&server);
    for id in [
        "b172893e-1234-4fd7-a4f4-9a0a1cba9c8f",
        "6f1ba4a8-1234-4b1e-9bd0-3f2b8d0a0c01",
    ] {
        let r = a
            .execute(
                &subject(),
                &Action::RemoveFactor(FactorId::parse(id).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(r.kind, ActionKind::RemoveFactor);
    }
    // Passwords cannot be removed; unknown ids are not found. Neither sends a DELETE.
    assert!(matches!(
        a.execute(
            &subject(),
            &Action::RemoveFactor(FactorId::parse("28c10230-6103-485e-b985-444c60001490").unwrap())
        )
        .await,
        Err(PortError::Unsupported)
    ));
    assert!(matches!(
        a.execute(
            &subject(),
            &Action::RemoveFactor(FactorId::parse("nope").unwrap())
        )
        .await,
        Err(PortError::NotFound)
    ));
}

#[tokio::test]
async fn suspend_and_unsuspend_patch_account_enabled() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("PATCH", &format!("users/{UID}"))
        .and(json_body())
        .and(body_json(json!({"accountEnabled": false})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    graph("PATCH", &format!("users/{UID}"))
        .and(json_body())
        .and(body_json(json!({"accountEnabled": true})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    assert_eq!(
        a.execute(&subject(), &Action::Suspend).await.unwrap().kind,
        ActionKind::Suspend
    );
    assert_eq!(
        a.execute(&subject(), &Action::Unsuspend)
            .await
            .unwrap()
            .kind,
        ActionKind::Unsuspend
    );
}

#[tokio::test]
async fn unsupported_actions_send_nothing_and_capabilities_list_exactly_what_works() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let a = adapter(&server);
    for act in [
        Action::ResetPassword { send_email: false },
        Action::ResetPassword { send_email: true },
        Action::Unlock,
    ] {
        assert!(matches!(
            a.execute(&subject(), &act).await,
            Err(PortError::Unsupported)
        ));
    }
    let caps = a.capabilities();
    assert_eq!(caps.provider, "entra");
    assert_eq!(caps.actions, supported_actions());
    let want: Vec<ActionKind> = vec![
        ActionKind::ClearSessions,
        ActionKind::ExpirePassword,
        ActionKind::ResetFactors,
        ActionKind::RemoveFactor,
        ActionKind::IssueTemporaryAccessPass,
        ActionKind::Suspend,
        ActionKind::Unsuspend,
    ];
    assert_eq!(caps.actions, want.into_iter().collect());
    assert!(!caps.push && !caps.code_verification && !caps.push_number_matching);
    assert!(caps.name_search);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_resends() {
    let server = MockServer::start().await;
    graph_token_request()
        .respond_with(token_ok(TOKEN))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    graph_token_request()
        .respond_with(token_ok(TOKEN2))
        .expect(1)
        .mount(&server)
        .await;
    graph("POST", &format!("users/{UID}/revokeSignInSessions"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(graph_error("InvalidAuthenticationToken")),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!(
            "/v1.0/users/{UID}/revokeSignInSessions"
        )))
        .and(header("authorization", format!("Bearer {TOKEN2}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    adapter(&server)
        .execute(
            &subject(),
            &Action::ClearSessions {
                revoke_oauth_tokens: false,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_persistent_401_is_unauthorized_after_one_refresh() {
    let server = MockServer::start().await;
    mount_token(&server, 2).await;
    graph("POST", &format!("users/{UID}/revokeSignInSessions"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server)
            .execute(
                &subject(),
                &Action::ClearSessions {
                    revoke_oauth_tokens: false
                }
            )
            .await,
        Err(PortError::Unauthorized)
    ));
}
