//! Error classes and the GET retry rules.

use crate::support::*;
use fctr_entra::EntraAdapter;
use fctr_ports::{Directory, PortError};
use std::time::Duration;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn forbidden_names_the_graph_permission_for_each_read() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let denied =
        || ResponseTemplate::new(403).set_body_json(graph_error("Authorization_RequestDenied"));
    graph("GET", &format!("users/{UID}"))
        .respond_with(denied())
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", &format!("users/{UID}/authentication/methods"))
        .respond_with(denied())
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", &format!("users/{UID}/memberOf"))
        .respond_with(denied())
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    let missing = |e: PortError| match e {
        PortError::Forbidden { missing: Some(m) } => m,
        other => panic!("{other:?}"),
    };
    assert!(missing(a.get_user(&subject()).await.unwrap_err()).contains("User.Read.All"));
    assert!(
        missing(a.list_factors(&subject()).await.unwrap_err())
            .contains("UserAuthenticationMethod.Read.All")
    );
    assert!(missing(a.groups(&subject()).await.unwrap_err()).contains("GroupMember.Read.All"));
}

#[tokio::test]
async fn get_is_retried_after_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(graph_error("TooManyRequests")),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    mount_user(&server, user_json(), 1).await;
    adapter(&server).get_user(&subject()).await.unwrap();
}

#[tokio::test]
async fn get_retries_are_bounded() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .expect(3) // the first try + max_rate_limit_retries (2)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server).get_user(&subject()).await,
        Err(PortError::RateLimited { retry_after: Some(d) }) if d.is_zero()
    ));
}

#[tokio::test]
async fn a_long_retry_after_is_returned_not_waited() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server).get_user(&subject()).await,
        Err(PortError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(120)
    ));
}

/// Graph publishes no budget: `poll_budget` is `None` until a 429, then nothing left until its `Retry-After`
/// (what the portal's poller waits out), and `None` again once that has passed.
#[tokio::test]
async fn poll_budget_is_none_until_throttled_then_zero_until_retry_after() {
    use fctr_ports::Challenger as _;
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    graph("GET", &format!("users/{UID}/memberOf"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "60"))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    assert_eq!(a.poll_budget(), None, "not throttled");
    assert!(a.get_user(&subject()).await.is_err());
    let b = a.poll_budget().expect("throttled");
    assert_eq!((b.remaining, b.limit), (0, 0));
    assert!(
        b.reset_in > Duration::from_secs(118) && b.reset_in <= Duration::from_secs(120),
        "{b:?}"
    );
    // A shorter throttle seen later does not shorten the one in force.
    let _ = a.groups(&subject()).await;
    assert!(a.poll_budget().expect("still throttled").reset_in > Duration::from_secs(100));

    // A throttle that has run out (here waited out by the GET retry) is no budget at all.
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_user(&server, user_json(), 1).await;
    let a = adapter(&server);
    a.get_user(&subject()).await.unwrap();
    assert_eq!(a.poll_budget(), None, "the throttle has ended");
}

#[tokio::test]
async fn server_errors_are_upstream_and_not_retried() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "0")
                .set_body_json(graph_error("serviceNotAvailable")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = adapter(&server).get_user(&subject()).await.unwrap_err();
    assert!(
        matches!(&e, PortError::Upstream { status: 503, code: Some(c) } if c == "serviceNotAvailable"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("canary"));
}

#[tokio::test]
async fn bad_json_is_malformed() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": "))
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server).get_user(&subject()).await,
        Err(PortError::Malformed)
    ));
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(user_json())
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&server, secret());
    c.request_timeout = Duration::from_millis(500);
    let a = EntraAdapter::new(c).unwrap();
    assert!(matches!(
        a.get_user(&subject()).await,
        Err(PortError::Timeout)
    ));
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let mut c = config(&server, secret());
    c.graph_base = format!("http://127.0.0.1:{port}/v1.0/").parse().unwrap();
    let a = EntraAdapter::new(c).unwrap();
    assert!(matches!(
        a.get_user(&subject()).await,
        Err(PortError::Unavailable)
    ));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    graph("GET", &format!("users/{UID}"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "https://evil.example/steal"),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        adapter(&server).get_user(&subject()).await,
        Err(PortError::Upstream { status: 302, .. })
    ));
}
