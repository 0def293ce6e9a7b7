use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn status_of(okta: &fctr_testkit::okta::FakeOkta, handle: &str) -> String {
    let u: Value = get(
        okta,
        &format!("/api/v1/users/{}", okta.fixtures().id_of(handle)),
    )
    .await
    .json()
    .await
    .unwrap();
    u["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn revoke_sessions_204_and_counted() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let resp = ssws(
        &okta,
        Method::DELETE,
        &format!("/api/v1/users/{id}/sessions?oauthTokens=true"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    let resp = ssws(
        &okta,
        Method::DELETE,
        &format!("/api/v1/users/{id}/sessions"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    let e: Value = client()
        .get(url(&okta, &format!("/_fake/users/{id}/effects")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["sessionsRevoked"], 2);
    assert_eq!(e["oauthTokensRevoked"], 1);
    let resp = ssws(
        &okta,
        Method::DELETE,
        &format!("/api/v1/users/{id}/sessions?oauthTokens=maybe"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::BAD_REQUEST, "E0000001").await;
    let resp = ssws(
        &okta,
        Method::DELETE,
        "/api/v1/users/00unobody0000000000/sessions",
        None,
    )
    .await;
    okta_error(resp, StatusCode::NOT_FOUND, "E0000007").await;
}

#[tokio::test]
async fn reset_password_url_or_email() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{id}/lifecycle/reset_password?sendEmail=false"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["resetPasswordUrl"]
            .as_str()
            .unwrap()
            .contains("/reset_password/")
    );
    assert_eq!(status_of(&okta, "alice").await, "RECOVERY");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{id}/lifecycle/reset_password?sendEmail=true"),
        None,
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({}));
    let resp = post(
        &okta,
        &format!("/api/v1/users/{id}/lifecycle/reset_password"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::BAD_REQUEST, "E0000001").await;
    assert_eq!(okta.effects("alice").unwrap().password_resets, 2);
    let grace = okta.fixtures().id_of("grace");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{grace}/lifecycle/reset_password?sendEmail=false"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::FORBIDDEN, "E0000038").await;
}

#[tokio::test]
async fn expire_password_and_temp_password() {
    let okta = start().await;
    let resp = post(
        &okta,
        "/api/v1/users/alice%40example.com/lifecycle/expire_password",
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let u: Value = resp.json().await.unwrap();
    assert_eq!(u["status"], "PASSWORD_EXPIRED");
    assert_eq!(u["id"], okta.fixtures().id_of("alice"));
    let id = okta.fixtures().id_of("bob");
    let resp = post(
        &okta,
        &format!(
            "/api/v1/users/{id}/lifecycle/expire_password_with_temp_password?revokeSessions=true"
        ),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let temp = body["tempPassword"].as_str().unwrap();
    assert_eq!(temp.len(), 8);
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(status_of(&okta, "bob").await, "PASSWORD_EXPIRED");
    let e = okta.effects("bob").unwrap();
    assert_eq!(e.last_temp_password.as_deref(), Some(temp));
    assert_eq!(e.sessions_revoked_by_lifecycle, 1);
}

#[tokio::test]
async fn unlock_only_locked_out() {
    let okta = start().await;
    let erin = okta.fixtures().id_of("erin");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{erin}/lifecycle/unlock"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(status_of(&okta, "erin").await, "ACTIVE");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{erin}/lifecycle/unlock"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::FORBIDDEN, "E0000032").await;
}

#[tokio::test]
async fn suspend_and_unsuspend() {
    let okta = start().await;
    let alice = okta.fixtures().id_of("alice");
    assert_eq!(
        post(
            &okta,
            &format!("/api/v1/users/{alice}/lifecycle/suspend"),
            None
        )
        .await
        .status(),
        200
    );
    assert_eq!(status_of(&okta, "alice").await, "SUSPENDED");
    okta_error(
        post(
            &okta,
            &format!("/api/v1/users/{alice}/lifecycle/suspend"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "E0000001",
    )
    .await;
    assert_eq!(
        post(
            &okta,
            &format!("/api/v1/users/{alice}/lifecycle/unsuspend"),
            None
        )
        .await
        .status(),
        200
    );
    assert_eq!(status_of(&okta, "alice").await, "ACTIVE");
    okta_error(
        post(
            &okta,
            &format!("/api/v1/users/{alice}/lifecycle/unsuspend"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "E0000001",
    )
    .await;
    let frank = okta.fixtures().id_of("frank");
    okta_error(
        post(
            &okta,
            &format!("/api/v1/users/{frank}/lifecycle/suspend"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "E0000001",
    )
    .await;
    let e = okta.effects("alice").unwrap();
    assert_eq!((e.suspensions, e.unsuspensions), (1, 1));
}

#[tokio::test]
async fn reset_factors_removes_all() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{id}/lifecycle/reset_factors"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let list: Vec<Value> = get(&okta, &format!("/api/v1/users/{id}/factors"))
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty());
    assert_eq!(status_of(&okta, "alice").await, "ACTIVE");
}

#[tokio::test]
async fn unenroll_push_removes_okta_verify_companions() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let push = okta.fixtures().factor("alice", "push").unwrap().id.clone();
    let resp = ssws(
        &okta,
        Method::DELETE,
        &format!("/api/v1/users/{id}/factors/{push}"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 204);
    let list: Vec<Value> = get(&okta, &format!("/api/v1/users/{id}/factors"))
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty(), "Okta Verify TOTP goes with the push");
    let resp = ssws(
        &okta,
        Method::DELETE,
        &format!("/api/v1/users/{id}/factors/{push}"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::NOT_FOUND, "E0000007").await;
    // Bob's Google TOTP survives removal of his push.
    let bob = okta.fixtures().id_of("bob");
    let push = okta.fixtures().factor("bob", "push").unwrap().id.clone();
    assert_eq!(
        ssws(
            &okta,
            Method::DELETE,
            &format!("/api/v1/users/{bob}/factors/{push}"),
            None
        )
        .await
        .status(),
        204
    );
    let list: Vec<Value> = get(&okta, &format!("/api/v1/users/{bob}/factors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["provider"], "GOOGLE");
}

#[tokio::test]
async fn lifecycle_needs_manage_scope() {
    let okta = start().await;
    let read = access_token(&okta, "okta.users.read").await;
    let id = okta.fixtures().id_of("alice");
    for (m, p) in [
        (
            Method::POST,
            format!("/api/v1/users/{id}/lifecycle/suspend"),
        ),
        (Method::DELETE, format!("/api/v1/users/{id}/sessions")),
        (
            Method::POST,
            format!("/api/v1/users/{id}/lifecycle/reset_password?sendEmail=false"),
        ),
    ] {
        okta_error(
            bearer(&okta, m, &p, &read, None).await,
            StatusCode::FORBIDDEN,
            "E0000006",
        )
        .await;
    }
    assert_eq!(status_of(&okta, "alice").await, "ACTIVE");
    let manage = access_token(&okta, "okta.users.read okta.users.manage").await;
    let resp = bearer(
        &okta,
        Method::POST,
        &format!("/api/v1/users/{id}/lifecycle/suspend"),
        &manage,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    // Read endpoints need okta.users.read.
    let only_manage = access_token(&okta, "okta.users.manage").await;
    let resp = bearer(
        &okta,
        Method::GET,
        &format!("/api/v1/users/{id}"),
        &only_manage,
        None,
    )
    .await;
    okta_error(resp, StatusCode::FORBIDDEN, "E0000006").await;
}
