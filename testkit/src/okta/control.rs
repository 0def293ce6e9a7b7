//! The fake Okta's part of the control plane: its push transactions on simulated phones ([`Phones`]), its OIDC
//! hooks ([`OidcControl`]), the Okta-only `/_fake/plain-pushes`, the phone page's form, and what it plugs into
//! the skeleton's `/_fake/…` routes ([`Tenant`]).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::FakeOktaState;
use super::state::{PushState, ts};
use super::util::html_escape;
use crate::server::Core;
use crate::server::control::{Pending, PhoneWords, Tenant, control_error};
use crate::server::phones::sealed::Sealed;
use crate::server::phones::{self, PhoneAnswer, PhoneBook};

/// A push waiting for an answer on a simulated phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPush {
    /// Transaction id (the last segment of the poll href).
    pub transaction_id: String,
    /// Okta user id.
    pub user_id: String,
    /// The user's login.
    pub login: String,
    /// The push factor id.
    pub factor_id: String,
    /// The number the caller must pick, when number matching was requested.
    pub correct_answer: Option<u8>,
    /// The three numbers the phone shows (the right one among them), or empty without number matching.
    pub choices: Vec<u8>,
    /// When the push was sent.
    pub created: DateTime<Utc>,
    /// When it reads `TIMEOUT`.
    pub expires_at: DateTime<Utc>,
    /// `User-Agent` of the verify request (the phone shows it).
    pub user_agent: Option<String>,
    /// Client IP the phone shows (`X-Forwarded-For` of the verify request, if any).
    pub client_ip: Option<String>,
    /// Whether the phone was told to ignore it (it then times out).
    pub ignored: bool,
}

/// Why a simulated phone could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// No such transaction.
    #[error("unknown push transaction")]
    UnknownTransaction,
    /// The push was already answered or has expired.
    #[error("push is no longer waiting ({0:?})")]
    NotWaiting(PushState),
}

/// Simulated phones: list pending pushes and answer them.
pub type Phones = crate::server::Phones<FakeOktaState>;

impl Phones {
    /// Approves a push picking `number`.
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn approve(&self, transaction_id: &str, number: u8) -> Result<PushState, PhoneError> {
        self.answer(
            transaction_id,
            PhoneAnswer::Approve {
                number: Some(number),
            },
        )
    }
}

impl Sealed for FakeOktaState {}

/// Okta push transactions (`transactionId`), with the user's login.
impl PhoneBook for FakeOktaState {
    type Pending = PendingPush;
    type State = PushState;
    type Error = PhoneError;

    fn pending_pushes(&self) -> Vec<PendingPush> {
        let now = self.shared.now();
        let inner = self.shared.lock();
        let mut out: Vec<PendingPush> = inner
            .txs
            .values()
            .filter(|t| t.push.waiting_at(now))
            .map(|t| PendingPush {
                transaction_id: t.id.clone(),
                user_id: t.user_id.clone(),
                login: inner
                    .user_idx_by_id(&t.user_id)
                    .map(|i| inner.users[i].login.clone())
                    .unwrap_or_default(),
                factor_id: t.factor_id.clone(),
                correct_answer: t.push.number,
                choices: t.push.choices.clone(),
                created: t.push.created,
                expires_at: t.push.expires_at,
                user_agent: t.user_agent.clone(),
                client_ip: t.client_ip.clone(),
                ignored: t.push.ignored,
            })
            .collect();
        out.sort_by_key(|p| p.created);
        out
    }

    fn answer_push(
        &self,
        transaction_id: &str,
        answer: PhoneAnswer,
    ) -> Result<PushState, PhoneError> {
        let now = self.shared.now();
        let mut inner = self.shared.lock();
        let tx = inner
            .txs
            .get_mut(transaction_id)
            .ok_or(PhoneError::UnknownTransaction)?;
        tx.push.answer(now, answer).map_err(PhoneError::NotWaiting)
    }

    fn push_to(p: &PendingPush, user: &str) -> bool {
        p.user_id == user || p.login == user
    }
}

/// OIDC test hooks.
pub type OidcControl = crate::server::OidcControl<FakeOktaState>;

