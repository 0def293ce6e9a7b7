//! The call context and the steps every use case shares: who is calling and about whom (the audit scope),
//! building and appending audit events, authorization, and audited refusals.

use super::{Agent, Engine, RequestContext};
use crate::audit::AuditBuilder;
use crate::denial::Denial;
use crate::policy::{Permission, Role, TargetClass};
use fctr_ports::{
    ActionKind, AuditDetail, EventKind, FactorKind, Outcome, PortError, PseudoId, Reason, SubjectId,
};
use std::sync::atomic::Ordering;

/// One use-case call: the agent, where the request came from, and what this call's audit events are about.
/// Every event and every refusal of the call is built from it, so none can forget the agent, the request id or
/// the client address.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    agent: &'a Agent,
    ctx: &'a RequestContext,
    target: Option<PseudoId>,
    factor: Option<FactorKind>,
    action: Option<ActionKind>,
}

impl<'a> Call<'a> {
    /// A call by `agent`, about no one yet.
    pub(crate) fn new(agent: &'a Agent, ctx: &'a RequestContext) -> Self {
        Self {
            agent,
            ctx,
            target: None,
            factor: None,
            action: None,
        }
    }

    /// The call is about this caller.
    pub(crate) fn about(mut self, target: PseudoId) -> Self {
        self.target = Some(target);
        self
    }

    /// The call is about this action.
    pub(crate) fn action(mut self, kind: ActionKind) -> Self {
        self.action = Some(kind);
        self
    }

    /// From now on the call is about this factor kind (once it is chosen or known).
    pub(crate) fn set_factor(&mut self, kind: Option<FactorKind>) {
        self.factor = kind;
    }

    /// The caller the call is about, once known.
    pub(crate) fn target(&self) -> Option<&PseudoId> {
        self.target.as_ref()
    }

    /// The agent.
    pub(crate) fn agent(&self) -> &'a Agent {
        self.agent
    }

    /// Where the request came from.
    pub(crate) fn ctx(&self) -> &'a RequestContext {
        self.ctx
    }
}

/// The outcome an event records for a refusal: the caller's wrong answer (or silence) is `rejected`, a failure of
/// the IdP or of our own stores `failed`, a rule's refusal `denied`.
pub(crate) fn outcome_of(reason: Reason) -> Outcome {
    match reason {
        Reason::ChallengeRejected
        | Reason::WrongCode
        | Reason::CodeReplayed
        | Reason::ChallengeTimedOut
        | Reason::SignInOtherUser
        | Reason::SignInStale
        | Reason::SignInNoMfa
        | Reason::SignInFailed => Outcome::Rejected,
        Reason::IdpError | Reason::AuditUnavailable => Outcome::Failed,
        Reason::ApprovalPending => Outcome::Pending,
        _ => Outcome::Denied,
    }
}

/// The reason for an IdP port error.
pub(crate) fn idp_reason(e: &PortError) -> Reason {
    match e {
        PortError::NotFound => Reason::TargetNotFound,
        PortError::Unsupported => Reason::Unsupported,
        PortError::RateLimited { .. } => Reason::RateLimited,
        PortError::AccountLocked => Reason::CallerLockedOut,
        _ => Reason::IdpError,
    }
}

/// The audit detail of an IdP port error: its stable code and HTTP status, nothing vendor-specific.
pub(crate) fn upstream_detail(e: &PortError) -> AuditDetail {
    let status = match e {
        PortError::Upstream { status, .. } => Some(*status),
        _ => None,
    };
    AuditDetail::Upstream {
        code: e.code().to_owned(),
        status,
    }
}

impl Engine {
    /// An event of this call.
    pub(crate) fn event(&self, c: &Call<'_>, kind: EventKind, outcome: Outcome) -> AuditBuilder {
        let mut b = self
            .system_event(kind, outcome, Some(c.ctx))
            .agent(&c.agent.pseudo);
        if let Some(t) = &c.target {
            b = b.target(t);
        }
        if let Some(f) = &c.factor {
            b = b.factor(f);
        }
        if let Some(a) = c.action {
            b = b.action(a);
        }
        b
    }

    /// An event with no agent (start-up, retention, a failed sign-in), with the request's id and address if any.
    pub(crate) fn system_event(
        &self,
        kind: EventKind,
        outcome: Outcome,
        ctx: Option<&RequestContext>,
    ) -> AuditBuilder {
        let b = AuditBuilder::new(self.tenant.clone(), self.now(), kind, outcome);
        match ctx {
            Some(ctx) => b
                .request(ctx.request_id.as_ref())
                .client_ip(ctx.client_ip)
                .ticket(ctx.ticket.as_ref()),
            None => b,
        }
    }

