//! Appends, reads, query filters, reconnecting, and what happens around rows and locks taken behind the store's
//! back.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, ChainHash, EventKind, PortError, SealedEvent};
use std::time::Duration;

#[tokio::test]
async fn append_seals_in_order_and_reads_back() {
    let db = Db::new();
    let store = db.store().await;
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
    // The `event` column holds the canonical bytes the hash covers, nothing else.
    let mut raw = db.raw().await;
    let text: String =
        sqlx::query_scalar("SELECT event FROM audit_events WHERE tenant = 'acme' AND seq = 1")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(
        text.as_bytes(),
        sealed[1].event.canonical_bytes().as_slice()
    );
}

#[tokio::test]
async fn query_filters_tenant_time_kind_pseudonym_and_limit() {
    let db = Db::new();
    let store = db.store().await;
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

#[tokio::test]
async fn reconnecting_continues_the_chain() {
    let db = Db::new();
    let store = db.store().await;
    let first = append_n(&store, "acme", 0, 5).await;
    store.close().await;
    assert!(matches!(
        store.append(event("acme", 9, EventKind::Login)).await,
        Err(PortError::Unavailable)
    ));
    let store = db.store().await;
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

/// A row written behind the store's back (without moving the tenant's head) is never overwritten or forked: the
/// next batch finds it beside the head it locks and continues after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_written_behind_the_heads_is_never_forked() {
    let db = Db::new();
    let store = db.store().await;
    let first = append_n(&store, "acme", 0, 3).await;
    let foreign = SealedEvent::seal(first[2].hash, 3, event("acme", 3, EventKind::Logout));
    let mut raw = db.raw().await;
    sqlx::query(
        "INSERT INTO audit_events (tenant, seq, id, at, kind, event, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind("acme")
    .bind(3i64)
    .bind(foreign.event.id.to_string())
    .bind(fctr_ports::canonical_time::format(&foreign.event.at))
    .bind("logout")
    .bind(String::from_utf8(foreign.event.canonical_bytes()).unwrap())
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
    for t in tasks {
        match t.await.unwrap() {
            Ok(s) => ok.push(s),
            Err(PortError::Unavailable) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(!ok.is_empty());
    let mut seqs: Vec<u64> = ok.iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (4..4 + ok.len() as u64).collect::<Vec<_>>());
    assert_eq!(db.count().await, 4 + ok.len() as i64);
    let summary = store.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 4 + ok.len() as u64);
}

/// A head row deleted behind the store's back is rebuilt from the chain itself, never restarted at seq 0.
#[tokio::test]
async fn a_deleted_head_row_is_rebuilt_from_the_chain() {
    let db = Db::new();
    let store = db.store().await;
    let first = append_n(&store, "acme", 0, 3).await;
    let mut raw = db.raw().await;
    assert_eq!(exec(&mut raw, "DELETE FROM audit_heads").await, 1);
    // The store still believes the row exists: its first batch is refused, the next one rebuilds it.
    let r = store.append(event("acme", 5, EventKind::Login)).await;
    assert!(matches!(r, Err(PortError::Unavailable)), "{r:?}");
    let next = store
        .append(event("acme", 6, EventKind::Login))
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash), (3, first[2].hash));
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 4);
}

/// A head lock held longer than the operation timeout makes appends fail closed (the chain unchanged), and the
/// store works again as soon as the lock is gone.
#[tokio::test]
async fn a_head_lock_held_too_long_refuses_appends_then_recovers() {
    let db = Db::new();
    let store = db
        .store_with(
            db.options()
                .with_operation_timeout(Duration::from_millis(300)),
        )
        .await;
    append_n(&store, "acme", 0, 2).await;
    let mut raw = db.raw().await;
    exec(&mut raw, "BEGIN").await;
    exec(
        &mut raw,
        "SELECT * FROM audit_heads WHERE tenant = 'acme' FOR UPDATE",
    )
    .await;
    let r = store.append(event("acme", 5, EventKind::Login)).await;
    assert!(matches!(r, Err(PortError::Unavailable)), "{r:?}");
    exec(&mut raw, "ROLLBACK").await;
    assert_eq!(db.count().await, 2);
    let s = store
        .append(event("acme", 6, EventKind::Login))
        .await
        .unwrap();
    assert_eq!(s.seq, 2);
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 3);
}

#[tokio::test]
async fn a_bad_schema_name_is_refused_before_connecting() {
    for bad in ["Public", "a;b", "x\"y", "pg_temp", ""] {
        let r = fctr_postgres::PostgresStore::connect(
            secrecy::SecretString::from(url()),
            fctr_postgres::PostgresOptions::default().with_schema(bad),
        )
        .await;
        assert!(
            matches!(r, Err(fctr_postgres::StoreError::InvalidSchema)),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn debug_shows_the_schema_and_nothing_of_the_url() {
    let db = Db::new();
    let store = db.store().await;
    let d = format!("{store:?}");
    assert!(d.contains(&db.schema), "{d}");
    assert!(
        !d.contains("postgres://") && !d.contains("127.0.0.1"),
        "{d}"
    );
}
