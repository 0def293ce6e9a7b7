//! Concurrent reads of one user share one upstream request; nothing is kept afterwards.

use crate::support::*;
use fctr_ports::{Directory, PortError};
use std::time::Duration;
use wiremock::{MockServer, ResponseTemplate};

#[tokio::test]
async fn a_lookups_user_and_risk_facts_reads_share_one_request() {
    let server = MockServer::start().await;
    pinned("GET", "/api/v1/users/00u1", None)
        // Slow enough that both reads are in flight together.
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(user_json("00u1"))
                .set_delay(Duration::from_millis(100)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let id = sid("00u1");
    let (user, risk) = tokio::join!(okta.get_user(&id), okta.risk_facts(&id));
    assert_eq!(user.unwrap().login.expose_pii(), "jane.canary@example.com");
    assert_eq!(
        risk.unwrap().created.unwrap().to_rfc3339(),
        "2024-01-02T03:04:05+00:00"
    );
}

#[tokio::test]
async fn reads_one_after_the_other_each_ask_upstream() {
    let server = MockServer::start().await;
    pinned("GET", "/api/v1/users/00u1", None)
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u1")))
        .expect(2)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let id = sid("00u1");
    okta.get_user(&id).await.unwrap();
    okta.risk_facts(&id).await.unwrap();
}

#[tokio::test]
async fn different_users_are_not_shared() {
    let server = MockServer::start().await;
    for id in ["00u1", "00u2"] {
        pinned("GET", &format!("/api/v1/users/{id}"), None)
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(user_json(id))
                    .set_delay(Duration::from_millis(50)),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let okta = ssws(&server);
    let (u1, u2) = (sid("00u1"), sid("00u2"));
    let (a, b) = tokio::join!(okta.get_user(&u1), okta.get_user(&u2));
    assert_eq!(a.unwrap().id.as_str(), "00u1");
    assert_eq!(b.unwrap().id.as_str(), "00u2");
}

#[tokio::test]
async fn after_a_failed_read_each_caller_asks_for_itself() {
    let server = MockServer::start().await;
    pinned("GET", "/api/v1/users/00u1", None)
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(okta_error("E0000007", "Not found"))
                .set_delay(Duration::from_millis(100)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let id = sid("00u1");
    let (user, risk) = tokio::join!(okta.get_user(&id), okta.risk_facts(&id));
    assert!(matches!(user, Err(PortError::NotFound)), "{user:?}");
    assert!(matches!(risk, Err(PortError::NotFound)), "{risk:?}");
}

#[tokio::test]
async fn a_cancelled_leader_releases_its_followers() {
    let server = MockServer::start().await;
    pinned("GET", "/api/v1/users/00u1", None)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(user_json("00u1"))
                .set_delay(Duration::from_millis(150)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let okta = ssws(&server);
    let id = sid("00u1");
    let leader = okta.get_user(&id);
    let follower = okta.risk_facts(&id);
    tokio::pin!(follower);
    // The leader starts, the follower joins it, then the leader is dropped mid-flight.
    let _ = tokio::time::timeout(Duration::from_millis(30), async {
        tokio::join!(leader, &mut follower)
    })
    .await;
    let risk = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the follower is not left waiting");
    assert!(risk.is_ok(), "{risk:?}");
}
