//! # fctr-portal: the agent portal and JSON API
//!
//! A thin axum shell over [`fctr_core::Engine`]: it parses input, calls the engine, and renders the result.
//! Every decision (role, policy, grant, rate limit) is the engine's; the portal adds what only the edge can do:
//! agent sign-in (OIDC code + PKCE + state + nonce via `openidconnect`), server-side sessions with idle and
//! absolute timeouts, CSRF defence, security headers, one poller per pending challenge behind server-sent events,
//! the JSON API with its OpenAPI document, and operations endpoints.
//!
//! The network edge ([`edge`], [`tls`]) is on by default: TLS 1.2+ when the portal terminates TLS, plain HTTP
//! only on loopback or behind a declared proxy, an IP allow-list (loopback and private ranges unless configured),
//! `X-Forwarded-For` only from trusted proxies, per-IP sign-in and per-agent API rate limits, cross-site refusal
//! of state-changing requests, strict API content types, body and time limits, and secure headers on every
//! response. `docs/security-model.md` maps each control to the test that proves it.
//!
//! [`router`] builds the whole application from an [`AppState`], separately from serving, so tests call it
//! in-process. [`startup::from_config`] builds the production state from the configuration file (on the stack
//! [`fctr_wiring`] builds, shared with the CLI). With the `demo` feature (on by default), `demo::start_demo`
//! builds a complete demo stack (fake Okta in-process) with no configuration; `--no-default-features` is the
//! production build, which contains no fake IdP.
#![forbid(unsafe_code)]
// Handlers return full responses as the error of `Result` (a sign-in page, a refusal page): boxing them buys
// nothing on the request path.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod auth;
pub mod caches;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod edge;
mod egress;
pub(crate) mod input;
pub mod logfiles;
pub mod metrics;
pub mod net;
pub mod oidc;
pub mod ops;
pub mod poller;
pub mod reply;
pub mod session;
pub mod startup;
pub mod state;
pub mod tls;
pub(crate) mod web;

pub use state::{AppState, DemoInfo, Settings, StateParts};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// The Content-Security-Policy on every response.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; \
form-action 'self'; base-uri 'none'; object-src 'none'";

const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");

/// The API's error envelope on `/api/` paths ([`reply::envelope_errors`]), then secure headers on every response,
/// including 404s and errors. Everything but static assets is `no-store`: pages carry caller data, and API answers
/// may carry one-time secrets. One middleware for both (they were two adjacent layers, each a boxed future per
/// request).
async fn secure_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = reply::envelope_errors(req, next).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if is_static {
        set(h, header::CACHE_CONTROL, "no-cache");
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// A request id the client sent that parses as a UUID: logged as `client_request_id` (for correlating with the
/// client's own logs), never used as the request id.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequestId(pub uuid::Uuid);

/// The request id is the server's: whatever `X-Request-Id` the client sent is dropped before the request id layer
/// makes a fresh UUID, so a client cannot choose what goes into the audit chain, the logs or the exports. An
/// inbound value that parses as a UUID is kept aside as [`ClientRequestId`]; anything else is discarded unread.
async fn server_request_id(mut req: Request, next: Next) -> Response {
    let inbound = req.headers_mut().remove("x-request-id").and_then(|v| {
        v.to_str()
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
    });
    // A repeated header: drop every copy.
    while req.headers_mut().remove("x-request-id").is_some() {}
    if let Some(id) = inbound {
        req.extensions_mut().insert(ClientRequestId(id));
    }
    next.run(req).await
}

/// Request count and latency by route template (never the raw path: it may hold ids). Called by the edge
/// middleware ([`edge::guard`]) around everything it lets through, so requests it refuses are not counted here
/// (they are in `fctr_edge_denials_total`).
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    ::metrics::counter!("fctr_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    ::metrics::histogram!("fctr_http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

async fn app_js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
        .into_response()
}

async fn app_css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS).into_response()
}

/// The product icon (also the favicon), a static SVG with no script.
const FAVICON: &str = include_str!("../static/favicon.svg");

