//! The vocabulary of `fctr-ports`, pinned from outside the crate: stable names, parse limits, redaction and the
//! audit query filter. Every store, adapter and outside verifier relies on these exact forms.
//!
//! Written against the survivors of a mutation pass (`bash scripts/mutants.sh ports`, docs/mutation-testing.md):
//! each test fails if the rule it names is changed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod audit_query;
mod names;
mod parse_limits;
