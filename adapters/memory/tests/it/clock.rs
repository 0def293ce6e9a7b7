use crate::support::t0;
use chrono::{TimeDelta, Utc};
use fctr_memory::{ManualClock, SystemClock};
use fctr_ports::Clock;
use std::sync::Arc;

#[test]
fn manual_clock_moves_only_when_told_and_clones_share_it() {
    let clock = ManualClock::new(t0());
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    assert_eq!(shared.now(), t0());
    assert_eq!(shared.now(), t0(), "does not tick by itself");

    clock.advance(TimeDelta::seconds(90));
    assert_eq!(shared.now(), t0() + TimeDelta::seconds(90));

    clock.advance(TimeDelta::seconds(-30));
    assert_eq!(shared.now(), t0() + TimeDelta::seconds(60));

    let later = t0() + TimeDelta::days(3);
    clock.set(later);
    assert_eq!(shared.now(), later);
    assert_eq!(clock.get(), later);
}

#[test]
fn manual_clock_saturates_instead_of_panicking() {
    let clock = ManualClock::new(t0());
    clock.advance(TimeDelta::MAX);
    assert_eq!(clock.now(), chrono::DateTime::<Utc>::MAX_UTC);
    clock.advance(TimeDelta::MIN);
    clock.advance(TimeDelta::MIN);
    assert_eq!(clock.now(), chrono::DateTime::<Utc>::MIN_UTC);
}

#[test]
fn system_clock_is_reexported_and_reads_now() {
    let before = Utc::now();
    let now = SystemClock.now();
    assert!(now >= before && now <= Utc::now());
}
