//! The network edge, played by an attacker: the IP allow-list with spoofed `X-Forwarded-For`, trusted proxy
//! chains and IPv6; rate limits driven past their bounds; CSRF on the API; request hygiene.

use crate::api::{call, id_token};
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fctr_portal::edge::{EdgeSettings, parse_cidrs};
use fctr_ports::{EventKind, Reason};

fn cidrs(v: &[&str]) -> Vec<ipnet::IpNet> {
    parse_cidrs(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn get_xff(path: &str, xff: &str) -> Request<Body> {
    Request::get(path)
        .header("x-forwarded-for", xff)
        .body(Body::empty())
        .unwrap()
}

async fn with_edge(f: impl FnOnce(&mut EdgeSettings) + Send) -> TestApp {
    start_with(|o| f(&mut o.edge)).await
}

// ----- IP allow-list -----

#[tokio::test]
async fn outside_the_allow_list_is_403_before_any_handler_and_audited_truncated() {
    let t = with_edge(|e| e.allow = cidrs(&["10.0.0.0/8", "2001:db8::/32"])).await;
    // /auth/login would set a pre-login cookie if its handler ran.
    let r = t
        .send_from("203.0.113.9:5555", get("/auth/login?return_to=%2Fsearch"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("ip_not_allowed"), "{}", r.body);
    assert!(r.set_cookies().is_empty(), "no handler ran");
    assert_eq!(
        r.header("x-frame-options"),
        Some("DENY"),
        "headers on refusals"
    );
    // The API answers in JSON.
    let r = t
        .send_from("203.0.113.9:5555", get("/api/v1/openapi.json"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("\"code\":\"ip_not_allowed\""), "{}", r.body);
    let d = t.denials(Reason::IpNotAllowed).await;
    assert_eq!(d.len(), 2);
    let ip = d[0].client_ip.as_ref().unwrap().as_str();
    assert_eq!(ip, "203.0.113.0/24", "truncated, never the full address");
    // Inside the list: served.
    let r = t.send_from("10.20.30.40:5555", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    // Loopback is not in this list.
    let r = t.send_from("127.0.0.1:5555", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn ipv6_allow_list_and_truncation() {
    let t = with_edge(|e| e.allow = cidrs(&["2001:db8::/32"])).await;
    let r = t.send_from("[2001:db8:1::7]:443", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.send_from("[2001:db9:abcd::7]:443", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // IPv4-mapped IPv6 is judged as the IPv4 address.
    let r = t.send_from("[::ffff:10.0.0.1]:443", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let d = t.denials(Reason::IpNotAllowed).await;
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0].client_ip.as_ref().unwrap().as_str(),
        "2001:db9:abcd::/48"
    );
}

#[tokio::test]
async fn spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let t = with_edge(|e| {
        e.allow = cidrs(&["10.0.0.0/8"]);
        e.trusted_proxies = cidrs(&["192.168.1.1/32"]);
    })
    .await;
    // An outsider claims to be inside.
    let r = t
        .send_from("203.0.113.9:1", get_xff("/healthz", "10.0.0.1"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .send_from(
            "203.0.113.9:1",
            get_xff("/healthz", "10.0.0.1, 192.168.1.1"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // An insider's header cannot get them refused (or attributed to someone else) either.
    let r = t
        .send_from("10.0.0.7:1", get_xff("/healthz", "203.0.113.9"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let d = t.denials(Reason::IpNotAllowed).await;
    assert!(
        d.iter()
            .all(|e| e.client_ip.as_ref().unwrap().as_str() == "203.0.113.0/24"),
        "audited as the TCP peer, not the claimed address"
    );
}

#[tokio::test]
async fn a_trusted_proxy_chain_is_read_from_the_right() {
    let t = with_edge(|e| {
        e.allow = cidrs(&["192.0.2.0/24"]);
        e.trusted_proxies = cidrs(&["10.0.0.5/32", "10.0.0.6/32"]);
    })
    .await;
    // client 192.0.2.44 -> proxy 10.0.0.6 -> proxy 10.0.0.5 -> portal; whatever the client wrote on the left is
    // ignored.
    let r = t
        .send_from(
            "10.0.0.5:1",
            get_xff("/healthz", "198.51.100.1, 192.0.2.44, 10.0.0.6"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Two header lines are one list.
    let mut req = get("/healthz");
    req.headers_mut()
        .append("x-forwarded-for", "198.51.100.1".parse().unwrap());
    req.headers_mut()
        .append("x-forwarded-for", "192.0.2.44".parse().unwrap());
    assert_eq!(t.send_from("10.0.0.5:1", req).await.status, StatusCode::OK);
    // An outsider who writes an allowed address on the left is still the outsider.
    let r = t
        .send_from(
            "10.0.0.5:1",
            get_xff("/healthz", "192.0.2.44, 198.51.100.1"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Garbage where the client should be: refused.
    let r = t
        .send_from("10.0.0.5:1", get_xff("/healthz", "192.0.2.44, bogus"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The proxy itself with no header is the client, and is not on the allow-list.
    let r = t.send_from("10.0.0.5:1", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let d = t.denials(Reason::IpNotAllowed).await;
    assert_eq!(d[0].client_ip.as_ref().unwrap().as_str(), "198.51.100.0/24");
}

#[tokio::test]
async fn ip_denials_cannot_flood_the_audit_log() {
    let t = with_edge(|e| e.allow = cidrs(&["10.0.0.0/8"])).await;
    for _ in 0..(fctr_portal::edge::DENIAL_AUDITS_PER_MINUTE + 15) {
        let r = t.send_from("203.0.113.9:1", get("/healthz")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let d = t.denials(Reason::IpNotAllowed).await;
    assert_eq!(
        d.len(),
        fctr_portal::edge::DENIAL_AUDITS_PER_MINUTE as usize
    );
}

#[tokio::test]
async fn a_real_socket_is_judged_by_its_peer_address() {
    let t = with_edge(|e| e.allow = cidrs(&["10.0.0.0/8"])).await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let app = fctr_portal::router(t.demo.state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fctr_portal::tls::serve(tcp, None, app, async {
        let _ = stopped.await;
    }));
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .header("x-forwarded-for", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "loopback is not 10/8");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

// ----- rate limits -----

#[tokio::test]
async fn sign_in_is_rate_limited_per_client_ip() {
    let t = with_edge(|e| e.sign_in_per_ip_per_minute = 3).await;
    for _ in 0..2 {
        let r = t.send_from("10.1.2.3:1", get("/auth/login")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    // The callback counts against the same budget.
    let r = t
        .send_from("10.1.2.4:1", get("/auth/callback?code=x&state=y"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = t.send_from("10.1.2.3:1", get("/auth/login")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(r.body.contains("rate_limited"));
    assert!(r.set_cookies().is_empty(), "the handler did not run");
    let d = t.denials(Reason::RateLimited).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].client_ip.as_ref().unwrap().as_str(), "10.1.2.0/24");
    // Another address is unaffected; the rest of the portal is unaffected for this one.
    let r = t.send_from("10.9.9.9:1", get("/auth/login")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = t.send_from("10.1.2.3:1", get("/healthz")).await;
    assert_eq!(r.status, StatusCode::OK);
    // The window slides: a minute later the address may try again.
    t.clock.advance(chrono::Duration::seconds(61));
    let r = t.send_from("10.1.2.3:1", get("/auth/login")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_api_is_rate_limited_per_agent() {
    let t = with_edge(|e| e.api_per_agent_per_minute = 3).await;
    let a2 = id_token(&t, "agent2").await;
    let a3 = id_token(&t, "agent3").await;
    let body = || Some(serde_json::json!({"query": "alice@example.com"}));
    for _ in 0..3 {
        let (s, _, _) = call(&t, "POST", "/api/v1/users/search", Some(&a2), body()).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v, r) = call(&t, "POST", "/api/v1/users/search", Some(&a2), body()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(r.header("retry-after").is_some());
    let d = t.denials(Reason::RateLimited).await;
    assert_eq!(d.len(), 1);
    assert!(
        d[0].agent.is_some(),
        "the agent's pseudonym is on the event"
    );
    // Another agent is unaffected.
    let (s, _, _) = call(&t, "POST", "/api/v1/users/search", Some(&a3), body()).await;
    assert_eq!(s, StatusCode::OK);
    let lookups = t
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Lookup)
        .count();
    assert_eq!(lookups, 4, "the refused call reached no handler");
}

#[tokio::test]
async fn push_bombing_one_caller_is_stopped_across_agents() {
    let t = start().await;
    let a2 = id_token(&t, "agent2").await;
    let a3 = id_token(&t, "agent3").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let bob = t.demo.fake.fixtures().id_of("bob");
    let path = format!("/api/v1/users/{alice}/verifications");
    // The default policy allows 5 challenges per target per hour, whoever sends them.
    for i in 0..5 {
        let tok = if i % 2 == 0 { &a2 } else { &a3 };
        let (s, v, _) = call(&t, "POST", &path, Some(tok), None).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let pushes = t.demo.fake.phones().pending().len();
    let (s, v, r) = call(&t, "POST", &path, Some(&a3), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        t.demo.fake.phones().pending().len(),
        pushes,
        "no push was sent"
    );
    assert!(!t.denials(Reason::RateLimited).await.is_empty(), "audited");
    // Another caller is unaffected.
    let (s, _, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{bob}/verifications"),
        Some(&a2),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_codes_lock_verification_for_that_caller_only() {
    let t = start().await;
    let a2 = id_token(&t, "agent2").await;
    let a3 = id_token(&t, "agent3").await;
    let bob = t.demo.fake.fixtures().id_of("bob");
    let alice = t.demo.fake.fixtures().id_of("alice");
    let totp = |who: &str| t.factor_id(who, "token:software:totp");
    let start_totp = |tok: String, user: String, factor: String| {
        let t = &t;
        async move {
            let (s, v, _) = call(
                t,
                "POST",
                &format!("/api/v1/users/{user}/verifications"),
                Some(&tok),
                Some(serde_json::json!({ "factor_id": factor })),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let v = start_totp(a2.clone(), bob.clone(), totp("bob")).await;
    let good = t.demo.fake.state().totp_now("bob").unwrap();
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let code_path = format!("/api/v1/verifications/{v}/code");
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (s, v, _) = call(
            &t,
            "POST",
            &code_path,
            Some(&a2),
            Some(serde_json::json!({ "code": wrong })),
        )
        .await;
        statuses.push((s, v["error"]["code"].as_str().unwrap_or("").to_owned()));
    }
    assert_eq!(statuses[0].1, "wrong_code", "{statuses:?}");
    let (last_status, last_code) = statuses.last().unwrap();
    assert_eq!(*last_status, StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    assert_eq!(last_code, "verification_locked");
    // Even the right code is refused now.
    let (s, _, r) = call(
        &t,
        "POST",
        &code_path,
        Some(&a2),
        Some(serde_json::json!({ "code": good })),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(
        !t.denials(Reason::VerificationLocked).await.is_empty(),
        "audited"
    );
    // Another agent on another caller is unaffected.
    let v2 = start_totp(a3.clone(), alice.clone(), totp("alice")).await;
    let code = t.demo.fake.state().totp_now("alice").unwrap();
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/verifications/{v2}/code"),
        Some(&a3),
        Some(serde_json::json!({ "code": code })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "verified");
}

// ----- CSRF on the API -----

#[tokio::test]
async fn api_csrf_cross_site_or_foreign_token_is_refused_and_audited_and_nothing_is_sent() {
    let t = start().await;
    let b = t.sign_in("agent2").await;
    let other = t.sign_in("agent3").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let path = format!("/api/v1/users/{alice}/verifications");
    let req = |token: Option<&str>, origin: Option<&str>, site: Option<&str>| {
        let mut r = Request::post(&path).header("cookie", b.cookie_header());
        if let Some(c) = token {
            r = r.header("x-csrf-token", c);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        r.body(Body::empty()).unwrap()
    };
    let cases = [
        (
            "missing token",
            req(None, Some(PUBLIC), Some("same-origin")),
        ),
        (
            "another session's token",
            req(Some(&other.csrf), Some(PUBLIC), None),
        ),
        (
            "cross-site origin",
            req(Some(&b.csrf), Some("https://evil.example"), None),
        ),
        ("null origin", req(Some(&b.csrf), Some("null"), None)),
        (
            "sec-fetch-site cross-site",
            req(Some(&b.csrf), None, Some("cross-site")),
        ),
        (
            "sec-fetch-site same-site",
            req(Some(&b.csrf), None, Some("same-site")),
        ),
    ];
    let n = cases.len();
    for (what, r) in cases {
        let r = t.send(r).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
        assert!(r.body.contains("csrf_rejected"), "{what}: {}", r.body);
    }
    assert!(
        t.demo.fake.phones().pending().is_empty(),
        "no push was sent"
    );
    let d = t.denials(Reason::CsrfRejected).await;
    assert_eq!(d.len(), n, "every refusal audited");
    assert!(d.iter().all(|e| e.agent.is_some()), "with the agent");
    assert!(
        t.audit_events()
            .await
            .iter()
            .all(|e| e.kind != EventKind::ChallengeStarted),
        "no challenge started"
    );
    // A bearer-token call is exempt: no ambient credential, nothing to forge.
    let tok = id_token(&t, "agent2").await;
    let r = Request::post(&path)
        .header("authorization", format!("Bearer {tok}"))
        .header("cookie", b.cookie_header())
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(r).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn page_csrf_refusals_are_audited_with_the_agent() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let csrf = b.csrf.clone();
    for (origin, site) in [
        (Some("https://evil.example"), None),
        (None, Some("cross-site")),
    ] {
        let mut req = Request::post(format!("{card}/verify"))
            .header("cookie", b.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        let r = t
            .send(req.body(Body::from(format!("csrf={csrf}"))).unwrap())
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    // Sign-out is state-changing too: a cross-site sign-out leaves the session alive.
    let req = Request::post("/auth/logout")
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    assert_eq!(t.send(req).await.status, StatusCode::FORBIDDEN);
    assert_eq!(t.get(&mut b, "/search").await.status, StatusCode::OK);
    let d = t.denials(Reason::CsrfRejected).await;
    assert_eq!(d.len(), 3);
    assert!(d.iter().all(|e| e.agent.is_some()));
    assert!(
        t.demo.fake.phones().pending().is_empty(),
        "no push was sent"
    );
}

// ----- request hygiene -----

#[tokio::test]
async fn api_bodies_must_be_json_and_small() {
    let t = start().await;
    let tok = id_token(&t, "agent2").await;
    let r = Request::post("/api/v1/users/search")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "text/plain")
        .body(Body::from("alice"))
        .unwrap();
    let r = t.send(r).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.body.contains("unsupported_media_type"));
    let r = Request::post("/api/v1/users/search")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("query=alice"))
        .unwrap();
    assert_eq!(t.send(r).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Too big: 413, with the secure headers.
    let big = serde_json::json!({ "query": "a".repeat(70 * 1024) }).to_string();
    let r = Request::post("/api/v1/users/search")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let r = t.send(r).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // Over-long search text: 400, and no lookup reached the IdP.
    let (s, v, _) = call(
        &t,
        "POST",
        "/api/v1/users/search",
        Some(&tok),
        Some(serde_json::json!({ "query": "a".repeat(101) })),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_input");
}

#[tokio::test]
async fn a_page_form_over_the_body_limit_is_413() {
    let t = with_edge(|e| e.body_limit_bytes = 1024).await;
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let q = "a".repeat(2000);
    let r = t
        .post(&mut b, "/search", &[("csrf", &csrf), ("q", &q)])
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        t.audit_events()
            .await
            .iter()
            .all(|e| e.kind != EventKind::Lookup),
        "no search ran"
    );
}
