//! What [`crate::RedisState::connect`] takes besides the URL.

use crate::error::ConnectError;
use fctr_ports::Clock;
use secrecy::SecretString;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "fctr";
/// The default command timeout.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest prefix accepted.
const MAX_PREFIX_LEN: usize = 64;

/// Options of a [`crate::RedisState`].
///
/// `Debug` shows the prefix and the timeout, never the seal key.
#[derive(Clone)]
pub struct RedisOptions {
    pub(crate) prefix: String,
    pub(crate) command_timeout: Duration,
    pub(crate) seal_key: SecretString,
    pub(crate) rate_clock: Option<Arc<dyn Clock>>,
    pub(crate) pause: Option<PauseHook>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("seal_key", &"[redacted]")
            .field(
                "rate_clock",
                &self.rate_clock.as_ref().map(|_| "test clock"),
            )
            .finish_non_exhaustive()
    }
}

impl RedisOptions {
    /// Options with the default prefix (`fctr`) and command timeout (2 s), sealing values under a key derived from
    /// `seal_key` (at least 32 bytes; every replica of a deployment must use the same one).
    #[must_use]
    pub fn new(seal_key: SecretString) -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            seal_key,
            rate_clock: None,
            pause: None,
        }
    }

    /// Puts every key and channel under `prefix` (1 to 64 characters of `[A-Za-z0-9_.:-]`). Deployments sharing
    /// one Redis use different prefixes; tests use a random one each.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one operation may take (connection, command, and waiting for a reconnect included) before it fails
    /// with [`fctr_ports::PortError::Unavailable`]. At least 10 ms.
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The command timeout.
    #[must_use]
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Makes the rate limiter read the time from `clock` instead of the Redis server's `TIME`. For contract tests
    /// that drive sliding windows with a manual clock only: with it, replicas whose clocks disagree disagree on
    /// the windows too.
    #[must_use]
    pub fn dangerous_rate_limit_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.rate_clock = Some(clock);
        self
    }

    /// Test hook: `hook` is awaited between the read and the compare-and-set write of every read-then-write
    /// operation (the session updates), so a test can interleave another request exactly there.
    #[doc(hidden)]
    #[must_use]
    pub fn with_pause_hook(mut self, hook: PauseHook) -> Self {
        self.pause = Some(hook);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConnectError> {
        let p = &self.prefix;
        if p.is_empty()
            || p.len() > MAX_PREFIX_LEN
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            return Err(ConnectError::InvalidOptions {
                what: "the prefix must be 1 to 64 characters of A-Z a-z 0-9 _ . : -",
            });
        }
        if self.command_timeout < Duration::from_millis(10) {
            return Err(ConnectError::InvalidOptions {
                what: "the command timeout must be at least 10 ms",
            });
        }
        Ok(())
    }
}

/// Where a read-then-write operation is paused (see [`RedisOptions::with_pause_hook`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PausePoint {
    /// The operation (`touch`, `add_caller`, `add_verification`, `set_role`).
    pub op: &'static str,
    /// 0 on the first read, then 1, 2, … after each lost compare-and-set.
    pub attempt: u32,
}

/// A test hook awaited between a read and its compare-and-set write.
#[doc(hidden)]
pub type PauseHook =
    Arc<dyn Fn(PausePoint) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;
