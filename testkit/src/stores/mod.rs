//! The store contract suite: one list of named checks over the store ports, which every store implementation
//! runs.
//!
//! The ports' own docs are the contract ([`GrantStore`], [`RateLimiter`], [`SessionStore`], [`Coordinator`],
//! [`AuditLog`], [`UsageLedger`]); each check here turns one promise of those docs into something that can fail,
//! with a stable name and, when it fails, what went wrong. The checks are grouped by port: [`grants::CHECKS`],
//! [`rates::CHECKS`], [`sessions::CHECKS`], [`coordination::CHECKS`], [`audit::CHECKS`], [`usage::CHECKS`],
//! [`approvals::CHECKS`]
//! ([`all_checks`] in run order).
//!
//! # Replicas and time
//!
//! A store is run through a [`StoreFixture`]: for each port it implements, it makes a fresh, empty instance as
//! [`Replicas`]: two handles `a` and `b` on the same shared state, and the [`StoreTime`] the store keeps.
//!
//! - **Two handles.** Checks spread their calls over both, as two portal replicas would. An in-process store
//!   (memory, SQLite) gives the same `Arc` twice ([`Replicas::shared`]); a networked one (Redis, PostgreSQL) opens
//!   a second connection to the same key prefix or schema ([`Replicas::new`]).
//! - **Time.** [`StoreTime::advance`] lets time pass for the store: a [`SteppedTime`] moves a manual clock
//!   (in-process stores read time from a [`Clock`]); a [`WallTime`] really waits (server-side TTLs). The checks keep
//!   every TTL they wait out at 1.5 s or less, so a networked store's run stays short. Checks that compare a
//!   record's own times with `now` (a grant's `expires_at`) pass `now` explicitly, as the engine does, and take it
//!   from [`StoreTime::now`].
//! - **Fresh.** Every check asks for its own instances, so the checks of one run share nothing and their order
//!   does not matter. A networked fixture uses a new random prefix or schema per call.
//!
//! Concurrency checks spawn their calls as Tokio tasks released together by a barrier: run the suite on a
//! multi-threaded runtime (`#[tokio::test(flavor = "multi_thread")]`), or the "concurrent" calls only interleave
//! at the store's own `.await` points. Every check runs under a time limit ([`CHECK_TIMEOUT`]): a store that
//! deadlocks fails that check rather than hanging the run.
//!
//! # Running it against your own store
//!
//! Implement [`StoreFixture`] for the ports your store implements (the others default to "not implemented" and
//! their checks are reported [`Verdict::Skipped`]), then call [`run`] and look at the [`Report`]:
//!
//! ```no_run
//! use async_trait::async_trait;
//! use fctr_ports::RateLimiter;
//! use fctr_testkit::stores::{self, Made, Replicas, StoreFixture, WallTime};
//! use std::sync::Arc;
//!
//! # async fn connect(_url: &str, _prefix: &str) -> Result<Arc<dyn RateLimiter>, String> { Err("stub".into()) }
//! /// Our limiter, on a shared cache, as two replicas would see it.
//! struct OurStores {
//!     url: String,
//! }
//!
//! #[async_trait]
//! impl StoreFixture for OurStores {
//!     fn name(&self) -> String {
//!         "our-cache".into()
//!     }
//!
//!     async fn rates(&self) -> Made<dyn RateLimiter> {
//!         // A fresh prefix per call: every check starts empty.
//!         let prefix = format!("suite-{:016x}", rand::random::<u64>());
//!         let a = connect(&self.url, &prefix).await?;
//!         let b = connect(&self.url, &prefix).await?; // a second connection: the other replica
//!         Ok(Some(Replicas::new(a, b, Arc::new(WallTime))))
//!     }
//! }
//!
//! #[tokio::main(flavor = "multi_thread")]
//! async fn main() {
//!     let report = stores::run(Arc::new(OurStores { url: "redis://127.0.0.1/".into() })).await;
//!     print!("{report}");
//!     assert!(report.passed(), "the store breaks its port contract");
//! }
//! ```
//!
//! [`run_matching`] runs a selection (by name or port), for example only the checks of the port being worked on.
//! In this workspace the suite runs against every store (memory, SQLite, Redis, PostgreSQL) in
//! `testkit/tests/stores/`, where adding a store is one module and one line.

/// A check table: `checks![Port::X; "name" => async_fn, …]`, each fn `async fn(Arc<dyn StoreFixture>) -> Check`.
macro_rules! checks {
    ($port:expr; $($name:literal => $f:ident),* $(,)?) => {
        &[$(
            $crate::stores::StoreCheck {
                name: $name,
                port: $port,
                run: |fixture| Box::pin($f(fixture)),
            }
        ),*]
    };
}

