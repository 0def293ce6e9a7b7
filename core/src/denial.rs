//! Refusals: a machine-readable reason, and the words for an agent.

use chrono::Duration;
use fctr_ports::{ApprovalId, Reason};
use std::fmt;

/// A refusal from the engine. Carries no personal data: a reason code, an optional wait, and fixed words.
///
/// Built only by the engine (and by shells through [`Denial::new`] and [`Denial::after`]); `#[non_exhaustive]`
/// so that a field added later breaks no reader.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Denial {
    /// Why.
    pub reason: Reason,
    /// When it is a rate limit or lockout: how long until a retry can succeed.
    pub retry_after: Option<Duration>,
    /// With [`Reason::ApprovalPending`]: the approval request the action waits on (four-eyes), for the shell to
    /// show; the action runs once a second agent approves it and the agent asks again.
    pub approval: Option<ApprovalId>,
}

impl Denial {
    /// A denial for `reason`.
    #[must_use]
    pub fn new(reason: Reason) -> Self {
        Self {
            reason,
            retry_after: None,
            approval: None,
        }
    }

    /// The answer to an action that waits for a second agent's approval (four-eyes): not run yet.
    #[must_use]
    pub fn pending_approval(id: ApprovalId) -> Self {
        Self {
            reason: Reason::ApprovalPending,
            retry_after: None,
            approval: Some(id),
        }
    }

    /// A rate-limit style denial with a wait.
    #[must_use]
    pub fn after(reason: Reason, retry_after: Duration) -> Self {
        Self {
            reason,
            retry_after: Some(retry_after),
            approval: None,
        }
    }

    /// The wait in whole seconds, at least 1, for a `Retry-After` header or a message (`None` when there is no
    /// wait).
    #[must_use]
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| u64::try_from(d.num_seconds()).unwrap_or(0).max(1))
    }

    /// What happened, in words an agent understands.
    #[must_use]
    pub fn message(&self) -> &'static str {
        describe(self.reason).0
    }

    /// What would unblock it, in words an agent understands.
    #[must_use]
    pub fn remedy(&self) -> &'static str {
        describe(self.reason).1
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.reason.as_str())?;
        if let Some(d) = self.retry_after {
            write!(f, "; retry after {}s", d.num_seconds().max(0))?;
        }
        Ok(())
    }
}

impl std::error::Error for Denial {}

