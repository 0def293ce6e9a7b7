//! Operations endpoints: liveness, readiness, Prometheus metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fctr_ports::{AuditQuery, UserQuery};
use std::time::Duration;

/// How long a readiness answer is reused (the probe costs an IdP call).
const READY_CACHE: Duration = Duration::from_secs(5);

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// `GET /readyz`: the IdP answers a cheap search, the audit log can be read and the shared state store (memory or
/// Redis) answers. A replica that cannot reach Redis or PostgreSQL is taken out of the load balancer's rotation and
/// comes back by itself when they do (the answer is cached for a few seconds only).
pub async fn readyz(State(st): State<AppState>) -> Response {
    let mut cache = st.0.ready_cache.lock().await;
    let ok = match *cache {
        Some((at, ok)) if at.elapsed() < READY_CACHE => ok,
        _ => {
            let idp_ok = match UserQuery::login("fctr-readiness-probe@invalid.example") {
                Ok(q) => tokio::time::timeout(Duration::from_secs(5), st.0.idp.find_users(&q, 1))
                    .await
                    .is_ok_and(|r| r.is_ok()),
                Err(_) => false,
            };
            let q = AuditQuery {
                limit: Some(1),
                ..AuditQuery::default()
            };
            let audit_ok = tokio::time::timeout(Duration::from_secs(5), st.0.audit.read(&q))
                .await
                .is_ok_and(|r| r.is_ok());
            let state_ok = tokio::time::timeout(Duration::from_secs(5), st.0.shared.ready())
                .await
                .unwrap_or(false);
            if !idp_ok || !audit_ok || !state_ok {
                tracing::warn!(idp_ok, audit_ok, state_ok, "not ready");
            }
            let ok = idp_ok && audit_ok && state_ok;
            *cache = Some((tokio::time::Instant::now(), ok));
            ok
        }
    };
    if ok {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> Response {
    let live = st.sessions().len().await.unwrap_or(0);
    ::metrics::gauge!("fctr_sessions").set(f64::from(u32::try_from(live).unwrap_or(u32::MAX)));
    ::metrics::gauge!("fctr_pollers_running").set(f64::from(
        u32::try_from(st.polls().running()).unwrap_or(u32::MAX),
    ));
    let body = crate::metrics::handle()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
