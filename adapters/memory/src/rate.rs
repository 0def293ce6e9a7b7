//! The in-memory sliding-window rate limiter.

use crate::sync::lock;
use crate::ttl::TtlMap;
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{Clock, PortError, RateDecision, RateKey, RateLimiter, RateRule};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sliding-window rate limits held in memory.
///
/// Each key keeps the times of its allowed hits. A hit at `t` counts against the key while `now < t + window`
/// and leaves the window at exactly `t + window`. Under `RateRule { limit, window }`:
///
/// - [`RateLimiter::hit`] drops hits that left the window; if fewer than `limit` remain it records `now` and
///   answers `Allowed { remaining }` (hits still left after this one); otherwise it records nothing and answers
///   `Limited { retry_after }`: the time until enough hits leave the window for one more to fit (with a full
///   window, until the oldest leaves), rounded up to whole seconds and at least one second. With `limit: 0`
///   nothing is ever allowed and `retry_after` is the window (at least one second).
/// - [`RateLimiter::peek`] answers the same question without recording anything; its `remaining` counts the hits
///   that fit now, including the one it was asked about (one more than [`RateLimiter::hit`] would then report).
/// - [`RateLimiter::undo`] takes back the newest recorded hit (a refund), under the same lock as `hit`.
/// - [`RateLimiter::reset`] forgets the key.
///
/// Each key's hits are kept in time order (a clock that steps back inserts in place), so dropping the hits that
/// left the window pops from the front and the answer needs no scan or sort: a check costs O(1) amortised, not
/// O(limit).
///
/// A key is meant to be used with one rule; its hits are kept for the last window it was used with. Keys whose
/// windows have emptied are dropped (on their next use, or by an opportunistic sweep on later hits), so memory is
/// bounded by the keys active within their window. Single node only.
pub struct MemoryRateLimiter {
    clock: Arc<dyn Clock>,
    keys: Mutex<TtlMap<RateKey, VecDeque<DateTime<Utc>>>>,
}

impl MemoryRateLimiter {
    /// An empty limiter reading time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            keys: Mutex::new(TtlMap::new()),
        }
    }

    /// Keys held, including ones whose windows have emptied but that are not yet collected. For tests and metrics.
    #[must_use]
    pub fn stored_keys(&self) -> usize {
        lock(&self.keys).stored_len()
    }

    fn check(&self, key: &RateKey, rule: RateRule, count: bool) -> RateDecision {
        let now = self.clock.now();
        let window = TimeDelta::from_std(rule.window).unwrap_or(TimeDelta::MAX);
        let mut keys = lock(&self.keys);
        let mut hits = keys.take(key, now).unwrap_or_default();
        // Sorted by time, so the hits that left the window (`leaves_at(h) <= now`) are a prefix.
        while hits.front().is_some_and(|&h| now >= leaves_at(h, window)) {
            hits.pop_front();
        }
        let decision = decide(&mut hits, rule, window, now, count);
        match hits.back() {
            Some(&newest) => keys.insert(key.clone(), hits, leaves_at(newest, window), now),
            None => keys.maybe_sweep(now),
        }
        decision
    }
}

/// When a hit at `at` leaves a window of `window`.
fn leaves_at(at: DateTime<Utc>, window: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(window)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Decides over hits already inside the window (in time order), recording `now` when `count` and allowed.
fn decide(
    hits: &mut VecDeque<DateTime<Utc>>,
    rule: RateRule,
    window: TimeDelta,
    now: DateTime<Utc>,
    count: bool,
) -> RateDecision {
    let limit = usize::try_from(rule.limit).unwrap_or(usize::MAX);
    let n = hits.len();
    if n < limit {
        if count {
            // At the back unless the clock stepped back.
            let at = hits.partition_point(|&h| h <= now);
            hits.insert(at, now);
        }
        let remaining = limit - n - usize::from(count);
        return RateDecision::Allowed {
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        };
    }
    // One more fits once `n - limit + 1` hits have left: when the (n - limit)-th oldest leaves.
    let retry_after = match hits.get(n - limit) {
        Some(&h) => (leaves_at(h, window) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
        None => rule.window,
    };
    RateDecision::Limited {
        retry_after: whole_seconds_at_least_one(retry_after),
    }
}

/// Rounds up to whole seconds, at least one.
fn whole_seconds_at_least_one(d: Duration) -> Duration {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    Duration::from_secs(secs.max(1))
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError> {
        Ok(self.check(key, rule, true))
    }

    async fn peek(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError> {
        Ok(self.check(key, rule, false))
    }

    async fn undo(&self, key: &RateKey, rule: RateRule) -> Result<(), PortError> {
        let now = self.clock.now();
        let window = TimeDelta::from_std(rule.window).unwrap_or(TimeDelta::MAX);
        let mut keys = lock(&self.keys);
        if let Some(mut hits) = keys.take(key, now) {
            hits.pop_back();
            if let Some(&newest) = hits.back() {
                keys.insert(key.clone(), hits, leaves_at(newest, window), now);
            }
        }
        Ok(())
    }

    async fn reset(&self, key: &RateKey) -> Result<(), PortError> {
        lock(&self.keys).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(
            whole_seconds_at_least_one(Duration::ZERO),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_millis(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_millis(1001)),
            Duration::from_secs(2)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
    }
}
