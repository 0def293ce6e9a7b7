//! `fctr changes` against a `fctr mock-idp okta` child: a reset through fctr is not reported, one made in the
//! console is, with its admin.

use crate::common::*;
use std::time::Duration;

const TOKEN: &str = "00fctr-fake-ssws-token-not-a-secret";
const KEY: &str = "a pseudonymization key of 32+ bytes";

fn config(dir: &std::path::Path, org: &str, db: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("fctr.toml");
    std::fs::write(
        &p,
        format!(
            "[okta]\norg_url = \"{org}\"\napi_token_env = \"CHG_OKTA_TOKEN\"\n\n\
             [pseudonymization]\nkey_id = \"k1\"\nkey_env = \"CHG_PSEUDO_KEY\"\n\n\
             [audit]\nsqlite_path = \"{}\"\ncheckpoint_key_env = \"CHG_CKPT_KEY\"\n",
            db.display()
        ),
    )
    .unwrap();
    p
}

fn with_env(mut c: std::process::Command) -> std::process::Command {
    c.env("CHG_OKTA_TOKEN", TOKEN)
        .env("CHG_PSEUDO_KEY", KEY)
        .env(
            "CHG_CKPT_KEY",
            "a checkpoint key of at least 32 bytes, test only",
        );
    c
}

fn changes(cfg: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "--json",
        "--config",
        cfg.to_str().unwrap(),
        "changes",
        "--since",
        "1h",
    ];
    args.extend_from_slice(extra);
    run_with(with_env(cmd(&args)), None, Duration::from_secs(60))
}

#[test]
fn a_reset_through_fctr_is_not_reported_one_in_the_console_is() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.sqlite");
    let cfg = config(dir.path(), &mock.url, &db);

    // Through fctr: verify Alice by TOTP, reset her password.
    let code = mock.totp("00ualice000000000000");
    let c = with_env(cmd(&[
        "--config",
        cfg.to_str().unwrap(),
        "verify",
        "--agent-id",
        "agent2@example.com",
        "alice@example.com",
        "--factor",
        "totp",
        "--then",
        "reset_password",
        "--show-secret",
    ]));
    let r = run_with(c, Some(&format!("{code}\n")), Duration::from_secs(60));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("DONE: reset the password."), "{r:?}");

    let r = changes(&cfg, &[]);
    assert_eq!(r.code, 0, "fctr's own reset is accounted for: {r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v}");

    // In the console: an admin resets Bob's password.
    let (st, body) = mock.control(
        "POST",
        "/_fake/console-change",
        Some(
            r#"{"admin":"rogue.admin@example.com","user":"00ubob00000000000000","eventType":"user.account.reset_password"}"#,
        ),
    );
    assert_eq!(st, 204, "{body}");
    let r = changes(&cfg, &[]);
    assert_eq!(
        r.code, 1,
        "a change outside the gate fails the check: {r:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let f = &v["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["severity"], "outside_gate");
    assert_eq!(f[0]["action"], "reset_password");
    assert_eq!(f[0]["actor_kind"], "admin");
    assert!(f[0]["target"].as_str().unwrap().starts_with("k1:"), "{v}");
    assert!(
        !r.out.contains("00ubob") && !r.out.contains("rogue.admin"),
        "JSON holds pseudonyms only without --reveal: {r:?}"
    );
    let r = changes(&cfg, &["--reveal", "--no-fail"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["findings"][0]["target_id"], "00ubob00000000000000");
    assert_eq!(v["findings"][0]["actor"], "rogue.admin@example.com");
    // The text view names the admin for the person reading it.
    let r = run_with(
        with_env(cmd(&["--config", cfg.to_str().unwrap(), "changes"])),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.out.contains("admin: rogue.admin@example.com"), "{r:?}");
}

#[test]
fn without_a_configuration_it_says_what_to_pass() {
    let r = fctr(&["changes"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--config"), "{r:?}");
}
