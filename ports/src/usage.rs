//! Pseudonymous usage records, for billing.

use crate::ids::TenantId;
use crate::pseudo::PseudoId;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Month {
    year: u16,
    month: u8,
}

impl Month {
    /// The month containing `t`.
    #[must_use]
    pub fn of(t: DateTime<Utc>) -> Self {
        Self {
            year: u16::try_from(t.year()).unwrap_or(0),
            month: u8::try_from(t.month()).unwrap_or(1),
        }
    }

    /// Parses `YYYY-MM`.
    ///
    /// # Errors
    /// [`crate::IdError::BadCharacter`] for anything else.
    pub fn parse(s: &str) -> Result<Self, crate::IdError> {
        let bad = crate::IdError::BadCharacter {
            what: "month (YYYY-MM)",
        };
        let (y, m) = s.split_once('-').ok_or(bad.clone())?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad);
        }
        let year: u16 = y.parse().map_err(|_| bad.clone())?;
        let month: u8 = m.parse().map_err(|_| bad.clone())?;
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad);
        }
        Ok(Self { year, month })
    }

    /// The year.
    #[must_use]
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    #[must_use]
    pub fn month(&self) -> u8 {
        self.month
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}
impl TryFrom<String> for Month {
    type Error = crate::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UsageKind {
    /// A completed verification (grant issued).
    Verification,
    /// An action run.
    Action,
}

impl UsageKind {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Verification => "verification",
            Self::Action => "action",
        }
    }
}

/// One counted use (or a row of a report: the sum for a month, tenant, agent and kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The month.
    pub month: Month,
    /// The tenant.
    pub tenant: TenantId,
    /// The agent, pseudonymized.
    pub agent: PseudoId,
    /// What was counted.
    pub kind: UsageKind,
    /// How many.
    pub count: u64,
}
