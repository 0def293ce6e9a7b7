//! The contract suite against the fake Okta through the real Okta adapter.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm};
use fctr_ports::{ActionKind, IdentityProvider, SecretString, SubjectId};
use fctr_testkit::contract::{self, Fixture, Target, Verdict};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use std::sync::Arc;
use std::time::Duration;

fn id(s: &str) -> SubjectId {
    SubjectId::parse(s).unwrap()
}

fn ssws(fake: &FakeOkta, token: &str) -> Arc<dyn IdentityProvider> {
    let cfg = OktaConfig::new(
        fake.base_url(),
        OktaAuth::ApiToken(SecretString::from(token.to_owned())),
    );
    Arc::new(OktaAdapter::new(cfg).unwrap())
}

/// The fake, a second fake whose service app lacks `okta.users.manage` (kept alive for the run), and the target.
async fn target(mutating: bool) -> (Arc<FakeOkta>, FakeOkta, Target) {
    let fake = Arc::new(FakeOkta::start(FakeOktaOptions::default()).await.unwrap());
    // A service app that was granted read but not manage: lifecycle calls must come back Forbidden, naming it.
    let ro = FakeOkta::start(FakeOktaOptions {
        service_app_scopes: vec!["okta.users.read".into()],
        ..FakeOktaOptions::default()
    })
    .await
    .unwrap();
    let app = ro.service_app();
    let cfg = OktaConfig::new(
        ro.base_url(),
        OktaAuth::PrivateKeyJwt {
            client_id: app.client_id.clone(),
            key_id: app.key_id.clone(),
            private_key_pem: app.private_key_pem.clone(),
            algorithm: SigningAlgorithm::Es256,
            dpop: false,
        },
    );
    let underprivileged: Arc<dyn IdentityProvider> = Arc::new(OktaAdapter::new(cfg).unwrap());
    let f = fake.fixtures();
    let fixture = Fixture {
        user: Some(id(&f.id_of("alice"))),
        login: Some("alice@example.com".into()),
        missing_user: Some(id("00unobody00000000000")),
        push_user: Some(id(&f.id_of("alice"))),
        totp_user: Some(id(&f.id_of("bob"))),
        lifecycle: vec![
            (ActionKind::ClearSessions, id(&f.id_of("alice"))),
            (ActionKind::ResetPassword, id(&f.id_of("frank"))),
            (ActionKind::ExpirePassword, id(&f.id_of("bob"))),
            (ActionKind::Unlock, id(&f.id_of("erin"))),
            (ActionKind::ResetFactors, id(&f.id_of("dave"))),
            (ActionKind::RemoveFactor, id(&f.id_of("carol"))),
            (ActionKind::Suspend, id(&f.id_of("ivan"))),
            (ActionKind::Unsuspend, id(&f.id_of("grace"))),
            (ActionKind::IssueTemporaryAccessPass, id(&f.id_of("ivan"))),
        ],
    };
    let t = Target {
        idp: ssws(&fake, fake.api_token()),
        fixture,
        phone: Some(fake.clone()),
        codes: Some(fake.clone()),
        faults: Some(fake.clone()),
        upstream: Some(fake.clone()),
        unauthorized: Some(ssws(&fake, "00wrong-token")),
        underprivileged: Some(underprivileged),
        mutating,
        push_wait: Duration::from_secs(5),
    };
    (fake, ro, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_adapter_passes_the_contract_against_the_fake() {
    let (_fake, _ro, t) = target(true).await;
    let results = contract::run(&t).await;
    let table = contract::table(&results);
    println!("{table}");
    assert_eq!(results.len(), contract::CHECKS.len());
    let failed: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
        .collect();
    assert!(failed.is_empty(), "contract failures:\n{table}");
    // Okta cannot issue a TAP: that one check is skipped by capability, and the skip says so.
    for r in &results {
        match (&r.verdict, r.name) {
            (Verdict::Skipped(why), "lifecycle_issue_temporary_access_pass") => {
                assert!(why.starts_with("capability"))
            }
            (Verdict::Skipped(why), name) => panic!("{name} skipped: {why}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_run_skips_mutating_checks_and_says_why() {
    let (fake, _ro, t) = target(false).await;
    let results = contract::run(&t).await;
    for r in results.iter().filter(|r| r.name.starts_with("lifecycle_")) {
        assert!(
            matches!(&r.verdict, Verdict::Skipped(_)),
            "{} ran in a read-only run",
            r.name
        );
    }
    // Nothing was changed upstream.
    assert_eq!(
        fake.state().user_status("erin").as_deref(),
        Some("LOCKED_OUT")
    );
    assert_eq!(fake.effects("alice").unwrap().sessions_revoked, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_adapter_fails_the_contract() {
    // The suite must be able to fail: point the "missing user" at a real one.
    let (fake, _ro, mut t) = target(false).await;
    t.fixture.missing_user = Some(id(&fake.fixtures().id_of("alice")));
    let results = contract::run(&t).await;
    let r = results
        .iter()
        .find(|r| r.name == "lookup_missing_user")
        .unwrap();
    assert!(matches!(r.verdict, Verdict::Failed(_)), "{:?}", r.verdict);
}
