//! The MFA connector: XML Begin/End, sync and async pushes answered by the simulated phone, TOTP checks.

use super::*;
use fctr_testkit::entra::{CONNECTOR_SCOPE, FakeEntra, MFA_CLIENT_ID, PushState};
use std::time::Duration;

async fn mfa_token(e: &FakeEntra) -> String {
    token_for(
        e,
        MFA_CLIENT_ID,
        e.mfa_client().client_secret.expose_secret(),
        CONNECTOR_SCOPE,
    )
    .await
}

fn begin_xml(upn: &str, method: Option<&str>, override_otp: bool, sync: bool) -> String {
    let method = method
        .map(|m| format!("<AuthenticationMethodId>{m}</AuthenticationMethodId>"))
        .unwrap_or_default();
    format!(
        "<BeginTwoWayAuthenticationRequest><Version>1.0</Version><UserPrincipalName>{upn}</UserPrincipalName>\
<Lcid>en-us</Lcid>{method}<AuthenticationMethodProperties xmlns:a=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\">\
<a:KeyValueOfstringstring><a:Key>OverrideVoiceOtp</a:Key><a:Value>false</a:Value></a:KeyValueOfstringstring>\
<a:KeyValueOfstringstring><a:Key>OverrideNumberMatchingWithOTP</a:Key><a:Value>{override_otp}</a:Value></a:KeyValueOfstringstring>\
</AuthenticationMethodProperties><ContextId>{}</ContextId><SyncCall>{sync}</SyncCall><RequireUserMatch>true</RequireUserMatch>\
<CallerName>radius</CallerName><CallerIP>UNKNOWN:</CallerIP></BeginTwoWayAuthenticationRequest>",
        guid()
    )
}

fn end_xml(session: &str, code: Option<&str>, upn: &str) -> String {
    let code = code
        .map(|c| format!("<AdditionalAuthData>{c}</AdditionalAuthData>"))
        .unwrap_or_default();
    format!(
        "<EndTwoWayAuthenticationRequest><Version>1.0</Version><SessionId>{session}</SessionId><ContextId>{}</ContextId>{code}<UserPrincipalName>{upn}</UserPrincipalName></EndTwoWayAuthenticationRequest>",
        guid()
    )
}

async fn call(e: &FakeEntra, token: &str, op: &str, xml: String) -> reqwest::Response {
    client()
        .post(url(
            e,
            &format!("/StrongAuthenticationService.svc/Connector/{op}"),
        ))
        .bearer_auth(token)
        .header("Content-Type", "application/xml")
        .body(xml)
        .send()
        .await
        .unwrap()
}

/// (Result/Value, AuthenticationResult, SessionId, ValidEntropyNumber, Retry) from an answer.
fn read(xml: &str) -> (String, String, String, String, String) {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        xml.find(&open)
            .and_then(|i| {
                let rest = &xml[i + open.len()..];
                rest.find(&format!("</{name}>"))
                    .map(|j| rest[..j].to_owned())
            })
            .unwrap_or_default()
    };
    (
        tag("Value"),
        tag("AuthenticationResult"),
        tag("SessionId"),
        tag("ValidEntropyNumber"),
        tag("Retry"),
    )
}

async fn answer(resp: reqwest::Response) -> (String, String, String, String, String) {
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("<Version>1.0</Version>"), "{text}");
    read(&text)
}

#[tokio::test]
async fn sync_push_approve_deny_and_timeout() {
    let e = std::sync::Arc::new(start().await);
    let t = mfa_token(&e).await;
    for (what, want) in [
        ("approve", "Success"),
        ("deny", "PhoneAppDenied"),
        ("ignore", "PhoneAppNoResponse"),
    ] {
        let e2 = e.clone();
        let t2 = t.clone();
        let begin = tokio::spawn(async move {
            answer(
                call(
                    &e2,
                    &t2,
                    "BeginTwoWayAuthentication",
                    begin_xml(
                        "alice@example.com",
                        Some("PhoneAppNotification"),
                        false,
                        true,
                    ),
                )
                .await,
            )
            .await
        });
        let push = e
            .phones()
            .wait_for_push("alice@example.com", Duration::from_secs(5))
            .await
            .expect("a push");
        assert_eq!(push.number, None, "a sync push is plain approve/deny");
        assert!(push.sync_call);
        assert_eq!(push.caller_name.as_deref(), Some("radius"));
        match what {
            "approve" => assert_eq!(
                e.phones().approve(&push.session_id, None).unwrap(),
                PushState::Approved
            ),
            "deny" => assert_eq!(
                e.phones().deny(&push.session_id).unwrap(),
                PushState::Denied
            ),
            _ => {
                e.phones().ignore(&push.session_id).unwrap();
                e.state().advance_clock(61);
            }
        }
        let (value, result, session, _, _) = begin.await.unwrap();
        assert_eq!(value, want, "{what}");
        assert_eq!(result, if want == "Success" { "true" } else { "false" });
        assert!(!session.is_empty());
        assert!(e.phones().pending().is_empty());
    }
    assert_eq!(e.effects("alice@example.com").unwrap().pushes_sent, 3);
}

