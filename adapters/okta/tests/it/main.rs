//! Integration tests for fctr-okta: every request pinned with wiremock.

// Test helpers panic on purpose when a fixture is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod challenge;
mod concurrency;
mod directory;
mod errors;
mod in_flight;
mod leaks;
mod lifecycle;
mod oauth;
mod support;
