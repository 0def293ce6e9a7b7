//! The checks of [`RateLimiter`]: exact counting under concurrency, refused hits not counted, refunds, reset,
//! `peek`, the sliding window.

use super::support::{Ctx, LONGEST, all_ok, concurrently, ensure, fail, made};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use fctr_ports::{RateDecision, RateKey, RateLimiter, RateRule};
use std::sync::Arc;
use std::time::Duration;

/// The rate limiter's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Rates;
    "rate_exact_under_concurrency" => exact_under_concurrency,
    "rate_remaining_counts_down" => remaining_counts_down,
    "rate_refused_not_counted" => refused_not_counted,
    "rate_undo_never_over_refunds" => undo_never_over_refunds,
    "rate_reset_forgets_key" => reset_forgets_key,
    "rate_peek_counts_nothing" => peek_counts_nothing,
    "rate_window_slides" => window_slides,
];

async fn store(f: Arc<dyn StoreFixture>) -> Result<Replicas<dyn RateLimiter>, Verdict> {
    made(f.rates().await, Port::Rates)
}

fn key(name: &str) -> Result<RateKey, Verdict> {
    RateKey::parse(format!("suite:{name}")).map_err(|e| fail(format!("test data: rate key: {e}")))
}

/// A window no check outlives.
const MINUTE: Duration = Duration::from_secs(60);

fn rule(limit: u32, window: Duration) -> RateRule {
    RateRule { limit, window }
}

/// Hits `key` `n` times one after another (alternating replicas) and counts the allowed ones.
async fn allowed_in_turn(
    r: &Replicas<dyn RateLimiter>,
    key: &RateKey,
    rule: RateRule,
    n: usize,
) -> Result<usize, Verdict> {
    let mut allowed = 0;
    for i in 0..n {
        if r.pick(i).hit(key, rule).await.ctx("hit")?.is_allowed() {
            allowed += 1;
        }
    }
    Ok(allowed)
}

/// Hits `key` `n` times at once (both replicas) and counts the allowed ones.
async fn allowed_at_once(
    r: &Replicas<dyn RateLimiter>,
    key: &RateKey,
    rule: RateRule,
    n: usize,
) -> Result<usize, Verdict> {
    let outputs = concurrently(n, |i| {
        let s = r.pick(i);
        let key = key.clone();
        async move { s.hit(&key, rule).await }
    })
    .await?;
    Ok(all_ok(outputs, "hit")?
        .iter()
        .filter(|d| d.is_allowed())
        .count())
}

/// Limit N, 8N concurrent hits over both replicas: exactly N allowed, and then a peek says limited.
async fn exact_under_concurrency(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let k = key("exact")?;
    let limit = 5;
    let allowed = allowed_at_once(&r, &k, rule(limit, MINUTE), 8 * 5).await?;
    ensure(allowed == 5, || {
        format!(
            "{allowed} of 40 concurrent hits were allowed under a limit of 5 (exactly 5 must be)"
        )
    })?;
    let d = r.b.peek(&k, rule(limit, MINUTE)).await.ctx("peek")?;
    ensure(!d.is_allowed(), || {
        format!("after the limit was reached, peek says {d:?}")
    })
}

/// Each allowed hit says how many more fit (N-1, …, 0); the first refused one says when to retry, within the
/// window.
async fn remaining_counts_down(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let k = key("remaining")?;
    let rl = rule(3, MINUTE);
    for (i, want) in [2u32, 1, 0].into_iter().enumerate() {
        let d = r.pick(i).hit(&k, rl).await.ctx("hit")?;
        ensure(d == RateDecision::Allowed { remaining: want }, || {
            format!(
                "hit {} under a limit of 3: expected Allowed {{ remaining: {want} }}, got {d:?}",
                i + 1
            )
        })?;
    }
    match r.b.hit(&k, rl).await.ctx("hit")? {
        RateDecision::Limited { retry_after } => ensure(
            retry_after > Duration::ZERO && retry_after <= MINUTE + Duration::from_secs(1),
            || {
                format!(
                    "retry_after is {retry_after:?} for a 60 s window (must be more than zero and at most the window)"
                )
            },
        ),
        d => Err(fail(format!("hit 4 under a limit of 3: {d:?}"))),
    }
}

/// A refused hit is not counted: once the allowed hits leave the window, hits are allowed again even though
/// refused hits were made after them.
async fn refused_not_counted(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let k = key("refused")?;
    let rl = rule(2, LONGEST);
    let first = allowed_in_turn(&r, &k, rl, 2).await?;
    ensure(first == 2, || {
        format!("{first} of the first 2 hits under a limit of 2 were allowed")
    })?;
    r.time.advance(Duration::from_millis(500)).await;
    let refused = allowed_in_turn(&r, &k, rl, 5).await?;
    ensure(refused == 0, || {
        format!("{refused} hits over a full window were allowed")
    })?;
    // 1.7 s after the allowed hits (they left the 1.5 s window), 1.2 s after the refused ones (had they been
    // counted, they would still be in it).
    r.time.advance(Duration::from_millis(1200)).await;
    let again = allowed_in_turn(&r, &k, rl, 3).await?;
    ensure(again == 2, || {
        format!(
            "after the allowed hits left the window, {again} of 3 hits were allowed (2 must be: refused hits count nothing)"
        )
    })
}

