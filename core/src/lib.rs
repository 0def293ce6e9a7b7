//! # fctr-core
#![forbid(unsafe_code)]
