//! Policy: errors.

use super::*;

/// Asserts the error's line, and that its message (and hint, when given) contain the fragments.
fn assert_error(text: &str, line: usize, message: &str, hint: Option<&str>) -> PolicyError {
    let e = parse_err(text);
    assert_eq!(e.line, line, "wrong line for {e}\n---\n{text}");
    assert!(e.column >= 1);
    assert!(
        e.message.contains(message),
        "message {e:?} lacks {message:?}"
    );
    if let Some(h) = hint {
        let got = e.hint.clone().unwrap_or_default();
        assert!(got.contains(h), "hint {got:?} lacks {h:?}");
    }
    e
}

#[test]
fn unknown_key_names_line_column_and_suggestion() {
    let text = "[verification]\n\n  windw = 10\n";
    let e = assert_error(
        text,
        3,
        "unknown key `windw`",
        Some("did you mean `window_minutes`?"),
    );
    assert_eq!(e.column, 3);
    assert_eq!(
        e.to_string(),
        "line 3, column 3: unknown key `windw` (hint: did you mean `window_minutes`?)"
    );
    assert_error("colour = 1\n", 1, "unknown key `colour`", None);
    assert_error(
        "[verfication]\nx = 1\n",
        1,
        "unknown key `verfication`",
        Some("`verification`"),
    );
    // `groups` belongs to the privileged class only.
    assert_error(
        "[factors.default]\ngroups = [\"x\"]\n",
        2,
        "unknown key `groups`",
        None,
    );
    // Role keys are checked too.
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = []\npermissions = []\npermisions = []\n",
        5,
        "unknown key `permisions`",
        Some("`permissions`"),
    );
}

#[test]
fn bad_types_are_errors() {
    assert_error(
        "[verification]\nwindow_minutes = \"ten\"\n",
        2,
        "wrong type",
        None,
    );
    assert_error(
        "[verification]\nsingle_use_grants = \"yes\"\n",
        2,
        "wrong type",
        None,
    );
    assert_error(
        "[factors.default]\naccepted = \"push\"\n",
        2,
        "wrong type",
        None,
    );
    assert_error(
        "[verification]\nwindow_minutes = 1.5\n",
        2,
        "wrong type",
        None,
    );
    assert_error("verification = 3\n", 1, "wrong type", None);
}

#[test]
fn out_of_range_values_are_errors() {
    let e = assert_error(
        "# comment\n[verification]\nwindow_minutes = 0\n",
        3,
        "window_minutes must be between 1 and 60, not 0",
        None,
    );
    assert_eq!(e.column, 18);
    assert_error(
        "[verification]\nwindow_minutes = 61\n",
        2,
        "window_minutes",
        None,
    );
    assert_error(
        "[verification]\ngrant_lifetime_minutes = -5\n",
        2,
        "not -5",
        None,
    );
    assert_error(
        "[verification]\ngrant_lifetime_minutes = 99999999999\n",
        2,
        "grant_lifetime_minutes",
        None,
    );
    for key in [
        "challenges_per_target_per_hour",
        "challenges_per_agent_per_hour",
        "wrong_codes_before_lockout",
        "lockout_minutes",
        "lookups_per_agent_per_hour",
    ] {
        assert_error(&format!("[limits]\n{key} = 0\n"), 2, key, None);
    }
    assert_error(
        "[temporary_access_pass]\nlifetime_minutes = 9\n",
        2,
        "between 10 and 480",
        None,
    );
    assert_error(
        "[temporary_access_pass]\nlifetime_minutes = 481\n",
        2,
        "between 10 and 480",
        None,
    );
    assert_error(
        "[factors.default]\nrequired = 0\n",
        2,
        "required must be between 1 and 3",
        None,
    );
    assert_error("[factors.privileged]\nrequired = 4\n", 2, "required", None);
    assert_error("version = 2\n", 1, "unsupported policy version 2", None);
    assert_error(
        "[verification]\npush_without_number_matching = \"allow\"\n",
        2,
        "unknown value `allow`",
        Some("require_another_factor"),
    );
}

#[test]
fn required_cannot_exceed_accepted() {
    assert_error(
        "[factors.default]\naccepted = [\"push\"]\nrequired = 2\n",
        3,
        "requires 2 distinct factors but accepts only 1",
        None,
    );
    // The privileged default of 2 with one accepted kind: points at the list.
    assert_error(
        "[factors.privileged]\naccepted = [\"totp\"]\n",
        2,
        "requires 2 distinct factors",
        Some("lower `required`"),
    );
    assert_error(
        "[factors.default]\naccepted = []\n",
        2,
        "accepts no factor kinds",
        None,
    );
}

