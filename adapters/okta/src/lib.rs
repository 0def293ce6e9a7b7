//! # fctr-okta
#![forbid(unsafe_code)]
