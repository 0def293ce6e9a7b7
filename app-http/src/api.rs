//! The JSON API under `/api/v1`, mirroring the engine's use cases, with an OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Authentication: integrations send `Authorization: Bearer <JWT>` (an ID token from the configured issuer for
//! this client: signature, `iss`, `aud`, `exp` checked; groups mapped to a role by policy). The portal's own
//! pages may call it with their session cookie; then every non-GET request needs `X-CSRF-Token`.
//!
//! Errors are `{"error": {"code": "<reason>", "message": "...", "retry_after": <seconds or null>}}` with stable
//! codes (the engine's reason codes plus `unauthenticated`); never a stack trace or upstream text.

use crate::state::AppState;
use crate::web::denial_status;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use fctr_core::{Agent, CallerCard, Denial, GrantView, RequestContext, VerificationView};
use fctr_ports::{
    ActionKind, AgentId, ExposeSecret, FactorId, Reason, SecretString, SubjectId, UserQuery,
    VerificationId,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use utoipa::{OpenApi, ToSchema};

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    retry_after: Option<u64>,
}

/// The error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's fields.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code (the engine's reason codes, or `unauthenticated`).
    pub code: String,
    /// Words for a person.
    pub message: String,
    /// Seconds until a retry can succeed (rate limits, lockouts).
    pub retry_after: Option<u64>,
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        Self {
            status: denial_status(d.reason),
            code: d.reason.as_str(),
            message: d.message(),
            retry_after: d.retry_after_secs(),
        }
    }
}

impl ApiError {
    fn unauthenticated() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: "A valid bearer token or session is required.",
            retry_after: None,
        }
    }
    fn reason(r: Reason) -> Self {
        Denial::new(r).into()
    }
    /// A refusal decided at the edge (allow-list, CSRF, rate limit).
    pub(crate) fn edge(status: StatusCode, r: Reason, retry_after: Option<u64>) -> Self {
        Self {
            status,
            code: r.as_str(),
            message: Denial::new(r).message(),
            retry_after,
        }
    }
    /// A request body that is not JSON.
    pub(crate) fn unsupported_media_type() -> Self {
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: "Request bodies must be application/json.",
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.to_owned(),
                retry_after: self.retry_after,
            },
        };
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// The authenticated caller of the API.
pub struct ApiAgent {
    agent: Agent,
    ctx: RequestContext,
    /// The portal session, when the caller is the portal's own pages.
    session: Option<crate::session::Session>,
}

impl ApiAgent {
    /// The agent re-checked against the IdP before a high-risk action ([`crate::access::for_action`]).
    async fn for_action(&self, st: &AppState) -> Result<Agent, ApiError> {
        crate::access::for_action(st, &self.agent, self.session.as_ref(), &self.ctx)
            .await
            .map_err(ApiError::from)
    }
}

impl FromRequestParts<AppState> for ApiAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let ctx = crate::edge::request_context(parts);
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(token) = bearer {
            let token = token.trim();
            let now = Utc::now();
            let id = match st.0.bearers.get(token, now) {
                Some(id) => id,
                None => {
                    let id = match st.0.oidc.verify_bearer(token).await {
                        Ok(id) => id,
                        Err(e) => {
                            tracing::warn!(error = %e, "API bearer token refused");
                            // A validly signed token that lacks MFA is a refused sign-in, audited like one at
                            // the browser callback. (Forged or malformed tokens are not: anyone can send those.)
                            if matches!(e, crate::oidc::OidcError::MfaRequired) {
                                st.engine().sign_in_failed(&ctx).await;
                            }
                            return Err(ApiError::unauthenticated());
                        }
                    };
                    st.0.bearers.put(token, &id, now);
                    id
                }
            };
            let agent_id = AgentId::parse(id.subject).map_err(|_| ApiError::unauthenticated())?;
            let agent = st.engine().resolve_agent(agent_id, &id.groups);
            if agent.role().is_none() {
                return Err(ApiError::reason(Reason::NoRole));
            }
            let agent = crate::access::for_bearer(st, agent, &ctx).await?;
            api_quota(st, &agent, &ctx).await?;
            return Ok(Self {
                agent,
                ctx,
                session: None,
            });
        }
        // The portal's own pages: session cookie (loaded exactly as the pages load it), plus the CSRF header on
        // state-changing requests.
        let s = crate::access::load_session(st, &parts.headers, &ctx)
            .await
            .ok_or_else(ApiError::unauthenticated)?;
        let agent = crate::access::agent_of(st, &s);
        if parts.method != axum::http::Method::GET {
            let token = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let origin_ok = parts
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|o| o == st.settings().origin())
                && parts
                    .headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .is_none_or(|s| s == "same-origin" || s == "none");
            if !origin_ok
                || token.is_empty()
                || !bool::from(token.as_bytes().ct_eq(s.csrf.as_bytes()))
            {
                st.engine()
                    .audit_edge_denial(Some(&agent), Reason::CsrfRejected, &ctx)
                    .await;
                return Err(ApiError::reason(Reason::CsrfRejected));
            }
        }
        api_quota(st, &agent, &ctx).await?;
        Ok(Self {
            agent,
            ctx,
            session: Some(s),
        })
    }
}