/// The fake Okta's own OIDC hooks: advertised algorithms, key rotation, the JWKS endpoint.
impl OidcControl {
    /// Makes the discovery document advertise these ID-token algorithms besides RS256 (for example `HS256`), so
    /// a test can show the relying party keeps its own allow-list. Takes effect for clients discovering after
    /// the call.
    pub fn advertise_id_token_algs(&self, algs: &[&str]) {
        self.tenant
            .shared
            .set_extra_id_token_algs(algs.iter().map(|a| (*a).to_owned()).collect());
    }

    /// Rotates the ID-token signing key, as an IdP does: a fresh RSA key with a new `kid` signs every ID token
    /// from now on, and the JWKS publishes only it (the old key is withdrawn). Returns the new `kid`.
    ///
    /// # Errors
    /// [`KeyError`](super::KeyError) if the key cannot be generated.
    pub async fn rotate_signing_key(&self) -> Result<String, super::KeyError> {
        self.tenant.shared.keys.rotate().await
    }

    /// Signs ID tokens EdDSA (a fresh Ed25519 key, published alone in the JWKS as an `OKP` key) from now on, and
    /// advertises `EdDSA` in discovery. Returns the new `kid`.
    ///
    /// # Errors
    /// [`KeyError`](super::KeyError) if the key cannot be generated.
    pub fn sign_id_tokens_with_eddsa(&self) -> Result<String, super::KeyError> {
        self.tenant.shared.keys.use_eddsa()
    }

    /// Releases `groups` only at the userinfo endpoint, never in the ID token (`true`), as a provider that keeps
    /// ID tokens small does; `false` puts it back in the ID token.
    pub fn release_groups_only_at_userinfo(&self, only: bool) {
        crate::server::lock(&self.tenant.shared.web_app).groups_only_at_userinfo = only;
    }

    /// Accepts only `method` at the token endpoint for the web app (the portal); `None`: either secret method.
    pub fn require_client_auth(&self, method: Option<super::WebClientAuth>) {
        crate::server::lock(&self.tenant.shared.web_app).client_auth = method;
    }

    /// Registers a public JWK for the web app's `private_key_jwt` assertions (Okta: the app's public keys).
    pub fn register_client_key(&self, jwk: serde_json::Value) {
        crate::server::lock(&self.tenant.shared.web_app)
            .client_keys
            .push(jwk);
    }

    /// Makes discovery advertise exactly these `token_endpoint_auth_methods_supported` (a test of the relying
    /// party's start-up check).
    pub fn advertise_client_auth_methods(&self, methods: &[&str]) {
        crate::server::lock(&self.tenant.shared.web_app).advertised =
            Some(methods.iter().map(|m| (*m).to_owned()).collect());
    }

    /// How many requests the JWKS endpoint (`/oauth2/v1/keys`) has received.
    #[must_use]
    pub fn jwks_requests(&self) -> u64 {
        self.tenant.shared.keys.jwks_requests()
    }

    /// Parks JWKS requests (after counting them) until [`OidcControl::release_jwks`]: a test can then run other
    /// requests while a relying party's key fetch is in flight.
    pub fn hold_jwks(&self) {
        self.tenant.shared.keys.hold();
    }

