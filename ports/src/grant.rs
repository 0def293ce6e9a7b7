//! Stored state of verifications and the grants they mint. Plain data: the rules live in `fctr-core`.

use crate::action::ActionKind;
use crate::challenge::ChallengeTicket;
use crate::directory::FactorKind;
use crate::ids::{FactorId, GrantId, SubjectId, TenantId, VerificationId};
use crate::pseudo::PseudoId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VerificationStatus {
    /// Started, no challenge outstanding (waiting for the agent to pick the next factor).
    Pending,
    /// A challenge is outstanding.
    Challenged,
    /// Enough factors approved; a grant was issued.
    Verified,
    /// The caller rejected a challenge or gave a wrong code.
    Rejected,
    /// The verification window closed.
    Expired,
    /// An IdP error ended it.
    Failed,
}

impl VerificationStatus {
    /// Whether the verification has ended.
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending | Self::Challenged)
    }

    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Challenged => "challenged",
            Self::Verified => "verified",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }
}

/// The challenge a verification is waiting on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutstandingChallenge {
    /// The factor challenged.
    pub factor: FactorId,
    /// Its kind.
    pub kind: FactorKind,
    /// The IdP ticket, for push-like factors; `None` when the caller reads a code back.
    pub ticket: Option<ChallengeTicket>,
    /// When it was sent.
    pub started_at: DateTime<Utc>,
    /// For [`FactorKind::IdpSignIn`]: the one-time link the caller opens. `None` for every other kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<SignInLink>,
}

/// A one-time sign-in link: the caller opens it on their own device and signs in to the IdP with MFA.
///
/// The secret is a bearer value until the link is opened (it names nothing about the caller; opening it only
/// lets someone *try* to sign in as the caller at the IdP). `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInLink {
    /// The random part of the link (base64url of 32 bytes, 244 of them random bits).
    pub secret: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// When the caller opened it (a link opens once).
    #[serde(default)]
    pub opened_at: Option<DateTime<Utc>>,
    /// When the IdP sign-in was checked and accepted (the agent's next poll approves the factor).
    #[serde(default)]
    pub verified_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SignInLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInLink")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("opened_at", &self.opened_at)
            .field("verified_at", &self.verified_at)
            .finish()
    }
}

/// A factor the caller proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedFactor {
    /// The factor.
    pub factor: FactorId,
    /// Its kind.
    pub kind: FactorKind,
    /// When it was approved.
    pub at: DateTime<Utc>,
    /// For a push: whether the IdP actually issued a number challenge for it (observed on the ticket, not assumed
    /// from the provider's capabilities). A record written without the field reads as `false`: fail closed.
    #[serde(default)]
    pub number_matched: bool,
}

/// A verification as stored between requests (possibly on another replica).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Its id.
    pub id: VerificationId,
    /// The tenant.
    pub tenant: TenantId,
    /// The agent running it, pseudonymized.
    pub agent: PseudoId,
    /// The caller's IdP id (needed to call the IdP; lives only in memory or the in-memory cache).
    pub subject: SubjectId,
    /// The caller, pseudonymized.
    pub subject_pseudo: PseudoId,
    /// Where it stands.
    pub status: VerificationStatus,
    /// The outstanding challenge, if any.
    pub challenge: Option<OutstandingChallenge>,
    /// Factors approved so far.
    pub approved: Vec<ApprovedFactor>,
    /// Distinct factors policy requires.
    pub required_factors: u8,
    /// Whether the caller was in a privileged group when the verification began: the approval judges the factors
    /// by this class instead of reading the caller's groups again (the action still re-checks protection). `None`
    /// for a record written before the field existed: the engine then reads the groups (fail closed).
    #[serde(default)]
    pub privileged: Option<bool>,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When the verification window closes.
    pub expires_at: DateTime<Utc>,
    /// The grant it minted, once verified.
    pub grant: Option<GrantId>,
    /// Why it ended, when a refusal ended it and the agent must be told why (a sign-in link opened by someone
    /// else is a red flag). `None` otherwise, and for records written before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<crate::audit::Reason>,
    /// Optimistic-concurrency version, bumped on every write.
    pub version: u64,
}

/// A verification grant as a store holds it: plain data, so that every store (memory, Redis) can keep it.
///
/// This is the stored form only. The live grant the engine acts on is `fctr_core::Grant`, which cannot be built
/// outside the core; the engine never accepts a grant from its caller, only from its own store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Its id.
    pub id: GrantId,
    /// The tenant.
    pub tenant: TenantId,
    /// The verification that minted it.
    pub verification: VerificationId,
    /// The agent it is bound to.
    pub agent: PseudoId,
    /// The caller it is bound to.
    pub subject: PseudoId,
    /// Actions it allows (the agent's role at the time of minting, intersected with policy).
    pub actions: BTreeSet<ActionKind>,
    /// The factor kinds that were verified.
    pub factors: Vec<FactorKind>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether one action consumes it.
    pub single_use: bool,
}

/// What [`crate::GrantStore::consume`] found, decided and did, in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantConsumption {
    /// The grant was live and covers the action. A single-use grant is now used (no other call can get it);
    /// a multi-use grant stays live until it expires.
    Consumed(GrantRecord),
    /// A single-use grant for this agent and caller was already spent.
    AlreadyUsed,
    /// The grant's `expires_at` has passed at the engine's `now`.
    Expired,
    /// The grant does not cover this action; it was left untouched.
    DoesNotCover,
    /// No grant for this agent and caller (never minted, or its TTL ran out).
    Missing,
}