/// Bearer tokens already verified, so that an integration calling the API many times with one token pays for the
/// signature check once (an RSA verification was the largest single cost of an API lookup).
///
/// An entry is the identity [`crate::oidc::Oidc::verify_bearer`] returned for a token, keyed by the token's SHA-256
/// (the token itself is not kept), and lives until the token's `exp` or [`BearerCache::MAX_AGE`] after it was
/// verified, whichever comes first. A token that was refused is never cached, so every refusal is decided (and
/// logged) by the full check. The cache holds at most [`BearerCache::CAPACITY`] tokens.
#[derive(Default)]
pub struct BearerCache {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], CachedBearer>>,
}

struct CachedBearer {
    identity: crate::oidc::Identity,
    until: DateTime<Utc>,
}

impl std::fmt::Debug for BearerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerCache").finish_non_exhaustive()
    }
}

impl BearerCache {
    /// Most tokens held; when full, expired entries are dropped, then everything if none had expired.
    pub const CAPACITY: usize = 4096;
    /// Longest time a verification is reused, whatever the token's `exp`.
    pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    /// The identity of a token verified earlier and still live at `now`.
    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<crate::oidc::Identity> {
        let key = Self::key(token);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(&key) {
            Some(e) if now < e.until => Some(e.identity.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers the identity of a token that was just verified at `now`. The token's `exp` is read from its
    /// (verified) payload; without a readable `exp` nothing is cached.
    pub fn put(&self, token: &str, identity: &crate::oidc::Identity, now: DateTime<Utc>) {
        let Some(exp) = jwt_exp(token) else {
            return;
        };
        let until = exp.min(now + Self::MAX_AGE);
        if until <= now {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, e| now < e.until);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            Self::key(token),
            CachedBearer {
                identity: identity.clone(),
                until,
            },
        );
    }
}

/// The `exp` claim of a compact JWT whose signature was already checked.
fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    let exp = crate::oidc::payload_of(token)?.get("exp")?.as_i64()?;
    DateTime::from_timestamp(exp, 0)
}

/// The per-agent API quota (`[limits] api_per_agent_per_minute`): 429 with `Retry-After`, audited.
async fn api_quota(st: &AppState, agent: &Agent, ctx: &RequestContext) -> Result<(), ApiError> {
    let key =
        fctr_ports::RateKey::parse(format!("edge:api:agent:{}", agent.pseudonym().as_str())).ok();
    let limit = st.settings().edge.api_per_agent_per_minute;
    let Some(retry) =
        crate::edge::over_limit(st, key, limit, std::time::Duration::from_secs(60)).await
    else {
        return Ok(());
    };
    st.engine()
        .audit_edge_denial(Some(agent), Reason::RateLimited, ctx)
        .await;
    ::metrics::counter!("fctr_edge_denials_total", "reason" => "rate_limited").increment(1);
    let wait = chrono::Duration::from_std(retry).unwrap_or(chrono::Duration::MAX);
    Err(ApiError::from(Denial::after(Reason::RateLimited, wait)))
}

/// A search.
#[derive(Deserialize, ToSchema)]
pub struct SearchRequest {
    /// Login, e-mail or name prefix (a body field, so it never lands in a URL or access log).
    pub query: String,
}

/// A user in search results.
#[derive(Serialize, ToSchema)]
pub struct UserSummary {
    /// IdP user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Account status.
    pub status: String,
}

/// A factor on the caller card.
#[derive(Serialize, ToSchema)]
pub struct FactorDto {
    /// Factor id.
    pub id: String,
    /// Kind (`push`, `totp`, …).
    pub kind: String,
    /// Assurance class in words.
    pub assurance: String,
    /// Policy accepts it now.
    pub accepted: bool,
    /// Why not.
    pub refusal: Option<String>,
}

/// An action on the caller card.
#[derive(Serialize, ToSchema)]
pub struct ActionDto {
    /// The action.
    pub action: String,
    /// The role allows it.
    pub permitted_for_role: bool,
    /// The IdP can do it.
    pub supported: bool,
    /// A live grant covers it now.
    pub available_now: bool,
    /// What policy requires, one sentence per line.
    pub explanation: Vec<String>,
}

/// A live grant.
#[derive(Serialize, ToSchema)]
pub struct GrantDto {
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// One action consumes it.
    pub single_use: bool,
    /// Actions covered.
    pub actions: Vec<String>,
    /// Factor kinds verified.
    pub factors: Vec<String>,
    /// Assurance wording.
    pub assurance: String,
}

fn grant_dto(g: &GrantView) -> GrantDto {
    GrantDto {
        expires_at: g.expires_at,
        single_use: g.single_use,
        actions: g.actions.iter().map(|a| a.as_str().to_owned()).collect(),
        factors: g.factors.iter().map(|f| f.as_str().to_owned()).collect(),
        assurance: g.assurance.to_owned(),
    }
}

/// The caller card.
#[derive(Serialize, ToSchema)]
pub struct CallerCardDto {
    /// IdP user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Account status.
    pub status: String,
    /// `standard` or `privileged`.
    pub class: String,
    /// In a protected group.
    pub protected: bool,
    /// Locked out.
    pub locked_out: bool,
    /// Last sign-in.
    pub last_login: Option<DateTime<Utc>>,
    /// Password last changed.
    pub password_changed: Option<DateTime<Utc>>,
    /// Factors.
    pub factors: Vec<FactorDto>,
    /// Actions.
    pub actions: Vec<ActionDto>,
    /// The agent's live grant for this caller.
    pub grant: Option<GrantDto>,
    /// The factor policy would challenge first.
    pub recommended_factor: Option<String>,
}

fn card_dto(c: &CallerCard) -> CallerCardDto {
    let pii = |p: &Option<fctr_ports::Pii>| p.as_ref().map(|x| x.expose_pii().to_owned());
    CallerCardDto {
        id: c.user.id.as_str().to_owned(),
        login: c.user.login.expose_pii().to_owned(),
        display_name: pii(&c.user.display_name),
        email: pii(&c.user.email),
        phone: pii(&c.user.phone),
        status: c.user.status.as_str().to_owned(),
        class: c.class.as_str().to_owned(),
        protected: c.protected,
        locked_out: c.risk.locked_out,
        last_login: c.risk.last_login,
        password_changed: c.risk.password_changed,
        factors: c
            .factors
            .iter()
            .map(|f| FactorDto {
                id: f.info.id.as_str().to_owned(),
                kind: f.info.kind.as_str().to_owned(),
                assurance: f.assurance.to_owned(),
                accepted: f.accepted,
                refusal: f.refusal.map(|r| r.as_str().to_owned()),
            })
            .collect(),
        actions: c
            .actions
            .iter()
            .map(|a| ActionDto {
                action: a.kind.as_str().to_owned(),
                permitted_for_role: a.permitted_for_role,
                supported: a.supported,
                available_now: a.available_now,
                explanation: a.explanation.lines.clone(),
            })
            .collect(),
        grant: c.grant.as_ref().map(grant_dto),
        recommended_factor: c.recommended_factor.as_ref().map(|f| f.as_str().to_owned()),
    }
}

/// A verification.
#[derive(Serialize, ToSchema)]
pub struct VerificationDto {
    /// Id.
    pub id: String,
    /// `pending`, `challenged`, `verified`, `rejected`, `expired`, `failed`.
    pub status: String,
    /// Outstanding factor kind.
    pub factor: Option<String>,
    /// The number the caller must pick.
    pub number: Option<u16>,
    /// Outstanding challenge expiry.
    pub challenge_expires_at: Option<DateTime<Utc>>,
    /// Window end.
    pub expires_at: DateTime<Utc>,
    /// Distinct factors approved.
    pub approved: u8,
    /// Distinct factors required.
    pub required: u8,
    /// The grant, once verified.
    pub grant: Option<GrantDto>,
    /// Why it ended, if it failed.
    pub reason: Option<String>,
}

fn verification_dto(v: &VerificationView) -> VerificationDto {
    VerificationDto {
        id: v.id.to_string(),
        status: v.status.as_str().to_owned(),
        factor: v.factor.as_ref().map(|f| f.as_str().to_owned()),
        number: v.number,
        challenge_expires_at: v.challenge_expires_at,
        expires_at: v.expires_at,
        approved: v.approved,
        required: v.required,
        grant: v.grant.as_ref().map(grant_dto),
        reason: v.reason.map(|r| r.as_str().to_owned()),
    }
}

/// Which factor to challenge (policy's preferred one when absent).
#[derive(Deserialize, ToSchema, Default)]
pub struct FactorRequest {
    /// Factor id.
    #[serde(default)]
    pub factor_id: Option<String>,
}

/// A code the caller read out.
#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The digits.
    pub code: String,
}

