//! The server-rendered pages: sign-in, search, caller card, verification with live status, actions, audit.

pub(crate) mod auth;
pub(crate) mod pages;

use crate::session::Session;
use crate::state::AppState;
use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use fctr_core::policy::Permission;
use fctr_core::{Agent, Denial, RequestContext};
use fctr_ports::Reason;
use subtle::ConstantTimeEq as _;

/// What every page's frame shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chrome {
    pub demo: bool,
    pub phone_url: Option<String>,
    pub signed_in: bool,
    pub role: String,
    pub csrf: String,
    pub can_audit: bool,
}

/// The request as the pages see it: the live session (if any), the agent, and the audit context.
pub(crate) struct Ctx {
    pub state: AppState,
    pub session: Option<Session>,
    pub rctx: RequestContext,
    pub headers: HeaderMap,
    pub path: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let rctx = crate::edge::request_context(parts);
        let session = crate::access::load_session(state, &parts.headers, &rctx).await;
        Ok(Self {
            state: state.clone(),
            session,
            rctx,
            headers: parts.headers.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

/// Reads a cookie value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Ctx {
    /// The agent of the session.
    pub fn agent(&self) -> Option<Agent> {
        self.session
            .as_ref()
            .map(|s| crate::access::agent_of(&self.state, s))
    }

    /// The agent re-checked against the IdP before a high-risk action ([`crate::access::for_action`]): the
    /// refusal page when the role is revoked (the session is gone then) or the IdP cannot be read.
    pub async fn agent_for_action(
        &self,
        session: &Session,
        agent: &Agent,
        back: &str,
    ) -> Result<Agent, Response> {
        match crate::access::for_action(&self.state, agent, Some(session), &self.rctx).await {
            Ok(a) => Ok(a),
            Err(d) if d.reason == Reason::AgentRoleRevoked => {
                let mut r = self.denial_page(&d, "/");
                let name = self.state.settings().session_cookie();
                let clear = auth::set_cookie(self, name, "", "Strict", Some(0));
                r.headers_mut().append(header::SET_COOKIE, clear);
                Err(r)
            }
            Err(d) => Err(self.denial_page(&d, back)),
        }
    }

    /// The page frame.
    pub fn chrome(&self) -> Chrome {
        let st = &self.state.0;
        let mut c = Chrome {
            demo: st.settings.demo.is_some(),
            phone_url: st.settings.demo.as_ref().map(|d| d.phone_url.to_string()),
            ..Chrome::default()
        };
        if let Some(s) = &self.session {
            c.signed_in = true;
            c.role = s.role.clone().unwrap_or_default();
            c.csrf = s.csrf.clone();
            let policy = st.engine.policy();
            c.can_audit = s
                .role
                .as_deref()
                .and_then(|r| policy.role(r))
                .is_some_and(|r| policy.permits(r, Permission::ViewAudit));
        }
        c
    }

    /// The signed-in session and agent, or the sign-in page (401).
    pub fn require(&self) -> Result<(Session, Agent), Response> {
        match (&self.session, self.agent()) {
            (Some(s), Some(a)) => Ok((s.clone(), a)),
            _ => Err(self.sign_in_page(
                StatusCode::UNAUTHORIZED,
                "Your session has ended or you are not signed in.",
            )),
        }
    }

    /// The sign-in page.
    pub fn sign_in_page(&self, status: StatusCode, notice: &str) -> Response {
        let return_to = if self.path.starts_with("/auth/") {
            "/search".to_owned()
        } else {
            self.path.clone()
        };
        let t = LoginPage {
            c: Chrome {
                signed_in: false,
                ..self.chrome()
            },
            notice: notice.to_owned(),
            return_to: url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect(),
        };
        render(status, &t)
    }

    /// Checks CSRF on a state-changing form: the Origin / Sec-Fetch-Site headers, then the synchronizer token
    /// (constant-time). Refusals are audited and answered with 403.
    pub async fn check_csrf(
        &self,
        session: &Session,
        agent: &Agent,
        token: &str,
    ) -> Result<(), Response> {
        let fetch_site = self
            .headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok());
        let origin_ok = match self
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            // Under `Referrer-Policy: no-referrer` a browser sends `Origin: null` on form POSTs (Fetch spec,
            // "serializing a request origin"). Accept that only when the browser itself vouches the request is
            // same-origin (`Sec-Fetch-Site` cannot be set by page script); the session-bound token is still
            // required below.
            Some("null") => fetch_site == Some("same-origin"),
            Some(o) => o == self.state.settings().origin(),
            None => true,
        };
        let fetch_ok = match fetch_site {
            Some(s) => s == "same-origin" || s == "none",
            None => true,
        };
        let token_ok =
            !token.is_empty() && bool::from(token.as_bytes().ct_eq(session.csrf.as_bytes()));
        if origin_ok && fetch_ok && token_ok {
            return Ok(());
        }
        tracing::warn!(origin_ok, fetch_ok, token_ok, "CSRF check failed");
        self.state
            .engine()
            .audit_edge_denial(Some(agent), Reason::CsrfRejected, &self.rctx)
            .await;
        Err(self.denial_page(&Denial::new(Reason::CsrfRejected), "/search"))
    }

    /// A refusal page: the engine's words, the remedy and the reason code.
    pub fn denial_page(&self, d: &Denial, back: &str) -> Response {
        let status = denial_status(d.reason);
        let t = MessagePage {
            c: self.chrome(),
            tone: "bad",
            heading: "Refused".into(),
            message: d.message().into(),
            remedy: d.remedy().into(),
            reason: d.reason.as_str().into(),
            retry_after: d.retry_after_secs(),
            back: back.into(),
            back_label: "Back".into(),
        };
        let mut resp = render(status, &t);
        if let Some(r) = d.retry_after_secs() {
            if let Ok(v) = HeaderValue::from_str(&r.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }

    /// A plain message page.
    pub fn message(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        back: &str,
    ) -> Response {
        let t = MessagePage {
            c: self.chrome(),
            tone: "info",
            heading: heading.into(),
            message: message.into(),
            remedy: String::new(),
            reason: String::new(),
            retry_after: None,
            back: back.into(),
            back_label: "Back".into(),
        };
        render(status, &t)
    }
}

/// The HTTP status for a refusal.
pub(crate) fn denial_status(r: Reason) -> StatusCode {
    match r {
        Reason::RateLimited | Reason::VerificationLocked => StatusCode::TOO_MANY_REQUESTS,
        Reason::TargetNotFound | Reason::VerificationNotFound => StatusCode::NOT_FOUND,
        Reason::InvalidInput => StatusCode::BAD_REQUEST,
        Reason::IdpError => StatusCode::BAD_GATEWAY,
        Reason::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Reason::AuthenticationFailed => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}

/// Renders a template; a template error is a generic 500 with no detail.
pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub c: Chrome,
    pub notice: String,
    pub return_to: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub c: Chrome,
    pub tone: &'static str,
    pub heading: String,
    pub message: String,
    pub remedy: String,
    pub reason: String,
    pub retry_after: Option<u64>,
    pub back: String,
    pub back_label: String,
}

/// The 404 page (every unknown path), with the security headers like every other response.
pub(crate) async fn not_found(ctx: Ctx) -> Response {
    ctx.message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        "/",
    )
}