/// (what happened, what would unblock it) for every reason.
#[must_use]
pub fn describe(reason: Reason) -> (&'static str, &'static str) {
    match reason {
        Reason::NoRole => (
            "You are not authorized to use fctr.",
            "Ask your administrator to add you to a helpdesk group that policy maps to a role.",
        ),
        Reason::NotPermittedForRole => (
            "Your role does not allow this.",
            "Hand the call to an agent whose tier allows it.",
        ),
        Reason::ProtectedTarget => (
            "This account is protected: no helpdesk action may touch it.",
            "Escalate to the identity team through the documented break-glass process.",
        ),
        Reason::NoLiveGrant => (
            "The caller has not been verified by you in the last few minutes.",
            "Verify the caller first, then retry the action.",
        ),
        Reason::GrantOtherAgent => (
            "The verification belongs to another agent.",
            "Verify the caller yourself.",
        ),
        Reason::GrantOtherSubject => (
            "The verification is for a different caller.",
            "Verify this caller.",
        ),
        Reason::GrantExpired => ("The verification has expired.", "Verify the caller again."),
        Reason::GrantUsed => (
            "The verification was already used for an action.",
            "Verify the caller again for each high-risk action.",
        ),
        Reason::GrantDoesNotCoverAction => (
            "The verification does not cover this action.",
            "Verify the caller again with the factors this action needs.",
        ),
        Reason::FactorNotAccepted => (
            "Policy does not accept this factor for this caller.",
            "Choose one of the factors policy lists as accepted.",
        ),
        Reason::FactorNotEnrolled => (
            "That factor is not an active factor of this caller.",
            "Choose one of the caller's active factors.",
        ),
        Reason::AgentRoleRevoked => (
            "Your access was withdrawn at the identity provider: you no longer have an fctr role. You are signed out.",
            "Ask your administrator whether you should still be in an fctr agent group.",
        ),
        Reason::NotEnoughFactors => (
            "This caller has too few factors that policy accepts to be verified here; nothing was sent.",
            "Have the caller enroll another accepted factor through your out-of-band process, or escalate.",
        ),
        Reason::SelfAction => (
            "Agents cannot verify or change their own account through the helpdesk portal.",
            "Ask another agent to handle your own account.",
        ),
        Reason::DowngradeRefused => (
            "The caller has a stronger factor enrolled; policy refuses the weaker one.",
            "Challenge the caller's strongest factor.",
        ),
        Reason::RateLimited => (
            "Too many attempts.",
            "Wait and retry; repeated pushes to one caller are throttled to stop push bombing.",
        ),
        Reason::VerificationLocked => (
            "Too many wrong codes: verification of this caller is locked for a while.",
            "Wait for the lockout to end, or escalate; do not let the caller keep guessing.",
        ),
        Reason::VerificationNotFound => (
            "That verification does not exist or is not yours.",
            "Start a new verification.",
        ),
        Reason::VerificationExpired => (
            "The verification window closed.",
            "Start a new verification.",
        ),
        Reason::InvalidState => (
            "That step is not possible in the current state.",
            "Reload and follow the steps shown.",
        ),
        Reason::ChallengeRejected => (
            "The caller denied the push, or picked the wrong number.",
            "Do not proceed. If the caller insists it was a mistake, verify again; suspect social engineering.",
        ),
        Reason::ChallengeTimedOut => (
            "The caller did not answer in time.",
            "Send a new push once the caller has the app open, or verify with a code instead.",
        ),
        Reason::WrongCode => (
            "The code is wrong.",
            "Ask the caller to read the current code again.",
        ),
        Reason::CodeReplayed => (
            "That code was already used.",
            "Ask the caller to wait for the next code.",
        ),
        Reason::IdpError => (
            "The identity provider failed or refused the request.",
            "Retry in a moment. If it keeps failing, try another of the caller's factors, or tell your team lead that the identity provider is not answering.",
        ),
        Reason::Unsupported => (
            "The identity provider cannot do this.",
            "Use the identity provider's own console, or another action.",
        ),
        Reason::TargetNotFound => ("No such user.", "Check the spelling, or search again."),
        Reason::AuditUnavailable => (
            "The audit log cannot be written, so nothing was done.",
            "Retry later; tell the fctr operators.",
        ),
        Reason::StateUnavailable => (
            "The portal's shared state store cannot be reached, so nothing was done.",
            "Retry in a minute; tell the fctr operators if it persists.",
        ),
        Reason::CallerLockedOut => (
            "The caller's account is locked out, so the identity provider will not send a push or check a code.",
            "Follow the locked-out procedure on the caller card: unlock first where policy allows it, then verify; otherwise escalate.",
        ),
        Reason::CallerBlocked => (
            "The caller said a recent request was not theirs, so verifications and actions for them are blocked for a while.",
            "Do not verify or change the account now; escalate to the security team with the ticket reference.",
        ),
        Reason::ApprovalPending => (
            "Policy requires a second agent's approval for this action: the request is waiting for a second agent's approval.",
            "Keep the caller on the line or call back; once another agent with the approver role approves it in the approvals queue, run the action again.",
        ),
        Reason::ApprovalRefused => (
            "A second agent refused the approval request, so the action was not run and the verification is spent.",
            "Do not retry; talk to the approving agent or escalate with the ticket reference.",
        ),
        Reason::ApprovalExpired => (
            "The approval request expired before it was decided or used.",
            "Run the action again to make a new request (verify the caller again if the grant has expired).",
        ),
        Reason::ApprovalNotFound => ("No such approval request.", "Reload the approvals queue."),
        Reason::ApprovalAlreadyDecided => (
            "Another agent already decided this approval request.",
            "Nothing to do; reload the approvals queue.",
        ),
        Reason::SelfApproval => (
            "You cannot decide an approval request you made, or one about your own account.",
            "Another agent with the approver role must decide it.",
        ),
        Reason::SignInLinkInvalid => (
            "This sign-in link is not valid: it was used already, it expired, or it was never issued.",
            "Ask the agent for a new link.",
        ),
        Reason::SignInOtherUser => (
            "Someone other than the caller you looked up signed in through the caller's link: treat this call as suspicious.",
            "Do not verify or change the account on this call; end it, keep the ticket reference, and escalate to the security team.",
        ),
        Reason::SignInStale => (
            "The caller's sign-in was not fresh: the identity provider did not ask them to sign in again after the link was opened.",
            "Send a new link and ask the caller to sign in again when it opens.",
        ),
        Reason::SignInNoMfa => (
            "The caller's sign-in did not use multi-factor authentication.",
            "Send a new link; if it happens again, verify with a push instead or ask the IdP administrator to require MFA for fctr's sign-in app.",
        ),
        Reason::SignInFailed => (
            "The caller's sign-in at the identity provider failed or could not be verified.",
            "Send a new link, or verify with a push instead.",
        ),
        Reason::InvalidInput => ("The request was not valid.", "Check the input and retry."),
        Reason::IpNotAllowed => (
            "Your network address is not allowed.",
            "Connect from an allowed network.",
        ),
        Reason::CsrfRejected => (
            "The request could not be verified as coming from this page.",
            "Reload the page and retry.",
        ),
        Reason::AuthenticationFailed => ("Sign-in failed.", "Sign in again."),
        _ => ("The request was refused.", "Contact the fctr operators."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason has its own message and remedy: none falls through to the generic text, and no two reasons
    /// read the same to the agent.
    #[test]
    fn every_reason_has_its_own_words() {
        let fallback = ("The request was refused.", "Contact the fctr operators.");
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            let words = describe(r);
            assert_ne!(words, fallback, "{r:?} has no words of its own");
            assert!(!words.0.is_empty() && !words.1.is_empty(), "{r:?}");
            assert!(
                seen.insert(words.0),
                "{r:?} repeats another reason's message"
            );
            let d = Denial::new(r);
            assert_eq!((d.message(), d.remedy()), words);
            assert_eq!(d.to_string(), format!("{} ({})", words.0, r.as_str()));
        }
        let later = Denial::after(Reason::RateLimited, Duration::seconds(90));
        assert!(
            later
                .to_string()
                .ends_with("(rate_limited); retry after 90s"),
            "{later}"
        );
        assert_eq!(later.retry_after_secs(), Some(90));
        assert_eq!(
            Denial::after(Reason::RateLimited, Duration::milliseconds(10)).retry_after_secs(),
            Some(1),
            "a wait under a second still says wait"
        );
        assert_eq!(Denial::new(Reason::RateLimited).retry_after_secs(), None);
    }
}
