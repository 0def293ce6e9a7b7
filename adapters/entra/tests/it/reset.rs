//! `ResetFactors` against the fake Entra tenant (which refuses to delete the default method while others remain,
//! as Graph does), plus one wiremock test pinning the exact requests.

use crate::support::*;
use fctr_entra::{EntraAdapter, EntraConfig, EntraCredential, PartialFactorReset};
use fctr_ports::{Action, ActionKind, Directory, FactorKind, Lifecycle, PortError, SubjectId};
use fctr_testkit::entra::{
    FakeEntra, FakeEntraOptions, FixtureMethod, MOBILE_PHONE_METHOD_ID, READER_CLIENT_ID,
    SignInPreferences,
};
use std::collections::BTreeMap;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DELETE: &str = "DELETE /v1.0/users/{id}/authentication/{collection}/{method_id}";
const PREFERENCES: &str = "GET /beta/users/{id}/authentication/signInPreferences";
const PASSWORD_ONLY: [&str; 1] = ["passwordAuthenticationMethod"];

async fn fake() -> FakeEntra {
    FakeEntra::start(FakeEntraOptions::default()).await.unwrap()
}

/// The adapter against the fake, as fctr's app (client secret) or another registration.
fn adapter_as(fake: &FakeEntra, client_id: &str, secret: secrecy::SecretString) -> EntraAdapter {
    let mut cfg = EntraConfig::new(
        fake.tenant_id(),
        client_id,
        EntraCredential::client_secret(secret),
    )
    .unwrap();
    cfg.authority = fake.authority();
    cfg.graph_base = fake.graph_base();
    EntraAdapter::new(cfg).unwrap()
}

fn adapter(fake: &FakeEntra) -> EntraAdapter {
    adapter_as(fake, &fake.app().client_id, fake.client_secret())
}

/// A fixture user's id and UPN.
fn user(fake: &FakeEntra, handle: &str) -> (SubjectId, String) {
    let f = fake.fixtures();
    (SubjectId::parse(f.id_of(handle)).unwrap(), f.upn_of(handle))
}

fn count(log: &BTreeMap<String, u64>, key: &str) -> u64 {
    log.get(key).copied().unwrap_or(0)
}

fn partial(e: &PortError) -> &PartialFactorReset {
    let PortError::Unexpected(inner) = e else {
        panic!("not a partial reset: {e:?}")
    };
    inner
        .downcast_ref::<PartialFactorReset>()
        .unwrap_or_else(|| panic!("not a partial reset: {e:?}"))
}

#[tokio::test]
async fn a_reset_removes_every_removable_method_and_leaves_the_password() {
    let f = fake().await;
    let a = adapter(&f);
    let (id, upn) = user(&f, "ivan");
    let mut registered = Vec::new();
    for m in [
        FixtureMethod::MicrosoftAuthenticator,
        FixtureMethod::MobilePhone,
        FixtureMethod::SoftwareOath,
        FixtureMethod::Fido2,
        FixtureMethod::WindowsHelloForBusiness,
        FixtureMethod::Email,
        FixtureMethod::PlatformCredential,
    ] {
        registered.push(f.register_method(&upn, m).unwrap());
    }
    a.execute(
        &id,
        &Action::IssueTemporaryAccessPass {
            lifetime_minutes: 60,
            one_time: true,
        },
    )
    .await
    .unwrap();
    assert!(f.set_default_method(&upn, Some(&registered[0])));
    assert_eq!(f.method_types(&upn).unwrap().len(), 9, "password + 8");
    let _ = f.take_requests();

    let receipt = a.execute(&id, &Action::ResetFactors).await.unwrap();
    assert_eq!(receipt.kind, ActionKind::ResetFactors);
    assert!(receipt.secret.is_none() && !receipt.emailed);
    assert_eq!(f.method_types(&upn).unwrap(), PASSWORD_ONLY);
    assert_eq!(f.effects(&upn).unwrap().methods_deleted, 8);
    let log = f.take_requests();
    assert_eq!(
        count(&log, DELETE),
        8,
        "one DELETE per method, none refused: {log:?}"
    );
    assert_eq!(count(&log, PREFERENCES), 1, "{log:?}");
    let left: Vec<FactorKind> = a
        .list_factors(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.kind)
        .collect();
    assert_eq!(left, [FactorKind::Password]);
    // A second reset has nothing left to delete: done, without a request that changes anything.
    a.execute(&id, &Action::ResetFactors).await.unwrap();
    assert_eq!(count(&f.take_requests(), DELETE), 0);
}

