//! Integration tests for fctr-memory: one binary, one module per store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod audit;
mod clock;
mod grant;
mod rate;
mod session;
mod support;
mod usage;
