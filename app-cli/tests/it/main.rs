//! Runs the real `fctr` binary: every subcommand, its output and its exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod audit;
mod changes;
mod common;
mod contract;
mod contract_entra;
mod doctor;
mod egress;
mod entra_cli;
mod lookup;
mod policy;
mod postgres;
mod verify;
