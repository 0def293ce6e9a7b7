//! The fake Entra's part of the control plane: its connector sessions on simulated phones ([`Phones`]), its
//! OIDC hooks ([`OidcControl`]), the phone page's form, and what it plugs into the skeleton's `/_fake/…` routes
//! ([`Tenant`]).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::FakeEntraState;
use super::state::{PushState, SessionKind, ts};
use crate::common::util::html_escape;
use crate::server::Core;
use crate::server::control::{Pending, PhoneWords, Tenant, control_error};
use crate::server::phones::sealed::Sealed;
use crate::server::phones::{self, PhoneAnswer, PhoneBook};

/// A push (or voice call) waiting for an answer on a simulated phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPush {
    /// The connector `SessionId`.
    pub session_id: String,
    /// The client's `ContextId`.
    pub context_id: String,
    /// Object id of the user.
    pub user_id: String,
    /// The user's UPN.
    pub upn: String,
    /// Push or voice call.
    pub kind: SessionKind,
    /// The number to pick (`ValidEntropyNumber`), for asynchronous pushes.
    pub number: Option<u8>,
    /// The numbers the phone shows (the right one among them), or empty.
    pub choices: Vec<u8>,
    /// Whether the Begin call blocks (`SyncCall=true`).
    pub sync_call: bool,
    /// The `CallerName` of the Begin call.
    pub caller_name: Option<String>,
    /// When it was sent.
    pub created: DateTime<Utc>,
    /// When it reads `PhoneAppNoResponse`.
    pub expires_at: DateTime<Utc>,
    /// Whether the phone was told to ignore it.
    pub ignored: bool,
}

/// Why a simulated phone could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// No such session, or not a push or call.
    #[error("unknown push session")]
    UnknownSession,
    /// The push was already answered or has expired.
    #[error("push is no longer waiting ({0:?})")]
    NotWaiting(PushState),
}

/// Simulated phones: list pending pushes and calls, and answer them.
pub type Phones = crate::server::Phones<FakeEntraState>;

impl Phones {
    /// Approves (picking `number` when one is shown).
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn approve(&self, session_id: &str, number: Option<u8>) -> Result<PushState, PhoneError> {
        self.answer(session_id, PhoneAnswer::Approve { number })
    }
}

impl Sealed for FakeEntraState {}

/// Connector push and voice sessions (`SessionId`), with the user's UPN.
impl PhoneBook for FakeEntraState {
    type Pending = PendingPush;
    type State = PushState;
    type Error = PhoneError;

    fn pending_pushes(&self) -> Vec<PendingPush> {
        let now = self.shared.now();
        let inner = self.shared.lock();
        let mut out: Vec<PendingPush> = inner
            .sessions
            .values()
            .filter(|s| matches!(s.kind, SessionKind::Push | SessionKind::Voice))
            .filter(|s| !s.finished && s.push.waiting_at(now))
            .map(|s| PendingPush {
                session_id: s.id.clone(),
                context_id: s.context_id.clone(),
                user_id: s.user_id.clone(),
                upn: inner
                    .user_idx_by_id(&s.user_id)
                    .map(|i| inner.users[i].upn.clone())
                    .unwrap_or_default(),
                kind: s.kind,
                number: s.push.number,
                choices: s.push.choices.clone(),
                sync_call: s.sync_call,
                caller_name: s.caller_name.clone(),
                created: s.push.created,
                expires_at: s.push.expires_at,
                ignored: s.push.ignored,
            })
            .collect();
        out.sort_by_key(|p| p.created);
        out
    }

