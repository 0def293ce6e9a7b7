//! Verification by IdP sign-in end to end through the portal and the fake Okta: the agent sends a one-time link,
//! the caller opens it (no portal session), signs in at the fake with `prompt=login`, `max_age=0` and
//! `acr_values`, and the agent's page turns verified by itself. Then every way it must refuse: someone else
//! signing in, a stale `auth_time`, no MFA, a nonce mismatch, a replayed link, an expired link, a replayed
//! callback.

use crate::helpers::{Browser, PUBLIC, TestApp, between, start_with};
use axum::http::StatusCode;
use fctr_core::SignInLinks;
use fctr_portal::oidc::CallerAuth;
use fctr_ports::{EventKind, Outcome, Reason};
use fctr_testkit::okta::IdTokenTweak;

const POLICY: &str = r#"
[factors.default]
accepted = ["idp_sign_in", "push", "totp"]
"#;

const ACR: &str = "urn:okta:loa:2fa:any";

async fn portal() -> TestApp {
    start_with(|o| {
        o.policy = Some(fctr_core::policy::Policy::parse(POLICY).unwrap());
        o.caller_sign_in = Some((
            CallerAuth {
                acr_values: Some(ACR.into()),
                ..CallerAuth::default()
            },
            SignInLinks::default(),
        ));
    })
    .await
}

/// agent2 starts a sign-in verification of alice; returns (the agent's browser, the verification page, the
/// link's path).
async fn link_sent(t: &TestApp) -> (Browser, String, String) {
    let mut a = t.sign_in("agent2").await;
    let card = t.find(&mut a, "alice@example.com").await;
    let card_page = t.get(&mut a, &card).await;
    assert!(
        card_page.body.contains("value=\"idp_sign_in\""),
        "{}",
        card_page.body
    );
    let v = t.send_push(&mut a, &card, "idp_sign_in").await;
    let page = t.get(&mut a, &v).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Send the sign-in link"), "{}", page.body);
    assert!(page.body.contains("<svg"), "a QR code: {}", page.body);
    let url = between(
        &page.body,
        "<output id=\"link-url\" class=\"note\">",
        "</output>",
    )
    .expect("the link")
    .to_owned();
    assert!(url.starts_with(&format!("{PUBLIC}/link/")), "{url}");
    assert!(!url.contains("alice"), "no PII in the link: {url}");
    // Nothing was sent to the caller's phone: the link is the challenge.
    assert!(t.demo.fake.phones().pending().is_empty());
    (a, v, url[PUBLIC.len()..].to_owned())
}

/// The IdP authorize URL the page after the link's POST goes on to (a page, not a redirect: the portal's CSP
/// lets forms post only to the portal, redirects included).
pub(crate) fn goes_to(r: &crate::helpers::Resp) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    between(&r.body, "id=\"go-sign-in\" href=\"", "\"")
        .expect("the page goes on to the IdP")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The caller opens the link and signs in at the fake as `who`; returns the caller's browser and the callback
/// path (not yet followed).
async fn caller_signs_in(t: &TestApp, link: &str, who: &str) -> (Browser, String) {
    let mut c = Browser::default();
    let shown = t.get(&mut c, link).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert!(shown.body.contains("continue-sign-in"), "{}", shown.body);
    let r = t.post(&mut c, link, &[]).await;
    let authorize = goes_to(&r);
    for want in [
        "prompt=login",
        "max_age=0",
        "acr_values=urn%3Aokta%3Aloa%3A2fa%3Aany",
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Flink%2Fcallback",
        "code_challenge_method=S256",
    ] {
        assert!(authorize.contains(want), "{want} in {authorize}");
    }
    let user = t.demo.fake.fixtures().id_of(who);
    let (page, loc) = crate::helpers::fake_idp_login(&authorize, &user).await;
    assert!(
        page.contains(&user),
        "prompt=login offers every user: {page}"
    );
    assert!(
        loc.starts_with(&format!("{PUBLIC}/link/callback?")),
        "{loc}"
    );
    (c, loc[PUBLIC.len()..].to_owned())
}

