//! Out-of-band change detection against the fake Okta: the System Log route (paging, filters, scope), the Okta
//! adapter's `ChangeFeed` over it, and the engine's report: a reset through fctr is not reported, one made in the
//! console is (with its admin), and one made with fctr's own credential outside fctr is the most serious.

use super::helpers::*;
use chrono::{TimeDelta, Utc};
use fctr_core::out_of_band::{DEFAULT_TOLERANCE, Severity};
use fctr_core::policy::Policy;
use fctr_core::{Engine, Ports, Pseudonymizer, RequestContext};
use fctr_memory::{MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm};
use fctr_ports::{
    Action, ActionKind, AgentId, ChangeActor, ChangeFeed, KeyId, PortError, SecretString,
    SubjectId, SystemClock, TenantId, VerificationStatus,
};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

fn service_adapter(okta: &FakeOkta) -> OktaAdapter {
    let app = okta.service_app();
    OktaAdapter::new(OktaConfig::new(
        okta.base_url(),
        OktaAuth::PrivateKeyJwt {
            client_id: app.client_id.clone(),
            key_id: app.key_id.clone(),
            private_key_pem: app.private_key_pem.clone(),
            algorithm: SigningAlgorithm::Es256,
            dpop: false,
        },
    ))
    .unwrap()
}

