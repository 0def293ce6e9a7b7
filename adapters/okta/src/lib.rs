//! # fctr-okta: the Okta adapter
//!
//! [`OktaAdapter`] implements fctr's [`IdentityProvider`](fctr_ports::IdentityProvider) port
//! ([`Directory`](fctr_ports::Directory), [`Challenger`](fctr_ports::Challenger),
//! [`Lifecycle`](fctr_ports::Lifecycle)) over the Okta management API (`/api/v1/users/…`).
//!
//! ## What it promises
//! - **Exact wire behaviour.** User lookup by id; search by login (also matching e-mail, as the port asks), by
//!   e-mail, or by first/last-name prefix through `search=` with every literal quoted and escaped so no input can
//!   leave it; factors mapped to [`FactorKind`](fctr_ports::FactorKind); group memberships (all pages, or an
//!   error: a partial list could hide a protected group); risk facts from the user object.
//! - **Push with number matching.** `POST …/factors/{fid}/verify` with `{"useNumberMatchingChallenge": true}`;
//!   the number comes from `_embedded.challenge.correctAnswer`, the ticket handle is `_links.poll.href` verbatim.
//!   A poll only ever GETs a URL on the configured org (same scheme, host and port, path under
//!   `/api/v1/users/`); anything else is refused as [`PortError::Malformed`](fctr_ports::PortError) before any
//!   request, so a tampered handle cannot make the adapter call elsewhere with its credentials.
//! - **Code checks** (`{"passCode": …}`) for TOTP, HOTP and hardware tokens, reading both forms Okta may use for
//!   replayed or out-of-window codes (a 403 `E0000082`/`E0000083` error, or a 200 body with `PASSCODE_REPLAYED` /
//!   `TIME_WINDOW_EXCEEDED`).
//! - **Lifecycle actions**: clear sessions, reset password (one-time link, or e-mailed), expire password with a
//!   temporary password (read as `{"tempPassword"}`, not as a `User`), unlock, reset factors, remove one factor,
//!   suspend, unsuspend. Temporary Access Passes are Entra-only: [`PortError::Unsupported`](fctr_ports::PortError).
//! - **Nothing leaks.** Tokens, keys, passcodes, temporary passwords and reset links live in
//!   [`SecretString`](secrecy::SecretString) (zeroized, redacted in `Debug`); response bodies are zeroized after
//!   parsing; profile data goes only into [`Pii`](fctr_ports::Pii). Okta's `errorSummary`/`error_description`
//!   (which can echo input) never reach a [`PortError`](fctr_ports::PortError) or a log: only codes (`E0000…`),
//!   Okta's support id, statuses and rate-limit numbers are logged. Transport and JSON errors are classified, never
//!   formatted (their text carries the URL or the input). Limits of this: buffers inside reqwest/hyper (the request
//!   body with the passcode, the raw response) are freed without zeroizing.
//!
//! ## Retries: what is re-sent and what never is
//! | situation | GET (lookups, factor list, groups, push poll) | POST / DELETE (push, code check, lifecycle) |
//! |---|---|---|
//! | 429 | re-sent after `X-Rate-Limit-Reset − Date + 1 s`, at most [`OktaConfig::max_rate_limit_retries`] (2) times, each wait at most [`OktaConfig::max_retry_wait`] (10 s; a longer reset is returned, not waited out), with `X-Okta-Retry-For` / `X-Okta-Retry-Count` | **never**: [`PortError::RateLimited`](fctr_ports::PortError) with `retry_after` |
//! | connection refused / reset | re-sent once | **never** ([`Unavailable`](fctr_ports::PortError): the request did not leave when the connect failed) |
//! | timeout | not re-sent ([`Timeout`](fctr_ports::PortError)) | **never** (outcome unknown) |
//! | 5xx | not re-sent ([`Upstream`](fctr_ports::PortError)) | **never** |
//! | 401 (OAuth only) | once, with a freshly minted token | once, with a freshly minted token: a 401 means Okta refused our credentials before running anything |
//!
//! A push or lifecycle call is therefore sent at most once per port call (plus the single re-send after a
//! credential refusal). When `X-Rate-Limit-Remaining` falls under 5 % of `X-Rate-Limit-Limit` for an endpoint,
//! later requests to it pause briefly (at most [`OktaConfig::max_slow_down`]) to spread what is left until the
//! reset. [`OktaAdapter::rate_budget`] shows the last observed budget. The push poll keeps a budget of its own
//! (bucket `factors.poll`, from the poll answers' headers only), which
//! [`Challenger::poll_budget`](fctr_ports::Challenger::poll_budget) reports with the time left to its reset: the
//! portal's poller slows down on it well before this 5 % pause (and before any 429).
//!
//! ## Error mapping
//! 401 → `Unauthorized`; 403 `E0000006` → `Forbidden { missing: "an Okta admin role covering this user" }`;
//! 403 with `WWW-Authenticate: … error="insufficient_scope"` → `Forbidden { missing: "scope okta.users.…" }`;
//! 404 → `NotFound` (on a push poll: `TimedOut`); `E0000038`, `E0000032`, and 400 `E0000001` on a lifecycle call →
//! `InvalidState`; 429 → `RateLimited`; 5xx → `Upstream { status, code }`; unparseable JSON → `Malformed`;
//! connect failure → `Unavailable`; timeout → `Timeout`. Token-endpoint failures: `invalid_client` →
//! `Unauthorized`, `invalid_scope` → `Forbidden { missing: "scope …" }`; [`OktaAdapter::check_credentials`]
//! returns the full [`TokenError`] ("client authentication failed (check client id, key id and registered public
//! key)", "the service app was not granted scope okta.users.manage", …).
//!
//! ## Setting up Okta
//! Recommended: an **API Services** app (OAuth service app) using client credentials with `private_key_jwt`.
//! 1. Admin Console → Applications → Create App Integration → API Services. Note the client id (`0oa…`).
//! 2. Client authentication: *Public key / Private key*; add your public key (JWK) with a unique `kid`. Keep the
//!    private key (PKCS#8 PEM; ES256 on P-256 or RS256) in your secret store.
//! 3. Okta API Scopes: grant **`okta.users.read`** and **`okta.users.manage`** (nothing else is needed; there are
//!    no per-user `okta.factors.*` scopes). Optional: **`okta.logs.read`** for out-of-band change detection
//!    ([`ChangeFeed`](fctr_ports::ChangeFeed) over the System Log, `GET /api/v1/logs`), asked for with a token of
//!    its own so the management token never depends on it.
//! 4. Admin roles: assign the app an admin role covering the users agents will serve (e.g. Help Desk
//!    Administrator scoped to the right groups, or a custom role). Scopes limit *what* the app can do, the role
//!    limits *whom*: without it every call answers 403 `E0000006`.
//! 5. Optional: turn on "Require DPoP header in token requests" and set `dpop: true`.
//!
//! The adapter asks for exactly `okta.users.read okta.users.manage` at `{org}/oauth2/v1/token` with a signed
//! assertion (`iss` = `sub` = client id, `aud` = the token URL, five-minute `exp`, fresh `jti`, header `kid`), caches
//! the token until a minute before it expires, and with DPoP signs a proof per request with an ephemeral P-256 key
//! (answering the token endpoint's `use_dpop_nonce` once). An SSWS API token ([`OktaAuth::ApiToken`]) also works
//! but carries its creator's full privileges; prefer the service app.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm};
//! use secrecy::SecretString;
//! let pem = std::fs::read_to_string("/run/secrets/okta-service-app.pem")?;
//! let config = OktaConfig::new(
//!     "https://acme.okta.com".parse()?,
//!     OktaAuth::PrivateKeyJwt {
//!         client_id: "0oa1example".into(),
//!         key_id: "fctr-2026".into(),
//!         private_key_pem: SecretString::from(pem),
//!         algorithm: SigningAlgorithm::Es256,
//!         dpop: false,
//!     },
//! );
//! let okta = OktaAdapter::new(config)?; // validates the URL and the key now
//! # Ok(()) }
//! ```
//!
//! ## Measuring the overhead
//! `cargo bench -p fctr-okta --bench overhead` compares `get_user` through the adapter with the same raw reqwest
//! GET against a local wiremock server; the adapter's own cost (auth header, rate bookkeeping, parsing into port
//! types) is the difference.

#![forbid(unsafe_code)]

mod adapter;
mod config;
mod dpop;
mod errors;
/// Fuzzing entry points (feature `fuzzing`, off by default): not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod search;
mod token;
mod wire;

pub use adapter::OktaAdapter;
pub use config::{
    ConfigError, DEFAULT_MAX_IN_FLIGHT, DEFAULT_USER_AGENT, OktaAuth, OktaConfig, SCOPES,
    SigningAlgorithm,
};
pub use http::RateBudget;
pub use token::TokenError;
