//! fctr-portal browser tests: real headless Chromium over WebDriver (`fantoccini` + a `chromedriver` child)
//! against a demo stack served on a random loopback port. Agents sign in through the fake Okta's own login page.
//!
//! Every step of a flow is checked (`Browser::check_page`): full-page screenshots at 1280 and 390 CSS px in
//! `<target dir>/artifacts/browser/<test>/<nn>-<step>-<width>.png` (see `harness::artifacts_dir`), no sideways
//! scrolling at 390 px, and no axe-core violation of WCAG 2.0/2.1 A and AA (docs/testing.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod harness;

mod flows;

mod four_eyes;

mod sign_in_link;

mod pages;

mod paths;
