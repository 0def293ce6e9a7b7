//! Agent sign-in (OIDC code + PKCE + state + nonce), the callback, and sign-out.

use crate::auth::session::{
    MAX_ID_LEN, clear_name_cookie, clear_session_cookie, cookie, name_cookie, session_cookie,
    session_id, set_cookie,
};
use crate::auth::{CsrfForm, NoFields};
use crate::reply::html::{Chrome, LoginPage, MessagePage, Page};
use crate::reply::{denial_status, render};
use crate::session::{PreLogin, random_token};
use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use fctr_ports::{AgentId, Reason};
use serde::Deserialize;
use std::collections::HashMap;
use subtle::ConstantTimeEq as _;

/// A local path to return to after sign-in, or `/search`. Refuses anything that could leave the site.
pub(crate) fn local_path(p: &str) -> String {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.contains("://")
        && !p.chars().any(char::is_control)
        && p.len() < 512
        && !p.starts_with("/auth/");
    if ok && p != "/" {
        p.to_owned()
    } else {
        "/search".to_owned()
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /auth/login`: redirect to the IdP with a fresh state, nonce and PKCE challenge.
pub(crate) async fn login(ctx: Page, Query(q): Query<LoginQuery>) -> Response {
    let begin = ctx.state.0.oidc.begin();
    let key = random_token();
    let pre = PreLogin {
        state: begin.state,
        nonce: begin.nonce,
        pkce_verifier: begin.pkce_verifier,
        return_to: local_path(q.return_to.as_deref().unwrap_or("/search")),
        created: ctx.state.0.clock.now(),
    };
    if ctx
        .state
        .sessions()
        .put_pre_login(&key, &pre)
        .await
        .is_err()
    {
        return ctx.state_down_page();
    }
    let secs = i64::try_from(ctx.state.settings().timeouts.pre_login.as_secs()).unwrap_or(600);
    // Lax: the IdP's redirect back is a cross-site top-level navigation.
    let settings = ctx.state.settings();
    let c = set_cookie(
        settings,
        settings.pre_login_cookie(),
        key,
        SameSite::Lax,
        Some(secs),
    );
    (CookieJar::new().add(c), Redirect::to(begin.url.as_str())).into_response()
}

#[derive(Template)]
#[template(path = "continue.html")]
struct ContinuePage {
    c: Chrome,
    target: String,
}

/// `GET /auth/callback`: check state, exchange the code, verify the ID token, map groups to a role, and start
/// a new session (new id: the pre-login cookie and any old session are dropped).
pub(crate) async fn callback(ctx: Page, Query(q): Query<HashMap<String, String>>) -> Response {
    let st = ctx.state.clone();
    let pre_name = st.settings().pre_login_cookie();
    let pre = match cookie(&ctx.headers, pre_name) {
        Some(k) if k.len() < MAX_ID_LEN => match st.sessions().take_pre_login(&k).await {
            Ok(p) => p,
            Err(_) => return ctx.state_down_page(),
        },
        _ => None,
    };
    let clear_pre = set_cookie(
        st.settings(),
        pre_name,
        String::new(),
        SameSite::Lax,
        Some(0),
    );
    let Some(pre) = pre else {
        return fail(&ctx, clear_pre, "no pre-login state").await;
    };
    if q.contains_key("error") {
        return fail(&ctx, clear_pre, "IdP returned an error").await;
    }
    let (Some(code), Some(state)) = (q.get("code"), q.get("state")) else {
        return fail(&ctx, clear_pre, "missing code or state").await;
    };
    if !bool::from(state.as_bytes().ct_eq(pre.state.as_bytes())) {
        return fail(&ctx, clear_pre, "state mismatch").await;
    }
    let identity = match st.0.oidc.finish(code, &pre.pkce_verifier, &pre.nonce).await {
        Ok(i) => i,
        Err(crate::oidc::OidcError::GroupsClaimMissing) => {
            return missing_claim(&ctx, clear_pre).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "ID token refused");
            return fail(&ctx, clear_pre, "token refused").await;
        }
    };
    let groups = identity.groups.unwrap_or_default();
    let Ok(agent_id) = AgentId::parse(identity.subject.clone()) else {
        return fail(&ctx, clear_pre, "bad subject").await;
    };
    let agent = match st
        .engine()
        .sign_in(agent_id.clone(), &groups, &ctx.rctx)
        .await
    {
        Ok(a) => a,
        Err(d) => {
            metrics::counter!("fctr_sign_ins_total", "outcome" => "denied").increment(1);
            let heading = if d.reason == Reason::NoRole {
                "Not authorized"
            } else {
                "Sign-in refused"
            };
            let r = render(
                denial_status(d.reason),
                &MessagePage {
                    c: Chrome {
                        signed_in: false,
                        ..ctx.chrome()
                    },
                    tone: "bad",
                    heading: heading.into(),
                    message: d.message().into(),
                    remedy: d.remedy().into(),
                    reason: d.reason.as_str().into(),
                    retry_after: None,
                    back: "/".into(),
                    back_label: "Back to the sign-in page".into(),
                },
            );
            return (CookieJar::new().add(clear_pre), r).into_response();
        }
    };
    // Rotate: whatever session this browser had is gone; the new one gets a fresh id and CSRF token.
    if let Some(old) = session_id(&st, &ctx.headers) {
        if st.sessions().remove(&old).await.is_err() {
            return ctx.state_down_page();
        }
    }
    let now = st.0.clock.now();
    let session = crate::session::start(agent_id, agent.role().map(str::to_owned), now);
    let sid = session.id.clone();
    match st.sessions().create(&session).await {
        Ok(true) => {}
        // A fresh 256-bit id that is taken: nothing sane to do but refuse.
        Ok(false) => return fail(&ctx, clear_pre, "session id collision").await,
        Err(_) => return ctx.state_down_page(),
    }
    // The role just came from the IdP's own token: as fresh as a directory read, so the first high-risk action
    // within the role cache's minute needs no second read of the agent's groups.
    if agent.role().is_some() {
        st.0.roles.put(&agent, now).await;
    }
    metrics::counter!("fctr_sign_ins_total", "outcome" => "success").increment(1);
    tracing::info!(agent = %agent.pseudonym(), role = ?agent.role(), "agent signed in");
    // A page on our own origin continues to the target, so the SameSite=Strict cookie is sent (a redirect
    // chain started by the IdP would count as cross-site).
    let r = render(
        StatusCode::OK,
        &ContinuePage {
            c: Chrome {
                signed_in: false,
                ..ctx.chrome()
            },
            target: pre.return_to,
        },
    );
    let mut jar = CookieJar::new()
        .add(session_cookie(st.settings(), sid))
        .add(clear_pre);
    if let Some(name) = identity.name.as_deref() {
        jar = jar.add(name_cookie(st.settings(), name));
    }
    (jar, r).into_response()
}

/// The IdP released no groups claim, in the ID token or at userinfo: nothing maps the agent to a role, and the
/// fix is the IdP administrator's. The page names the claim the portal reads (audited as a failed sign-in).
async fn missing_claim(ctx: &Page, clear_pre: Cookie<'static>) -> Response {
    let claim = ctx.state.0.oidc.settings().groups_claim.clone();
    tracing::warn!(claim = %claim, "sign-in: the groups claim is in neither the ID token nor userinfo");
    ctx.state.engine().sign_in_failed(&ctx.rctx).await;
    metrics::counter!("fctr_sign_ins_total", "outcome" => "failed").increment(1);
    let r = render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            c: Chrome {
                signed_in: false,
                ..ctx.chrome()
            },
            tone: "bad",
            heading: "Your sign-in carries no groups".into(),
            message: format!(
                "Your identity provider sent no \"{claim}\" claim, neither in the ID token nor at its userinfo \
                 endpoint, so fctr cannot tell which helpdesk role you have."
            ),
            remedy: format!(
                "Ask your identity provider's administrator to release the \"{claim}\" claim to this app (the \
                 groups or app roles that map to fctr's tiers), then sign in again."
            ),
            reason: "groups_claim_missing".into(),
            retry_after: None,
            back: "/auth/login".into(),
            back_label: "Sign in again".into(),
        },
    );
    (CookieJar::new().add(clear_pre), r).into_response()
}

async fn fail(ctx: &Page, clear_pre: Cookie<'static>, why: &'static str) -> Response {
    tracing::warn!(why, "sign-in failed");
    ctx.state.engine().sign_in_failed(&ctx.rctx).await;
    metrics::counter!("fctr_sign_ins_total", "outcome" => "failed").increment(1);
    let r = ctx.sign_in_page(StatusCode::UNAUTHORIZED, "Sign-in failed. Sign in again.");
    (CookieJar::new().add(clear_pre), r).into_response()
}

/// `POST /auth/logout`: ends the session on the server and clears the cookie.
pub(crate) async fn logout(CsrfForm(me, _): CsrfForm<NoFields>) -> Response {
    let (ctx, session, agent) = (&me.page, &me.session, &me.agent);
    // Not removed means not signed out: say so rather than clear the cookie of a session that still works.
    if ctx.state.sessions().remove(&session.id).await.is_err() {
        return ctx.state_down_page();
    }
    ctx.state.engine().sign_out(agent, &ctx.rctx).await;
    let clear = clear_session_cookie(ctx.state.settings());
    let clear_name = clear_name_cookie(ctx.state.settings());
    let page = LoginPage {
        c: Chrome {
            signed_in: false,
            ..ctx.chrome()
        },
        notice: "You are signed out.".into(),
        return_to: "%2Fsearch".into(),
    };
    let r = render(StatusCode::OK, &page);
    (CookieJar::new().add(clear).add(clear_name), r).into_response()
}
