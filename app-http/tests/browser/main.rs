//! fctr-portal browser tests: real headless Chromium over WebDriver (`fantoccini` + a `chromedriver` child)
//! against a demo stack served on a random loopback port. Agents sign in through the fake Okta's own login page.
//!
//! Screenshots: `<target dir>/artifacts/browser/<test>/<nn>-<step>.png` (see `harness::artifacts_dir`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod harness;

mod flows;
