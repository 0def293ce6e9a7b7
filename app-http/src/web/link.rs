//! The caller's side of verification by IdP sign-in (`idp_sign_in`, docs/idp-sign-in.md): pages for someone
//! with no portal session, on their own device.
//!
//! - `GET /link/{token}` only shows what is about to happen (a link preview or a mail scanner that fetches the
//!   URL spends nothing);
//! - `POST /link/{token}` opens the link (once: the engine's compare-and-set) and sends the browser to the IdP
//!   with a fresh state, nonce and PKCE verifier, `prompt=login`, `max_age=0` and the configured MFA demand;
//! - `GET /link/callback` checks the state, exchanges the code, verifies the ID token, and hands the engine what
//!   it proves. The engine judges it; the agent's page turns verified (or shows the red flag) by itself.
//!
//! No session is made and nothing about the caller is shown: the pages say only whether the check worked. The
//! link's text never reaches a log (routes are logged by template) or the IdP (`Referrer-Policy: no-referrer`).

use crate::auth::session::{MAX_ID_LEN, cookie, set_cookie};
use crate::reply::html::{Page, render};
use crate::session::{PreLogin, random_token};
use crate::state::Settings;
use askama::Template;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{CookieJar, SameSite};
use fctr_core::{Denial, OpenedLink, SignInEvidence};
use fctr_ports::{Reason, VerificationId};
use std::collections::HashMap;
use subtle::ConstantTimeEq as _;

/// What `return_to` holds in a caller's pre-login state: the verification, after this prefix.
const LINK_PREFIX: &str = "link:";

