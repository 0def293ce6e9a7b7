//! # fctr-portal
//!
//! The agent portal and JSON API. Not yet built: see the portal issue.
#![forbid(unsafe_code)]
