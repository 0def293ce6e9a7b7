//! Integration tests for fctr-entra: every request pinned with wiremock; the factor reset also against the fake
//! Entra tenant (`reset`).

// Test helpers panic on purpose when a fixture is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod changes;
mod connector;
mod directory;
mod errors;
mod leaks;
mod lifecycle;
mod oauth;
mod reset;
mod support;
