//! Every route, every error path: each response carries every secure header. The route table below is checked
//! against the router's source, so a new route without a row here fails this test.

use crate::api::id_token;
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fctr_portal::edge::parse_cidrs;
use http_body_util::BodyExt as _;

/// (method, route template as in the router, concrete path).
type Row = (&'static str, &'static str, String);

fn check(r: &Resp, what: &str) {
    let h = |n: &str| r.header(n).unwrap_or_else(|| panic!("{what}: no {n}"));
    assert_eq!(
        h("strict-transport-security"),
        "max-age=31536000; includeSubDomains",
        "{what}"
    );
    let csp = h("content-security-policy");
    assert_eq!(csp, fctr_portal::CSP, "{what}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}");
    assert!(csp.contains("form-action 'self'"), "{what}");
    assert!(csp.contains("script-src 'self'"), "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
    assert!(h("permissions-policy").contains("camera=()"), "{what}");
    assert!(!h("x-request-id").is_empty(), "{what}");
    let cc = h("cache-control");
    if what.contains("/static/") {
        assert_eq!(cc, "no-cache", "{what}");
    } else {
        assert_eq!(cc, "no-store", "{what}: responses may carry caller data");
    }
}

/// The routes the router declares, read from its source.
fn declared_routes() -> Vec<String> {
    let src = [
        include_str!("../../src/lib.rs"),
        include_str!("../../src/api.rs"),
    ]
    .concat();
    src.split(".route(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Headers only: the SSE route streams.
async fn head_only(t: &TestApp, req: Request<Body>) -> Resp {
    let r = t.oneshot(req).await.unwrap();
    Resp {
        status: r.status(),
        headers: r.headers().clone(),
        body: String::new(),
    }
}

#[tokio::test]
async fn every_route_and_every_error_carries_every_secure_header() {
    let t = start().await;
    let mut b = t.sign_in("agent3").await;
    let (card, ver) = t.verified(&mut b, "alice").await;
    let handle = card.trim_start_matches("/callers/").to_owned();
    let vid = ver.trim_start_matches("/verifications/").to_owned();
    let alice = t.demo.fake.fixtures().id_of("alice");
    let tok = id_token(&t, "agent3").await;

    let rows: Vec<Row> = vec![
        ("GET", "/", "/".into()),
        ("GET", "/auth/login", "/auth/login".into()),
        (
            "GET",
            "/auth/callback",
            "/auth/callback?code=x&state=y".into(),
        ),
        ("GET", "/search", "/search".into()),
        ("POST", "/search", "/search".into()),
        ("GET", "/callers/{handle}", format!("/callers/{handle}")),
        (
            "POST",
            "/callers/{handle}/verify",
            format!("/callers/{handle}/verify"),
        ),
        (
            "GET",
            "/callers/{handle}/actions/{action}",
            format!("/callers/{handle}/actions/unlock"),
        ),
        (
            "POST",
            "/callers/{handle}/actions/{action}",
            format!("/callers/{handle}/actions/clear_sessions"),
        ),
        (
            "GET",
            "/verifications/{id}",
            format!("/verifications/{vid}"),
        ),
        (
            "GET",
            "/verifications/{id}/events",
            format!("/verifications/{vid}/events"),
        ),
        (
            "POST",
            "/verifications/{id}/code",
            format!("/verifications/{vid}/code"),
        ),
        (
            "POST",
            "/verifications/{id}/continue",
            format!("/verifications/{vid}/continue"),
        ),
        ("GET", "/approvals", "/approvals".into()),
        (
            "POST",
            "/approvals/{id}/approve",
            format!("/approvals/{vid}/approve"),
        ),
        (
            "POST",
            "/approvals/{id}/refuse",
            format!("/approvals/{vid}/refuse"),
        ),
        ("GET", "/api/v1/approvals", "/api/v1/approvals".into()),
        (
            "POST",
            "/api/v1/approvals/{id}/approve",
            format!("/api/v1/approvals/{vid}/approve"),
        ),
        (
            "POST",
            "/api/v1/approvals/{id}/refuse",
            format!("/api/v1/approvals/{vid}/refuse"),
        ),
        ("GET", "/audit", "/audit".into()),
        ("POST", "/audit/find", "/audit/find".into()),
        ("GET", "/audit/export.csv", "/audit/export.csv".into()),
        ("GET", "/audit/export.json", "/audit/export.json".into()),
        (
            "GET",
            "/audit/out-of-band",
            "/audit/out-of-band?since=1h".into(),
        ),
        ("GET", "/static/app.js", "/static/app.js".into()),
        ("GET", "/static/app.css", "/static/app.css".into()),
        ("GET", "/static/favicon.svg", "/static/favicon.svg".into()),
        ("GET", "/favicon.ico", "/favicon.ico".into()),
        ("GET", "/healthz", "/healthz".into()),
        ("GET", "/readyz", "/readyz".into()),
        ("GET", "/metrics", "/metrics".into()),
        ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json".into()),
        (
            "POST",
            "/api/v1/users/search",
            "/api/v1/users/search".into(),
        ),
        (
            "GET",
            "/api/v1/users/{id}",
            format!("/api/v1/users/{alice}"),
        ),
        (
            "GET",
            "/api/v1/users/{id}/explain/{action}",
            format!("/api/v1/users/{alice}/explain/reset_password"),
        ),
        (
            "POST",
            "/api/v1/users/{id}/verifications",
            format!("/api/v1/users/{alice}/verifications"),
        ),
        (
            "POST",
            "/api/v1/users/{id}/actions/{action}",
            format!("/api/v1/users/{alice}/actions/unlock"),
        ),
        (
            "GET",
            "/api/v1/verifications/{id}",
            format!("/api/v1/verifications/{vid}"),
        ),
        (
            "POST",
            "/api/v1/verifications/{id}/continue",
            format!("/api/v1/verifications/{vid}/continue"),
        ),
        (
            "POST",
            "/api/v1/verifications/{id}/code",
            format!("/api/v1/verifications/{vid}/code"),
        ),
        (
            "GET",
            "/api/v1/audit/out-of-band",
            "/api/v1/audit/out-of-band?since=1h".into(),
        ),
        ("GET", "/api/v1/{*rest}", "/api/v1/nope".into()),
        ("POST", "/api/v1/{*rest}", "/api/v1/nope".into()),
        (
            "POST",
            "/verifications/{id}/not-me",
            format!("/verifications/{vid}/not-me"),
        ),
        ("POST", "/auth/logout", "/auth/logout".into()),
        (
            "GET",
            "/link/callback",
            "/link/callback?code=x&state=y".into(),
        ),
        ("GET", "/link/{token}", "/link/nonsense".into()),
        ("POST", "/link/{token}", "/link/nonsense".into()),
        (
            "POST",
            "/link/{token}/decline",
            "/link/nonsense/decline".into(),
        ),
    ];
    for declared in declared_routes() {
        assert!(
            rows.iter().any(|(_, tpl, _)| *tpl == declared),
            "route {declared} has no row in this test"
        );
    }
    let mut statuses = Vec::new();
    for (method, tpl, path) in &rows {
        let what = format!("{method} {path}");
        let mut req = Request::builder()
            .method(*method)
            .uri(path.as_str())
            .header("cookie", b.cookie_header());
        let body = if path.starts_with("/api/") {
            req = req.header("authorization", format!("Bearer {tok}"));
            if *method == "POST" {
                req = req.header("content-type", "application/json");
                if tpl.ends_with("/search") {
                    Body::from(r#"{"query":"alice@example.com"}"#)
                } else if tpl.ends_with("/code") {
                    Body::from(r#"{"code":"123456"}"#)
                } else {
                    Body::from("{}")
                }
            } else {
                Body::empty()
            }
        } else if *method == "POST" {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", PUBLIC);
            Body::from(format!("csrf={}&q=alice%40example.com", b.csrf))
        } else {
            Body::empty()
        };
        let req = req.body(body).unwrap();
        let r = if tpl.ends_with("/events") {
            head_only(&t, req).await
        } else {
            t.send(req).await
        };
        check(&r, &what);
        statuses.push((what, r.status));
    }
    // The walk met redirects, successes and refusals, not only one kind of answer.
    let has = |s: StatusCode| statuses.iter().any(|(_, x)| *x == s);
    assert!(
        has(StatusCode::OK) && has(StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert!(
        has(StatusCode::NOT_FOUND) && has(StatusCode::METHOD_NOT_ALLOWED),
        "{statuses:?}"
    );
    assert!(
        has(StatusCode::UNAUTHORIZED) && has(StatusCode::FORBIDDEN),
        "{statuses:?}"
    );

    // Error paths that no route row reaches.
    let mut anon = Browser::default();
    let r = t.get(&mut anon, "/search").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    check(&r, "401 anonymous");
    let r = t.get(&mut anon, "/no/such/page").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    check(&r, "404");
    let r = t
        .send(Request::delete("/search").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    check(&r, "405 DELETE /search");
    let r = t.get(&mut anon, "/auth/logout").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    check(&r, "405 GET /auth/logout");
    let r = t
        .send(
            Request::post("/api/v1/users/search")
                .header("authorization", format!("Bearer {tok}"))
                .header("content-type", "text/plain")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    check(&r, "415");
    let r = t
        .send(
            Request::post("/search")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("content-length", "10000000")
                .body(Body::from("q=1"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    check(&r, "413");
    let r = t
        .send(
            Request::post("/search")
                .header("cookie", b.cookie_header())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from(format!("csrf={}", b.csrf)))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    check(&r, "403 csrf");
}

#[tokio::test]
async fn refusals_at_the_edge_and_a_panic_carry_every_secure_header() {
    let t = start_with(|o| {
        o.edge.allow = parse_cidrs(&["127.0.0.0/8".to_owned()]).unwrap();
        o.edge.sign_in_per_ip_per_minute = 1;
    })
    .await;
    let r = t
        .send_from(
            "203.0.113.1:1",
            Request::get("/").body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    check(&r, "403 ip");
    let mut anon = Browser::default();
    let _ = t.get(&mut anon, "/auth/login").await;
    let r = t.get(&mut anon, "/auth/login").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    check(&r, "429");
    // A forced 500: a route that panics, behind exactly the portal's middleware stack.
    let boom = axum::Router::new().route(
        "/boom",
        axum::routing::get(|| async {
            if std::hint::black_box(true) {
                panic!("forced failure with a secret-looking 00abcdef in it");
            }
            "unreachable"
        }),
    );
    let app = fctr_portal::with_middleware(boom, &t.demo.state);
    let mut req = Request::get("/boom").body(Body::empty()).unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        "127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap(),
    ));
    let resp = tower::ServiceExt::oneshot(app, req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let r = Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !r.body.contains("00abcdef"),
        "the panic message is not sent"
    );
    check(&r, "500");
}
