//! # fctr-testkit
#![forbid(unsafe_code)]
