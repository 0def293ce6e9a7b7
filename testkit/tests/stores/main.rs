//! The store contract suite (`fctr_testkit::stores`) against every store in the workspace, and proof that it
//! fails a broken one (`broken.rs`).
//!
//! # The stores
//!
//! | store | module | ports | replicas | time |
//! |---|---|---|---|---|
//! | memory | `memory.rs` | all seven | one `Arc` | a manual clock, and again the system clock with real waits |
//! | SQLite | `sqlite.rs` | audit, usage | one `Arc` (one file per check) | wall clock |
//! | Redis | `redis.rs` | grants, rates, sessions, coordinator, approvals | two `RedisState`s on one random key prefix | wall clock (server TTLs) |
//! | PostgreSQL | `postgres.rs` | audit, usage | two `PostgresStore`s on one random schema | wall clock |
//!
//! The networked stores use the test servers `scripts/services.sh` starts, or `FCTR_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`) and `FCTR_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). A server that is not there fails its store's test (every check
//! says it could not connect); nothing is skipped.
//!
//! # Adding a store
//!
//! One module here with a `StoreFixture` that makes fresh instances of the ports the store implements, and one
//! line in `suite!` below naming it and the ports it must pass. A networked store gives two connections to one
//! fresh key prefix or schema per call (`Replicas::new(a, b, ..)`), lets time pass with `WallTime` (it sleeps; the
//! checks keep their TTLs at 1.5 s or less), keeps a guard that cleans up (`Replicas::keep`), and implements
//! [`Leftovers`] so the run fails if the guard left something behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod broken;
mod memory;
mod postgres;
mod redis;
mod sqlite;

use async_trait::async_trait;
use fctr_testkit::stores::{self, Port, StoreFixture, Verdict};
use std::collections::HashSet;
use std::sync::Arc;

/// What a fixture left on a server after its instances were dropped (key prefixes, schemas); nothing for an
/// in-process store.
#[async_trait]
pub trait Leftovers {
    /// One line per thing left behind; empty when everything was cleaned up.
    async fn leftovers(&self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

/// Runs the whole suite against `fixture`: no check may fail, every check of `ports` must have run (a port the
/// store implements must not be skipped by a fixture that forgot it), and nothing may be left behind.
async fn keeps_the_contract<F>(fixture: Arc<F>, ports: &[Port])
where
    F: StoreFixture + Leftovers + 'static,
{
    let started = std::time::Instant::now();
    let report = stores::run(Arc::clone(&fixture) as Arc<dyn StoreFixture>).await;
    println!("{report}({:.1} s)\n", started.elapsed().as_secs_f64());
    assert!(report.passed(), "{report}");
    for check in stores::all_checks().filter(|c| ports.contains(&c.port())) {
        assert_eq!(
            report.verdict(check.name()),
            Some(&Verdict::Passed),
            "{} did not run\n{report}",
            check.name()
        );
    }
    let left = fixture
        .leftovers()
        .await
        .expect("listing what the run left behind");
    assert!(left.is_empty(), "{} left behind: {left:?}", report.store);
}

/// One test per store: `name => fixture, [ports it implements]`.
macro_rules! suite {
    ($($name:ident => $fixture:expr, [$($port:ident),* $(,)?]),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            keeps_the_contract(Arc::new($fixture), &[$(Port::$port),*]).await;
        }
    )*};
}

suite! {
    memory_stores_keep_the_contract => memory::Memory { wall_clock: false },
        [Grants, Rates, Sessions, Coordinator, Audit, Usage, Approvals],
    memory_stores_on_the_wall_clock_keep_the_contract => memory::Memory { wall_clock: true },
        [Grants, Rates, Sessions, Coordinator, Audit, Usage, Approvals],
    sqlite_stores_keep_the_contract => sqlite::Sqlite, [Audit, Usage],
    redis_stores_keep_the_contract => redis::Redis::default(),
        [Grants, Rates, Sessions, Coordinator, Approvals],
    postgres_stores_keep_the_contract => postgres::Postgres::default(), [Audit, Usage],
}

#[test]
fn check_names_are_unique_and_grouped_by_port() {
    let mut seen = HashSet::new();
    for c in stores::all_checks() {
        assert!(seen.insert(c.name()), "{} is listed twice", c.name());
    }
    for (port, list) in [
        (Port::Grants, stores::grants::CHECKS),
        (Port::Rates, stores::rates::CHECKS),
        (Port::Sessions, stores::sessions::CHECKS),
        (Port::Coordinator, stores::coordination::CHECKS),
        (Port::Audit, stores::audit::CHECKS),
        (Port::Usage, stores::usage::CHECKS),
        (Port::Approvals, stores::approvals::CHECKS),
    ] {
        assert!(!list.is_empty());
        assert!(list.iter().all(|c| c.port() == port), "{port}");
    }
}
