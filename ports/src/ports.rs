//! The port traits. Each is object-safe (`Arc<dyn Port>`), `Send + Sync`, and documents what it must return when.

use crate::action::{Action, ActionKind, ActionReceipt};
use crate::audit::{AuditEvent, AuditQuery, ChainBreak, ChainSummary, PurgeReport, SealedEvent};
use crate::challenge::{ChallengeContext, ChallengeState, ChallengeTicket, CodeVerdict};
use crate::directory::{FactorInfo, RiskFacts, UserQuery, UserRecord};
use crate::error::PortError;
use crate::grant::{GrantConsumption, GrantRecord, VerificationRecord};
use crate::ids::TicketRef;
use crate::ids::{GroupRef, SubjectId, VerificationId};
use crate::pseudo::PseudoId;
use crate::rate::{RateDecision, RateKey, RateRule, UpstreamBudget};
use crate::ticket::{TicketSystem, WorkNote};
use crate::usage::{Month, UsageRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use std::collections::BTreeSet;
use std::time::Duration;

/// Reads users, their factors, groups and risk facts.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Directory: Send + Sync {
    /// Finds users matching a query, at most `limit` of them.
    ///
    /// # Errors
    /// An empty result is `Ok(vec![])`, not [`PortError::NotFound`]. [`PortError::RateLimited`],
    /// [`PortError::Unauthorized`], [`PortError::Forbidden`], [`PortError::Timeout`], [`PortError::Unavailable`],
    /// [`PortError::Upstream`] or [`PortError::Malformed`] as the IdP answers.
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError>;

    /// Reads one user by IdP id.
    ///
    /// # Errors
    /// [`PortError::NotFound`] when there is no such user; otherwise as [`Directory::find_users`].
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError>;

    /// Lists the user's enrolled factors (all statuses).
    ///
    /// # Errors
    /// [`PortError::NotFound`] when there is no such user; otherwise as [`Directory::find_users`].
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError>;

    /// Lists the groups (or directory roles) the user belongs to; policy uses them for protected and privileged
    /// targets.
    ///
    /// # Errors
    /// [`PortError::NotFound`] when there is no such user; otherwise as [`Directory::find_users`].
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError>;

    /// Reads the facts an agent weighs before trusting a caller.
    ///
    /// # Errors
    /// [`PortError::NotFound`] when there is no such user; otherwise as [`Directory::find_users`].
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError>;
}

/// Sends challenges to a caller's authenticator and checks codes.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Challenger: Send + Sync {
    /// Sends a push-like challenge (with number matching where the IdP supports it) to one factor.
    ///
    /// Not idempotent: every call sends a new push. Never retried by the adapter.
    ///
    /// # Errors
    /// [`PortError::NotFound`] for an unknown user or factor; [`PortError::Unsupported`] when the factor cannot be
    /// challenged this way; [`PortError::InvalidState`] when the factor is not active; otherwise IdP errors.
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError>;

    /// Reads the state of a pending challenge. Safe to repeat.
    ///
    /// # Errors
    /// IdP errors only; an expired or unknown transaction is `Ok(ChallengeState::TimedOut)` or
    /// `Ok(ChallengeState::Failed(..))`, never a success.
    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError>;

    /// Checks a one-time code the caller read out. The code is a secret: never logged.
    ///
    /// # Errors
    /// A wrong, replayed or out-of-window code is `Ok` with the matching [`CodeVerdict`], not an error.
    /// [`PortError::Unsupported`] when the factor takes no code; otherwise IdP errors.
    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError>;

    /// What is left of the provider's rate limit for [`Challenger::poll`]'s endpoint, as last observed, so that a
    /// poller can slow down before the provider refuses it. `None` when the adapter knows nothing (the default:
    /// in-memory and scripted providers, or no answer seen yet). Cheap and synchronous: no request is made.
    /// Wrappers around a provider must pass it through.
    fn poll_budget(&self) -> Option<UpstreamBudget> {
        None
    }
}

