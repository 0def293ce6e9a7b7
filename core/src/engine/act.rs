//! Running a high-risk action on a caller under a live grant.
//!
//! Shells pass an [`ActionRequest`]: what the agent asked for, nothing more. The engine decides the terms
//! (a Temporary Access Pass's lifetime and one-time use come from policy) and builds the [`Action`] the IdP runs.

use super::call::{Call, upstream_detail};
use super::rate::RateScope;
use super::views::ActionOutcome;
use super::{Agent, Engine, RequestContext, store_ttl};
use crate::denial::Denial;
use crate::policy::{LockedOutProcedure, Permission};
use crate::verification::Grant;
use fctr_ports::{
    AccountStatus, Action, ActionKind, EventKind, FactorId, FactorKind, GrantConsumption, Outcome,
    PortError, Reason, SubjectId, UsageKind,
};

/// What an agent asked to do to a caller. The engine decides the terms ([`Engine::perform_action`]).
///
/// Build it with [`ActionRequest::new`] from what the agent chose, or from a full [`Action`] (whose
/// Temporary-Access-Pass terms are ignored: policy sets them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    kind: ActionKind,
    factor: Option<FactorId>,
    send_email: bool,
    revoke_oauth_tokens: bool,
}

impl ActionRequest {
    /// A request for `kind`. `factor` is the factor to remove, for [`ActionKind::RemoveFactor`] (ignored by
    /// every other action). Sessions are cleared with their OAuth tokens revoked; a password reset returns its
    /// link to the agent rather than e-mailing it.
    ///
    /// # Errors
    /// [`Reason::InvalidInput`] when `kind` is [`ActionKind::RemoveFactor`] and no factor is given.
    pub fn new(kind: ActionKind, factor: Option<FactorId>) -> Result<Self, Denial> {
        if kind == ActionKind::RemoveFactor && factor.is_none() {
            return Err(Denial::new(Reason::InvalidInput));
        }
        Ok(Self {
            kind,
            factor: factor.filter(|_| kind == ActionKind::RemoveFactor),
            send_email: false,
            revoke_oauth_tokens: true,
        })
    }

    /// The action asked for.
    #[must_use]
    pub fn kind(&self) -> ActionKind {
        self.kind
    }

    /// The factor to remove, for [`ActionKind::RemoveFactor`].
    #[must_use]
    pub fn factor(&self) -> Option<&FactorId> {
        self.factor.as_ref()
    }
}

impl From<Action> for ActionRequest {
    /// Keeps what the agent may choose (e-mailing a reset link, keeping OAuth tokens, the factor to remove) and
    /// drops what policy decides (a Temporary Access Pass's terms).
    fn from(action: Action) -> Self {
        let mut r = Self {
            kind: action.kind(),
            factor: None,
            send_email: false,
            revoke_oauth_tokens: true,
        };
        match action {
            Action::ClearSessions {
                revoke_oauth_tokens,
            } => r.revoke_oauth_tokens = revoke_oauth_tokens,
            Action::ResetPassword { send_email } => r.send_email = send_email,
            Action::RemoveFactor(f) => r.factor = Some(f),
            _ => {}
        }
        r
    }
}

impl Engine {
    /// The action the IdP is asked to run for `req`, on policy's terms.
    ///
    /// # Errors
    /// [`Reason::InvalidInput`] for a factor removal without a factor (only a hand-built request can be one),
    /// [`Reason::Unsupported`] for an action kind this engine does not know.
    pub(crate) fn terms(&self, req: &ActionRequest) -> Result<Action, Reason> {
        Ok(match req.kind {
            ActionKind::ClearSessions => Action::ClearSessions {
                revoke_oauth_tokens: req.revoke_oauth_tokens,
            },
            ActionKind::ResetPassword => Action::ResetPassword {
                send_email: req.send_email,
            },
            ActionKind::ExpirePassword => Action::ExpirePassword,
            ActionKind::Unlock => Action::Unlock,
            ActionKind::ResetFactors => Action::ResetFactors,
            ActionKind::RemoveFactor => {
                Action::RemoveFactor(req.factor.clone().ok_or(Reason::InvalidInput)?)
            }
            // Policy, not the client, decides the terms of a Temporary Access Pass.
            ActionKind::IssueTemporaryAccessPass => {
                let tap = self.policy.temporary_access_pass();
                Action::IssueTemporaryAccessPass {
                    lifetime_minutes: tap.lifetime_minutes,
                    one_time: tap.one_time,
                }
            }
            ActionKind::Suspend => Action::Suspend,
            ActionKind::Unsuspend => Action::Unsuspend,
            _ => return Err(Reason::Unsupported),
        })
    }

