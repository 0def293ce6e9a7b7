//! Crash safety: what was acknowledged is in the file, and the file verifies, however the writer stops.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, EventKind, PortError, SealedEvent};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every acknowledged event is stored with the hash it was acknowledged with.
async fn assert_all_present(dir: &tempfile::TempDir, acked: &[SealedEvent]) -> u64 {
    let store = open(dir).await;
    let summary = store
        .verify_chain()
        .await
        .unwrap()
        .expect("chain verifies after the crash");
    let stored: HashMap<(String, u64), fctr_ports::ChainHash> = store
        .read(&AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|s| ((s.event.tenant.to_string(), s.seq), s.hash))
        .collect();
    for s in acked {
        assert_eq!(
            stored.get(&(s.event.tenant.to_string(), s.seq)),
            Some(&s.hash),
            "acknowledged seq {} is present",
            s.seq
        );
    }
    summary.events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closing_with_appends_in_flight_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let acks = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..16i64 {
        let store = store.clone();
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            let t = if task % 2 == 0 { "acme" } else { "globex" };
            let mut ok = Vec::new();
            let mut refused = 0;
            for i in 0..100 {
                match store
                    .append(event(t, task * 1000 + i, EventKind::Lookup))
                    .await
                {
                    Ok(s) => {
                        acks.fetch_add(1, Ordering::SeqCst);
                        ok.push(s);
                    }
                    Err(PortError::Unavailable) => refused += 1,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (ok, refused)
        }));
    }
    while acks.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    store.close().await;
    let mut acked = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (ok, r) = t.await.unwrap();
        acked.extend(ok);
        refused += r;
    }
    assert!(refused > 0, "the close happened mid-way");
    assert_eq!(acked.len() + refused, 1600);
    drop(store);
    let stored = assert_all_present(&dir, &acked).await;
    assert!(stored >= acked.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_every_handle_with_appends_in_flight_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let acked = {
        let store = open(&dir).await;
        let mut tasks = Vec::new();
        for task in 0..8i64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..50 {
                    let app = tokio::time::timeout(
                        std::time::Duration::from_millis(1),
                        store.append(event("acme", task * 1000 + i, EventKind::Lookup)),
                    );
                    // Callers that give up mid-way cancel their future: the event may or may not be written.
                    if let Ok(Ok(s)) = app.await {
                        ok.push(s);
                    }
                }
                ok
            }));
        }
        drop(store);
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        acked
    };
    // The writer finishes and closes on its own once the last handle is gone.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_all_present(&dir, &acked).await;
}

const CHILD_ENV: &str = "FCTR_SQLITE_CRASH_CHILD_DB";

/// Not a test on its own: the body of the child process that `kill_9_loses_nothing_acknowledged` kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "child process of kill_9_loses_nothing_acknowledged"]
async fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = fctr_sqlite::SqliteStore::open(&path, fctr_sqlite::SqliteOptions::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for task in 0..8i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let t = if task % 2 == 0 { "acme" } else { "globex" };
            for i in 0.. {
                let s = store
                    .append(event(t, task * 1_000_000 + i, EventKind::Lookup))
                    .await
                    .unwrap();
                println!("ACK {} {} {}", t, s.seq, s.hash);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked: Vec<(String, u64, String)> = Vec::new();
    let parse = |l: &str| {
        let mut p = l.strip_prefix("ACK ")?.split(' ');
        Some((
            p.next()?.to_owned(),
            p.next()?.parse::<u64>().ok()?,
            p.next()?.to_owned(),
        ))
    };
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = parse(&line) {
            acked.push(a);
            if acked.len() >= 2000 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Everything printed before the kill was acknowledged before the kill.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(a) = parse(&line) {
            acked.push(a);
        }
    }
    assert!(acked.len() >= 2000, "child acknowledged {}", acked.len());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = fctr_sqlite::SqliteStore::open(&path, fctr_sqlite::SqliteOptions::default())
            .await
            .unwrap();
        let summary = store
            .verify_chain()
            .await
            .unwrap()
            .expect("chain verifies after kill -9");
        assert!(summary.events >= acked.len() as u64);
        let stored: HashMap<(String, u64), String> = store
            .read(&AuditQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| ((s.event.tenant.to_string(), s.seq), s.hash.to_hex()))
            .collect();
        for (t, seq, hash) in &acked {
            assert_eq!(
                stored.get(&(t.clone(), *seq)),
                Some(hash),
                "acknowledged {t}/{seq} is present"
            );
        }
        // And the chain continues.
        let next = store
            .append(event("acme", 9_999_999, EventKind::Login))
            .await
            .unwrap();
        assert!(next.seq >= 1);
        assert!(store.verify_chain().await.unwrap().is_ok());
    });
}
