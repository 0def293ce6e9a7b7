//! The optional MFA connector: exact XML requests, documented answers, and the off-by-default behaviour.

use crate::support::*;
use fctr_entra::{ConnectorOtpMode, EntraAdapter};
use fctr_ports::{
    ChallengeContext, ChallengeHandle, ChallengeState, ChallengeTicket, Challenger, CodeVerdict,
    FactorKind, FactorStatus, FailureReason, IdentityProvider, PortError,
};
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{any, header, method, path};
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const NS_I: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The body equals `want` once the `<ContextId>` value (which must be a UUID) is replaced by `{CONTEXT}`.
struct ExactXml(String);

impl Match for ExactXml {
    fn matches(&self, request: &Request) -> bool {
        let Ok(body) = std::str::from_utf8(&request.body) else {
            return false;
        };
        let (Some(start), Some(end)) = (body.find("<ContextId>"), body.find("</ContextId>")) else {
            return false;
        };
        let id = &body[start + "<ContextId>".len()..end];
        if uuid::Uuid::parse_str(id).is_err() {
            return false;
        }
        body.replacen(id, "{CONTEXT}", 1) == self.0
    }
}

fn begin_xml(method_id: &str, override_otp: bool, sync: bool) -> String {
    format!(
        "<BeginTwoWayAuthenticationRequest><Version>1.0</Version><UserPrincipalName>{UPN}</UserPrincipalName>\
         <Lcid>en-us</Lcid><AuthenticationMethodId>{method_id}</AuthenticationMethodId>\
         <AuthenticationMethodProperties xmlns:a=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\">\
         <a:KeyValueOfstringstring><a:Key>OverrideVoiceOtp</a:Key><a:Value>false</a:Value></a:KeyValueOfstringstring>\
         <a:KeyValueOfstringstring><a:Key>OverrideNumberMatchingWithOTP</a:Key><a:Value>{override_otp}</a:Value></a:KeyValueOfstringstring>\
         </AuthenticationMethodProperties><ContextId>{{CONTEXT}}</ContextId><SyncCall>{sync}</SyncCall>\
         <RequireUserMatch>true</RequireUserMatch><CallerName>fctr</CallerName><CallerIP>UNKNOWN:</CallerIP>\
         </BeginTwoWayAuthenticationRequest>"
    )
}

fn end_xml(session: &str, code: &str) -> String {
    format!(
        "<EndTwoWayAuthenticationRequest><Version>1.0</Version><SessionId>{session}</SessionId>\
         <ContextId>{{CONTEXT}}</ContextId><AdditionalAuthData>{code}</AdditionalAuthData>\
         <UserPrincipalName>{UPN}</UserPrincipalName></EndTwoWayAuthenticationRequest>"
    )
}

fn begin_answer(value: &str, auth: Option<&str>, session: &str, affinity: &str) -> String {
    let auth = auth.map_or_else(
        || "<AuthenticationResult i:nil=\"true\"/>".to_owned(),
        |a| format!("<AuthenticationResult>{a}</AuthenticationResult>"),
    );
    format!(
        "<BeginTwoWayAuthenticationResponse xmlns:i=\"{NS_I}\"><Version>1</Version><Result><Value>{value}</Value>\
         <Message i:nil=\"true\"/><Retry>false</Retry><Error i:nil=\"true\"/><Exception i:nil=\"true\"/>\
         <RenewCert>false</RenewCert></Result><SessionId>{session}</SessionId>{auth}\
         <UserPrincipalName>{UPN}</UserPrincipalName><AffinityUrl>{affinity}</AffinityUrl>\
         <ValidEntropyNumber>0</ValidEntropyNumber></BeginTwoWayAuthenticationResponse>"
    )
}

fn end_answer(value: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or_else(
        || "<AuthenticationResult i:nil=\"true\"/>".to_owned(),
        |a| format!("<AuthenticationResult>{a}</AuthenticationResult>"),
    );
    format!(
        "<EndTwoWayAuthenticationResponse xmlns:i=\"{NS_I}\"><Version>1</Version><Result><Value>{value}</Value>\
         <Message i:nil=\"true\"/><Retry>false</Retry><Error i:nil=\"true\"/><Exception i:nil=\"true\"/>\
         <RenewCert>false</RenewCert></Result>{auth}<LocationData i:nil=\"true\"/>\
         <CompletedInteractively>true</CompletedInteractively></EndTwoWayAuthenticationResponse>"
    )
}

