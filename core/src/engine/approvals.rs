//! Four-eyes approval (`[four_eyes]` in policy): an action that policy holds back waits for a second agent.
//!
//! - [`Engine::perform_action`] calls the gate here when policy holds (action, target class) back. With a live
//!   grant and no approval yet, it records a request bound to (agent, caller, action, grant), audits
//!   `approval_requested`, and answers [`Reason::ApprovalPending`] with the request's id ([`Denial::approval`]).
//!   Asked again while the request waits, it answers the same. Once approved, the request is taken (single use,
//!   one atomic step in the store) and the action runs under the same grant, which is then consumed as usual.
//! - [`Engine::pending_approvals`] is the approvers' queue; [`Engine::decide_approval`] approves or refuses, by
//!   compare-and-set in the store (two approvers at once: exactly one decision), audited as `approval_decided`.
//!   Never the requesting agent, never the caller; only the roles policy names. A refusal revokes the grant.
//!
//! Nothing about the caller is kept beyond the short-lived store's TTL: the record holds the caller's IdP id (like
//! a verification record) and the queue reads the name from the IdP when it is shown.

use super::call::Call;
use super::{Agent, Engine, RECORD_GRACE, RequestContext, store_ttl};
use crate::denial::Denial;
use crate::policy::TargetClass;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, ApprovalDecision, ApprovalId, ApprovalRecord, ApprovalStatus, ApprovalStore,
    AuditDetail, DecideOutcome, EventKind, FactorId, FactorKind, GrantRecord, Outcome, Pii,
    PseudoId, Reason, SubjectId, TakeOutcome,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A pending approval request, as an approver sees it in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalView {
    /// Its id (for the approve and refuse requests).
    pub id: ApprovalId,
    /// The action asked for.
    pub action: ActionKind,
    /// The caller's class when it was asked for.
    pub class: TargetClass,
    /// The factor kinds that verified the caller.
    pub factors: Vec<FactorKind>,
    /// When the caller was verified.
    pub verified_at: DateTime<Utc>,
    /// The requesting agent's display name, as the IdP gave it at their sign-in (may be empty).
    pub requested_by: String,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the request lapses.
    pub expires_at: DateTime<Utc>,
    /// The caller's display name, read from the IdP now (what the portal shows an agent who looks them up);
    /// `None` when the IdP has none or could not be read.
    pub caller: Option<Pii>,
}

/// The outcome of a decision, for the deciding agent's page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalDecided {
    /// The request.
    pub id: ApprovalId,
    /// Whether it was approved (`false`: refused).
    pub approved: bool,
    /// The action it was about.
    pub action: ActionKind,
}

/// Most characters of an agent's display name an approval request keeps.
const MAX_AGENT_NAME: usize = 80;

