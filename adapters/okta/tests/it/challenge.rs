//! Challenger: push with number matching, polling (and its SSRF guard), passcode checks.

use crate::support::*;
use chrono::{Duration as TimeDelta, Utc};
use fctr_ports::{
    ChallengeContext, ChallengeHandle, ChallengeState, ChallengeTicket, Challenger, CodeVerdict,
    Directory, FactorId, FactorKind, FactorStatus, FailureReason, PortError, SecretString,
};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_json, header};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VERIFY: &str = "/api/v1/users/00u1/factors/opf1/verify";
const TX: &str = "/api/v1/users/00u1/factors/opf1/transactions/v2mst.GldKV5VxTrifyeZmWSQguA";

fn waiting(server: &MockServer, expires: Option<&str>) -> serde_json::Value {
    let poll = format!("{}{TX}", server.uri());
    json!({
        "factorResult": "WAITING",
        "expiresAt": expires,
        "profile": {"credentialId": "jane.canary@example.com"},
        "_embedded": {"challenge": {"correctAnswer": 72}},
        "_links": {
            "poll": {"href": poll, "hints": {"allow": ["GET"]}},
            "cancel": {"href": poll, "hints": {"allow": ["DELETE"]}}
        }
    })
}

fn ticket(handle: String) -> ChallengeTicket {
    ChallengeTicket {
        factor: FactorId::parse("opf1").unwrap(),
        handle: ChallengeHandle::new(handle),
        number: Some(72),
        expires_at: Utc::now() + TimeDelta::minutes(5),
    }
}

#[tokio::test]
async fn push_sends_number_matching_body_and_returns_the_poll_href_verbatim() {
    let server = MockServer::start().await;
    pinned("POST", VERIFY, None)
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"useNumberMatchingChallenge": true})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(waiting(&server, Some("2099-01-01T00:00:30.000Z"))),
        )
        .expect(1)
        .mount(&server)
        .await;
    let before = Utc::now();
    let t = ssws(&server)
        .start(
            &sid("00u1"),
            &factor("opf1", FactorKind::Push),
            &ChallengeContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(t.number, Some(72));
    assert_eq!(t.handle.as_str(), format!("{}{TX}", server.uri()));
    assert_eq!(t.factor.as_str(), "opf1");
    // expiresAt far in the future is capped at 10 minutes.
    assert!(t.expires_at <= Utc::now() + TimeDelta::minutes(10));
    assert!(t.expires_at >= before + TimeDelta::minutes(10) - TimeDelta::seconds(5));
}

#[tokio::test]
async fn push_expiry_comes_from_expires_at_or_defaults_to_five_minutes() {
    let server = MockServer::start().await;
    let soon = (Utc::now() + TimeDelta::seconds(90)).to_rfc3339();
    Mock::given(wiremock::matchers::path(VERIFY))
        .respond_with(ResponseTemplate::new(201).set_body_json(waiting(&server, Some(&soon))))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path(VERIFY))
        .respond_with(ResponseTemplate::new(201).set_body_json(waiting(&server, None)))
        .expect(1)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let f = factor("opf1", FactorKind::Push);
    let t = okta
        .start(&sid("00u1"), &f, &ChallengeContext::default())
        .await
        .unwrap();
    assert_eq!(t.expires_at.to_rfc3339(), soon);
    let before = Utc::now();
    let t = okta
        .start(&sid("00u1"), &f, &ChallengeContext::default())
        .await
        .unwrap();
    let d = t.expires_at - before;
    assert!(
        d >= TimeDelta::seconds(299) && d <= TimeDelta::seconds(301),
        "{d}"
    );
}

#[tokio::test]
async fn push_refuses_non_push_and_inactive_factors_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let ctx = ChallengeContext::default();
    let e = okta
        .start(&sid("00u1"), &factor("ost1", FactorKind::Totp), &ctx)
        .await;
    assert!(matches!(e, Err(PortError::Unsupported)));
    let mut f = factor("opf1", FactorKind::Push);
    f.status = FactorStatus::Inactive;
    assert!(matches!(
        okta.start(&sid("00u1"), &f, &ctx).await,
        Err(PortError::InvalidState)
    ));
}

