//! The audit record, its canonical encoding and the chain hash.
//!
//! Every store (memory, SQLite, PostgreSQL) and every outside verifier computes these identically, so they live
//! here, beside the port, rather than in the engine.
//!
//! # Chain
//! Events form one chain per tenant. Event `seq` (0, 1, 2, …) stores `prev_hash` (the hash of event `seq - 1`,
//! or [`ChainHash::GENESIS`] for the first event) and its own `hash`:
//!
//! ```text
//! hash = SHA-256( "fctr-audit-v1" 0x00 || prev_hash (32 bytes) || seq (u64, big-endian) || canonical(event) )
//! ```
//!
//! `canonical(event)` is the event as JSON with object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, absent optional fields omitted, and times written as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

use crate::action::ActionKind;
use crate::directory::FactorKind;
use crate::ids::{RequestId, TenantId, TicketRef};
use crate::pseudo::PseudoId;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use uuid::Uuid;

mod chain;
mod event;
mod kinds;
mod query;
#[cfg(test)]
mod tests;

pub use chain::*;
pub use event::*;
pub use kinds::*;
pub use query::*;
