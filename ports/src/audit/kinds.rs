//! What happened, how it ended, and why: the closed vocabularies of an audit event.

use super::*;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// An agent signed in.
    Login,
    /// An agent signed out.
    Logout,
    /// An agent looked a caller up.
    Lookup,
    /// A challenge was sent to the caller's authenticator.
    ChallengeStarted,
    /// A challenge resolved (approved, rejected, timed out, failed).
    ChallengeResult,
    /// A one-time code the caller read out was checked.
    CodeSubmitted,
    /// A verification grant was issued.
    GrantIssued,
    /// An action is about to run (written, durably, before it runs).
    ActionIntent,
    /// An action ran (or failed) after its intent was written.
    ActionOutcome,
    /// A request was refused.
    Denied,
    /// A policy was loaded.
    PolicyLoaded,
    /// Old audit events or usage records were purged by retention.
    Purge,
    /// The head of the chain was recorded (checkpoint), so truncation is detectable.
    Checkpoint,
    /// The caller said "that was not me" (a denied push, or the agent recorded it): policy's response follows.
    NotMe,
    /// fctr acted on its own in response to an alarm (cleared the caller's sessions, blocked portal actions),
    /// naming the agent whose request triggered it.
    AlarmResponse,
    /// An alert was raised (and, with a failed outcome, its delivery finally failed).
    AlertRaised,
    /// A work note was posted to the request's helpdesk ticket (`success`), could not be posted and will be tried
    /// again (`pending`), or was given up (`failed`): ticket write-back.
    TicketNote,
    /// An action that policy holds for four-eyes approval was requested and now waits for a second agent
    /// (`pending`), naming the requesting agent, the caller (pseudonyms), the action and the approval id.
    ApprovalRequested,
    /// A second agent decided an approval request: `success` when approved, `rejected` when refused. The agent
    /// field names the approver; the detail names the request and the requesting agent.
    ApprovalDecided,
}

impl EventKind {
    /// Every event kind, in the order a person reads a flow (sign-in, lookup, challenge, grant, action, the
    /// rest). The one list shells offer as filters; a new kind is added here and nowhere else.
    pub const ALL: [EventKind; 19] = [
        EventKind::Login,
        EventKind::Logout,
        EventKind::Lookup,
        EventKind::ChallengeStarted,
        EventKind::ChallengeResult,
        EventKind::CodeSubmitted,
        EventKind::GrantIssued,
        EventKind::ActionIntent,
        EventKind::ActionOutcome,
        EventKind::Denied,
        EventKind::PolicyLoaded,
        EventKind::Purge,
        EventKind::Checkpoint,
        EventKind::NotMe,
        EventKind::AlarmResponse,
        EventKind::AlertRaised,
        EventKind::TicketNote,
        EventKind::ApprovalRequested,
        EventKind::ApprovalDecided,
    ];

    /// Parses a stable machine name ([`EventKind::as_str`]).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::Lookup => "lookup",
            Self::ChallengeStarted => "challenge_started",
            Self::ChallengeResult => "challenge_result",
            Self::CodeSubmitted => "code_submitted",
            Self::GrantIssued => "grant_issued",
            Self::ActionIntent => "action_intent",
            Self::ActionOutcome => "action_outcome",
            Self::Denied => "denied",
            Self::PolicyLoaded => "policy_loaded",
            Self::Purge => "purge",
            Self::Checkpoint => "checkpoint",
            Self::NotMe => "not_me",
            Self::AlarmResponse => "alarm_response",
            Self::AlertRaised => "alert_raised",
            Self::TicketNote => "ticket_note",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalDecided => "approval_decided",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Succeeded, or a state change worth recording (e.g. intent).
    Success,
    /// Still pending (challenge sent).
    Pending,
    /// Refused by fctr (policy, role, grant, rate limit).
    Denied,
    /// The caller or IdP said no (rejected push, wrong code).
    Rejected,
    /// Something failed (IdP error, timeout).
    Failed,
}