    /// Appends an event that must be durable before the caller proceeds.
    pub(crate) async fn must_append(&self, c: &Call<'_>, b: AuditBuilder) -> Result<(), Denial> {
        match self.ports.audit.append(b.build()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(self.deny(c, Reason::AuditUnavailable).await),
        }
    }

    /// Runs an IdP read while its audit event is appended, and returns what was read only when both are done: a
    /// read changes nothing, so its event need not come first, only before anything is shown. A failed read is
    /// refused as such (its refusal recorded after the event that it was asked for); a failed append refuses the
    /// request and nothing read is shown.
    pub(crate) async fn read_audited<T>(
        &self,
        c: &Call<'_>,
        b: AuditBuilder,
        read: impl std::future::Future<Output = Result<T, PortError>>,
    ) -> Result<T, Denial> {
        let (read, logged) = futures::join!(read, self.ports.audit.append(b.build()));
        let v = self.idp_or_deny(c, read).await?;
        if logged.is_err() {
            return Err(self.deny(c, Reason::AuditUnavailable).await);
        }
        Ok(v)
    }

    /// Appends an event after the fact. A failure cannot undo what happened, so it is not the request's error: it
    /// is counted ([`Engine::unrecorded_events`]) for metrics and readiness, and the store's own health checks
    /// report it.
    pub(crate) async fn record(&self, b: AuditBuilder) {
        if self.ports.audit.append(b.build()).await.is_err() {
            self.unrecorded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An IdP result, or its audited denial: the reason from the port error, its code as detail.
    pub(crate) async fn idp_or_deny<T>(
        &self,
        c: &Call<'_>,
        r: Result<T, PortError>,
    ) -> Result<T, Denial> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.deny_idp(c, idp_reason(&e), &e).await),
        }
    }

    /// Audits an IdP failure as a refusal for `reason`, with the port error's code as detail.
    pub(crate) async fn deny_idp(&self, c: &Call<'_>, reason: Reason, e: &PortError) -> Denial {
        self.deny_with(c, Denial::new(reason), Some(upstream_detail(e)))
            .await
    }

    /// Audits a refusal and returns it.
    pub(crate) async fn deny(&self, c: &Call<'_>, reason: Reason) -> Denial {
        self.deny_with(c, Denial::new(reason), None).await
    }

    /// Audits a refusal, with its detail, and returns it.
    pub(crate) async fn deny_with(
        &self,
        c: &Call<'_>,
        denial: Denial,
        detail: Option<AuditDetail>,
    ) -> Denial {
        let mut b = self
            .event(c, EventKind::Denied, outcome_of(denial.reason))
            .reason(denial.reason);
        if let Some(d) = detail {
            b = b.detail(d);
        }
        self.record(b).await;
        denial
    }

    /// The agent's role, if policy (still) has it.
    pub(crate) fn role_of(&self, agent: &Agent) -> Option<&Role> {
        agent.role.as_deref().and_then(|r| self.policy.role(r))
    }

    /// The agent's role, if it grants `permission`; otherwise an audited refusal.
    pub(crate) async fn authorize(
        &self,
        c: &Call<'_>,
        permission: Permission,
    ) -> Result<&Role, Denial> {
        let Some(role) = self.role_of(c.agent) else {
            return Err(self.deny(c, Reason::NoRole).await);
        };
        if !self.policy.permits(role, permission) {
            return Err(self.deny(c, Reason::NotPermittedForRole).await);
        }
        Ok(role)
    }

    /// Refuses an agent acting on their own account, unless policy allows it. Agent and caller pseudonyms share
    /// one namespace, so the agent's IdP id and the caller's compare through them.
    pub(crate) async fn refuse_self(
        &self,
        c: &Call<'_>,
        subject: &SubjectId,
    ) -> Result<(), Denial> {
        if !self.policy.allow_agent_self_actions() && self.pseudo.subject(subject) == c.agent.pseudo
        {
            return Err(self.deny(c, Reason::SelfAction).await);
        }
        Ok(())
    }

    /// The caller's class from their groups (read within the reuse window), refusing a protected caller.
    pub(crate) async fn unprotected_class(
        &self,
        c: &Call<'_>,
        subject: &SubjectId,
    ) -> Result<TargetClass, Denial> {
        let groups = self
            .idp_or_deny(c, self.caller_groups(subject).await)
            .await?;
        if self.policy.is_protected(&groups) {
            return Err(self.deny(c, Reason::ProtectedTarget).await);
        }
        Ok(self.policy.classify(&groups))
    }
}
