use crate::support::{assert_send_sync, multi_thread, t0};
use chrono::TimeDelta;
use fctr_memory::{ManualClock, MemoryRateLimiter};
use fctr_ports::{RateDecision, RateKey, RateLimiter, RateRule};
use std::sync::Arc;
use std::time::Duration;

fn limiter() -> (ManualClock, Arc<MemoryRateLimiter>) {
    let clock = ManualClock::new(t0());
    let limiter = Arc::new(MemoryRateLimiter::new(Arc::new(clock.clone())));
    (clock, limiter)
}

fn key(s: &str) -> RateKey {
    RateKey::parse(s).unwrap()
}

fn rule(limit: u32, window_secs: u64) -> RateRule {
    RateRule {
        limit,
        window: Duration::from_secs(window_secs),
    }
}

fn allowed(remaining: u32) -> RateDecision {
    RateDecision::Allowed { remaining }
}

fn limited(secs: u64) -> RateDecision {
    RateDecision::Limited {
        retry_after: Duration::from_secs(secs),
    }
}

#[tokio::test]
async fn limit_hits_then_refuses_then_slides() {
    assert_send_sync::<MemoryRateLimiter>();
    let (clock, limiter) = limiter();
    let limiter: Arc<dyn RateLimiter> = limiter;
    let k = key("challenge:target:abc");
    let r = rule(3, 60);

    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(2)); // t0
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(1)); // t0+10
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(0)); // t0+20
    assert_eq!(
        limiter.hit(&k, r).await.unwrap(),
        limited(40),
        "the oldest hit (t0) leaves at t0+60"
    );

    clock.set(t0() + TimeDelta::seconds(60) - TimeDelta::milliseconds(1));
    assert_eq!(
        limiter.hit(&k, r).await.unwrap(),
        limited(1),
        "1 ms left rounds up to 1 s"
    );
    clock.set(t0() + TimeDelta::seconds(60));
    assert_eq!(
        limiter.hit(&k, r).await.unwrap(),
        allowed(0),
        "at exactly t0+60 the oldest hit has left"
    );
    assert_eq!(
        limiter.hit(&k, r).await.unwrap(),
        limited(10),
        "next to leave is t0+10, at t0+70"
    );
    clock.advance(TimeDelta::milliseconds(500));
    assert_eq!(
        limiter.hit(&k, r).await.unwrap(),
        limited(10),
        "9.5 s rounds up"
    );
}

#[tokio::test]
async fn refused_hits_are_not_counted() {
    let (clock, limiter) = limiter();
    let k = key("k");
    let r = rule(2, 60);
    limiter.hit(&k, r).await.unwrap();
    limiter.hit(&k, r).await.unwrap();
    for _ in 0..10 {
        clock.advance(TimeDelta::seconds(5));
        assert!(!limiter.hit(&k, r).await.unwrap().is_allowed());
    }
    clock.set(t0() + TimeDelta::seconds(60));
    assert_eq!(
        limiter.hit(&k, r).await.unwrap(),
        allowed(1),
        "only the two allowed hits were in the window"
    );
}

#[tokio::test]
async fn peek_does_not_count() {
    let (clock, limiter) = limiter();
    let k = key("k");
    let r = rule(2, 60);
    for _ in 0..5 {
        assert_eq!(limiter.peek(&k, r).await.unwrap(), allowed(2));
    }
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(1));
    assert_eq!(limiter.peek(&k, r).await.unwrap(), allowed(1));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(0));
    clock.advance(TimeDelta::seconds(15));
    assert_eq!(limiter.peek(&k, r).await.unwrap(), limited(45));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), limited(45));
}

#[tokio::test]
async fn reset_forgets_the_key() {
    let (_, limiter) = limiter();
    let k = key("k");
    let r = rule(1, 60);
    assert!(limiter.hit(&k, r).await.unwrap().is_allowed());
    assert!(!limiter.hit(&k, r).await.unwrap().is_allowed());
    limiter.reset(&k).await.unwrap();
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(0));
    limiter.reset(&key("never-seen")).await.unwrap();
}

#[tokio::test]
async fn keys_are_independent() {
    let (_, limiter) = limiter();
    let r = rule(1, 60);
    assert!(limiter.hit(&key("a"), r).await.unwrap().is_allowed());
    assert!(!limiter.hit(&key("a"), r).await.unwrap().is_allowed());
    assert!(limiter.hit(&key("b"), r).await.unwrap().is_allowed());
    limiter.reset(&key("b")).await.unwrap();
    assert!(
        !limiter.hit(&key("a"), r).await.unwrap().is_allowed(),
        "resetting b leaves a"
    );
}

