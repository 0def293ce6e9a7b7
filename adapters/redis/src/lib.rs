//! # fctr-redis: the replicas' shared short-lived state on Redis
//!
//! Several portal replicas behind a load balancer (no stickiness) share everything short-lived through one Redis:
//!
//! | handle | port | what |
//! |---|---|---|
//! | [`RedisState::grant_store`] | [`GrantStore`](fctr_ports::GrantStore) | verification records (compare-and-set on the version), grants, atomic `consume`/`restore` |
//! | [`RedisState::approval_store`] | [`ApprovalStore`](fctr_ports::ApprovalStore) | four-eyes approval requests, compare-and-set `decide` and `take` |
//! | [`RedisState::rate_limiter`] | [`RateLimiter`](fctr_ports::RateLimiter) | sliding windows timed by the Redis server's clock |
//! | [`RedisState::session_store`] | [`SessionStore`](fctr_ports::SessionStore) | portal sessions (tombstones, compare-and-set) and pre-login state |
//! | [`RedisState::coordinator`] | [`Coordinator`](fctr_ports::Coordinator) | leases, fan-out over pub/sub, values with TTLs |
//!
//! ```no_run
//! # async fn demo(url: secrecy::SecretString, seal_key: secrecy::SecretString) -> Result<(), Box<dyn std::error::Error>> {
//! use fctr_redis::{RedisOptions, RedisState};
//! let state = RedisState::connect(url, RedisOptions::new(seal_key).with_prefix("acme-prod")).await?;
//! let grants = state.grant_store();
//! let sessions = state.session_store(std::sync::Arc::new(fctr_ports::SystemClock), Default::default());
//! state.ping().await?; // readiness
//! # let _ = (grants, sessions); Ok(()) }
//! ```
//!
//! ## What it promises
//! - **Atomic across replicas.** Every check-and-change is one server-side step: a Lua script (run with `EVALSHA`,
//!   falling back to `EVAL`) or a single command. `consume` spends a single-use grant exactly once however many
//!   replicas try; a rate-limit hit is checked and counted in one script; a lease has one holder. Session changes
//!   are read, changed in Rust (the value is sealed, a script cannot change it) and written by a compare-and-set
//!   script on the version, retried on conflict: another request's change is never lost and a removed session is
//!   never written back.
//! - **Nothing durable.** Every key has a TTL: grants and verifications the TTL they are given, rate-limit sets until
//!   their newest hit leaves the window, sessions until their idle or absolute timeout (Redis drops dead sessions by
//!   itself), tombstones and pre-login state their timeouts, leases and values their TTL. No TTL exceeds a year.
//! - **No personal data and no bearer credential in Redis.** Keys hold opaque random ids (verification ids),
//!   or SHA-256 hashes of everything else (session ids, pre-login keys, rate-limit keys, the agent/caller pseudonym
//!   pair of a grant, lease and value keys, topics, lease holders). Every value that holds an IdP user id, an agent
//!   id, a role, a caller handle or a challenge ticket is **sealed**: AES-256-GCM (ring) with a random nonce per
//!   write, under a key derived with HKDF-SHA256 from the seal key in the [`RedisOptions`] (info
//!   `fctr-redis seal v1`), with the Redis key name (and hash field) as associated data, so a sealed value cannot
//!   be moved to another key. Grant records, coordinator values and published messages are sealed too. Only what
//!   a script must read stays in clear: versions, "used" flags, expiry times, a grant's action names, rate-limit
//!   hit times. A value that fails to open (tampered, moved, another seal key) reads as absent and is logged
//!   without content.
//! - **Fail closed, recover by itself.** Every operation runs under the command timeout (default 2 s); a Redis error
//!   or a timeout is [`PortError::Unavailable`](fctr_ports::PortError::Unavailable), and the caller refuses.
//!   An operation that errs did nothing the caller relies on (a `consume` that errs is a denial). When Redis is
//!   back the same store works again: commands go through a [`redis::aio::ConnectionManager`], which reconnects in
//!   the background after a connection loss, and the pub/sub connection is reopened and re-subscribed by its own
//!   task (it also pings, so a silently dead connection is noticed). Messages published while it was down are
//!   missed, as the port allows. Measured with a test forwarder: after a 15 s outage with commands failing
//!   throughout, commands work again 0.6 s after Redis is back; after an outage during which nothing was asked, the
//!   first command finds the dead connection and fails, and the next one works.
//! - **Secrets stay secret.** The URL (it may hold a password) and the seal key are `SecretString`s, and neither
//!   appears in `Debug`, a log line or an error ([`ConnectError`] carries no URL).
//!
//! ## Key layout (prefix `P`, default `fctr`)
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `P:v:<verification id>` | hash | `ver`, `data` (sealed record) | as given |
//! | `P:g:<sha256(agent, caller pseudonyms)>` | hash | `id`, `used`, `single`, `es`/`en` (expiry), `act`, `rec` (sealed) | as given |
//! | `P:a:<sha256(tenant)>:<approval id>` | hash | `st` (status), `es`/`en` (expiry), `rec` (sealed record) | as given |
//! | `P:as:<sha256(tenant, agent, caller, action)>` | string | sealed approval id (the slot) | as given |
//! | `P:ai:<sha256(tenant)>` | sorted set | the tenant's approval ids (the queue's index) | the longest of them |
//! | `P:r:<sha256(rate key)>` | sorted set | hit times (µs, server clock) | until the newest hit leaves the window |
//! | `P:s:<sha256(session id)>` | hash | `ver`, `data` (sealed session without its id) | until idle/absolute timeout |
//! | `P:sx:<sha256(session id)>` | string | "id taken" (live session or tombstone) | until the id could not be live, plus the absolute timeout |
//! | `P:sidx` | sorted set | session hashes by when they stop being live (for `len`) | the longest of them |
//! | `P:pl:<sha256(pre-login key)>` | string | sealed pre-login state | the pre-login timeout |
//! | `P:l:<sha256(lease key)>` | string | SHA-256 of the holder | the lease |
//! | `P:c:<sha256(key)>` | string | sealed value | as given |
//! | channel `P:t:<sha256(topic)>` | pub/sub | sealed messages | — |
//!
//! Time: grant and verification TTLs, leases and rate-limit windows run on the Redis server's clock, so replicas
//! whose clocks disagree still agree; session liveness is judged by the [`Clock`](fctr_ports::Clock) given to
//! [`RedisState::session_store`] (as in the in-memory store), and `consume` by the `now` the engine passes.
//!
//! ## Why the `redis` crate
//! redis-rs is the most used and actively maintained Redis client for Rust. Its tokio
//! [`ConnectionManager`](redis::aio::ConnectionManager) multiplexes every command of a process over one connection
//! and reconnects by itself after a loss (the "recover by itself" this adapter needs), and its
//! [`Script`](redis::Script) runs Lua by SHA with an `EVAL` fallback. Only the features used are enabled
//! (`tokio-comp`, `connection-manager`, `script`): no TLS, cluster or sentinel support is built in. Redis 6.2 or
//! newer is needed (`GETDEL`).
//!
//! ## Cost
//! One round trip per operation (a script or a command), two for a session change (read, then compare-and-set).
//! `cargo bench -p fctr-redis --bench ops` against a local Redis on a two-core machine: about 0.1 ms per grant
//! consume, rate-limit hit or session read, 0.23 ms per session change, 24 000 to 37 000 operations/s from 64
//! callers on one store.
//!
//! ## Limits
//! - One Redis (or a primary with replicas); not Redis Cluster (scripts touch several keys without hash tags).
//! - `redis://` and `unix://` only: put Redis on a private network or a local TLS tunnel.
//! - A single-use grant that is spent while Redis times out may be spent without the caller knowing: the caller
//!   denies, and the agent verifies again.

#![forbid(unsafe_code)]

mod approval;
mod coordination;
mod error;
mod grant;
mod keys;
mod options;
mod pubsub;
mod rate;
mod seal;
mod session;
mod state;

pub use error::ConnectError;
pub use options::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_PREFIX, RedisOptions};
#[doc(hidden)]
pub use options::{PauseHook, PausePoint};
pub use state::RedisState;