impl Outcome {
    /// Every outcome, from success to failure. The one list shells offer as filters.
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Pending,
        Outcome::Denied,
        Outcome::Rejected,
        Outcome::Failed,
    ];

    /// Parses a stable machine name ([`Outcome::as_str`]).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Denied => "denied",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// Why something was denied, rejected or failed: the machine-readable reason every refusal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The agent has no role in policy.
    NoRole,
    /// The agent's role does not permit this.
    NotPermittedForRole,
    /// The target is in a protected group.
    ProtectedTarget,
    /// No live grant exists for this agent and caller.
    NoLiveGrant,
    /// The grant belongs to another agent.
    GrantOtherAgent,
    /// The grant is for another caller.
    GrantOtherSubject,
    /// The grant expired.
    GrantExpired,
    /// The single-use grant was already used.
    GrantUsed,
    /// The grant does not cover this action.
    GrantDoesNotCoverAction,
    /// Policy does not accept this factor kind for this target.
    FactorNotAccepted,
    /// The factor is not an active factor of this caller.
    FactorNotEnrolled,
    /// The caller has a stronger factor enrolled; policy refuses the weaker one.
    DowngradeRefused,
    /// A rate limit was hit.
    RateLimited,
    /// Too many wrong codes: verification of this caller is locked for a while.
    VerificationLocked,
    /// The verification does not exist or belongs to someone else.
    VerificationNotFound,
    /// The verification window closed.
    VerificationExpired,
    /// The verification is not in a state that allows this step.
    InvalidState,
    /// The caller denied the push (or picked the wrong number).
    ChallengeRejected,
    /// The caller did not answer in time.
    ChallengeTimedOut,
    /// The code was wrong.
    WrongCode,
    /// The code was already used.
    CodeReplayed,
    /// The IdP failed or refused.
    IdpError,
    /// The IdP cannot do this.
    Unsupported,
    /// The caller was not found.
    TargetNotFound,
    /// The audit log could not be written, so nothing ran.
    AuditUnavailable,
    /// The request was malformed.
    InvalidInput,
    /// The client address is not on the allow-list.
    IpNotAllowed,
    /// The request failed a CSRF check.
    CsrfRejected,
    /// Sign-in failed.
    AuthenticationFailed,
    /// The caller has too few factors that policy accepts (and this IdP can challenge) to ever complete a
    /// verification, so nothing was sent.
    NotEnoughFactors,
    /// The agent tried to verify or act on their own account, which policy does not allow.
    SelfAction,
    /// The agent's role was re-checked against the IdP's current groups and the IdP no longer gives them one (removed
    /// from their group, or no longer a user): the request is refused and their session ends.
    AgentRoleRevoked,
    /// The shared short-lived state (sessions, verifications, grants, rate limits: memory or Redis) could not be
    /// read or written, so nothing was done.
    StateUnavailable,
    /// The caller's account is locked out at the IdP, which will not challenge it: policy's locked-out procedure
    /// applies (unlock first, or escalate).
    CallerLockedOut,
    /// The caller said "that was not me" (or denied a push): portal actions and new verifications for them are
    /// blocked for a while by policy's alarm response.
    CallerBlocked,
    /// Policy requires a second agent's approval for this action on this caller: a request was recorded and waits
    /// (not a refusal of the agent; the action runs once approved).
    ApprovalPending,
    /// A second agent refused the approval request, so the action cannot run and the grant is spent.
    ApprovalRefused,
    /// The approval request expired before it was decided or used.
    ApprovalExpired,
    /// No such approval request (unknown, or of another tenant).
    ApprovalNotFound,
    /// Another approver decided the request first (or it was already used).
    ApprovalAlreadyDecided,
    /// The agent tried to approve their own request, or a request about themselves as the caller.
    SelfApproval,
    /// A sign-in link is unknown, used already, or expired (a link opens once).
    SignInLinkInvalid,
    /// Someone other than the caller the agent looked up signed in through the caller's link: a red flag.
    SignInOtherUser,
    /// The IdP sign-in was not fresh (no re-authentication after the link was opened).
    SignInStale,
    /// The IdP sign-in shows no multi-factor authentication.
    SignInNoMfa,
    /// The IdP refused the sign-in, or its ID token failed verification (signature, issuer, audience, expiry,
    /// nonce).
    SignInFailed,
}

