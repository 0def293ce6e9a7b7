//! Integration tests for the fake Okta and Entra tenants: real HTTP against a started fake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod control;
mod entra;
mod factors;
mod helpers;
mod lifecycle;
mod oidc;
mod out_of_band;
mod token;
mod users;
