//! Challenges sent to a caller's authenticator, and their results.

use crate::ids::{FactorId, RequestId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The adapter's own handle for a pending challenge (Okta: the transaction's poll URL; Entra: the connector's
/// context id). Opaque to everyone else; may contain the IdP user id, so `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChallengeHandle(String);

impl ChallengeHandle {
    /// Wraps an adapter-defined value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the adapter that made it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChallengeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeHandle([redacted])")
    }
}

/// A pending challenge: what the agent needs to see and what the adapter needs to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeTicket {
    /// The factor challenged.
    pub factor: FactorId,
    /// The adapter's handle.
    pub handle: ChallengeHandle,
    /// With number matching, the number the caller must pick on their device (the agent reads it out). `None` on
    /// a push means the IdP issued no number challenge for it; the engine then judges it as a plain push,
    /// whatever [`crate::Capabilities::push_number_matching`] says.
    pub number: Option<u16>,
    /// When the IdP stops accepting an answer.
    pub expires_at: DateTime<Utc>,
}

/// Why a challenge failed, as far as the IdP says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureReason {
    /// The IdP reported an error for the transaction.
    IdpError,
    /// The IdP answered with a result this adapter does not know.
    UnknownResult,
    /// The transaction was cancelled.
    Cancelled,
    /// The factor is no longer active.
    FactorInactive,
}

impl FailureReason {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::IdpError => "idp_error",
            Self::UnknownResult => "unknown_result",
            Self::Cancelled => "cancelled",
            Self::FactorInactive => "factor_inactive",
        }
    }
}

/// The state of a pending challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
#[non_exhaustive]
pub enum ChallengeState {
    /// Not answered yet.
    Waiting,
    /// The caller approved (with the right number, where number matching is on).
    Approved,
    /// The caller denied, or picked the wrong number.
    Rejected,
    /// Nobody answered in time.
    TimedOut,
    /// Failed for another reason.
    Failed(FailureReason),
}

impl ChallengeState {
    /// Whether the state is final.
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

/// What an IdP may show the caller about who asked (Okta shows the request's User-Agent and location).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChallengeContext {
    /// The request that started the challenge.
    pub request_id: Option<RequestId>,
}

/// The result of checking a one-time code the caller read out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CodeVerdict {
    /// The code is right and had not been used.
    Accepted,
    /// The code is wrong.
    Wrong,
    /// The code was right but already used in this time window.
    Replayed,
    /// The code was valid, but outside the accepted time window.
    OutsideWindow,
    /// The IdP has locked the user or factor after too many attempts.
    Locked,
}

impl CodeVerdict {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Wrong => "wrong",
            Self::Replayed => "replayed",
            Self::OutsideWindow => "outside_window",
            Self::Locked => "locked",
        }
    }
}