#[test]
fn roles_are_checked() {
    let dup = "[[roles]]\nname = \"a\"\ngroups = []\npermissions = []\n\n[[roles]]\nname = \"a\"\ngroups = []\npermissions = []\n";
    assert_error(dup, 7, "role `a` is defined twice", None);
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = [\"g\"]\npermissions = [\"lookup\",\n  \"reset_pasword\"]\n",
        5,
        "unknown permission `reset_pasword`",
        Some("did you mean `reset_password`?"),
    );
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = [\"g\"]\npermissions = [\"lookup\", \"lookup\"]\n",
        4,
        "listed twice",
        None,
    );
    for bad in ["Tier1", "tier 1", "", "a.b", &"x".repeat(33)] {
        assert_error(
            &format!("[[roles]]\nname = {bad:?}\ngroups = []\npermissions = []\n"),
            2,
            "role name",
            None,
        );
    }
    assert!(
        Policy::parse(&format!(
            "[[roles]]\nname = \"{}\"\ngroups = []\npermissions = []\n",
            "a-b_9".repeat(6) + "zz"
        ))
        .is_ok()
    );
    assert_error(
        "[[roles]]\ngroups = []\npermissions = []\n",
        1,
        "missing key `name`",
        None,
    );
    assert_error(
        "[[roles]]\nname = \"a\"\ngroups = [\"g\", \"g\"]\npermissions = []\n",
        3,
        "group `g` is listed twice",
        None,
    );
    assert_error(
        "[protected]\ngroups = [\"ok\", \" padded\"]\n",
        2,
        "starts or ends with a space",
        None,
    );
    assert_error(
        "[protected]\ngroups = [\"\"]\n",
        2,
        "empty group name",
        None,
    );
    assert_error(
        "[protected]\ngroups = [\"   \"]\n",
        2,
        "empty group name",
        None,
    );
    // 256 characters is the longest group name.
    let longest = "g".repeat(256);
    parse(&format!("[protected]\ngroups = [\"{longest}\"]\n"));
    assert_error(
        &format!("[protected]\ngroups = [\"{longest}g\"]\n"),
        2,
        "group name longer than 256 characters",
        None,
    );
}

#[test]
fn never_accepted_factors_are_errors_citing_nist() {
    let e = assert_error(
        "[factors.default]\naccepted = [\"push\", \"email\"]\n",
        2,
        "`email` can never be an accepted factor",
        None,
    );
    assert!(e.message.contains("NIST SP 800-63B 5.1.3.1"), "{e}");
    assert_eq!(e.column, 21);
    let e = assert_error(
        "[factors.privileged]\naccepted = [\"security_question\", \"push\"]\n",
        2,
        "`security_question` can never be an accepted factor",
        None,
    );
    assert!(e.message.contains("not an authenticator"), "{e}");
    // Even with the restricted opt-in.
    assert_error(
        "[factors.default]\nallow_restricted_pstn = true\naccepted = [\"email\"]\n",
        3,
        "`email` can never",
        None,
    );
    for kind in [
        "webauthn",
        "platform_credential",
        "temporary_access_pass",
        "password",
    ] {
        assert_error(
            &format!("[factors.default]\naccepted = [\"totp\", \"{kind}\"]\n"),
            2,
            "cannot be verified by a helpdesk agent over the phone",
            None,
        );
    }
}

#[test]
fn restricted_pstn_needs_opt_in_in_the_same_section() {
    for kind in ["sms", "voice"] {
        assert_error(
            &format!("[factors.default]\naccepted = [\"push\", \"{kind}\"]\n"),
            2,
            "restricted authenticator",
            Some("allow_restricted_pstn = true"),
        );
    }
    // Opt-in in the other section does not count.
    assert_error(
        "[factors.default]\nallow_restricted_pstn = true\n\n[factors.privileged]\naccepted = [\"push\", \"sms\"]\n",
        5,
        "restricted authenticator",
        None,
    );
    let p = parse(PSTN);
    assert!(
        p.factor_rule(TargetClass::Standard)
            .allows_restricted_pstn()
    );
    assert!(p.factor_rule(TargetClass::Standard).accepts(&K::Sms));
    assert!(codes(&p).contains("restricted_pstn_allowed"));
    assert_eq!(
        assurance::classify(&K::Sms).label(),
        "restricted authenticator (SMS or voice call)"
    );
}

#[test]
fn unknown_factor_kinds_are_errors() {
    assert_error(
        "[factors.default]\naccepted = [\"pusj\"]\n",
        2,
        "unknown factor kind `pusj`",
        Some("did you mean `push`?"),
    );
    // Names the contract would take as `Other` are refused too.
    assert_error(
        "[factors.default]\naccepted = [\"u2f_legacy\"]\n",
        2,
        "unknown factor kind",
        None,
    );
    assert_error(
        "[factors.default]\naccepted = [\"Push\"]\n",
        2,
        "unknown factor kind",
        None,
    );
    assert_error(
        "[factors.default]\naccepted = [\"push\", \"totp\", \"push\"]\n",
        2,
        "`push` is listed twice",
        None,
    );
}

#[test]
fn syntax_errors_name_the_line() {
    assert_error("[verification]\nwindow_minutes = \n", 2, "", None);
    assert_error("[verification\nwindow_minutes = 10\n", 1, "", None);
    assert_error("a = 1\nb = \"unterminated\n", 2, "", None);
    // Duplicate keys and tables are TOML errors.
    assert_error(
        "[verification]\nwindow_minutes = 5\nwindow_minutes = 6\n",
        3,
        "",
        None,
    );
    assert_error("[limits]\n[limits]\n", 2, "", None);
}
