//! Error mapping, GET retries, rate budget and slowing down, transport failures.

use crate::support::*;
use fctr_okta::{OktaAdapter, OktaAuth};
use fctr_ports::{Directory, PortError, SecretString, UserQuery};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};
use wiremock::matchers::header;
use wiremock::{MockServer, ResponseTemplate};

const USER: &str = "/api/v1/users/00u1";

async fn get_user_answering(t: ResponseTemplate) -> Result<fctr_ports::UserRecord, PortError> {
    let server = MockServer::start().await;
    pinned("GET", USER, None)
        .respond_with(t)
        .expect(1)
        .mount(&server)
        .await;
    ssws(&server).get_user(&sid("00u1")).await
}

#[tokio::test]
async fn status_401_is_unauthorized_without_retry_for_ssws() {
    let e = get_user_answering(
        ResponseTemplate::new(401).set_body_json(okta_error("E0000011", "Invalid token provided")),
    )
    .await;
    assert!(matches!(e, Err(PortError::Unauthorized)), "{e:?}");
}

#[tokio::test]
async fn status_403_e0000006_names_the_admin_role() {
    let e = get_user_answering(
        ResponseTemplate::new(403)
            .set_body_json(okta_error("E0000006", "You do not have permission")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, PortError::Forbidden { missing: Some(m) } if m == "an Okta admin role covering this user")
    );
    assert_eq!(
        e.to_string(),
        "forbidden: missing an Okta admin role covering this user"
    );
}

