//! Out-of-band change detection: the IdP's own record of admin changes to users ([`ChangeFeed`]).
//!
//! fctr writes an audit event for every action it runs. The IdP keeps its own log (Okta System Log, Entra
//! directory audits) of every change, whoever made it. Reading that log and matching it against fctr's audit
//! shows the changes made *outside* the gate: a password reset straight in the admin console, or fctr's own
//! credential used by something other than fctr.

use crate::action::ActionKind;
use crate::error::PortError;
use crate::ids::SubjectId;
use crate::pii::Pii;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;

/// Who made a change, as the IdP's log names them.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeActor {
    /// A person (an administrator in the console, or anyone acting with their own credentials).
    Admin {
        /// Their IdP user id (a person's identifier: pseudonymize it before storing).
        id: SubjectId,
        /// Their login or name as the IdP shows it, for the auditor's view only.
        display: Pii,
    },
    /// An application (a service app, an API client): its OAuth client id (Okta `0oa…`, Entra appId). Not a
    /// person's identifier.
    App {
        /// The client id.
        client_id: String,
    },
    /// The log did not say (a system process, or an actor of a type fctr does not read).
    Unknown,
}

impl fmt::Debug for ChangeActor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin { .. } => f.write_str("Admin([redacted])"),
            Self::App { client_id } => write!(f, "App({client_id:?})"),
            Self::Unknown => f.write_str("Unknown"),
        }
    }
}

/// One change to a user that the IdP's log records. Only changes that succeeded are reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpChange {
    /// What was done, in fctr's action vocabulary.
    pub kind: ActionKind,
    /// Whom it was done to (redacts itself).
    pub target: SubjectId,
    /// Who did it.
    pub actor: ChangeActor,
    /// When the IdP recorded it.
    pub at: DateTime<Utc>,
    /// The IdP's id of the log entry (Okta `uuid`, Graph `id`): not personal data.
    pub event_id: String,
}

/// Reads the IdP's own log of changes to users (password resets, factor resets, TAP issues, unlocks, session
/// revocations, suspensions).
///
/// Optional: an IdP adapter offers it when its credential may read the log (Okta scope `okta.logs.read`, Graph
/// permission `AuditLog.Read.All`).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Every successful change to a user recorded at or after `since` and before `until`, oldest first, every page
    /// read. Entries of other kinds, failed attempts and entries without a user target are skipped.
    ///
    /// # Errors
    /// [`PortError::Forbidden`] with the missing scope or permission named when the credential may not read the
    /// log; [`PortError::RateLimited`], [`PortError::Unauthorized`], [`PortError::Timeout`],
    /// [`PortError::Unavailable`], [`PortError::Upstream`] or [`PortError::Malformed`] as the IdP answers. A
    /// partial read is an error, never a shorter list (a missed page could hide a change).
    async fn changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<IdpChange>, PortError>;

    /// The client id fctr's own credential acts as in the log (a change by it that fctr did not audit is the
    /// most serious finding), or `None` when it acts as a person (an Okta SSWS token).
    fn own_client_id(&self) -> Option<String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_people() {
        let c = IdpChange {
            kind: ActionKind::ResetPassword,
            target: SubjectId::parse("00uCANARYTARGET").unwrap(),
            actor: ChangeActor::Admin {
                id: SubjectId::parse("00uCANARYADMIN").unwrap(),
                display: Pii::new("canary.admin@example.com"),
            },
            at: Utc::now(),
            event_id: "evt1".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("CANARY"), "{s}");
        assert!(!s.contains("canary.admin"), "{s}");
        let app = ChangeActor::App {
            client_id: "0oaapp".into(),
        };
        assert!(format!("{app:?}").contains("0oaapp"));
    }
}