pub mod approvals;
pub mod audit;
pub mod coordination;
pub mod grants;
pub mod rates;
pub mod sessions;
mod support;
pub mod usage;

pub use crate::contract::{CheckResult, Verdict};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ApprovalStore, AuditLog, Clock, Coordinator, GrantStore, RateLimiter, SessionStore, Timeouts,
    UsageLedger,
};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Longest a single check may run before it is reported as failed (a deadlock, a lost wakeup, a lock never
/// released).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Time as a store under test sees it, and a way to let it pass.
#[async_trait]
pub trait StoreTime: Send + Sync {
    /// The store's "now": what the checks put in records (`created`, `issued_at`) and pass as `now`.
    fn now(&self) -> DateTime<Utc>;

    /// Lets `by` pass for the store: moves a manual clock, or waits.
    async fn advance(&self, by: Duration);
}

/// Wall-clock time for stores whose expiry runs on a server (Redis TTLs, database `now()`): [`StoreTime::now`] is
/// the system clock and [`StoreTime::advance`] sleeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallTime;

#[async_trait]
impl StoreTime for WallTime {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
}

/// Time for stores that read a [`Clock`] the test controls (the in-memory stores with a manual clock):
/// [`StoreTime::now`] reads the clock and [`StoreTime::advance`] calls `step`, which must move that clock.
pub struct SteppedTime {
    clock: Arc<dyn Clock>,
    step: Box<dyn Fn(Duration) + Send + Sync>,
}

impl SteppedTime {
    /// Time read from `clock` and moved by `step`.
    pub fn new(clock: Arc<dyn Clock>, step: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        Self {
            clock,
            step: Box::new(step),
        }
    }
}

impl fmt::Debug for SteppedTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SteppedTime")
            .field("now", &self.clock.now())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl StoreTime for SteppedTime {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn advance(&self, by: Duration) {
        (self.step)(by);
    }
}

/// One fresh store instance as two replicas see it: two handles on the same shared state, and its time.
pub struct Replicas<P: ?Sized> {
    /// The first replica's handle.
    pub a: Arc<P>,
    /// The second replica's handle on the same state (the same `Arc` for an in-process store).
    pub b: Arc<P>,
    /// The store's time.
    pub time: Arc<dyn StoreTime>,
    /// Kept alive until the check is done (a temporary directory, a schema to drop). Declared last: fields drop in
    /// declaration order, so it goes after the handles.
    guard: Option<Box<dyn Any + Send + Sync>>,
}

impl<P: ?Sized> Replicas<P> {
    /// Two handles on the same state (a networked store: two connections to one prefix or schema).
    pub fn new(a: Arc<P>, b: Arc<P>, time: Arc<dyn StoreTime>) -> Self {
        Self {
            a,
            b,
            time,
            guard: None,
        }
    }

    /// One in-process store shared by both "replicas" (the same `Arc` twice).
    pub fn shared(store: Arc<P>, time: Arc<dyn StoreTime>) -> Self {
        Self::new(Arc::clone(&store), store, time)
    }

    /// Keeps `guard` alive as long as these handles (a temporary directory, a value whose `Drop` cleans up), and
    /// drops it after them.
    #[must_use]
    pub fn keep(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }

    /// Handle `a` for even `i`, `b` for odd: spreads a loop's calls over both replicas.
    #[must_use]
    pub fn pick(&self, i: usize) -> Arc<P> {
        if i % 2 == 0 {
            Arc::clone(&self.a)
        } else {
            Arc::clone(&self.b)
        }
    }
}

impl<P: ?Sized> fmt::Debug for Replicas<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicas")
            .field("shared_handle", &Arc::ptr_eq(&self.a, &self.b))
            .finish_non_exhaustive()
    }
}

/// What a [`StoreFixture`] makes for one port: `Ok(Some(..))` a fresh instance, `Ok(None)` when the store does not
/// implement that port (its checks are skipped), `Err(why)` when it should but could not be made (its checks
/// fail, saying why).
pub type Made<P> = Result<Option<Replicas<P>>, String>;

/// A store under test: makes fresh, empty instances of the ports it implements, each as [`Replicas`].
///
/// Every method is called once per check, and the instance is dropped when the check ends. The defaults say "not
/// implemented"; override the ports your store implements.
#[async_trait]
pub trait StoreFixture: Send + Sync {
    /// A short name for reports (`memory`, `sqlite`, `redis`).
    fn name(&self) -> String;

