//! # fctr-memory
#![forbid(unsafe_code)]