/// Where a caller's pre-login state is stored: bound to the browser's cookie *and* the `state` sent to the IdP,
/// so a callback without the right `state` (a cross-site GET riding on the cookie, an `error` nobody asked for)
/// finds nothing and spends nothing: the caller's real callback still works.
fn pre_login_key(cookie: &str, state: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("fctr-link:{cookie}:{state}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The URL the caller opens for a link's text.
pub(crate) fn link_url(settings: &Settings, token: &str) -> String {
    format!(
        "{}/link/{token}",
        settings.public_url.as_str().trim_end_matches('/')
    )
}

/// The URL as a QR code, SVG markup (made here from the URL: no outside service sees the link).
pub(crate) fn qr_svg(url: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    tone: &'static str,
    heading: String,
    message: String,
    reason: String,
    /// Where the "sign in" button posts; empty for no button.
    action: String,
    /// Where the page sends the browser on (the IdP's authorize URL); empty for nowhere.
    go: String,
}

fn page(
    status: StatusCode,
    tone: &'static str,
    heading: &str,
    message: &str,
    reason: &str,
) -> Response {
    render(
        status,
        &LinkPage {
            tone,
            heading: heading.to_owned(),
            message: message.to_owned(),
            reason: reason.to_owned(),
            action: String::new(),
            go: String::new(),
        },
    )
}

/// The page a caller sees for a refusal: plain words, nothing about the account or the agent's side.
fn refused(d: &Denial) -> Response {
    let (status, heading, message) = match d.reason {
        Reason::SignInLinkInvalid => (
            StatusCode::GONE,
            "This link does not work any more",
            "It was used already, it expired, or it was never valid. Ask the helpdesk agent for a new link.",
        ),
        Reason::SignInOtherUser => (
            StatusCode::FORBIDDEN,
            "This link was for someone else",
            "The account you signed in with is not the one the helpdesk is helping. The helpdesk agent has been told.",
        ),
        Reason::SignInStale | Reason::SignInNoMfa => (
            StatusCode::FORBIDDEN,
            "That sign-in did not confirm it's you",
            "The sign-in has to be a fresh one, with your second factor. Ask the helpdesk agent for a new link.",
        ),
        Reason::StateUnavailable | Reason::RateLimited => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again in a moment",
            "The helpdesk service is busy. Open the link again in a minute.",
        ),
        _ => (
            StatusCode::FORBIDDEN,
            "That sign-in did not work",
            "Ask the helpdesk agent for a new link.",
        ),
    };
    page(status, "bad", heading, message, d.reason.as_str())
}

/// Whether this deployment offers sign-in links at all (the engine and the portal both configured).
fn offered(ctx: &Page) -> bool {
    ctx.state.settings().caller_sign_in.is_some() && ctx.state.engine().sign_in_links().is_some()
}

/// The link's text, if it could be one (the engine checks the rest).
fn plausible(token: &str) -> bool {
    token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `GET /link/{token}`: says what is about to happen; spends nothing.
pub(crate) async fn show(ctx: Page, Path(token): Path<String>) -> Response {
    if !offered(&ctx) || !plausible(&token) {
        return refused(&Denial::new(Reason::SignInLinkInvalid));
    }
    render(
        StatusCode::OK,
        &LinkPage {
            tone: "info",
            heading: "Confirm it's you".into(),
            message: "The IT helpdesk asked you to confirm who you are. You will sign in with your usual work account and your second factor; the helpdesk learns only whether it worked.".into(),
            reason: String::new(),
            action: format!("/link/{token}"),
            go: String::new(),
        },
    )
}

/// `POST /link/{token}`: opens the link (once) and sends the browser on to the IdP.
///
/// Only from the link's own page: a cross-site POST (a lure page that auto-submits the form, to skip the
/// warning the page shows) is refused before the link is touched. The page then goes on to the IdP by a page of
/// its own (the portal's CSP allows forms to post only to the portal, redirects included).
pub(crate) async fn open(ctx: Page, Path(token): Path<String>) -> Response {
    let Some(auth) = ctx.state.settings().caller_sign_in.clone() else {
        return refused(&Denial::new(Reason::SignInLinkInvalid));
    };
    if !offered(&ctx) || !plausible(&token) {
        return refused(&Denial::new(Reason::SignInLinkInvalid));
    }
    if !crate::edge::same_origin(&ctx.headers, &ctx.state.settings().origin()) {
        tracing::warn!("sign-in link: cross-site POST refused");
        return page(
            StatusCode::FORBIDDEN,
            "bad",
            "Open the link yourself",
            "This page can only be continued from the link the helpdesk gave you. Open that link directly.",
            Reason::CsrfRejected.as_str(),
        );
    }
    let opened = match ctx
        .state
        .engine()
        .open_sign_in_link(&ctx.rctx, &token)
        .await
    {
        Ok(o) => o,
        Err(d) => return refused(&d),
    };
    let begin = match ctx.state.oidc().begin_caller(&auth) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "caller sign-in cannot start");
            return refused(&Denial::new(Reason::SignInFailed));
        }
    };
    let key = random_token();
    let stored_as = pre_login_key(&key, &begin.state);
    let pre = PreLogin {
        state: begin.state,
        nonce: begin.nonce,
        pkce_verifier: begin.pkce_verifier,
        return_to: format!("{LINK_PREFIX}{}", opened.verification),
        created: opened.opened_at,
    };
    if ctx
        .state
        .sessions()
        .put_pre_login(&stored_as, &pre)
        .await
        .is_err()
    {
        return refused(&Denial::new(Reason::StateUnavailable));
    }
    let settings = ctx.state.settings();
    let secs = i64::try_from(settings.timeouts.pre_login.as_secs()).unwrap_or(600);
    // Lax: the IdP's redirect back is a cross-site top-level navigation.
    let c = set_cookie(
        settings,
        settings.link_cookie(),
        key,
        SameSite::Lax,
        Some(secs),
    );
    metrics::counter!("fctr_sign_in_links_total", "step" => "opened").increment(1);
    let go = render(
        StatusCode::OK,
        &LinkPage {
            tone: "info",
            heading: "Signing you in".into(),
            message: "Continue to your company's sign-in page.".into(),
            reason: String::new(),
            action: String::new(),
            go: begin.url.to_string(),
        },
    );
    (CookieJar::new().add(c), go).into_response()
}

