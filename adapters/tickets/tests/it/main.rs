//! Each adapter against wiremock: the exact method, path, auth header and body it sends, and how it reads
//! 4xx, 5xx and 429 answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, FactorKind, NoteOutcome, PortError, SecretString, TicketRef, TicketSink,
    TicketSystem, WorkNote,
};
use fctr_tickets::{ConfigError, TicketAdapter, TicketAuth, TicketConfig};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

fn note() -> WorkNote {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    WorkNote::new(
        NoteOutcome::Done,
        Some(ActionKind::ResetPassword),
        vec![FactorKind::Push],
        at,
        "Ada Agent",
    )
}

const TEXT: &str = "fctr identity verification\nOutcome: done\nAction: reset_password\nVerified with: push\nTime: 2024-05-01T10:00:00Z\nAgent: Ada Agent";

fn basic(user: &str, secret: &str) -> TicketAuth {
    TicketAuth::Basic {
        user: user.into(),
        secret: SecretString::from(secret.to_owned()),
    }
}

fn adapter(server: &MockServer, system: TicketSystem, auth: TicketAuth) -> TicketAdapter {
    TicketAdapter::new(TicketConfig::new(
        system,
        url::Url::parse(&server.uri()).unwrap(),
        auth,
    ))
    .unwrap()
}

fn t(s: &str) -> TicketRef {
    TicketRef::parse(s).unwrap()
}

/// `Basic base64(user:secret)`, computed by hand so the test does not trust the client's encoder.
fn basic_header(user: &str, secret: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{secret}");
    let b = raw.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[test]
fn the_hand_made_basic_header_is_right() {
    assert_eq!(
        basic_header("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
}

#[tokio::test]
async fn servicenow_looks_the_incident_up_then_patches_its_work_notes() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .and(query_param("sysparm_query", "number=INC0012345"))
        .and(query_param("sysparm_fields", "sys_id"))
        .and(query_param("sysparm_limit", "1"))
        .and(header(
            "authorization",
            basic_header("fctr.integration", "pw").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"result": [{"sys_id": SYS_ID}]})),
        )
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("/api/now/table/incident/{SYS_ID}")))
        .and(header(
            "authorization",
            basic_header("fctr.integration", "pw").as_str(),
        ))
        .and(body_json(json!({"work_notes": TEXT})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"result": {"sys_id": SYS_ID}})),
        )
        .expect(1)
        .mount(&s)
        .await;
    let a = adapter(
        &s,
        TicketSystem::ServiceNow,
        basic("fctr.integration", "pw"),
    );
    a.post_note(&t("INC0012345"), &note()).await.unwrap();
}

#[tokio::test]
async fn servicenow_takes_a_bearer_token_and_reports_an_unknown_incident_as_not_found() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/now/table/incident"))
        .and(header("authorization", "Bearer tok-123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"result": []})))
        .expect(1)
        .mount(&s)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&s)
        .await;
    let a = adapter(
        &s,
        TicketSystem::ServiceNow,
        TicketAuth::Bearer(SecretString::from("tok-123".to_owned())),
    );
    assert!(matches!(
        a.post_note(&t("INC0000001"), &note()).await,
        Err(PortError::NotFound)
    ));
}

#[tokio::test]
async fn servicenow_refuses_a_sys_id_that_is_not_one() {
    let s = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"result": [{"sys_id": "../../sys_user/1"}]})),
        )
        .mount(&s)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&s)
        .await;
    let a = adapter(&s, TicketSystem::ServiceNow, basic("u", "p"));
    assert!(matches!(
        a.post_note(&t("INC0012345"), &note()).await,
        Err(PortError::Malformed)
    ));
}

