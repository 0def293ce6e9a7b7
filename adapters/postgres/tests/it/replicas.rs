//! Several store instances (replicas) on one schema: concurrent appends never fork a chain, and a tenant's head
//! lock orders appends from every replica.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, EventKind, SealedEvent, verify_tenant_chain};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// 2 stores × 8 tasks × 200 events, on two tenants: every acknowledged event is stored exactly once, each tenant's
/// seqs are contiguous from 0, and both chains verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_appending_at_once_never_fork_a_chain() {
    let db = Db::new();
    let stores = [db.store().await, db.store().await];
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for task in 0..8i64 {
            let store = store.clone();
            let key = s as i64 * 8 + task;
            tasks.push(tokio::spawn(async move {
                let t = if task % 2 == 0 { "acme" } else { "globex" };
                let mut out = Vec::new();
                for i in 0..200 {
                    let e = event(t, key * 1000 + i, EventKind::Lookup);
                    out.push(store.append(e).await.unwrap());
                }
                out
            }));
        }
    }
    let mut acked: Vec<SealedEvent> = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len(), 3200);

    let mut by_tenant: BTreeMap<String, Vec<SealedEvent>> = BTreeMap::new();
    for s in &acked {
        by_tenant
            .entry(s.event.tenant.as_str().to_owned())
            .or_default()
            .push(s.clone());
    }
    assert_eq!(by_tenant.len(), 2);
    for (t, mut chain) in by_tenant {
        chain.sort_by_key(|s| s.seq);
        let seqs: Vec<u64> = chain.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, (0..1600).collect::<Vec<u64>>(), "tenant {t}");
        verify_tenant_chain(&tenant(&t), &chain, None, None).unwrap();
    }

    // What is stored is exactly what was acknowledged, each event once.
    let stored = stores[1].read(&AuditQuery::default()).await.unwrap();
    assert_eq!(stored.len(), 3200);
    let ids: HashSet<_> = stored.iter().map(|s| s.event.id).collect();
    assert_eq!(ids.len(), 3200);
    let stored: HashSet<_> = stored.iter().map(|s| (s.event.id, s.seq, s.hash)).collect();
    for s in &acked {
        assert!(stored.contains(&(s.event.id, s.seq, s.hash)));
    }
    for store in &stores {
        assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 3200);
        // Both writers batched.
        assert!(store.group_commits() < 1600, "{}", store.group_commits());
    }
}

/// How many backends wait, directly or behind another waiter, on a lock held by `holder`'s session. (The first
/// waiter for a row lock waits on the holder; later ones queue behind the first.)
async fn blocked_by(holder: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "WITH RECURSIVE blocked(pid) AS ( \
           SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)) \
           UNION \
           SELECT a.pid FROM pg_stat_activity a JOIN blocked b ON b.pid = ANY(pg_blocking_pids(a.pid)) \
         ) SELECT COUNT(*) FROM blocked",
    )
    .fetch_one(holder)
    .await
    .unwrap()
}

/// Waits until `n` backends wait on `holder`'s locks (polls the server's lock table: the signal that an append is
/// blocked, not a guess by time).
async fn until_blocked(holder: &mut PgConnection, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while blocked_by(holder).await < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no append came to wait on the head lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The test holds the tenant's head lock in its own transaction. Store A's append is started and shown waiting
/// (blocked on the lock in the server, and not returned after 200 ms); store B's append is queued behind it; on
/// release both land, A's first, and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_head_lock_orders_appends_from_two_stores() {
    let db = Db::new();
    let a = db.store().await;
    let b = db.store().await;
    let first = append_n(&a, "acme", 0, 2).await;

    let mut holder = db.raw().await;
    exec(&mut holder, "BEGIN").await;
    let locked = exec(
        &mut holder,
        "SELECT * FROM audit_heads WHERE tenant = 'acme' FOR UPDATE",
    )
    .await;
    assert_eq!(locked, 1);

    let ea = event("acme", 10, EventKind::ActionIntent);
    let eb = event("acme", 11, EventKind::ActionOutcome);
    let mut append_a = tokio::spawn({
        let a = a.clone();
        let ea = ea.clone();
        async move { a.append(ea).await }
    });
    until_blocked(&mut holder, 1).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut append_a)
            .await
            .is_err(),
        "store A's append returned while the head lock was held"
    );
    let append_b = tokio::spawn({
        let b = b.clone();
        let eb = eb.clone();
        async move { b.append(eb).await }
    });
    until_blocked(&mut holder, 2).await;
    assert!(!append_a.is_finished() && !append_b.is_finished());
    assert_eq!(db.count().await, 2, "nothing lands while the lock is held");

    exec(&mut holder, "COMMIT").await;
    let sa = append_a.await.unwrap().unwrap();
    let sb = append_b.await.unwrap().unwrap();
    assert_eq!((sa.seq, sa.prev_hash), (2, first[1].hash));
    assert_eq!((sb.seq, sb.prev_hash), (3, sa.hash));
    assert_eq!((sa.event.id, sb.event.id), (ea.id, eb.id));
    let summary = b.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 4);
    assert_eq!(summary.heads[0].hash, sb.hash);
}
