//! Integration tests for fctr-sqlite: one binary, each test with its own temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod audit;
mod common;
mod crash;
mod export;
mod files;
mod group_commit;
mod purge;
mod stored_form;
mod tamper;
mod usage;
