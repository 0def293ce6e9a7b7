//! The API's extractor, [`ApiAgent`]: a bearer token ([`super::bearer`]) or, for the portal's own pages, the
//! session cookie loaded exactly as the pages load it plus the one CSRF check on every non-GET request (token in
//! `X-CSRF-Token`). Rejections are the API's JSON envelope ([`ApiError`]) with the statuses the API has always
//! used: 401 `unauthenticated`, 403 `no_role` / `agent_role_revoked` / `csrf_rejected`, 429 `rate_limited`.

use crate::reply::ApiError;
use crate::session::Session;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use fctr_core::{Agent, Denial, RequestContext};
use fctr_ports::Reason;

/// The authenticated caller of the API.
pub struct ApiAgent {
    /// The agent (role as the IdP gave it at most a minute ago for bearers; as stored for sessions).
    pub(crate) agent: Agent,
    /// The audit context of the request.
    pub(crate) ctx: RequestContext,
    /// The portal session, when the caller is the portal's own pages.
    session: Option<Session>,
}

impl std::fmt::Debug for ApiAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiAgent")
            .field("agent", &self.agent.pseudonym())
            .finish_non_exhaustive()
    }
}

impl ApiAgent {
    /// The agent re-checked against the IdP before a high-risk action ([`super::role::for_action`]).
    pub(crate) async fn for_action(&self, st: &AppState) -> Result<Agent, ApiError> {
        super::role::for_action(st, &self.agent, self.session.as_ref(), &self.ctx)
            .await
            .map_err(ApiError::from)
    }
}

impl FromRequestParts<AppState> for ApiAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let ctx = crate::edge::request_context(parts);
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            let agent = super::bearer::agent(st, token.trim(), &ctx).await?;
            api_quota(st, &agent, &ctx).await?;
            return Ok(Self {
                agent,
                ctx,
                session: None,
            });
        }
        let loaded = super::session::load(st, &parts.headers, &ctx).await;
        if loaded.is_err() {
            st.engine()
                .audit_edge_denial(None, Reason::StateUnavailable, &ctx)
                .await;
        }
        let s = loaded
            .map_err(|_| ApiError::from(Denial::new(Reason::StateUnavailable)))?
            .ok_or_else(ApiError::unauthenticated)?;
        let agent = super::session::agent_of(st, &s);
        if parts.method != Method::GET {
            let token = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            super::csrf::check(st, &parts.headers, &s, &agent, token, &ctx).await?;
        }
        api_quota(st, &agent, &ctx).await?;
        Ok(Self {
            agent,
            ctx,
            session: Some(s),
        })
    }
}

/// The per-agent API quota (`[limits] api_per_agent_per_minute`): 429 with `Retry-After`, audited.
async fn api_quota(st: &AppState, agent: &Agent, ctx: &RequestContext) -> Result<(), ApiError> {
    let key =
        fctr_ports::RateKey::parse(format!("edge:api:agent:{}", agent.pseudonym().as_str())).ok();
    let limit = st.settings().edge.api_per_agent_per_minute;
    let Some(retry) =
        crate::edge::over_limit(st, key, limit, std::time::Duration::from_secs(60)).await
    else {
        return Ok(());
    };
    st.engine()
        .audit_edge_denial(Some(agent), Reason::RateLimited, ctx)
        .await;
    ::metrics::counter!("fctr_edge_denials_total", "reason" => "rate_limited").increment(1);
    let wait = chrono::Duration::from_std(retry).unwrap_or(chrono::Duration::MAX);
    Err(ApiError::from(Denial::after(Reason::RateLimited, wait)))
}
