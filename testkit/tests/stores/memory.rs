//! The in-memory stores (`fctr-memory`): one `Arc` is both replicas. Time is a manual clock, or the system clock
//! with real waits: the latter runs the checks exactly as a networked store's run does (`WallTime`), so their
//! timing margins are exercised on every CI run, before any networked store exists.

use async_trait::async_trait;
use chrono::{TimeDelta, TimeZone, Utc};
use fctr_memory::{
    ManualClock, MemoryApprovalStore, MemoryAuditLog, MemoryCoordinator, MemoryGrantStore,
    MemoryRateLimiter, MemorySessionStore, MemoryUsageLedger, SystemClock,
};
use fctr_ports::{
    ApprovalStore, AuditLog, Clock, Coordinator, GrantStore, RateLimiter, SessionStore, Timeouts,
    UsageLedger,
};
use fctr_testkit::stores::{Made, Replicas, SteppedTime, StoreFixture, StoreTime, WallTime};
use std::sync::Arc;

/// A manual clock at a fixed start, and the suite's handle on it.
pub fn manual_time() -> (Arc<dyn Clock>, Arc<dyn StoreTime>) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 14, 9, 0, 0).unwrap());
    let step = clock.clone();
    let time = SteppedTime::new(Arc::new(clock.clone()), move |d| {
        step.advance(TimeDelta::from_std(d).unwrap());
    });
    (Arc::new(clock), Arc::new(time))
}

/// Every port, in memory.
pub struct Memory {
    /// The system clock and real waits instead of a manual clock.
    pub wall_clock: bool,
}

impl Memory {
    fn time(&self) -> (Arc<dyn Clock>, Arc<dyn StoreTime>) {
        if self.wall_clock {
            (Arc::new(SystemClock), Arc::new(WallTime))
        } else {
            manual_time()
        }
    }
}

#[async_trait]
impl StoreFixture for Memory {
    fn name(&self) -> String {
        if self.wall_clock {
            "memory (system clock, real waits)".into()
        } else {
            "memory (manual clock)".into()
        }
    }

    async fn approvals(&self) -> Made<dyn ApprovalStore> {
        let (clock, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemoryApprovalStore::new(clock)),
            time,
        )))
    }

    async fn grants(&self) -> Made<dyn GrantStore> {
        let (clock, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemoryGrantStore::new(clock)),
            time,
        )))
    }

    async fn rates(&self) -> Made<dyn RateLimiter> {
        let (clock, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemoryRateLimiter::new(clock)),
            time,
        )))
    }

    async fn sessions(&self, timeouts: Timeouts) -> Made<dyn SessionStore> {
        let (clock, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemorySessionStore::new(clock, timeouts)),
            time,
        )))
    }

    async fn coordinator(&self) -> Made<dyn Coordinator> {
        let (clock, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemoryCoordinator::new(clock)),
            time,
        )))
    }

    async fn audit(&self) -> Made<dyn AuditLog> {
        let (_, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemoryAuditLog::new()),
            time,
        )))
    }

    async fn usage(&self) -> Made<dyn UsageLedger> {
        let (_, time) = self.time();
        Ok(Some(Replicas::shared(
            Arc::new(MemoryUsageLedger::new()),
            time,
        )))
    }
}

impl crate::Leftovers for Memory {}
