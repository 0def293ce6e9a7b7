//! `fctr audit verify | export | tail` and `fctr usage report` from a configuration whose `[audit]` names
//! PostgreSQL (`FCTR_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`; a fresh schema per
//! test, dropped after).

use crate::common::*;
use fctr_postgres::{PostgresOptions, PostgresStore};
use secrecy::SecretString;
use sqlx::{ConnectOptions as _, Connection as _, PgConnection};
use std::path::PathBuf;

fn postgres_url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema holding [`fill`]'s events, checkpointed under a key made for the test, and a configuration naming it
/// (the URL from a file, the checkpoint key from a file). The schema is dropped with this value.
struct PgAudit {
    dir: tempfile::TempDir,
    schema: String,
    config: PathBuf,
    key: String,
}

impl PgAudit {
    async fn new(n: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!("fctr_cli_{:016x}", rand::random::<u64>());
        let key = format!("{:064x}", rand::random::<u128>());
        let url_file = dir.path().join("pg-url");
        std::fs::write(&url_file, format!("{}\n", postgres_url())).unwrap();
        let key_file = dir.path().join("checkpoint.key");
        std::fs::write(&key_file, format!("{key}\n")).unwrap();
        let config = dir.path().join("fctr.toml");
        std::fs::write(
            &config,
            format!(
                "[audit]\npostgres_url_file = \"{}\"\npostgres_schema = \"{schema}\"\n\
                 checkpoint_key_file = \"{}\"\n",
                url_file.display(),
                key_file.display()
            ),
        )
        .unwrap();
        let me = Self {
            dir,
            schema,
            config,
            key,
        };
        let store = me.store().await;
        fill(&store, n).await;
        store.checkpoint().await.unwrap();
        store.close().await;
        me
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(
            SecretString::from(postgres_url()),
            PostgresOptions::default()
                .with_schema(self.schema.clone())
                .with_checkpoint_key(SecretString::from(self.key.clone())),
        )
        .await
        .unwrap()
    }

    async fn raw(&self) -> PgConnection {
        let opts: sqlx::postgres::PgConnectOptions = postgres_url().parse().unwrap();
        opts.options([("search_path", self.schema.as_str())])
            .connect()
            .await
            .unwrap()
    }

    async fn sql(&self, statement: &str) -> u64 {
        let mut c = self.raw().await;
        let n = sqlx::query(statement)
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
        c.close().await.unwrap();
        n
    }

    /// `fctr --config <this> ARGS`.
    fn fctr(&self, args: &[&str]) -> Run {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        fctr(&all)
    }
}

impl Drop for PgAudit {
    fn drop(&mut self) {
        let schema = self.schema.clone();
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
async fn verify_export_tail_and_usage_work_from_a_postgres_configuration() {
    let pg = PgAudit::new(6).await;
    let r = pg.fctr(&["audit", "verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("audit chain intact: 6 event(s) in 1 tenant chain(s)"),
        "{r:?}"
    );
    assert!(r.out.contains("tenant acme: head at seq 5"), "{r:?}");

    // The export is byte for byte what the same events in SQLite export.
    let sqlite = audit_file(pg.dir.path(), 6).await;
    let from_pg = pg.fctr(&["audit", "export"]);
    assert_eq!(from_pg.code, 0, "{from_pg:?}");
    assert_eq!(from_pg.out.lines().count(), 6);
    let from_file = fctr(&["audit", "export", "--db", sqlite.to_str().unwrap()]);
    let strip_ids = |s: &str| -> Vec<serde_json::Value> {
        s.lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object_mut().unwrap();
                // Each run mints fresh event ids (and so hashes); everything else is identical.
                o.remove("id");
                o.remove("hash");
                o.remove("prev_hash");
                v
            })
            .collect()
    };
    assert_eq!(strip_ids(&from_pg.out), strip_ids(&from_file.out));
    let r = pg.fctr(&[
        "audit",
        "export",
        "--since",
        "2026-11-01T12:02:00Z",
        "--until",
        "2026-11-01T12:04:00Z",
        "--format",
        "csv",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.out.lines().count(), 3, "{r:?}");

    let r = pg.fctr(&["audit", "tail", "-n", "2"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.out.lines().count(), 2, "{r:?}");
    assert!(r.out.contains("acme#5"), "{r:?}");

    let agent = agent_pseudo("agent2");
    let r = pg.fctr(&["usage", "report", "--month", "2026-11", "--format", "csv"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.out,
        format!(
            "month,tenant,agent,kind,count\n2026-11,acme,{a},verification,3\n2026-11,acme,{a},action,3\n",
            a = agent.as_str()
        )
    );
    let r = pg.fctr(&["usage", "report", "--month", "2026-11"]);
    assert!(r.out.contains("2 row(s), 6 in total"), "{r:?}");
}

#[tokio::test]
async fn verify_finds_tampering_in_postgres() {
    let pg = PgAudit::new(6).await;
    let n = pg
        .sql(
            "UPDATE audit_events SET event = replace(event, '\"outcome\":\"success\"', '\"outcome\":\"denied\"') \
             WHERE tenant = 'acme' AND seq = 3",
        )
        .await;
    assert_eq!(n, 1);
    let r = pg.fctr(&["audit", "verify"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("audit chain BROKEN: tenant acme, position 3"),
        "{r:?}"
    );
    assert!(r.out.contains("(edited)"), "{r:?}");
    assert!(r.err.contains("pg_dump"), "{r:?}");
    let r = pg.fctr(&["--json", "audit", "verify"]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["break"]["kind"], "edited");
}

#[tokio::test]
async fn the_configured_checkpoint_key_refuses_deleted_checkpoints_in_postgres() {
    let pg = PgAudit::new(4).await;
    assert_eq!(pg.fctr(&["audit", "verify"]).code, 0);
    assert_eq!(pg.sql("DELETE FROM audit_checkpoints").await, 1);
    let r = pg.fctr(&["audit", "verify"]);
    assert_eq!(r.code, 1, "deleted checkpoints accepted: {r:?}");
    assert!(r.out.contains("no checkpoint recorded"), "{r:?}");
    // A cut tail behind a checkpoint is found too.
    let store = pg.store().await;
    store.checkpoint().await.unwrap();
    store.close().await;
    assert_eq!(pg.sql("DELETE FROM audit_events WHERE seq >= 2").await, 2);
    let r = pg.fctr(&["audit", "verify"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("audit chain BROKEN: tenant acme, position 2"),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_exit_2_without_the_url() {
    let pg = PgAudit::new(1).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let password = format!("pw{:032x}", rand::random::<u128>());
    std::fs::write(
        pg.dir.path().join("pg-url"),
        format!("postgres://fctr:{password}@127.0.0.1:{port}/fctr"),
    )
    .unwrap();
    for args in [
        &["audit", "verify"][..],
        &["usage", "report", "--month", "2026-11"],
    ] {
        let r = pg.fctr(args);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.err.contains("PostgreSQL"), "{r:?}");
        assert!(
            !r.err.contains(&password) && !r.out.contains(&password),
            "{r:?}"
        );
        assert!(!r.err.contains("postgres://"), "{r:?}");
    }
    // A configuration naming both stores is refused, naming both keys.
    std::fs::write(
        &pg.config,
        "[audit]\nsqlite_path = \"/tmp/x.sqlite\"\npostgres_url_env = \"PG\"\n",
    )
    .unwrap();
    let r = pg.fctr(&["audit", "verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.err.contains("exactly one of sqlite_path") && r.err.contains("postgres_url_env"),
        "{r:?}"
    );
}
