//! Why a store could not be built.

/// Why [`crate::RedisState::connect`] failed. Carries no URL, password, seal key or server message: only what
/// went wrong, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis URL this build can use (`redis://` or `unix://`; TLS is not built in).
    #[error("the Redis URL is invalid or uses a scheme this build does not support")]
    InvalidUrl,
    /// An option is out of range.
    #[error("invalid Redis store options: {what}")]
    InvalidOptions {
        /// Which rule was broken.
        what: &'static str,
    },
    /// Redis did not answer a `PING` within the command timeout.
    #[error("Redis is unavailable")]
    Unavailable,
}