/// A one-time secret, shown once.
#[derive(Serialize, ToSchema)]
pub struct SecretDto {
    /// `reset_link`, `temporary_password`, `temporary_access_pass`.
    pub kind: String,
    /// The secret. Never stored or logged by fctr; the response is `no-store`.
    pub value: String,
    /// Expiry, if the IdP says.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What an action returned.
#[derive(Serialize, ToSchema)]
pub struct ActionResult {
    /// The action that ran.
    pub action: String,
    /// A one-time secret, when the action produced one.
    pub secret: Option<SecretDto>,
    /// The IdP e-mailed the user instead.
    pub emailed: bool,
}

fn subject(id: &str) -> Result<SubjectId, ApiError> {
    SubjectId::parse(id.to_owned()).map_err(|_| ApiError::reason(Reason::InvalidInput))
}

fn factor(f: Option<&str>) -> Result<Option<FactorId>, ApiError> {
    f.filter(|s| !s.is_empty())
        .map(|s| FactorId::parse(s.to_owned()).map_err(|_| ApiError::reason(Reason::InvalidInput)))
        .transpose()
}

fn vid(id: &str) -> Result<VerificationId, ApiError> {
    VerificationId::parse(id).map_err(|_| ApiError::reason(Reason::VerificationNotFound))
}

/// Search callers.
#[utoipa::path(post, path = "/api/v1/users/search", request_body = SearchRequest,
    responses((status = 200, body = [UserSummary]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn search(
    State(st): State<AppState>,
    a: ApiAgent,
    Json(req): Json<SearchRequest>,
) -> Result<Json<Vec<UserSummary>>, ApiError> {
    let q = UserQuery::guess(&req.query).map_err(|_| ApiError::reason(Reason::InvalidInput))?;
    let users = st.engine().search(&a.agent, &a.ctx, &q).await?;
    Ok(Json(
        users
            .iter()
            .map(|u| UserSummary {
                id: u.id.as_str().to_owned(),
                login: u.login.expose_pii().to_owned(),
                display_name: u.display_name.as_ref().map(|x| x.expose_pii().to_owned()),
                email: u.email.as_ref().map(|x| x.expose_pii().to_owned()),
                status: u.status.as_str().to_owned(),
            })
            .collect(),
    ))
}

/// The caller card.
#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = String, Path, description = "IdP user id")),
    responses((status = 200, body = CallerCardDto), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn lookup(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
) -> Result<Json<CallerCardDto>, ApiError> {
    let card = st.engine().lookup(&a.agent, &a.ctx, &subject(&id)?).await?;
    Ok(Json(card_dto(&card)))
}

/// What an action on this caller would require, and why.
#[utoipa::path(get, path = "/api/v1/users/{id}/explain/{action}",
    params(("id" = String, Path), ("action" = String, Path, description = "e.g. reset_password")),
    responses((status = 200, description = "the explanation", body = Object), (status = 404, body = ErrorBody)))]
pub async fn explain(
    State(st): State<AppState>,
    a: ApiAgent,
    Path((id, action)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = ActionKind::parse(&action).ok_or_else(|| ApiError::reason(Reason::InvalidInput))?;
    let e = st
        .engine()
        .explain(&a.agent, &a.ctx, Some(&subject(&id)?), kind)
        .await?;
    Ok(Json(serde_json::to_value(e).unwrap_or_default()))
}

/// Start verifying a caller.
#[utoipa::path(post, path = "/api/v1/users/{id}/verifications", params(("id" = String, Path)), request_body = FactorRequest,
    responses((status = 201, body = VerificationDto), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn begin(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    body: Option<Json<FactorRequest>>,
) -> Result<(StatusCode, Json<VerificationDto>), ApiError> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let f = factor(req.factor_id.as_deref())?;
    let subject = subject(&id)?;
    let agent = a.for_action(&st).await?;
    let v = st
        .engine()
        .begin_verification(&agent, &a.ctx, &subject, f.as_ref())
        .await?;
    let dto = verification_dto(&v);
    st.polls().publish(&agent, v.id, v);
    Ok((StatusCode::CREATED, Json(dto)))
}

/// Challenge the next factor.
#[utoipa::path(post, path = "/api/v1/verifications/{id}/continue", params(("id" = String, Path)), request_body = FactorRequest,
    responses((status = 200, body = VerificationDto), (status = 404, body = ErrorBody)))]
pub async fn continue_(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    body: Option<Json<FactorRequest>>,
) -> Result<Json<VerificationDto>, ApiError> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let f = factor(req.factor_id.as_deref())?;
    let id = vid(&id)?;
    let v = st
        .engine()
        .continue_verification(&a.agent, &a.ctx, id, f.as_ref())
        .await?;
    let dto = verification_dto(&v);
    st.polls().publish(&a.agent, id, v);
    Ok(Json(dto))
}

