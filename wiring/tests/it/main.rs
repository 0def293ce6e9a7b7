//! `Stack::from_config`: the stack both shells run on, built from a configuration file.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fctr_wiring::{Config, Stack, StackParts, Stores};
use std::path::Path;

fn config(dir: &Path) -> Config {
    let key = dir.join("key");
    std::fs::write(&key, format!("{}\n", "k".repeat(40))).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "t".repeat(20)).unwrap();
    let text = format!(
        "[server]\ntenant = \"acme\"\n\
         [okta]\norg_url = \"http://127.0.0.1:9\"\napi_token_file = \"{token}\"\n\
         [pseudonymization]\nkey_id = \"k1\"\nkey_file = \"{key}\"\n\
         [audit]\nsqlite_path = \"{audit}\"\ncheckpoint_key_file = \"{key}\"\n\
         [retention]\nusage_days = 400\n",
        token = token.display(),
        key = key.display(),
        audit = dir.join("data/audit.sqlite").display(),
    );
    Config::parse(&text, Path::new("x.toml")).unwrap()
}

#[tokio::test]
async fn a_configuration_builds_the_engine_on_sqlite_without_a_network_call() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::from_config(&config(dir.path())).await.unwrap();
    assert_eq!(stack.engine.tenant().as_str(), "acme");
    assert_eq!(stack.engine.retention().usage, chrono::Duration::days(400));
    assert!(stack.sqlite.is_some());
    assert!(
        dir.path().join("data/audit.sqlite").exists(),
        "directory and file created"
    );
    stack.engine.announce_policy().await.unwrap();
    stack.close().await;
}

#[tokio::test]
async fn a_shell_can_replace_parts_before_assembling() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = StackParts::from_config(&config(dir.path())).await.unwrap();
    parts.stores = Stores::Memory;
    let stack = Stack::assemble(parts).unwrap();
    assert!(stack.sqlite.is_none());
    stack.engine.announce_policy().await.unwrap();
}

#[tokio::test]
async fn a_missing_audit_section_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.audit = None;
    let e = Stack::from_config(&c).await.err().unwrap().to_string();
    assert!(e.contains("audit.sqlite_path: missing"), "{e}");
}
