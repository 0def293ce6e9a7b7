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
use super::state::Bucket;
use super::{connector, control, graph, oidc, token};
use crate::common::fault::{self, Fault};
use crate::common::serve::ConnKill;

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
        .route(
            "/StrongAuthenticationService.svc/Connector/{op}",
            post(connector::handle),
        )
        // The legacy host's scripts copy a double slash verbatim.
        .route(
            "/StrongAuthenticationService.svc/Connector//{op}",
            post(connector::handle),
        )
        .route("/_fake/pushes", get(control::list_pushes))
        .route("/_fake/pushes/{session}/answer", post(control::answer_push))
        .route("/_fake/totp/{user}", get(control::totp_code))
        .route(
            "/_fake/faults",
            get(control::list_faults)
                .post(control::set_fault)
                .delete(control::clear_faults),
        )
        .route("/_fake/users/{user}/effects", get(control::effects))
        .route("/_fake/fixtures", get(control::fixtures))
        .route("/_fake/clock", post(control::clock))
        .route("/_fake/rate-limit", post(control::rate_limit))
        .route("/_fake/oidc/next-id-token", post(control::tweak))
        .route(
            "/_fake/phone",
            get(control::phone_page).post(control::phone_answer),
        )
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

/// Faults, then the per-route rate limit. `Some(response)` ends the request.
pub(crate) async fn graph_edge(
    st: &FakeEntraState,
    kill: Option<ConnKill>,
    method: &str,
    template: &str,
) -> Option<Response> {
    let hit = fault::take(&mut st.shared.lock().faults, method, template);
    match hit {
        None => {}
        Some(Fault::Latency { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::RateLimited { reset_after_secs }) => {
            return Some(GraphError::throttled(reset_after_secs.max(1)).into_response());
        }
        Some(Fault::ServerError { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(GraphError::server(status).into_response());
        }
        Some(Fault::MalformedJson) => {
            return Some(fault::malformed_json("{\"@odata.context\":\"https://gra"));
        }
        Some(Fault::DropConnection) => return Some(fault::dropped(kill).await),
    }
    let now = st.shared.now_secs();
    let mut inner = st.shared.lock();
    let limit = inner.rate_limit_per_minute;
    let b = inner
        .buckets
        .entry(format!("{method} {template}"))
        .or_insert(Bucket {
            window_start: now,
            used: 0,
        });
    if now >= b.window_start + 60 {
        b.window_start = now;
        b.used = 0;
    }
    if b.used >= limit {
        let wait = u64::try_from(b.window_start + 60 - now).unwrap_or(1).max(1);
        return Some(GraphError::throttled(wait).into_response());
    }
    b.used += 1;
    None
}
