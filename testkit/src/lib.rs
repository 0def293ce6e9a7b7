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
//! - [`contract`]: the adapter contract suite, named checks generic over `Arc<dyn IdentityProvider>`, run against
//!   the fakes in `cargo test` and against a real sandbox org by `fctr contract-test`.
//!
//! Nothing here is meant for production: keys are generated at start, state lives in memory, and the control API
//! under `/_fake/…` is unauthenticated by design. Bind it to loopback only.
#![forbid(unsafe_code)]

pub mod contract;
pub mod okta;
