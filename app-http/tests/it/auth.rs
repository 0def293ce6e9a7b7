//! Sign-in, sessions, roles, OIDC refusals.

use crate::helpers::*;
use axum::http::StatusCode;
use fctr_testkit::okta::IdTokenTweak;

#[tokio::test]
async fn roles_map_from_groups_and_no_role_is_not_authorized() {
    let t = start().await;
    for (agent, role) in [
        ("agent1", "tier1"),
        ("agent2", "tier2"),
        ("agent3", "tier3"),
    ] {
        let mut b = t.sign_in(agent).await;
        let r = t.get(&mut b, "/search").await;
        assert!(
            r.body.contains(&format!("Role: <strong>{role}</strong>")),
            "{agent}: {}",
            r.body
        );
    }
    let mut b = Browser::default();
    let r = t.sign_in_with(&mut b, "agent0").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Not authorized"));
    assert!(r.body.contains("no_role"));
    assert!(
        b.session().is_none(),
        "no session for an agent without a role"
    );
    let r = t.get(&mut b, "/search").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// The header names the agent as the ID token's `name` claim does, from the agent's own HttpOnly cookie: the
/// server keeps no copy, a forged cookie changes only the forger's own header (escaped), and sign-out clears it.
#[tokio::test]
async fn the_header_names_the_agent_from_their_own_cookie_only() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let u = t.demo.fake.fixtures().user("agent2").unwrap().clone();
    let name = format!("{} {}", u.first_name, u.last_name);
    let r = t.get(&mut b, "/search").await;
    assert!(
        r.body.contains(&format!(
            "<span class=\"agent\" id=\"agent-name\">{name}</span>"
        )),
        "{}",
        r.body
    );
    // The session store holds no name: a browser with the session cookie but without the name cookie shows none.
    b.cookies.retain(|(k, _)| !k.ends_with("-name"));
    let r = t.get(&mut b, "/search").await;
    assert!(!r.body.contains("agent-name"), "{}", r.body);
    // A hand-made cookie is shown escaped, and a control character is refused.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    b.cookies.push(("fctr-name".into(), b64("<b>x</b>")));
    let r = t.get(&mut b, "/search").await;
    assert!(
        r.body.contains("&lt;b&gt;x&lt;/b&gt;") || r.body.contains("&#60;b&#62;"),
        "{}",
        r.body
    );
    b.cookies.retain(|(k, _)| k != "fctr-name");
    b.cookies.push(("fctr-name".into(), b64("a\nb")));
    let r = t.get(&mut b, "/search").await;
    assert!(!r.body.contains("agent-name"));
}

