//! Rate-limit vocabulary.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A rate-limit bucket key, e.g. `challenge:target:k1:abc…`. Built from pseudonyms and labels only.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RateKey(String);

impl RateKey {
    /// Parses a key: 1 to 200 printable ASCII characters, no spaces.
    ///
    /// # Errors
    /// [`crate::IdError`] when the text breaks that rule.
    pub fn parse(s: impl Into<String>) -> Result<Self, crate::IdError> {
        let s = s.into();
        if s.is_empty() {
            return Err(crate::IdError::Empty { what: "rate key" });
        }
        if s.len() > 200 {
            return Err(crate::IdError::TooLong {
                what: "rate key",
                max: 200,
            });
        }
        if !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(crate::IdError::BadCharacter { what: "rate key" });
        }
        Ok(Self(s))
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RateKey {
    type Error = crate::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}
impl From<RateKey> for String {
    fn from(k: RateKey) -> String {
        k.0
    }
}
impl fmt::Debug for RateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateKey({})", self.0)
    }
}

/// At most `limit` hits per `window` (a sliding window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRule {
    /// Hits allowed in a window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Allowed; this many more hits fit in the window.
    Allowed {
        /// Hits left.
        remaining: u32,
    },
    /// Over the limit; the next hit fits after this long.
    Limited {
        /// Time until a hit would be allowed.
        retry_after: Duration,
    },
}

impl RateDecision {
    /// Whether allowed.
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// What is left of the identity provider's own rate limit for one endpoint, as the adapter last observed it (for
/// Okta the `X-Rate-Limit-*` headers of the endpoint's last answer; for Entra only a throttle after a 429). Plain
/// numbers that callers pace themselves with; nothing here is enforced by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamBudget {
    /// Requests left in the current window.
    pub remaining: u64,
    /// Requests allowed per window; `0` when the provider does not say (a throttle with only `Retry-After`, or
    /// Okta's concurrency limit, which reports limit and remaining as 0).
    pub limit: u64,
    /// Time until the window resets (zero once the reset has passed: the figures are then stale and say nothing
    /// about the new window).
    pub reset_in: Duration,
}

impl UpstreamBudget {
    /// A throttle: nothing left until `reset_in` has passed, window size unknown.
    #[must_use]
    pub fn exhausted_for(reset_in: Duration) -> Self {
        Self {
            remaining: 0,
            limit: 0,
            reset_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that says nothing about its budget.
    struct Silent;

    #[async_trait::async_trait]
    impl crate::Challenger for Silent {
        async fn start(
            &self,
            _: &crate::SubjectId,
            _: &crate::FactorInfo,
            _: &crate::ChallengeContext,
        ) -> Result<crate::ChallengeTicket, crate::PortError> {
            Err(crate::PortError::Unsupported)
        }
        async fn poll(
            &self,
            _: &crate::ChallengeTicket,
        ) -> Result<crate::ChallengeState, crate::PortError> {
            Err(crate::PortError::Unsupported)
        }
        async fn verify_code(
            &self,
            _: &crate::SubjectId,
            _: &crate::FactorInfo,
            _: crate::SecretString,
        ) -> Result<crate::CodeVerdict, crate::PortError> {
            Err(crate::PortError::Unsupported)
        }
    }

    #[test]
    fn a_challenger_reports_no_budget_unless_it_says_otherwise() {
        assert_eq!(crate::Challenger::poll_budget(&Silent), None);
    }

    #[test]
    fn a_throttle_is_nothing_left_of_a_window_of_unknown_size() {
        let b = UpstreamBudget::exhausted_for(Duration::from_secs(7));
        assert_eq!(
            (b.remaining, b.limit, b.reset_in),
            (0, 0, Duration::from_secs(7))
        );
    }
}
