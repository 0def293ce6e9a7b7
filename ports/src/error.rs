//! The one error type every port returns.

use std::time::Duration;

/// An error from a port. Adapters translate vendor errors (Okta `E0000…`, Graph `error.code`, SQL, Redis) into
/// these variants; nothing above the adapters branches on a vendor code.
///
/// Messages never contain personal data or secrets: a variant carries codes and numbers only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// The user, factor or record does not exist.
    #[error("not found")]
    NotFound,
    /// The upstream rate limit was hit; retry after the given time if known.
    #[error("rate limited{}", fmt_retry(.retry_after))]
    RateLimited {
        /// How long to wait before retrying, when the upstream says.
        retry_after: Option<Duration>,
    },
    /// Our credentials were refused (bad or expired token, bad client assertion).
    #[error("unauthorized: the IdP refused fctr's credentials")]
    Unauthorized,
    /// Our credentials are valid but lack a permission (scope, admin role, Graph permission).
    #[error("forbidden{}", .missing.as_deref().map(|m| format!(": missing {m}")).unwrap_or_default())]
    Forbidden {
        /// The missing scope, role or permission, when known.
        missing: Option<String>,
    },
    /// The operation is not allowed in the object's current state (e.g. unlocking an active user).
    #[error("not allowed in the current state")]
    InvalidState,
    /// The IdP refuses to challenge or verify the user because their account is locked out (Okta `E0000069`).
    #[error("the account is locked out")]
    AccountLocked,
    /// This adapter or IdP cannot do that.
    #[error("not supported by this identity provider")]
    Unsupported,
    /// The upstream did not answer in time.
    #[error("timed out")]
    Timeout,
    /// The upstream answered with an error this adapter maps no further.
    #[error("upstream error (HTTP {status}{})", .code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Upstream {
        /// HTTP status.
        status: u16,
        /// The vendor's error code (never a message, which can echo input).
        code: Option<String>,
    },
    /// The upstream's answer could not be understood.
    #[error("malformed upstream response")]
    Malformed,
    /// The backing service (IdP, database, cache) cannot be reached.
    #[error("unavailable")]
    Unavailable,
    /// Anything else; the source chain is for logs and must itself be free of personal data.
    #[error("unexpected error")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

fn fmt_retry(d: &Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {}s)", d.as_secs()))
        .unwrap_or_default()
}

impl PortError {
    /// Wraps any error as [`PortError::Unexpected`].
    pub fn unexpected(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unexpected(Box::new(e))
    }

    /// A short stable code for logs, metrics and audit reasons.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::InvalidState => "invalid_state",
            Self::AccountLocked => "account_locked",
            Self::Unsupported => "unsupported",
            Self::Timeout => "timeout",
            Self::Upstream { .. } => "upstream",
            Self::Malformed => "malformed",
            Self::Unavailable => "unavailable",
            Self::Unexpected(_) => "unexpected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_plain() {
        let e = PortError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(e.to_string(), "rate limited (retry after 7s)");
        let e = PortError::Forbidden {
            missing: Some("scope okta.users.manage".into()),
        };
        assert_eq!(e.to_string(), "forbidden: missing scope okta.users.manage");
        let e = PortError::Upstream {
            status: 502,
            code: Some("E0000009".into()),
        };
        assert_eq!(e.to_string(), "upstream error (HTTP 502, E0000009)");
        assert_eq!(e.code(), "upstream");
    }
}
