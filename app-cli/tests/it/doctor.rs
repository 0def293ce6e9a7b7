//! `fctr doctor` against a `fctr mock-idp okta` child.

use crate::common::*;

fn config(dir: &std::path::Path, org: &str, db: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("fctr.toml");
    std::fs::write(
        &p,
        format!(
            "[okta]\norg_url = \"{org}\"\napi_token_env = \"DOCTOR_OKTA_TOKEN\"\n\n\
             [pseudonymization]\nkey_id = \"k1\"\nkey_env = \"DOCTOR_PSEUDO_KEY\"\n\n\
             [audit]\nsqlite_path = \"{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    p
}

fn doctor(cfg: &std::path::Path, json: bool) -> Run {
    let mut args = vec!["doctor", "--config", cfg.to_str().unwrap()];
    if json {
        args.insert(0, "--json");
    }
    let mut c = cmd(&args);
    c.env("DOCTOR_OKTA_TOKEN", "00fctr-fake-ssws-token-not-a-secret")
        .env("DOCTOR_PSEUDO_KEY", "a pseudonymization key of 32+ bytes");
    run_with(c, None, std::time::Duration::from_secs(90))
}

#[tokio::test]
async fn doctor_passes_against_the_mock_and_warns_about_the_ssws_token() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 3).await;
    let cfg = config(dir.path(), &mock.url, &db);
    let r = doctor(&cfg, false);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("ok    okta.read"), "{r:?}");
    assert!(r.out.contains("WARN  okta.privilege"), "{r:?}");
    assert!(r.out.contains("okta.users.read okta.users.manage"), "{r:?}");
    assert!(
        r.out
            .contains("ok    audit.chain        intact: 3 event(s)"),
        "{r:?}"
    );
    assert!(r.out.contains("0 failed"), "{r:?}");
    assert!(
        !r.out.contains("00fctr-fake-ssws-token-not-a-secret"),
        "token printed: {r:?}"
    );
    let r = doctor(&cfg, true);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["ok"], true);
}

#[tokio::test]
async fn doctor_fails_on_a_wrong_url_and_a_broken_chain_with_next_steps() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 3).await;
    tamper(&db, 1).await;
    let cfg = config(dir.path(), "http://127.0.0.1:9", &db);
    let r = doctor(&cfg, false);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("FAIL  okta.read          cannot reach http://127.0.0.1:9"),
        "{r:?}"
    );
    assert!(r.out.contains("next: check [okta] org_url"), "{r:?}");
    assert!(
        r.out
            .contains("FAIL  audit.chain        BROKEN: tenant acme, position 1"),
        "{r:?}"
    );
}

