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
