//! Building blocks shared by the fake tenants: key material, TOTP, JWS and OIDC helpers, HTML pages. The
//! server skeleton itself (clock, faults, rate limits, phones, serving, control plane) is [`crate::server`].

pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod oidc;
pub(crate) mod page;
pub(crate) mod totp;
pub(crate) mod util;
