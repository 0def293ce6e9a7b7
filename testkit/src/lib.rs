//! # fctr-testkit
//!
//! Test doubles for fctr's identity-provider adapters and the portal's demo mode.
//!
//! - [`okta`]: a stateful fake Okta tenant. It is a real HTTP server on loopback that speaks the Okta
//!   management API subset fctr uses (users, factors, push with number matching, TOTP, lifecycle), the org
//!   authorization server (service-app `private_key_jwt` tokens, optional DPoP) and an OIDC provider for agent
//!   sign-in, in Okta's own wire format (paths, fields, status codes, error bodies, rate-limit headers). It seeds a
//!   documented fixture org (see `testkit/FIXTURES.md`), simulates phones and injects faults.
//!
//! - [`entra`]: a stateful fake Microsoft Entra ID tenant on loopback: the v2.0 token endpoint (client secret or
//!   certificate assertion, AADSTS errors), a Microsoft Graph v1.0 subset (users, authentication methods,
//!   memberOf, lifecycle, Temporary Access Pass, application permissions), the unofficial MFA connector (XML push
//!   and code checks) and an OIDC v2 provider, seeding the fixture tenant of `testkit/FIXTURES-entra.md`.
//!
//! - [`server`]: the fake-server skeleton both fakes are built on (clock, faults, rate limits, phones, the serve
//!   loop, the shared `/_fake/…` control plane and the contract drivers). The vendor fakes plug their routes,
//!   error shapes and fixtures into it and do not import each other.
//!
//! - [`contract`]: the adapter contract suite, named checks generic over `Arc<dyn IdentityProvider>`, run against
//!   the fakes in `cargo test` and against a real sandbox org by `fctr contract-test`.
//!
//! - [`stores`]: the store contract suite, named checks over the store ports (grants, rate limits, sessions,
//!   coordination, audit, usage) that every store implementation runs, each against two replicas of one shared
//!   state; a small runner lets an embedding team run it against its own store.
//!
//! Nothing here is meant for production: keys are generated at start, state lives in memory, and the control API
//! under `/_fake/…` is unauthenticated by design. Bind it to loopback only.
#![forbid(unsafe_code)]

mod common;
pub mod contract;
pub mod entra;
pub mod okta;
pub mod scripted;
pub mod server;
pub mod stores;

pub use scripted::{IdpMethod, ScriptedIdp, ScriptedUser};