#[tokio::test]
async fn status_403_insufficient_scope_names_the_scope() {
    let e = get_user_answering(
        ResponseTemplate::new(403)
            .insert_header(
                "www-authenticate",
                r#"Bearer authorization_uri="http://x/oauth2/v1/authorize", realm="IdP", scope="okta.users.read", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="/api/v1/users/00u1""#,
            )
            .set_body_json(okta_error("E0000006", "no")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "forbidden: missing scope okta.users.read");
}

#[tokio::test]
async fn status_404_is_not_found() {
    let e = get_user_answering(ResponseTemplate::new(404).set_body_json(okta_error(
        "E0000007",
        "Not found: Resource not found: 00u1 (User)",
    )))
    .await;
    assert!(matches!(e, Err(PortError::NotFound)));
}

#[tokio::test]
async fn status_5xx_is_upstream_with_the_code_and_a_get_is_not_retried() {
    let e = get_user_answering(
        ResponseTemplate::new(500).set_body_json(okta_error("E0000009", "Internal Server Error")),
    )
    .await;
    assert!(
        matches!(e, Err(PortError::Upstream { status: 500, code: Some(ref c) }) if c == "E0000009"),
        "{e:?}"
    );
    let e =
        get_user_answering(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
            .await;
    assert!(
        matches!(
            e,
            Err(PortError::Upstream {
                status: 502,
                code: None
            })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn bad_json_is_malformed() {
    let e =
        get_user_answering(ResponseTemplate::new(200).set_body_string("{\"id\": \"00u1\", ")).await;
    assert!(matches!(e, Err(PortError::Malformed)));
    // Valid JSON without a login, or with an id the port refuses.
    let e = get_user_answering(
        ResponseTemplate::new(200).set_body_json(json!({"id": "00u1", "profile": {}})),
    )
    .await;
    assert!(matches!(e, Err(PortError::Malformed)));
    let e = get_user_answering(ResponseTemplate::new(200).set_body_json(user_json("../x"))).await;
    assert!(matches!(e, Err(PortError::Malformed)));
}

fn rate_limited(reset_ahead: u64, request_id: &str) -> ResponseTemplate {
    let date = SystemTime::now();
    let reset = date
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + reset_ahead;
    ResponseTemplate::new(429)
        .insert_header("date", httpdate::fmt_http_date(date).as_str())
        .insert_header("x-rate-limit-limit", "600")
        .insert_header("x-rate-limit-remaining", "0")
        .insert_header("x-rate-limit-reset", reset.to_string().as_str())
        .insert_header("x-okta-request-id", request_id)
        .set_body_json(okta_error(
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        ))
}

#[tokio::test]
async fn a_rate_limited_get_is_resent_with_okta_retry_headers() {
    let server = MockServer::start().await;
    pinned("GET", USER, None)
        .and(NoHeader("x-okta-retry-count"))
        .respond_with(rate_limited(0, "reqA"))
        .expect(1)
        .mount(&server)
        .await;
    pinned("GET", USER, None)
        .and(header("x-okta-retry-for", "reqA"))
        .and(header("x-okta-retry-count", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u1")))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let u = ssws(&server).get_user(&sid("00u1")).await.unwrap();
    assert_eq!(u.id.as_str(), "00u1");
    // Waited Reset − Date + 1 s.
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_get_gets_at_most_two_retries_then_rate_limited() {
    let server = MockServer::start().await;
    pinned("GET", USER, None)
        .respond_with(rate_limited(0, "reqB"))
        .expect(3)
        .mount(&server)
        .await;
    let e = ssws(&server).get_user(&sid("00u1")).await;
    assert!(
        matches!(e, Err(PortError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(1)),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_get_whose_reset_is_far_is_not_waited_out() {
    let server = MockServer::start().await;
    pinned("GET", USER, None)
        .respond_with(rate_limited(30, "reqC"))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let e = ssws(&server).get_user(&sid("00u1")).await;
    assert!(
        matches!(e, Err(PortError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(31)),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_falls_back_to_retry_after_header_then_60s() {
    let e = get_user_answering(ResponseTemplate::new(429).insert_header("retry-after", "45")).await;
    assert!(
        matches!(e, Err(PortError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(45)),
        "{e:?}"
    );
    let e = get_user_answering(ResponseTemplate::new(429)).await;
    assert!(
        matches!(e, Err(PortError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(60)),
        "{e:?}"
    );
}

#[tokio::test]
async fn rate_budget_is_visible_and_low_budget_slows_requests_down() {
    let server = MockServer::start().await;
    let date = SystemTime::now();
    let reset = date
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 40;
    pinned("GET", USER, None)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("date", httpdate::fmt_http_date(date).as_str())
                .insert_header("x-rate-limit-limit", "600")
                .insert_header("x-rate-limit-remaining", "3")
                .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                .set_body_json(user_json("00u1")),
        )
        .expect(2)
        .mount(&server)
        .await;
    let mut c = config(&server, OktaAuth::ApiToken(SecretString::from(SSWS)));
    c.max_slow_down = Duration::from_millis(300);
    let okta = OktaAdapter::new(c).unwrap();
    assert!(okta.rate_budget().is_none());
    okta.get_user(&sid("00u1")).await.unwrap();
    let b = okta.rate_budget().unwrap();
    assert_eq!((b.bucket, b.limit, b.remaining), ("users.get", 600, 3));
    let secs = (b.resets_at - chrono::Utc::now()).num_seconds();
    assert!((38..=40).contains(&secs), "{secs}");
    assert_eq!(okta.rate_budgets().len(), 1);
    // 3 of 600 left (< 5 %): the next call waits min(40 s / 4, 300 ms).
    let started = Instant::now();
    okta.get_user(&sid("00u1")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_healthy_budget_does_not_slow_down() {
    let server = MockServer::start().await;
    pinned("GET", USER, None)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-rate-limit-limit", "600")
                .insert_header("x-rate-limit-remaining", "500")
                .insert_header("x-rate-limit-reset", "99999999999")
                .set_body_json(user_json("00u1")),
        )
        .expect(2)
        .mount(&server)
        .await;
    let mut c = config(&server, OktaAuth::ApiToken(SecretString::from(SSWS)));
    c.max_slow_down = Duration::from_secs(2);
    let okta = OktaAdapter::new(c).unwrap();
    okta.get_user(&sid("00u1")).await.unwrap();
    let started = Instant::now();
    okta.get_user(&sid("00u1")).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // Bind a port, then free it: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut c = fctr_okta::OktaConfig::new(
        format!("http://127.0.0.1:{port}").parse().unwrap(),
        OktaAuth::ApiToken(SecretString::from(SSWS)),
    );
    c.connect_timeout = Duration::from_secs(1);
    let okta = OktaAdapter::new(c).unwrap();
    assert!(matches!(
        okta.get_user(&sid("00u1")).await,
        Err(PortError::Unavailable)
    ));
}

#[tokio::test]
async fn a_slow_answer_is_timeout_and_not_retried() {
    let server = MockServer::start().await;
    pinned("GET", USER, None)
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_millis(1500))
                .set_body_json(user_json("00u1")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server, OktaAuth::ApiToken(SecretString::from(SSWS)));
    c.request_timeout = Duration::from_millis(300);
    let okta = OktaAdapter::new(c).unwrap();
    assert!(matches!(
        okta.get_user(&sid("00u1")).await,
        Err(PortError::Timeout)
    ));
}

#[tokio::test]
async fn error_strings_carry_no_pii_from_the_request_or_the_answer() {
    let server = MockServer::start().await;
    let canary = "canary.person@example.com";
    let template = |status: u16| {
        ResponseTemplate::new(status).set_body_json(okta_error(
            "E0000001",
            &format!("Api validation failed: {canary}"),
        ))
    };
    for status in [400u16, 403, 409, 500, 503] {
        server.reset().await;
        pinned_any_query("GET", "/api/v1/users")
            .respond_with(template(status))
            .expect(1)
            .mount(&server)
            .await;
        let q = UserQuery::login(canary).unwrap();
        let e = ssws(&server).find_users(&q, 5).await.unwrap_err();
        for s in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
            assert!(!s.contains("canary"), "{s}");
            assert!(!s.contains("validation failed"), "{s}");
        }
    }
}
