//! A map whose entries expire, with amortized garbage collection.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::hash::Hash;

/// Sweep at most this often by the clock...
const SWEEP_INTERVAL: TimeDelta = TimeDelta::seconds(1);
/// ...unless the map has grown to this multiple of its size after the last sweep (amortized O(1) per write even
/// when the clock stands still).
const GROWTH_FACTOR: usize = 2;
/// Below this size, growth alone never triggers a sweep.
const MIN_SWEEP_LEN: usize = 32;

struct Timed<V> {
    value: V,
    expires_at: DateTime<Utc>,
}

/// Entries live while `now < expires_at`; from `expires_at` on they read as absent and are dropped by the next
/// sweep (or by the next access to their key).
pub(crate) struct TtlMap<K, V> {
    entries: HashMap<K, Timed<V>>,
    /// A lower bound on the earliest `expires_at` present (exact right after a sweep).
    next_expiry: Option<DateTime<Utc>>,
    last_sweep: Option<DateTime<Utc>>,
    len_after_sweep: usize,
}

impl<K: Eq + Hash, V> TtlMap<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            entries: HashMap::new(),
            next_expiry: None,
            last_sweep: None,
            len_after_sweep: 0,
        }
    }

    /// The live value for `k`; an expired entry is removed and reads as absent.
    pub(crate) fn get(&mut self, k: &K, now: DateTime<Utc>) -> Option<&V> {
        if self.entries.get(k).is_some_and(|e| now >= e.expires_at) {
            self.entries.remove(k);
        }
        self.entries.get(k).map(|e| &e.value)
    }

    /// The live value for `k`, mutable in place (its expiry unchanged); an expired entry is removed and reads as
    /// absent.
    pub(crate) fn get_mut(&mut self, k: &K, now: DateTime<Utc>) -> Option<&mut V> {
        if self.entries.get(k).is_some_and(|e| now >= e.expires_at) {
            self.entries.remove(k);
        }
        self.entries.get_mut(k).map(|e| &mut e.value)
    }

    /// Removes and returns the live value for `k` (an expired one is removed and `None` returned).
    pub(crate) fn take(&mut self, k: &K, now: DateTime<Utc>) -> Option<V> {
        self.entries
            .remove(k)
            .filter(|e| now < e.expires_at)
            .map(|e| e.value)
    }

    /// Inserts or replaces, then collects expired entries if a sweep is due.
    pub(crate) fn insert(&mut self, k: K, value: V, expires_at: DateTime<Utc>, now: DateTime<Utc>) {
        self.entries.insert(k, Timed { value, expires_at });
        self.next_expiry = Some(self.next_expiry.map_or(expires_at, |n| n.min(expires_at)));
        self.maybe_sweep(now);
    }

    /// Sweeps when something may have expired and either a sweep interval has passed or the map has grown a lot.
    pub(crate) fn maybe_sweep(&mut self, now: DateTime<Utc>) {
        let something_expired = self.next_expiry.is_some_and(|n| now >= n);
        if !something_expired {
            return;
        }
        let interval_passed = self.last_sweep.is_none_or(|last| {
            last.checked_add_signed(SWEEP_INTERVAL)
                .is_none_or(|next| now >= next)
        }) || self.last_sweep.is_some_and(|last| now < last);
        let grown = self.entries.len()
            >= GROWTH_FACTOR.saturating_mul(self.len_after_sweep.max(MIN_SWEEP_LEN));
        if interval_passed || grown {
            self.sweep(now);
        }
    }

    /// Drops every expired entry; returns how many.
    pub(crate) fn sweep(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| now < e.expires_at);
        self.next_expiry = self.entries.values().map(|e| e.expires_at).min();
        self.last_sweep = Some(now);
        self.len_after_sweep = self.entries.len();
        before - self.entries.len()
    }

    /// Entries held, including expired ones not yet collected.
    pub(crate) fn stored_len(&self) -> usize {
        self.entries.len()
    }

    /// Every value held, live or not yet collected (sweep first for live values only).
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.values().map(|e| &e.value)
    }

    /// Forgets `k`.
    pub(crate) fn remove(&mut self, k: &K) {
        self.entries.remove(k);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn expiry_is_exclusive_and_reads_remove() {
        let mut m = TtlMap::new();
        let exp = t0() + TimeDelta::seconds(10);
        m.insert(1, "a", exp, t0());
        assert_eq!(m.get(&1, exp - TimeDelta::nanoseconds(1)), Some(&"a"));
        assert_eq!(m.get(&1, exp), None);
        assert_eq!(m.stored_len(), 0);
    }

    #[test]
    fn growth_triggers_sweep_with_a_frozen_clock() {
        let mut m = TtlMap::new();
        // Everything expires at once; with the clock frozen, only growth can trigger the sweep.
        m.insert(0usize, (), t0(), t0()); // first sweep (no earlier sweep): collects it
        assert_eq!(m.stored_len(), 0);
        for i in 1..1000usize {
            m.insert(i, (), t0(), t0());
            assert!(
                m.stored_len() <= 2 * MIN_SWEEP_LEN,
                "len {}",
                m.stored_len()
            );
        }
    }

    #[test]
    fn interval_triggers_sweep() {
        let mut m = TtlMap::new();
        m.sweep(t0());
        for i in 0..10usize {
            m.insert(i, (), t0() + TimeDelta::seconds(5), t0());
        }
        m.insert(
            100,
            (),
            t0() + TimeDelta::hours(1),
            t0() + TimeDelta::seconds(5),
        );
        assert_eq!(m.stored_len(), 1);
    }
}