fn xml(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/xml; charset=utf-8")
}

fn connector(op: &str) -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(format!("{CONNECTOR_PATH}{op}")))
        .and(header(
            "authorization",
            format!("Bearer {CONNECTOR_TOKEN}").as_str(),
        ))
        .and(header("content-type", "application/xml"))
        .and(header("accept", "application/xml"))
        .and(header("user-agent", UA))
}

const SESSION: &str = "270867b8-6bac-434b-9a2a-cb682f461cbe";

/// Graph token + user lookup + connector token, each expected once.
async fn mount_basics(server: &MockServer) {
    mount_token(server, 1).await;
    mount_user(server, user_json(), 1).await;
    mount_connector_token(server, 1).await;
}

async fn settle(a: &EntraAdapter, ticket: &ChallengeTicket) -> ChallengeState {
    for _ in 0..100 {
        let s = a.poll(ticket).await.unwrap();
        if s.is_final() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("challenge never settled");
}

fn push_factor() -> fctr_ports::FactorInfo {
    factor("a1", FactorKind::Push)
}

#[tokio::test]
async fn push_sends_the_exact_begin_request_and_reads_approval() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    connector("BeginTwoWayAuthentication")
        .and(no_query())
        .and(ExactXml(begin_xml("PhoneAppNotification", false, true)))
        .respond_with(xml(begin_answer("Success", Some("true"), SESSION, "")))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    let caps = a.capabilities();
    assert!(caps.push && caps.code_verification && !caps.push_number_matching);
    let before = chrono::Utc::now();
    let t = a
        .start(&subject(), &push_factor(), &ChallengeContext::default())
        .await
        .unwrap();
    assert_eq!(t.number, None);
    assert_eq!(t.factor.as_str(), "a1");
    uuid::Uuid::parse_str(t.handle.as_str()).unwrap();
    let ttl = (t.expires_at - before).num_seconds();
    assert!((2..=4).contains(&ttl), "{ttl}");
    assert_eq!(settle(&a, &t).await, ChallengeState::Approved);
    // Polling again is safe and stable.
    assert_eq!(a.poll(&t).await.unwrap(), ChallengeState::Approved);
}

#[tokio::test]
async fn push_answers_map_to_states() {
    let cases = [
        (
            xml(begin_answer("PhoneAppDenied", Some("false"), SESSION, "")),
            ChallengeState::Rejected,
        ),
        (
            xml(begin_answer("PhoneAppFraud", Some("false"), SESSION, "")),
            ChallengeState::Rejected,
        ),
        (
            xml(begin_answer(
                "PhoneAppNoResponse",
                Some("false"),
                SESSION,
                "",
            )),
            ChallengeState::TimedOut,
        ),
        (
            xml(begin_answer("UserNotFound", Some("false"), SESSION, "")),
            ChallengeState::Failed(FailureReason::UnknownResult),
        ),
        (
            xml(begin_answer("Success", None, SESSION, "")),
            ChallengeState::Failed(FailureReason::UnknownResult),
        ),
        (
            xml("<html>oops</html>".into()),
            ChallengeState::Failed(FailureReason::UnknownResult),
        ),
        (
            ResponseTemplate::new(500),
            ChallengeState::Failed(FailureReason::IdpError),
        ),
    ];
    for (resp, want) in cases {
        let server = MockServer::start().await;
        mount_basics(&server).await;
        connector("BeginTwoWayAuthentication")
            .respond_with(resp)
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter_with_connector(&server);
        let t = a
            .start(&subject(), &push_factor(), &ChallengeContext::default())
            .await
            .unwrap();
        assert_eq!(settle(&a, &t).await, want);
    }
}

