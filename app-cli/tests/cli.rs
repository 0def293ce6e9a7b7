//! Runs the real `fctr` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn fctr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fctr"))
        .args(args)
        .output()
        .expect("run fctr");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn example_policy() -> String {
    format!("{}/../examples/policy.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn lint_accepts_the_example_policy() {
    let (code, out, _) = fctr(&["policy", "lint", &example_policy()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok"));
}

#[test]
fn lint_names_line_and_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(example_policy()).unwrap().replacen(
        "[verification]",
        "[verification]\nwindw = 3",
        1,
    );
    std::fs::write(&bad, text).unwrap();
    let (code, _, err) = fctr(&["policy", "lint", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("windw"), "{err}");
    assert!(err.contains("bad.toml:"), "{err}");
    let (code, out, _) = fctr(&["--json", "policy", "lint", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["errors"][0]["line"].as_u64().unwrap() > 1);
}

#[test]
fn lint_of_a_missing_file_is_a_usage_error() {
    let (code, _, err) = fctr(&["policy", "lint", "/nonexistent/policy.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"));
}

#[test]
fn explain_says_what_is_required() {
    let (code, out, _) = fctr(&[
        "policy",
        "explain",
        "--role",
        "tier2",
        "--action",
        "reset_password",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("allowed after verification"), "{out}");
    let (_, out, _) = fctr(&[
        "policy",
        "explain",
        "--role",
        "tier1",
        "--action",
        "reset_password",
    ]);
    assert!(
        out.contains("not allowed (not_permitted_for_role)"),
        "{out}"
    );
    let (_, out, _) = fctr(&[
        "policy",
        "explain",
        "--role",
        "tier3",
        "--action",
        "unlock",
        "--target-group",
        "fctr-protected",
    ]);
    assert!(out.contains("not allowed (protected_target)"), "{out}");
    let (code, out, _) = fctr(&[
        "--json",
        "policy",
        "explain",
        "--role",
        "tier3",
        "--action",
        "reset_factors",
        "--target-group",
        "fctr-privileged",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["required_factors"], 2);
}

#[test]
fn explain_rejects_an_unknown_action() {
    let (code, _, err) = fctr(&[
        "policy",
        "explain",
        "--role",
        "tier2",
        "--action",
        "format_disk",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown action"));
}