/// The verification's current state (served from the one shared poller; polling this often does not add IdP
/// calls).
#[utoipa::path(get, path = "/api/v1/verifications/{id}", params(("id" = String, Path)),
    responses((status = 200, body = VerificationDto), (status = 404, body = ErrorBody)))]
pub async fn poll(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
) -> Result<Json<VerificationDto>, ApiError> {
    let id = vid(&id)?;
    let v = st
        .polls()
        .current(&a.agent, id, std::time::Duration::from_secs(10))
        .await?;
    Ok(Json(verification_dto(&v)))
}

/// Check a code the caller read out.
#[utoipa::path(post, path = "/api/v1/verifications/{id}/code", params(("id" = String, Path)), request_body = CodeRequest,
    responses((status = 200, body = VerificationDto), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn code(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    Json(req): Json<CodeRequest>,
) -> Result<Json<VerificationDto>, ApiError> {
    let id = vid(&id)?;
    let c = req.code.trim();
    if c.is_empty() || c.len() > 10 || !c.chars().all(|x| x.is_ascii_digit()) {
        return Err(ApiError::reason(Reason::InvalidInput));
    }
    let v = st
        .engine()
        .submit_code(&a.agent, &a.ctx, id, SecretString::from(c.to_owned()))
        .await?;
    let dto = verification_dto(&v);
    st.polls().publish(&a.agent, id, v);
    Ok(Json(dto))
}

/// Run an action under the agent's live grant. A one-time secret is in this response only (`no-store`).
#[utoipa::path(post, path = "/api/v1/users/{id}/actions/{action}",
    params(("id" = String, Path), ("action" = String, Path)), request_body = FactorRequest,
    responses((status = 200, body = ActionResult), (status = 403, body = ErrorBody)))]
