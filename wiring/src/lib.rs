//! # fctr-wiring: the configuration file and the stack built from it
//!
//! Both shells (`fctr-portal` and `fctr`) read the same deployment configuration and run on the same engine; this
//! crate is where that happens, so that neither shell imports the other:
//!
//! - [`config`]: the TOML file (schema, `FCTR_…` environment overrides, validation), split by section;
//! - [`secret`]: [`SecretSource`], where a secret is read from (an environment variable, a file, or a value
//!   given in code for demo mode), and the one function that reads it, zeroizing what it read;
//! - [`shared`]: [`SharedState`], the short-lived state (sessions, verifications, grants, rate limits, leases) in
//!   memory for one node or in Redis for several replicas;
//! - [`stack`]: [`Stack`], the IdP adapter (Okta or Entra), the stores (memory, SQLite, PostgreSQL), the shared
//!   state, the pseudonymizer, the policy and the tenant put together into an [`Engine`](fctr_core::Engine);
//! - [`tickets`]: [`TicketDesk`], ticket write-back: work notes posted in the background with bounded retries.
//!
//! It depends on the core, the ports and the adapters, never on a shell, an HTTP framework or a fake IdP: a
//! production build contains no test double.
#![forbid(unsafe_code)]

pub mod config;
pub mod secret;
pub mod shared;
pub mod stack;
pub mod tickets;

pub use config::{Config, ConfigError, IdpSection, OutOfBandSchedule};
pub use secret::SecretSource;
pub use shared::SharedState;
pub use stack::{
    DurableStore, Stack, StackError, StackParts, Stores, open_durable, open_postgres, open_sqlite,
};
pub use tickets::{NoteCounts, NoteRetry, NoteStatus, TicketDesk};