impl Reason {
    /// Every reason, in declaration order (for exhaustive tests and documentation).
    pub const ALL: [Reason; 46] = [
        Reason::NoRole,
        Reason::NotPermittedForRole,
        Reason::ProtectedTarget,
        Reason::NoLiveGrant,
        Reason::GrantOtherAgent,
        Reason::GrantOtherSubject,
        Reason::GrantExpired,
        Reason::GrantUsed,
        Reason::GrantDoesNotCoverAction,
        Reason::FactorNotAccepted,
        Reason::FactorNotEnrolled,
        Reason::DowngradeRefused,
        Reason::RateLimited,
        Reason::VerificationLocked,
        Reason::VerificationNotFound,
        Reason::VerificationExpired,
        Reason::InvalidState,
        Reason::ChallengeRejected,
        Reason::ChallengeTimedOut,
        Reason::WrongCode,
        Reason::CodeReplayed,
        Reason::IdpError,
        Reason::Unsupported,
        Reason::TargetNotFound,
        Reason::AuditUnavailable,
        Reason::InvalidInput,
        Reason::IpNotAllowed,
        Reason::CsrfRejected,
        Reason::AuthenticationFailed,
        Reason::NotEnoughFactors,
        Reason::SelfAction,
        Reason::AgentRoleRevoked,
        Reason::StateUnavailable,
        Reason::CallerLockedOut,
        Reason::CallerBlocked,
        Reason::ApprovalPending,
        Reason::ApprovalRefused,
        Reason::ApprovalExpired,
        Reason::ApprovalNotFound,
        Reason::ApprovalAlreadyDecided,
        Reason::SelfApproval,
        Reason::SignInLinkInvalid,
        Reason::SignInOtherUser,
        Reason::SignInStale,
        Reason::SignInNoMfa,
        Reason::SignInFailed,
    ];

    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoRole => "no_role",
            Self::NotPermittedForRole => "not_permitted_for_role",
            Self::ProtectedTarget => "protected_target",
            Self::NoLiveGrant => "no_live_grant",
            Self::GrantOtherAgent => "grant_other_agent",
            Self::GrantOtherSubject => "grant_other_subject",
            Self::GrantExpired => "grant_expired",
            Self::GrantUsed => "grant_used",
            Self::GrantDoesNotCoverAction => "grant_does_not_cover_action",
            Self::FactorNotAccepted => "factor_not_accepted",
            Self::FactorNotEnrolled => "factor_not_enrolled",
            Self::DowngradeRefused => "downgrade_refused",
            Self::RateLimited => "rate_limited",
            Self::VerificationLocked => "verification_locked",
            Self::VerificationNotFound => "verification_not_found",
            Self::VerificationExpired => "verification_expired",
            Self::InvalidState => "invalid_state",
            Self::ChallengeRejected => "challenge_rejected",
            Self::ChallengeTimedOut => "challenge_timed_out",
            Self::WrongCode => "wrong_code",
            Self::CodeReplayed => "code_replayed",
            Self::IdpError => "idp_error",
            Self::Unsupported => "unsupported",
            Self::TargetNotFound => "target_not_found",
            Self::AuditUnavailable => "audit_unavailable",
            Self::StateUnavailable => "state_unavailable",
            Self::CallerLockedOut => "caller_locked_out",
            Self::CallerBlocked => "caller_blocked",
            Self::ApprovalPending => "approval_pending",
            Self::ApprovalRefused => "approval_refused",
            Self::ApprovalExpired => "approval_expired",
            Self::ApprovalNotFound => "approval_not_found",
            Self::ApprovalAlreadyDecided => "approval_already_decided",
            Self::SelfApproval => "self_approval",
            Self::SignInLinkInvalid => "sign_in_link_invalid",
            Self::SignInOtherUser => "sign_in_other_user",
            Self::SignInStale => "sign_in_stale",
            Self::SignInNoMfa => "sign_in_no_mfa",
            Self::SignInFailed => "sign_in_failed",
            Self::InvalidInput => "invalid_input",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::CsrfRejected => "csrf_rejected",
            Self::AuthenticationFailed => "authentication_failed",
            Self::NotEnoughFactors => "not_enough_factors",
            Self::SelfAction => "self_action",
            Self::AgentRoleRevoked => "agent_role_revoked",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
