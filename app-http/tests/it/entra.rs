//! A portal configured with `[entra]` (no demo mode): the production wiring (`from_config`) against the fake
//! Entra tenant started in-process. Agents sign in through the fake Entra's own OIDC pages (authorization code
//! with PKCE, v2.0 issuer, app roles in the `roles` claim), look a caller up through Microsoft Graph and send an
//! Authenticator push through the MFA connector.

use crate::helpers::{Browser, PUBLIC, Resp, between, to_resp};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use fctr_portal::config::Config;
use fctr_portal::startup::from_config;
use fctr_portal::state::AppState;
use fctr_testkit::entra::{FakeEntra, FakeEntraOptions, FixtureMethod};
use secrecy::ExposeSecret as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tower::ServiceExt as _;

/// The fake's app roles are `fctr.tier1..3`; the default policy maps group names `fctr-tier1..3`, so an Entra
/// deployment maps the roles claim in its policy.
///
/// Every caller needs two distinct factors here, so that a plain Authenticator push (no number matching) is
/// useful as the second one after a TOTP code.
const POLICY: &str = r#"
[factors.default]
accepted = ["push", "totp"]
required = 2

[[roles]]
name = "tier2"
groups = ["fctr.tier2"]
permissions = ["lookup", "verify", "clear_sessions", "expire_password"]

[[roles]]
name = "tier3"
groups = ["fctr.tier3"]
permissions = ["lookup", "verify", "reset_factors", "view_audit"]
"#;

/// How the app registration proves itself in the test configuration.
pub(crate) enum Credential {
    Secret,
    Certificate,
}

pub(crate) struct EntraPortal {
    pub(crate) fake: FakeEntra,
    pub(crate) state: AppState,
    pub(crate) app: Router,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The configuration file of a portal whose IdP is the fake Entra tenant.
pub(crate) fn config_text(fake: &FakeEntra, dir: &Path, credential: &Credential) -> String {
    config_text_with(fake, dir, credential, POLICY)
}

/// [`config_text`] with another policy.
pub(crate) fn config_text_with(
    fake: &FakeEntra,
    dir: &Path,
    credential: &Credential,
    policy_text: &str,
) -> String {
    let app_credential = match credential {
        Credential::Secret => {
            let s = write(
                dir,
                "entra-secret",
                fake.client_secret().expose_secret().as_bytes(),
            );
            format!("client_secret_file = \"{}\"", s.display())
        }
        Credential::Certificate => {
            let cert = fake.certificate();
            let key = write(
                dir,
                "entra.key.pem",
                cert.private_key_pem.expose_secret().as_bytes(),
            );
            let der = write(dir, "entra.cer", &cert.der);
            format!(
                "private_key_file = \"{}\"\ncertificate_file = \"{}\"",
                key.display(),
                der.display()
            )
        }
    };
    let mfa = write(
        dir,
        "mfa-secret",
        fake.mfa_client().client_secret.expose_secret().as_bytes(),
    );
    let oidc = fake.oidc_client();
    let portal_secret = write(
        dir,
        "portal-secret",
        oidc.client_secret.expose_secret().as_bytes(),
    );
    let key = write(dir, "pseudo-key", b"0123456789abcdef0123456789abcdef\n");
    let policy = write(dir, "policy.toml", policy_text.as_bytes());
    format!(
        r#"
[server]
listen = "127.0.0.1:8080"
public_url = "{PUBLIC}"
tenant = "acme-entra"

[entra]
tenant_id = "{tenant}"
client_id = "{client}"
{app_credential}
authority = "{authority}"
graph_base = "{graph}"
name_search = "starts_with"

[entra.connector]
client_secret_file = "{mfa}"
endpoint = "{connector}"
push_timeout_secs = 30

[sign_in]
issuer = "{issuer}"
client_id = "{portal_client}"
client_secret_file = "{portal_secret}"
groups_claim = "roles"

[policy]
file = "{policy}"

[pseudonymization]
key_id = "k1"
key_file = "{key}"

[audit]
sqlite_path = "{audit}"
checkpoint_key_file = "{key}"
"#,
        tenant = fake.tenant_id(),
        client = fake.app().client_id,
        authority = fake.authority(),
        graph = fake.graph_base(),
        mfa = mfa.display(),
        connector = fake.connector_endpoint(),
        issuer = oidc.issuer,
        portal_client = oidc.client_id,
        portal_secret = portal_secret.display(),
        policy = policy.display(),
        key = key.display(),
        audit = dir.join("audit.sqlite").display(),
    )
}

async fn start(credential: Credential) -> EntraPortal {
    start_with_extra(credential, "").await
}

/// [`start`], with `extra` appended to the configuration file.
pub(crate) async fn start_with_extra(credential: Credential, extra: &str) -> EntraPortal {
    start_custom(credential, POLICY, extra).await
}

/// [`start_with_extra`] with another policy.
pub(crate) async fn start_custom(credential: Credential, policy: &str, extra: &str) -> EntraPortal {
    // The fake's default portal secret has a `~`, which client_secret_basic sends form-URL-encoded as `%7E`
    // (RFC 6749 2.3.1): signing in with it proves the fake decodes the credentials as Entra does.
    let opts = FakeEntraOptions {
        extra_redirect_uris: vec![format!("{PUBLIC}/link/callback")],
        ..FakeEntraOptions::default()
    };
    let fake = FakeEntra::start(opts).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text_with(&fake, dir.path(), &credential, policy) + extra;
    let path = write(dir.path(), "fctr.toml", text.as_bytes());
    let cfg = Config::load(&path).unwrap();
    cfg.validate().unwrap();
    let state = from_config(&cfg)
        .await
        .expect("the configured stack starts");
    let app = fctr_portal::router(state.clone());
    EntraPortal {
        fake,
        state,
        app,
        _dir: dir,
    }
}

impl EntraPortal {
    pub(crate) async fn send(&self, mut req: Request<Body>) -> Resp {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        to_resp(self.app.clone().oneshot(req).await.unwrap()).await
    }

