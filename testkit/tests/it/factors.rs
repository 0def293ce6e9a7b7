use std::time::Duration;

use fctr_testkit::okta::{FakeOkta, FakeOktaOptions, PushState, base32_decode, totp_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn ids(okta: &FakeOkta, handle: &str, factor_type: &str) -> (String, String) {
    (
        okta.fixtures().id_of(handle),
        okta.fixtures()
            .factor(handle, factor_type)
            .unwrap()
            .id
            .clone(),
    )
}

#[tokio::test]
async fn list_factors_shape() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let resp = get(&okta, &format!("/api/v1/users/{id}/factors")).await;
    assert_eq!(resp.status(), 200);
    let list: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(list.len(), 2);
    let push = &list[0];
    assert_eq!(push["factorType"], "push");
    assert_eq!(push["provider"], "OKTA");
    assert_eq!(push["vendorName"], "OKTA");
    assert_eq!(push["status"], "ACTIVE");
    assert_eq!(push["profile"]["credentialId"], "alice@example.com");
    assert_eq!(push["profile"]["platform"], "IOS");
    assert!(push["created"].is_string() && push["lastUpdated"].is_string());
    assert!(
        push["_links"]["verify"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/verify")
    );
    assert_eq!(list[1]["factorType"], "token:software:totp");
    let bob = okta.fixtures().id_of("bob");
    let list: Vec<Value> = get(&okta, &format!("/api/v1/users/{bob}/factors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[1]["provider"], "GOOGLE");
    let heidi = okta.fixtures().id_of("heidi");
    let list: Vec<Value> = get(&okta, &format!("/api/v1/users/{heidi}/factors"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["factorType"], "sms");
    assert!(list[0]["profile"]["phoneNumber"].is_string());
    let ivan = okta.fixtures().id_of("ivan");
    let list: Vec<Value> = get(&okta, &format!("/api/v1/users/{ivan}/factors"))
        .await
        .json()
        .await
        .unwrap();
    assert!(list.is_empty());
    // {userId} must be the id, not the login.
    okta_error(
        get(&okta, "/api/v1/users/alice%40example.com/factors").await,
        StatusCode::NOT_FOUND,
        "E0000007",
    )
    .await;
    // Single factor, and unknown factor.
    let (uid, fid) = ids(&okta, "alice", "push");
    let f: Value = get(&okta, &format!("/api/v1/users/{uid}/factors/{fid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(f["id"], fid);
    okta_error(
        get(&okta, &format!("/api/v1/users/{uid}/factors/opfnope")).await,
        StatusCode::NOT_FOUND,
        "E0000007",
    )
    .await;
}

async fn push(okta: &FakeOkta, handle: &str, nmc: bool) -> Value {
    let (uid, fid) = ids(okta, handle, "push");
    let body = nmc.then(|| json!({"useNumberMatchingChallenge": true}));
    let resp = post(
        okta,
        &format!("/api/v1/users/{uid}/factors/{fid}/verify"),
        body,
    )
    .await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn poll(okta: &FakeOkta, body: &Value) -> Value {
    let href = body["_links"]["poll"]["href"].as_str().unwrap();
    let resp = client()
        .get(href)
        .header("Authorization", format!("SSWS {}", okta.api_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn tx_id(body: &Value) -> String {
    body["_links"]["poll"]["href"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn push_with_number_matching_approved_with_right_number() {
    let okta = start().await;
    let body = push(&okta, "alice", true).await;
    assert_eq!(body["factorResult"], "WAITING");
    assert!(body["expiresAt"].is_string());
    assert_eq!(body["profile"]["credentialId"], "alice@example.com");
    assert_eq!(body["_links"]["poll"]["hints"]["allow"], json!(["GET"]));
    assert_eq!(
        body["_links"]["cancel"]["href"],
        body["_links"]["poll"]["href"]
    );
    let n = body["_embedded"]["challenge"]["correctAnswer"]
        .as_u64()
        .unwrap();
    assert!((10..=99).contains(&n));
    let tx = tx_id(&body);
    assert!(tx.starts_with("v2mst."));

    let waiting = poll(&okta, &body).await;
    assert_eq!(waiting["factorResult"], "WAITING");
    assert_eq!(
        waiting["_embedded"]["challenge"]["correctAnswer"].as_u64(),
        Some(n)
    );

    let pending = okta.phones().pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].transaction_id, tx);
    assert_eq!(pending[0].correct_answer, Some(u8::try_from(n).unwrap()));
    assert_eq!(pending[0].choices.len(), 3);
    assert!(pending[0].choices.contains(&u8::try_from(n).unwrap()));
    assert_eq!(pending[0].user_agent.as_deref(), Some("fctr-it/1.0"));

    assert_eq!(
        okta.phones()
            .approve(&tx, u8::try_from(n).unwrap())
            .unwrap(),
        PushState::Success
    );
    assert_eq!(poll(&okta, &body).await, json!({"factorResult": "SUCCESS"}));
    assert!(okta.phones().pending().is_empty());
    assert_eq!(okta.effects("alice").unwrap().pushes_sent, 1);
}

#[tokio::test]
async fn push_wrong_number_and_deny_are_rejected() {
    let okta = start().await;
    let body = push(&okta, "alice", true).await;
    let n = u8::try_from(
        body["_embedded"]["challenge"]["correctAnswer"]
            .as_u64()
            .unwrap(),
    )
    .unwrap();
    let wrong = if n == 99 { 98 } else { n + 1 };
    assert_eq!(
        okta.phones().approve(&tx_id(&body), wrong).unwrap(),
        PushState::Rejected
    );
    let r = poll(&okta, &body).await;
    assert_eq!(r["factorResult"], "REJECTED");
    assert!(
        r["_links"]["verify"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/verify")
    );
    assert!(r["_links"]["factor"].is_object());
    assert!(r["profile"]["credentialId"].is_string());

    let body = push(&okta, "bob", true).await;
    // Through the control API this time.
    let resp = client()
        .post(url(
            &okta,
            &format!("/_fake/pushes/{}/answer", tx_id(&body)),
        ))
        .json(&json!({"action": "deny"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(poll(&okta, &body).await["factorResult"], "REJECTED");
    // Answering again conflicts.
    let resp = client()
        .post(url(
            &okta,
            &format!("/_fake/pushes/{}/answer", tx_id(&body)),
        ))
        .json(&json!({"action": "approve", "number": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
}

#[tokio::test]
async fn push_without_number_matching_has_no_challenge() {
    let okta = start().await;
    let body = push(&okta, "alice", false).await;
    assert!(body.get("_embedded").is_none());
    let resp: Vec<Value> = client()
        .get(url(&okta, "/_fake/pushes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp.len(), 1);
    assert!(resp[0]["correctAnswer"].is_null());
    let resp = client()
        .post(url(
            &okta,
            &format!("/_fake/pushes/{}/answer", tx_id(&body)),
        ))
        .json(&json!({"action": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(poll(&okta, &body).await["factorResult"], "SUCCESS");
}

#[tokio::test]
async fn push_ignored_times_out() {
    let okta = start().await;
    let body = push(&okta, "alice", true).await;
    okta.phones().ignore(&tx_id(&body)).unwrap();
    assert_eq!(poll(&okta, &body).await["factorResult"], "WAITING");
    okta.state().advance_clock(61);
    let r = poll(&okta, &body).await;
    assert_eq!(r["factorResult"], "TIMEOUT");
    assert!(r["_links"]["verify"].is_object());
    assert!(okta.phones().pending().is_empty());
}

#[tokio::test]
async fn push_times_out_on_real_time_too() {
    let okta = start_with(FakeOktaOptions {
        push_timeout: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let body = push(&okta, "bob", true).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(poll(&okta, &body).await["factorResult"], "TIMEOUT");
}

#[tokio::test]
async fn unknown_transaction_is_404_e0000191() {
    let okta = start().await;
    let (uid, fid) = ids(&okta, "alice", "push");
    let resp = get(
        &okta,
        &format!("/api/v1/users/{uid}/factors/{fid}/transactions/v2mst.nope"),
    )
    .await;
    okta_error(resp, StatusCode::NOT_FOUND, "E0000191").await;
    // A transaction of another user is not found either.
    let body = push(&okta, "bob", true).await;
    let resp = get(
        &okta,
        &format!(
            "/api/v1/users/{uid}/factors/{fid}/transactions/{}",
            tx_id(&body)
        ),
    )
    .await;
    okta_error(resp, StatusCode::NOT_FOUND, "E0000191").await;
}

#[tokio::test]
async fn verify_validation_errors() {
    let okta = start().await;
    let (uid, fid) = ids(&okta, "alice", "push");
    let path = format!("/api/v1/users/{uid}/factors/{fid}/verify");
    let resp = client()
        .post(url(&okta, &path))
        .header("Authorization", format!("SSWS {}", okta.api_token()))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    okta_error(resp, StatusCode::BAD_REQUEST, "E0000003").await;
    let resp = post(
        &okta,
        &path,
        Some(json!({"useNumberMatchingChallenge": "yes"})),
    )
    .await;
    okta_error(resp, StatusCode::BAD_REQUEST, "E0000001").await;
    let resp = post(
        &okta,
        &format!("/api/v1/users/{uid}/factors/nope/verify"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::NOT_FOUND, "E0000007").await;
    let resp = post(
        &okta,
        "/api/v1/users/00unobody0000000000/factors/x/verify",
        None,
    )
    .await;
    okta_error(resp, StatusCode::NOT_FOUND, "E0000007").await;
    let (uid, fid) = ids(&okta, "alice", "token:software:totp");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{uid}/factors/{fid}/verify"),
        Some(json!({})),
    )
    .await;
    okta_error(resp, StatusCode::BAD_REQUEST, "E0000001").await;
}

fn secret(okta: &FakeOkta, handle: &str) -> Vec<u8> {
    base32_decode(
        okta.fixtures()
            .user(handle)
            .unwrap()
            .totp_secret
            .as_deref()
            .unwrap(),
    )
    .unwrap()
}

async fn verify_code(okta: &FakeOkta, handle: &str, code: &str) -> reqwest::Response {
    let (uid, fid) = ids(okta, handle, "token:software:totp");
    post(
        okta,
        &format!("/api/v1/users/{uid}/factors/{fid}/verify"),
        Some(json!({"passCode": code})),
    )
    .await
}

#[tokio::test]
async fn totp_right_wrong_replayed_and_window() {
    let okta = start().await;
    let code = totp_at(&secret(&okta, "alice"), now());
    assert_eq!(okta.state().totp_now("alice").unwrap().len(), 6);
    let resp = verify_code(&okta, "alice", &code).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"factorResult": "SUCCESS"})
    );

    let body = okta_error(
        verify_code(&okta, "alice", &code).await,
        StatusCode::FORBIDDEN,
        "E0000082",
    )
    .await;
    assert!(body["errorCauses"][0]["errorSummary"].is_string());

    let wrong = if code == "000000" { "000001" } else { "000000" };
    let body = okta_error(
        verify_code(&okta, "alice", wrong).await,
        StatusCode::FORBIDDEN,
        "E0000068",
    )
    .await;
    assert_eq!(body["errorSummary"], "Invalid Passcode/Answer");
    assert_eq!(
        body["errorCauses"][0]["errorSummary"],
        "Your passcode doesn't match our records. Please try again."
    );

    // One step ahead is accepted (clock skew), five steps back is outside the window.
    let bob = secret(&okta, "bob");
    assert_eq!(
        verify_code(&okta, "bob", &totp_at(&bob, now() + 30))
            .await
            .status(),
        200
    );
    okta_error(
        verify_code(&okta, "bob", &totp_at(&bob, now() - 150)).await,
        StatusCode::FORBIDDEN,
        "E0000083",
    )
    .await;
    let e = okta.effects("alice").unwrap();
    assert_eq!((e.passcode_successes, e.passcode_failures), (1, 2));
}

#[tokio::test]
async fn totp_replay_in_body_form_when_switched() {
    let okta = start_with(FakeOktaOptions {
        passcode_replay_as_body: true,
        ..Default::default()
    })
    .await;
    let code = okta.state().totp_now("alice").unwrap();
    assert_eq!(verify_code(&okta, "alice", &code).await.status(), 200);
    let resp = verify_code(&okta, "alice", &code).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"factorResult": "PASSCODE_REPLAYED"})
    );
}

#[tokio::test]
async fn totp_lockout_after_five_wrong_codes() {
    let okta = start().await;
    let right = okta.state().totp_now("alice").unwrap();
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    for _ in 0..4 {
        okta_error(
            verify_code(&okta, "alice", wrong).await,
            StatusCode::FORBIDDEN,
            "E0000068",
        )
        .await;
    }
    okta_error(
        verify_code(&okta, "alice", wrong).await,
        StatusCode::FORBIDDEN,
        "E0000069",
    )
    .await;
    assert_eq!(
        okta.state().user_status("alice").as_deref(),
        Some("LOCKED_OUT")
    );
    // Even the right code is refused now, and pushes too.
    okta_error(
        verify_code(&okta, "alice", &right).await,
        StatusCode::FORBIDDEN,
        "E0000069",
    )
    .await;
    let (uid, fid) = ids(&okta, "alice", "push");
    let resp = post(
        &okta,
        &format!("/api/v1/users/{uid}/factors/{fid}/verify"),
        None,
    )
    .await;
    okta_error(resp, StatusCode::FORBIDDEN, "E0000069").await;
    // Unlock resets it.
    assert_eq!(
        post(
            &okta,
            &format!("/api/v1/users/{uid}/lifecycle/unlock"),
            None
        )
        .await
        .status(),
        200
    );
    assert_eq!(verify_code(&okta, "alice", &right).await.status(), 200);
}

#[tokio::test]
async fn sms_challenge_then_passcode() {
    let okta = start().await;
    let (uid, fid) = ids(&okta, "heidi", "sms");
    let path = format!("/api/v1/users/{uid}/factors/{fid}/verify");
    let resp = post(&okta, &path, None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["factorResult"], "CHALLENGE");
    let code = okta.effects("heidi").unwrap().last_sms_code.unwrap();
    let resp = post(&okta, &path, Some(json!({"passCode": code}))).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["factorResult"],
        "SUCCESS"
    );
}

#[tokio::test]
async fn unverifiable_factor_is_refused() {
    let okta = start().await;
    let (uid, fid) = ids(&okta, "judy", "signed_nonce");
    okta_error(
        post(
            &okta,
            &format!("/api/v1/users/{uid}/factors/{fid}/verify"),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "E0000001",
    )
    .await;
}

#[tokio::test]
async fn verify_needs_manage_scope_and_poll_needs_read() {
    let okta = start().await;
    let read = access_token(&okta, "okta.users.read").await;
    let (uid, fid) = ids(&okta, "alice", "push");
    let path = format!("/api/v1/users/{uid}/factors/{fid}/verify");
    let resp = bearer(
        &okta,
        Method::POST,
        &path,
        &read,
        Some(json!({"useNumberMatchingChallenge": true})),
    )
    .await;
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        www.contains("insufficient_scope") && www.contains("okta.users.manage"),
        "{www}"
    );
    okta_error(resp, StatusCode::FORBIDDEN, "E0000006").await;
    let manage = access_token(&okta, "okta.users.manage").await;
    let resp = bearer(
        &okta,
        Method::POST,
        &path,
        &manage,
        Some(json!({"useNumberMatchingChallenge": true})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let poll_path = body["_links"]["poll"]["href"]
        .as_str()
        .unwrap()
        .replace(okta.base_url().as_str().trim_end_matches('/'), "");
    okta_error(
        bearer(&okta, Method::GET, &poll_path, &manage, None).await,
        StatusCode::FORBIDDEN,
        "E0000006",
    )
    .await;
    assert_eq!(
        bearer(&okta, Method::GET, &poll_path, &read, None)
            .await
            .status(),
        200
    );
}

/// The plain-push switch: the client asks for number matching, the org (or one user) answers without it, as an
/// Okta org whose Okta Verify has number matching off.
#[tokio::test]
async fn plain_push_switch_drops_the_number_challenge_per_user_or_org() {
    let okta = start().await;
    let set = |body: Value| {
        client()
            .post(url(&okta, "/_fake/plain-pushes"))
            .json(&body)
            .send()
    };
    assert_eq!(
        set(json!({"user": "alice", "plain": true}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(push(&okta, "alice", true).await.get("_embedded").is_none());
    assert!(push(&okta, "bob", true).await["_embedded"]["challenge"]["correctAnswer"].is_u64());
    assert_eq!(set(json!({"plain": true})).await.unwrap().status(), 204);
    assert!(push(&okta, "bob", true).await.get("_embedded").is_none());
    assert_eq!(set(json!({"plain": false})).await.unwrap().status(), 204);
    assert_eq!(
        set(json!({"user": "alice", "plain": false}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(push(&okta, "alice", true).await["_embedded"]["challenge"]["correctAnswer"].is_u64());
    assert_eq!(
        set(json!({"user": "nobody-here", "plain": true}))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(set(json!({"plain": "yes"})).await.unwrap().status(), 400);
}
