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
        (
            "lifecycle_reset_factors",
            "capability: this IdP cannot reset all MFA factors",
        ),
    ] {
        let line = r
            .out
            .lines()
            .find(|l| l.starts_with(&format!("skip  {check} ")))
            .unwrap_or_else(|| panic!("{check} not skipped: {r:?}"));
        assert!(line.ends_with(why), "{line}");
    }
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
    // The configuration file has no [entra] section: --base-url only, and the error says so.
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
    assert!(r.err.contains("no [entra] section"), "{r:?}");
    assert!(r.err.contains("--base-url"), "{r:?}");
    let r = fctr(&["contract-test", "--provider", "entra"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--base-url"), "{r:?}");
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
