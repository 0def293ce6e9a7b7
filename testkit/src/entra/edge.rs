//! The router, the headers every response carries (`request-id`, `client-request-id`, `Date`), and the Graph
//! edge: fault injection and per-route throttling (429 `TooManyRequests` with `Retry-After`).

use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use super::FakeEntraState;
use super::error::{GraphError, uuid_v4};
use super::{connector, control, graph, oidc, token};
use crate::server::control as fake;
use crate::server::edge::{self, EdgeErrors};
use crate::server::serve::ConnKill;

pub(crate) fn build_router(state: FakeEntraState) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token_v2))
        .route("/{tenant}/oauth2/token", post(token::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(oidc::discovery),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(oidc::authorize).post(oidc::authorize_submit),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(oidc::keys))
        .route("/oidc/userinfo", get(oidc::userinfo))
        .route("/v1.0/{*rest}", any(graph::dispatch))
        .route("/beta/{*rest}", any(graph::dispatch_beta))
        .route(
            "/StrongAuthenticationService.svc/Connector/{op}",
            post(connector::handle),
        )
        // The legacy host's scripts copy a double slash verbatim.
        .route(
            "/StrongAuthenticationService.svc/Connector//{op}",
            post(connector::handle),
        )
        .merge(fake::routes(post(control::phone_answer)))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            common_headers,
        ))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("No route for '{}'.", req.uri().path()),
    )
    .into_response()
}

/// `request-id` and `Date` on every response (Graph echoes `client-request-id` itself).
async fn common_headers(State(st): State<FakeEntraState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&uuid_v4()) {
        h.insert("request-id", v);
    }
    let now = st.shared.now();
    let system = UNIX_EPOCH + Duration::from_secs(u64::try_from(now.timestamp()).unwrap_or(0));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(system)) {
        h.insert(header::DATE, v);
    }
    resp
}

/// Graph's words for the gate's refusals: 429 `TooManyRequests` with `Retry-After`, `generalException` /
/// `serviceNotAvailable`.
impl EdgeErrors for FakeEntraState {
    const MALFORMED_PREFIX: &'static str = "{\"@odata.context\":\"https://gra";

    fn rate_limited(&self, reset_after_secs: u64, _now: i64, _limit: u32) -> Response {
        GraphError::throttled(reset_after_secs.max(1)).into_response()
    }

    fn server_error(&self, status: StatusCode, _marker: Option<String>) -> Response {
        GraphError::server(status).into_response()
    }
}

/// Faults, then the per-route rate limit. `Some(response)` ends the request.
pub(crate) async fn graph_edge(
    st: &FakeEntraState,
    kill: Option<ConnKill>,
    method: &str,
    template: &str,
) -> Option<Response> {
    match edge::gate(&st.shared.core, st, kill, method, template).await {
        Err(refused) => Some(refused),
        Ok(quota) if !quota.allowed => {
            let now = st.shared.now_secs();
            Some(GraphError::throttled(quota.retry_after(now)).into_response())
        }
        Ok(_) => None,
    }
}
