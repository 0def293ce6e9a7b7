//! # fctr-entra
#![forbid(unsafe_code)]