#[tokio::test]
async fn async_push_shows_a_number_and_end_polls() {
    let e = start().await;
    let t = mfa_token(&e).await;
    for right in [true, false] {
        let (value, result, session, number, _) = answer(
            call(
                &e,
                &t,
                "BeginTwoWayAuthentication",
                begin_xml(
                    "alice@example.com",
                    Some("PhoneAppNotification"),
                    false,
                    false,
                ),
            )
            .await,
        )
        .await;
        assert_eq!(value, "Success");
        assert_eq!(result, "", "no result yet");
        let n: u8 = number.parse().unwrap();
        let (value, _, _, _, retry) = answer(
            call(
                &e,
                &t,
                "EndTwoWayAuthentication",
                end_xml(&session, None, "alice@example.com"),
            )
            .await,
        )
        .await;
        assert_eq!(
            (value.as_str(), retry.as_str()),
            ("AuthenticationPending", "true")
        );
        let push = e.phones().pending().pop().unwrap();
        assert_eq!(push.number, Some(n));
        assert_eq!(push.choices.len(), 3);
        assert!(push.choices.contains(&n));
        let pick = if right {
            n
        } else {
            push.choices.iter().copied().find(|c| *c != n).unwrap()
        };
        e.phones().approve(&session, Some(pick)).unwrap();
        let (value, result, _, _, _) = answer(
            call(
                &e,
                &t,
                "EndTwoWayAuthentication",
                end_xml(&session, None, "alice@example.com"),
            )
            .await,
        )
        .await;
        if right {
            assert_eq!((value.as_str(), result.as_str()), ("Success", "true"));
        } else {
            assert_eq!(
                (value.as_str(), result.as_str()),
                ("PhoneAppDenied", "false")
            );
        }
        // A finished session is gone.
        let (value, ..) = answer(
            call(
                &e,
                &t,
                "EndTwoWayAuthentication",
                end_xml(&session, None, "alice@example.com"),
            )
            .await,
        )
        .await;
        assert_eq!(value, "InvalidSessionId");
    }
}

async fn otp_session(
    e: &FakeEntra,
    t: &str,
    upn: &str,
    method: &str,
    override_otp: bool,
    sync: bool,
) -> String {
    let (value, result, session, ..) = answer(
        call(
            e,
            t,
            "BeginTwoWayAuthentication",
            begin_xml(upn, Some(method), override_otp, sync),
        )
        .await,
    )
    .await;
    assert_eq!((value.as_str(), result.as_str()), ("Success", "challenge"));
    session
}

#[tokio::test]
async fn otp_right_wrong_duplicate_and_lockout() {
    let e = start().await;
    let t = mfa_token(&e).await;
    let upn = "bob@example.com";
    // The NPS form (override) and the AD FS form (PhoneAppOTP, async) both ask for a code.
    let s = otp_session(&e, &t, upn, "PhoneAppNotification", true, true).await;
    assert!(e.phones().pending().is_empty(), "no push was sent");
    let code = e.state().totp_now(upn).unwrap();
    let (value, result, ..) = answer(
        call(
            &e,
            &t,
            "EndTwoWayAuthentication",
            end_xml(&s, Some(&code), upn),
        )
        .await,
    )
    .await;
    assert_eq!((value.as_str(), result.as_str()), ("Success", "true"));
    let s = otp_session(&e, &t, upn, "PhoneAppOTP", false, false).await;
    let (value, ..) = answer(
        call(
            &e,
            &t,
            "EndTwoWayAuthentication",
            end_xml(&s, Some(&code), upn),
        )
        .await,
    )
    .await;
    assert_eq!(value, "OathCodeDuplicate");
    // The previous step's code is older than the one used.
    let previous = {
        let secret = fctr_testkit::okta::base32_decode(
            e.fixtures()
                .user("bob")
                .unwrap()
                .totp_secret
                .as_deref()
                .unwrap(),
        )
        .unwrap();
        fctr_testkit::okta::totp_at(&secret, now() - 30)
    };
    if previous != code {
        let s = otp_session(&e, &t, upn, "PhoneAppOTP", false, false).await;
        let (value, ..) = answer(
            call(
                &e,
                &t,
                "EndTwoWayAuthentication",
                end_xml(&s, Some(&previous), upn),
            )
            .await,
        )
        .await;
        assert!(
            matches!(value.as_str(), "OathCodeOld" | "OathCodeDuplicate"),
            "{value}"
        );
    }
    // Wrong codes, then the lock.
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    for i in 1..=5 {
        let s = otp_session(&e, &t, upn, "PhoneAppOTP", false, false).await;
        let (value, ..) = answer(
            call(
                &e,
                &t,
                "EndTwoWayAuthentication",
                end_xml(&s, Some(&wrong), upn),
            )
            .await,
        )
        .await;
        assert_eq!(
            value,
            if i < 5 {
                "OathCodeIncorrect"
            } else {
                "AuthenticationMethodLocked"
            }
        );
    }
    let (value, ..) = answer(
        call(
            &e,
            &t,
            "BeginTwoWayAuthentication",
            begin_xml(upn, Some("PhoneAppOTP"), false, false),
        )
        .await,
    )
    .await;
    assert_eq!(value, "AuthenticationMethodLocked");
    // Another user's session cannot be ended as bob.
    let s = otp_session(&e, &t, "alice@example.com", "PhoneAppOTP", false, false).await;
    let (value, ..) = answer(
        call(
            &e,
            &t,
            "EndTwoWayAuthentication",
            end_xml(&s, Some("123456"), upn),
        )
        .await,
    )
    .await;
    assert_eq!(value, "InvalidSessionId");
}

