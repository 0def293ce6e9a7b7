//! `fctr policy lint | explain`.

fn fctr(args: &[&str]) -> (i32, String, String) {
    let r = crate::common::fctr(args);
    (r.code, r.out, r.err)
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

#[test]
fn lint_warns_about_risky_settings_and_deny_warnings_fails() {
    let dir = tempfile::tempdir().unwrap();
    let risky = dir.path().join("risky.toml");
    let text = std::fs::read_to_string(example_policy())
        .unwrap()
        .replacen("window_minutes = 10", "window_minutes = 45", 1)
        .replacen(
            "accepted = [\"push\", \"totp\", \"hardware_otp\", \"hotp\"]\nrequired = 1\nallow_restricted_pstn = false",
            "accepted = [\"push\", \"totp\", \"hardware_otp\", \"hotp\", \"sms\"]\nrequired = 1\nallow_restricted_pstn = true",
            1,
        );
    std::fs::write(&risky, text).unwrap();
    let f = risky.to_str().unwrap();
    let (code, out, _) = fctr(&["policy", "lint", f]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: long_verification_window"), "{out}");
    assert!(out.contains("warning: restricted_pstn_allowed"), "{out}");
    assert!(out.contains("ok (2 warning(s))"), "{out}");
    let (code, _, err) = fctr(&["policy", "lint", "--deny-warnings", f]);
    assert_eq!(code, 1, "{err}");
    // The example policy has none: --deny-warnings passes.
    let (code, _, _) = fctr(&["policy", "lint", "--deny-warnings", &example_policy()]);
    assert_eq!(code, 0);
}