async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], FAVICON).into_response()
}

/// The whole application: pages, API, operations, static assets, with the middleware stack.
pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(web::search::home))
        .route("/auth/login", get(web::sign_in::login))
        .route("/auth/callback", get(web::sign_in::callback))
        .route("/auth/logout", post(web::sign_in::logout))
        .route("/link/callback", get(web::link::callback))
        .route("/link/{token}", get(web::link::show).post(web::link::open))
        .route("/link/{token}/decline", post(web::link::decline))
        .route(
            "/search",
            get(web::search::search_form).post(web::search::search_submit),
        )
        .route("/callers/{handle}", get(web::caller::caller))
        .route("/callers/{handle}/verify", post(web::verify::verify))
        .route(
            "/callers/{handle}/actions/{action}",
            post(web::actions::act).get(web::actions::act_get),
        )
        .route("/verifications/{id}", get(web::verify::verification))
        .route("/verifications/{id}/events", get(web::verify::events))
        .route("/verifications/{id}/code", post(web::verify::submit_code))
        .route("/verifications/{id}/not-me", post(web::verify::not_me))
        .route(
            "/verifications/{id}/continue",
            post(web::verify::continue_verification),
        )
        .route("/approvals", get(web::approvals::approvals))
        .route("/approvals/{id}/approve", post(web::approvals::approve))
        .route("/approvals/{id}/refuse", post(web::approvals::refuse))
        .route("/audit", get(web::audit::audit))
        .route("/audit/find", post(web::audit::find))
        .route("/audit/export.csv", get(web::audit::export_csv))
        .route("/audit/export.json", get(web::audit::export_json))
        .route("/audit/out-of-band", get(web::out_of_band::out_of_band))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
        .route("/static/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    let app = pages
        .merge(api::routes())
        .fallback(web::not_found)
        .with_state(state.clone());
    with_middleware(app, &state)
}

/// A panic in a handler becomes a generic 500 (with every secure header, like any other response); the panic
/// message is not sent.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal error\n").into_response()
}

/// The middleware stack [`router`] puts around the routes, outermost first: request id (always the server's
/// UUID, see [`ClientRequestId`]), sensitive-header
/// marking (so tracing never prints `Authorization`, `Cookie`, `Set-Cookie` or `X-CSRF-Token`), tracing, secure
/// headers and the API's error envelope on `/api/` paths (`reply::envelope_errors`, one middleware), panic to 500,
/// body limit, timeout, the network edge ([`edge`]: allow-list, proxies, sign-in rate limit, cross-site refusal,
/// API content types) with the request metrics inside it. Public so tests can put extra routes behind exactly
/// the same stack.
pub fn with_middleware(app: Router, state: &AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let edge_settings = &state.settings().edge;
    let sensitive_request: std::sync::Arc<[HeaderName]> = std::sync::Arc::new([
        header::AUTHORIZATION,
        header::COOKIE,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("x-csrf-token"),
    ]);
    app.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        edge::guard,
    ))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        edge_settings.request_timeout,
    ))
    .layer(tower_http::limit::RequestBodyLimitLayer::new(
        edge_settings.body_limit_bytes,
    ))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        panic_response,
    ))
    // Outside the panic handler, the body limit, the timeout and the edge, so their answers on /api/ paths
    // are the JSON error envelope too (and carry the secure headers).
    .layer(axum::middleware::from_fn(secure_headers))
    .layer(
        tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let client = req
                .extensions()
                .get::<ClientRequestId>()
                .map(|c| c.0.to_string());
            tracing::info_span!(
                "request",
                method = %req.method(),
                route,
                request_id = id,
                client_request_id = client
            )
        }),
    )
    .layer(
        tower_http::sensitive_headers::SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]),
    )
    .layer(
        tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::from_shared(
            sensitive_request,
        ),
    )
    .layer(PropagateRequestIdLayer::new(request_id.clone()))
    .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
    .layer(axum::middleware::from_fn(server_request_id))
}
