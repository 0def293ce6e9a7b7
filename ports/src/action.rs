//! High-risk actions on an account, and what they return.

use crate::ids::FactorId;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of a high-risk action; the unit of permission in policy and of audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// Sign the user out everywhere (and revoke OAuth tokens where the IdP can).
    ClearSessions,
    /// Start a password reset (a one-time link, or an e-mail).
    ResetPassword,
    /// Expire the password and set a temporary one the caller must change.
    ExpirePassword,
    /// Unlock a locked-out account.
    Unlock,
    /// Remove every enrolled factor.
    ResetFactors,
    /// Remove one factor.
    RemoveFactor,
    /// Issue a Temporary Access Pass.
    IssueTemporaryAccessPass,
    /// Suspend the account.
    Suspend,
    /// Lift a suspension.
    Unsuspend,
}

impl ActionKind {
    /// Every action kind.
    pub const ALL: [ActionKind; 9] = [
        ActionKind::ClearSessions,
        ActionKind::ResetPassword,
        ActionKind::ExpirePassword,
        ActionKind::Unlock,
        ActionKind::ResetFactors,
        ActionKind::RemoveFactor,
        ActionKind::IssueTemporaryAccessPass,
        ActionKind::Suspend,
        ActionKind::Unsuspend,
    ];

    /// Stable machine name (policy files, API paths, audit).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ClearSessions => "clear_sessions",
            Self::ResetPassword => "reset_password",
            Self::ExpirePassword => "expire_password",
            Self::Unlock => "unlock",
            Self::ResetFactors => "reset_factors",
            Self::RemoveFactor => "remove_factor",
            Self::IssueTemporaryAccessPass => "issue_temporary_access_pass",
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
        }
    }

    /// Parses a stable machine name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Words an agent understands.
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            Self::ClearSessions => "sign the user out everywhere",
            Self::ResetPassword => "reset the password",
            Self::ExpirePassword => "expire the password with a temporary password",
            Self::Unlock => "unlock the account",
            Self::ResetFactors => "reset all MFA factors",
            Self::RemoveFactor => "remove one MFA factor",
            Self::IssueTemporaryAccessPass => "issue a Temporary Access Pass",
            Self::Suspend => "suspend the account",
            Self::Unsuspend => "unsuspend the account",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action with its parameters, as the engine asks an adapter to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// See [`ActionKind::ClearSessions`].
    ClearSessions {
        /// Also revoke OAuth refresh and access tokens.
        revoke_oauth_tokens: bool,
    },
    /// See [`ActionKind::ResetPassword`].
    ResetPassword {
        /// Let the IdP e-mail the link instead of returning it.
        send_email: bool,
    },
    /// See [`ActionKind::ExpirePassword`].
    ExpirePassword,
    /// See [`ActionKind::Unlock`].
    Unlock,
    /// See [`ActionKind::ResetFactors`].
    ResetFactors,
    /// See [`ActionKind::RemoveFactor`].
    RemoveFactor(FactorId),
    /// See [`ActionKind::IssueTemporaryAccessPass`].
    IssueTemporaryAccessPass {
        /// Lifetime of the pass, in minutes.
        lifetime_minutes: u32,
        /// Whether the pass works once only.
        one_time: bool,
    },
    /// See [`ActionKind::Suspend`].
    Suspend,
    /// See [`ActionKind::Unsuspend`].
    Unsuspend,
}

impl Action {
    /// The action's kind.
    #[must_use]
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::ClearSessions { .. } => ActionKind::ClearSessions,
            Self::ResetPassword { .. } => ActionKind::ResetPassword,
            Self::ExpirePassword => ActionKind::ExpirePassword,
            Self::Unlock => ActionKind::Unlock,
            Self::ResetFactors => ActionKind::ResetFactors,
            Self::RemoveFactor(_) => ActionKind::RemoveFactor,
            Self::IssueTemporaryAccessPass { .. } => ActionKind::IssueTemporaryAccessPass,
            Self::Suspend => ActionKind::Suspend,
            Self::Unsuspend => ActionKind::Unsuspend,
        }
    }
}

/// The kind of a one-time secret an action returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecretKind {
    /// A password reset link.
    ResetLink,
    /// A temporary password.
    TemporaryPassword,
    /// A Temporary Access Pass.
    TemporaryAccessPass,
}

/// A secret to be shown once to the agent, then forgotten. Held as [`SecretString`] (zeroized on drop, redacted
/// in `Debug`); not serializable.
#[derive(Debug)]
pub struct OneTimeSecret {
    /// What the secret is.
    pub kind: SecretKind,
    /// The secret.
    pub value: SecretString,
    /// When it stops working, if the IdP says.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What an adapter reports after running an action.
#[derive(Debug)]
pub struct ActionReceipt {
    /// The action that ran.
    pub kind: ActionKind,
    /// A one-time secret to show once, if the action produced one.
    pub secret: Option<OneTimeSecret>,
    /// The IdP e-mailed something to the user instead of returning it.
    pub emailed: bool,
}

impl ActionReceipt {
    /// A receipt with no secret.
    #[must_use]
    pub fn done(kind: ActionKind) -> Self {
        Self {
            kind,
            secret: None,
            emailed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_kind_names_round_trip() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ActionKind::parse("format_disk"), None);
    }

    #[test]
    fn receipt_debug_redacts_secret() {
        let r = ActionReceipt {
            kind: ActionKind::IssueTemporaryAccessPass,
            secret: Some(OneTimeSecret {
                kind: SecretKind::TemporaryAccessPass,
                value: SecretString::from("CANARY-TAP-9Q"),
                expires_at: None,
            }),
            emailed: false,
        };
        assert!(!format!("{r:?}").contains("CANARY"));
    }
}
