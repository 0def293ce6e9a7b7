//! The database going away: appends fail closed and fast, nothing is half-written, and the same store works again
//! by itself when the database is back. Errors never carry the URL or its password.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, EventKind, Month, PortError, UsageKind, UsageLedger};
use fctr_postgres::{PostgresStore, StoreError};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TCP forwarder between the store and PostgreSQL that can be cut (every forwarded connection closed, new ones
/// closed as soon as they are accepted) and restored.
struct Forwarder {
    addr: SocketAddr,
    up: watch::Sender<bool>,
    /// How many connections are being forwarded right now.
    live: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Forwarder {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, up_rx) = watch::channel(true);
        let (count, live) = watch::channel(0usize);
        let count = std::sync::Arc::new(count);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut up = up_rx.clone();
                if !*up.borrow_and_update() {
                    continue; // dropped: closed at once
                }
                let count = std::sync::Arc::clone(&count);
                count.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = up.wait_for(|u| !*u) => {} // cut: both sockets dropped
                        }
                    }
                    drop(client);
                    count.send_modify(|n| *n -= 1);
                });
            }
        });
        Self {
            addr,
            up,
            live,
            task,
        }
    }

    /// Cuts every connection, and returns once all are closed.
    async fn cut(&self) {
        self.up.send_replace(false);
        let mut live = self.live.clone();
        live.wait_for(|n| *n == 0).await.unwrap();
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }

    /// The test database's URL, through this forwarder.
    fn url(&self) -> String {
        let mut u = url::Url::parse(&url()).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.up.send_replace(false);
        self.task.abort();
    }
}

async fn database_addr() -> SocketAddr {
    let u = url::Url::parse(&url()).unwrap();
    let host = u.host_str().unwrap().to_owned();
    let port = u.port().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_fails_closed_fast_and_the_store_recovers_by_itself() {
    let db = Db::new();
    let direct = db.store().await;
    let fwd = Forwarder::start(database_addr().await).await;
    let store = PostgresStore::connect(
        SecretString::from(fwd.url()),
        db.options()
            .with_connect_timeout(Duration::from_secs(2))
            .with_operation_timeout(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let before = append_n(&store, "acme", 0, 3).await;
    let month = Month::parse("2026-11").unwrap();
    let usage = fctr_ports::UsageRecord {
        month,
        tenant: tenant("acme"),
        agent: pseudo(1),
        kind: UsageKind::Action,
        count: 1,
    };
    store.record(usage.clone()).await.unwrap();

    fwd.cut().await;
    let t0 = Instant::now();
    let r = store
        .append(event("acme", 10, EventKind::ActionIntent))
        .await;
    assert!(matches!(r, Err(PortError::Unavailable)), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
    // Everything else fails closed too.
    assert!(matches!(
        store.record(usage.clone()).await,
        Err(PortError::Unavailable)
    ));
    assert!(matches!(
        store.verify_chain().await,
        Err(PortError::Unavailable)
    ));
    assert!(matches!(
        store.checkpoint().await,
        Err(PortError::Unavailable)
    ));
    let mut sink: Vec<u8> = Vec::new();
    assert!(matches!(
        store.export_jsonl(&AuditQuery::default(), &mut sink).await,
        Err(PortError::Unavailable)
    ));
    // Nothing of it reached the database: the chain is as it was.
    assert_eq!(db.count().await, 3);
    let summary = direct.verify_chain().await.unwrap().unwrap();
    assert_eq!(
        (summary.heads[0].seq, summary.heads[0].hash),
        (2, before[2].hash)
    );
    assert_eq!(direct.report(month).await.unwrap()[0].count, 1);

    fwd.restore();
    let next = store
        .append(event("acme", 20, EventKind::ActionIntent))
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash), (3, before[2].hash));
    store.record(usage).await.unwrap();
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 4);
    assert_eq!(store.report(month).await.unwrap()[0].count, 2);
}

/// The database goes away and comes back while the store is idle (a restart, a failover): the writer's kept
/// connection is dead, but the next append still succeeds at the first try, on a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_idle_costs_no_append() {
    let db = Db::new();
    let fwd = Forwarder::start(database_addr().await).await;
    let store = PostgresStore::connect(
        SecretString::from(fwd.url()),
        db.options()
            .with_connect_timeout(Duration::from_secs(2))
            .with_operation_timeout(Duration::from_secs(3)),
    )
    .await
    .unwrap();
    let before = append_n(&store, "acme", 0, 2).await;
    let commits = store.group_commits();
    fwd.cut().await;
    fwd.restore();
    let next = store
        .append(event("acme", 10, EventKind::Login))
        .await
        .unwrap();
    assert_eq!((next.seq, next.prev_hash), (2, before[1].hash));
    assert_eq!(store.group_commits(), commits + 1);
    assert_eq!(store.verify_chain().await.unwrap().unwrap().events, 3);
}

/// Appends in flight when the connection is cut: each either landed whole (and was acknowledged) or was refused,
/// and what landed is one unbroken chain that goes on after the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_under_load_leaves_an_unbroken_chain() {
    let db = Db::new();
    let fwd = Forwarder::start(database_addr().await).await;
    let store = PostgresStore::connect(
        SecretString::from(fwd.url()),
        db.options()
            .with_connect_timeout(Duration::from_secs(1))
            .with_operation_timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    append_n(&store, "acme", 0, 1).await;
    let mut tasks = Vec::new();
    for k in 0..8i64 {
        let store = store.clone();
        // Appends until the first refusal (far more than can land before the cut below).
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            for i in 0..5000 {
                match store
                    .append(event("acme", 10_000 * (k + 1) + i, EventKind::Lookup))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(PortError::Unavailable) => return (ok, true),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (ok, false)
        }));
    }
    // Cut once some of the load has landed.
    let mut raw = db.raw().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        if n >= 40 {
            break;
        }
        assert!(Instant::now() < deadline, "the load did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fwd.cut().await;
    let mut acked = 1u64;
    for t in tasks {
        let (ok, refused) = t.await.unwrap();
        assert!(
            refused,
            "a task's appends all landed: the cut came too late"
        );
        acked += ok;
    }
    fwd.restore();
    store
        .append(event("acme", 99_999, EventKind::Logout))
        .await
        .unwrap();
    let summary = store.verify_chain().await.unwrap().unwrap();
    // Acknowledged events are all there; a batch whose COMMIT was cut may have landed unacknowledged, whole.
    assert!(summary.events > acked, "{} <= {acked}", summary.events);
    assert_eq!(summary.events, db.count().await as u64);
}

#[tokio::test]
async fn connect_errors_never_carry_the_url_or_its_password() {
    let password = format!("pw{:032x}", rand::random::<u128>());
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let urls = [
        format!("postgres://postgres:{password}@127.0.0.1:{port}/test"),
        format!("postgres://postgres:{password}@127.0.0.1:notaport/test"),
        format!("postgres://postgres:{password}@127.0.0.1:{port}/test?sslmode={password}"),
    ];
    for u in urls {
        let e = PostgresStore::connect(
            SecretString::from(u),
            fctr_postgres::PostgresOptions::default()
                .with_connect_timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, StoreError::Connect(_) | StoreError::Url),
            "{e:?}"
        );
        let mut texts = vec![e.to_string(), format!("{e:?}")];
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            texts.push(s.to_string());
            src = s.source();
        }
        for t in texts {
            assert!(!t.contains(&password), "{t}");
            assert!(!t.contains("postgres://"), "{t}");
        }
    }
}
