//! The gate in front of a fake's vendor API: injected faults first, then the per-route rate limit. What is the
//! same for every vendor happens here (latency, a malformed body, a dropped connection, counting requests per
//! `METHOD template` bucket in one-minute windows); the vendor renders refusals in its own error shape and
//! rate-limit headers through [`EdgeErrors`].

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;

use super::Core;
use super::fault::{self, Fault, FaultRule};
use super::serve::ConnKill;

/// Fault rules and rate-limit buckets, behind [`Core::edge`].
#[derive(Debug)]
pub(crate) struct Edge {
    /// Active fault rules, first match wins.
    pub faults: Vec<FaultRule>,
    buckets: HashMap<String, Bucket>,
    per_minute: u32,
    /// Every vendor-API request seen (let through or not), by `METHOD template`, since start or the last
    /// [`Edge::take_requests`].
    requests: std::collections::BTreeMap<String, u64>,
    /// Requests refused by the rate limit since it was last set, by bucket.
    refused: HashMap<String, u64>,
}

#[derive(Debug, Clone)]
struct Bucket {
    window_start: i64,
    used: u32,
}

/// A request counted against its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    /// Requests per minute per bucket.
    pub limit: u32,
    /// Requests left in this window (after this one, when it was let through).
    pub remaining: u32,
    /// When the window resets (Unix seconds).
    pub reset: i64,
    /// Whether this request fits in the window.
    pub allowed: bool,
}

impl Quota {
    /// Seconds until the window resets, at least 1 (a `Retry-After`).
    pub fn retry_after(&self, now: i64) -> u64 {
        u64::try_from(self.reset - now).unwrap_or(1).max(1)
    }
}

impl Edge {
    pub fn new(per_minute: u32) -> Self {
        Self {
            faults: Vec::new(),
            buckets: HashMap::new(),
            per_minute,
            requests: std::collections::BTreeMap::new(),
            refused: HashMap::new(),
        }
    }

    /// Requests the rate limit refused since it was last set, by `METHOD template` bucket (injected 429 faults
    /// are not counted).
    pub fn refusals(&self) -> std::collections::BTreeMap<String, u64> {
        self.refused.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Requests per minute per bucket.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Sets the per-bucket limit and clears the counters.
    pub fn set_rate_limit(&mut self, per_minute: u32) {
        self.per_minute = per_minute;
        self.buckets.clear();
        self.refused.clear();
    }

    /// The request log: requests by `METHOD template` (e.g. `GET /api/v1/users/{id}/groups`), emptied.
    pub fn take_requests(&mut self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(&mut self.requests)
    }

    /// Counts a request to `method template` at `now` (Unix seconds).
    pub fn count(&mut self, method: &str, template: &str, now: i64) -> Quota {
        let key = format!("{method} {template}");
        *self.requests.entry(key.clone()).or_default() += 1;
        let limit = self.per_minute;
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            window_start: now,
            used: 0,
        });
        if now >= b.window_start + 60 {
            b.window_start = now;
            b.used = 0;
        }
        let allowed = b.used < limit;
        if allowed {
            b.used += 1;
        }
        let used = b.used;
        let reset = b.window_start + 60;
        if !allowed {
            *self.refused.entry(key).or_insert(0) += 1;
        }
        Quota {
            limit,
            remaining: limit.saturating_sub(used),
            reset,
            allowed,
        }
    }
}

/// How a vendor words the refusals the gate makes.
pub(crate) trait EdgeErrors {
    /// How an injected malformed body starts (a truncated vendor body).
    const MALFORMED_PREFIX: &'static str;
    /// An injected 429 with a reset `reset_after_secs` ahead of `now`; `limit` is the bucket size.
    fn rate_limited(&self, reset_after_secs: u64, now: i64, limit: u32) -> Response;
    /// An injected 5xx (or any status); `marker` is the text a test asked such bodies to carry.
    fn server_error(&self, status: StatusCode, marker: Option<String>) -> Response;
}

/// Runs the gate for one request: `Err(response)` ends it (a fault fired), `Ok(quota)` counts it against its
/// bucket (the caller refuses it when `!quota.allowed`, in its vendor's words).
pub(crate) async fn gate<E: EdgeErrors>(
    core: &Core,
    errors: &E,
    kill: Option<ConnKill>,
    method: &str,
    template: &str,
) -> Result<Quota, Response> {
    let hit = fault::take(&mut core.edge().faults, method, template);
    match hit {
        None => {}
        Some(Fault::Latency { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::RateLimited { reset_after_secs }) => {
            let limit = core.edge().per_minute();
            return Err(errors.rate_limited(reset_after_secs, core.clock.now_secs(), limit));
        }
        Some(Fault::ServerError { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(errors.server_error(status, core.server_error_marker()));
        }
        Some(Fault::MalformedJson) => return Err(fault::malformed_json(E::MALFORMED_PREFIX)),
        Some(Fault::DropConnection) => return Err(fault::dropped(kill).await),
    }
    let now = core.clock.now_secs();
    Ok(core.edge().count(method, template, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_counts_down_and_resets_after_a_minute() {
        let mut e = Edge::new(2);
        let a = e.count("GET", "/x", 100);
        assert_eq!((a.allowed, a.remaining, a.reset), (true, 1, 160));
        assert!(e.count("GET", "/x", 110).allowed);
        let c = e.count("GET", "/x", 120);
        assert_eq!((c.allowed, c.remaining, c.retry_after(120)), (false, 0, 40));
        assert!(e.count("POST", "/x", 120).allowed, "buckets are per method");
        assert!(e.count("GET", "/x", 160).allowed, "a new window");
        assert_eq!(
            e.refusals().into_iter().collect::<Vec<_>>(),
            [("GET /x".to_owned(), 1)],
            "the refusal is counted in its bucket"
        );
        e.set_rate_limit(0);
        assert!(
            e.refusals().is_empty(),
            "setting the limit clears the counts"
        );
        assert!(!e.count("GET", "/x", 160).allowed);
    }
}
