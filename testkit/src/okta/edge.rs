//! The router and the layers every Okta route shares: request id, `Date`, per-bucket rate limits with
//! `X-Rate-Limit-*` headers, and fault injection.

use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::FakeOktaState;
use super::control;
use super::error::OktaError;
use super::util::random_id;
use super::{factors, logs, oauth, oidc, users};
use crate::server::edge::{self, EdgeErrors};
use crate::server::{control as fake, fault};

pub(crate) fn build_router(state: FakeOktaState) -> Router {
    let okta = Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oidc::discovery_oauth),
        )
        .route(
            "/oauth2/v1/authorize",
            get(oidc::authorize).post(oidc::authorize_submit),
        )
        .route("/oauth2/v1/token", post(oauth::token))
        .route("/oauth2/v1/keys", get(oidc::keys))
        .route(
            "/oauth2/v1/userinfo",
            get(oidc::userinfo).post(oidc::userinfo),
        )
        .route("/oauth2/v1/logout", get(oidc::logout))
        .route("/api/v1/logs", get(logs::list_logs))
        .route("/api/v1/users", get(users::list_users))
        .route("/api/v1/users/{id}", get(users::get_user))
        .route("/api/v1/users/{id}/groups", get(users::user_groups))
        .route(
            "/api/v1/users/{id}/sessions",
            axum::routing::delete(users::revoke_sessions),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/{action}",
            post(users::lifecycle),
        )
        .route("/api/v1/users/{id}/factors", get(factors::list_factors))
        .route(
            "/api/v1/users/{id}/factors/{factor_id}",
            get(factors::get_factor).delete(factors::delete_factor),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/verify",
            post(factors::verify),
        )
        .route(
            "/api/v1/users/{id}/factors/{factor_id}/transactions/{tx_id}",
            get(factors::poll),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), okta_edge))
        .fallback(not_found);

    let fake = fake::routes(post(control::phone_answer))
        .route("/_fake/plain-pushes", post(control::plain_pushes))
        .route("/_fake/console-change", post(logs::console_change));

    okta.merge(fake)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            common_headers,
        ))
        .with_state(state)
}

async fn not_found() -> Response {
    OktaError::new(
        StatusCode::NOT_FOUND,
        "E0000007",
        "Not found: Resource not found",
    )
    .into_response()
}

/// `X-Okta-Request-Id` and `Date` on every response.
async fn common_headers(State(st): State<FakeOktaState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&random_id(20)) {
        h.insert("x-okta-request-id", v);
    }
    let now = st.shared.now();
    let system = UNIX_EPOCH + Duration::from_secs(u64::try_from(now.timestamp()).unwrap_or(0));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(system)) {
        h.insert(header::DATE, v);
    }
    resp
}

fn set_rate_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset: i64) {
    h.insert("x-rate-limit-limit", HeaderValue::from(limit));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    h.insert("x-rate-limit-reset", HeaderValue::from(reset));
}

/// Okta's words for the gate's refusals: E0000047 with `X-Rate-Limit-*` headers, E0000009.
impl EdgeErrors for FakeOktaState {
    const MALFORMED_PREFIX: &'static str = "{\"id\":\"00u";

    fn rate_limited(&self, reset_after_secs: u64, now: i64, limit: u32) -> Response {
        let mut resp = OktaError::rate_limited().into_response();
        let reset = now + i64::try_from(reset_after_secs).unwrap_or(60);
        set_rate_headers(resp.headers_mut(), limit, 0, reset);
        resp
    }

    fn server_error(&self, status: StatusCode, marker: Option<String>) -> Response {
        let mut e = OktaError::internal(status);
        if let Some(marker) = marker {
            e = e.cause(marker);
        }
        e.into_response()
    }
}

/// Faults, then the per-bucket rate limit, then the handler.
async fn okta_edge(State(st): State<FakeOktaState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let kill = fault::conn_kill(&req);
    let quota = match edge::gate(&st.shared.core, &st, kill, &method, &template).await {
        Ok(quota) => quota,
        Err(refused) => return refused,
    };
    let mut resp = if quota.allowed {
        next.run(req).await
    } else {
        OktaError::rate_limited().into_response()
    };
    set_rate_headers(
        resp.headers_mut(),
        quota.limit,
        quota.remaining,
        quota.reset,
    );
    resp
}