#[tokio::test]
async fn session_cookie_attributes_and_rotation_at_sign_in() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let first = b.session().unwrap();
    // Sign in again in the same browser: a new id, and the old one is dead.
    let cb = t.idp_round_trip(&mut b, "agent2").await;
    let r = t.get(&mut b, &cb).await;
    assert_eq!(r.status, StatusCode::OK);
    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("fctr="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let second = b.session().unwrap();
    assert_ne!(first, second, "session id rotated at sign-in");
    let mut old = Browser {
        cookies: vec![("fctr".into(), first)],
        csrf: String::new(),
    };
    assert_eq!(
        t.get(&mut old, "/search").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(t.get(&mut b, "/search").await.status, StatusCode::OK);
    // The callback page continues on our own origin (so the Strict cookie is sent).
    assert!(
        r.body
            .contains("http-equiv=\"refresh\" content=\"0;url=/search\""),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn idle_timeout_ends_the_session() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    t.clock.advance(chrono::TimeDelta::minutes(14));
    assert_eq!(t.get(&mut b, "/search").await.status, StatusCode::OK);
    t.clock.advance(chrono::TimeDelta::minutes(14));
    assert_eq!(
        t.get(&mut b, "/search").await.status,
        StatusCode::OK,
        "activity restarts the idle timer"
    );
    t.clock.advance(chrono::TimeDelta::minutes(16));
    assert_eq!(
        t.get(&mut b, "/search").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn absolute_timeout_ends_an_active_session() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    for _ in 0..(12 * 6 - 1) {
        t.clock.advance(chrono::TimeDelta::minutes(10));
        assert_eq!(t.get(&mut b, "/search").await.status, StatusCode::OK);
    }
    t.clock.advance(chrono::TimeDelta::minutes(11));
    assert_eq!(
        t.get(&mut b, "/search").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sign_out_invalidates_on_the_server() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let stolen = b.clone();
    let csrf = b.csrf.clone();
    let r = t.post(&mut b, "/auth/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("You are signed out."));
    let mut old = stolen;
    let r = t.get(&mut old, "/search").await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the old cookie is dead server-side"
    );
}

#[tokio::test]
async fn sign_out_is_post_only_and_needs_csrf() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let r = t.get(&mut b, "/auth/logout").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = t.post(&mut b, "/auth/logout", &[("csrf", "wrong")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.get(&mut b, "/search").await.status,
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn wrong_state_is_refused() {
    let t = start().await;
    let mut b = Browser::default();
    let cb = t.idp_round_trip(&mut b, "agent2").await;
    let tampered = cb.replace("state=", "state=x");
    let r = t.get(&mut b, &tampered).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(b.session().is_none());
}

#[tokio::test]
async fn callback_with_another_browsers_state_is_refused() {
    let t = start().await;
    let mut alice_browser = Browser::default();
    let mut mallory = Browser::default();
    let _ = t.idp_round_trip(&mut alice_browser, "agent2").await;
    let cb_mallory = t.idp_round_trip(&mut mallory, "agent3").await;
    // Mallory's callback replayed in the victim's browser: the victim's pre-login state does not match.
    let r = t.get(&mut alice_browser, &cb_mallory).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(alice_browser.session().is_none());
}

#[tokio::test]
async fn callback_without_pre_login_cookie_is_refused() {
    let t = start().await;
    let mut b = Browser::default();
    let cb = t.idp_round_trip(&mut b, "agent2").await;
    let mut fresh = Browser::default();
    assert_eq!(
        t.get(&mut fresh, &cb).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tampered_id_tokens_are_refused() {
    let t = start().await;
    for tweak in [
        IdTokenTweak::WrongNonce,
        IdTokenTweak::WrongAudience,
        IdTokenTweak::Expired,
        IdTokenTweak::WrongIssuer,
        IdTokenTweak::BadSignature,
        IdTokenTweak::MissingNonce,
    ] {
        t.demo.fake.oidc().tweak_next_id_token(tweak);
        let mut b = Browser::default();
        let r = t.sign_in_with(&mut b, "agent2").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{tweak:?}");
        assert!(r.body.contains("Sign-in failed"), "{tweak:?}");
        assert!(b.session().is_none(), "{tweak:?}");
        t.demo.fake.oidc().clear_tweaks();
    }
}

#[tokio::test]
async fn mfa_requirement_refuses_password_only_tokens() {
    let t = start_with(|o| o.require_mfa = true).await;
    t.demo
        .fake
        .oidc()
        .tweak_next_id_token(IdTokenTweak::AmrPwdOnly);
    let mut b = Browser::default();
    let r = t.sign_in_with(&mut b, "agent2").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(b.session().is_none());
    // The fake's normal tokens say amr ["pwd","mfa"]: accepted.
    let mut b = Browser::default();
    assert_eq!(
        t.sign_in_with(&mut b, "agent2").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn return_to_is_local_only() {
    let t = start().await;
    let mut b = Browser::default();
    let r = t
        .get(
            &mut b,
            "/auth/login?return_to=https%3A%2F%2Fevil.example%2F",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let cb = {
        // finish the round trip with this pre-login state
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let authorize = r.location();
        let page = http
            .get(&authorize)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let request_id = between(&page, "name=\"request_id\" value=\"", "\"")
            .unwrap()
            .to_owned();
        let mut post_url = url::Url::parse(&authorize).unwrap();
        post_url.set_query(None);
        let user = t.demo.fake.fixtures().id_of("agent2");
        let resp = http
            .post(post_url)
            .form(&[("request_id", request_id.as_str()), ("user", user.as_str())])
            .send()
            .await
            .unwrap();
        resp.headers().get("location").unwrap().to_str().unwrap()[PUBLIC.len()..].to_owned()
    };
    let r = t.get(&mut b, &cb).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("url=/search"), "{}", r.body);
    assert!(!r.body.contains("evil.example"));
}
