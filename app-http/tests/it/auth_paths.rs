//! The one auth path: the API's session callers get exactly what the pages get (the same loader, the same CSRF
//! check). Each test pins a behaviour the API's own copy used to lack: the `Origin: null` allowance, removal of a
//! timed-out session, and the cap on the cookie's length.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fctr_ports::{AgentId, Clock as _, Reason};

/// A cookie-authenticated API call to start a verification of alice (policy's preferred factor).
fn begin(t: &TestApp, b: &Browser, origin: Option<&str>, site: Option<&str>) -> Request<Body> {
    let alice = t.demo.fake.fixtures().id_of("alice");
    let mut r = Request::post(format!("/api/v1/users/{alice}/verifications"))
        .header("cookie", b.cookie_header())
        .header("x-csrf-token", &b.csrf);
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if let Some(s) = site {
        r = r.header("sec-fetch-site", s);
    }
    r.body(Body::empty()).unwrap()
}

fn lookup(t: &TestApp, cookie: &str) -> Request<Body> {
    let alice = t.demo.fake.fixtures().id_of("alice");
    Request::get(format!("/api/v1/users/{alice}"))
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn api_origin_null_is_accepted_only_when_the_browser_vouches_same_origin() {
    let t = start().await;
    let b = t.sign_in("agent2").await;
    for site in [None, Some("cross-site"), Some("same-site")] {
        let r = t.send(begin(&t, &b, Some("null"), site)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{site:?}: {}", r.body);
        assert!(r.body.contains("csrf_rejected"), "{}", r.body);
    }
    assert!(
        t.demo.fake.phones().pending().is_empty(),
        "no push was sent"
    );
    let r = t
        .send(begin(&t, &b, Some("null"), Some("same-origin")))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.demo.fake.phones().pending().len(), 1);
}

#[tokio::test]
async fn api_a_timed_out_session_is_refused_and_removed() {
    let t = start().await;
    let b = t.sign_in("agent2").await;
    let sid = b.session().unwrap();
    assert_eq!(
        t.send(lookup(&t, &b.cookie_header())).await.status,
        StatusCode::OK
    );
    // Past the idle timeout (15 min): refused, and the store drops the session.
    t.clock.advance(chrono::TimeDelta::minutes(16));
    let r = t.send(lookup(&t, &b.cookie_header())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(r.body.contains("unauthenticated"), "{}", r.body);
    // Back within the timeout, the session would be live again had it only been skipped: it is gone.
    t.clock.advance(chrono::TimeDelta::minutes(-16));
    assert!(
        t.demo.state.sessions().get(&sid).await.unwrap().is_none(),
        "removed"
    );
    let r = t.send(lookup(&t, &b.cookie_header())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test]
async fn an_overlong_session_cookie_is_no_session_on_the_api_or_the_pages() {
    let t = start().await;
    // A live session stored under an id longer than any the portal mints: the loader never looks it up.
    let agent = AgentId::parse(t.demo.fake.fixtures().id_of("agent2")).unwrap();
    let mut s = fctr_portal::session::start(agent, Some("tier2".to_owned()), t.clock.now());
    s.id = "a".repeat(101);
    let cookie = format!("fctr={}", s.id);
    assert!(t.demo.state.sessions().create(&s).await.unwrap());
    let r = t.send(lookup(&t, &cookie)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = t
        .send(
            Request::get("/search")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // At the cap it is looked up like any other id.
    let agent = AgentId::parse(t.demo.fake.fixtures().id_of("agent2")).unwrap();
    let mut s = fctr_portal::session::start(agent, Some("tier2".to_owned()), t.clock.now());
    s.id = "b".repeat(100);
    let cookie = format!("fctr={}", s.id);
    assert!(t.demo.state.sessions().create(&s).await.unwrap());
    assert_eq!(t.send(lookup(&t, &cookie)).await.status, StatusCode::OK);
    assert!(t.denials(Reason::CsrfRejected).await.is_empty());
}

/// One code format on every path (`OtpCode::parse`): 6 to 8 digits, spaces removed. Anything else is 400
/// `invalid_input` before the engine counts an attempt, so it cannot lock the caller out.
#[tokio::test]
async fn codes_outside_six_to_eight_digits_are_refused_before_they_count() {
    let t = start().await;
    let tok = crate::api::id_token(&t, "agent2").await;
    let bob = t.demo.fake.fixtures().id_of("bob");
    let factor = t.factor_id("bob", "token:software:totp");
    let (s, v, _) = crate::api::call(
        &t,
        "POST",
        &format!("/api/v1/users/{bob}/verifications"),
        Some(&tok),
        Some(serde_json::json!({ "factor_id": factor })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let path = format!("/api/v1/verifications/{}/code", v["id"].as_str().unwrap());
    // More bad codes than the lockout allows (5): none of them counts.
    for bad in [
        "12345",
        "123456789",
        "12345a",
        "",
        "１２３４５６",
        "12345",
        "1234567890",
    ] {
        let (s, v, _) = crate::api::call(
            &t,
            "POST",
            &path,
            Some(&tok),
            Some(serde_json::json!({ "code": bad })),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {v}");
        assert_eq!(v["error"]["code"], "invalid_input");
    }
    let good = t.demo.fake.state().totp_now("bob").unwrap();
    let spaced = format!("{} {}", &good[..3], &good[3..]);
    let (s, v, _) = crate::api::call(
        &t,
        "POST",
        &path,
        Some(&tok),
        Some(serde_json::json!({ "code": spaced })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "verified");
}