/// `POST /link/{token}/decline`: whoever opened the link did not call the helpdesk ("I did not call"). The link is
/// spent and policy's "not me" response runs (docs/idp-sign-in.md). From the link's own page only, as the button.
pub(crate) async fn decline(ctx: Page, Path(token): Path<String>) -> Response {
    if !offered(&ctx) || !plausible(&token) {
        return refused(&Denial::new(Reason::SignInLinkInvalid));
    }
    if !crate::edge::same_origin(&ctx.headers, &ctx.state.settings().origin()) {
        tracing::warn!("sign-in link: cross-site decline refused");
        return page(
            StatusCode::FORBIDDEN,
            "bad",
            "Open the link yourself",
            "This page can only be continued from the link the helpdesk gave you. Open that link directly.",
            Reason::CsrfRejected.as_str(),
        );
    }
    match ctx
        .state
        .engine()
        .decline_sign_in_link(&ctx.rctx, &token)
        .await
    {
        Ok(()) => {
            metrics::counter!("fctr_sign_in_links_total", "step" => "declined").increment(1);
            page(
                StatusCode::OK,
                "ok",
                "Thank you, the helpdesk has been told",
                "Nothing was changed on your account. Someone may be calling the helpdesk in your name: the security team has been alerted. If you get more messages like this, tell your IT security team.",
                "",
            )
        }
        Err(d) => refused(&d),
    }
}

/// `GET /link/callback`: the IdP sends the caller back; the engine judges what the token proves.
pub(crate) async fn callback(ctx: Page, Query(q): Query<HashMap<String, String>>) -> Response {
    let st = ctx.state.clone();
    let name = st.settings().link_cookie();
    let clear = set_cookie(st.settings(), name, String::new(), SameSite::Lax, Some(0));
    let jar = CookieJar::new().add(clear);
    let Some(auth) = st.settings().caller_sign_in.clone() else {
        return (jar, refused(&Denial::new(Reason::SignInLinkInvalid))).into_response();
    };
    let state = q.get("state").map(String::as_str).unwrap_or_default();
    let pre = match cookie(&ctx.headers, name) {
        Some(k) if k.len() < MAX_ID_LEN && !state.is_empty() && state.len() < MAX_ID_LEN => {
            match st
                .sessions()
                .take_pre_login(&pre_login_key(&k, state))
                .await
            {
                Ok(p) => p,
                Err(_) => {
                    return (jar, refused(&Denial::new(Reason::StateUnavailable))).into_response();
                }
            }
        }
        _ => None,
    };
    // No state of ours (a replayed or forged callback, or another browser): nothing to judge.
    let Some((pre, verification)) = pre.and_then(|p| {
        let id = p
            .return_to
            .strip_prefix(LINK_PREFIX)
            .and_then(|v| VerificationId::parse(v).ok())?;
        Some((p, id))
    }) else {
        return (jar, refused(&Denial::new(Reason::SignInLinkInvalid))).into_response();
    };
    let opened = OpenedLink {
        verification,
        opened_at: pre.created,
    };
    // Found by the state, so it matches; compared again all the same (constant time).
    let evidence = match q.get("code") {
        _ if q.contains_key("error") => SignInEvidence::Failed,
        Some(code) if bool::from(state.as_bytes().ct_eq(pre.state.as_bytes())) => {
            match st
                .oidc()
                .finish_caller(code, &pre.pkce_verifier, &pre.nonce, &auth)
                .await
            {
                Ok(s) => SignInEvidence::Token {
                    subject: s.subject,
                    auth_time: s.auth_time,
                    mfa: s.mfa,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "caller's ID token refused");
                    SignInEvidence::Failed
                }
            }
        }
        _ => SignInEvidence::Failed,
    };
    let outcome = st
        .engine()
        .finish_sign_in_link(&ctx.rctx, &opened, &evidence)
        .await;
    let label = match &outcome {
        Ok(()) => "verified",
        Err(d) => d.reason.as_str(),
    };
    metrics::counter!("fctr_sign_in_links_total", "step" => label).increment(1);
    let r = match outcome {
        Ok(()) => page(
            StatusCode::OK,
            "ok",
            "Thank you, that's confirmed",
            "You can close this page and go back to your call: the helpdesk agent sees that it worked.",
            "",
        ),
        Err(d) => refused(&d),
    };
    (jar, r).into_response()
}
