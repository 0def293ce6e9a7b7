//! # fctr-memory: in-process stores
//!
//! Implementations of the fctr store ports that keep everything in this process's memory:
//!
//! | type | port | notes |
//! |---|---|---|
//! | [`MemoryAuditLog`] | [`AuditLog`](fctr_ports::AuditLog) | one hash chain per tenant, anchors and checkpoints |
//! | [`MemoryUsageLedger`] | [`UsageLedger`](fctr_ports::UsageLedger) | sums per month, tenant, agent and kind |
//! | [`MemoryGrantStore`] | [`GrantStore`](fctr_ports::GrantStore) | verifications and grants with TTLs, atomic take |
//! | [`MemoryApprovalStore`] | [`ApprovalStore`](fctr_ports::ApprovalStore) | four-eyes requests with TTLs, atomic decide and take |
//! | [`MemoryRateLimiter`] | [`RateLimiter`](fctr_ports::RateLimiter) | sliding windows per key |
//! | [`MemorySessionStore`] | [`SessionStore`](fctr_ports::SessionStore) | portal sessions and sign-in state, tombstones |
//! | [`MemoryCoordinator`] | [`Coordinator`](fctr_ports::Coordinator) | leases, fan-out to subscribers, values with TTLs |
//! | [`ManualClock`] | [`Clock`](fctr_ports::Clock) | a clock tests move by hand ([`SystemClock`] is re-exported) |
//!
//! ## What it promises
//! - **Single node.** State lives in one process. Two processes (or two replicas) using this crate share nothing;
//!   use the Redis and PostgreSQL adapters for that.
//! - **Nothing durable.** Everything is lost when the process exits. "Durable" in the port contracts means, here,
//!   "stored in this process's memory". Use it for tests, demos and single-node setups that accept losing the audit
//!   log on restart; use `fctr-sqlite` (or PostgreSQL) when the audit log must survive.
//! - **Atomic within the process.** Every port call takes one short lock and never holds it across an `.await`:
//!   audit appends are serialized so a chain never forks, compare-and-swap writes and
//!   [`consume`](fctr_ports::GrantStore::consume) are atomic, rate-limit hits (and refunds) are counted exactly.
//! - **Bounded memory for short-lived state.** Expired verifications and grants, and rate-limit keys whose windows
//!   are empty, are collected opportunistically on later calls. The audit log and usage ledger grow until purged.
//! - **Time comes from a [`Clock`](fctr_ports::Clock)**, so tests can drive expiry and windows exactly with a
//!   [`ManualClock`].
//!
//! Every store is `Send + Sync` and meant to be shared as `Arc<dyn Port>`. A poisoned lock (a panic in another
//! thread while it held the lock) is recovered rather than propagated: each critical section leaves the state
//! consistent before anything in it can panic.
//!
//! Test hooks that break the store on purpose are inherent methods named `dangerous_*` or `fail_*`; production code
//! has no reason to call them.

#![forbid(unsafe_code)]

mod approval;
mod audit;
mod clock;
mod coordination;
mod grant;
mod rate;
mod session;
mod sync;
mod ttl;
mod usage;

pub use approval::MemoryApprovalStore;
pub use audit::MemoryAuditLog;
pub use clock::ManualClock;
pub use coordination::MemoryCoordinator;
pub use fctr_ports::SystemClock;
pub use grant::MemoryGrantStore;
pub use rate::MemoryRateLimiter;
pub use session::MemorySessionStore;
pub use usage::MemoryUsageLedger;
