//! What the engine shows shells: typed views of grants, verifications, caller cards and action outcomes.
//!
//! Only the engine builds them, so each is `#[non_exhaustive]`: a field added later breaks no shell.

use super::Engine;
use crate::assurance;
use crate::policy::{Explanation, LockedOutProcedure, TargetClass};
use crate::verification::Grant;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, ActionReceipt, FactorId, FactorInfo, FactorKind, Reason, RiskFacts, UserRecord,
    VerificationId, VerificationRecord, VerificationStatus,
};
use std::collections::BTreeSet;

/// A live grant, as shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantView {
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether one action consumes it.
    pub single_use: bool,
    /// Actions it allows.
    pub actions: BTreeSet<ActionKind>,
    /// Factor kinds verified.
    pub factors: Vec<FactorKind>,
    /// The assurance wording ("AAL2-capable authenticator verified").
    pub assurance: &'static str,
}

/// A verification, as shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerificationView {
    /// Its id.
    pub id: VerificationId,
    /// Where it stands.
    pub status: VerificationStatus,
    /// The factor kind of the outstanding challenge.
    pub factor: Option<FactorKind>,
    /// The number the caller must pick (number matching).
    pub number: Option<u16>,
    /// When the outstanding challenge expires.
    pub challenge_expires_at: Option<DateTime<Utc>>,
    /// When the outstanding challenge was sent (none before one is): what a poller's schedule counts from, on
    /// whichever replica watches it.
    pub challenge_started_at: Option<DateTime<Utc>>,
    /// When the verification window closes.
    pub expires_at: DateTime<Utc>,
    /// Distinct factors approved.
    pub approved: u8,
    /// Distinct factors required.
    pub required: u8,
    /// The grant, once verified.
    pub grant: Option<GrantView>,
    /// Why it ended, if it ended without success.
    pub reason: Option<Reason>,
    /// With a sign-in link outstanding: the link's text (`{id}.{secret}`; the shell makes the URL) until the
    /// caller opens it, and whether they have.
    pub link: Option<LinkView>,
}

/// The sign-in link of an outstanding `idp_sign_in` challenge, for the agent who made it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkView {
    /// The link's text, until it is opened (a bearer value: shown to the agent who made it, never logged).
    pub token: Option<String>,
    /// Whether the caller opened it (and is signing in).
    pub opened: bool,
    /// Whether the caller's sign-in was accepted (the next poll approves it).
    pub signed_in: bool,
}

impl std::fmt::Debug for LinkView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkView")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("opened", &self.opened)
            .field("signed_in", &self.signed_in)
            .finish()
    }
}

/// One enrolled factor on the caller card.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FactorView {
    /// The factor.
    pub info: FactorInfo,
    /// Its assurance class, in words.
    pub assurance: &'static str,
    /// Whether policy accepts it for this caller now.
    pub accepted: bool,
    /// Why not, if not.
    pub refusal: Option<Reason>,
}

/// One action on the caller card.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionView {
    /// The action.
    pub kind: ActionKind,
    /// The agent's role allows it.
    pub permitted_for_role: bool,
    /// The IdP can do it.
    pub supported: bool,
    /// A live grant covers it right now (or, for an unlock, the locked-out procedure allows it before
    /// verification: see [`ActionView::before_verification`]).
    pub available_now: bool,
    /// It makes sense for this account as it is now (no unlock for an account that is not locked out, no
    /// unsuspend for one that is not suspended). A shell offers only actions that apply.
    pub applies: bool,
    /// Available without a verification, under the locked-out procedure (an unlock of a locked-out caller).
    pub before_verification: bool,
    /// What policy requires, and why (shared: the same for every card of this role, class and protection).
    pub explanation: std::sync::Arc<Explanation>,
}