#[tokio::test]
async fn jira_posts_one_adf_comment_with_email_and_api_token() {
    let s = MockServer::start().await;
    let paragraphs: Vec<_> = TEXT
        .lines()
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    assert_eq!(paragraphs.len(), 6);
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/HELP-123/comment"))
        .and(header(
            "authorization",
            basic_header("bot@example.com", "api-tok").as_str(),
        ))
        .and(header("content-type", "application/json"))
        .and(body_json(
            json!({"body": {"type": "doc", "version": 1, "content": paragraphs}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10000"})))
        .expect(1)
        .mount(&s)
        .await;
    let a = adapter(&s, TicketSystem::Jira, basic("bot@example.com", "api-tok"));
    a.post_note(&t("HELP-123"), &note()).await.unwrap();
}

#[tokio::test]
async fn zendesk_puts_a_private_comment_as_email_slash_token() {
    let s = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/api/v2/tickets/12345.json"))
        .and(header(
            "authorization",
            basic_header("bot@example.com/token", "zd-tok").as_str(),
        ))
        .and(body_json(
            json!({"ticket": {"comment": {"body": TEXT, "public": false}}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ticket": {"id": 12345}})))
        .expect(1)
        .mount(&s)
        .await;
    let a = adapter(
        &s,
        TicketSystem::Zendesk,
        basic("bot@example.com", "zd-tok"),
    );
    a.post_note(&t("#12345"), &note()).await.unwrap();
}

#[tokio::test]
async fn a_reference_of_another_systems_shape_sends_nothing() {
    let s = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&s)
        .await;
    for (system, bad) in [
        (TicketSystem::ServiceNow, "HELP-123"),
        (TicketSystem::Jira, "12345"),
        (TicketSystem::Zendesk, "INC0012345"),
    ] {
        let a = adapter(&s, system, basic("u@example.com", "p"));
        assert!(
            matches!(
                a.post_note(&t(bad), &note()).await,
                Err(PortError::InvalidState)
            ),
            "{system} took {bad}"
        );
    }
}

#[tokio::test]
async fn statuses_become_port_errors_and_429_carries_retry_after() {
    type Check = fn(&PortError) -> bool;
    let cases: [(u16, Check); 6] = [
        (400, |e| {
            matches!(e, PortError::Upstream { status: 400, .. })
        }),
        (401, |e| matches!(e, PortError::Unauthorized)),
        (403, |e| matches!(e, PortError::Forbidden { .. })),
        (404, |e| matches!(e, PortError::NotFound)),
        (500, |e| {
            matches!(e, PortError::Upstream { status: 500, .. })
        }),
        (503, |e| {
            matches!(e, PortError::Upstream { status: 503, .. })
        }),
    ];
    for (status, is) in cases {
        let s = MockServer::start().await;
        Mock::given(method("PUT"))
            .respond_with(
                ResponseTemplate::new(status).set_body_string("{\"error\":\"secret echo zd-tok\"}"),
            )
            .expect(1)
            .mount(&s)
            .await;
        let a = adapter(&s, TicketSystem::Zendesk, basic("u@example.com", "zd-tok"));
        let e = a.post_note(&t("777"), &note()).await.unwrap_err();
        assert!(is(&e), "{status}: {e:?}");
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("zd-tok") && !shown.contains("Ada"),
            "{shown}"
        );
    }
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "42"))
        .expect(1)
        .mount(&s)
        .await;
    let a = adapter(&s, TicketSystem::Jira, basic("u@example.com", "p"));
    match a.post_note(&t("IT-9"), &note()).await {
        Err(PortError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(42)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_dead_server_is_unavailable() {
    // A port nothing listens on (wiremock keeps dropped servers listening in a pool).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = TicketAdapter::new(TicketConfig::new(
        TicketSystem::Jira,
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        basic("u@example.com", "p"),
    ))
    .unwrap();
    assert!(matches!(
        a.post_note(&t("IT-9"), &note()).await,
        Err(PortError::Unavailable | PortError::Timeout)
    ));
}

#[test]
fn bad_settings_are_refused_by_name() {
    let cfg = |u: &str, system, auth| {
        TicketAdapter::new(TicketConfig::new(system, url::Url::parse(u).unwrap(), auth)).map(drop)
    };
    assert_eq!(
        cfg(
            "http://example.service-now.com",
            TicketSystem::ServiceNow,
            basic("u", "p")
        ),
        Err(ConfigError::BaseUrl)
    );
    assert_eq!(
        cfg(
            "https://x.atlassian.net/?a=b",
            TicketSystem::Jira,
            basic("u", "p")
        ),
        Err(ConfigError::BaseUrl)
    );
    assert!(matches!(
        cfg(
            "https://x.zendesk.com",
            TicketSystem::Zendesk,
            TicketAuth::Bearer(SecretString::from("t".to_owned()))
        ),
        Err(ConfigError::Auth(_))
    ));
    assert!(matches!(
        cfg(
            "https://x.atlassian.net",
            TicketSystem::Jira,
            basic(" ", "p")
        ),
        Err(ConfigError::Auth(_))
    ));
    assert_eq!(
        cfg(
            "https://x.atlassian.net",
            TicketSystem::Jira,
            basic("u", "p")
        ),
        Ok(())
    );
}