pub async fn act(
    State(st): State<AppState>,
    a: ApiAgent,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<FactorRequest>>,
) -> Result<Response, ApiError> {
    let kind = ActionKind::parse(&action).ok_or_else(|| ApiError::reason(Reason::InvalidInput))?;
    let req = body.map(|b| b.0).unwrap_or_default();
    let f = factor(req.factor_id.as_deref())?;
    let act = fctr_core::ActionRequest::new(kind, f)?;
    let subject = subject(&id)?;
    let agent = a.for_action(&st).await?;
    let outcome = st
        .engine()
        .perform_action(&agent, &a.ctx, &subject, act)
        .await?;
    let r = outcome.receipt;
    let result = ActionResult {
        action: r.kind.as_str().to_owned(),
        secret: r.secret.as_ref().map(|s| SecretDto {
            kind: serde_json::to_value(s.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            value: s.value.expose_secret().to_owned(),
            expires_at: s.expires_at,
        }),
        emailed: r.emailed,
    };
    let mut resp = Json(result).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fctr API",
        description = "Helpdesk identity verification: look up, verify, act under a grant."
    ),
    paths(search, lookup, explain, begin, continue_, poll, code, act),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        SearchRequest,
        UserSummary,
        CallerCardDto,
        FactorDto,
        ActionDto,
        GrantDto,
        VerificationDto,
        FactorRequest,
        CodeRequest,
        ActionResult,
        SecretDto
    ))
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