fn challenge_results(events: &[fctr_ports::AuditEvent], reason: Reason) -> usize {
    events
        .iter()
        .filter(|e| {
            e.kind == EventKind::ChallengeResult
                && e.outcome == Outcome::Rejected
                && e.reason == Some(reason)
        })
        .count()
}

#[tokio::test]
async fn the_callers_own_sign_in_turns_the_agents_page_verified() {
    let t = portal().await;
    let (mut a, v, link) = link_sent(&t).await;
    let (mut c, cb) = caller_signs_in(&t, &link, "alice").await;
    let page = t.get(&mut c, &cb).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Thank you"), "{}", page.body);
    assert!(
        !page.body.contains("Alice"),
        "the caller's page names no one"
    );
    assert!(
        c.session().is_none(),
        "a caller's sign-in makes no portal session"
    );
    let r = t.wait_page(&mut a, &v, "id=\"grant\"").await;
    assert!(r.body.contains("Verified"), "{}", r.body);
    let events = t.audit_events().await;
    assert!(events.iter().any(|e| e.kind == EventKind::GrantIssued));
    // The replayed callback (the browser's back button, or a stolen URL) finds no state: refused.
    let again = t.get(&mut c, &cb).await;
    assert_eq!(again.status, StatusCode::GONE, "{}", again.body);
}

#[tokio::test]
async fn someone_else_signing_in_is_refused_and_the_agent_sees_the_red_flag() {
    let t = portal().await;
    let (mut a, v, link) = link_sent(&t).await;
    let (mut c, cb) = caller_signs_in(&t, &link, "bob").await;
    let page = t.get(&mut c, &cb).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("for someone else"), "{}", page.body);
    let r = t.wait_page(&mut a, &v, "sign_in_other_user").await;
    assert!(r.body.contains("Sign-in refused"), "{}", r.body);
    assert!(
        r.body.contains("treat this call as suspicious"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("id=\"grant\""));
    assert!(
        !r.body.contains("id=\"retry\""),
        "no retry after a red flag: {}",
        r.body
    );
    let events = t.audit_events().await;
    assert_eq!(challenge_results(&events, Reason::SignInOtherUser), 1);
    assert!(events.iter().all(|e| e.kind != EventKind::GrantIssued));
}

/// The token is wrong in one way: the caller's page says so, the agent's page shows the reason, it is audited,
/// and no grant exists.
async fn refused_by_token(tweak: IdTokenTweak, reason: Reason) {
    let t = portal().await;
    let (mut a, v, link) = link_sent(&t).await;
    let (mut c, cb) = caller_signs_in(&t, &link, "alice").await;
    t.demo.fake.oidc().tweak_next_id_token(tweak);
    let page = t.get(&mut c, &cb).await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "{tweak:?}: {}",
        page.body
    );
    let r = t.wait_page(&mut a, &v, reason.as_str()).await;
    assert!(r.body.contains("Sign-in refused"), "{}", r.body);
    // The way on is a new link (not a push, and no warning about a denied push).
    assert!(r.body.contains("id=\"new-link\""), "{}", r.body);
    assert!(!r.body.contains("A denied push"), "{}", r.body);
    let events = t.audit_events().await;
    assert_eq!(challenge_results(&events, reason), 1, "{tweak:?}");
    assert!(events.iter().all(|e| e.kind != EventKind::GrantIssued));
}

#[tokio::test]
async fn a_stale_auth_time_is_refused() {
    refused_by_token(IdTokenTweak::StaleAuthTime, Reason::SignInStale).await;
}

#[tokio::test]
async fn a_sign_in_without_mfa_is_refused() {
    refused_by_token(IdTokenTweak::NoMfaClaims, Reason::SignInNoMfa).await;
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    refused_by_token(IdTokenTweak::WrongNonce, Reason::SignInFailed).await;
}

