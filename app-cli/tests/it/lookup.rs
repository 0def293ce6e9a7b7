//! `fctr lookup` against a `fctr mock-idp okta` child.

use crate::common::*;

fn lookup(mock: &Mock, extra: &[&str]) -> Run {
    let mut args = vec![
        "lookup",
        "--okta-url",
        &mock.url,
        "--agent-id",
        "agent2@example.com",
    ];
    args.extend_from_slice(extra);
    fctr(&args)
}

#[test]
fn lookup_by_login_prints_the_caller_card() {
    let mock = Mock::start();
    let r = lookup(&mock, &["alice@example.com", "--show-pii"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .starts_with("alice@example.com  (00ualice000000000000)"),
        "{r:?}"
    );
    assert!(
        r.out.contains("status:    active   target: standard"),
        "{r:?}"
    );
    assert!(r.out.contains("push "), "{r:?}");
    assert!(r.out.contains("accepted  <- recommended"), "{r:?}");
    assert!(r.out.contains("locked out:        no"), "{r:?}");
    assert!(r.out.contains("actions (role tier2):"), "{r:?}");
    assert!(
        r.out
            .contains("reset_factors                 not allowed (not_permitted_for_role)"),
        "{r:?}"
    );
}

#[test]
fn personal_data_is_redacted_when_stdout_is_not_a_terminal() {
    let mock = Mock::start();
    let r = lookup(&mock, &["00ualice000000000000"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.starts_with("[redacted]  ([redacted])"), "{r:?}");
    for pii in ["alice@example.com", "Alice", "555", "00ualice"] {
        assert!(
            !r.out.contains(pii) && !r.err.contains(pii),
            "{pii} leaked: {r:?}"
        );
    }
    assert!(r.err.contains("--show-pii"), "{r:?}");
}

#[test]
fn lookup_json_and_risk_facts() {
    let mock = Mock::start();
    let r = lookup(&mock, &["erin@example.com", "--show-pii", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["login"], "erin@example.com");
    assert_eq!(v["status"], "locked_out");
    assert_eq!(v["risk"]["locked_out"], true);
    assert_eq!(v["factors"][0]["kind"], "push");
    let carol = lookup(&mock, &["carol@example.com", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&carol.out).unwrap();
    assert_eq!(v["protected"], true);
}

#[test]
fn unknown_users_and_bad_agents_say_what_to_do() {
    let mock = Mock::start();
    let r = lookup(&mock, &["nobody@example.com"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("no user has that login"), "{r:?}");
    let r = lookup(&mock, &["00unobody00000000000"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("No such user"), "{r:?}");
    // agent0 is in no fctr group: no role.
    let r = fctr(&[
        "lookup",
        "--okta-url",
        &mock.url,
        "--agent-id",
        "agent0@example.com",
        "alice@example.com",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("map to no role"), "{r:?}");
    let r = fctr(&[
        "lookup",
        "--okta-url",
        &mock.url,
        "--agent-id",
        "x",
        "--role",
        "boss",
        "alice@example.com",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("use one of: tier1, tier2, tier3"), "{r:?}");
}

#[test]
fn without_configuration_only_a_local_fake_is_accepted() {
    let r = fctr(&[
        "lookup",
        "--okta-url",
        "https://acme.okta.com",
        "--agent-id",
        "a@example.com",
        "alice@example.com",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("only a local fake IdP"), "{r:?}");
    let r = fctr(&["lookup", "--agent-id", "a@example.com", "alice@example.com"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("no identity provider configured"), "{r:?}");
}

#[test]
fn a_refused_token_is_an_idp_error() {
    let mock = Mock::start();
    let mut c = cmd(&[
        "lookup",
        "--okta-url",
        &mock.url,
        "--agent-id",
        "agent2@example.com",
        "--role",
        "tier2",
        "alice@example.com",
    ]);
    c.env("FCTR_OKTA_TOKEN", "00wrong-token");
    let r = run_with(c, None, std::time::Duration::from_secs(60));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("fctr doctor"), "{r:?}");
    assert!(!r.err.contains("00wrong-token"), "{r:?}");
}