/// The fake refuses the default method while others remain. Named by `signInPreferences`, it goes last; without
/// it the Authenticator is guessed, and a wrong guess (the phone is the default) costs one refused DELETE.
#[tokio::test]
async fn the_default_goes_last_with_or_without_sign_in_preferences() {
    use SignInPreferences::{Forbidden, NotFound, Served};
    for (mode, phone_is_default, deletes) in [
        (Served, false, 2),
        (Served, true, 2),
        (Forbidden, false, 2),
        (NotFound, false, 2),
        (Forbidden, true, 3),
        (NotFound, true, 3),
    ] {
        let f = fake().await;
        let a = adapter(&f);
        let (id, upn) = user(&f, "alice");
        f.set_sign_in_preferences(mode);
        if phone_is_default {
            assert!(f.set_default_method(&upn, Some(MOBILE_PHONE_METHOD_ID)));
        }
        let case = format!("{mode:?}, phone default {phone_is_default}");
        a.execute(&id, &Action::ResetFactors)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(f.method_types(&upn).unwrap(), PASSWORD_ONLY, "{case}");
        assert_eq!(f.effects(&upn).unwrap().methods_deleted, 2, "{case}");
        let log = f.take_requests();
        assert_eq!(count(&log, DELETE), deletes, "{case}: {log:?}");
        assert_eq!(count(&log, PREFERENCES), 1, "{case}: {log:?}");
    }
}

#[tokio::test]
async fn one_method_needs_no_preference_read() {
    let f = fake().await;
    let (id, upn) = user(&f, "heidi");
    adapter(&f)
        .execute(&id, &Action::ResetFactors)
        .await
        .unwrap();
    assert_eq!(f.method_types(&upn).unwrap(), PASSWORD_ONLY);
    let log = f.take_requests();
    assert_eq!((count(&log, DELETE), count(&log, PREFERENCES)), (1, 0));
}

/// Throttled after the first DELETE: the reset stops, says it was partial, and retries nothing.
#[tokio::test]
async fn a_failure_mid_way_is_an_error_that_says_it_was_partial() {
    let f = fake().await;
    let a = adapter(&f);
    let (id, upn) = user(&f, "alice");
    // One request a minute per route: the methods list, the preference read and the first DELETE pass.
    f.set_rate_limit(1);
    let e = a.execute(&id, &Action::ResetFactors).await.unwrap_err();
    let p = partial(&e);
    assert_eq!((p.removed(), p.total()), (1, 2));
    assert!(
        matches!(p.cause(), PortError::RateLimited { .. }),
        "{:?}",
        p.cause()
    );
    assert!(p.to_string().contains("partial"), "{p}");
    assert_eq!(
        e.code(),
        "unexpected",
        "the engine audits it as a failed action"
    );
    let log = f.take_requests();
    assert_eq!(count(&log, DELETE), 2, "nothing is retried: {log:?}");
    assert_eq!(
        f.method_types(&upn).unwrap(),
        [
            "passwordAuthenticationMethod",
            "microsoftAuthenticatorAuthenticationMethod"
        ],
        "the default, last in line, is still there"
    );
}