#[tokio::test]
async fn start_returns_at_once_and_poll_waits_for_the_blocking_call() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    connector("BeginTwoWayAuthentication")
        .respond_with(
            xml(begin_answer("Success", Some("true"), SESSION, ""))
                .set_delay(Duration::from_millis(800)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    let started = std::time::Instant::now();
    let t = a
        .start(&subject(), &push_factor(), &ChallengeContext::default())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(700));
    assert_eq!(a.poll(&t).await.unwrap(), ChallengeState::Waiting);
    assert_eq!(settle(&a, &t).await, ChallengeState::Approved);
}

#[tokio::test]
async fn unknown_handles_fail_closed() {
    let server = MockServer::start().await;
    let a = adapter_with_connector(&server);
    let t = ChallengeTicket {
        factor: fctr_ports::FactorId::parse("a1").unwrap(),
        handle: ChallengeHandle::new("6e7b768e-07e2-4810-8459-485f84f8f204"),
        number: None,
        expires_at: chrono::Utc::now(),
    };
    assert_eq!(
        a.poll(&t).await.unwrap(),
        ChallengeState::Failed(FailureReason::UnknownResult)
    );
}

#[tokio::test]
async fn push_refuses_other_factor_kinds_inactive_factors_and_disabled_users() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let mut u = user_json();
    u["accountEnabled"] = json!(false);
    mount_user(&server, u, 1).await;
    connector("BeginTwoWayAuthentication")
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    let ctx = ChallengeContext::default();
    for kind in [FactorKind::Sms, FactorKind::Voice, FactorKind::Totp] {
        assert!(matches!(
            a.start(&subject(), &factor("x", kind), &ctx).await,
            Err(PortError::Unsupported)
        ));
    }
    let mut inactive = push_factor();
    inactive.status = FactorStatus::Inactive;
    assert!(matches!(
        a.start(&subject(), &inactive, &ctx).await,
        Err(PortError::InvalidState)
    ));
    assert!(matches!(
        a.start(&subject(), &push_factor(), &ctx).await,
        Err(PortError::InvalidState)
    ));
}

#[tokio::test]
async fn without_a_connector_nothing_is_sent_and_everything_is_unsupported() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let a = adapter(&server);
    let caps = a.capabilities();
    assert!(!caps.push && !caps.code_verification && !caps.push_number_matching);
    assert!(matches!(
        a.start(&subject(), &push_factor(), &ChallengeContext::default())
            .await,
        Err(PortError::Unsupported)
    ));
    assert!(matches!(
        a.verify_code(
            &subject(),
            &factor("s1", FactorKind::Totp),
            SecretString::from("123456")
        )
        .await,
        Err(PortError::Unsupported)
    ));
    let t = ChallengeTicket {
        factor: fctr_ports::FactorId::parse("a1").unwrap(),
        handle: ChallengeHandle::new("x"),
        number: None,
        expires_at: chrono::Utc::now(),
    };
    assert!(matches!(a.poll(&t).await, Err(PortError::Unsupported)));
}