#[tokio::test]
async fn push_with_an_off_org_poll_link_is_refused() {
    let server = MockServer::start().await;
    let mut body = waiting(&server, None);
    body["_links"]["poll"]["href"] =
        json!("https://evil.example/api/v1/users/00u1/factors/opf1/transactions/x");
    Mock::given(wiremock::matchers::path(VERIFY))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let e = ssws(&server)
        .start(
            &sid("00u1"),
            &factor("opf1", FactorKind::Push),
            &ChallengeContext::default(),
        )
        .await;
    assert!(matches!(e, Err(PortError::Malformed)));
}

#[tokio::test]
async fn push_is_never_retried_on_429_or_5xx() {
    for status in [429u16, 500, 503] {
        let server = MockServer::start().await;
        pinned("POST", VERIFY, None)
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("x-rate-limit-reset", "0")
                    .set_body_json(okta_error("E0000047", "rate")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let e = ssws(&server)
            .start(
                &sid("00u1"),
                &factor("opf1", FactorKind::Push),
                &ChallengeContext::default(),
            )
            .await
            .unwrap_err();
        match status {
            429 => assert!(
                matches!(
                    e,
                    PortError::RateLimited {
                        retry_after: Some(_)
                    }
                ),
                "{e:?}"
            ),
            s => assert!(
                matches!(e, PortError::Upstream { status, .. } if status == s),
                "{e:?}"
            ),
        }
        drop(server); // verifies expect(1)
    }
}

#[tokio::test]
async fn poll_gets_the_href_exactly_and_maps_every_result() {
    let server = MockServer::start().await;
    let okta = ssws(&server);
    let cases = [
        ("WAITING", ChallengeState::Waiting),
        ("SUCCESS", ChallengeState::Approved),
        ("REJECTED", ChallengeState::Rejected),
        ("TIMEOUT", ChallengeState::TimedOut),
        ("CANCELED", ChallengeState::Failed(FailureReason::Cancelled)),
        (
            "CANCELLED",
            ChallengeState::Failed(FailureReason::Cancelled),
        ),
        (
            "ERROR",
            ChallengeState::Failed(FailureReason::UnknownResult),
        ),
        (
            "SOMETHING_NEW",
            ChallengeState::Failed(FailureReason::UnknownResult),
        ),
    ];
    for (wire, want) in cases {
        server.reset().await;
        pinned("GET", TX, None)
            .and(NoHeader("content-type"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"factorResult": wire})))
            .expect(1)
            .mount(&server)
            .await;
        let got = okta
            .poll(&ticket(format!("{}{TX}", server.uri())))
            .await
            .unwrap();
        assert_eq!(got, want, "{wire}");
    }
}

#[tokio::test]
async fn poll_404_is_timed_out_and_waiting_past_expiry_is_timed_out() {
    let server = MockServer::start().await;
    pinned("GET", TX, None)
        .respond_with(ResponseTemplate::new(404).set_body_json(okta_error("E0000191", "gone")))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    pinned("GET", TX, None)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"factorResult": "WAITING"})))
        .expect(1)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let t = ticket(format!("{}{TX}", server.uri()));
    assert_eq!(okta.poll(&t).await.unwrap(), ChallengeState::TimedOut);
    let mut late = t.clone();
    late.expires_at = Utc::now() - TimeDelta::seconds(1);
    assert_eq!(okta.poll(&late).await.unwrap(), ChallengeState::TimedOut);
}

#[tokio::test]
async fn poll_refuses_handles_off_the_org_without_any_request() {
    let server = MockServer::start().await;
    let evil = MockServer::start().await;
    for s in [&server, &evil] {
        Mock::given(wiremock::matchers::any())
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"factorResult": "SUCCESS"})),
            )
            .expect(0)
            .mount(s)
            .await;
    }
    let okta = ssws(&server);
    let port = url::Url::parse(&server.uri()).unwrap().port().unwrap();
    for bad in [
        format!("{}{TX}", evil.uri()),                // another port
        format!("http://localhost:{port}{TX}"),       // another host name
        format!("https://127.0.0.1:{port}{TX}"),      // another scheme
        format!("{}/api/v1/apps/0oa1", server.uri()), // not a user path
        format!("{}/api/v1/users/../../oauth2/v1/token", server.uri()), // dot segments
        format!("http://user:pw@127.0.0.1:{port}{TX}"), // credentials
        "/api/v1/users/00u1/factors/opf1/transactions/x".to_owned(), // relative
        "not a url".to_owned(),
    ] {
        let e = okta.poll(&ticket(bad.clone())).await;
        assert!(matches!(e, Err(PortError::Malformed)), "{bad}: {e:?}");
    }
}

