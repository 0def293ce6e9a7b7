//! `Stack::from_config`: the stack both shells run on, built from a configuration file, on SQLite or on
//! PostgreSQL (`FCTR_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; a fresh schema per
//! test, dropped after).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fctr_ports::{AuditLog as _, AuditQuery, Month, UsageLedger as _};
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
    assert_eq!(stack.durable.as_ref().map(|d| d.kind()), Some("sqlite"));
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
    assert!(stack.durable.is_none());
    stack.engine.announce_policy().await.unwrap();
}

#[tokio::test]
async fn a_missing_audit_section_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.audit = None;
    let e = Stack::from_config(&c).await.err().unwrap().to_string();
    assert!(
        e.contains("audit.sqlite_path, audit.postgres_url: missing"),
        "{e}"
    );
}

fn postgres_url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema, dropped (with its tables) when this value is dropped, whether the test passed or not.
struct Schema(String);

impl Schema {
    fn new() -> Self {
        Self(format!("fctr_w_{:016x}", rand::random::<u64>()))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        use sqlx::{ConnectOptions as _, Connection as _};
        let schema = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let opts: sqlx::postgres::PgConnectOptions = postgres_url().parse().ok()?;
                let mut c = opts.connect().await.ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut c)
                    .await
                    .ok()?;
                c.close().await.ok()
            })
        })
        .join();
    }
}

/// The same configuration with `[audit]` naming PostgreSQL: the URL from a file, a schema of its own.
fn postgres_config(dir: &Path, schema: &str) -> Config {
    config(dir); // writes the key and token files
    let url = dir.join("pg-url");
    std::fs::write(&url, format!("{}\n", postgres_url())).unwrap();
    let text = format!(
        "[server]\ntenant = \"acme\"\n\
         [okta]\norg_url = \"http://127.0.0.1:9\"\napi_token_file = \"{token}\"\n\
         [pseudonymization]\nkey_id = \"k1\"\nkey_file = \"{key}\"\n\
         [audit]\npostgres_url_file = \"{url}\"\npostgres_schema = \"{schema}\"\ncheckpoint_key_file = \"{key}\"\n",
        token = dir.join("token").display(),
        key = dir.join("key").display(),
        url = url.display(),
    );
    Config::parse(&text, Path::new("x.toml")).unwrap()
}

#[tokio::test]
async fn a_configuration_builds_the_engine_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new();
    let stack = Stack::from_config(&postgres_config(dir.path(), &schema.0))
        .await
        .unwrap();
    let durable = stack.durable.clone().unwrap();
    assert_eq!(durable.kind(), "postgres");
    stack.engine.announce_policy().await.unwrap();
    // The engine's audit log is the PostgreSQL store: the event is there, checkpointed under the configured key.
    let events = durable.read(&AuditQuery::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(durable.checkpoint().await.unwrap().len(), 1);
    assert_eq!(durable.latest_checkpoints().await.unwrap().len(), 1);
    assert_eq!(durable.verify_chain().await.unwrap().unwrap().events, 1);
    let mut out: Vec<u8> = Vec::new();
    assert_eq!(
        durable
            .export_jsonl(&AuditQuery::default(), &mut out)
            .await
            .unwrap(),
        1
    );
    let month = Month::parse("2026-11").unwrap();
    assert!(durable.report(month).await.unwrap().is_empty());
    assert_eq!(
        durable.report_csv(month).await.unwrap(),
        "month,tenant,agent,kind,count\n"
    );
    assert!(format!("{stack:?}").contains("postgres"));
    assert!(!format!("{stack:?}").contains("127.0.0.1"));
    stack.close().await;
}

#[tokio::test]
async fn an_unreachable_postgres_is_a_start_error_without_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = postgres_config(dir.path(), "public");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let password = format!("pw{:032x}", rand::random::<u128>());
    let url = dir.path().join("pg-url");
    std::fs::write(
        &url,
        format!("postgres://fctr:{password}@127.0.0.1:{port}/fctr"),
    )
    .unwrap();
    c.audit.as_mut().unwrap().postgres_url = Some(fctr_wiring::SecretSource::File(url));
    let e = StackParts::from_config(&c).await.err().unwrap();
    let text = format!("{e} {e:?}");
    assert!(text.contains("audit store (PostgreSQL)"), "{text}");
    assert!(
        !text.contains(&password) && !text.contains("postgres://"),
        "{text}"
    );
}

