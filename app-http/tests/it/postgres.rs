//! The portal on PostgreSQL: the real binary, started from a configuration whose `[audit]` names a PostgreSQL
//! database (`FCTR_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; a fresh schema, dropped
//! after), writes its audit events there and checkpoints them under the configured key.

use fctr_ports::{AuditLog as _, AuditQuery, EventKind, SecretString};
use fctr_postgres::{PostgresOptions, PostgresStore};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use secrecy::ExposeSecret as _;
use sqlx::{ConnectOptions as _, Connection as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn postgres_url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema, dropped when this value is dropped (passed or not).
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
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

#[tokio::test]
async fn the_portal_binary_audits_and_checkpoints_into_postgres() {
    let fake = FakeOkta::start(FakeOktaOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema(format!("fctr_portal_{:016x}", rand::random::<u64>()));
    let checkpoint_key = format!("{:064x}", rand::random::<u128>());
    let write = |name: &str, v: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, v).unwrap();
        p.display().to_string()
    };
    let client = fake.oidc_client();
    let text = format!(
        "[server]\npublic_url = \"http://127.0.0.1:9\"\nlisten = \"127.0.0.1:0\"\ntenant = \"ops\"\n\n\
         [okta]\norg_url = \"{org}\"\napi_token_file = \"{token}\"\n\n\
         [sign_in]\nissuer = \"{issuer}\"\nclient_id = \"{cid}\"\nclient_secret_file = \"{secret}\"\n\n\
         [pseudonymization]\nkey_id = \"k1\"\nkey_file = \"{pseudo}\"\n\n\
         [audit]\npostgres_url_file = \"{url}\"\npostgres_schema = \"{schema}\"\n\
         checkpoint_key_file = \"{key}\"\ncheckpoint_interval_secs = 1\n",
        org = fake.base_url(),
        token = write("okta-token", fake.api_token()),
        issuer = client.issuer,
        cid = client.client_id,
        secret = write("oidc-secret", client.client_secret.expose_secret()),
        pseudo = write("pseudo-key", &"7".repeat(64)),
        url = write("pg-url", &postgres_url()),
        schema = schema.0,
        key = write("checkpoint-key", &checkpoint_key),
    );
    let cfg = dir.path().join("portal.toml");
    std::fs::write(&cfg, text).unwrap();
    let portal = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fctr-portal"));
        c.args(args).env_remove("FCTR_CONFIG");
        c
    };
    let check = portal(&["--check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");

    let mut child = portal(&["--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let connect = |key: Option<&str>| {
        let mut o = PostgresOptions::default().with_schema(schema.0.clone());
        if let Some(k) = key {
            o = o.with_checkpoint_key(SecretString::from(k.to_owned()));
        }
        PostgresStore::connect(SecretString::from(postgres_url()), o)
    };
    // The portal creates the schema, announces its policy (an audit event) and records a first checkpoint.
    let start = Instant::now();
    let found = loop {
        if start.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(store) = connect(None).await else {
            continue;
        };
        let cps = store.latest_checkpoints().await.unwrap_or_default();
        store.close().await;
        if !cps.is_empty() {
            break Some(cps);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let cps = found.expect("the portal recorded no checkpoint in PostgreSQL within 30 s");
    assert_eq!(cps[0].tenant.to_string(), "ops");

    let store = connect(Some(&checkpoint_key)).await.unwrap();
    let events = store.read(&AuditQuery::default()).await.unwrap();
    assert!(
        events
            .iter()
            .any(|s| s.event.kind == EventKind::PolicyLoaded),
        "{events:?}"
    );
    let verdict = store.verify_chain().await.unwrap();
    store.close().await;
    assert!(verdict.is_ok(), "the configured key verifies: {verdict:?}");
    let store = connect(Some("another key of at least thirty-two bytes"))
        .await
        .unwrap();
    let forged = store.verify_chain().await.unwrap();
    store.close().await;
    assert!(forged.is_err(), "another key must not verify the MAC");
}
