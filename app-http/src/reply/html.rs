//! The portal's HTML frame and the pages every layer may need: the refusal page, the plain message page and the
//! sign-in page, rendered from a [`Page`] (the request as a page sees it).

use crate::session::Session;
use crate::state::{AppState, Settings};
use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use fctr_core::policy::Permission;
use fctr_core::{Denial, RequestContext};

/// What every page's frame shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chrome {
    pub demo: bool,
    pub phone_url: Option<String>,
    pub signed_in: bool,
    pub role: String,
    pub csrf: String,
    pub can_audit: bool,
    /// The agent's role may decide four-eyes approval requests (`four_eyes.approver_roles`).
    pub can_approve: bool,
    /// The signed-in agent's display name (from their own name cookie), empty when unknown.
    pub agent_name: String,
}

impl Chrome {
    /// The frame with nobody signed in (demo banner only).
    pub fn signed_out(settings: &Settings) -> Self {
        let demo = settings.demo.as_ref();
        Self {
            demo: demo.is_some(),
            phone_url: demo.map(|d| d.phone_url.to_string()),
            ..Self::default()
        }
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

impl MessagePage {
    /// The wait before a retry, in minutes or hours as an agent reads it.
    pub fn retry_words(&self) -> String {
        self.retry_after
            .map(crate::web::duration_words)
            .unwrap_or_default()
    }
}

/// A refusal page: the engine's words, the remedy and the reason code (no `Retry-After` header: the caller adds
/// it).
pub(crate) fn refusal_page(
    c: Chrome,
    d: &Denial,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    let t = MessagePage {
        c,
        tone: "bad",
        heading: "Refused".into(),
        message: d.message().into(),
        remedy: d.remedy().into(),
        reason: d.reason.as_str().into(),
        retry_after,
        back: String::new(),
        back_label: String::new(),
    };
    render(status, &t)
}

/// The request as the pages see it: the live session (if any), the audit context, the headers and the path.
/// Built by its extractor in `auth`, which loads the session the one way every path loads it.
pub(crate) struct Page {
    pub state: AppState,
    pub session: Option<Session>,
    /// The session store could not be read: the agent is neither signed in nor signed out (fail closed: 503).
    pub state_down: bool,
    pub rctx: RequestContext,
    pub headers: HeaderMap,
    pub path: String,
}

impl Page {
    /// The page frame.
    pub fn chrome(&self) -> Chrome {
        let mut c = Chrome::signed_out(self.state.settings());
        if let Some(s) = &self.session {
            c.signed_in = true;
            c.role = s.role.clone().unwrap_or_default();
            c.csrf = s.csrf.clone();
            let policy = self.state.engine().policy();
            c.agent_name = crate::auth::session::agent_name(&self.state, &self.headers);
            c.can_audit = s
                .role
                .as_deref()
                .and_then(|r| policy.role(r))
                .is_some_and(|r| policy.permits(r, Permission::ViewAudit));
            c.can_approve = s
                .role
                .as_deref()
                .is_some_and(|r| policy.four_eyes().enabled() && policy.four_eyes().may_approve(r));
        }
        c
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

    /// The refusal page for a request the shared state store could not serve (503, `state_unavailable`).
    pub fn state_down_page(&self) -> Response {
        self.denial_page(
            &Denial::new(fctr_ports::Reason::StateUnavailable),
            &self.path,
        )
    }

    /// The sign-in page for a request that needs a live session and has none (401).
    pub fn session_ended(&self) -> Response {
        self.sign_in_page(
            StatusCode::UNAUTHORIZED,
            "Your session has ended or you are not signed in.",
        )
    }

    /// A refusal page: the engine's words, the remedy and the reason code.
    pub fn denial_page(&self, d: &Denial, back: &str) -> Response {
        let status = super::denial_status(d.reason);
        let t = MessagePage {
            c: self.chrome(),
            tone: "bad",
            heading: "Refused".into(),
            message: d.message().into(),
            remedy: d.remedy().into(),
            reason: d.reason.as_str().into(),
            retry_after: d.retry_after_secs(),
            back: back.into(),
            back_label: match d.reason {
                fctr_ports::Reason::NoLiveGrant
                | fctr_ports::Reason::GrantUsed
                | fctr_ports::Reason::GrantExpired
                | fctr_ports::Reason::GrantDoesNotCoverAction
                    if back.starts_with("/callers/") =>
                {
                    "Verify the caller again".into()
                }
                _ if back.starts_with("/callers/") => "Back to the caller".into(),
                _ => "Back".into(),
            },
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