    /// Runs a high-risk action on a caller, only under a live grant for this agent and this caller.
    ///
    /// Order: role, IdP capability, protection, the action's terms, four-eyes approval where policy holds the action
    /// back (see below), grant (same agent, same caller, unexpired, covering the action; consumed atomically when
    /// single-use), audit intent (durable; no intent, no action), the action, audit outcome. A failed IdP call is
    /// never retried here (lifecycle calls are not idempotent).
    ///
    /// Four-eyes (`[four_eyes]`): when policy holds (action, caller's class) back, the first call under a live
    /// grant runs nothing: it records an approval request and answers [`Reason::ApprovalPending`] with the
    /// request's id in [`Denial::approval`]. Once a second agent approved it ([`Engine::decide_approval`]), the
    /// same call runs the action, spending the approval and the grant (each single-use).
    ///
    /// # Errors
    /// Every refusal reason of the grant rules, [`Reason::ApprovalPending`] (waiting, not refused),
    /// [`Reason::ApprovalRefused`], [`Reason::ApprovalExpired`], [`Reason::AuditUnavailable`],
    /// [`Reason::IdpError`].
    pub async fn perform_action(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
        request: impl Into<ActionRequest>,
    ) -> Result<ActionOutcome, Denial> {
        let request = request.into();
        let kind = request.kind();
        let target = self.pseudo.subject(subject);
        let c = Call::new(agent, ctx).about(target.clone()).action(kind);
        self.authorize(&c, Permission::Act(kind)).await?;
        self.refuse_self(&c, subject).await?;
        if !self.ports.idp.capabilities().actions.contains(&kind) {
            return Err(self.deny(&c, Reason::Unsupported).await);
        }
        // Protection is checked on groups at most one reuse window old (read again otherwise).
        let class = self.unprotected_class(&c, subject).await?;
        let four_eyes = self.policy.four_eyes().applies(kind, class);
        let action = match self.terms(&request) {
            Ok(a) => a,
            Err(reason) => return Err(self.deny(&c, reason).await),
        };
        // The "not me" block is checked once, here, before anything is spent or run: an action past this point
        // when a block is recorded was started before it and completes; every later one is refused.
        self.refuse_blocked(&c, &target).await?;
        let now = self.now();
        // An unlock that policy holds back for four-eyes takes the granted path, where approval is asked for; the
        // locked-out procedure's refusal (escalate) still applies to it.
        if kind == ActionKind::Unlock {
            if let Some(outcome) = self
                .unlock_before_verification(&c, subject, &action, four_eyes)
                .await?
            {
                return Ok(outcome);
            }
        }
        let approval = if four_eyes {
            Some(
                self.four_eyes_gate(&c, subject, &target, kind, class, request.factor())
                    .await?,
            )
        } else {
            None
        };
        // One atomic step decides and spends: no find-then-take here, so two requests can never both act.
        let grant = match self
            .ports
            .grants
            .consume(&agent.pseudo, &target, kind, now)
            .await
        {
            Ok(GrantConsumption::Consumed(g)) => Grant::from_store(g),
            Ok(GrantConsumption::AlreadyUsed) => {
                return Err(self.deny(&c, Reason::GrantUsed).await);
            }
            Ok(GrantConsumption::Expired) => {
                return Err(self.deny(&c, Reason::GrantExpired).await);
            }
            Ok(GrantConsumption::DoesNotCover) => {
                return Err(self.deny(&c, Reason::GrantDoesNotCoverAction).await);
            }
            Ok(_) => return Err(self.deny(&c, Reason::NoLiveGrant).await),
            Err(_) => return Err(self.deny(&c, Reason::StateUnavailable).await),
        };
        // Defence in depth: the store is keyed by agent and caller and checked expiry and cover, but the grant
        // itself decides too. A grant that fails here stays spent (fail closed).
        if let Err(reason) = grant.admits(&agent.pseudo, &target, &self.tenant, kind, now) {
            return Err(self.deny(&c, reason).await);
        }
        // The approval was given for one grant: a newer grant (a new verification since) does not inherit it.
        // Both stay spent (fail closed).
        if approval.is_some_and(|a| a.grant != grant.record().id) {
            return Err(self.deny(&c, Reason::InvalidState).await);
        }
        let intent = self.event(&c, EventKind::ActionIntent, Outcome::Pending);
        if let Err(d) = self.must_append(&c, intent).await {
            // Nothing ran: give the grant back (only if its "used" marker is still ours). If even that fails the
            // grant stays spent: the agent verifies again, which is the safe side.
            if grant.single_use() {
                let ttl = store_ttl(grant.expires_at() - now);
                self.ports
                    .grants
                    .restore(grant.record(), ttl)
                    .await
                    .unwrap_or(false);
            }
            return Err(d);
        }
        self.run_action(&c, subject, &action, grant.factors().to_vec())
            .await
    }