/// Runs high-risk lifecycle actions.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Runs one action. Not idempotent: never retried by the adapter.
    ///
    /// # Errors
    /// [`PortError::Unsupported`] when this IdP (or its configured mode) cannot do it; [`PortError::InvalidState`]
    /// when the account's state does not allow it; [`PortError::NotFound`]; otherwise IdP errors. An error after
    /// the request left means the outcome is unknown; callers must not retry blindly.
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError>;
}

/// What an identity provider can do, so policy and UI can be honest about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Short provider name (`okta`, `entra`, `fake-okta`).
    pub provider: String,
    /// Push challenges are available.
    pub push: bool,
    /// Pushes are expected to carry a number the caller must match. The engine does not take this on trust: a
    /// push counts as number-matched only when its own [`ChallengeTicket::number`] came back set, so an adapter
    /// must leave `number` empty whenever the IdP issued no number challenge.
    pub push_number_matching: bool,
    /// One-time codes can be checked.
    pub code_verification: bool,
    /// Search by name prefix is available.
    pub name_search: bool,
    /// The actions this provider can run.
    pub actions: BTreeSet<ActionKind>,
}

/// A whole identity provider: directory, challenger and lifecycle.
#[async_trait]
pub trait IdentityProvider: Directory + Challenger + Lifecycle {
    /// What this provider can do.
    fn capabilities(&self) -> Capabilities;
}

/// An append-only, hash-chained audit log.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event to its tenant's chain. When this returns `Ok`, the event is durable (as durable as the
    /// store promises); callers that must not act unaudited wait for it.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] or [`PortError::Unexpected`] when the event could not be stored; the event is
    /// then not in the log and the chain is unchanged.
    async fn append(&self, event: AuditEvent) -> Result<SealedEvent, PortError>;

    /// Reads events matching a query, oldest first.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be read.
    async fn read(&self, query: &AuditQuery) -> Result<Vec<SealedEvent>, PortError>;

    /// Walks every tenant's chain from its anchor and reports the first broken link.
    ///
    /// # Errors
    /// The outer error is a store failure; the inner `Err` is a broken chain.
    async fn verify_chain(&self) -> Result<Result<ChainSummary, ChainBreak>, PortError>;

    /// Deletes events strictly before `before`, recording an anchor so the retained chain still verifies.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be written; [`PortError::InvalidState`] when the events
    /// it would delete do not verify (retention must not erase evidence of tampering). Nothing is deleted then.
    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError>;
}

/// A pseudonymous usage ledger.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UsageLedger: Send + Sync {
    /// Adds `usage.count` to the row for its month, tenant, agent and kind.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be written.
    async fn record(&self, usage: UsageRecord) -> Result<(), PortError>;

    /// The rows of one month, sorted by tenant, agent and kind.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be read.
    async fn report(&self, month: Month) -> Result<Vec<UsageRecord>, PortError>;

    /// Deletes months that end before `before`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be written.
    async fn purge_before(&self, before: DateTime<Utc>) -> Result<PurgeReport, PortError>;
}

