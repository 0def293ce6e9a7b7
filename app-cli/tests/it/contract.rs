//! `fctr mock-idp okta` as a child process, and `fctr contract-test` against it.

use crate::common::*;

#[test]
fn contract_test_against_a_mock_idp_passes_end_to_end() {
    let mock = Mock::start();
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        &mock.url,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out.contains("(fake Okta: fixture users) (read-only)"),
        "{r:?}"
    );
    for check in [
        "lookup_by_id",
        "lookup_by_login",
        "lookup_missing_user",
        "list_factors",
        "error_401_unauthorized",
    ] {
        assert!(r.out.contains(&format!("pass  {check}")), "{check}: {r:?}");
    }
    // Drivers exist only in-process: those checks skip, saying why.
    assert!(
        r.out
            .contains("skip  push_approved_with_right_number           no phone driver"),
        "{r:?}"
    );
    assert!(r.out.contains("read-only run"), "{r:?}");
    assert!(r.out.contains("0 failed"), "{r:?}");
    let r = fctr(&[
        "--json",
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        &mock.url,
    ]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["fake"], true);
    assert_eq!(
        v["results"].as_array().unwrap().len(),
        fctr_testkit::contract::CHECKS.len()
    );
}

#[test]
fn mutating_run_changes_only_the_designated_users() {
    let mock = Mock::start();
    let alice = "00ualice000000000000";
    let ivan = "00uivan0000000000000";
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        &mock.url,
        "--mutating",
        "--test-user",
        alice,
        "--login",
        "alice@example.com",
        "--lifecycle-user",
        &format!("suspend={ivan}"),
        "--lifecycle-user",
        &format!("unsuspend={ivan}"),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    for check in [
        "lifecycle_clear_sessions",
        "lifecycle_reset_password",
        "lifecycle_expire_password",
        "lifecycle_reset_factors",
        "lifecycle_suspend",
        "lifecycle_unsuspend",
    ] {
        assert!(r.out.contains(&format!("pass  {check}")), "{check}: {r:?}");
    }
    assert!(
        r.out
            .contains("skip  lifecycle_unlock                          no fixture user"),
        "{r:?}"
    );
    let (_, effects) = mock.control("GET", &format!("/_fake/users/{alice}/effects"), None);
    assert_eq!(effects["sessionsRevoked"], 1, "{effects}");
    let (_, ivan) = mock.control("GET", &format!("/_fake/users/{ivan}/effects"), None);
    assert_eq!(
        ivan["status"], "ACTIVE",
        "suspended, then unsuspended: {ivan}"
    );
    // Nobody else was touched.
    let (_, bob) = mock.control("GET", "/_fake/users/00ubob00000000000000/effects", None);
    assert_eq!(bob["sessionsRevoked"], 0, "{bob}");
    let (_, erin) = mock.control("GET", "/_fake/users/00uerin0000000000000/effects", None);
    assert_eq!(erin["status"], "LOCKED_OUT", "{erin}");
}

#[test]
fn mutating_needs_a_test_user() {
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        "http://127.0.0.1:9",
        "--mutating",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--test-user"), "{r:?}");
}

#[test]
fn a_wrong_fixture_fails_the_run_with_exit_1() {
    let mock = Mock::start();
    // bob's id with alice's login: lookup by login must not find the fixture user.
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        &mock.url,
        "--test-user",
        "00ubob00000000000000",
        "--login",
        "alice@example.com",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.contains("FAIL  lookup_by_login"), "{r:?}");
}

