//! `[state]` and `[session]`: where the short-lived state lives, and the session timeouts.

use super::{ConfigError, invalid};
use crate::secret::SecretSource;
use fctr_ports::{SecretString, Timeouts};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[state]`: absent (or without a Redis URL) means this process's memory, for a single node.
///
/// ```toml
/// [state]
/// redis_url_env = "FCTR_REDIS_URL"     # or redis_url_file; redis:// or rediss:// (TLS)
/// key_prefix = "fctr"                  # keys are "<prefix>:…"; one prefix per deployment
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(try_from = "RawState")]
pub struct StateSection {
    /// The Redis URL (`redis_url_env` or `redis_url_file`); may carry a password, so it is a secret.
    pub redis_url: Option<SecretSource>,
    /// The prefix of every key (default `fctr`).
    pub key_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    redis_url_env: Option<String>,
    redis_url_file: Option<PathBuf>,
    key_prefix: Option<String>,
}

impl TryFrom<RawState> for StateSection {
    type Error = String;
    fn try_from(r: RawState) -> Result<Self, String> {
        Ok(Self {
            redis_url: SecretSource::from_keys("redis_url", r.redis_url_env, r.redis_url_file)?,
            key_prefix: r.key_prefix,
        })
    }
}

impl StateSection {
    /// The Redis URL, read now, when one is configured.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `state.redis_url` when the source cannot be read or is not a `redis://` or
    /// `rediss://` URL (the message never quotes it: it may hold a password).
    pub fn redis_url(&self) -> Result<Option<SecretString>, ConfigError> {
        let Some(source) = &self.redis_url else {
            return Ok(None);
        };
        let url = source.resolve("state.redis_url")?;
        let text = secrecy::ExposeSecret::expose_secret(&url);
        if !(text.starts_with("redis://") || text.starts_with("rediss://")) {
            return Err(invalid(
                "state.redis_url",
                "must start with redis:// or rediss://",
            ));
        }
        Ok(Some(url))
    }

    /// The key prefix (default `fctr`): letters, digits, `-`, `_` and `.`, 1 to 32 of them.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `state.key_prefix`.
    pub fn key_prefix(&self) -> Result<String, ConfigError> {
        let p = self.key_prefix.clone().unwrap_or_else(|| "fctr".to_owned());
        let ok = (1..=32).contains(&p.len())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(p)
        } else {
            Err(invalid(
                "state.key_prefix",
                "1 to 32 letters, digits, '-', '_' or '.'",
            ))
        }
    }
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// Idle timeout (default 15).
    pub idle_minutes: Option<u32>,
    /// Absolute timeout (default 12).
    pub absolute_hours: Option<u32>,
}

impl SessionSection {
    /// The session timeouts, with the defaults of [`Timeouts`] for what is not set.
    #[must_use]
    pub fn timeouts(&self) -> Timeouts {
        let d = Timeouts::default();
        Timeouts {
            idle: self
                .idle_minutes
                .map_or(d.idle, |m| Duration::from_secs(u64::from(m) * 60)),
            absolute: self
                .absolute_hours
                .map_or(d.absolute, |h| Duration::from_secs(u64::from(h) * 3600)),
            pre_login: d.pre_login,
        }
    }
}
