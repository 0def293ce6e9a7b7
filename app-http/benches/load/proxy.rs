//! Load benchmark: the bare proxy, a reference for phase (a)'s closed loop.
//!
//! The closed loop compares the portal with a client that sends the fake the same upstream requests itself. The
//! portal cannot do less than a proxy does: take one request in, send those requests out over a pooled HTTP client,
//! read the answers and send one body back. This is that proxy and nothing more (no bearer check, rate limit,
//! policy, audit append or card), on the portal's runtime, so the closed loop can print how far the HTTP hops alone
//! stand from the direct baseline on this machine, and how far the portal stands from them.

use super::*;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

struct Proxy {
    client: reqwest::Client,
    fake_base: String,
    ssws: String,
    /// The upstream requests of one portal lookup, `GET /api/v1/users/{id}...`.
    upstream: Arc<Vec<String>>,
}

/// Starts the bare proxy on this runtime and returns its base URL: `GET {base}/proxy/{id}` sends `upstream` for
/// `id` to the fake at once and answers their bodies as one JSON array, or 502 when one fails.
pub(crate) async fn start_bare_proxy(
    fake_base: String,
    ssws: String,
    upstream: Arc<Vec<String>>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    // As the Okta adapter builds its client (less TLS, which loopback does not use): pooled, no redirects.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let state = Arc::new(Proxy {
        client,
        fake_base,
        ssws,
        upstream,
    });
    let app = axum::Router::new()
        .route("/proxy/{id}", axum::routing::get(forward))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service()).await;
    });
    base
}

async fn forward(State(p): State<Arc<Proxy>>, UrlPath(id): UrlPath<String>) -> impl IntoResponse {
    let reads = p.upstream.iter().map(|m| {
        let req = upstream_get(&p.client, &p.fake_base, &p.ssws, m, &id);
        async move {
            let r = req.send().await.map_err(|_| ())?;
            if !r.status().is_success() {
                return Err(());
            }
            r.bytes().await.map_err(|_| ())
        }
    });
    match futures::future::try_join_all(reads).await {
        Ok(bodies) => {
            let mut out = Vec::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
            out.push(b'[');
            for (i, b) in bodies.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b);
            }
            out.push(b']');
            ([(header::CONTENT_TYPE, "application/json")], out).into_response()
        }
        Err(()) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// One of a portal lookup's upstream requests (`m`, as recorded: `GET /api/v1/users/{id}...`) for caller `id`,
/// sent straight to the fake with the API token, as the direct baseline and the bare proxy both send it.
pub(crate) fn upstream_get(
    c: &reqwest::Client,
    fake_base: &str,
    ssws: &str,
    m: &str,
    id: &str,
) -> reqwest::RequestBuilder {
    let path = m.trim_start_matches("GET ").replace("{id}", id);
    c.get(format!("{fake_base}{path}"))
        .header("authorization", ssws)
        .header("accept", "application/json")
}
