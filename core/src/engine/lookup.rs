//! Finding a caller and showing the agent what they may do: search, the caller card, and `explain`.
//! Each is a lookup: authorized, counted against the agent's hourly quota, and audited.

use super::call::Call;
use super::explained::Explained;
use super::views::{ActionView, CallerCard, FactorView, GrantView, grant_view};
use super::{Agent, Engine, RequestContext};
use crate::assurance;
use crate::denial::Denial;
use crate::policy::{Explanation, FactorChoice, LockedOutProcedure, Permission, TargetClass};
use crate::verification::Grant;
use fctr_ports::{
    AccountStatus, ActionKind, EventKind, FactorKind, FactorStatus, Outcome, PseudoId, Reason,
    SubjectId, UserQuery, UserRecord,
};

/// Whether `kind` makes sense for an account in `status` (a shell offers only these).
fn applies(kind: ActionKind, status: &AccountStatus, locked: bool, active: &[FactorKind]) -> bool {
    let gone = matches!(status, AccountStatus::Deprovisioned);
    let suspended = matches!(status, AccountStatus::Suspended | AccountStatus::Disabled);
    match kind {
        ActionKind::Unlock => locked,
        ActionKind::Unsuspend => suspended,
        ActionKind::Suspend => !suspended && !gone,
        ActionKind::ResetFactors | ActionKind::RemoveFactor => !active.is_empty() && !gone,
        _ => !gone,
    }
}

/// Most search results returned.
const SEARCH_LIMIT: usize = 20;

impl Engine {
    /// Searches for callers.
    ///
    /// # Errors
    /// Role, rate-limit, IdP and audit denials.
    pub async fn search(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        query: &UserQuery,
    ) -> Result<Vec<UserRecord>, Denial> {
        let c = Call::new(agent, ctx);
        self.authorize(&c, Permission::Lookup).await?;
        self.lookup_quota(&c).await?;
        let event = self.event(&c, EventKind::Lookup, Outcome::Success);
        self.read_audited(&c, event, self.ports.idp.find_users(query, SEARCH_LIMIT))
            .await
    }

    /// Builds the caller card: account, factors with assurance and acceptance, risk facts, and per action what
    /// policy requires. What the IdP says is read now (and kept for the next steps of the flow, within policy's
    /// `reuse_idp_reads_seconds`).
    ///
    /// # Errors
    /// Role, rate-limit, not-found, IdP and audit denials.
    pub async fn lookup(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
    ) -> Result<CallerCard, Denial> {
        self.card(agent, ctx, subject, false).await
    }

    /// The caller card again within one flow (a confirmation step before an action): like [`Engine::lookup`]
    /// (authorized, counted, audited), but it reuses what the IdP said within policy's reuse window instead of
    /// reading it again.
    ///
    /// # Errors
    /// As [`Engine::lookup`].
    pub async fn lookup_again(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
    ) -> Result<CallerCard, Denial> {
        self.card(agent, ctx, subject, true).await
    }