#[tokio::test]
async fn verify_code_pins_the_passcode_body_and_reads_both_answer_forms() {
    let server = MockServer::start().await;
    let okta = ssws(&server);
    let path = "/api/v1/users/00u1/factors/ost1/verify";
    let cases: Vec<(u16, serde_json::Value, CodeVerdict)> = vec![
        (
            200,
            json!({"factorResult": "SUCCESS"}),
            CodeVerdict::Accepted,
        ),
        (
            403,
            okta_error("E0000068", "Invalid Passcode/Answer"),
            CodeVerdict::Wrong,
        ),
        (403, okta_error("E0000082", "used"), CodeVerdict::Replayed),
        (
            200,
            json!({"factorResult": "PASSCODE_REPLAYED"}),
            CodeVerdict::Replayed,
        ),
        (
            403,
            okta_error("E0000083", "window"),
            CodeVerdict::OutsideWindow,
        ),
        (
            200,
            json!({"factorResult": "TIME_WINDOW_EXCEEDED"}),
            CodeVerdict::OutsideWindow,
        ),
        (403, okta_error("E0000069", "locked"), CodeVerdict::Locked),
    ];
    for (status, body, want) in cases {
        server.reset().await;
        pinned("POST", path, None)
            .and(header("content-type", "application/json"))
            .and(body_json(json!({"passCode": "123456"})))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .expect(1)
            .mount(&server)
            .await;
        let got = okta
            .verify_code(
                &sid("00u1"),
                &factor("ost1", FactorKind::Totp),
                SecretString::from(" 123 456 "),
            )
            .await
            .unwrap();
        assert_eq!(got, want, "{status} {body}");
    }
}

#[tokio::test]
async fn verify_code_refuses_codeless_factors_and_is_not_retried() {
    let server = MockServer::start().await;
    let okta = ssws(&server);
    Mock::given(wiremock::matchers::path(
        "/api/v1/users/00u1/factors/opf1/verify",
    ))
    .respond_with(ResponseTemplate::new(201))
    .expect(0)
    .mount(&server)
    .await;
    let e = okta
        .verify_code(
            &sid("00u1"),
            &factor("opf1", FactorKind::Push),
            SecretString::from("1"),
        )
        .await;
    assert!(matches!(e, Err(PortError::Unsupported)));
    pinned("POST", "/api/v1/users/00u1/factors/oht1/verify", None)
        .respond_with(ResponseTemplate::new(502).set_body_json(okta_error("E0000009", "x")))
        .expect(1)
        .mount(&server)
        .await;
    let e = okta
        .verify_code(
            &sid("00u1"),
            &factor("oht1", FactorKind::Hotp),
            SecretString::from("654321"),
        )
        .await;
    assert!(
        matches!(e, Err(PortError::Upstream { status: 502, ref code }) if code.as_deref() == Some("E0000009"))
    );
}

/// The poller paces itself by `poll_budget`: the figures the poll endpoint's own answers carry, with the time left
/// to the reset, and not those of the factor list (another Okta endpoint, another bucket).
#[tokio::test]
async fn poll_budget_is_what_the_poll_answers_said_and_only_they() {
    let server = MockServer::start().await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    pinned("GET", TX, None)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("date", date.as_str())
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "7")
                .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                .set_body_json(json!({"factorResult": "WAITING"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    pinned("GET", "/api/v1/users/00u1/factors", None)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("date", date.as_str())
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "99")
                .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                .set_body_json(json!([])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    assert_eq!(okta.poll_budget(), None, "nothing observed yet");
    okta.poll(&ticket(format!("{}{TX}", server.uri())))
        .await
        .unwrap();
    okta.list_factors(&sid("00u1")).await.unwrap();
    let b = okta.poll_budget().expect("observed");
    assert_eq!((b.limit, b.remaining), (100, 7), "{b:?}");
    assert!(
        b.reset_in > Duration::from_secs(27) && b.reset_in <= Duration::from_secs(31),
        "{b:?}"
    );
}