    /// Lets held and later JWKS requests through.
    pub fn release_jwks(&self) {
        self.tenant.shared.keys.release();
    }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP control API (Okta only; the shared routes are the skeleton's)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlainPushRequest {
    /// A user (handle, login or id); absent for the whole org.
    #[serde(default)]
    user: Option<String>,
    plain: bool,
}

/// `POST /_fake/plain-pushes {"user"?: "...", "plain": true}`: pushes come back without a number challenge.
pub(crate) async fn plain_pushes(
    State(st): State<FakeOktaState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<PlainPushRequest>(&body) {
        Ok(r) if st.set_plain_pushes(r.user.as_deref(), r.plain) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => control_error(StatusCode::NOT_FOUND, "no such user"),
        Err(_) => control_error(
            StatusCode::BAD_REQUEST,
            r#"body must be {"user"?: "...", "plain": true|false}"#,
        ),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Simulated phone page

/// The phone page's words on the fake Okta.
const PHONE: PhoneWords = PhoneWords {
    banner: "FAKE OKTA",
    no_pending: "<p>No pending push notifications. This page refreshes every 3 seconds.</p>",
    id_field: "tx",
    approve: "Yes, it's me",
    pick_number: "<p>Tap the number shown on the sign-in screen:</p>",
    deny: "No, it's not me",
};

/// An HTML page with the fake Okta banner and strict headers.
pub(crate) fn html_page(title: &str, body: &str, refresh: Option<u32>, csp: &str) -> Response {
    crate::common::page::html_page(PHONE.banner, title, body, refresh, csp)
}

#[derive(Deserialize)]
pub(crate) struct PhoneForm {
    tx: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

pub(crate) async fn phone_answer(
    State(st): State<FakeOktaState>,
    Form(f): Form<PhoneForm>,
) -> Response {
    let Some(answer) = phones::phone_form_answer(f.action.as_deref(), f.number.as_deref()) else {
        return control_error(StatusCode::BAD_REQUEST, "approve, pick a number or deny");
    };
    let msg = match st.phones().answer(&f.tx, answer) {
        Ok(PushState::Success) => "Approved.",
        Ok(PushState::Rejected) => "Rejected.",
        Ok(_) => "Noted.",
        Err(_) => "That push is no longer waiting.",
    };
    crate::common::page::back_to_phone(msg, f.user)
}

impl super::FakeOktaState {
    /// Removes `user` (handle, login or id) from the group named `group`, as an admin would in the Okta console.
    /// Returns whether the user was a member.
    pub fn remove_from_group(&self, user: &str, group: &str) -> bool {
        let mut inner = self.shared.lock();
        let Some(gid) = inner
            .groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.id.clone())
        else {
            return false;
        };
        let Some(i) = self.user_index(&inner, user) else {
            return false;
        };
        let before = inner.users[i].groups.len();
        inner.users[i].groups.retain(|g| g != &gid);
        inner.users[i].groups.len() != before
    }

    /// Sets the first and last name of `user` (handle, login or id). Returns whether the user exists.
    pub fn set_user_name(&self, user: &str, first: &str, last: &str) -> bool {
        let mut inner = self.shared.lock();
        let Some(i) = self.user_index(&inner, user) else {
            return false;
        };
        inner.users[i].first_name = first.to_owned();
        inner.users[i].last_name = last.to_owned();
        true
    }

    fn user_index(&self, inner: &super::state::Inner, user: &str) -> Option<usize> {
        let id = self
            .shared
            .fixtures
            .user(user)
            .map_or_else(|| user.to_owned(), |f| f.id.clone());
        inner.user_idx_by_any(&id)
    }
}

impl Pending for PendingPush {
    fn id(&self) -> &str {
        &self.transaction_id
    }

    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn login(&self) -> &str {
        &self.login
    }

    fn ignored(&self) -> bool {
        self.ignored
    }

    fn choices(&self) -> &[u8] {
        &self.choices
    }

    fn card_head(&self, ts: fn(DateTime<Utc>) -> String) -> String {
        format!(
            "<h2>Okta Verify</h2><p>Did you just try to sign in?</p><p><strong>{}</strong></p>\
<p class=\"muted\">Request from {} &middot; {} &middot; expires {}</p>",
            html_escape(&self.login),
            html_escape(self.client_ip.as_deref().unwrap_or("unknown location")),
            html_escape(self.user_agent.as_deref().unwrap_or("unknown browser")),
            html_escape(&ts(self.expires_at)),
        )
    }
}

/// The fake Okta in the skeleton: push transactions, `SSWS` fixtures, Okta field names and timestamps.
impl Tenant for FakeOktaState {
    const PHONE: PhoneWords = PHONE;
    const ANSWER_ID_FIELD: &'static str = "transactionId";
    const UNKNOWN_PUSH: &'static str = "unknown transaction";
    const TOTP_FIELDS: (&'static str, &'static str) = ("userId", "passCode");
    const NO_TOTP: &'static str = "no such user or no TOTP factor";
    const GET_USER_ROUTE: &'static str = "GET /api/v1/users/{id}";

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
        let status = self.user_status(user)?;
        let mut v = serde_json::to_value(self.effects(user)?).unwrap_or_default();
        v["status"] = json!(status);
        Some(v)
    }

    fn totp_code(&self, user: &str) -> Option<String> {
        self.totp_now(user)
    }

    fn sessions_revoked(&self, user: &str) -> Option<u64> {
        self.effects(user).map(|e| u64::from(e.sessions_revoked))
    }

    fn is_unknown(e: &PhoneError) -> bool {
        matches!(e, PhoneError::UnknownTransaction)
    }
}
