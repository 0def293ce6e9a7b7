//! Lifecycle: every action pinned; none is retried.

use crate::support::*;
use fctr_ports::{
    Action, ActionKind, ExposeSecret, FactorId, IdentityProvider, Lifecycle, PortError, SecretKind,
};
use serde_json::json;
use std::time::{Duration, SystemTime};
use wiremock::matchers::header;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A POST with no body, as Okta's lifecycle operations take.
fn post(p: &str, query: Option<&str>) -> wiremock::MockBuilder {
    pinned("POST", p, query)
        .and(header("content-type", "application/json"))
        .and(EmptyBody)
}

#[tokio::test]
async fn clear_sessions_deletes_with_the_oauth_tokens_flag() {
    let server = MockServer::start().await;
    for (flag, q) in [(true, "oauthTokens=true"), (false, "oauthTokens=false")] {
        pinned("DELETE", "/api/v1/users/00u1/sessions", Some(q))
            .and(EmptyBody)
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let r = ssws(&server)
            .execute(
                &sid("00u1"),
                &Action::ClearSessions {
                    revoke_oauth_tokens: flag,
                },
            )
            .await
            .unwrap();
        assert_eq!(r.kind, ActionKind::ClearSessions);
        assert!(r.secret.is_none() && !r.emailed);
    }
}

#[tokio::test]
async fn reset_password_returns_the_link_as_a_one_time_secret() {
    let server = MockServer::start().await;
    let link = "https://acme.okta.com/reset_password/XE6wE17zmphl3KqAPFxO";
    post(
        "/api/v1/users/00u1/lifecycle/reset_password",
        Some("sendEmail=false"),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"resetPasswordUrl": link})))
    .expect(1)
    .mount(&server)
    .await;
    let r = ssws(&server)
        .execute(&sid("00u1"), &Action::ResetPassword { send_email: false })
        .await
        .unwrap();
    let s = r.secret.as_ref().unwrap();
    assert_eq!(s.kind, SecretKind::ResetLink);
    assert_eq!(s.value.expose_secret(), link);
    assert!(!r.emailed);
    assert!(!format!("{r:?}").contains("XE6w"));
}

