//! Bearer-token callers of the API: an ID token from the configured issuer for this client (signature, `iss`,
//! `aud`, `exp`, and `amr` when `require_mfa` is set, all checked by [`crate::oidc::Oidc::verify_bearer`]),
//! verified once and then served from the [`crate::caches::BearerCache`] until the token's `exp` (at most five
//! minutes).

use crate::reply::ApiError;
use crate::state::AppState;
use chrono::Utc;
use fctr_core::{Agent, RequestContext};
use fctr_ports::{AgentId, Reason};

/// The agent a bearer token stands for, with the role the IdP gives now ([`super::role::for_bearer`]).
///
/// A token without the groups claim (a provider that releases groups only at userinfo) gets the role the
/// directory gives the agent now.
///
/// Refusals: `unauthenticated` for a token that does not verify (logged; a validly signed token that lacks MFA is
/// also audited as a failed sign-in), `no_role` when the groups map to no role, `agent_role_revoked`.
pub(crate) async fn agent(
    st: &AppState,
    token: &str,
    ctx: &RequestContext,
) -> Result<Agent, ApiError> {
    let now = Utc::now();
    let id = match st.0.bearers.get(token, now).await {
        Some(id) => id,
        None => {
            let id = match st.0.oidc.verify_bearer(token).await {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(error = %e, "API bearer token refused");
                    // A validly signed token that lacks MFA is a refused sign-in, audited like one at the browser
                    // callback. (Forged or malformed tokens are not: anyone can send those.)
                    if matches!(e, crate::oidc::OidcError::MfaRequired) {
                        st.engine().sign_in_failed(ctx).await;
                    }
                    return Err(ApiError::unauthenticated());
                }
            };
            st.0.bearers.put(token, &id, now).await;
            id
        }
    };
    let agent_id = AgentId::parse(id.subject).map_err(|_| ApiError::unauthenticated())?;
    let Some(groups) = id.groups else {
        // The token carries no groups claim (the provider releases it only at userinfo, which a bearer caller
        // has no access token for): the role is the one the directory gives now, or none.
        if !super::role::rechecks(st) {
            return Err(ApiError::reason(Reason::NoRole));
        }
        let roleless = st.engine().resolve_agent(agent_id, &[]);
        return match super::role::current(st, &roleless, ctx).await {
            Ok(a) => Ok(a),
            Err(d) if d.reason == Reason::IdpError || d.reason == Reason::StateUnavailable => {
                Err(d.into())
            }
            Err(_) => Err(ApiError::reason(Reason::NoRole)),
        };
    };
    let agent = st.engine().resolve_agent(agent_id, &groups);
    if agent.role().is_none() {
        return Err(ApiError::reason(Reason::NoRole));
    }
    Ok(super::role::for_bearer(st, agent, ctx).await?)
}