#[tokio::test]
async fn a_link_opens_once() {
    let t = portal().await;
    let (_a, _v, link) = link_sent(&t).await;
    let mut first = Browser::default();
    let r = t.post(&mut first, &link, &[]).await;
    goes_to(&r);
    let mut second = Browser::default();
    let r = t.post(&mut second, &link, &[]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert!(r.body.contains("sign_in_link_invalid"), "{}", r.body);
    assert!(!t.denials(Reason::SignInLinkInvalid).await.is_empty());
}

#[tokio::test]
async fn an_expired_link_does_not_open_and_the_agent_may_send_another() {
    let t = portal().await;
    let (mut a, v, link) = link_sent(&t).await;
    t.clock
        .advance(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));
    let mut c = Browser::default();
    let r = t.post(&mut c, &link, &[]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    let r = t.wait_page(&mut a, &v, "id=\"retry\"").await;
    assert!(!r.body.contains("id=\"grant\""), "{}", r.body);
}

#[tokio::test]
async fn a_cross_site_post_cannot_skip_the_links_own_page() {
    let t = portal().await;
    let (_a, _v, link) = link_sent(&t).await;
    // A lure page elsewhere auto-submits the form: refused, and the link is not spent.
    let mut lured = Browser::default();
    let r = t
        .post_with(&mut lured, &link, &[], Some("https://evil.example"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("csrf_rejected"), "{}", r.body);
    let mut c = Browser::default();
    goes_to(&t.post(&mut c, &link, &[]).await);
}

#[tokio::test]
async fn a_callback_without_the_right_state_spends_nothing() {
    let t = portal().await;
    let (mut a, v, link) = link_sent(&t).await;
    let (mut c, cb) = caller_signs_in(&t, &link, "alice").await;
    // Riding on the caller's cookie (a cross-site top-level GET): an error, and a code with another state.
    for forged in [
        "/link/callback?error=access_denied".to_owned(),
        "/link/callback?code=forged&state=forged".to_owned(),
    ] {
        let r = t.get(&mut c.clone(), &forged).await;
        assert_eq!(r.status, StatusCode::GONE, "{forged}: {}", r.body);
    }
    // The caller's own callback still works.
    let page = t.get(&mut c, &cb).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    t.wait_page(&mut a, &v, "id=\"grant\"").await;
}

#[tokio::test]
async fn a_made_up_link_is_refused_and_nothing_is_audited() {
    let t = portal().await;
    let before = t.audit_events().await.len();
    let mut c = Browser::default();
    for path in [
        "/link/nonsense",
        "/link/00000000-0000-4000-8000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = t.post(&mut c, path, &[]).await;
        assert_eq!(r.status, StatusCode::GONE, "{path}: {}", r.body);
    }
    let r = t.get(&mut c, "/link/callback?code=x&state=y").await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
    assert_eq!(t.audit_events().await.len(), before);
}

#[tokio::test]
async fn the_api_returns_the_link_path_for_an_idp_sign_in_challenge() {
    let t = portal().await;
    let token = crate::api::id_token(&t, "agent2").await;
    let (status, body, _) = crate::api::call(
        &t,
        "POST",
        &format!(
            "/api/v1/users/{}/verifications",
            t.demo.fake.fixtures().id_of("alice")
        ),
        Some(&token),
        Some(serde_json::json!({"factor_id": "idp_sign_in"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let path = body["sign_in_link"]["path"].as_str().expect("a link path");
    assert!(path.starts_with("/link/"), "{path}");
    assert_eq!(body["factor"], "idp_sign_in");
    assert_eq!(body["sign_in_link"]["opened"], false);
}

/// The same flow against the fake Entra tenant and the production wiring (`[caller_sign_in]` in the file):
/// Entra's v2 ID token carries no `amr`, so MFA shows in `acrs`, demanded through the `claims` parameter; the
/// caller is matched by `oid`.
mod entra {
    use super::*;
    use crate::entra::{Credential, EntraPortal, start_custom};

    const ENTRA_POLICY: &str = r#"
[factors.default]
accepted = ["idp_sign_in", "push", "totp"]

[[roles]]
name = "tier2"
groups = ["fctr.tier2"]
permissions = ["lookup", "verify", "clear_sessions", "expire_password"]
"#;

    async fn portal(extra: &str) -> EntraPortal {
        start_custom(Credential::Secret, ENTRA_POLICY, extra).await
    }

    /// agent2 sends bob a link; bob opens it and signs in at the fake Entra as `who`. Returns the agent's
    /// browser, the verification page, and the caller's callback page.
    async fn round_trip(
        t: &EntraPortal,
        who: &str,
        want_claims: bool,
    ) -> (Browser, String, crate::helpers::Resp) {
        let mut a = t.sign_in("agent2").await;
        let card = t.find(&mut a, "bob@example.com").await;
        let csrf = a.csrf.clone();
        let r = t
            .post(
                &mut a,
                &format!("{card}/verify"),
                &[("csrf", &csrf), ("factor_id", "idp_sign_in")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let v = r.location();
        let page = t.get(&mut a, &v).await;
        let url = between(
            &page.body,
            "<output id=\"link-url\" class=\"note\">",
            "</output>",
        )
        .expect("the link")
        .to_owned();
        let link = &url[PUBLIC.len()..];
        let mut c = Browser::default();
        let r = t.post(&mut c, link, &[]).await;
        let authorize = goes_to(&r);
        assert!(authorize.contains("prompt=login"), "{authorize}");
        assert!(authorize.contains("max_age=0"), "{authorize}");
        assert_eq!(
            authorize.contains("claims="),
            want_claims,
            "the claims parameter: {authorize}"
        );
        let user = t.fake.fixtures().id_of(who);
        let (_, loc) = crate::helpers::fake_idp_login(&authorize, &user).await;
        assert!(loc.starts_with(&format!("{PUBLIC}/link/callback")), "{loc}");
        let done = t.get(&mut c, &loc[PUBLIC.len()..]).await;
        (a, v, done)
    }

    async fn page_until(t: &EntraPortal, b: &mut Browser, path: &str, needle: &str) -> String {
        for _ in 0..100 {
            let r = t.get(b, path).await;
            if r.body.contains(needle) {
                return r.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{needle} never showed on {path}");
    }

    #[tokio::test]
    async fn entra_callers_sign_in_with_the_authentication_context_verifies_them() {
        let t = portal("\n[caller_sign_in]\nauth_context = \"c1\"\n").await;
        let (mut a, v, done) = round_trip(&t, "bob", true).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        let body = page_until(&t, &mut a, &v, "id=\"grant\"").await;
        assert!(body.contains("Verified"), "{body}");
    }

    #[tokio::test]
    async fn entra_without_an_authentication_context_shows_no_mfa_and_is_refused() {
        // No amr in Entra's token and no context asked for: nothing proves MFA, so fctr refuses (fail closed).
        let t = portal("\n[caller_sign_in]\n").await;
        let (mut a, v, done) = round_trip(&t, "bob", false).await;
        assert_eq!(done.status, StatusCode::FORBIDDEN, "{}", done.body);
        page_until(&t, &mut a, &v, "sign_in_no_mfa").await;
    }

    #[tokio::test]
    async fn entra_someone_else_by_oid_is_refused() {
        let t = portal("\n[caller_sign_in]\nauth_context = \"c1\"\n").await;
        let (mut a, v, done) = round_trip(&t, "alice", true).await;
        assert_eq!(done.status, StatusCode::FORBIDDEN, "{}", done.body);
        page_until(&t, &mut a, &v, "sign_in_other_user").await;
    }
}

#[tokio::test]
async fn i_did_not_call_tells_the_agent_and_alerts() {
    let t = portal().await;
    let (mut a, v, link) = link_sent(&t).await;
    let mut c = Browser::default();
    let shown = t.get(&mut c, &link).await;
    assert!(shown.body.contains("decline-link"), "{}", shown.body);
    // Only from the link's own page.
    let r = t
        .post_with(
            &mut c,
            &format!("{link}/decline"),
            &[],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t.post(&mut c, &format!("{link}/decline"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("the helpdesk has been told"), "{}", r.body);
    let page = t.wait_page(&mut a, &v, "Not the caller").await;
    assert!(page.body.contains("caller_blocked"), "{}", page.body);
    assert!(!page.body.contains("id=\"retry\""), "{}", page.body);
    let events = t.audit_events().await;
    assert!(events.iter().any(|e| e.kind == EventKind::NotMe));
    // The link is spent.
    let r = t.post(&mut Browser::default(), &link, &[]).await;
    assert_eq!(r.status, StatusCode::GONE, "{}", r.body);
}
