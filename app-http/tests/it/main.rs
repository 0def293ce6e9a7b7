//! fctr-portal integration tests: the router in-process (`tower::ServiceExt::oneshot`) against the fake Okta.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod helpers;

mod alarms;
mod api;
mod api_contract;
mod asvs;
mod audit_view;
mod auth;
mod auth_paths;
mod certified_provider;
mod config;
mod egress;
mod entra;
mod flow;
mod four_eyes;
mod gate;
mod gate_push;
mod idp_calls;
mod jwks;
mod logs;
mod network;
mod ops;
mod out_of_band;
mod polling;
mod postgres;
mod routes;
mod security;
mod sign_in_link;
mod sign_in_variants;
mod tickets;
mod tls;
