//! Policy: `[four_eyes]` (actions and target classes that wait for a second agent's approval).

use super::*;
use fctr_core::policy::FourEyesPolicy;

#[test]
fn foureyes_is_off_by_default_and_in_the_example() {
    let d = Policy::default();
    let f = d.four_eyes();
    assert_eq!(*f, FourEyesPolicy::default());
    assert!(!f.enabled());
    assert_eq!(f.request_ttl_seconds, 600);
    for k in ActionKind::ALL {
        assert!(!f.applies(k, TargetClass::Privileged), "{k:?}");
    }
    assert_eq!(*Policy::parse(EXAMPLE).unwrap().four_eyes(), *f);
}

#[test]
fn foureyes_keys_set_actions_classes_approvers_and_ttl() {
    let p = parse(
        "[four_eyes]\nactions = [\"reset_factors\", \"issue_temporary_access_pass\"]\n\
         classes = [\"privileged\"]\napprover_roles = [\"tier3\"]\nrequest_ttl_seconds = 300\n",
    );
    let f = p.four_eyes();
    assert!(f.enabled());
    assert!(f.applies(ActionKind::ResetFactors, TargetClass::Standard));
    assert!(f.applies(ActionKind::IssueTemporaryAccessPass, TargetClass::Standard));
    assert!(!f.applies(ActionKind::ResetPassword, TargetClass::Standard));
    assert!(f.applies(ActionKind::ResetPassword, TargetClass::Privileged));
    assert!(f.may_approve("tier3"));
    assert!(!f.may_approve("tier2"));
    assert_eq!(f.request_ttl(), chrono::Duration::seconds(300));
    assert!(!p.same_rules(&Policy::default()));
}

#[test]
fn foureyes_approver_roles_may_name_file_roles() {
    let p = parse(&format!(
        "{ROLES}\n[four_eyes]\nactions = [\"reset_password\"]\napprover_roles = [\"senior\", \"auditor\"]\n"
    ));
    assert!(p.four_eyes().may_approve("auditor"));
    // With [[roles]] replacing the defaults, a default role name is unknown.
    let e = parse_err(&format!(
        "{ROLES}\n[four_eyes]\nactions = [\"reset_password\"]\napprover_roles = [\"tier3\"]\n"
    ));
    assert!(e.message.contains("unknown role `tier3`"), "{e}");
}

#[test]
fn foureyes_bad_keys_name_the_key_and_line() {
    let cases: [(&str, usize, &str); 10] = [
        (
            "[four_eyes]\nactions = [\"reset_pasword\"]\napprover_roles = [\"tier3\"]\n",
            2,
            "unknown action `reset_pasword` in four_eyes.actions",
        ),
        (
            "[four_eyes]\nactions = [\"unlock\", \"unlock\"]\napprover_roles = [\"tier3\"]\n",
            2,
            "listed twice",
        ),
        (
            "[four_eyes]\nclasses = [\"vip\"]\napprover_roles = [\"tier3\"]\n",
            2,
            "unknown target class `vip`",
        ),
        (
            "[four_eyes]\nclasses = [\"privileged\", \"privileged\"]\napprover_roles = [\"tier3\"]\n",
            2,
            "listed twice",
        ),
        (
            "[four_eyes]\nactions = [\"unlock\"]\n\napprover_roles = [\"tier9\"]\n",
            4,
            "unknown role `tier9`",
        ),
        (
            "[four_eyes]\nactions = [\"unlock\"]\napprover_roles = [\"tier3\", \"tier3\"]\n",
            3,
            "listed twice",
        ),
        (
            "[four_eyes]\nactions = [\"unlock\"]\n",
            2,
            "names no approver_roles",
        ),
        (
            "[four_eyes]\nclasses = [\"standard\"]\napprover_roles = []\n",
            3,
            "names no approver_roles",
        ),
        (
            "[four_eyes]\nactions = [\"unlock\"]\napprover_roles = [\"tier3\"]\nrequest_ttl_seconds = 59\n",
            4,
            "four_eyes.request_ttl_seconds must be between 60 and 3600",
        ),
        (
            "[four_eyes]\nactions = [\"unlock\"]\napprover_roles = [\"tier3\"]\napprovers = [\"tier3\"]\n",
            4,
            "unknown key `approvers`",
        ),
    ];
    for (text, line, needle) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
}

#[test]
fn foureyes_an_empty_section_holds_nothing_back() {
    let p = parse("[four_eyes]\napprover_roles = [\"tier3\"]\n");
    assert!(!p.four_eyes().enabled());
    let p = parse("[four_eyes]\n");
    assert!(!p.four_eyes().enabled());
}

#[test]
fn foureyes_explain_says_the_action_waits_for_an_approver() {
    let p = parse("[four_eyes]\nclasses = [\"privileged\"]\napprover_roles = [\"tier3\"]\n");
    let e = p.explain(
        p.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Privileged,
        false,
        None,
    );
    assert!(e.needs_approval);
    assert!(
        e.lines
            .iter()
            .any(|l| l.contains("second agent's approval") && l.contains("tier3")),
        "{:?}",
        e.lines
    );
    let e = p.explain(
        p.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        None,
    );
    assert!(!e.needs_approval);
    assert!(!e.lines.iter().any(|l| l.contains("second agent")));
}