#[tokio::test]
async fn zero_limit_refuses_everything() {
    let (_, limiter) = limiter();
    assert_eq!(
        limiter.hit(&key("k"), rule(0, 90)).await.unwrap(),
        limited(90)
    );
    assert_eq!(
        limiter.peek(&key("k"), rule(0, 90)).await.unwrap(),
        limited(90)
    );
    assert_eq!(
        limiter
            .hit(
                &key("k"),
                RateRule {
                    limit: 0,
                    window: Duration::ZERO
                }
            )
            .await
            .unwrap(),
        limited(1),
        "at least one second"
    );
    assert_eq!(limiter.stored_keys(), 0);
}

#[tokio::test]
async fn a_lowered_limit_waits_for_enough_hits_to_leave() {
    let (clock, limiter) = limiter();
    let k = key("k");
    for i in 0..4 {
        clock.set(t0() + TimeDelta::seconds(i * 10));
        limiter.hit(&k, rule(4, 60)).await.unwrap();
    }
    // Hits at 0, 10, 20, 30; with a limit of 2 one more fits once three have left: at 20 + 60.
    clock.set(t0() + TimeDelta::seconds(30));
    assert_eq!(limiter.hit(&k, rule(2, 60)).await.unwrap(), limited(50));
}

#[tokio::test]
async fn idle_keys_are_dropped() {
    let (clock, limiter) = limiter();
    let r = rule(5, 60);
    for i in 0..1000 {
        limiter.hit(&key(&format!("k{i}")), r).await.unwrap();
    }
    assert_eq!(limiter.stored_keys(), 1000);
    clock.advance(TimeDelta::seconds(60));
    limiter.hit(&key("fresh"), r).await.unwrap();
    assert_eq!(limiter.stored_keys(), 1, "every old window is empty");
    // A key that comes back starts over.
    assert_eq!(limiter.hit(&key("k1"), r).await.unwrap(), allowed(4));
}

#[tokio::test]
async fn a_key_whose_window_emptied_is_dropped_when_touched() {
    let (clock, limiter) = limiter();
    let r = rule(5, 60);
    limiter.hit(&key("a"), r).await.unwrap();
    clock.advance(TimeDelta::seconds(60));
    assert_eq!(limiter.peek(&key("a"), r).await.unwrap(), allowed(5));
    assert_eq!(limiter.stored_keys(), 0);
}

#[test]
fn concurrent_hits_are_counted_exactly() {
    let (_, limiter) = limiter();
    multi_thread().block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(
                    async move { limiter.hit(&key("shared"), rule(10, 60)).await.unwrap() },
                )
            })
            .collect();
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(t.await.unwrap().is_allowed());
        }
        assert_eq!(allowed, 10);
    });
}

/// A clock that steps back records the hit in time order, so the older hit still leaves the window first.
#[tokio::test]
async fn a_clock_that_steps_back_keeps_the_window_exact() {
    let (clock, limiter) = limiter();
    let k = key("lookup:agent:back");
    let r = rule(2, 60);
    clock.set(t0() + TimeDelta::seconds(100));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(1));
    clock.set(t0() + TimeDelta::seconds(90));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(0));
    // At 155 the hit of 90 has left (150) and the hit of 100 has not (160): one fits, then the next waits 5 s.
    clock.set(t0() + TimeDelta::seconds(155));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), allowed(0));
    assert_eq!(limiter.hit(&k, r).await.unwrap(), limited(5));
}

#[tokio::test]
async fn undo_takes_back_the_newest_hit_only() {
    let (clock, l) = limiter();
    let r = rule(2, 60);
    assert_eq!(l.hit(&key("a"), r).await.unwrap(), allowed(1));
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(l.hit(&key("a"), r).await.unwrap(), allowed(0));
    assert_eq!(l.hit(&key("a"), r).await.unwrap(), limited(50));
    // Refund the newest (t = 10 s): one more fits now, and the oldest still leaves at t = 60 s.
    l.undo(&key("a"), r).await.unwrap();
    assert_eq!(l.peek(&key("a"), r).await.unwrap(), allowed(1));
    assert_eq!(l.hit(&key("a"), r).await.unwrap(), allowed(0));
    // Undo on a key with no hits, or after everything is refunded, does nothing.
    l.undo(&key("b"), r).await.unwrap();
    l.undo(&key("a"), r).await.unwrap();
    l.undo(&key("a"), r).await.unwrap();
    l.undo(&key("a"), r).await.unwrap();
    assert_eq!(l.peek(&key("a"), r).await.unwrap(), allowed(2));
    assert_eq!(l.stored_keys(), 0, "an emptied key is dropped");
}

#[test]
fn concurrent_refunds_never_take_back_more_than_was_counted() {
    let (_, l) = limiter();
    let rt = multi_thread();
    rt.block_on(async {
        let r = rule(100, 60);
        for _ in 0..10 {
            l.hit(&key("k"), r).await.unwrap();
        }
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.undo(&key("k"), r).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(l.peek(&key("k"), r).await.unwrap(), allowed(100));
    });
}
