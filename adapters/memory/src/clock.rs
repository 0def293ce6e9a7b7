//! A clock for tests.

use crate::sync::lock;
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::Clock;
use std::sync::{Arc, Mutex};

/// A clock that only moves when told to. Clones share the same time, so a test can keep one handle and give
/// another (as `Arc<dyn Clock>`) to the stores under test.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock that reads `start` until moved.
    #[must_use]
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Sets the time (it may go backwards).
    pub fn set(&self, t: DateTime<Utc>) {
        *lock(&self.now) = t;
    }

    /// Moves the time by `by` (negative moves it back), saturating at the representable range.
    pub fn advance(&self, by: TimeDelta) {
        let mut now = lock(&self.now);
        let fallback = if by < TimeDelta::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        };
        *now = now.checked_add_signed(by).unwrap_or(fallback);
    }

    /// The current time (same as [`Clock::now`]).
    #[must_use]
    pub fn get(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.get()
    }
}