    fn answer_push(&self, session_id: &str, answer: PhoneAnswer) -> Result<PushState, PhoneError> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let s = inner
            .sessions
            .get_mut(session_id)
            .filter(|s| matches!(s.kind, SessionKind::Push | SessionKind::Voice))
            .ok_or(PhoneError::UnknownSession)?;
        if s.finished {
            return Err(PhoneError::NotWaiting(s.push.state_at(now)));
        }
        s.push.answer(now, answer).map_err(PhoneError::NotWaiting)
    }

    fn push_to(p: &PendingPush, user: &str) -> bool {
        p.user_id.eq_ignore_ascii_case(user) || p.upn.eq_ignore_ascii_case(user)
    }
}

/// OIDC test hooks.
pub type OidcControl = crate::server::OidcControl<FakeEntraState>;

#[derive(Deserialize)]
pub(crate) struct PhoneForm {
    session: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

pub(crate) async fn phone_answer(
    State(st): State<FakeEntraState>,
    Form(f): Form<PhoneForm>,
) -> Response {
    let Some(answer) = phones::phone_form_answer(f.action.as_deref(), f.number.as_deref()) else {
        return control_error(StatusCode::BAD_REQUEST, "approve, pick a number or deny");
    };
    let msg = match st.phones().answer(&f.session, answer) {
        Ok(PushState::Approved) => "Approved.",
        Ok(PushState::Denied) => "Denied.",
        Ok(_) => "Noted.",
        Err(_) => "That notification is no longer waiting.",
    };
    crate::common::page::back_to_phone(msg, f.user)
}

impl Pending for PendingPush {
    fn id(&self) -> &str {
        &self.session_id
    }

    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn login(&self) -> &str {
        &self.upn
    }

    fn ignored(&self) -> bool {
        self.ignored
    }

    fn choices(&self) -> &[u8] {
        &self.choices
    }

    fn card_head(&self, ts: fn(DateTime<Utc>) -> String) -> String {
        let title = match self.kind {
            SessionKind::Voice => "Incoming call: press # to approve",
            _ => "Microsoft Authenticator: approve sign-in?",
        };
        format!(
            "<h2>{}</h2><p><strong>{}</strong></p><p class=\"muted\">{} &middot; expires {}</p>",
            html_escape(title),
            html_escape(&self.upn),
            html_escape(self.caller_name.as_deref().unwrap_or("unknown application")),
            html_escape(&ts(self.expires_at)),
        )
    }
}

/// The fake Entra in the skeleton: connector sessions, Graph timestamps and its control field names.
impl Tenant for FakeEntraState {
    const PHONE: PhoneWords = PhoneWords {
        banner: "FAKE ENTRA",
        no_pending: "<p>No pending notifications. This page refreshes every 3 seconds.</p>",
        id_field: "session",
        approve: "Approve",
        pick_number: "<p>Enter the number shown to sign in:</p>",
        deny: "Deny",
    };
    const ANSWER_ID_FIELD: &'static str = "sessionId";
    const UNKNOWN_PUSH: &'static str = "unknown session";
    const TOTP_FIELDS: (&'static str, &'static str) = ("user", "code");
    const NO_TOTP: &'static str = "no such user or no OATH method";
    const GET_USER_ROUTE: &'static str = "GET /v1.0/users/{id}";

    fn core(&self) -> &Arc<Core> {
        &self.shared.core
    }

    fn timestamp(t: DateTime<Utc>) -> String {
        ts(t)
    }

    fn fixtures_json(&self) -> Value {
        serde_json::to_value(self.fixtures()).unwrap_or_default()
    }

    fn effects_json(&self, user: &str) -> Option<Value> {
        let enabled = self.account_enabled(user)?;
        let mut v = serde_json::to_value(self.effects(user)?).unwrap_or_default();
        v["accountEnabled"] = json!(enabled);
        Some(v)
    }

    fn totp_code(&self, user: &str) -> Option<String> {
        self.totp_now(user)
    }

    fn sessions_revoked(&self, user: &str) -> Option<u64> {
        self.effects(user).map(|e| u64::from(e.sessions_revoked))
    }

    fn is_unknown(e: &PhoneError) -> bool {
        matches!(e, PhoneError::UnknownSession)
    }
}
