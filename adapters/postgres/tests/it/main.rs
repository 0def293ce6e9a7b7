//! Integration tests for fctr-postgres against a real PostgreSQL (`FCTR_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): one binary, each test in its own fresh schema, dropped after.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod audit;
mod common;
mod export;
mod group_commit;
mod outage;
mod purge;
mod replicas;
mod tamper;
mod usage;