    pub(crate) async fn get(&self, b: &mut Browser, path: &str) -> Resp {
        let req = Request::get(path)
            .header(header::COOKIE, b.cookie_header())
            .body(Body::empty())
            .unwrap();
        let r = self.send(req).await;
        b.absorb(&r);
        r
    }

    pub(crate) async fn post(&self, b: &mut Browser, path: &str, form: &[(&str, &str)]) -> Resp {
        let req = Request::post(path)
            .header(header::COOKIE, b.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, PUBLIC)
            .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap();
        let r = self.send(req).await;
        b.absorb(&r);
        r
    }

    /// Signs `handle` in through the fake Entra's authorize page; returns the browser with session and CSRF.
    pub(crate) async fn sign_in(&self, handle: &str) -> Browser {
        let mut b = Browser::default();
        let r = self.get(&mut b, "/auth/login?return_to=%2Fsearch").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let authorize = r.location();
        let expected = format!(
            "{}{}/oauth2/v2.0/authorize?",
            self.fake.authority(),
            self.fake.tenant_id()
        );
        assert!(
            authorize.starts_with(&expected),
            "the fake Entra's v2.0 authorize endpoint: {authorize}"
        );
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        let agent = self.fake.fixtures().id_of(handle);
        let (_, loc) = crate::helpers::fake_idp_login(&authorize, &agent).await;
        assert!(
            loc.starts_with(PUBLIC),
            "back to the portal's callback: {loc}"
        );
        let r = self.get(&mut b, &loc[PUBLIC.len()..]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let s = self.get(&mut b, "/search").await;
        assert_eq!(s.status, StatusCode::OK, "{}", s.body);
        b.csrf = between(&s.body, "name=\"csrf\" value=\"", "\"")
            .unwrap()
            .to_owned();
        b
    }

    /// Searches and returns the card path of the first result.
    pub(crate) async fn find(&self, b: &mut Browser, q: &str) -> String {
        let csrf = b.csrf.clone();
        let r = self.post(b, "/search", &[("csrf", &csrf), ("q", q)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        format!(
            "/callers/{}",
            between(&r.body, "href=\"/callers/", "\"").expect("a result")
        )
    }

    async fn audit_kinds(&self) -> Vec<fctr_ports::EventKind> {
        self.state
            .audit()
            .read(&fctr_ports::AuditQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.event.kind)
            .collect()
    }
}

/// The id of a fixture user's method of this kind.
pub(crate) fn method(fake: &FakeEntra, user: &str, kind: FixtureMethod) -> String {
    let u = fake.fixtures().user(user).unwrap();
    u.methods
        .iter()
        .find(|m| m.method == kind)
        .unwrap()
        .id
        .clone()
}

/// Waits until the verification page leaves the `challenged` state and returns it.
async fn settled(t: &EntraPortal, b: &mut Browser, verification: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        last = t.get(b, verification).await.body;
        if !last.contains("data-status=\"challenged\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// Bob reads out his TOTP code (1 of 2 factors), then approves an Authenticator push through the connector as the
/// second: returns the card, the verification page and the code he read out.
async fn verify_bob_by_code_then_push(
    t: &EntraPortal,
    b: &mut Browser,
) -> (String, String, String) {
    let csrf = b.csrf.clone();
    let card = t.find(b, "bob@example.com").await;
    let bob = t.fake.fixtures().user("bob").unwrap().clone();
    let oath = method(&t.fake, "bob", FixtureMethod::SoftwareOath);
    let r = t
        .post(
            b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &oath)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let verification = r.location();
    let code = t.fake.state().totp_now(&bob.upn).unwrap();
    let r = t
        .post(
            b,
            &format!("{verification}/code"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = t.get(b, &verification).await.body;
    assert!(
        page.contains("1 of 2 factors approved. Verify the next one with a different factor."),
        "{page}"
    );
    let r = t
        .post(b, &format!("{verification}/continue"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let push = t
        .fake
        .phones()
        .wait_for_push(&bob.upn, Duration::from_secs(10))
        .await
        .expect("the push reaches Bob's Authenticator");
    assert_eq!(push.user_id, bob.id);
    assert_eq!(t.fake.phones().pending().len(), 1, "one push, to one user");
    t.fake.phones().approve(&push.session_id, None).unwrap();
    (card, verification, code)
}

#[tokio::test]
async fn an_entra_portal_signs_agents_in_looks_a_caller_up_and_sends_a_push() {
    let t = start(Credential::Secret).await;
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();

    // Lookup through Microsoft Graph: the card shows Alice and her Authenticator...
    let card = t.find(&mut b, "Alice").await;
    let alice = t.fake.fixtures().user("alice").unwrap().clone();
    let page = t.get(&mut b, &card).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&alice.upn), "{}", page.body);
    let authenticator = method(&t.fake, "alice", FixtureMethod::MicrosoftAuthenticator);
    assert!(
        page.body
            .contains(&format!("name=\"factor_id\" value=\"{authenticator}\"")),
        "the Authenticator can be challenged (the connector is configured): {}",
        page.body
    );
    // ...but her plain push is her only accepted factor, and two are needed: refused before anything is sent.
    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &authenticator)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("not_enough_factors"), "{}", r.body);
    assert!(t.fake.phones().pending().is_empty(), "no push was sent");

    // Bob reads out his TOTP code, then approves the push through the connector as the second factor.
    let (_, verification, code) = verify_bob_by_code_then_push(&t, &mut b).await;
    let last = settled(&t, &mut b, &verification).await;
    assert!(last.contains("data-status=\"verified\""), "{last}");
    assert!(!last.contains(&code), "the code is not echoed: {last}");

    let kinds = t.audit_kinds().await;
    for k in [
        fctr_ports::EventKind::Lookup,
        fctr_ports::EventKind::ChallengeStarted,
        fctr_ports::EventKind::Denied,
    ] {
        assert!(kinds.contains(&k), "{k:?} audited: {kinds:?}");
    }
}

/// A tier-3 agent verifies Bob (TOTP code, then an Authenticator push) and resets his factors through the portal:
/// Graph deletes his software OATH app and Authenticator (the default, last), and only the password is left.
#[tokio::test]
async fn a_tier3_agent_verifies_a_caller_and_resets_their_factors() {
    let t = start(Credential::Secret).await;
    let mut b = t.sign_in("agent3").await;
    let csrf = b.csrf.clone();
    let bob = t.fake.fixtures().user("bob").unwrap().clone();
    let (card, verification, _) = verify_bob_by_code_then_push(&t, &mut b).await;
    let page = settled(&t, &mut b, &verification).await;
    assert!(page.contains("data-status=\"verified\""), "{page}");
    assert!(page.contains("id=\"act-reset_factors\""), "{page}");
    assert_eq!(
        t.fake.state().method_types(&bob.upn).unwrap().len(),
        3,
        "password, Authenticator, OATH app"
    );

    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_factors"),
            &[("csrf", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Reset all MFA factors"), "{}", r.body);
    assert_eq!(
        t.fake.state().method_types(&bob.upn).unwrap(),
        ["passwordAuthenticationMethod"],
        "the fake shows the methods gone"
    );
    assert_eq!(t.fake.effects(&bob.upn).unwrap().methods_deleted, 2);
    let kinds = t.audit_kinds().await;
    for k in [
        fctr_ports::EventKind::ActionIntent,
        fctr_ports::EventKind::ActionOutcome,
    ] {
        assert!(kinds.contains(&k), "{k:?} audited: {kinds:?}");
    }
    // The grant was single-use: a second reset is refused before Graph is asked.
    let again = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_factors"),
            &[("csrf", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "{}", again.body);
    assert_eq!(t.fake.effects(&bob.upn).unwrap().methods_deleted, 2);
}

#[tokio::test]
async fn an_entra_portal_with_a_certificate_credential_looks_callers_up() {
    let t = start(Credential::Certificate).await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "bob@example.com").await;
    let page = t.get(&mut b, &card).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("bob@example.com"), "{}", page.body);
}

#[tokio::test]
async fn a_tenant_that_refuses_the_app_fails_closed_on_lookup() {
    let t = start(Credential::Secret).await;
    let mut b = t.sign_in("agent2").await;
    // The tenant withdraws every Graph permission: the lookup is refused, and no caller is shown.
    t.fake
        .state()
        .set_app_permissions(fctr_testkit::entra::DEFAULT_CLIENT_ID, &[]);
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            "/search",
            &[("csrf", &csrf), ("q", "alice@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(r.body.contains(">idp_error<"), "{}", r.body);
    assert!(!r.body.contains("href=\"/callers/"), "{}", r.body);
}

/// Out-of-band change detection on Entra, end to end: with the audit-log permissions granted, a tier-3 agent resets
/// Bob's factors through the portal (Graph logs each method deletion under fctr's app) and an admin resets Alice's
/// password "in the admin center"; the auditor's page lists the console reset with its admin, and nothing of the
/// portal's reset. Without the permissions the page says the log could not be read.
#[tokio::test]
async fn the_out_of_band_page_lists_a_console_reset_and_not_the_portals_factor_reset() {
    let t = start(Credential::Secret).await;
    let mut perms: Vec<&str> = fctr_testkit::entra::DEFAULT_APP_PERMISSIONS.to_vec();
    perms.extend(["AuditLog.Read.All", "Directory.Read.All"]);
    t.fake
        .state()
        .set_app_permissions(&t.fake.app().client_id, &perms);
    let mut b = t.sign_in("agent3").await;
    let csrf = b.csrf.clone();
    let bob = t.fake.fixtures().user("bob").unwrap().clone();
    let alice = t.fake.fixtures().user("alice").unwrap().clone();
    let (card, verification, _) = verify_bob_by_code_then_push(&t, &mut b).await;
    let page = settled(&t, &mut b, &verification).await;
    assert!(page.contains("data-status=\"verified\""), "{page}");
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_factors"),
            &[("csrf", &csrf), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.fake.effects(&bob.upn).unwrap().methods_deleted, 2);
    t.fake
        .state()
        .console_change("rogue.admin@example.com", &alice.id, "Reset user password");
    assert_eq!(t.fake.state().directory_audit_len(), 3);

    let r = t.get(&mut b, "/audit/out-of-band?since=1h").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rows: Vec<&str> = r.body.split("<tr data-severity=").skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", r.body);
    assert!(
        rows[0].starts_with("\"outside_gate\" data-action=\"reset_password\""),
        "{}",
        rows[0]
    );
    assert!(
        r.body.contains("admin: rogue.admin@example.com"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&alice.id));
    assert!(
        !r.body.contains(&bob.id),
        "the portal's reset is accounted for"
    );
}
