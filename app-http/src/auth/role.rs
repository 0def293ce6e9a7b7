//! The agent's role as the IdP says now.
//!
//! The role an agent signed in with is not trusted for the life of the session. It is re-checked against the
//! agent's current groups, read from the IdP through the `Directory::groups` port
//! ([`fctr_core::Engine::recheck_agent`]):
//!
//! - before every high-risk action (begin a verification, run an action), on the pages and the API, for session
//!   and bearer callers alike: if the IdP cannot be read, the action is refused (`idp_error`, audited): fail
//!   closed;
//! - on any request of a session whose last check is older than [`ROLE_RECHECK_EVERY`], and on every bearer
//!   request: if the IdP cannot be read, a mere page view (or read-only API call) keeps the previous role, and the
//!   check is tried again on the next request;
//! - results are cached in memory for at most [`ROLE_CACHE_TTL`] per agent (only roles found, never a refusal or a
//!   failure), so a busy agent costs one IdP read a minute.
//!
//! A demoted agent gets the lower role (stored in the session); an agent the IdP no longer gives a role loses the
//! session (removed from the store) and the refusal is audited (`agent_role_revoked`).
//!
//! Exception: when the role comes from Entra app roles (`[sign_in] groups_claim = "roles"`), the directory port
//! does not read app-role assignments, so no re-check is made (the role stands until the session ends).

use crate::session::Session;
use crate::state::AppState;
use fctr_core::{Agent, Denial, RequestContext};
use fctr_ports::Reason;

/// How often a session's role is re-checked against the IdP, at least.
pub const ROLE_RECHECK_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
pub use crate::caches::ROLE_CACHE_TTL;

/// Whether roles can be re-checked through the directory: not when they come from Entra app roles.
pub(super) fn rechecks(st: &AppState) -> bool {
    st.0.oidc.settings().groups_claim != "roles"
}

/// The agent with the role the IdP gives now (cached at most [`ROLE_CACHE_TTL`]). Errors: `agent_role_revoked`
/// (audited by the engine), or the IdP failure (not audited here).
pub(super) async fn current(
    st: &AppState,
    agent: &Agent,
    ctx: &RequestContext,
) -> Result<Agent, Denial> {
    let now = st.0.clock.now();
    if let Some(role) = st.0.roles.get(agent, now).await {
        return Ok(st.engine().restore_agent(agent.id().clone(), Some(&role)));
    }
    let fresh = st.engine().recheck_agent(agent, ctx).await?;
    st.0.roles.put(&fresh, now).await;
    Ok(fresh)
}

/// The agent, re-checked before a high-risk action. Fails closed: an IdP that cannot be read refuses the action
/// (audited). With a session, the role found is stored, or the session removed when the role is revoked.
pub(crate) async fn for_action(
    st: &AppState,
    agent: &Agent,
    session: Option<&Session>,
    ctx: &RequestContext,
) -> Result<Agent, Denial> {
    if !rechecks(st) {
        return Ok(agent.clone());
    }
    let now = st.0.clock.now();
    match current(st, agent, ctx).await {
        Ok(a) => {
            if let Some(s) = session {
                if st
                    .sessions()
                    .set_role(&s.id, a.role().map(str::to_owned), now)
                    .await
                    .is_err()
                {
                    tracing::warn!("session store: re-checked role not stored");
                }
            }
            Ok(a)
        }
        Err(d) if d.reason == Reason::AgentRoleRevoked => {
            if let Some(s) = session {
                if st.sessions().remove(&s.id).await.is_err() {
                    // Refused either way; the next request re-checks and removes it again.
                    tracing::warn!("session store: revoked agent's session not removed");
                }
            }
            Err(d)
        }
        Err(d) => {
            st.engine()
                .audit_edge_denial(Some(agent), d.reason, ctx)
                .await;
            Err(d)
        }
    }
}

/// The agent of a bearer token, re-checked (cached): a revoked agent is refused; an IdP that cannot be read leaves
/// the token's role for a read (high-risk actions check again with [`for_action`]).
pub(crate) async fn for_bearer(
    st: &AppState,
    agent: Agent,
    ctx: &RequestContext,
) -> Result<Agent, Denial> {
    if !rechecks(st) {
        return Ok(agent);
    }
    match current(st, &agent, ctx).await {
        Ok(a) => Ok(a),
        Err(d) if d.reason == Reason::AgentRoleRevoked => Err(d),
        Err(_) => Ok(agent),
    }
}