    async fn card(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
        reuse: bool,
    ) -> Result<CallerCard, Denial> {
        let target = self.pseudo.subject(subject);
        let c = Call::new(agent, ctx).about(target.clone());
        let role = self.authorize(&c, Permission::Lookup).await?;
        self.lookup_quota(&c).await?;
        let idp = &self.ports.idp;
        let event = self.event(&c, EventKind::Lookup, Outcome::Success);
        let (user, factors, groups, risk) = self
            .read_audited(&c, event, self.caller_facts(subject, reuse))
            .await?;
        let factors = self.with_sign_in_factor(factors);

        let caps = idp.capabilities();
        let class = self.policy.classify(&groups);
        let protected = self.policy.is_protected(&groups);
        let active_kinds: Vec<FactorKind> = factors
            .iter()
            .filter(|f| f.status == FactorStatus::Active)
            .map(|f| f.kind.clone())
            .collect();
        let locked = risk.locked_out || user.status == AccountStatus::LockedOut;
        let lock_rule = self.policy.locked_out();
        let unlock_first = locked && lock_rule.procedure == LockedOutProcedure::UnlockThenVerify;
        // Already unlocked before verification today (and locked again): the procedure is escalation now.
        let unlock_used_up = unlock_first && self.unlocks_used_up(&target).await;
        let unlock_first = unlock_first && !unlock_used_up;
        let recommended_factor = if protected || locked {
            None
        } else {
            self.policy
                .choose_factor(&FactorChoice::new(class, &caps, &factors), None)
                .ok()
                .map(|f| f.id.clone())
        };
        let factor_views = factors
            .into_iter()
            .map(|info| {
                let check = if info.status == FactorStatus::Active {
                    self.policy
                        .check_factor(class, &info.kind, &active_kinds, &caps)
                        .map_err(|r| r.reason())
                } else {
                    Err(Reason::FactorNotEnrolled)
                };
                FactorView {
                    assurance: assurance::classify(&info.kind).label(),
                    accepted: check.is_ok() && !protected && !locked,
                    refusal: if protected {
                        Some(Reason::ProtectedTarget)
                    } else if locked && check.is_ok() {
                        Some(Reason::CallerLockedOut)
                    } else {
                        check.err()
                    },
                    info,
                }
            })
            .collect();
        let grant = self.live_grant(&agent.pseudo, &target).await;
        let explained = self
            .explained
            .get_or_init(|| Explained::new(&self.policy, &caps));
        let actions = ActionKind::ALL
            .into_iter()
            .map(|kind| {
                let permitted = self.policy.permits(role, Permission::Act(kind));
                let supported = caps.actions.contains(&kind);
                let before_verification = kind == ActionKind::Unlock
                    && unlock_first
                    && permitted
                    && supported
                    && !protected;
                let available_now = before_verification
                    || (permitted
                        && supported
                        && !protected
                        && grant.as_ref().is_some_and(|g| g.actions.contains(&kind)));
                ActionView {
                    kind,
                    permitted_for_role: permitted,
                    supported,
                    available_now,
                    applies: applies(kind, &user.status, locked, &active_kinds),
                    before_verification,
                    explanation: explained.get(&self.policy, &caps, role, kind, class, protected),
                }
            })
            .collect();
        // The card's two warnings: limiter reads, side by side rather than one after the other.
        let (verified_by_another_recently, challenges_blocked_for) = futures::join!(
            self.verified_by_another_recently(&agent.pseudo, &target),
            self.challenge_wait(&target),
        );
        Ok(CallerCard {
            user,
            factors: factor_views,
            risk,
            class,
            protected,
            actions,
            grant,
            recommended_factor,
            locked_out: locked.then_some(if unlock_used_up {
                LockedOutProcedure::Escalate
            } else {
                lock_rule.procedure
            }),
            unlock_used_up,
            escalation: lock_rule.escalation.clone(),
            verified_by_another_recently,
            challenges_blocked_for,
        })
    }

    /// The agent's live grant for this caller, as shown on the card. A store that cannot be read shows none: the
    /// card is advice, and the action itself checks the grant again.
    async fn live_grant(&self, agent: &PseudoId, target: &PseudoId) -> Option<GrantView> {
        let g = self
            .ports
            .grants
            .find_grant(agent, target)
            .await
            .ok()
            .flatten()?;
        if self.now() >= g.expires_at {
            return None;
        }
        Some(grant_view(&Grant::from_store(g)))
    }

    /// Explains what an action on a caller would require and why, for this agent (or for a role by name, with
    /// no agent, from the command line).
    ///
    /// # Errors
    /// IdP denials when a subject is given and its groups cannot be read.
    pub async fn explain(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: Option<&SubjectId>,
        action: ActionKind,
    ) -> Result<Explanation, Denial> {
        let caps = self.ports.idp.capabilities();
        let (class, protected) = match subject {
            None => (TargetClass::Standard, false),
            Some(id) => {
                // About a real caller it says whether they are privileged or protected: a lookup, so it is
                // authorized, rate-limited and audited like one (no quiet oracle).
                let c = Call::new(agent, ctx)
                    .about(self.pseudo.subject(id))
                    .action(action);
                self.authorize(&c, Permission::Lookup).await?;
                self.lookup_quota(&c).await?;
                let event = self.event(&c, EventKind::Lookup, Outcome::Success);
                let groups = self.read_audited(&c, event, self.caller_groups(id)).await?;
                (
                    self.policy.classify(&groups),
                    self.policy.is_protected(&groups),
                )
            }
        };
        Ok(self
            .policy
            .explain(self.role_of(agent), action, class, protected, Some(&caps)))
    }
}
