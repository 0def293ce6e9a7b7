//! The one CSRF check, for the pages (form field `csrf`) and the API (header `X-CSRF-Token`) alike.

use crate::session::Session;
use crate::state::AppState;
use axum::http::HeaderMap;
use fctr_core::{Agent, Denial, RequestContext};
use fctr_ports::Reason;
use subtle::ConstantTimeEq as _;

/// Checks a state-changing request made with a session: the same-origin headers (the edge's own check,
/// [`crate::edge::same_origin`], with its `Origin: null` + `Sec-Fetch-Site: same-origin` allowance), then the
/// session's synchronizer token, compared in constant time. A refusal is logged, audited with the agent
/// (`csrf_rejected`) and returned for the caller to render (403).
pub(crate) async fn check(
    st: &AppState,
    headers: &HeaderMap,
    session: &Session,
    agent: &Agent,
    token: &str,
    ctx: &RequestContext,
) -> Result<(), Denial> {
    let origin_ok = crate::edge::same_origin(headers, &st.settings().origin());
    let token_ok = !token.is_empty() && bool::from(token.as_bytes().ct_eq(session.csrf.as_bytes()));
    if origin_ok && token_ok {
        return Ok(());
    }
    tracing::warn!(origin_ok, token_ok, "CSRF check failed");
    st.engine()
        .audit_edge_denial(Some(agent), Reason::CsrfRejected, ctx)
        .await;
    Err(Denial::new(Reason::CsrfRejected))
}
