//! CSRF, security headers, action routes without a grant.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fctr_ports::ActionKind;

fn assert_secure_headers(r: &Resp, what: &str) {
    assert_eq!(
        r.header("content-security-policy"),
        Some(fctr_portal::CSP),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert!(
        r.header("strict-transport-security")
            .unwrap()
            .contains("max-age=31536000"),
        "{what}"
    );
    assert!(r.header("permissions-policy").is_some(), "{what}");
    assert!(r.header("x-request-id").is_some(), "{what}");
}

#[tokio::test]
async fn security_headers_on_every_page_including_404() {
    let t = start().await;
    let mut anon = Browser::default();
    for path in [
        "/",
        "/search",
        "/nope",
        "/callers/x",
        "/api/v1/nope",
        "/healthz",
    ] {
        let r = t.get(&mut anon, path).await;
        assert_secure_headers(&r, path);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    let r = t.get(&mut anon, "/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("DEMO"), "demo banner on the 404 page");
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let r = t.get(&mut b, &card).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_secure_headers(&r, "card");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.body.contains("DEMO"));
    assert!(!r.body.contains("<script>"), "no inline script");
    assert!(!r.body.contains("style="), "no inline style");
    let r = t.get(&mut b, "/static/app.js").await;
    assert_secure_headers(&r, "static");
}

#[tokio::test]
async fn csrf_missing_foreign_or_cross_site_is_refused_and_nothing_changes() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let other = t.sign_in("agent3").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    let path = format!("{card}/verify");
    let good = b.csrf.clone();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "missing token",
            vec![("factor_id", factor.as_str())],
            Some(PUBLIC),
        ),
        (
            "other session's token",
            vec![
                ("csrf", other.csrf.as_str()),
                ("factor_id", factor.as_str()),
            ],
            Some(PUBLIC),
        ),
        (
            "cross-site origin",
            vec![("csrf", good.as_str()), ("factor_id", factor.as_str())],
            Some("https://evil.example"),
        ),
    ];
    for (what, form, origin) in cases {
        let r = t.post_with(&mut b, &path, &form, origin).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}");
        assert!(r.body.contains("csrf_rejected"), "{what}");
    }
    // Sec-Fetch-Site: cross-site with a good token.
    let body =
        serde_urlencoded::to_string([("csrf", good.as_str()), ("factor_id", factor.as_str())])
            .unwrap();
    let req = Request::post(&path)
        .header("cookie", b.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(t.send(req).await.status, StatusCode::FORBIDDEN);
    assert!(
        t.demo.fake.phones().pending().is_empty(),
        "no push was sent"
    );
    // The same request done right goes through.
    let r = t
        .post(&mut b, &path, &[("csrf", &good), ("factor_id", &factor)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(t.demo.fake.phones().pending().len(), 1);
}

#[tokio::test]
async fn every_action_route_without_a_live_grant_is_refused() {
    let t = start().await;
    let mut b = t.sign_in("agent3").await;
    let card = t.find(&mut b, "bob@example.com").await;
    let csrf = b.csrf.clone();
    let before = t.demo.fake.effects("bob").unwrap();
    for kind in ActionKind::ALL {
        let factor = t.factor_id("bob", "push");
        let path = format!("{card}/actions/{}", kind.as_str());
        let r = t
            .post(
                &mut b,
                &path,
                &[
                    ("csrf", csrf.as_str()),
                    ("confirmed", "yes"),
                    ("factor_id", &factor),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{kind:?}: {}", r.body);
        assert!(r.body.contains("Reason code"), "{kind:?}");
        assert!(!r.body.contains("one-time-secret"), "{kind:?}");
        let g = t.get(&mut b, &path).await;
        assert_eq!(g.status, StatusCode::METHOD_NOT_ALLOWED, "GET {kind:?}");
    }
    assert_eq!(
        format!("{before:?}"),
        format!("{:?}", t.demo.fake.effects("bob").unwrap()),
        "nothing changed at the IdP"
    );
}

#[tokio::test]
async fn tier1_is_offered_no_action_and_a_forged_post_is_refused() {
    let t = start().await;
    let mut b = t.sign_in("agent1").await;
    let (card, _) = t.verified(&mut b, "alice").await;
    let r = t.get(&mut b, &card).await;
    assert!(r.body.contains("Not for your role."), "{}", r.body);
    assert!(!r.body.contains("/actions/"), "no action form offered");
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("not_permitted_for_role"), "{}", r.body);
}

#[tokio::test]
async fn a_caller_handle_from_another_session_is_unknown() {
    let t = start().await;
    let mut a = t.sign_in("agent2").await;
    let mut m = t.sign_in("agent3").await;
    let card = t.find(&mut a, "alice@example.com").await;
    let r = t.get(&mut m, &card).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!r.body.contains("alice@example.com"));
}

/// A real browser under `Referrer-Policy: no-referrer` sends `Origin: null` on form POSTs. That is accepted
/// only with `Sec-Fetch-Site: same-origin` (which page script cannot set) and the session's token; with
/// `cross-site` or no fetch metadata it is refused.
#[tokio::test]
async fn origin_null_is_accepted_only_when_the_browser_vouches_same_origin() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let factor = t.factor_id("alice", "push");
    let path = format!("{card}/verify");
    let body =
        serde_urlencoded::to_string([("csrf", b.csrf.as_str()), ("factor_id", factor.as_str())])
            .unwrap();
    let post = |site: Option<&str>| {
        let mut req = Request::post(&path)
            .header("cookie", b.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "null");
        if let Some(s) = site {
            req = req.header("sec-fetch-site", s);
        }
        req.body(Body::from(body.clone())).unwrap()
    };
    for site in [None, Some("cross-site"), Some("same-site")] {
        let r = t.send(post(site)).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "Origin: null with Sec-Fetch-Site {site:?}"
        );
    }
    assert!(
        t.demo.fake.phones().pending().is_empty(),
        "no push was sent"
    );
    let r = t.send(post(Some("same-origin"))).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "a same-origin browser form post goes through"
    );
    assert_eq!(t.demo.fake.phones().pending().len(), 1);
}
