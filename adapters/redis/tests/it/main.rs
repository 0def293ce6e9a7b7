//! Integration tests of fctr-redis against a real Redis (`FCTR_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`;
//! `bash scripts/services.sh` starts one). Each test uses its own random key prefix and deletes its keys after.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod coordination;
mod data_rules;
mod forwarder;
mod grant;
mod outage;
mod rate;
mod redaction;
mod session;
mod support;
