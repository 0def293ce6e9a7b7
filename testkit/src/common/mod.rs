//! Building blocks shared by the fake tenants: serving with droppable connections, fault rules, key material,
//! TOTP, JWS and OIDC helpers, HTML pages.

pub(crate) mod fault;
pub(crate) mod jwt;
pub(crate) mod keys;
pub(crate) mod oidc;
pub(crate) mod page;
pub(crate) mod serve;
pub(crate) mod totp;
pub(crate) mod util;
