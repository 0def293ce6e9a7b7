//! # fctr-ports: the contract
//!
//! The vocabulary types, port traits and port errors that the fctr engine (`fctr-core`) and every adapter share.
//! This crate depends on no other fctr crate and does no I/O.
//!
//! ## Writing an adapter
//! An identity-provider adapter implements [`Directory`], [`Challenger`] and [`Lifecycle`] and then
//! [`IdentityProvider`] (its [`Capabilities`]). A store implements [`AuditLog`], [`UsageLedger`], [`GrantStore`] or
//! [`RateLimiter`], a four-eyes store [`ApprovalStore`]; an alert channel implements [`AlertSink`]; a portal's shared state also needs [`SessionStore`] and [`Coordinator`]. Every method documents, under `# Errors`, which [`PortError`] it must return when; translate
//! vendor errors into those variants and keep vendor codes out of anything above the adapter.
//!
//! Rules every adapter keeps:
//! - Raw strings stop at the adapter: parse them into the newtypes here ([`SubjectId::parse`], …).
//! - Personal data stays in [`Pii`]; secrets in [`secrecy::SecretString`]. Neither reaches a log or an error.
//! - Audit stores hash with [`ChainHash`] over [`AuditEvent::canonical_bytes`] and verify with
//!   [`verify_tenant_chain`], so every store and every outside verifier agree.
//! - Lifecycle calls and pushes are not idempotent: never retry them blindly.
//!
//! With the `mock` feature, the `mock` module has mockall mocks of every port for tests.

#![forbid(unsafe_code)]
#![cfg_attr(feature = "mock", allow(missing_docs))]

mod action;
mod alert;
mod approval;
mod audit;
mod challenge;
mod changes;
mod code;
mod coordination;
mod directory;
mod egress;
mod error;
mod grant;
mod ids;
mod pii;
mod ports;
mod pseudo;
mod rate;
mod session;
mod ticket;
mod usage;

#[cfg(feature = "mock")]
pub mod mock;

pub use action::{Action, ActionKind, ActionReceipt, OneTimeSecret, SecretKind};
pub use alert::{Alert, AlertRule, AlertSink, ChangeRef, Severity};
pub use approval::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, ApprovalStore, DecideOutcome, TakeOutcome,
};
pub use audit::{
    AuditDetail, AuditEvent, AuditQuery, BreakKind, ChainAnchor, ChainBreak, ChainCheckpoint,
    ChainHash, ChainSummary, EventKind, Outcome, PurgeReport, RawLink, Reason, SealedEvent,
    TruncatedIp, canonical_time, verify_tenant_chain, verify_tenant_chain_raw,
};
pub use challenge::{
    ChallengeContext, ChallengeHandle, ChallengeState, ChallengeTicket, CodeVerdict, FailureReason,
};
pub use changes::{ChangeActor, ChangeFeed, IdpChange};
pub use code::{OtpCode, OtpCodeError};
pub use coordination::{Coordinator, Subscription};
pub use directory::{
    AccountStatus, FactorInfo, FactorKind, FactorStatus, QueryError, RiskFacts, UserQuery,
    UserRecord,
};
pub use egress::{Egress, EgressError, EgressProxy, ProxyCredentials};
pub use error::PortError;
pub use grant::{
    ApprovedFactor, GrantConsumption, GrantRecord, OutstandingChallenge, SignInLink,
    VerificationRecord, VerificationStatus,
};
pub use ids::{
    AgentId, ApprovalId, FactorId, GrantId, GroupRef, IdError, RequestId, SubjectId, TenantId,
    TicketRef, VerificationId,
};
pub use pii::Pii;
pub use ports::{
    AuditLog, Capabilities, Challenger, Clock, Directory, GrantStore, IdentityProvider, Lifecycle,
    RateLimiter, SystemClock, TicketSink, UsageLedger,
};
pub use pseudo::{KeyId, PseudoId};
pub use rate::{RateDecision, RateKey, RateRule, UpstreamBudget};
pub use secrecy::{ExposeSecret, SecretString};
pub use session::{PreLogin, Session, SessionStore, Timeouts, to_chrono};
pub use ticket::{NoteOutcome, TicketSystem, WorkNote, WrongTicketShape};
pub use usage::{Month, UsageKind, UsageRecord};
