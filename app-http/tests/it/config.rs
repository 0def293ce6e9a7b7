//! Configuration parsing and validation.

use fctr_portal::config::{Config, ConfigError};
use std::path::Path;

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let text = "[server]\nlisten = \"127.0.0.1:9000\"\nlistne = 1\n";
    let e = Config::parse(text, Path::new("x.toml")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("column"), "{msg}");
    assert!(msg.contains("listne"), "{msg}");
}

#[test]
fn a_secret_in_the_toml_is_refused() {
    let text = "[sign_in]\nissuer = \"https://x.okta.com\"\nclient_id = \"0oa1\"\nclient_secret = \"hunter2\"\n";
    let e = Config::parse(text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_secret"), "{e}");
    assert!(!e.contains("hunter2"), "the value is not echoed: {e}");
}

#[test]
fn a_full_config_validates_and_env_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "00abc").unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:9000"
public_url = "https://fctr.example.com"
tenant = "acme"
[okta]
org_url = "https://acme.okta.com"
api_token_file = "{}"
[sign_in]
issuer = "https://acme.okta.com"
client_id = "0oa1"
client_secret_file = "{}"
[pseudonymization]
key_id = "k1"
key_file = "{}"
[audit]
sqlite_path = "/tmp/a.sqlite"
[session]
idle_minutes = 10
"#,
        token.display(),
        secret.display(),
        key.display()
    );
    let mut c = Config::parse(&text, Path::new("x.toml")).unwrap();
    c.validate().unwrap();
    c.apply_env(|k| (k == "FCTR_SERVER_LISTEN").then(|| "127.0.0.1:9100".to_owned()))
        .unwrap();
    assert_eq!(c.server.listen.unwrap().port(), 9100);
    // Short key refused.
    std::fs::write(&key, "short").unwrap();
    let e = c.validate().unwrap_err();
    assert!(
        matches!(e, ConfigError::Invalid { ref key, .. } if key == "pseudonymization.key"),
        "{e}"
    );
}

#[test]
fn plain_http_is_only_for_loopback() {
    let text = "[server]\npublic_url = \"http://fctr.example.com\"\n";
    let c = Config::parse(text, Path::new("x.toml")).unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("https"), "{e}");
}

#[test]
fn check_config_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[server]\nbogus = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fctr-portal"))
        .arg("--check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("line 2"), "{err}");
}

#[test]
fn log_files_and_their_retention_are_configurable() {
    let text = "[logging]\ndir = \"/var/log/fctr\"\n\n[retention]\nruntime_log_days = 2\n";
    let c = Config::parse(text, Path::new("x.toml")).unwrap();
    assert_eq!(c.logging.dir.as_deref(), Some(Path::new("/var/log/fctr")));
    assert_eq!(c.retention.runtime_log_days, Some(2));
    let e = Config::parse("[logging]\nfile = \"x\"\n", Path::new("x.toml")).unwrap_err();
    assert!(e.to_string().contains("file"), "{e}");
}