#[test]
fn doctor_names_missing_configuration() {
    let r = fctr(&["doctor"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--config"), "{r:?}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fctr.toml");
    std::fs::write(
        &cfg,
        "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"DOCTOR_UNSET_VAR\"\n",
    )
    .unwrap();
    let r = fctr(&["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.contains("DOCTOR_UNSET_VAR is not set"), "{r:?}");
    assert!(r.out.contains("FAIL  pseudonymization"), "{r:?}");
    assert!(r.out.contains("FAIL  audit.store"), "{r:?}");
}

/// A configuration for the fake's OAuth service app (private_key_jwt), its key written by `mock-idp --key-out`.
fn service_app_config(
    dir: &std::path::Path,
    mock: &Mock,
    key: &std::path::Path,
    db: &std::path::Path,
) -> std::path::PathBuf {
    let app = &mock.info["service_app"];
    let p = dir.join("fctr-oauth.toml");
    std::fs::write(
        &p,
        format!(
            "[okta]\norg_url = \"{}\"\nclient_id = \"{}\"\nkey_id = \"{}\"\nprivate_key_file = \"{}\"\n\n\
             [pseudonymization]\nkey_id = \"k1\"\nkey_env = \"DOCTOR_PSEUDO_KEY\"\n\n\
             [audit]\nsqlite_path = \"{}\"\n",
            mock.url,
            app["client_id"].as_str().unwrap(),
            app["key_id"].as_str().unwrap(),
            key.display(),
            db.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn doctor_with_the_service_app_checks_token_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("service.pem");
    let db = dir.path().join("audit.sqlite");
    let mock = Mock::start_with(&["--key-out", key.to_str().unwrap()]);
    let cfg = service_app_config(dir.path(), &mock, &key, &db);
    let r = doctor(&cfg, false);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("ok    okta.token         access token acquired"),
        "{r:?}"
    );
    assert!(r.out.contains("ok    okta.scopes        granted exactly what fctr asks for: okta.users.read okta.users.manage"), "{r:?}");
    assert!(!r.out.contains("okta.privilege"), "{r:?}");
    assert!(r.out.contains("ok    okta.logs"), "{r:?}");
    assert!(
        r.out
            .contains("does not exist yet; its directory is writable"),
        "{r:?}"
    );

    // A service app that was granted read only: doctor names the missing scope.
    let key2 = dir.path().join("service2.pem");
    let ro = Mock::start_with(&[
        "--key-out",
        key2.to_str().unwrap(),
        "--service-app-scopes",
        "okta.users.read",
    ]);
    let cfg = service_app_config(dir.path(), &ro, &key2, &db);
    let r = doctor(&cfg, false);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.contains("FAIL  okta.scopes"), "{r:?}");
    assert!(r.out.contains("okta.users.manage"), "{r:?}");
    assert!(r.out.contains("next: Admin Console"), "{r:?}");
    // The System Log is optional: without okta.logs.read, a warning that names it.
    assert!(r.out.contains("WARN  okta.logs"), "{r:?}");
    assert!(r.out.contains("okta.logs.read not granted"), "{r:?}");
}

/// `[entra]` (against a `fctr mock-idp entra`) plus the sections doctor checks besides the IdP.
fn entra_doctor_config(
    dir: &std::path::Path,
    mock: &Mock,
    connector: bool,
    db: &std::path::Path,
) -> std::path::PathBuf {
    crate::contract_entra::entra_config(
        dir,
        mock,
        connector,
        &format!(
            "\n[pseudonymization]\nkey_id = \"k1\"\nkey_env = \"DOCTOR_PSEUDO_KEY\"\n\n\
             [audit]\nsqlite_path = \"{}\"\n",
            db.display()
        ),
    )
}

fn entra_doctor(cfg: &std::path::Path, secret: &str) -> Run {
    let mut c = cmd(&["doctor", "--config", cfg.to_str().unwrap()]);
    c.env("CFG_ENTRA_SECRET", secret)
        .env(
            "CFG_MFA_SECRET",
            fctr_testkit::entra::DEFAULT_MFA_CLIENT_SECRET,
        )
        .env("DOCTOR_PSEUDO_KEY", "a pseudonymization key of 32+ bytes");
    run_with(c, None, std::time::Duration::from_secs(90))
}

#[tokio::test]
async fn doctor_checks_an_entra_tenant_its_tokens_and_the_connector() {
    let mock = Mock::start_entra();
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 2).await;
    let secret = mock.info["app"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let cfg = entra_doctor_config(dir.path(), &mock, true, &db);
    let r = entra_doctor(&cfg, &secret);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out.contains(&format!(
            "ok    entra.settings     tenant {}, Graph {}/v1.0 (client secret)",
            fctr_testkit::entra::DEFAULT_TENANT_ID,
            mock.url
        )),
        "{r:?}"
    );
    assert!(r.out.contains("WARN  entra.credential"), "{r:?}");
    assert!(
        r.out
            .contains("ok    entra.token        Graph and MFA connector tokens acquired"),
        "{r:?}"
    );
    assert!(r.out.contains("WARN  entra.connector"), "{r:?}");
    assert!(
        r.out
            .contains("ok    entra.permissions  granted only permissions fctr uses: User.Read.All"),
        "{r:?}"
    );
    assert!(r.out.contains("ok    entra.read"), "{r:?}");
    assert!(r.out.contains("intact: 2 event(s)"), "{r:?}");
    assert!(!r.out.contains("okta"), "no Okta checks: {r:?}");
    assert!(!r.out.contains(&secret), "secret printed: {r:?}");

    // A wrong secret: the token check fails with Entra's reason and what to do.
    let r = entra_doctor(&cfg, "not-the-secret");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("FAIL  entra.token        the client secret was refused (AADSTS7000215)"),
        "{r:?}"
    );
    assert!(r.out.contains("FAIL  entra.read"), "{r:?}");
    assert!(!r.out.contains("not-the-secret"), "secret printed: {r:?}");

    // Without the connector: one token, no connector warning.
    let cfg = entra_doctor_config(dir.path(), &mock, false, &db);
    let r = entra_doctor(&cfg, &secret);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("ok    entra.token        Graph token acquired"),
        "{r:?}"
    );
    assert!(!r.out.contains("entra.connector"), "{r:?}");
}

/// An app registration holding more than fctr needs is named, permission by permission (a warning: it works).
#[tokio::test]
async fn doctor_warns_when_the_entra_app_holds_broader_permissions() {
    let mock = Mock::start_provider(
        "entra",
        &[
            "--app-permissions",
            "User.Read.All,GroupMember.Read.All,Directory.ReadWrite.All User.ReadWrite.All",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 1).await;
    let secret = mock.info["app"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let cfg = entra_doctor_config(dir.path(), &mock, false, &db);
    let r = entra_doctor(&cfg, &secret);
    assert_eq!(r.code, 0, "a warning, not a failure: {r:?}");
    assert!(
        r.out.contains(
            "WARN  entra.permissions  the app holds Graph permissions fctr never uses: \
             Directory.ReadWrite.All User.ReadWrite.All"
        ),
        "{r:?}"
    );
    assert!(r.out.contains("docs/entra-setup.md, section 2"), "{r:?}");
    assert!(!r.out.contains("ok    entra.permissions"), "{r:?}");
}

#[test]
fn doctor_refuses_a_file_with_both_identity_providers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("both.toml");
    std::fs::write(
        &cfg,
        "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"X\"\n\n\
         [entra]\ntenant_id = \"fc7a1e57-0000-4000-8000-000000000001\"\n\
         client_id = \"fc7a0001-0000-4000-8000-00000000a001\"\nclient_secret_env = \"X\"\n",
    )
    .unwrap();
    let r = fctr(&["doctor", "--config", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.contains("FAIL  idp"), "{r:?}");
    assert!(r.out.contains("both sections are present"), "{r:?}");
    assert!(!r.out.contains("okta.read"), "{r:?}");
}