#[tokio::test]
async fn the_system_log_pages_filters_and_needs_its_scope() {
    let okta = start().await;
    let alice = okta.fixtures().id_of("alice");
    for _ in 0..3 {
        okta.console_change("admin@example.com", &alice, "user.account.reset_password");
    }
    okta.console_change("admin@example.com", &alice, "user.session.clear");
    let token = access_token(&okta, "okta.logs.read").await;
    let filter = "eventType eq \"user.account.reset_password\"";
    let first = client()
        .get(url(&okta, "/api/v1/logs"))
        .query(&[("limit", "2"), ("filter", filter)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<serde_json::Value> = first.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["eventType"], "user.account.reset_password");
    assert_eq!(page[0]["actor"]["type"], "User");
    assert_eq!(page[0]["target"][0]["id"], alice.as_str());
    let next = link
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .unwrap()
        .0;
    let second: Vec<serde_json::Value> = client()
        .get(next)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        second.len(),
        1,
        "three resets, the session clear filtered out"
    );
    // `until` before everything: nothing.
    let none: Vec<serde_json::Value> = client()
        .get(url(&okta, "/api/v1/logs"))
        .query(&[("until", "2000-01-01T00:00:00Z")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.is_empty());
    // A token without the scope is refused like any other missing scope.
    let users_only = access_token(&okta, "okta.users.read").await;
    let r = client()
        .get(url(&okta, "/api/v1/logs"))
        .bearer_auth(&users_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn the_adapter_reads_every_page_and_names_the_missing_scope() {
    let okta = start().await;
    let alice = okta.fixtures().id_of("alice");
    // More than one page of 1000.
    for _ in 0..1003 {
        okta.console_change("admin@example.com", &alice, "user.account.unlock_by_admin");
    }
    okta.console_change("admin@example.com", &alice, "user.session.start");
    let feed = service_adapter(&okta);
    let since = Utc::now() - TimeDelta::minutes(5);
    let changes = feed
        .changes(since, Utc::now() + TimeDelta::seconds(1))
        .await
        .unwrap();
    assert_eq!(changes.len(), 1003);
    assert!(changes.iter().all(|c| c.kind == ActionKind::Unlock));
    assert_eq!(
        feed.own_client_id(),
        Some(okta.service_app().client_id.clone())
    );

    let no_logs = start_with(FakeOktaOptions {
        service_app_scopes: vec!["okta.users.read".into(), "okta.users.manage".into()],
        ..FakeOktaOptions::default()
    })
    .await;
    let feed = service_adapter(&no_logs);
    let err = feed
        .changes(since, Utc::now() + TimeDelta::seconds(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PortError::Forbidden { missing: Some(m) } if m == "scope okta.logs.read"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "forbidden: missing scope okta.logs.read");
    // The management token does not depend on the log grant.
    use fctr_ports::Directory as _;
    let bob = SubjectId::parse(no_logs.fixtures().id_of("bob")).unwrap();
    feed.get_user(&bob).await.unwrap();
}

#[tokio::test]
async fn only_changes_made_outside_fctr_are_reported() {
    let okta = start().await;
    let adapter = Arc::new(service_adapter(&okta));
    let clock: Arc<dyn fctr_ports::Clock> = Arc::new(SystemClock);
    let audit = Arc::new(MemoryAuditLog::new());
    let engine = Engine::new(
        Ports {
            idp: adapter.clone(),
            audit: audit.clone(),
            usage: Arc::new(MemoryUsageLedger::new()),
            grants: Arc::new(MemoryGrantStore::new(clock.clone())),
            rate: Arc::new(MemoryRateLimiter::new(clock.clone())),
            clock,
        },
        Arc::new(Policy::parse(include_str!("../../../examples/policy.toml")).unwrap()),
        Pseudonymizer::new(
            KeyId::parse("k1").unwrap(),
            &SecretString::from("out-of-band-test-pseudonym-key-0123456789"),
        )
        .unwrap(),
        TenantId::parse("acme").unwrap(),
    );
    let started = Utc::now() - TimeDelta::seconds(1);
    let ctx = RequestContext::default();
    let agent = engine
        .sign_in(
            AgentId::parse(okta.fixtures().id_of("agent3")).unwrap(),
            &["fctr-tier3".into()],
            &ctx,
        )
        .await
        .unwrap();
    let alice = SubjectId::parse(okta.fixtures().id_of("alice")).unwrap();
    let bob = okta.fixtures().id_of("bob");
    let dave = okta.fixtures().id_of("dave");

    // 1. Through fctr: verify Alice by push, reset her password.
    let v = engine
        .begin_verification(&agent, &ctx, &alice, None)
        .await
        .unwrap();
    let push = okta
        .phones()
        .wait_for_push(alice.as_str(), Duration::from_secs(5))
        .await
        .unwrap();
    okta.phones()
        .approve(&push.transaction_id, push.correct_answer.unwrap())
        .unwrap();
    let mut verified = false;
    for _ in 0..100 {
        if engine
            .poll_verification(&agent, &ctx, v.id)
            .await
            .unwrap()
            .status
            == VerificationStatus::Verified
        {
            verified = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(verified);
    engine
        .perform_action(
            &agent,
            &ctx,
            &alice,
            Action::ResetPassword { send_email: false },
        )
        .await
        .unwrap();

    // 2. In the console: an admin resets Bob's password.
    okta.console_change(
        "rogue.admin@example.com",
        &bob,
        "user.account.reset_password",
    );

    // 3. fctr's own service-app credential, used outside fctr: unlock... Dave's sessions cleared directly.
    let token = access_token(&okta, "okta.users.manage").await;
    let r = client()
        .delete(url(&okta, &format!("/api/v1/users/{dave}/sessions")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let findings = engine
        .out_of_band_changes(
            adapter.as_ref(),
            started,
            Utc::now() + TimeDelta::seconds(1),
            DEFAULT_TOLERANCE,
        )
        .await
        .unwrap();
    let summary: Vec<(Severity, ActionKind, String)> = findings
        .iter()
        .map(|f| (f.severity, f.kind, f.target_id.as_str().to_owned()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                Severity::OutsideGate,
                ActionKind::ResetPassword,
                bob.clone()
            ),
            (
                Severity::OwnCredential,
                ActionKind::ClearSessions,
                dave.clone()
            ),
        ],
        "Alice's reset went through fctr and is not reported"
    );
    match &findings[0].actor {
        ChangeActor::Admin { display, .. } => {
            assert_eq!(display.expose_pii(), "rogue.admin@example.com")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        findings[1].actor,
        ChangeActor::App {
            client_id: okta.service_app().client_id.clone()
        }
    );
    // Without fctr's audit, Alice's reset would be reported too: the match is what hides it.
    let fresh = Engine::new(
        Ports {
            idp: adapter.clone(),
            audit: Arc::new(MemoryAuditLog::new()),
            usage: Arc::new(MemoryUsageLedger::new()),
            grants: Arc::new(MemoryGrantStore::new(Arc::new(SystemClock))),
            rate: Arc::new(MemoryRateLimiter::new(Arc::new(SystemClock))),
            clock: Arc::new(SystemClock),
        },
        Arc::new(Policy::parse(include_str!("../../../examples/policy.toml")).unwrap()),
        Pseudonymizer::new(
            KeyId::parse("k1").unwrap(),
            &SecretString::from("out-of-band-test-pseudonym-key-0123456789"),
        )
        .unwrap(),
        TenantId::parse("acme").unwrap(),
    );
    let all = fresh
        .out_of_band_changes(
            adapter.as_ref(),
            started,
            Utc::now() + TimeDelta::seconds(1),
            DEFAULT_TOLERANCE,
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        all.iter()
            .filter(|f| f.severity == Severity::OwnCredential)
            .count(),
        2,
        "fctr's reset of Alice, unaudited, looks like its credential used outside it"
    );
    drop(audit);
}
