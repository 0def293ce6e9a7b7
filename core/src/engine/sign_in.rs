//! Sign-in and the agent's session: groups to a role, sign-in and sign-out events, refusals decided at the edge,
//! and the policy announcement.

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use fctr_ports::{AgentId, AuditDetail, EventKind, Outcome, PortError, Reason};

impl Engine {
    /// Resolves an agent's role from their IdP groups, without auditing (for per-request bearer tokens).
    #[must_use]
    pub fn resolve_agent(&self, id: AgentId, groups: &[String]) -> Agent {
        let pseudo = self.pseudo.agent(&id);
        let role = self
            .policy
            .role_for_groups(groups)
            .map(|r| r.name().to_owned());
        Agent { id, pseudo, role }
    }

    /// Rebuilds an agent from a stored session (role name as resolved at sign-in). A role that policy no longer
    /// has resolves to none.
    #[must_use]
    pub fn restore_agent(&self, id: AgentId, role: Option<&str>) -> Agent {
        let pseudo = self.pseudo.agent(&id);
        let role = role
            .and_then(|r| self.policy.role(r))
            .map(|r| r.name().to_owned());
        Agent { id, pseudo, role }
    }

    /// Signs an agent in: maps groups to a role and audits the sign-in.
    ///
    /// # Errors
    /// [`Reason::NoRole`] when no role matches (audited), [`Reason::AuditUnavailable`].
    pub async fn sign_in(
        &self,
        id: AgentId,
        groups: &[String],
        ctx: &RequestContext,
    ) -> Result<Agent, Denial> {
        let agent = self.resolve_agent(id, groups);
        let c = Call::new(&agent, ctx);
        if agent.role.is_none() {
            return Err(self.deny(&c, Reason::NoRole).await);
        }
        self.must_append(&c, self.event(&c, EventKind::Login, Outcome::Success))
            .await?;
        Ok(agent)
    }

    /// Records a failed sign-in (bad state, nonce, token...) for an unknown agent.
    pub async fn sign_in_failed(&self, ctx: &RequestContext) {
        let b = self
            .system_event(EventKind::Login, Outcome::Failed, Some(ctx))
            .reason(Reason::AuthenticationFailed);
        self.record(b).await;
    }

    /// Audits a sign-out.
    pub async fn sign_out(&self, agent: &Agent, ctx: &RequestContext) {
        let c = Call::new(agent, ctx);
        self.record(self.event(&c, EventKind::Logout, Outcome::Success))
            .await;
    }

    /// Records the policy in force in the audit log (call at start and after a reload).
    ///
    /// # Errors
    /// [`PortError`] when the audit log cannot be written.
    pub async fn announce_policy(&self) -> Result<(), PortError> {
        let b = self
            .system_event(EventKind::PolicyLoaded, Outcome::Success, None)
            .detail(AuditDetail::Policy {
                digest: self.policy.source_digest().to_owned(),
            });
        self.ports.audit.append(b.build()).await.map(|_| ())
    }

    /// Audits an arbitrary refusal decided at the edge (CSRF, IP allow-list), so every 403 leaves a trace.
    pub async fn audit_edge_denial(
        &self,
        agent: Option<&Agent>,
        reason: Reason,
        ctx: &RequestContext,
    ) {
        // Always `denied`: the edge refused, whatever the reason's usual outcome.
        let b = match agent {
            Some(a) => self.event(&Call::new(a, ctx), EventKind::Denied, Outcome::Denied),
            None => self.system_event(EventKind::Denied, Outcome::Denied, Some(ctx)),
        };
        self.record(b.reason(reason)).await;
    }
}
