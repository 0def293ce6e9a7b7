//! # fctr-core: the domain rules and the engine
//!
//! Everything fctr decides lives here, as pure code over the ports of [`fctr_ports`]: which factors count
//! ([`policy`], [`assurance`]), who may do what to whom, when a verification is good enough and for how long
//! ([`verification`]), and the use cases that tie them together ([`Engine`]). It does no I/O of its own: no
//! runtime, no HTTP, no database. Its tests run with no network.
//!
//! ## Embedding the engine
//! Build a [`Ports`] from adapters (an [`fctr_ports::IdentityProvider`] such as `fctr-okta`, an
//! [`fctr_ports::AuditLog`] such as `fctr-sqlite`, and the in-memory stores of `fctr-memory` for a single node),
//! a [`policy::Policy`] and a [`Pseudonymizer`], then call the use cases on [`Engine`]:
//!
//! 1. [`Engine::sign_in`] maps an agent's IdP groups to a role;
//! 2. [`Engine::search`] / [`Engine::lookup`] find the caller and build the caller card;
//! 3. [`Engine::begin_verification`], [`Engine::poll_verification`], [`Engine::submit_code`] run the challenge;
//!    a verified verification mints a [`verification::Grant`] bound to that agent and that caller;
//! 4. [`Engine::perform_action`] runs a high-risk action only under a live grant, writing the audit intent before
//!    and the outcome after. The shell passes an [`ActionRequest`] (what the agent asked for); the engine sets the
//!    terms (a Temporary Access Pass's lifetime and one-time use come from policy);
//! 5. [`Engine::audit_view`] shows the pseudonymous audit log to roles that may see it.
//!
//! Durations in this API are [`chrono::Duration`] (see [`Retention`], [`Denial::retry_after`]).
//!
//! Every use case authorizes, applies policy, calls the ports, appends an audit event and returns a typed result.
//! Every refusal is a [`Denial`] with a machine-readable [`fctr_ports::Reason`]. Any error is a denial.
//!
//! `examples/embed_engine.rs` in the repository runs the whole flow against in-memory ports.
//!
//! ## Writing an adapter of one's own
//! Implement the traits of [`fctr_ports`] (their docs say what each method must return when) and hand an
//! `Arc<dyn Trait>` to [`Ports`]. The engine never sees vendor types.

#![forbid(unsafe_code)]

pub mod assurance;
mod audit;
mod denial;
mod engine;
pub mod out_of_band;
pub mod policy;
mod pseudonym;
pub mod verification;

pub use audit::AuditBuilder;
pub use denial::Denial;
pub use engine::{
    ActionOutcome, ActionRequest, ActionView, Agent, AlertDelivery, ApprovalDecided, ApprovalView,
    AuditPage, AuditRow, AuditSort, AuditViewQuery, CallerCard, ChangeReportError,
    DEFAULT_LINK_MINUTES, DEFAULT_MAX_AUTH_AGE_SECONDS, Engine, EngineBuilder, FactorView,
    GrantView, LinkView, MissingPart, NoteDelivery, OpenedLink, OutOfBandScan, Ports,
    RequestContext, Retention, SignInEvidence, SignInLinks, VerificationView, link_token,
};
pub use pseudonym::{KeyError, Pseudonymizer};