/// `undo` takes back one counted hit, does nothing when none is counted, and never refunds more than was counted,
/// however many run at once.
async fn undo_never_over_refunds(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let rl = rule(4, MINUTE);

    let fresh = key("undo-fresh")?;
    for i in 0..3 {
        r.pick(i).undo(&fresh, rl).await.ctx("undo")?;
    }
    let allowed = allowed_in_turn(&r, &fresh, rl, 8).await?;
    ensure(allowed == 4, || {
        format!(
            "after 3 refunds of a key with no hits, {allowed} of 8 hits were allowed under a limit of 4"
        )
    })?;

    let full = key("undo-full")?;
    let filled = allowed_in_turn(&r, &full, rl, 4).await?;
    ensure(filled == 4, || format!("{filled} of 4 hits were allowed"))?;
    r.b.undo(&full, rl).await.ctx("undo")?;
    let after = allowed_in_turn(&r, &full, rl, 3).await?;
    ensure(after == 1, || {
        format!(
            "after one refund of a full key, {after} of 3 hits were allowed (exactly 1 must be)"
        )
    })?;

    let raced = key("undo-raced")?;
    let counted = allowed_in_turn(&r, &raced, rl, 2).await?;
    ensure(counted == 2, || format!("{counted} of 2 hits were allowed"))?;
    let outputs = concurrently(16, |i| {
        let s = r.pick(i);
        let k = raced.clone();
        async move { s.undo(&k, rl).await }
    })
    .await?;
    all_ok(outputs, "undo")?;
    let allowed = allowed_at_once(&r, &raced, rl, 8).await?;
    ensure(allowed == 4, || {
        format!(
            "after 16 concurrent refunds of 2 counted hits, {allowed} of 8 concurrent hits were allowed under a limit of 4 (more than 4: a refund took back hits never counted)"
        )
    })
}

/// `reset` forgets every hit of its key (from either replica) and only of its key.
async fn reset_forgets_key(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let rl = rule(3, MINUTE);
    let k = key("reset")?;
    let other = key("reset-other")?;
    let filled = allowed_in_turn(&r, &k, rl, 4).await?;
    ensure(filled == 3, || {
        format!("{filled} of 4 hits were allowed under a limit of 3")
    })?;
    let one = allowed_in_turn(&r, &other, rl, 1).await?;
    ensure(one == 1, || "a first hit on another key was refused".into())?;
    r.b.reset(&k).await.ctx("reset")?;
    let again = allowed_in_turn(&r, &k, rl, 5).await?;
    ensure(again == 3, || {
        format!("after reset, {again} of 5 hits were allowed under a limit of 3")
    })?;
    let rest = allowed_in_turn(&r, &other, rl, 4).await?;
    ensure(rest == 2, || {
        format!("resetting one key changed another: {rest} of 4 further hits allowed (2 must be)")
    })
}

/// `peek` answers without counting: many peeks leave the whole limit, and a peek at a full key says limited.
async fn peek_counts_nothing(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let rl = rule(3, MINUTE);
    let k = key("peek")?;
    for i in 0..10 {
        let d = r.pick(i).peek(&k, rl).await.ctx("peek")?;
        ensure(d.is_allowed(), || {
            format!("peek {} at an unused key says {d:?}", i + 1)
        })?;
    }
    let allowed = allowed_in_turn(&r, &k, rl, 5).await?;
    ensure(allowed == 3, || {
        format!(
            "after 10 peeks, {allowed} of 5 hits were allowed under a limit of 3 (peeks were counted?)"
        )
    })?;
    let d = r.a.peek(&k, rl).await.ctx("peek")?;
    ensure(!d.is_allowed(), || format!("peek at a full key says {d:?}"))
}

/// The window slides: a hit leaves it one window after it was made, not at a fixed boundary.
async fn window_slides(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let rl = rule(2, LONGEST);
    let k = key("slide")?;
    ensure(r.a.hit(&k, rl).await.ctx("hit")?.is_allowed(), || {
        "a first hit was refused".into()
    })?;
    r.time.advance(Duration::from_millis(750)).await;
    let second = allowed_in_turn(&r, &k, rl, 2).await?;
    ensure(second == 1, || {
        format!(
            "0.75 s into a 1.5 s window holding one hit, {second} of 2 hits were allowed under a limit of 2"
        )
    })?;
    r.time.advance(Duration::from_millis(950)).await;
    // 1.7 s after the first hit (it left), 0.95 s after the second (still in): exactly one more fits.
    let third = allowed_in_turn(&r, &k, rl, 3).await?;
    ensure(third == 1, || {
        format!(
            "when only the first of two hits has left the window, {third} of 3 hits were allowed (exactly 1 must be: a window that resets at fixed boundaries allows 2)"
        )
    })
}
