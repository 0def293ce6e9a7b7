//! Appends, reads, query filters and concurrency.

use crate::common::*;
use fctr_ports::{
    AuditLog, AuditQuery, ChainHash, EventKind, PortError, SealedEvent, verify_tenant_chain,
};
use fctr_sqlite::SqliteOptions;
use std::collections::{BTreeMap, HashSet};

#[tokio::test]
async fn append_seals_in_order_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let sealed = append_n(&store, "acme", 0, 3).await;
    assert_eq!(
        sealed.iter().map(|s| s.seq).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(sealed[0].prev_hash, ChainHash::GENESIS);
    for w in sealed.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
    }
    for s in &sealed {
        assert_eq!(s.hash, ChainHash::compute(&s.prev_hash, s.seq, &s.event));
    }
    let back = store.read(&AuditQuery::default()).await.unwrap();
    assert_eq!(back, sealed);
    let summary = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 3);
    assert_eq!(summary.heads.len(), 1);
    assert_eq!(summary.heads[0].seq, 2);
    assert_eq!(summary.heads[0].hash, sealed[2].hash);
}

#[tokio::test]
async fn query_filters_tenant_time_kind_pseudonym_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut e1 = event("acme", 0, EventKind::Login);
    e1.target = None;
    let mut e2 = event("acme", 10, EventKind::Lookup);
    e2.agent = Some(pseudo(7));
    e2.target = Some(pseudo(9));
    let e3 = event("globex", 20, EventKind::Denied);
    let mut e4 = event("acme", 30, EventKind::ActionIntent);
    e4.agent = Some(pseudo(8));
    e4.target = Some(pseudo(7));
    for e in [&e1, &e2, &e3, &e4] {
        store.append(e.clone()).await.unwrap();
    }
    let ids = |v: Vec<SealedEvent>| v.into_iter().map(|s| s.event.id).collect::<Vec<_>>();

    let q = AuditQuery {
        tenant: Some(tenant("acme")),
        ..AuditQuery::default()
    };
    assert_eq!(
        ids(store.read(&q).await.unwrap()),
        vec![e1.id, e2.id, e4.id]
    );

    let q = AuditQuery {
        since: Some(at(10)),
        until: Some(at(30)),
        ..AuditQuery::default()
    };
    assert_eq!(ids(store.read(&q).await.unwrap()), vec![e2.id, e3.id]);

    let q = AuditQuery {
        kinds: vec![EventKind::Denied, EventKind::Login],
        ..AuditQuery::default()
    };
    assert_eq!(ids(store.read(&q).await.unwrap()), vec![e1.id, e3.id]);

    // Agent or target.
    let q = AuditQuery {
        pseudonym: Some(pseudo(7)),
        ..AuditQuery::default()
    };
    assert_eq!(ids(store.read(&q).await.unwrap()), vec![e2.id, e4.id]);

    let q = AuditQuery {
        limit: Some(2),
        ..AuditQuery::default()
    };
    assert_eq!(ids(store.read(&q).await.unwrap()), vec![e1.id, e2.id]);
    let q = AuditQuery {
        limit: Some(0),
        ..AuditQuery::default()
    };
    assert!(store.read(&q).await.unwrap().is_empty());

    let q = AuditQuery {
        tenant: Some(tenant("nobody")),
        ..AuditQuery::default()
    };
    assert!(store.read(&q).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_form_contiguous_verifiable_chains_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut tasks = Vec::new();
    for task in 0..16i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let t = if task % 2 == 0 { "acme" } else { "globex" };
            let mut out = Vec::new();
            for i in 0..100 {
                let e = event(t, task * 1000 + i, EventKind::Lookup);
                out.push(store.append(e).await.unwrap());
            }
            out
        }));
    }
    let mut acked: Vec<SealedEvent> = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len(), 1600);

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
        assert_eq!(seqs, (0..800).collect::<Vec<u64>>(), "tenant {t}");
        verify_tenant_chain(&tenant(&t), &chain, None, None).unwrap();
    }

    let summary = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 1600);
    let stored = store.read(&AuditQuery::default()).await.unwrap();
    let stored: HashSet<_> = stored.iter().map(|s| (s.event.id, s.hash)).collect();
    for s in &acked {
        assert!(stored.contains(&(s.event.id, s.hash)));
    }
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let first = append_n(&store, "acme", 0, 5).await;
    store.close().await;
    assert!(matches!(
        store.append(event("acme", 9, EventKind::Login)).await,
        Err(PortError::Unavailable)
    ));
    let store = open(&dir).await;
    let next = store
        .append(event("acme", 10, EventKind::Login))
        .await
        .unwrap();
    assert_eq!(next.seq, 5);
    assert_eq!(next.prev_hash, first[4].hash);
    let other = store
        .append(event("globex", 10, EventKind::Login))
        .await
        .unwrap();
    assert_eq!((other.seq, other.prev_hash), (0, ChainHash::GENESIS));
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 7);
}

/// A row written behind the writer's back makes its next transaction fail: that batch is refused, the heads are
/// reloaded from the file, and later appends continue after the foreign row. No seq is ever handed out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_batch_is_refused_whole_and_never_forks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let first = append_n(&store, "acme", 0, 3).await;
    // Someone else appends seq 3, correctly chained.
    let foreign = SealedEvent::seal(first[2].hash, 3, event("acme", 3, EventKind::Logout));
    let mut raw = raw(&db_path(&dir)).await;
    sqlx::query(
        "INSERT INTO audit_events (tenant, seq, id, at, kind, event, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind("acme")
    .bind(3i64)
    .bind(foreign.event.id.to_string())
    .bind(fctr_ports::canonical_time::format(&foreign.event.at))
    .bind("logout")
    .bind(serde_json::to_string(&foreign.event).unwrap())
    .bind(foreign.prev_hash.to_hex())
    .bind(foreign.hash.to_hex())
    .execute(&mut raw)
    .await
    .unwrap();

    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(event("acme", 100 + i, EventKind::Lookup))
                .await
        }));
    }
    let mut ok = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(s) => ok.push(s),
            Err(PortError::Unavailable) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(
        refused >= 1,
        "the batch colliding with seq 3 must be refused"
    );
    let mut seqs: Vec<u64> = ok.iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (4..4 + ok.len() as u64).collect::<Vec<_>>());

    let all = store.read(&AuditQuery::default()).await.unwrap();
    assert_eq!(
        all.len(),
        4 + ok.len(),
        "nothing of a refused batch is stored"
    );
    let summary = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 4 + ok.len() as u64);
}

#[tokio::test]
async fn a_locked_file_refuses_appends_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(
        &dir,
        SqliteOptions::default().with_busy_timeout(std::time::Duration::from_millis(50)),
    )
    .await;
    append_n(&store, "acme", 0, 2).await;
    let mut raw = raw(&db_path(&dir)).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut raw)
        .await
        .unwrap();
    let r = store.append(event("acme", 5, EventKind::Login)).await;
    assert!(matches!(r, Err(PortError::Unavailable)), "{r:?}");
    sqlx::query("ROLLBACK").execute(&mut raw).await.unwrap();
    let s = store
        .append(event("acme", 6, EventKind::Login))
        .await
        .unwrap();
    assert_eq!(s.seq, 2);
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 3);
}
