//! `fctr verify` (push and TOTP, `--then`) and `fctr act` against a `fctr mock-idp okta` child.

use crate::common::*;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

fn verify_cmd(mock: &Mock, db: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "verify",
        "--okta-url",
        &mock.url,
        "--agent-id",
        "agent2@example.com",
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    cmd(&args)
}

#[test]
fn totp_from_stdin_then_reset_password_prints_the_link_once() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let code = mock.totp("00ualice000000000000");
    let c = verify_cmd(
        &mock,
        &db,
        &[
            "alice@example.com",
            "--factor",
            "totp",
            "--then",
            "reset_password",
            "--show-secret",
        ],
    );
    let r = run_with(c, Some(&format!("{code}\n")), Duration::from_secs(60));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("VERIFIED: AAL2-capable authenticator verified"),
        "{r:?}"
    );
    assert!(r.out.contains("DONE: reset the password."), "{r:?}");
    let link = r
        .out
        .lines()
        .find(|l| l.contains("/reset_password/"))
        .expect("reset link")
        .trim()
        .to_owned();
    assert_eq!(r.out.matches(&link).count(), 1, "printed once: {r:?}");
    assert!(!r.err.contains(&link), "{r:?}");
    // The run was audited durably: the chain verifies, and nothing in it names the caller or the secret.
    let v = fctr(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{v:?}");
    let export = fctr(&["audit", "export", "--db", db.to_str().unwrap()]);
    assert!(
        export.out.contains("\"kind\":\"action_outcome\""),
        "{export:?}"
    );
    for secret in [link.as_str(), "alice", &code] {
        assert!(!export.out.contains(secret), "{secret} in the audit log");
    }
    let u = fctr(&[
        "usage",
        "report",
        "--db",
        db.to_str().unwrap(),
        "--month",
        &chrono::Utc::now().format("%Y-%m").to_string(),
        "--format",
        "csv",
    ]);
    assert!(u.out.contains(",verification,1"), "{u:?}");
}

#[test]
fn a_wrong_code_is_refused_and_the_caller_is_not_verified() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let good: u32 = mock.totp("00ualice000000000000").parse().unwrap();
    let bad = format!("{:06}", (good + 500_000) % 1_000_000);
    let c = verify_cmd(&mock, &db, &["alice@example.com", "--factor", "totp"]);
    let r = run_with(
        c,
        Some(&format!("{bad}\n{bad}\n{bad}\n")),
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("The code is wrong."), "{r:?}");
    assert!(!r.out.contains("VERIFIED:"), "{r:?}");
}

/// Starts `verify` with a push, reads the number it prints, answers on the fake phone, returns the run.
fn push_and_answer(
    mock: &Mock,
    db: &std::path::Path,
    extra: &[&str],
    approve: bool,
) -> (i32, String) {
    let mut child = verify_cmd(mock, db, extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut text = String::new();
    let number = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the number line");
        text.push_str(&line);
        text.push('\n');
        if let Some(n) = line.strip_prefix("number: ") {
            break n.trim().parse::<u8>().unwrap();
        }
    };
    let (_, pushes) = mock.control("GET", "/_fake/pushes", None);
    let push = pushes
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["correctAnswer"] == number)
        .unwrap_or_else(|| panic!("no pending push with {number}: {pushes}"));
    let tx_id = push["transactionId"].as_str().unwrap();
    let body = if approve {
        format!("{{\"action\":\"approve\",\"number\":{number}}}")
    } else {
        "{\"action\":\"deny\"}".to_owned()
    };
    let (st, _) = mock.control(
        "POST",
        &format!("/_fake/pushes/{tx_id}/answer"),
        Some(&body),
    );
    assert_eq!(st, 200);
    let code = wait_for(&mut child, Duration::from_secs(60));
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
        text.push_str(&line);
        text.push('\n');
    }
    (code, text)
}

#[test]
fn push_approved_on_the_phone_then_clear_sessions() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let (code, out) = push_and_answer(
        &mock,
        &db,
        &["bob@example.com", "--then", "clear_sessions"],
        true,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Ask the caller to pick this number"), "{out}");
    assert!(
        out.contains(" ### ") || out.contains("#####") || out.contains("  #  "),
        "large type: {out}"
    );
    assert!(out.contains("VERIFIED:"), "{out}");
    assert!(out.contains("DONE: sign the user out everywhere."), "{out}");
    let (_, effects) = mock.control("GET", "/_fake/users/00ubob00000000000000/effects", None);
    assert_eq!(effects["sessionsRevoked"], 1, "{effects}");
}

#[test]
fn push_denied_is_not_verified_and_runs_no_action() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let (code, out) = push_and_answer(
        &mock,
        &db,
        &["bob@example.com", "--then", "clear_sessions"],
        false,
    );
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("DONE"), "{out}");
    // The default policy's "not me" response to a denied push signs the caller out once (docs/alarms.md); the
    // agent's own clear_sessions would have been a second revocation.
    let (_, effects) = mock.control("GET", "/_fake/users/00ubob00000000000000/effects", None);
    assert_eq!(effects["sessionsRevoked"], 1, "{effects}");
    assert_eq!(effects["pushesSent"], 1, "{effects}");
}

#[test]
fn refusals_happen_before_any_push() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    // A secret-returning action with stdout not a terminal and no --show-secret.
    let r = run_with(
        verify_cmd(
            &mock,
            &db,
            &["alice@example.com", "--then", "reset_password"],
        ),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--show-secret"), "{r:?}");
    // An action the role may not run.
    let r = run_with(
        verify_cmd(&mock, &db, &["alice@example.com", "--then", "suspend"]),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("nothing was sent to the caller"), "{r:?}");
    // A protected caller.
    let r = run_with(
        verify_cmd(&mock, &db, &["carol@example.com"]),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("protected"), "{r:?}");
    let (_, pushes) = mock.control("GET", "/_fake/pushes", None);
    assert_eq!(pushes.as_array().map(Vec::len), Some(0), "{pushes}");
}

#[test]
fn act_alone_points_to_verify_then() {
    let r = fctr(&["act", "alice@example.com", "unlock"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("live grant"), "{r:?}");
    assert!(r.err.contains("fctr verify <user> --then unlock"), "{r:?}");
    let r = fctr(&["act", "alice@example.com", "format_disk"]);
    assert_eq!(r.code, 2, "{r:?}");
}
