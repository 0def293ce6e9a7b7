//! Sliding-window rate limits on Redis.
//!
//! `P:r:<sha256(rate key)>` is a sorted set of the allowed hits, scored by their time in microseconds on the Redis
//! server's clock (`TIME` inside the script), so replicas whose clocks disagree still share one window. Each
//! operation is one script (or one command), so check-and-count is atomic across replicas. The key's TTL is the
//! time until its newest hit leaves the window.

use crate::state::{Inner, MAX_TTL};
use async_trait::async_trait;
use fctr_ports::{PortError, RateDecision, RateKey, RateLimiter, RateRule};
use redis::Script;
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Hit or peek. KEYS[1]: the set. ARGV: window µs, limit, count (1|0), member suffix, now µs or '' (server TIME).
/// Returns {1, remaining} or {0, retry-after µs}.
///
/// A hit at t counts while now < t + window: hits with t <= now - window are dropped first. With n hits left and
/// n < limit, the hit is recorded (when counting); otherwise one more fits once the (n - limit)-th oldest leaves.
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  if ARGV[3] == '1' then
    redis.call('ZADD', KEYS[1], string.format('%.0f', now), string.format('%.0f', now) .. ':' .. ARGV[4])
    local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    local ttl = math.ceil((tonumber(newest[2]) + window - now) / 1000)
    if ttl < 1 then ttl = 1 end
    redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))
    return {1, limit - n - 1}
  end
  return {1, limit - n}
end
local h = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
if h[2] then
  return {0, tonumber(h[2]) + window - now}
end
return {0, window}
",
    )
});

/// [`RateLimiter`] on Redis, with the semantics of `fctr_memory::MemoryRateLimiter` (remaining counts, rounding of
/// `retry_after` up to whole seconds and at least one, `undo` takes back the newest hit, `reset` forgets the key).
/// Windows longer than a year count as a year.
pub(crate) struct RedisRateLimiter {
    inner: Arc<Inner>,
    rng: SystemRandom,
}

impl RedisRateLimiter {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            rng: SystemRandom::new(),
        }
    }

    async fn check(
        &self,
        key: &RateKey,
        rule: RateRule,
        count: bool,
        op: &'static str,
    ) -> Result<RateDecision, PortError> {
        let k = self.inner.keys.rate(key);
        let window_us = u64::try_from(rule.window.min(MAX_TTL).as_micros()).unwrap_or(u64::MAX);
        // Several hits in one microsecond are distinct members of the set.
        let mut suffix = [0u8; 8];
        self.rng
            .fill(&mut suffix)
            .map_err(|_| PortError::Unavailable)?;
        let now = match &self.inner.rate_clock {
            Some(clock) => {
                let t = clock.now();
                (t.timestamp() * 1_000_000 + i64::from(t.timestamp_subsec_micros())).to_string()
            }
            None => String::new(),
        };
        let mut c = self.inner.conn();
        let mut inv = CHECK.prepare_invoke();
        inv.key(&k)
            .arg(window_us)
            .arg(rule.limit)
            .arg(if count { "1" } else { "0" })
            .arg(hex::encode(suffix))
            .arg(now);
        let (allowed, value): (i64, i64) = self.inner.run(op, inv.invoke_async(&mut c)).await?;
        Ok(if allowed == 1 {
            RateDecision::Allowed {
                remaining: u32::try_from(value.max(0)).unwrap_or(u32::MAX),
            }
        } else {
            let micros = u64::try_from(value.max(0)).unwrap_or(0);
            RateDecision::Limited {
                retry_after: whole_seconds_at_least_one(Duration::from_micros(micros)),
            }
        })
    }
}

/// Rounds up to whole seconds, at least one (as the in-memory limiter does).
fn whole_seconds_at_least_one(d: Duration) -> Duration {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    Duration::from_secs(secs.max(1))
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError> {
        self.check(key, rule, true, "rate_hit").await
    }

    async fn peek(&self, key: &RateKey, rule: RateRule) -> Result<RateDecision, PortError> {
        self.check(key, rule, false, "rate_peek").await
    }

    async fn undo(&self, key: &RateKey, _rule: RateRule) -> Result<(), PortError> {
        // One command: atomic, and never takes back more hits than are stored.
        let k = self.inner.keys.rate(key);
        let mut c = self.inner.conn();
        let _: redis::Value = self
            .inner
            .run(
                "rate_undo",
                redis::cmd("ZPOPMAX").arg(&k).query_async(&mut c),
            )
            .await?;
        Ok(())
    }

    async fn reset(&self, key: &RateKey) -> Result<(), PortError> {
        let k = self.inner.keys.rate(key);
        let mut c = self.inner.conn();
        let _: i64 = self
            .inner
            .run("rate_reset", redis::cmd("DEL").arg(&k).query_async(&mut c))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        let r = whole_seconds_at_least_one;
        assert_eq!(r(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(r(Duration::from_micros(1)), Duration::from_secs(1));
        assert_eq!(r(Duration::from_millis(1001)), Duration::from_secs(2));
        assert_eq!(r(Duration::from_secs(7)), Duration::from_secs(7));
    }
}
