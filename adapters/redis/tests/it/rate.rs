//! Rate limits: exact across replicas (server time), and the in-memory limiter's semantics under a manual clock.

use crate::support::{Fixture, TestClock};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{RateDecision, RateKey, RateLimiter, RateRule};
use std::sync::Arc;
use std::time::Duration;

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

/// A limiter driven by a manual clock (the contract-test mode), starting at a whole second.
async fn manual(fx: &Fixture) -> (TestClock, DateTime<Utc>, Arc<dyn RateLimiter>) {
    let clock = TestClock::new();
    let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    clock.set(t0);
    let state = fx
        .replica_with(
            fx.options()
                .dangerous_rate_limit_clock(Arc::new(clock.clone())),
        )
        .await;
    (clock, t0, state.rate_limiter())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_hits_at_once_across_two_replicas_allow_exactly_five() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.rate_limiter();
    let b = fx.replica().await.rate_limiter();
    let k = key("challenge:target:k1:abc");
    let r = rule(5, 60);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let l = if i % 2 == 0 { a.clone() } else { b.clone() };
            let k = k.clone();
            tokio::spawn(async move { l.hit(&k, r).await.unwrap() })
        })
        .collect();
    let mut remaining = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            RateDecision::Allowed { remaining: n } => remaining.push(n),
            RateDecision::Limited { retry_after } => {
                assert!(
                    retry_after >= Duration::from_secs(59)
                        && retry_after <= Duration::from_secs(60)
                );
                refused += 1;
            }
        }
    }
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        vec![0, 1, 2, 3, 4],
        "exactly five allowed, each told what is left"
    );
    assert_eq!(refused, 35);
    fx.cleanup().await;
}

#[tokio::test]
async fn the_window_slides_on_the_server_clock() {
    let fx = Fixture::new().await;
    let l = fx.replica().await.rate_limiter();
    let k = key("short");
    let r = RateRule {
        limit: 2,
        window: Duration::from_millis(600),
    };
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(1));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(0));
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        limited(1),
        "under a second rounds up to one"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        allowed(1),
        "both hits left the window"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn limit_hits_then_refuses_then_slides() {
    let fx = Fixture::new().await;
    let (clock, t0, l) = manual(&fx).await;
    let k = key("challenge:target:abc");
    let r = rule(3, 60);
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(2));
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(1));
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(0));
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        limited(40),
        "the oldest hit (t0) leaves at t0+60"
    );
    clock.set(t0 + TimeDelta::seconds(60) - TimeDelta::milliseconds(1));
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        limited(1),
        "1 ms left rounds up to 1 s"
    );
    clock.set(t0 + TimeDelta::seconds(60));
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        allowed(0),
        "at exactly t0+60 the oldest hit has left"
    );
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        limited(10),
        "next to leave is t0+10, at t0+70"
    );
    clock.advance(TimeDelta::milliseconds(500));
    assert_eq!(l.hit(&k, r).await.unwrap(), limited(10), "9.5 s rounds up");
    fx.cleanup().await;
}

#[tokio::test]
async fn peek_counts_nothing_and_refused_hits_are_not_counted() {
    let fx = Fixture::new().await;
    let (clock, t0, l) = manual(&fx).await;
    let k = key("k");
    let r = rule(2, 60);
    for _ in 0..5 {
        assert_eq!(l.peek(&k, r).await.unwrap(), allowed(2));
    }
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(1));
    assert_eq!(l.peek(&k, r).await.unwrap(), allowed(1));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(0));
    clock.advance(TimeDelta::seconds(15));
    assert_eq!(l.peek(&k, r).await.unwrap(), limited(45));
    for _ in 0..5 {
        assert_eq!(l.hit(&k, r).await.unwrap(), limited(45));
    }
    clock.set(t0 + TimeDelta::seconds(60));
    assert_eq!(
        l.hit(&k, r).await.unwrap(),
        allowed(1),
        "only the two allowed hits counted"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn undo_takes_back_the_newest_hit_only_and_never_more_than_counted() {
    let fx = Fixture::new().await;
    let (clock, _, l) = manual(&fx).await;
    let a = key("a");
    let r = rule(2, 60);
    assert_eq!(l.hit(&a, r).await.unwrap(), allowed(1));
    clock.advance(TimeDelta::seconds(10));
    assert_eq!(l.hit(&a, r).await.unwrap(), allowed(0));
    assert_eq!(l.hit(&a, r).await.unwrap(), limited(50));
    l.undo(&a, r).await.unwrap();
    assert_eq!(l.peek(&a, r).await.unwrap(), allowed(1));
    assert_eq!(l.hit(&a, r).await.unwrap(), allowed(0));
    assert_eq!(
        l.hit(&a, r).await.unwrap(),
        limited(50),
        "the oldest still leaves at t0+60"
    );
    l.undo(&key("b"), r).await.unwrap();

    let refunds: Vec<_> = (0..10)
        .map(|_| {
            let (l, a) = (l.clone(), a.clone());
            tokio::spawn(async move { l.undo(&a, r).await.unwrap() })
        })
        .collect();
    for t in refunds {
        t.await.unwrap();
    }
    assert_eq!(l.peek(&a, r).await.unwrap(), allowed(2));
    assert_eq!(
        l.hit(&a, r).await.unwrap(),
        allowed(1),
        "no refund went below zero"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn reset_zero_limits_lowered_limits_and_a_clock_that_steps_back() {
    let fx = Fixture::new().await;
    let (clock, t0, l) = manual(&fx).await;
    let r = rule(1, 60);
    assert!(l.hit(&key("a"), r).await.unwrap().is_allowed());
    assert!(!l.hit(&key("a"), r).await.unwrap().is_allowed());
    assert!(
        l.hit(&key("b"), r).await.unwrap().is_allowed(),
        "keys are independent"
    );
    l.reset(&key("a")).await.unwrap();
    assert_eq!(l.hit(&key("a"), r).await.unwrap(), allowed(0));
    l.reset(&key("never-seen")).await.unwrap();

    assert_eq!(l.hit(&key("z"), rule(0, 90)).await.unwrap(), limited(90));
    assert_eq!(l.peek(&key("z"), rule(0, 90)).await.unwrap(), limited(90));
    let zero = RateRule {
        limit: 0,
        window: Duration::ZERO,
    };
    assert_eq!(
        l.hit(&key("z"), zero).await.unwrap(),
        limited(1),
        "at least one second"
    );

    let k = key("lowered");
    for i in 0..4 {
        clock.set(t0 + TimeDelta::seconds(i * 10));
        l.hit(&k, rule(4, 60)).await.unwrap();
    }
    clock.set(t0 + TimeDelta::seconds(30));
    assert_eq!(
        l.hit(&k, rule(2, 60)).await.unwrap(),
        limited(50),
        "waits for three to leave: 20 + 60"
    );

    let k = key("back");
    let r = rule(2, 60);
    clock.set(t0 + TimeDelta::seconds(100));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(1));
    clock.set(t0 + TimeDelta::seconds(90));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(0));
    clock.set(t0 + TimeDelta::seconds(155));
    assert_eq!(l.hit(&k, r).await.unwrap(), allowed(0));
    assert_eq!(l.hit(&k, r).await.unwrap(), limited(5));
    fx.cleanup().await;
}