#[tokio::test]
async fn reset_password_by_email_returns_an_emailed_receipt() {
    let server = MockServer::start().await;
    post(
        "/api/v1/users/00u1/lifecycle/reset_password",
        Some("sendEmail=true"),
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
    .expect(1)
    .mount(&server)
    .await;
    let r = ssws(&server)
        .execute(&sid("00u1"), &Action::ResetPassword { send_email: true })
        .await
        .unwrap();
    assert!(r.emailed && r.secret.is_none());
}

#[tokio::test]
async fn expire_password_reads_temp_password_not_a_user() {
    let server = MockServer::start().await;
    post(
        "/api/v1/users/00u1/lifecycle/expire_password_with_temp_password",
        None,
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tempPassword": "F46gy7X4"})))
    .expect(1)
    .mount(&server)
    .await;
    let r = ssws(&server)
        .execute(&sid("00u1"), &Action::ExpirePassword)
        .await
        .unwrap();
    let s = r.secret.unwrap();
    assert_eq!(s.kind, SecretKind::TemporaryPassword);
    assert_eq!(s.value.expose_secret(), "F46gy7X4");

    // A User-shaped answer (the SDK bug) has no temp password: an error, not a silent success.
    server.reset().await;
    post(
        "/api/v1/users/00u1/lifecycle/expire_password_with_temp_password",
        None,
    )
    .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u1")))
    .expect(1)
    .mount(&server)
    .await;
    let e = ssws(&server)
        .execute(&sid("00u1"), &Action::ExpirePassword)
        .await;
    assert!(matches!(e, Err(PortError::Malformed)));
}

#[tokio::test]
async fn simple_lifecycle_posts_are_pinned() {
    let server = MockServer::start().await;
    let cases = [
        (Action::Unlock, "unlock"),
        (Action::ResetFactors, "reset_factors"),
        (Action::Suspend, "suspend"),
        (Action::Unsuspend, "unsuspend"),
    ];
    for (action, segment) in cases {
        server.reset().await;
        post(&format!("/api/v1/users/00u1/lifecycle/{segment}"), None)
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let r = ssws(&server).execute(&sid("00u1"), &action).await.unwrap();
        assert_eq!(r.kind, action.kind());
        assert!(r.secret.is_none());
    }
}

#[tokio::test]
async fn remove_factor_deletes_it() {
    let server = MockServer::start().await;
    pinned("DELETE", "/api/v1/users/00u1/factors/opf1", None)
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let r = ssws(&server)
        .execute(
            &sid("00u1"),
            &Action::RemoveFactor(FactorId::parse("opf1").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(r.kind, ActionKind::RemoveFactor);
}

#[tokio::test]
async fn temporary_access_pass_is_unsupported_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let e = okta
        .execute(
            &sid("00u1"),
            &Action::IssueTemporaryAccessPass {
                lifetime_minutes: 60,
                one_time: true,
            },
        )
        .await;
    assert!(matches!(e, Err(PortError::Unsupported)));
    let caps = okta.capabilities();
    assert_eq!(caps.provider, "okta");
    assert!(caps.push && caps.push_number_matching && caps.code_verification && caps.name_search);
    assert!(!caps.actions.contains(&ActionKind::IssueTemporaryAccessPass));
    assert_eq!(caps.actions.len(), ActionKind::ALL.len() - 1);
}

#[tokio::test]
async fn lifecycle_is_not_retried_on_429_and_reports_retry_after() {
    // Reset in 7 s (longer than the GET retry wait) and now (short enough that a GET would be re-sent).
    for (ahead, want) in [(7u64, 8u64), (0, 1)] {
        let server = MockServer::start().await;
        let date = SystemTime::now();
        let reset = date
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + ahead;
        post("/api/v1/users/00u1/lifecycle/unlock", None)
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("date", httpdate::fmt_http_date(date).as_str())
                    .insert_header("x-rate-limit-limit", "600")
                    .insert_header("x-rate-limit-remaining", "0")
                    .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                    .insert_header("x-okta-request-id", "req-429")
                    .set_body_json(okta_error("E0000047", "API call exceeded rate limit")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let e = ssws(&server)
            .execute(&sid("00u1"), &Action::Unlock)
            .await
            .unwrap_err();
        match e {
            PortError::RateLimited { retry_after } => {
                assert_eq!(retry_after, Some(Duration::from_secs(want)));
            }
            other => panic!("{other:?}"),
        }
        drop(server);
    }
}

#[tokio::test]
async fn lifecycle_is_not_retried_on_5xx() {
    let server = MockServer::start().await;
    pinned(
        "DELETE",
        "/api/v1/users/00u1/sessions",
        Some("oauthTokens=false"),
    )
    .respond_with(ResponseTemplate::new(503).set_body_json(okta_error("E0000010", "down")))
    .expect(1)
    .mount(&server)
    .await;
    let e = ssws(&server)
        .execute(
            &sid("00u1"),
            &Action::ClearSessions {
                revoke_oauth_tokens: false,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, PortError::Upstream { status: 503, ref code } if code.as_deref() == Some("E0000010"))
    );
}

#[tokio::test]
async fn state_refusals_are_invalid_state() {
    let server = MockServer::start().await;
    let okta = ssws(&server);
    let cases = [
        (400, "E0000001", Action::Suspend, "suspend"),
        (403, "E0000038", Action::Unsuspend, "unsuspend"),
        (403, "E0000032", Action::Unlock, "unlock"),
    ];
    for (status, code, action, segment) in cases {
        server.reset().await;
        post(&format!("/api/v1/users/00u1/lifecycle/{segment}"), None)
            .respond_with(ResponseTemplate::new(status).set_body_json(okta_error(code, "no")))
            .expect(1)
            .mount(&server)
            .await;
        let e = okta.execute(&sid("00u1"), &action).await;
        assert!(matches!(e, Err(PortError::InvalidState)), "{code}: {e:?}");
    }
}