/// Refused on the first DELETE: nothing changed, so the error is Graph's own (naming the permission), not partial.
#[tokio::test]
async fn a_refusal_before_anything_changed_is_the_plain_error() {
    let f = fake().await;
    let reader = f.reader_app();
    let a = adapter_as(&f, READER_CLIENT_ID, reader.client_secret);
    let (id, upn) = user(&f, "bob");
    let before = f.method_types(&upn).unwrap();
    let e = a.execute(&id, &Action::ResetFactors).await.unwrap_err();
    match &e {
        PortError::Forbidden { missing: Some(m) } => {
            assert!(m.contains("UserAuthenticationMethod.ReadWrite.All"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.method_types(&upn).unwrap(), before);
    assert_eq!(count(&f.take_requests(), DELETE), 1);
}

#[tokio::test]
async fn an_unknown_user_is_not_found_and_nothing_is_deleted() {
    let f = fake().await;
    let missing = SubjectId::parse("00000000-0000-4000-8000-00000000dead").unwrap();
    let e = adapter(&f)
        .execute(&missing, &Action::ResetFactors)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::NotFound), "{e:?}");
    let log = f.take_requests();
    assert_eq!((count(&log, DELETE), count(&log, PREFERENCES)), (0, 0));
}

#[tokio::test]
async fn no_personal_data_or_method_details_in_errors_or_logs() {
    let (logs, _guard) = Logs::capture();

    let f = fake().await;
    let a = adapter(&f);
    let alice = f.fixtures().user("alice").unwrap().clone();
    let (id, _) = user(&f, "alice");
    let mut texts = Vec::new();
    // Partial (throttled mid-way), with the default guessed wrong first.
    f.set_sign_in_preferences(SignInPreferences::NotFound);
    assert!(f.set_default_method(&alice.upn, Some(MOBILE_PHONE_METHOD_ID)));
    f.set_rate_limit(2);
    let e = a.execute(&id, &Action::ResetFactors).await.unwrap_err();
    let p = partial(&e);
    texts.push(format!("{e} {e:?} {p} {p:?} {}", p.cause()));
    // Refused outright.
    f.set_rate_limit(600);
    let reader = f.reader_app();
    let r = adapter_as(&f, READER_CLIENT_ID, reader.client_secret);
    let (bob, _) = user(&f, "bob");
    let e = r.execute(&bob, &Action::ResetFactors).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    // Done.
    a.execute(&id, &Action::ResetFactors).await.unwrap();

    let logged = logs.text();
    assert!(logged.contains("partial"), "the stop is logged: {logged}");
    let authenticator = alice
        .methods
        .iter()
        .find(|m| m.method == FixtureMethod::MicrosoftAuthenticator)
        .unwrap()
        .id
        .clone();
    let phone = alice.mobile_phone.clone().unwrap();
    for t in texts.iter().chain([&logged]) {
        for pii in [
            alice.upn.as_str(),
            alice.display_name.as_str(),
            phone.as_str(),
            "Alice's iPhone",
            authenticator.as_str(),
            MOBILE_PHONE_METHOD_ID,
            "bob@example.com",
            "Cannot delete default method",
        ] {
            assert!(!t.contains(pii), "{pii:?} leaked: {t}");
        }
    }
}

/// The exact wire: the methods list, the beta preference read beside the v1.0 base, one DELETE per method at its
/// type's collection with no body, and a 400 from Graph (its real error shape) set aside and tried again last.
#[tokio::test]
async fn the_requests_are_exactly_graphs() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    let methods = serde_json::json!({"value": [
        {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490"},
        {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": "auth-1", "displayName": "Canary Phone"},
        {"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7", "phoneNumber": "+1 555 0199", "phoneType": "mobile"},
        {"@odata.type": "#microsoft.graph.emailAuthenticationMethod", "id": "mail-1", "emailAddress": "canary@example.net"}
    ]});
    graph("GET", &format!("users/{UID}/authentication/methods"))
        .and(no_query())
        .respond_with(ResponseTemplate::new(200).set_body_json(methods))
        .expect(1)
        .mount(&server)
        .await;
    // Graph names the phone as the default (`sms`)...
    Mock::given(method("GET"))
        .and(path(format!(
            "/beta/users/{UID}/authentication/signInPreferences"
        )))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "isSystemPreferredAuthenticationMethodEnabled": true,
            "userPreferredMethodForSecondaryAuthentication": "sms"
        })))
        .expect(1)
        .mount(&server)
        .await;
    graph(
        "DELETE",
        &format!("users/{UID}/authentication/emailMethods/mail-1"),
    )
    .and(EmptyBody)
    .respond_with(ResponseTemplate::new(204))
    .expect(1)
    .mount(&server)
    .await;
    // ...but the service still holds the Authenticator as the default: refused once, deleted after the phone.
    let refused = serde_json::json!({"error": {
        "code": "badRequest",
        "message": "The requested authentication method id of [auth-1] matches the user's current default authentication method, and cannot be deleted until the default authentication method is changed",
        "innerError": {"date": "2025-01-01T00:00:00", "request-id": "r1", "client-request-id": "c1"}
    }});
    graph(
        "DELETE",
        &format!("users/{UID}/authentication/microsoftAuthenticatorMethods/auth-1"),
    )
    .and(EmptyBody)
    .respond_with(ResponseTemplate::new(400).set_body_json(refused))
    .up_to_n_times(1)
    .expect(1)
    .mount(&server)
    .await;
    graph(
        "DELETE",
        &format!("users/{UID}/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7"),
    )
    .and(EmptyBody)
    .respond_with(ResponseTemplate::new(204))
    .expect(1)
    .mount(&server)
    .await;
    graph(
        "DELETE",
        &format!("users/{UID}/authentication/microsoftAuthenticatorMethods/auth-1"),
    )
    .respond_with(ResponseTemplate::new(204))
    .expect(1)
    .mount(&server)
    .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let receipt = crate::support::adapter(&server)
        .execute(&subject(), &Action::ResetFactors)
        .await
        .unwrap();
    assert_eq!(receipt.kind, ActionKind::ResetFactors);
}
