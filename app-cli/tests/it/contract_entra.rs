//! `fctr mock-idp entra` as a child process, and `fctr contract-test --provider entra` against it.

use crate::common::*;

const ALICE: &str = "93e2e008-6093-4412-84d3-214f6379295a";

#[test]
fn entra_contract_test_against_a_mock_idp_passes_with_capability_skips() {
    let mock = Mock::start_entra();
    let r = fctr(&[
        "contract-test",
        "--provider",
        "entra",
        "--base-url",
        &mock.url,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out.contains(&format!(
            "contract suite: entra adapter against {} (fake Entra ID: fixture users) (read-only)",
            mock.url
        )),
        "{r:?}"
    );
    for check in [
        "lookup_by_id",
        "lookup_by_login",
        "lookup_missing_user",
        "list_factors",
        "error_401_unauthorized",
        "error_404_not_found",
    ] {
        assert!(r.out.contains(&format!("pass  {check}")), "{check}: {r:?}");
    }
    // No MFA connector against a URL: push and code checks skip by capability, as do the actions Entra lacks.
    for (check, why) in [
        (
            "push_approved_with_right_number",
            "capability: this IdP offers no push challenge",
        ),
        (
            "totp_right",
            "capability: this IdP cannot check one-time codes",
        ),
        (
            "lifecycle_reset_password",
            "capability: this IdP cannot reset the password",
        ),
        (
            "lifecycle_unlock",
            "capability: this IdP cannot unlock the account",
        ),
    ] {
        let line = r
            .out
            .lines()
            .find(|l| l.starts_with(&format!("skip  {check} ")))
            .unwrap_or_else(|| panic!("{check} not skipped: {r:?}"));
        assert!(line.ends_with(why), "{line}");
    }
    // Entra resets factors (Graph deletes the methods one by one): a read-only run skips it as mutating.
    assert!(
        r.out
            .lines()
            .any(|l| l.starts_with("skip  lifecycle_reset_factors ")
                && l.ends_with("read-only run (mutating checks need --mutating and a test user)")),
        "{r:?}"
    );
    assert!(r.out.contains("read-only run"), "{r:?}");
    assert!(r.out.contains("0 failed"), "{r:?}");
    assert!(r.err.contains("MFA connector is not configured"), "{r:?}");

    let r = fctr(&[
        "--json",
        "contract-test",
        "--provider",
        "entra",
        "--base-url",
        &mock.url,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["provider"], "entra", "{v}");
    assert_eq!(v["fake"], true, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), fctr_testkit::contract::CHECKS.len());
    let verdict = |name: &str| {
        results
            .iter()
            .find(|r| r["check"] == name)
            .map(|r| r["verdict"].as_str().unwrap().to_owned())
    };
    assert_eq!(verdict("lookup_by_login").as_deref(), Some("pass"), "{v}");
    assert_eq!(verdict("push_denied").as_deref(), Some("skip"), "{v}");
}

#[test]
fn entra_mutating_run_changes_only_the_test_user() {
    let mock = Mock::start_entra();
    let r = fctr(&[
        "contract-test",
        "--provider",
        "entra",
        "--base-url",
        &mock.url,
        "--mutating",
        "--test-user",
        ALICE,
        "--login",
        "alice@example.com",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("pass  lifecycle_clear_sessions"), "{r:?}");
    assert!(r.out.contains("pass  lifecycle_reset_factors"), "{r:?}");
    // Unsupported by Entra: the adapter refuses (checked), and the row says why.
    assert!(
        r.out
            .contains("skip  lifecycle_reset_password                  capability:"),
        "{r:?}"
    );
    let (st, effects) = mock.control("GET", &format!("/_fake/users/{ALICE}/effects"), None);
    assert_eq!(st, 200, "{effects}");
    assert_eq!(effects["sessionsRevoked"], 1, "{effects}");
    let (_, bob) = mock.control("GET", "/_fake/users/bob@example.com/effects", None);
    assert_eq!(bob["sessionsRevoked"], 0, "{bob}");
}

#[test]
fn entra_wrong_url_is_an_idp_error() {
    let r = fctr(&[
        "contract-test",
        "--provider",
        "entra",
        "--base-url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("cannot be reached"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
    // A fake Okta is not an Entra tenant: no fixture users, and its token endpoint is not Entra's.
    let okta = Mock::start();
    let r = fctr(&[
        "--json",
        "contract-test",
        "--provider",
        "entra",
        "--base-url",
        &okta.url,
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["exit"], 3, "{v}");
}

#[test]
fn entra_usage_errors_name_what_is_missing() {
    // A configuration file without an identity provider: the error names both sections.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fctr.toml");
    std::fs::write(&cfg, "").unwrap();
    let r = fctr(&[
        "--config",
        cfg.to_str().unwrap(),
        "contract-test",
        "--provider",
        "entra",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("an [entra] section"), "{r:?}");
    let r = fctr(&["contract-test", "--provider", "entra"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--base-url"), "{r:?}");
    assert!(
        r.err.contains("--config FILE with an [entra] section"),
        "{r:?}"
    );
    // A real tenant needs its ids and the secret.
    let real = ["contract-test", "--provider", "entra", "--base-url"];
    let graph = "https://graph.microsoft.com";
    let r = fctr(&[&real[..], &[graph]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--tenant-id is required"), "{r:?}");
    let r = fctr(
        &[
            &real[..],
            &[
                graph,
                "--tenant-id",
                "fc7a1e57-0000-4000-8000-000000000001",
                "--client-id",
                "fc7a0001-0000-4000-8000-00000000a001",
            ],
        ]
        .concat(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.err.contains("FCTR_ENTRA_CLIENT_SECRET is not set"),
        "{r:?}"
    );
    // Flags of the other provider are refused, not ignored.
    let r = fctr(&[
        "contract-test",
        "--provider",
        "entra",
        "--base-url",
        "http://127.0.0.1:9",
        "--api-token-env",
        "X",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--api-token-env does not apply"), "{r:?}");
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        "http://127.0.0.1:9",
        "--tenant-id",
        "x",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--tenant-id does not apply"), "{r:?}");
}

/// A deployment configuration whose `[entra]` section points at a `fctr mock-idp entra` child; the secrets come
/// from `CFG_ENTRA_SECRET` and `CFG_MFA_SECRET`.
pub fn entra_config(
    dir: &std::path::Path,
    mock: &Mock,
    connector: bool,
    extra: &str,
) -> std::path::PathBuf {
    let mut text = format!(
        "[entra]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_env = \"CFG_ENTRA_SECRET\"\n\
         authority = \"{}\"\ngraph_base = \"{}\"\n",
        mock.info["tenant_id"].as_str().unwrap(),
        mock.info["app"]["client_id"].as_str().unwrap(),
        mock.info["authority"].as_str().unwrap(),
        mock.info["graph_base"].as_str().unwrap(),
    );
    if connector {
        text.push_str(&format!(
            "\n[entra.connector]\nclient_secret_env = \"CFG_MFA_SECRET\"\nendpoint = \"{}\"\n",
            mock.info["connector_endpoint"].as_str().unwrap()
        ));
    }
    text.push_str(extra);
    let p = dir.join("fctr-entra.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `fctr ARGS` with the fake tenant's app and MFA client secrets in the environment the configuration names.
pub fn with_entra_secrets(args: &[&str], app_secret: &str) -> Run {
    let mut c = cmd(args);
    c.env("CFG_ENTRA_SECRET", app_secret).env(
        "CFG_MFA_SECRET",
        fctr_testkit::entra::DEFAULT_MFA_CLIENT_SECRET,
    );
    run_with(c, None, std::time::Duration::from_secs(90))
}

#[test]
fn entra_contract_test_reads_the_entra_section_of_the_config() {
    let mock = Mock::start_entra();
    let dir = tempfile::tempdir().unwrap();
    let cfg = entra_config(dir.path(), &mock, true, "");
    let cfg = cfg.to_str().unwrap();
    let secret = mock.info["app"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = with_entra_secrets(
        &["--config", cfg, "contract-test", "--provider", "entra"],
        &secret,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out.contains(&format!(
            "contract suite: entra adapter against {}/v1.0 (fake Entra ID: fixture users) (read-only)",
            mock.url
        )),
        "{r:?}"
    );
    for check in [
        "lookup_by_id",
        "lookup_by_login",
        "list_factors",
        "error_401_unauthorized",
        "error_404_not_found",
    ] {
        assert!(r.out.contains(&format!("pass  {check}")), "{check}: {r:?}");
    }
    // The connector is configured: push and codes are no longer skipped for want of the capability.
    assert!(
        !r.out
            .contains("capability: this IdP offers no push challenge"),
        "{r:?}"
    );
    assert!(
        r.out.contains(
            "skip  push_approved_with_right_number           no phone driver in this target"
        ),
        "{r:?}"
    );
    assert!(!r.err.contains("is not configured"), "{r:?}");
    assert!(
        !r.out.contains(&secret) && !r.err.contains(&secret),
        "secret printed: {r:?}"
    );

    // Without the connector: skipped by capability, and the note says why.
    let cfg = entra_config(dir.path(), &mock, false, "");
    let cfg = cfg.to_str().unwrap();
    let r = with_entra_secrets(
        &["--config", cfg, "contract-test", "--provider", "entra"],
        &secret,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("capability: this IdP offers no push challenge"),
        "{r:?}"
    );
    assert!(
        r.err.contains("[entra.connector] is not configured"),
        "{r:?}"
    );

    // A wrong secret in the environment: the tenant refuses it, exit 3.
    let r = with_entra_secrets(
        &["--config", cfg, "contract-test", "--provider", "entra"],
        "not-the-secret",
    );
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn entra_config_errors_name_the_section_and_the_fix() {
    let mock = Mock::start_entra();
    let dir = tempfile::tempdir().unwrap();
    // Both [okta] and [entra]: refused, as the portal refuses it.
    let both = entra_config(
        dir.path(),
        &mock,
        false,
        "\n[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"X\"\n",
    );
    let both = both.to_str().unwrap();
    let r = with_entra_secrets(
        &["--config", both, "contract-test", "--provider", "entra"],
        "x",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("both sections are present"), "{r:?}");
    let r = with_entra_secrets(
        &["--config", both, "contract-test", "--provider", "okta"],
        "x",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("both sections are present"), "{r:?}");
    // An Okta file with --provider entra.
    let okta = dir.path().join("okta.toml");
    std::fs::write(
        &okta,
        "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"X\"\n",
    )
    .unwrap();
    let r = fctr(&[
        "--config",
        okta.to_str().unwrap(),
        "contract-test",
        "--provider",
        "entra",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.err
            .contains("has no [entra] section (it configures Okta)"),
        "{r:?}"
    );
    // App flags go with --base-url, not with the file.
    let cfg = entra_config(dir.path(), &mock, false, "");
    let r = with_entra_secrets(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "contract-test",
            "--provider",
            "entra",
            "--tenant-id",
            "x",
        ],
        "x",
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--tenant-id goes with --base-url"), "{r:?}");
    // The secret's variable is not set: named.
    let r = fctr(&[
        "--config",
        cfg.to_str().unwrap(),
        "contract-test",
        "--provider",
        "entra",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("CFG_ENTRA_SECRET is not set"), "{r:?}");
    // An unknown key: line and column.
    let bad = entra_config(dir.path(), &mock, false, "graph_url = \"x\"\n");
    let r = fctr(&[
        "--config",
        bad.to_str().unwrap(),
        "contract-test",
        "--provider",
        "entra",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.err.contains("graph_url") && r.err.contains("line 7, column 1"),
        "{r:?}"
    );
}