/// What an agent sees about a caller. Holds personal data (in [`fctr_ports::Pii`]) for the agent's view only.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallerCard {
    /// The account.
    pub user: UserRecord,
    /// Enrolled factors with assurance and acceptance.
    pub factors: Vec<FactorView>,
    /// Risk facts.
    pub risk: RiskFacts,
    /// Standard or privileged.
    pub class: TargetClass,
    /// In a protected group: no action may touch it.
    pub protected: bool,
    /// Actions and what each requires.
    pub actions: Vec<ActionView>,
    /// The agent's live grant for this caller, if any.
    pub grant: Option<GrantView>,
    /// The factor policy would challenge first (none while the account is locked out: the IdP would refuse).
    pub recommended_factor: Option<FactorId>,
    /// The locked-out procedure, when the IdP reports the account locked out.
    pub locked_out: Option<LockedOutProcedure>,
    /// What the agent is told to do when the procedure escalates (policy's words).
    pub escalation: String,
    /// The caller was already unlocked before verification within the last 24 hours and is locked out again: the
    /// procedure is escalation ([`CallerCard::locked_out`] says `Escalate`).
    pub unlock_used_up: bool,
    /// Another agent completed a verification of this caller in the last hour (a social-engineering signal: the
    /// same story told to several agents).
    pub verified_by_another_recently: bool,
    /// How long until another challenge may be sent to this caller, when the per-caller limit is reached.
    pub challenges_blocked_for: Option<chrono::Duration>,
}

/// What an action returned.
#[derive(Debug)]
#[non_exhaustive]
pub struct ActionOutcome {
    /// The adapter's receipt; may carry a one-time secret to show once.
    pub receipt: ActionReceipt,
    /// Whether the action's usage record is durable in the ledger. `false` means the ledger refused it even after
    /// retries: it is held in memory and retried by the next write or [`Engine::flush_usage`] (see
    /// [`Engine::pending_usage`]), never dropped silently.
    pub usage_recorded: bool,
    /// The factor kinds of the grant the action ran under (empty when it ran before a verification, as the
    /// locked-out procedure's unlock does). For the ticket's work note.
    pub factors: Vec<FactorKind>,
}

/// A grant as the agent sees it.
pub(crate) fn grant_view(g: &Grant) -> GrantView {
    GrantView {
        expires_at: g.expires_at(),
        single_use: g.single_use(),
        actions: g.actions().clone(),
        factors: g.factors().to_vec(),
        assurance: assurance::verified_label(g.factors()),
    }
}

impl Engine {
    /// A verification as the agent sees it, with the grant it minted if that is still live.
    pub(crate) fn view(&self, rec: &VerificationRecord, grant: Option<&Grant>) -> VerificationView {
        let reason = match rec.status {
            VerificationStatus::Rejected => Some(rec.ended_by.unwrap_or(Reason::ChallengeRejected)),
            // The window closed, or only the outstanding push went unanswered.
            VerificationStatus::Expired if self.now() >= rec.expires_at => {
                Some(Reason::VerificationExpired)
            }
            VerificationStatus::Expired => Some(Reason::ChallengeTimedOut),
            VerificationStatus::Failed => Some(Reason::IdpError),
            _ => None,
        };
        let distinct: BTreeSet<&FactorKind> = rec.approved.iter().map(|a| &a.kind).collect();
        let ticket = rec.challenge.as_ref().and_then(|c| c.ticket.as_ref());
        let link = rec.challenge.as_ref().and_then(|c| c.link.as_ref());
        VerificationView {
            id: rec.id,
            status: rec.status,
            factor: rec.challenge.as_ref().map(|c| c.kind.clone()),
            number: ticket.and_then(|t| t.number),
            challenge_expires_at: ticket
                .map(|t| t.expires_at)
                .or_else(|| link.map(|l| self.link_deadline(l))),
            challenge_started_at: rec.challenge.as_ref().map(|c| c.started_at),
            expires_at: rec.expires_at,
            approved: u8::try_from(distinct.len()).unwrap_or(u8::MAX),
            required: rec.required_factors,
            grant: grant.map(grant_view),
            reason,
            link: link.map(|l| LinkView {
                token: l.opened_at.is_none().then(|| super::link_token(rec.id, l)),
                opened: l.opened_at.is_some(),
                signed_in: l.verified_at.is_some(),
            }),
        }
    }
}