/// Characters that change how text is laid out without being seen (bidirectional overrides and isolates,
/// zero-width characters): a name shown to a second agent must read as what it is.
fn invisible(ch: char) -> bool {
    ch.is_control()
        || matches!(ch, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

impl Engine {
    /// The agent's display name as the IdP gives it now (read from the directory by the agent's id; the login when
    /// it has no display name), without invisible layout characters and at most 80 characters: what a second
    /// agent and a ticket are told about who asked. Never a value the agent's browser sent (a cookie could say
    /// anything). Empty when the IdP cannot say.
    pub async fn agent_display_name(&self, agent: &Agent) -> String {
        let Ok(id) = SubjectId::parse(agent.id().as_str()) else {
            return String::new();
        };
        let Ok(user) = self.ports.idp.get_user(&id).await else {
            return String::new();
        };
        let shown = user
            .display_name
            .as_ref()
            .map_or_else(|| user.login.expose_pii(), |n| n.expose_pii());
        shown
            .chars()
            .filter(|ch| !invisible(*ch))
            .take(MAX_AGENT_NAME)
            .collect()
    }
}

impl Engine {
    /// The approval store, or a refusal: a policy that holds actions back cannot run without one (fail closed).
    async fn approval_store(&self, c: &Call<'_>) -> Result<&Arc<dyn ApprovalStore>, Denial> {
        match &self.approvals {
            Some(s) => Ok(s),
            None => Err(self.deny(c, Reason::StateUnavailable).await),
        }
    }

    /// The four-eyes gate of [`Engine::perform_action`], for an action policy holds back on this class of caller.
    /// `Ok(record)`: an approval for this agent, caller, action and live grant was taken (spent) and the action
    /// may run under that grant. Otherwise the request waits ([`Reason::ApprovalPending`], a new request recorded
    /// and audited if none was waiting) or is refused.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn four_eyes_gate(
        &self,
        c: &Call<'_>,
        subject: &SubjectId,
        target: &PseudoId,
        kind: ActionKind,
        class: TargetClass,
        factor: Option<&FactorId>,
    ) -> Result<ApprovalRecord, Denial> {
        let store = self.approval_store(c).await?;
        let agent = c.agent();
        let now = self.now();
        // A request needs a live grant covering the action (read, not spent: the action spends it once approved).
        let grant = match self.ports.grants.find_grant(&agent.pseudo, target).await {
            Ok(Some(g)) => g,
            Ok(None) => return Err(self.deny(c, Reason::NoLiveGrant).await),
            Err(_) => return Err(self.deny(c, Reason::StateUnavailable).await),
        };
        if grant.expires_at <= now {
            return Err(self.deny(c, Reason::GrantExpired).await);
        }
        if !grant.actions.contains(&kind) {
            return Err(self.deny(c, Reason::GrantDoesNotCoverAction).await);
        }
        let found = match store.find(&self.tenant, &agent.pseudo, target, kind).await {
            Ok(f) => f,
            Err(_) => return Err(self.deny(c, Reason::StateUnavailable).await),
        };
        if let Some(r) = found.filter(|r| {
            r.grant == grant.id
                && r.agent == agent.pseudo
                && r.subject_pseudo == *target
                && r.action == kind
                && r.factor.as_ref() == factor
                && r.tenant == self.tenant
        }) {
            let live = r.expires_at > now;
            match r.status {
                ApprovalStatus::Approved if live => {
                    return match store.take(&self.tenant, r.id, now).await {
                        Ok(TakeOutcome::Taken(taken)) => Ok(*taken),
                        Ok(TakeOutcome::Expired) => {
                            Err(self.deny(c, Reason::ApprovalExpired).await)
                        }
                        Ok(TakeOutcome::Missing) => {
                            Err(self.deny(c, Reason::ApprovalNotFound).await)
                        }
                        Ok(_) => Err(self.deny(c, Reason::ApprovalAlreadyDecided).await),
                        Err(_) => Err(self.deny(c, Reason::StateUnavailable).await),
                    };
                }
                ApprovalStatus::Pending if live => {
                    return Err(self
                        .deny_with(
                            c,
                            Denial::pending_approval(r.id),
                            Some(approval_detail(&r, None)),
                        )
                        .await);
                }
                ApprovalStatus::Refused => return Err(self.deny(c, Reason::ApprovalRefused).await),
                ApprovalStatus::Used => return Err(self.deny(c, Reason::GrantUsed).await),
                // Lapsed (pending or approved): a new request under the same live grant.
                _ => {}
            }
        }
        let expires_at = now + self.policy.four_eyes().request_ttl();
        let name = self.agent_display_name(agent).await;
        let record = ApprovalRecord {
            id: ApprovalId::random(),
            tenant: self.tenant.clone(),
            agent: agent.pseudo.clone(),
            agent_name: name,
            factor: factor.cloned(),
            subject: subject.clone(),
            subject_pseudo: target.clone(),
            action: kind,
            privileged: class == TargetClass::Privileged,
            grant: grant.id,
            verification: grant.verification,
            factors: grant.factors.clone(),
            verified_at: grant.issued_at,
            created_at: now,
            expires_at,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
        };
        // Audited before it exists: no event, no request.
        let event = self
            .event(c, EventKind::ApprovalRequested, Outcome::Pending)
            .reason(Reason::ApprovalPending)
            .detail(approval_detail(&record, None));
        self.must_append(c, event).await?;
        match store.put(&record, store_ttl(expires_at - now)).await {
            Ok(true) => Err(Denial::pending_approval(record.id)),
            Ok(false) | Err(_) => Err(self.deny(c, Reason::StateUnavailable).await),
        }
    }

    /// The agent's role, if policy lets it decide approval requests; otherwise an audited refusal.
    async fn authorize_approver(&self, c: &Call<'_>) -> Result<(), Denial> {
        let Some(role) = self.role_of(c.agent()) else {
            return Err(self.deny(c, Reason::NoRole).await);
        };
        if !self.policy.four_eyes().may_approve(role.name()) {
            return Err(self.deny(c, Reason::NotPermittedForRole).await);
        }
        Ok(())
    }

    /// The approvals queue: the tenant's pending, unexpired requests that `approver` may decide (their own
    /// requests and requests about themselves are left out), oldest first, with the caller's name read from the
    /// IdP. Each caller shown is audited as a `lookup` by the approver.
    ///
    /// # Errors
    /// [`Reason::NoRole`] or [`Reason::NotPermittedForRole`] for an agent whose role policy does not name in
    /// `four_eyes.approver_roles` (audited); [`Reason::StateUnavailable`].
    pub async fn pending_approvals(
        &self,
        approver: &Agent,
        ctx: &RequestContext,
    ) -> Result<Vec<ApprovalView>, Denial> {
        let c = Call::new(approver, ctx);
        self.authorize_approver(&c).await?;
        let store = self.approval_store(&c).await?;
        let now = self.now();
        let mut records = match store.pending(&self.tenant).await {
            Ok(r) => r,
            Err(_) => return Err(self.deny(&c, Reason::StateUnavailable).await),
        };
        records.retain(|r| {
            r.status == ApprovalStatus::Pending
                && r.expires_at > now
                && r.tenant == self.tenant
                && r.agent != approver.pseudo
                && r.subject_pseudo != approver.pseudo
        });
        records.sort_by_key(|r| r.created_at);
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let caller = self
                .read_fact(&r.subject, true, self.ports.idp.get_user(&r.subject))
                .await
                .ok()
                .and_then(|u| u.display_name);
            // Showing the caller's name is a lookup by the approver, audited as one (pseudonyms only).
            if caller.is_some() {
                let about = c.clone().about(r.subject_pseudo.clone());
                self.record(self.event(&about, EventKind::Lookup, Outcome::Success))
                    .await;
            }
            out.push(ApprovalView {
                id: r.id,
                action: r.action,
                class: if r.privileged {
                    TargetClass::Privileged
                } else {
                    TargetClass::Standard
                },
                factors: r.factors,
                verified_at: r.verified_at,
                requested_by: r.agent_name,
                requested_at: r.created_at,
                expires_at: r.expires_at,
                caller,
            });
        }
        Ok(out)
    }

    /// A second agent approves (`approve = true`) or refuses a pending request. The decision is one
    /// compare-and-set in the store: of two approvers at once exactly one decides, the other is told
    /// [`Reason::ApprovalAlreadyDecided`]. Audited as `approval_decided` (`success` approved, `rejected` refused).
    /// A refusal revokes the request's grant, so nothing can run under it. An approval whose event cannot be
    /// written is spent again at once (fail closed).
    ///
    /// # Errors
    /// [`Reason::NoRole`], [`Reason::NotPermittedForRole`] (not an approver role), [`Reason::ApprovalNotFound`],
    /// [`Reason::SelfApproval`] (the requesting agent, or the caller themselves), [`Reason::ApprovalExpired`],
    /// [`Reason::ApprovalAlreadyDecided`], [`Reason::StateUnavailable`], [`Reason::AuditUnavailable`]; every one
    /// audited.
    pub async fn decide_approval(
        &self,
        approver: &Agent,
        ctx: &RequestContext,
        id: ApprovalId,
        approve: bool,
    ) -> Result<ApprovalDecided, Denial> {
        let c = Call::new(approver, ctx);
        self.authorize_approver(&c).await?;
        let store = self.approval_store(&c).await?;
        let record = match store.get(&self.tenant, id).await {
            Ok(Some(r)) if r.tenant == self.tenant => r,
            Ok(_) => return Err(self.deny(&c, Reason::ApprovalNotFound).await),
            Err(_) => return Err(self.deny(&c, Reason::StateUnavailable).await),
        };
        let c = c.about(record.subject_pseudo.clone()).action(record.action);
        if record.agent == approver.pseudo || record.subject_pseudo == approver.pseudo {
            return Err(self.deny(&c, Reason::SelfApproval).await);
        }
        let now = self.now();
        let decision = ApprovalDecision {
            approve,
            by: approver.pseudo.clone(),
            at: now,
        };
        let decided = match store.decide(&self.tenant, id, &decision, now).await {
            Ok(DecideOutcome::Decided(r)) => *r,
            Ok(DecideOutcome::Expired) => return Err(self.deny(&c, Reason::ApprovalExpired).await),
            Ok(DecideOutcome::Missing) => {
                return Err(self.deny(&c, Reason::ApprovalNotFound).await);
            }
            Ok(_) => return Err(self.deny(&c, Reason::ApprovalAlreadyDecided).await),
            Err(_) => return Err(self.deny(&c, Reason::StateUnavailable).await),
        };
        let detail = approval_detail(&decided, Some(&decided.agent));
        let mut event = self
            .event(
                &c,
                EventKind::ApprovalDecided,
                if approve {
                    Outcome::Success
                } else {
                    Outcome::Rejected
                },
            )
            .detail(detail);
        if !approve {
            event = event.reason(Reason::ApprovalRefused);
            self.revoke_grant(&decided, now).await;
            self.record(event).await;
        } else if self.ports.audit.append(event.build()).await.is_err() {
            // An approval nobody can see in the audit log must not be usable: spend it again.
            let _ = store.take(&self.tenant, id, now).await;
            return Err(self.deny(&c, Reason::AuditUnavailable).await);
        }
        Ok(ApprovalDecided {
            id,
            approved: approve,
            action: decided.action,
        })
    }

    /// Revokes the grant a refused request was bound to (only if the store still holds that grant): it is replaced
    /// by an expired copy that covers nothing, so every later action is refused as `grant_expired`.
    async fn revoke_grant(&self, r: &ApprovalRecord, now: DateTime<Utc>) {
        if let Ok(Some(g)) = self
            .ports
            .grants
            .find_grant(&r.agent, &r.subject_pseudo)
            .await
        {
            if g.id == r.grant {
                let dead = GrantRecord {
                    actions: BTreeSet::new(),
                    expires_at: now,
                    ..g
                };
                // Best effort beyond this point: the refused approval itself can never be used.
                let _ = self.ports.grants.put_grant(&dead, RECORD_GRACE).await;
            }
        }
    }
}

/// The audit detail of an approval request: its id, and on a decision the requesting agent.
fn approval_detail(r: &ApprovalRecord, requested_by: Option<&PseudoId>) -> AuditDetail {
    AuditDetail::Approval {
        approval_id: r.id.as_uuid(),
        requested_by: requested_by.cloned(),
    }
}
