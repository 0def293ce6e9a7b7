//! What the checks share: verdicts, the fixture's instances, running calls at once, test data and the TTLs the
//! checks wait out.

use super::{Check, Made, Port, Replicas, Verdict};
use fctr_ports::{KeyId, PortError, PseudoId, TenantId};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// A TTL (or window, or timeout) a check waits out: short, so a networked store's run stays short.
pub(super) const SHORT: Duration = Duration::from_secs(1);
/// How long a check waits for [`SHORT`] to run out: a margin for a server's clock and the round trips.
pub(super) const PAST_SHORT: Duration = Duration::from_millis(1250);
/// The longest TTL (or window, or timeout) a check waits out. Checks that need something to be still alive after a
/// wait use it, so that a slow machine (a stall between two calls) has room before the thing expires, while waits
/// meant to outlast a TTL stay just past it: sleeps are lower bounds, so those hold however slow the machine.
pub(super) const LONGEST: Duration = Duration::from_millis(1500);
/// A TTL nothing in a check outlives.
pub(super) const LONG: Duration = Duration::from_secs(600);
/// Longest a check waits for a published message to arrive.
pub(super) const DELIVERY: Duration = Duration::from_secs(5);

/// A failed check, saying why.
pub(super) fn fail(msg: impl Into<String>) -> Verdict {
    Verdict::Failed(msg.into())
}

/// Fails with `msg` unless `cond` holds.
pub(super) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(fail(msg())) }
}

/// A store call's error as a failed check naming the call.
pub(super) trait Ctx<T> {
    /// `Ok` as is; an error as "`what`: `error`".
    fn ctx(self, what: &str) -> Result<T, Verdict>;
}

impl<T> Ctx<T> for Result<T, PortError> {
    fn ctx(self, what: &str) -> Result<T, Verdict> {
        self.map_err(|e| fail(format!("{what}: the store returned an error: {e}")))
    }
}

/// The instance a fixture made, or the check's verdict when it made none.
pub(super) fn made<P: ?Sized>(m: Made<P>, port: Port) -> Result<Replicas<P>, Verdict> {
    match m {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Verdict::Skipped(format!(
            "this store does not implement {port}"
        ))),
        Err(why) => Err(fail(format!("the fixture could not make a {port}: {why}"))),
    }
}

/// Runs `n` calls at once: each is spawned as its own task, and all are released together by a barrier. Returns
/// their outputs in index order. A task that panics fails the check; tasks still running when the check is
/// dropped (its time limit) are aborted.
pub(super) async fn concurrently<T, Fut>(
    n: usize,
    mut task: impl FnMut(usize) -> Fut,
) -> Result<Vec<T>, Verdict>
where
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let mut set = JoinSet::new();
    for i in 0..n {
        let barrier = Arc::clone(&barrier);
        let call = task(i);
        set.spawn(async move {
            barrier.wait().await;
            (i, call.await)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, v) = joined.map_err(|e| fail(format!("a concurrent call panicked: {e}")))?;
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(v);
        }
    }
    out.into_iter()
        .map(|v| v.ok_or_else(|| fail("a concurrent call never answered")))
        .collect()
}

/// Every output, or the first error as a failed check naming `what`.
pub(super) fn all_ok<T>(outputs: Vec<Result<T, PortError>>, what: &str) -> Result<Vec<T>, Verdict> {
    outputs
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.ctx(&format!("{what} (concurrent call {i})")))
        .collect()
}

/// A distinct pseudonym per `n` (under key `k1`).
pub(super) fn pseudo(n: u8) -> Result<PseudoId, Verdict> {
    let key = KeyId::parse("k1").map_err(|e| fail(format!("test data: key id: {e}")))?;
    PseudoId::from_mac(&key, &[n; 16]).map_err(|e| fail(format!("test data: pseudonym: {e}")))
}

/// A tenant id.
pub(super) fn tenant(name: &str) -> Result<TenantId, Verdict> {
    TenantId::parse(name).map_err(|e| fail(format!("test data: tenant id: {e}")))
}

/// A `std` duration as a `chrono` one (the checks' durations are small).
pub(super) fn delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}
