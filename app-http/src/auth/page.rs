//! The pages' extractors: [`Page`] (any visitor), [`SignedIn`] (a live session and its agent) and
//! [`CsrfForm`] (a signed-in form post whose CSRF check passed). Their rejections are pages: the sign-in page
//! (401) when there is no live session, the refusal page (403 `csrf_rejected`) when the check fails, axum's own
//! answer when the body is not a form.

use crate::reply::html::Page;
use crate::session::Session;
use crate::state::AppState;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use fctr_core::Agent;
use fctr_ports::Reason;
use serde::Deserialize;
use serde::de::DeserializeOwned;

impl FromRequestParts<AppState> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let rctx = crate::edge::request_context(parts);
        let loaded = super::session::load(state, &parts.headers, &rctx).await;
        let state_down = loaded.is_err();
        if state_down {
            // Neither signed in nor out: the request is refused (503) and the refusal is audited, with no agent
            // (the session could not be read).
            state
                .engine()
                .audit_edge_denial(None, Reason::StateUnavailable, &rctx)
                .await;
        }
        Ok(Self {
            state: state.clone(),
            session: loaded.ok().flatten(),
            state_down,
            rctx,
            headers: parts.headers.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

/// A signed-in agent on the pages: the live session and the agent it stands for (with its stored role). Derefs
/// to the [`Page`] for rendering.
pub(crate) struct SignedIn {
    pub page: Page,
    pub session: Session,
    pub agent: Agent,
}

impl std::ops::Deref for SignedIn {
    type Target = Page;
    fn deref(&self) -> &Page {
        &self.page
    }
}

impl SignedIn {
    /// The signed-in agent of a page, or the sign-in page (401).
    pub fn from_page(page: Page) -> Result<Self, Response> {
        if page.state_down {
            return Err(page.state_down_page());
        }
        let Some(session) = page.session.clone() else {
            return Err(page.session_ended());
        };
        let agent = super::session::agent_of(&page.state, &session);
        Ok(Self {
            page,
            session,
            agent,
        })
    }
}

/// The agent re-checked against the IdP before a high-risk action ([`super::role::for_action`]): the refusal
/// page when the role is revoked (the session is gone then, and its cookie is cleared) or the IdP cannot be read.
pub(crate) async fn for_action(
    page: &Page,
    session: &Session,
    agent: &Agent,
    back: &str,
) -> Result<Agent, Response> {
    let st = &page.state;
    match super::role::for_action(st, agent, Some(session), &page.rctx).await {
        Ok(a) => Ok(a),
        Err(d) if d.reason == Reason::AgentRoleRevoked => {
            let r = page.denial_page(&d, "/");
            let jar = CookieJar::new().add(super::session::clear_session_cookie(st.settings()));
            Err((jar, r).into_response())
        }
        Err(d) => Err(page.denial_page(&d, back)),
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(page) = Page::from_request_parts(parts, state).await;
        Self::from_page(page)
    }
}

/// A form field set with the session's CSRF token beside it.
#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// A state-changing form from a signed-in agent whose CSRF check ([`super::csrf::check`]) passed, with the
/// form's other fields parsed as `T`. In the order the handlers used to write by hand: the session is loaded,
/// the form parsed, then the session required, then the check made.
pub(crate) struct CsrfForm<T>(pub SignedIn, pub T);

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(page) = Page::from_request_parts(&mut parts, state).await;
        let req = Request::from_parts(parts, body);
        let Form(f) = Form::<WithCsrf<T>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let me = SignedIn::from_page(page)?;
        if let Err(d) = super::csrf::check(
            &me.page.state,
            &me.page.headers,
            &me.session,
            &me.agent,
            &f.csrf,
            &me.page.rctx,
        )
        .await
        {
            return Err(me.page.denial_page(&d, "/search"));
        }
        Ok(Self(me, f.form))
    }
}

/// A form with no field but the CSRF token (sign-out).
#[derive(Deserialize)]
pub(crate) struct NoFields {}
