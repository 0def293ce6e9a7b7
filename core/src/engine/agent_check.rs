//! Re-checking a signed-in agent's role against the IdP's current groups, so that removing an agent from their
//! group at the IdP takes effect in running sessions and on bearer tokens, not only at the next sign-in.
//!
//! The agent's id is their IdP user id (the portal takes Okta's `sub`, and Entra's `oid` since Entra's `sub` is
//! pairwise per application), so the same
//! [`fctr_ports::Directory::groups`] port that reads a caller's groups reads theirs. Groups map to roles exactly
//! as at sign-in ([`crate::policy::Policy::role_for_groups`]): a role's group entry matches a directory group by
//! its name (Okta's `groups` claim) or its id (Entra's `groups` claim carries object ids).
//!
//! The engine does not cache and does not decide when to re-check: the shell does (before every high-risk action,
//! and every few minutes of a session), with a short cache of its own.

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use fctr_ports::{PortError, Reason, SubjectId};

impl Engine {
    /// The agent with the role their current IdP groups give (a demoted agent comes back with the lower role).
    ///
    /// # Errors
    /// [`Reason::AgentRoleRevoked`] (audited) when the IdP gives the agent no role any more, or no longer knows
    /// them; [`Reason::IdpError`] (not audited: whether it refuses anything is the caller's choice, which must
    /// fail closed before a high-risk action) when the IdP cannot be read.
    pub async fn recheck_agent(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
    ) -> Result<Agent, Denial> {
        let s = Call::new(agent, ctx);
        let Ok(subject) = SubjectId::parse(agent.id.as_str()) else {
            return Err(self.deny(&s, Reason::AgentRoleRevoked).await);
        };
        let groups = match self.ports.idp.groups(&subject).await {
            Ok(g) => g,
            Err(PortError::NotFound) => return Err(self.deny(&s, Reason::AgentRoleRevoked).await),
            Err(_) => return Err(Denial::new(Reason::IdpError)),
        };
        let names: Vec<String> = groups.into_iter().flat_map(|g| [g.id, g.name]).collect();
        let fresh = self.resolve_agent(agent.id.clone(), &names);
        if fresh.role.is_none() {
            return Err(self.deny(&s, Reason::AgentRoleRevoked).await);
        }
        Ok(fresh)
    }
}