async fn api_not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "No such API route.",
        retry_after: None,
    }
}

/// The API routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/users/search", post(search))
        .route("/api/v1/users/{id}", get(lookup))
        .route("/api/v1/users/{id}/explain/{action}", get(explain))
        .route("/api/v1/users/{id}/verifications", post(begin))
        .route("/api/v1/users/{id}/actions/{action}", post(act))
        .route("/api/v1/verifications/{id}", get(poll))
        .route("/api/v1/verifications/{id}/continue", post(continue_))
        .route("/api/v1/verifications/{id}/code", post(code))
        .route("/api/v1/{*rest}", get(api_not_found).post(api_not_found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::Identity;
    use base64::Engine as _;

    fn jwt(payload: &serde_json::Value, sig: &str) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{sig}",
            b64(br#"{"alg":"RS256"}"#),
            b64(payload.to_string().as_bytes())
        )
    }

    fn agent() -> Identity {
        Identity {
            subject: "00uagent".to_owned(),
            groups: vec!["helpdesk-tier2".to_owned()],
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_verified_token_is_reused_until_it_expires() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sig");
        assert!(cache.get(&t, at(1_000_000)).is_none());
        cache.put(&t, &agent(), at(1_000_000));
        let got = cache.get(&t, at(1_000_050));
        assert_eq!(got.map(|i| i.subject), Some("00uagent".to_owned()));
        assert!(cache.get(&t, at(1_000_100)).is_none(), "expired at its exp");
    }

    #[test]
    fn reuse_is_capped_at_max_age() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 2_000_000 }), "sig");
        cache.put(&t, &agent(), at(1_000_000));
        let max = BearerCache::MAX_AGE.num_seconds();
        assert!(cache.get(&t, at(1_000_000 + max - 1)).is_some());
        assert!(cache.get(&t, at(1_000_000 + max)).is_none());
    }

    #[test]
    fn any_other_token_is_not_found() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sig");
        cache.put(&t, &agent(), at(1_000_000));
        // Same header and payload, another signature: a forgery must go through the full check.
        let forged = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sih");
        assert!(cache.get(&forged, at(1_000_001)).is_none());
        assert!(cache.get(&format!("{t} "), at(1_000_001)).is_none());
    }

    #[test]
    fn tokens_without_a_usable_exp_are_not_cached() {
        let cache = BearerCache::default();
        for t in [
            jwt(&serde_json::json!({ "sub": "x" }), "sig"),
            jwt(&serde_json::json!({ "exp": "soon" }), "sig"),
            jwt(&serde_json::json!({ "exp": 999_999 }), "sig"),
            "not-a-jwt".to_owned(),
        ] {
            cache.put(&t, &agent(), at(1_000_000));
            assert!(cache.get(&t, at(1_000_000)).is_none(), "{t}");
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = BearerCache::default();
        for i in 0..(BearerCache::CAPACITY + 10) {
            let t = jwt(&serde_json::json!({ "exp": 1_000_100, "n": i }), "sig");
            cache.put(&t, &agent(), at(1_000_000));
        }
        let held = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(held <= BearerCache::CAPACITY, "{held}");
    }

    #[test]
    fn the_cache_does_not_print_tokens_or_identities() {
        let cache = BearerCache::default();
        let t = jwt(&serde_json::json!({ "exp": 1_000_100 }), "sig");
        cache.put(&t, &agent(), at(1_000_000));
        let shown = format!("{cache:?}");
        assert!(
            !shown.contains("00uagent") && !shown.contains("sig"),
            "{shown}"
        );
    }
}
