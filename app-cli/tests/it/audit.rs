//! `fctr audit verify | export | tail` and `fctr usage report`.

use crate::common::*;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

#[tokio::test]
async fn verify_an_intact_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 6).await;
    let r = fctr(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("audit chain intact: 6 event(s) in 1 tenant chain(s)"),
        "{r:?}"
    );
    assert!(r.out.contains("tenant acme: head at seq 5"), "{r:?}");
    let r = fctr(&["--json", "audit", "verify", "--db", db.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 6);
}

#[tokio::test]
async fn verify_a_tampered_file_exits_1_naming_tenant_position_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 6).await;
    tamper(&db, 3).await;
    let r = fctr(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("audit chain BROKEN: tenant acme, position 3"),
        "{r:?}"
    );
    assert!(r.out.contains("(edited)"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
    let r = fctr(&["--json", "audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["break"]["tenant"], "acme");
    assert_eq!(v["break"]["position"], 3);
    assert_eq!(v["break"]["kind"], "edited");
}

#[test]
fn verify_without_a_database_is_a_usage_error() {
    let r = fctr(&["audit", "verify", "--db", "/nonexistent/audit.sqlite"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("no audit database at"), "{r:?}");
    assert!(!std::path::Path::new("/nonexistent/audit.sqlite").exists());
    let r = fctr(&["audit", "verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("next: pass --db FILE"), "{r:?}");
}

#[tokio::test]
async fn the_database_comes_from_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 2).await;
    let cfg = dir.path().join("fctr.toml");
    std::fs::write(
        &cfg,
        format!("[audit]\nsqlite_path = \"{}\"\n", db.display()),
    )
    .unwrap();
    let r = fctr(&["--config", cfg.to_str().unwrap(), "audit", "verify"]);
    assert_eq!(r.code, 0, "{r:?}");
    // A configuration without [audit] says what to add.
    std::fs::write(&cfg, "[policy]\n").unwrap();
    let r = fctr(&["--config", cfg.to_str().unwrap(), "audit", "verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("has no [audit] sqlite_path"), "{r:?}");
    // An unknown key is refused with its line, by the portal's own parser.
    std::fs::write(&cfg, "[audit]\nsqlite_pth = \"x\"\n").unwrap();
    let r = fctr(&["--config", cfg.to_str().unwrap(), "audit", "verify"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("sqlite_pth"), "{r:?}");
}

#[tokio::test]
async fn export_jsonl_has_every_event_with_its_hashes_and_honours_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 6).await;
    let d = db.to_str().unwrap();
    let r = fctr(&["audit", "export", "--db", d]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<serde_json::Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["seq"], 0);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    // Events at 12:00 .. 12:05; [12:02, 12:04) holds seq 2 and 3.
    let r = fctr(&[
        "audit",
        "export",
        "--db",
        d,
        "--since",
        "2026-11-01T12:02:00Z",
        "--until",
        "2026-11-01T12:04:00Z",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let seqs: Vec<u64> = r
        .out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![2, 3]);
}

#[tokio::test]
async fn export_csv_and_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 4).await;
    let out = dir.path().join("export.csv");
    let r = fctr(&[
        "audit",
        "export",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.err.contains("wrote 4 event(s)"), "{r:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "tenant,seq,at,kind,outcome,agent,target,factor,action,reason,request_id,client_ip,detail,prev_hash,hash"
    );
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &first[..5],
        &[
            "acme",
            "0",
            "2026-11-01T12:00:00.000000Z",
            "lookup",
            "success"
        ]
    );
    assert_eq!(first[5], agent_pseudo("agent2").as_str());
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn export_rejects_a_bad_time_and_an_empty_range() {
    let r = fctr(&[
        "audit",
        "export",
        "--db",
        "x.sqlite",
        "--since",
        "yesterday",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("RFC 3339"), "{r:?}");
    let r = fctr(&[
        "audit",
        "export",
        "--db",
        "x.sqlite",
        "--since",
        "2026-11-02T00:00:00Z",
        "--until",
        "2026-11-01T00:00:00Z",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--since is not before --until"), "{r:?}");
}

#[tokio::test]
async fn tail_shows_the_latest_events_pseudonymously() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 7).await;
    let d = db.to_str().unwrap();
    let r = fctr(&["audit", "tail", "--db", d, "-n", "2"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].contains("acme#5"), "{r:?}");
    assert!(lines[1].contains("acme#6  lookup success"), "{r:?}");
    assert!(
        lines[1].contains(&format!("agent={}", agent_pseudo("agent2").as_str())),
        "{r:?}"
    );
    let r = fctr(&["--json", "audit", "tail", "--db", d, "-n", "3"]);
    let seqs: Vec<u64> = r
        .out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![4, 5, 6]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_events_written_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 2).await;
    let mut child = cmd(&[
        "--json",
        "audit",
        "tail",
        "--db",
        db.to_str().unwrap(),
        "-n",
        "1",
        "--follow",
        "--interval-ms",
        "100",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("first line");
    assert!(first.contains("\"seq\":1"), "{first}");
    // Another writer appends two events.
    let store = fctr_sqlite::SqliteStore::open(&db, fctr_sqlite::SqliteOptions::default())
        .await
        .unwrap();
    for _ in 0..2 {
        let e = fctr_ports::AuditEvent::new(
            tenant("acme"),
            chrono::Utc::now(),
            fctr_ports::EventKind::Logout,
            fctr_ports::Outcome::Success,
        );
        fctr_ports::AuditLog::append(&store, e).await.unwrap();
    }
    store.close().await;
    let a = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("followed line");
    let b = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("followed line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(a.contains("\"seq\":2") && a.contains("logout"), "{a}");
    assert!(b.contains("\"seq\":3"), "{b}");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "printed an event twice"
    );
}

#[tokio::test]
async fn usage_report_as_table_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 1).await;
    let d = db.to_str().unwrap();
    let agent = agent_pseudo("agent2");
    let r = fctr(&["usage", "report", "--db", d, "--month", "2026-11"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("2 row(s), 6 in total"), "{r:?}");
    let r = fctr(&[
        "usage", "report", "--db", d, "--month", "2026-11", "--format", "csv",
    ]);
    assert_eq!(
        r.out,
        format!(
            "month,tenant,agent,kind,count\n2026-11,acme,{a},verification,3\n2026-11,acme,{a},action,3\n",
            a = agent.as_str()
        )
    );
    let r = fctr(&["--json", "usage", "report", "--db", d, "--month", "2026-11"]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["kind"], "verification");
    let r = fctr(&["usage", "report", "--db", d, "--month", "2026-10"]);
    assert!(r.out.contains("no usage recorded in 2026-10"), "{r:?}");
    let r = fctr(&["usage", "report", "--db", d, "--month", "November"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("YYYY-MM"), "{r:?}");
}

// ---- Tamper evidence with the checkpoint key (issue 11, finding 8) ----

const CHECKPOINT_KEY: &str = "0123456789abcdef0123456789abcdef-checkpoint";

/// An audit file of `n` events whose head is checkpointed with `key`, as the portal's checkpointer does.
async fn checkpointed_file(dir: &std::path::Path, n: u32, key: &str) -> std::path::PathBuf {
    let db = audit_file(dir, n).await;
    checkpoint_with(&db, key).await;
    db
}

/// Records a checkpoint of the current head, HMAC'd with `key`.
async fn checkpoint_with(db: &std::path::Path, key: &str) {
    let store = fctr_sqlite::SqliteStore::open(
        db,
        fctr_sqlite::SqliteOptions::default()
            .with_checkpoint_key(fctr_ports::SecretString::from(key.to_owned())),
    )
    .await
    .unwrap();
    let cps = store.checkpoint().await.unwrap();
    assert_eq!(cps.len(), 1, "one tenant checkpointed");
    store.close().await;
}

async fn sql(db: &std::path::Path, statement: &str) -> u64 {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let n = sqlx::query(statement)
        .execute(&mut c)
        .await
        .unwrap()
        .rows_affected();
    c.close().await.unwrap();
    n
}

/// Edits event `edit` (its outcome becomes `denied`), then recomputes every hash of the chain with
/// `fctr_ports::ChainHash::compute_canonical`, so the chain alone verifies again.
async fn edit_and_rehash(db: &std::path::Path, edit: i64) {
    use sqlx::{Connection as _, Row as _};
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows =
        sqlx::query("SELECT seq, event FROM audit_events WHERE tenant = 'acme' ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let mut prev = fctr_ports::ChainHash::GENESIS;
    for r in rows {
        let seq: i64 = r.get(0);
        let mut text: String = r.get(1);
        if seq == edit {
            let mut e: fctr_ports::AuditEvent = serde_json::from_str(&text).unwrap();
            e.outcome = fctr_ports::Outcome::Denied;
            text = String::from_utf8(e.canonical_bytes()).unwrap();
        }
        let hash = fctr_ports::ChainHash::compute_canonical(
            &prev,
            u64::try_from(seq).unwrap(),
            text.as_bytes(),
        );
        sqlx::query(
            "UPDATE audit_events SET event = ?1, prev_hash = ?2, hash = ?3 WHERE tenant = 'acme' AND seq = ?4",
        )
        .bind(&text)
        .bind(prev.to_hex())
        .bind(hash.to_hex())
        .bind(seq)
        .execute(&mut c)
        .await
        .unwrap();
        prev = hash;
    }
    c.close().await.unwrap();
}

fn verify_keyed(db: &std::path::Path, key_file: &std::path::Path) -> Run {
    fctr(&[
        "audit",
        "verify",
        "--db",
        db.to_str().unwrap(),
        "--checkpoint-key-file",
        key_file.to_str().unwrap(),
    ])
}

fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("checkpoint.key");
    std::fs::write(&p, format!("{CHECKPOINT_KEY}\n")).unwrap();
    p
}

#[tokio::test]
async fn checkpoint_key_verify_passes_on_the_untouched_file_and_finds_a_cut_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = checkpointed_file(dir.path(), 6, CHECKPOINT_KEY).await;
    let key = key_file(dir.path());
    let r = verify_keyed(&db, &key);
    assert_eq!(r.code, 0, "untouched file: {r:?}");
    assert!(r.out.contains("audit chain intact: 6 event(s)"), "{r:?}");
    let r = fctr(&[
        "audit",
        "verify",
        "--db",
        db.to_str().unwrap(),
        "--checkpoint-key-env",
        "FCTR_TEST_CHECKPOINT_KEY_UNSET",
    ]);
    assert_eq!(r.code, 2, "an unset key variable is a usage error: {r:?}");

    // Cut the tail: events 4 and 5 deleted behind the store's back. The remaining chain is intact on its own.
    assert_eq!(
        sql(
            &db,
            "DELETE FROM audit_events WHERE tenant = 'acme' AND seq >= 4"
        )
        .await,
        2
    );
    let r = verify_keyed(&db, &key);
    assert_eq!(r.code, 1, "cut tail accepted: {r:?}");
    assert!(
        r.out
            .contains("audit chain BROKEN: tenant acme, position 4"),
        "{r:?}"
    );
}

#[tokio::test]
async fn checkpoint_key_verify_finds_an_edited_and_rehashed_chain() {
    let dir = tempfile::tempdir().unwrap();
    let db = checkpointed_file(dir.path(), 6, CHECKPOINT_KEY).await;
    let key = key_file(dir.path());
    edit_and_rehash(&db, 2).await;
    // The edited chain is consistent in itself: only the keyed checkpoint shows the rewrite.
    let r = verify_keyed(&db, &key);
    assert_eq!(r.code, 1, "re-hashed chain accepted: {r:?}");
    assert!(r.out.contains("audit chain BROKEN: tenant acme"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
}

#[tokio::test]
async fn a_forged_or_deleted_checkpoint_is_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = checkpointed_file(dir.path(), 6, CHECKPOINT_KEY).await;
    let key = key_file(dir.path());
    // The attacker re-hashes the chain, drops the real checkpoint and records their own with another key.
    edit_and_rehash(&db, 2).await;
    assert_eq!(sql(&db, "DELETE FROM audit_checkpoints").await, 1);
    checkpoint_with(&db, "an attacker's key, not the portal's, 32+ bytes").await;
    let r = fctr(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(
        r.code, 0,
        "without the key the forgery is consistent: {r:?}"
    );
    let r = verify_keyed(&db, &key);
    assert_eq!(r.code, 1, "forged checkpoint accepted: {r:?}");
    assert!(
        r.out
            .contains("audit chain BROKEN: tenant acme, position 5"),
        "{r:?}"
    );

    // Or they delete every checkpoint: with the key, a chain without one is refused.
    assert_eq!(sql(&db, "DELETE FROM audit_checkpoints").await, 1);
    let r = verify_keyed(&db, &key);
    assert_eq!(r.code, 1, "deleted checkpoints accepted: {r:?}");
    assert!(r.out.contains("no checkpoint recorded"), "{r:?}");
}