    /// A fresh grant store.
    async fn grants(&self) -> Made<dyn GrantStore> {
        Ok(None)
    }

    /// A fresh rate limiter.
    async fn rates(&self) -> Made<dyn RateLimiter> {
        Ok(None)
    }

    /// A fresh session store with these timeouts (checks that wait one out keep it at 1.5 s or less).
    async fn sessions(&self, timeouts: Timeouts) -> Made<dyn SessionStore> {
        let _ = timeouts;
        Ok(None)
    }

    /// A fresh coordinator.
    async fn coordinator(&self) -> Made<dyn Coordinator> {
        Ok(None)
    }

    /// A fresh, empty audit log.
    async fn audit(&self) -> Made<dyn AuditLog> {
        Ok(None)
    }

    /// A fresh, empty usage ledger.
    async fn usage(&self) -> Made<dyn UsageLedger> {
        Ok(None)
    }

    /// A fresh, empty store of four-eyes approval requests.
    async fn approvals(&self) -> Made<dyn ApprovalStore> {
        Ok(None)
    }
}

/// Which port a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Port {
    /// [`GrantStore`].
    Grants,
    /// [`RateLimiter`].
    Rates,
    /// [`SessionStore`].
    Sessions,
    /// [`Coordinator`].
    Coordinator,
    /// [`AuditLog`].
    Audit,
    /// [`UsageLedger`].
    Usage,
    /// [`ApprovalStore`].
    Approvals,
}

impl Port {
    /// The port trait's name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Grants => "GrantStore",
            Self::Rates => "RateLimiter",
            Self::Sessions => "SessionStore",
            Self::Coordinator => "Coordinator",
            Self::Audit => "AuditLog",
            Self::Usage => "UsageLedger",
            Self::Approvals => "ApprovalStore",
        }
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Check = Result<(), Verdict>;
type CheckFuture = Pin<Box<dyn Future<Output = Check> + Send>>;

/// One named check of the suite.
#[derive(Clone, Copy)]
pub struct StoreCheck {
    name: &'static str,
    port: Port,
    run: fn(Arc<dyn StoreFixture>) -> CheckFuture,
}

impl StoreCheck {
    /// Its stable name (what reports and [`run_matching`] use).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The port it checks.
    #[must_use]
    pub fn port(&self) -> Port {
        self.port
    }
}

impl fmt::Debug for StoreCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCheck")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Every check, in run order: grants, rates, sessions, coordination, audit, usage, approvals.
pub fn all_checks() -> impl Iterator<Item = &'static StoreCheck> {
    grants::CHECKS
        .iter()
        .chain(rates::CHECKS)
        .chain(sessions::CHECKS)
        .chain(coordination::CHECKS)
        .chain(audit::CHECKS)
        .chain(usage::CHECKS)
        .chain(approvals::CHECKS)
}

/// The results of one run against one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The store's name ([`StoreFixture::name`]).
    pub store: String,
    /// One result per check run, in run order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Whether no check failed (skipped checks do not fail a run).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
    }

    /// The verdict of the check named `name`, if it ran.
    #[must_use]
    pub fn verdict(&self, name: &str) -> Option<&Verdict> {
        self.results
            .iter()
            .find(|r| r.name == name)
            .map(|r| &r.verdict)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "store contract suite: {}", self.store)?;
        f.write_str(&crate::contract::table(&self.results))
    }
}

/// Runs every check against `fixture`, one after another, each on fresh instances and under [`CHECK_TIMEOUT`].
pub async fn run(fixture: Arc<dyn StoreFixture>) -> Report {
    run_matching(fixture, |_| true).await
}

/// Runs the checks `select` picks (by [`StoreCheck::name`] or [`StoreCheck::port`]), in run order.
pub async fn run_matching(
    fixture: Arc<dyn StoreFixture>,
    select: impl Fn(&StoreCheck) -> bool,
) -> Report {
    let mut results = Vec::new();
    for check in all_checks().filter(|c| select(c)) {
        let verdict =
            match tokio::time::timeout(CHECK_TIMEOUT, (check.run)(Arc::clone(&fixture))).await {
                Ok(Ok(())) => Verdict::Passed,
                Ok(Err(v)) => v,
                Err(_) => Verdict::Failed(format!(
                    "did not finish within {} s (a deadlock or a lost wakeup?)",
                    CHECK_TIMEOUT.as_secs()
                )),
            };
        results.push(CheckResult {
            name: check.name,
            verdict,
        });
    }
    Report {
        store: fixture.name(),
        results,
    }
}