#[test]
fn an_unreachable_org_is_an_idp_error() {
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("cannot be reached"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
    let r = fctr(&["contract-test", "--provider", "okta"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--base-url"), "{r:?}");
}

#[test]
fn a_real_org_needs_a_token() {
    let r = fctr(&[
        "contract-test",
        "--provider",
        "okta",
        "--base-url",
        "https://acme.okta.com",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("FCTR_OKTA_TOKEN is not set"), "{r:?}");
}

#[test]
fn mock_idp_prints_url_credentials_and_users_and_refuses_bad_options() {
    let mock = Mock::start_with(&["--fault", "GET /api/v1/users/{id}=server_error:503@1"]);
    let (st, fixtures) = mock.control("GET", "/_fake/fixtures", None);
    assert_eq!(st, 200);
    assert_eq!(fixtures["users"][0]["handle"], "alice");
    let (_, faults) = mock.control("GET", "/_fake/faults", None);
    assert!(faults.to_string().contains("503"), "{faults}");
    let r = fctr(&["mock-idp", "entra", "--listen", "10.0.0.1:0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("loopback only"), "{r:?}");
    let r = fctr(&["mock-idp", "okta", "--listen", "0.0.0.0:0"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("loopback only"), "{r:?}");
    let r = fctr(&["mock-idp", "okta", "--fault", "explode"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn mock_idp_human_output_lists_what_to_use() {
    let mut child = cmd(&["mock-idp", "okta", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        text.push_str(&line);
        text.push('\n');
        if line.contains("Ctrl-C") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("url:          http://127.0.0.1:"), "{text}");
    assert!(
        text.contains("00fctr-fake-ssws-token-not-a-secret"),
        "{text}"
    );
    assert!(
        text.contains("alice   00ualice000000000000 alice@example.com"),
        "{text}"
    );
    assert!(
        text.contains("fctr contract-test --provider okta --base-url"),
        "{text}"
    );
}

#[test]
fn mock_idp_entra_serves_its_fixture_tenant() {
    let mut child = cmd(&["--json", "mock-idp", "entra", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(60));
    let v: Option<serde_json::Value> = line.ok().and_then(|l| serde_json::from_str(&l).ok());
    let fixtures = v
        .as_ref()
        .and_then(|v| v["base_url"].as_str())
        .map(|base| http("GET", &format!("{base}/_fake/fixtures"), None));
    let _ = child.kill();
    let _ = child.wait();
    let v = v.expect("mock-idp entra JSON line");
    assert!(v["graph_base"].as_str().unwrap().contains("/v1.0"), "{v}");
    assert!(
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["handle"] == "alice"),
        "{v}"
    );
    let (st, body) = fixtures.unwrap();
    assert_eq!(st, 200, "{body}");
}

// ---- `--mutating` against a deployment (issue 11, finding 9) ----

/// A deployment configuration pointing at the fake (so it counts as a real tenant: only `--base-url` can name a
/// fake), with `[contract_test]` when `allowed` is given.
fn deployment_config(
    dir: &std::path::Path,
    mock: &Mock,
    allowed: Option<&str>,
) -> std::path::PathBuf {
    let db = dir.join("audit.sqlite");
    let p = dir.join("fctr.toml");
    let mut text = format!(
        "[okta]\norg_url = \"{}\"\napi_token_env = \"CT_OKTA_TOKEN\"\n\n\
         [pseudonymization]\nkey_id = \"k1\"\nkey_env = \"CT_PSEUDO_KEY\"\n\n\
         [audit]\nsqlite_path = \"{}\"\n",
        mock.url,
        db.display()
    );
    if let Some(g) = allowed {
        text.push_str(&format!("\n[contract_test]\nallowed_group = \"{g}\"\n"));
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn mutate_with_config(cfg: &std::path::Path, user: &str) -> Run {
    let mut c = cmd(&[
        "contract-test",
        "--provider",
        "okta",
        "--config",
        cfg.to_str().unwrap(),
        "--mutating",
        "--test-user",
        user,
    ]);
    c.env("CT_OKTA_TOKEN", fctr_testkit::okta::DEFAULT_API_TOKEN)
        .env("CT_PSEUDO_KEY", "a pseudonymization key of 32+ bytes");
    run_with(c, None, std::time::Duration::from_secs(120))
}

fn sessions_revoked(mock: &Mock, user: &str) -> serde_json::Value {
    let (_, effects) = mock.control("GET", &format!("/_fake/users/{user}/effects"), None);
    effects["sessionsRevoked"].clone()
}

#[tokio::test]
async fn mutating_a_deployment_needs_the_allowed_group_and_is_audited() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let alice = "00ualice000000000000";
    let dave = "00udave0000000000000";

    // No [contract_test] allowed_group: refused before anything mutating runs.
    let cfg = deployment_config(dir.path(), &mock, None);
    let r = mutate_with_config(&cfg, alice);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("[contract_test] allowed_group"), "{r:?}");
    assert_eq!(sessions_revoked(&mock, alice), 0, "nothing mutated");

    // A test user outside the allowed group: refused, nothing mutated.
    let cfg = deployment_config(dir.path(), &mock, Some("fctr-privileged"));
    let r = mutate_with_config(&cfg, alice);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("not a member of the allowed group"), "{r:?}");
    assert_eq!(sessions_revoked(&mock, alice), 0, "nothing mutated");

    // A member (dave is in fctr-privileged): the run goes ahead, and every lifecycle call is audited.
    let r = mutate_with_config(&cfg, dave);
    assert!(r.out.contains("pass  lifecycle_clear_sessions"), "{r:?}");
    assert_eq!(sessions_revoked(&mock, dave), 1);
    let db = dir.path().join("audit.sqlite");
    let store = fctr_sqlite::SqliteStore::open(&db, fctr_sqlite::SqliteOptions::default())
        .await
        .unwrap();
    let events = fctr_ports::AuditLog::read(&store, &fctr_ports::AuditQuery::default())
        .await
        .unwrap();
    store.close().await;
    let intents: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == fctr_ports::EventKind::ActionIntent)
        .collect();
    let outcomes = events
        .iter()
        .filter(|e| e.event.kind == fctr_ports::EventKind::ActionOutcome)
        .count();
    assert!(!intents.is_empty(), "no audit record: {events:?}");
    assert_eq!(intents.len(), outcomes, "each call has intent and outcome");
    assert!(
        intents
            .iter()
            .any(|e| e.event.action == Some(fctr_ports::ActionKind::ClearSessions))
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(dave), "raw subject id in the audit: {text}");
    assert!(
        intents
            .iter()
            .all(|e| e.event.agent.is_some() && e.event.target.is_some())
    );
}
