//! Parsing what the pages and the API send into the engine's types: shared by both, so a form field and a JSON
//! field mean the same thing.

use fctr_core::Denial;
use fctr_ports::{Action, ActionKind, FactorId, OtpCode, Reason};

/// An optional factor id (empty means none): `invalid_input` when it is not a factor id.
pub(crate) fn factor(s: Option<&str>) -> Result<Option<FactorId>, Denial> {
    s.filter(|s| !s.is_empty())
        .map(|s| FactorId::parse(s.to_owned()).map_err(|_| Denial::new(Reason::InvalidInput)))
        .transpose()
}

/// A one-time code the caller read out ([`OtpCode::parse`]): `invalid_input` when it is not one.
pub(crate) fn code(s: &str) -> Result<OtpCode, Denial> {
    OtpCode::parse(s).map_err(|_| Denial::new(Reason::InvalidInput))
}

/// Builds the action with its parameters from the form.
pub(crate) fn action_for(kind: ActionKind, factor: Option<FactorId>) -> Result<Action, Denial> {
    Ok(match kind {
        ActionKind::ClearSessions => Action::ClearSessions {
            revoke_oauth_tokens: true,
        },
        ActionKind::ResetPassword => Action::ResetPassword { send_email: false },
        ActionKind::ExpirePassword => Action::ExpirePassword,
        ActionKind::Unlock => Action::Unlock,
        ActionKind::ResetFactors => Action::ResetFactors,
        ActionKind::RemoveFactor => {
            Action::RemoveFactor(factor.ok_or_else(|| Denial::new(Reason::InvalidInput))?)
        }
        // The engine replaces these terms with policy's.
        ActionKind::IssueTemporaryAccessPass => Action::IssueTemporaryAccessPass {
            lifetime_minutes: 60,
            one_time: true,
        },
        ActionKind::Suspend => Action::Suspend,
        ActionKind::Unsuspend => Action::Unsuspend,
        _ => return Err(Denial::new(Reason::Unsupported)),
    })
}
