//! The shared connection, and the handle that gives out each port.

use crate::approval::RedisApprovalStore;
use crate::coordination::RedisCoordinator;
use crate::error::ConnectError;
use crate::grant::RedisGrantStore;
use crate::keys::Keys;
use crate::options::{PauseHook, PausePoint, RedisOptions};
use crate::pubsub::Hub;
use crate::rate::RedisRateLimiter;
use crate::seal::Sealer;
use crate::session::RedisSessionStore;
use fctr_ports::{
    ApprovalStore, Clock, Coordinator, GrantStore, PortError, RateLimiter, SessionStore, Timeouts,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Longest TTL any key gets: nothing here is meant to live longer (a session's absolute timeout is hours).
pub(crate) const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);
/// Reconnect attempts per outage before the connection manager waits for the next command to start again.
const RECONNECT_RETRIES: usize = 8;
/// Longest pause between two reconnect attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// What every port handle of one [`RedisState`] shares.
pub(crate) struct Inner {
    conn: ConnectionManager,
    pub(crate) client: Client,
    pub(crate) timeout: Duration,
    pub(crate) keys: Keys,
    pub(crate) sealer: Arc<Sealer>,
    pause: Option<PauseHook>,
    pub(crate) rate_clock: Option<Arc<dyn Clock>>,
    pub(crate) hub: OnceLock<Hub>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.get() {
            hub.stop();
        }
    }
}

impl Inner {
    /// A handle on the shared multiplexed connection (a cheap clone).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one Redis round trip (or script) under the command timeout; every Redis error and every timeout is
    /// [`PortError::Unavailable`]. Logs the error kind only (a server message can echo arguments).
    pub(crate) async fn run<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, PortError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::warn!(target: "fctr::redis", op, kind = ?e.kind(), "redis command failed");
                Err(PortError::Unavailable)
            }
            Err(_) => {
                tracing::warn!(target: "fctr::redis", op, "redis command timed out");
                Err(PortError::Unavailable)
            }
        }
    }

    /// Awaits the test pause hook, if one is set.
    pub(crate) async fn pause(&self, op: &'static str, attempt: u32) {
        if let Some(hook) = &self.pause {
            hook(PausePoint { op, attempt }).await;
        }
    }
}

/// A TTL in whole milliseconds for Redis: rounded up, at most [`MAX_TTL`]. Zero stays zero (the caller then deletes).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    let ttl = ttl.min(MAX_TTL);
    let ms = ttl.as_millis();
    let ms = ms + u128::from(ttl.as_nanos() % 1_000_000 != 0);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The replicas' shared short-lived state on one Redis: one multiplexed connection (reconnecting by itself), one
/// pub/sub connection (opened on the first subscription), and the sealing key. Cheap to clone; every port handle
/// it gives out shares the connections.
///
/// `Debug` shows the prefix and the timeout only.
#[derive(Clone)]
pub struct RedisState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.inner.keys.prefix())
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port[/db]` or `unix://`; may hold a password,
    /// hence secret) and checks it answers a `PING` within the command timeout.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`], [`ConnectError::InvalidOptions`] (prefix, timeout, a seal key shorter than
    /// 32 bytes), or [`ConnectError::Unavailable`] when Redis does not answer. None of them carries the URL.
    pub async fn connect(url: SecretString, options: RedisOptions) -> Result<Self, ConnectError> {
        options.validate()?;
        let sealer = Arc::new(Sealer::new(&options.seal_key)?);
        let client = Client::open(url.expose_secret()).map_err(|_| ConnectError::InvalidUrl)?;
        let t = options.command_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|_| ConnectError::InvalidUrl)?;
        let state = Self {
            inner: Arc::new(Inner {
                conn,
                client,
                timeout: t,
                keys: Keys::new(&options.prefix),
                sealer,
                pause: options.pause,
                rate_clock: options.rate_clock,
                hub: OnceLock::new(),
            }),
        };
        state.ping().await.map_err(|_| ConnectError::Unavailable)?;
        Ok(state)
    }

    /// Readiness: `PING` within the command timeout.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when Redis does not answer in time.
    pub async fn ping(&self) -> Result<(), PortError> {
        let mut c = self.inner.conn();
        let pong: String = self
            .inner
            .run("ping", redis::cmd("PING").query_async(&mut c))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(PortError::Unavailable)
        }
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// Verifications and grants.
    #[must_use]
    pub fn grant_store(&self) -> Arc<dyn GrantStore> {
        Arc::new(RedisGrantStore::new(self.inner.clone()))
    }

    /// Four-eyes approval requests (compare-and-set decisions and single-use takes).
    #[must_use]
    pub fn approval_store(&self) -> Arc<dyn ApprovalStore> {
        Arc::new(RedisApprovalStore::new(self.inner.clone()))
    }

    /// Sliding-window rate limits, timed by the Redis server's clock.
    #[must_use]
    pub fn rate_limiter(&self) -> Arc<dyn RateLimiter> {
        Arc::new(RedisRateLimiter::new(self.inner.clone()))
    }

    /// Sessions and pre-login state; `clock` and `timeouts` decide when a session stops being live, as for
    /// `fctr_memory::MemorySessionStore::new`.
    #[must_use]
    pub fn session_store(
        &self,
        clock: Arc<dyn Clock>,
        timeouts: Timeouts,
    ) -> Arc<dyn SessionStore> {
        Arc::new(RedisSessionStore::new(self.inner.clone(), clock, timeouts))
    }

    /// Leases, fan-out (one pub/sub connection per [`RedisState`]) and short-lived values.
    #[must_use]
    pub fn coordinator(&self) -> Arc<dyn Coordinator> {
        Arc::new(RedisCoordinator::new(self.inner.clone()))
    }

    /// Test support: waits until the pub/sub connection's state satisfies `pred(live, generation)` (generation
    /// counts successful (re)subscriptions), for at most `within`. `false` on timeout or when no subscription was
    /// ever made.
    #[doc(hidden)]
    pub async fn wait_pubsub(&self, pred: impl Fn(bool, u64) -> bool, within: Duration) -> bool {
        match self.inner.hub.get() {
            Some(hub) => hub.wait(pred, within).await,
            None => false,
        }
    }
}
