//! # fctr-sqlite
#![forbid(unsafe_code)]