/// Short-lived shared state: verifications in progress and the grants they mint. Everything has a TTL; nothing
/// here is durable.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Writes a verification record. With `expected_version: None` it inserts only if the id is new; with
    /// `Some(v)` it replaces only if the stored record has version `v`. Returns whether it wrote.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached.
    async fn put_verification(
        &self,
        record: &VerificationRecord,
        expected_version: Option<u64>,
        ttl: Duration,
    ) -> Result<bool, PortError>;

    /// Reads a verification record.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached. Missing or expired is `Ok(None)`.
    async fn get_verification(
        &self,
        id: VerificationId,
    ) -> Result<Option<VerificationRecord>, PortError>;

    /// Stores a newly minted grant, replacing any earlier grant (live or used) for the same agent and subject.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached.
    async fn put_grant(&self, grant: &GrantRecord, ttl: Duration) -> Result<(), PortError>;

    /// Reads the live, unused grant for an agent and subject, without consuming it (for showing it). A used
    /// single-use grant reads as `None`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached. Missing, used or expired (by TTL) is `Ok(None)`.
    async fn find_grant(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
    ) -> Result<Option<GrantRecord>, PortError>;

    /// Spends the grant for `agent` and `subject` on `action`, in ONE atomic step: reads it, checks it is unused,
    /// unexpired at `now` (the grant's own `expires_at`) and covers `action`, and for a single-use grant marks it
    /// used, keeping a "used" marker until its TTL runs out so that a late attempt is told
    /// [`GrantConsumption::AlreadyUsed`] rather than [`GrantConsumption::Missing`].
    ///
    /// Of any number of concurrent calls for a single-use grant, on however many replicas, exactly one gets
    /// [`GrantConsumption::Consumed`]; every other gets [`GrantConsumption::AlreadyUsed`]. A grant that does not
    /// cover the action, or has expired, is not consumed. There is no find-then-take in the engine: the store
    /// alone decides, so a networked store must run this as one server-side operation (a Lua script on Redis).
    ///
    /// There is no grant id parameter: a store holds at most one grant per agent and caller (a newer
    /// verification replaces the older grant), so the pair names it.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached; nothing was consumed then (callers deny).
    async fn consume(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
        now: DateTime<Utc>,
    ) -> Result<GrantConsumption, PortError>;

    /// Gives back a single-use grant that [`GrantStore::consume`] spent but that was never acted on (the
    /// action's audit intent could not be written). Atomic: it only turns the "used" marker of grant `id` back
    /// into the live grant; if anything else holds the slot now (a newer grant, nothing), it does nothing and
    /// returns `false`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached.
    async fn restore(&self, grant: &GrantRecord, ttl: Duration) -> Result<bool, PortError>;
}

/// Sliding-window rate limits.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit against `key` under `rule` and says whether it was allowed. A refused hit is not counted.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached (callers fail closed).
    async fn hit(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError>;

    /// Says whether a hit would be allowed, without counting one.
    ///
    /// # Errors
    /// As [`RateLimiter::hit`].
    async fn peek(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError>;

    /// Takes back the most recent hit counted against `key` (a refund: the attempt turned out not to count, for
    /// example a one-time code the IdP accepted). Does nothing when no hit is counted. Atomic like
    /// [`RateLimiter::hit`]: a refund never takes back more hits than were counted, however many run at once.
    ///
    /// # Errors
    /// As [`RateLimiter::hit`].
    async fn undo(&self, key: &RateKey, rule: RateRule) -> Result<(), PortError>;

    /// Forgets every hit against `key`.
    ///
    /// # Errors
    /// As [`RateLimiter::hit`].
    async fn reset(&self, key: &RateKey) -> Result<(), PortError>;
}

/// A helpdesk ticket system fctr posts work notes to (ticket write-back). One adapter per system.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TicketSink: Send + Sync {
    /// Which system this is (it decides which references are accepted: [`TicketSystem::accept`]).
    fn system(&self) -> TicketSystem;

    /// Posts one note to one ticket, as an internal note (never visible to the ticket's requester where the
    /// system tells the two apart). One attempt: the caller retries. Not idempotent: a note that timed out may
    /// have been posted.
    ///
    /// # Errors
    /// [`PortError::InvalidState`] when the reference does not fit this system (nothing was sent);
    /// [`PortError::NotFound`] when the system has no such ticket; [`PortError::Unauthorized`] or
    /// [`PortError::Forbidden`] when fctr's credentials are refused; [`PortError::RateLimited`] with the system's
    /// `Retry-After`; [`PortError::Timeout`], [`PortError::Unavailable`] or [`PortError::Upstream`] (with the
    /// HTTP status) otherwise. Errors carry statuses, never the note or a credential.
    async fn post_note(&self, ticket: &TicketRef, note: &WorkNote) -> Result<(), PortError>;
}

/// The time. Tests use a manual clock.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