fn with_redis(mut c: Config, dir: &Path, url: &str) -> Config {
    let f = dir.join("redis-url");
    std::fs::write(&f, url).unwrap();
    c.state.redis_url = Some(fctr_wiring::SecretSource::File(f));
    c.state.key_prefix = Some(format!("wiring{:08x}", rand::random::<u32>()));
    c
}

fn redis_url() -> String {
    std::env::var("FCTR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[test]
fn redis_state_with_a_sqlite_audit_file_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let c = with_redis(config(dir.path()), dir.path(), &redis_url());
    let e = c.check_topology().unwrap_err().to_string();
    assert!(e.contains("audit.sqlite_path"), "{e}");
    assert!(e.contains("postgres_url_env"), "the fix is named: {e}");
}

#[test]
fn postgres_audit_with_memory_state_warns_one_replica_only() {
    let dir = tempfile::tempdir().unwrap();
    let c = postgres_config(dir.path(), "public");
    c.check_topology().unwrap();
    let w = c.topology_warnings().join("\n");
    assert!(
        w.contains("ONE replica") && w.contains("redis_url_env"),
        "{w}"
    );
    let c = with_redis(c, dir.path(), &redis_url());
    c.check_topology().unwrap();
    assert!(c.topology_warnings().is_empty());
    // And the single-node default says nothing.
    assert!(config(dir.path()).topology_warnings().is_empty());
}

#[test]
fn a_redis_url_must_be_one_and_is_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("pw{:016x}", rand::random::<u64>());
    let c = with_redis(
        postgres_config(dir.path(), "public"),
        dir.path(),
        &format!("http://user:{secret}@example.invalid"),
    );
    let e = c.state.redis_url().unwrap_err().to_string();
    assert!(e.contains("state.redis_url") && !e.contains(&secret), "{e}");
    let mut c = config(dir.path());
    c.state.key_prefix = Some("has space".to_owned());
    assert!(c.state.key_prefix().is_err());
}

#[tokio::test]
async fn a_configuration_with_redis_and_postgres_builds_a_stack_on_both() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new();
    let c = with_redis(
        postgres_config(dir.path(), &schema.0),
        dir.path(),
        &redis_url(),
    );
    let stack = Stack::from_config(&c).await.unwrap();
    assert!(stack.shared.is_shared());
    assert!(stack.shared.ready().await);
    assert!(format!("{:?}", stack.shared).contains("Redis"));
    stack.engine.announce_policy().await.unwrap();
    stack.close().await;
}

#[tokio::test]
async fn an_unreachable_redis_is_a_start_error_without_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secret = format!("pw{:016x}", rand::random::<u64>());
    let c = with_redis(
        postgres_config(dir.path(), "public"),
        dir.path(),
        &format!("redis://:{secret}@127.0.0.1:{port}"),
    );
    let e = StackParts::from_config(&c).await.err().unwrap();
    let text = format!("{e} {e:?}");
    assert!(text.contains("shared state (Redis"), "{text}");
    assert!(!text.contains(&secret), "{text}");
}

fn four_eyes_policy() -> fctr_core::policy::Policy {
    fctr_core::policy::Policy::parse(
        "[four_eyes]\nactions = [\"reset_factors\"]\napprover_roles = [\"tier3\"]\n",
    )
    .unwrap()
}

#[tokio::test]
async fn a_four_eyes_policy_runs_on_the_memory_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = StackParts::from_config(&config(dir.path())).await.unwrap();
    parts.policy = four_eyes_policy();
    assert!(parts.shared.approvals.is_some());
    let stack = Stack::assemble(parts).unwrap();
    assert!(stack.engine.policy().four_eyes().enabled());
    stack.close().await;
}

#[tokio::test]
async fn a_four_eyes_policy_on_a_state_without_an_approval_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut parts = StackParts::from_config(&config(dir.path())).await.unwrap();
    parts.policy = four_eyes_policy();
    parts.shared.approvals = None;
    let e = Stack::assemble(parts).err().unwrap().to_string();
    assert!(
        e.contains("[four_eyes]") && e.contains("approval store"),
        "{e}"
    );
}

#[tokio::test]
async fn a_four_eyes_policy_runs_on_the_redis_state() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new();
    let c = with_redis(
        postgres_config(dir.path(), &schema.0),
        dir.path(),
        &redis_url(),
    );
    let mut parts = StackParts::from_config(&c).await.unwrap();
    parts.policy = four_eyes_policy();
    assert!(parts.shared.approvals.is_some());
    let stack = Stack::assemble(parts).unwrap();
    assert!(stack.shared.is_shared());
    stack.close().await;
}