    /// The locked-out procedure's unlock: with `[locked_out] procedure = "unlock_then_verify"`, a caller the IdP
    /// reports locked out *now* (read again, not taken from the card) may be unlocked without a grant, at most
    /// `unlocks_per_caller_per_day` times a day by all agents. Unlocking hands out no credential: the caller can
    /// only try their current password again, which the IdP's own auto-unlock would also allow. The grant, if
    /// any, is left untouched. `Ok(None)` when the procedure does not apply (the normal, granted path runs).
    async fn unlock_before_verification(
        &self,
        c: &Call<'_>,
        subject: &SubjectId,
        action: &Action,
        held: bool,
    ) -> Result<Option<ActionOutcome>, Denial> {
        let rule = self.policy.locked_out();
        // An account the reuse window holds as not locked takes the granted path at no cost (at worst a grant is
        // asked for). One it holds as locked out is read again: the daily count is spent only on a caller locked
        // out now.
        let idp = &self.ports.idp;
        let seen = self
            .idp_or_deny(
                c,
                self.read_fact(subject, true, idp.get_user(subject)).await,
            )
            .await?;
        if seen.status != AccountStatus::LockedOut {
            return Ok(None);
        }
        let user = self
            .idp_or_deny(
                c,
                self.read_fact(subject, false, idp.get_user(subject)).await,
            )
            .await?;
        if user.status != AccountStatus::LockedOut {
            return Ok(None);
        }
        if rule.procedure != LockedOutProcedure::UnlockThenVerify {
            return Err(self.deny(c, Reason::CallerLockedOut).await);
        }
        // Held back for a second agent: no shortcut without a grant; the granted path asks for approval.
        if held {
            return Ok(None);
        }
        let target = c
            .target()
            .cloned()
            .ok_or(Denial::new(Reason::InvalidInput))?;
        // Over the daily limit the procedure is escalation: refused as `caller_locked_out` (its remedy says so),
        // with the rule and the wait in the audit detail.
        if let Err(d) = self.rate(c, RateScope::UnlocksForTarget(&target)).await {
            return Err(if d.reason == Reason::RateLimited {
                Denial {
                    reason: Reason::CallerLockedOut,
                    ..d
                }
            } else {
                d
            });
        }
        let intent = self
            .event(c, EventKind::ActionIntent, Outcome::Pending)
            .reason(Reason::CallerLockedOut);
        self.must_append(c, intent).await?;
        self.run_action(c, subject, action, Vec::new())
            .await
            .map(Some)
    }

    /// Runs an action whose intent is durably audited, and audits its outcome. A failed IdP call is never retried.
    async fn run_action(
        &self,
        c: &Call<'_>,
        subject: &SubjectId,
        action: &Action,
        factors: Vec<FactorKind>,
    ) -> Result<ActionOutcome, Denial> {
        let done = self.ports.idp.execute(subject, action).await;
        // Whatever happened, the next card reads the caller afresh.
        self.reads.forget(subject, self.now());
        match done {
            Ok(receipt) => {
                self.record(self.event(c, EventKind::ActionOutcome, Outcome::Success))
                    .await;
                let usage_recorded = self
                    .record_usage(c.agent(), UsageKind::Action, self.now())
                    .await;
                Ok(ActionOutcome {
                    receipt,
                    usage_recorded,
                    factors,
                })
            }
            Err(e) => {
                let reason = match e {
                    PortError::Unsupported => Reason::Unsupported,
                    PortError::InvalidState => Reason::InvalidState,
                    _ => Reason::IdpError,
                };
                let b = self
                    .event(c, EventKind::ActionOutcome, Outcome::Failed)
                    .reason(reason)
                    .detail(upstream_detail(&e));
                self.record(b).await;
                Err(Denial::new(reason))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_factor_removal_needs_its_factor_and_other_actions_ignore_one() {
        assert_eq!(
            ActionRequest::new(ActionKind::RemoveFactor, None).unwrap_err(),
            Denial::new(Reason::InvalidInput)
        );
        let f = FactorId::parse("f1").unwrap();
        let r = ActionRequest::new(ActionKind::RemoveFactor, Some(f.clone())).unwrap();
        assert_eq!(r.factor(), Some(&f));
        let r = ActionRequest::new(ActionKind::Unlock, Some(f)).unwrap();
        assert_eq!((r.kind(), r.factor()), (ActionKind::Unlock, None));
    }

    #[test]
    fn an_action_keeps_the_agents_choices_and_drops_policys_terms() {
        let r = ActionRequest::from(Action::ResetPassword { send_email: true });
        assert!(r.send_email);
        let r = ActionRequest::from(Action::ClearSessions {
            revoke_oauth_tokens: false,
        });
        assert!(!r.revoke_oauth_tokens);
        let tap = ActionRequest::from(Action::IssueTemporaryAccessPass {
            lifetime_minutes: 100_000,
            one_time: false,
        });
        assert_eq!(
            tap,
            ActionRequest::new(ActionKind::IssueTemporaryAccessPass, None).unwrap()
        );
    }
}