#[tokio::test]
async fn totp_goes_through_the_otp_override_and_end_with_the_code() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    let capture = Capture::default();
    connector("BeginTwoWayAuthentication")
        .and(no_query())
        .and(ExactXml(begin_xml("PhoneAppNotification", true, true)))
        .and(capture.clone())
        .respond_with(xml(begin_answer(
            "Success",
            Some("challenge"),
            SESSION,
            "https://evil.example/StrongAuthenticationService.svc/Connector/EndTwoWayAuthentication?dc=KRS&amp;x=1",
        )))
        .expect(1)
        .mount(&server)
        .await;
    // The End call goes to the configured host, with only the dc affinity copied.
    connector("EndTwoWayAuthentication")
        .and(query(&[("dc", "KRS")]))
        .and(ExactXml(end_xml(SESSION, "123456")))
        .and(capture.clone())
        .respond_with(xml(end_answer("Success", Some("true"))))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    let v = a
        .verify_code(
            &subject(),
            &factor("s1", FactorKind::Totp),
            SecretString::from(" 123456 "),
        )
        .await
        .unwrap();
    assert_eq!(v, CodeVerdict::Accepted);
    // Begin and End carry the same ContextId.
    let ids: Vec<String> = capture
        .bodies()
        .iter()
        .map(|b| {
            let s = String::from_utf8(b.clone()).unwrap();
            let start = s.find("<ContextId>").unwrap() + "<ContextId>".len();
            let end = s.find("</ContextId>").unwrap();
            s[start..end].to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn wrong_and_locked_codes() {
    for (value, want) in [
        ("OathCodeIncorrect", CodeVerdict::Wrong),
        ("AuthenticationMethodLocked", CodeVerdict::Locked),
    ] {
        let server = MockServer::start().await;
        mount_basics(&server).await;
        connector("BeginTwoWayAuthentication")
            .respond_with(xml(begin_answer("Success", Some("challenge"), SESSION, "")))
            .expect(1)
            .mount(&server)
            .await;
        connector("EndTwoWayAuthentication")
            .and(no_query())
            .respond_with(xml(end_answer(value, Some("false"))))
            .expect(1)
            .mount(&server)
            .await;
        let a = adapter_with_connector(&server);
        let v = a
            .verify_code(
                &subject(),
                &factor("a1", FactorKind::Push),
                SecretString::from("654321"),
            )
            .await
            .unwrap();
        assert_eq!(v, want);
    }
}

#[tokio::test]
async fn a_begin_that_is_not_a_code_challenge_is_never_a_verified_code() {
    for (value, auth) in [
        ("Success", Some("true")),
        ("PhoneAppDenied", Some("false")),
        ("Success", None),
    ] {
        let server = MockServer::start().await;
        mount_basics(&server).await;
        connector("BeginTwoWayAuthentication")
            .respond_with(xml(begin_answer(value, auth, SESSION, "")))
            .expect(1)
            .mount(&server)
            .await;
        connector("EndTwoWayAuthentication")
            .respond_with(xml(end_answer("Success", Some("true"))))
            .expect(0)
            .mount(&server)
            .await;
        let a = adapter_with_connector(&server);
        let e = a
            .verify_code(
                &subject(),
                &factor("s1", FactorKind::Totp),
                SecretString::from("123456"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&e, PortError::Upstream { status: 200, code: Some(c) } if c == &format!("connector:{value}")),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn malformed_codes_are_wrong_without_any_request() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    for code in ["", "12345", "123456789", "12a456", "<x/>123"] {
        assert_eq!(
            a.verify_code(
                &subject(),
                &factor("s1", FactorKind::Totp),
                SecretString::from(code)
            )
            .await
            .unwrap(),
            CodeVerdict::Wrong,
            "{code}"
        );
    }
    assert!(matches!(
        a.verify_code(
            &subject(),
            &factor("p", FactorKind::Sms),
            SecretString::from("123456")
        )
        .await,
        Err(PortError::Unsupported)
    ));
}

#[tokio::test]
async fn phone_app_otp_mode_sends_phoneappotp_without_sync_call() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    connector("BeginTwoWayAuthentication")
        .and(ExactXml(begin_xml("PhoneAppOTP", true, false)))
        .respond_with(xml(begin_answer("Success", None, SESSION, "")))
        .expect(1)
        .mount(&server)
        .await;
    connector("EndTwoWayAuthentication")
        .and(no_query())
        .and(ExactXml(end_xml(SESSION, "12345678")))
        .respond_with(xml(end_answer("Success", Some("true"))))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server, secret());
    let mut conn = connector_config(&server);
    conn.otp_mode = ConnectorOtpMode::PhoneAppOtp;
    c.connector = Some(conn);
    let a = EntraAdapter::new(c).unwrap();
    assert_eq!(
        a.verify_code(
            &subject(),
            &factor("s1", FactorKind::Totp),
            SecretString::from("12345678")
        )
        .await
        .unwrap(),
        CodeVerdict::Accepted
    );
}

#[tokio::test]
async fn connector_http_refusals_map_for_code_checks() {
    let server = MockServer::start().await;
    mount_basics(&server).await;
    connector("BeginTwoWayAuthentication")
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    let e = a
        .verify_code(
            &subject(),
            &factor("s1", FactorKind::Totp),
            SecretString::from("123456"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PortError::Forbidden { missing: Some(m) } if m.contains("Azure Multi-Factor Auth Client")),
        "{e:?}"
    );
}

/// Values only (what the connector uses of a coordinator): enough to stand for the Redis store two replicas share.
#[derive(Default)]
struct SharedValues(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

#[async_trait::async_trait]
impl fctr_ports::Coordinator for SharedValues {
    async fn acquire(&self, _: &str, _: &str, _: Duration) -> Result<bool, PortError> {
        Err(PortError::Unsupported)
    }
    async fn release(&self, _: &str, _: &str) -> Result<(), PortError> {
        Err(PortError::Unsupported)
    }
    async fn publish(&self, _: &str, _: Vec<u8>) -> Result<(), PortError> {
        Err(PortError::Unsupported)
    }
    async fn subscribe(&self, _: &str) -> Result<fctr_ports::Subscription, PortError> {
        Err(PortError::Unsupported)
    }
    async fn put(&self, key: &str, value: Vec<u8>, _: Duration) -> Result<(), PortError> {
        self.0.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

#[tokio::test]
async fn a_push_started_on_one_replica_is_followed_on_another_through_the_shared_store() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_user(&server, user_json(), 1).await;
    mount_connector_token(&server, 1).await;
    connector("BeginTwoWayAuthentication")
        .respond_with(xml(begin_answer("Success", Some("true"), SESSION, "")))
        .expect(1)
        .mount(&server)
        .await;
    let shared = std::sync::Arc::new(SharedValues::default());
    let (a, b) = (
        adapter_with_connector(&server),
        adapter_with_connector(&server),
    );
    let alone = adapter_with_connector(&server);
    a.share_pending_pushes(shared.clone());
    b.share_pending_pushes(shared.clone());
    let t = a
        .start(&subject(), &push_factor(), &ChallengeContext::default())
        .await
        .unwrap();
    assert_eq!(settle(&b, &t).await, ChallengeState::Approved);
    // What the other replica read holds no UPN or caller data.
    let stored = shared
        .0
        .lock()
        .unwrap()
        .values()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8(stored[0].clone()).unwrap();
    assert!(!text.contains(UPN) && !text.contains("@"), "{text}");
    // A replica that does not share pending pushes knows nothing of it: never an approval.
    assert_eq!(
        alone.poll(&t).await.unwrap(),
        ChallengeState::Failed(FailureReason::UnknownResult)
    );
}

#[tokio::test]
async fn a_push_is_not_sent_when_the_shared_store_cannot_record_it() {
    struct Down;
    #[async_trait::async_trait]
    impl fctr_ports::Coordinator for Down {
        async fn acquire(&self, _: &str, _: &str, _: Duration) -> Result<bool, PortError> {
            Err(PortError::Unavailable)
        }
        async fn release(&self, _: &str, _: &str) -> Result<(), PortError> {
            Err(PortError::Unavailable)
        }
        async fn publish(&self, _: &str, _: Vec<u8>) -> Result<(), PortError> {
            Err(PortError::Unavailable)
        }
        async fn subscribe(&self, _: &str) -> Result<fctr_ports::Subscription, PortError> {
            Err(PortError::Unavailable)
        }
        async fn put(&self, _: &str, _: Vec<u8>, _: Duration) -> Result<(), PortError> {
            Err(PortError::Unavailable)
        }
        async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, PortError> {
            Err(PortError::Unavailable)
        }
        async fn delete(&self, _: &str) -> Result<(), PortError> {
            Err(PortError::Unavailable)
        }
    }
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    mount_user(&server, user_json(), 1).await;
    mount_connector_token(&server, 1).await;
    connector("BeginTwoWayAuthentication")
        .respond_with(xml(begin_answer("Success", Some("true"), SESSION, "")))
        .expect(0)
        .mount(&server)
        .await;
    let a = adapter_with_connector(&server);
    a.share_pending_pushes(std::sync::Arc::new(Down));
    let e = a
        .start(&subject(), &push_factor(), &ChallengeContext::default())
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Unavailable), "{e:?}");
}
