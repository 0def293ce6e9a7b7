//! Four-eyes approval: an action that policy holds until a second agent approves it, as a store keeps it. Plain
//! data and the store port: the rules (who may request, who may decide, what an approval allows) live in
//! `fctr-core`.

use crate::action::ActionKind;
use crate::directory::FactorKind;
use crate::error::PortError;
use crate::ids::{ApprovalId, GrantId, SubjectId, TenantId, VerificationId};
use crate::pseudo::PseudoId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalStatus {
    /// Waiting for a second agent.
    Pending,
    /// A second agent approved it; the requesting agent may run the action once.
    Approved,
    /// A second agent refused it; it can never be used.
    Refused,
    /// The approved action ran (or was attempted): spent.
    Used,
}

impl ApprovalStatus {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Refused => "refused",
            Self::Used => "used",
        }
    }
}

/// An approval request as stored between requests (possibly on another replica). Short-lived: every store keeps
/// it with a TTL and nothing here is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Its id.
    pub id: ApprovalId,
    /// The tenant.
    pub tenant: TenantId,
    /// The requesting agent, pseudonymized.
    pub agent: PseudoId,
    /// The requesting agent's display name as the IdP gives it, read from the directory when the request is made
    /// (staff, shown to the approver; may be empty). Never the caller's, never a value from the agent's browser.
    pub agent_name: String,
    /// The caller's IdP id (needed to read what an approver is shown; lives only in the short-lived store, like a
    /// verification record's).
    pub subject: SubjectId,
    /// The caller, pseudonymized.
    pub subject_pseudo: PseudoId,
    /// The action asked for.
    pub action: ActionKind,
    /// For a factor removal, the factor to remove: the approval covers that factor only.
    #[serde(default)]
    pub factor: Option<crate::FactorId>,
    /// Whether the caller was in a privileged group when the request was made.
    pub privileged: bool,
    /// The grant the request is bound to: only an action under this grant may use the approval.
    pub grant: GrantId,
    /// The verification that minted that grant.
    pub verification: VerificationId,
    /// The factor kinds that verified the caller.
    pub factors: Vec<FactorKind>,
    /// When the caller was verified (the grant was issued).
    pub verified_at: DateTime<Utc>,
    /// When the request was made.
    pub created_at: DateTime<Utc>,
    /// When the request (and an approval of it) stops working.
    pub expires_at: DateTime<Utc>,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// The deciding agent, pseudonymized, once decided.
    pub decided_by: Option<PseudoId>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
}

/// A second agent's decision, for [`ApprovalStore::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalDecision {
    /// Approve (`true`) or refuse (`false`).
    pub approve: bool,
    /// The deciding agent, pseudonymized.
    pub by: PseudoId,
    /// When.
    pub at: DateTime<Utc>,
}

/// What [`ApprovalStore::decide`] found and did, in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecideOutcome {
    /// The request was pending and unexpired; it now carries the decision (the record as written).
    Decided(Box<ApprovalRecord>),
    /// Someone decided (or used) it first; it was left untouched.
    AlreadyDecided(ApprovalStatus),
    /// Its `expires_at` has passed at the engine's `now`; it was left untouched.
    Expired,
    /// No such request in this tenant (never made, or its TTL ran out).
    Missing,
}

/// What [`ApprovalStore::take`] found and did, in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TakeOutcome {
    /// The request was approved and unexpired; it is now [`ApprovalStatus::Used`] (no other call can get it).
    Taken(Box<ApprovalRecord>),
    /// It is not approved (pending, refused, or already used); it was left untouched.
    NotApproved(ApprovalStatus),
    /// Its `expires_at` has passed at the engine's `now`; it was left untouched.
    Expired,
    /// No such request in this tenant.
    Missing,
}

/// Short-lived shared state of four-eyes approval requests. Everything has a TTL; nothing here is durable.
///
/// A store holds at most one request per (tenant, agent, caller, action) "slot": a newer request for the same slot
/// replaces the older one in [`ApprovalStore::find`] (the older record stays readable by id until its TTL runs
/// out, and can still be decided, but the engine only uses the one bound to the live grant).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Stores a new request under its id and points its slot at it. Inserts only: an id already stored is left
    /// alone and `Ok(false)` returned.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached; nothing was written then.
    async fn put(&self, record: &ApprovalRecord, ttl: Duration) -> Result<bool, PortError>;

    /// Reads one request of `tenant` by id, whatever its status.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached. Missing (or another tenant's) is `Ok(None)`.
    async fn get(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
    ) -> Result<Option<ApprovalRecord>, PortError>;

    /// Reads the latest request for this agent, caller and action (its slot), whatever its status.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached. None is `Ok(None)`.
    async fn find(
        &self,
        tenant: &TenantId,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
    ) -> Result<Option<ApprovalRecord>, PortError>;

    /// The tenant's requests that are still [`ApprovalStatus::Pending`] and whose TTL has not run out, oldest
    /// first. (Their own `expires_at` is the engine's to judge.)
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached.
    async fn pending(&self, tenant: &TenantId) -> Result<Vec<ApprovalRecord>, PortError>;

    /// Decides a pending request in ONE atomic step (compare-and-set on its status): only a request that is
    /// [`ApprovalStatus::Pending`] and unexpired at `now` (its own `expires_at`) takes the decision. Of any number of
    /// concurrent calls for one request, on however many replicas, exactly one gets [`DecideOutcome::Decided`];
    /// every other gets [`DecideOutcome::AlreadyDecided`]. The record keeps its TTL.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached; nothing was decided then.
    async fn decide(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        decision: &ApprovalDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, PortError>;

    /// Spends an approved request in ONE atomic step: only a request that is [`ApprovalStatus::Approved`] and
    /// unexpired at `now` becomes [`ApprovalStatus::Used`] and is returned. Of any number of concurrent calls,
    /// exactly one gets [`TakeOutcome::Taken`].
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached; nothing was taken then.
    async fn take(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        now: DateTime<Utc>,
    ) -> Result<TakeOutcome, PortError>;
}