#[tokio::test]
async fn sms_default_method_and_unregistered_users() {
    let e = start().await;
    let t = mfa_token(&e).await;
    // heidi has only a phone: her default method is SMS.
    let (value, result, s, ..) = answer(
        call(
            &e,
            &t,
            "BeginTwoWayAuthentication",
            begin_xml("heidi@example.com", None, false, true),
        )
        .await,
    )
    .await;
    assert_eq!((value.as_str(), result.as_str()), ("Success", "challenge"));
    let code = e
        .effects("heidi@example.com")
        .unwrap()
        .last_sms_code
        .unwrap();
    let (value, ..) = answer(
        call(
            &e,
            &t,
            "EndTwoWayAuthentication",
            end_xml(&s, Some(&code), "heidi@example.com"),
        )
        .await,
    )
    .await;
    assert_eq!(value, "Success");
    let (value, ..) = answer(
        call(
            &e,
            &t,
            "BeginTwoWayAuthentication",
            begin_xml(
                "heidi@example.com",
                Some("PhoneAppNotification"),
                false,
                true,
            ),
        )
        .await,
    )
    .await;
    assert_eq!(value, "PhoneAppNotificationFailed");
    let (value, ..) = answer(
        call(
            &e,
            &t,
            "BeginTwoWayAuthentication",
            begin_xml("nobody@example.com", None, false, true),
        )
        .await,
    )
    .await;
    assert_eq!(value, "UserNotFound");
}

#[tokio::test]
async fn connector_refuses_bad_callers_and_bodies() {
    let e = start().await;
    let t = mfa_token(&e).await;
    let xml = begin_xml("alice@example.com", Some("PhoneAppOTP"), false, false);
    assert_eq!(
        call(&e, "nope", "BeginTwoWayAuthentication", xml.clone())
            .await
            .status(),
        401
    );
    // A Graph token, or a connector token of another app.
    let g = app_token(&e).await;
    assert_eq!(
        call(&e, &g, "BeginTwoWayAuthentication", xml.clone())
            .await
            .status(),
        401
    );
    let app = e.app();
    let other = token_for(
        &e,
        &app.client_id,
        app.client_secret.expose_secret(),
        CONNECTOR_SCOPE,
    )
    .await;
    assert_eq!(
        call(&e, &other, "BeginTwoWayAuthentication", xml.clone())
            .await
            .status(),
        403
    );
    assert_eq!(
        call(&e, &t, "BeginTwoWayAuthentication", "<oops".into())
            .await
            .status(),
        400
    );
    assert_eq!(
        call(&e, &t, "EndTwoWayAuthentication", xml.clone())
            .await
            .status(),
        400
    );
    assert_eq!(call(&e, &t, "Other", xml.clone()).await.status(), 404);
    let resp = client()
        .post(url(
            &e,
            "/StrongAuthenticationService.svc/Connector/BeginTwoWayAuthentication",
        ))
        .bearer_auth(&t)
        .header("Content-Type", "application/json")
        .body(xml.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // The legacy double-slash path works.
    let resp = client()
        .post(url(
            &e,
            "/StrongAuthenticationService.svc/Connector//BeginTwoWayAuthentication",
        ))
        .bearer_auth(&t)
        .header("Content-Type", "application/xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(answer(resp).await.1, "challenge");
}
