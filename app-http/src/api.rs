//! The JSON API under `/api/v1`, mirroring the engine's use cases, with an OpenAPI document at
//! `/api/v1/openapi.json`.
//!
//! Authentication is the [`ApiAgent`] extractor (in `auth`, shared with the pages): integrations send
//! `Authorization: Bearer <JWT>` (an ID token from the configured issuer for this client: signature, `iss`,
//! `aud`, `exp` checked; groups mapped to a role by policy). The portal's own pages may call it with their
//! session cookie, loaded as the pages load it; then every non-GET request passes the pages' CSRF check, with the
//! token in `X-CSRF-Token`. Wire types are in [`dto`].
//!
//! Layering: depends on `auth`, `reply`, `input` and `state`; nothing depends on it but the router.
//!
//! Errors are `{"error": {"code": "<reason>", "message": "...", "retry_after": <seconds or null>}}` with stable
//! codes (the engine's reason codes plus `unauthenticated` and the body codes of [`body`]); never a stack trace,
//! upstream text or anything of the request. Bodies are read by [`body::JsonBody`] / [`body::OptionalBody`], never
//! axum's `Json`, whose rejections quote the input; what the framework answers by itself on `/api/` paths (405,
//! 413, 408, 500) becomes the envelope in `reply::envelope_errors`.
//!
//! The OpenAPI document ([`ApiDoc`]) is generated from these handlers and the types in [`dto`], with the security
//! schemes and error sets of [`doc`]; `tests/it/api_contract.rs` and `scripts/api-fuzz.sh` hold the server to it.

pub mod body;
pub mod doc;
pub mod dto;

pub use crate::auth::ApiAgent;
pub use crate::reply::{ApiError, ErrorBody, ErrorDetail};
pub use dto::*;

use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use body::{JsonBody, OptionalBody};
use doc::{PollErrors, ReadErrors, SearchErrors, SecuritySchemes, WriteErrors};
use fctr_core::policy::Permission;
use fctr_ports::{
    ActionKind, ApprovalId, ExposeSecret, FactorId, Reason, SubjectId, UserQuery, VerificationId,
};
use utoipa::OpenApi;

fn subject(id: &str) -> Result<SubjectId, ApiError> {
    SubjectId::parse(id.to_owned()).map_err(|_| ApiError::reason(Reason::InvalidInput))
}

fn factor(f: Option<&str>) -> Result<Option<FactorId>, ApiError> {
    Ok(crate::input::factor(f)?)
}

fn vid(id: &str) -> Result<VerificationId, ApiError> {
    VerificationId::parse(id).map_err(|_| ApiError::reason(Reason::VerificationNotFound))
}

/// Search callers.
#[utoipa::path(post, path = "/api/v1/users/search", request_body = SearchRequest,
    responses((status = 200, description = "The matching callers", body = [UserSummary]), SearchErrors))]
pub async fn search(
    State(st): State<AppState>,
    a: ApiAgent,
    JsonBody(req): JsonBody<SearchRequest>,
) -> Result<Json<Vec<UserSummary>>, ApiError> {
    // Exactly the schema: no control character anywhere (also not in white space the engine would trim away)
    // and at most `MAX_LEN` characters before trimming.
    if req.query.chars().any(char::is_control)
        || req.query.chars().count() > fctr_ports::UserQuery::MAX_LEN
    {
        return Err(ApiError::reason(Reason::InvalidInput));
    }
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
#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = UserId, Path)),
    responses((status = 200, description = "The caller card", body = CallerCardDto), ReadErrors))]
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
    params(("id" = UserId, Path), ("action" = ActionName, Path)),
    responses((status = 200, description = "The explanation (the engine's `Explanation`)", body = Object), ReadErrors))]
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
#[utoipa::path(post, path = "/api/v1/users/{id}/verifications", params(("id" = UserId, Path)),
    request_body(content = Option<FactorRequest>, description = "Optional: no body challenges the factor policy prefers"),
    responses((status = 201, description = "The verification, started", body = VerificationDto), WriteErrors))]
pub async fn begin(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    OptionalBody(req): OptionalBody<FactorRequest>,
) -> Result<(StatusCode, Json<VerificationDto>), ApiError> {
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
#[utoipa::path(post, path = "/api/v1/verifications/{id}/continue", params(("id" = VerificationIdParam, Path)),
    request_body(content = Option<FactorRequest>, description = "Optional: no body challenges the factor policy prefers"),
    responses((status = 200, description = "The verification", body = VerificationDto), WriteErrors))]
pub async fn continue_(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    OptionalBody(req): OptionalBody<FactorRequest>,
) -> Result<Json<VerificationDto>, ApiError> {
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
#[utoipa::path(get, path = "/api/v1/verifications/{id}", params(("id" = VerificationIdParam, Path)),
    responses((status = 200, description = "The verification", body = VerificationDto), PollErrors))]
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
#[utoipa::path(post, path = "/api/v1/verifications/{id}/code", params(("id" = VerificationIdParam, Path)), request_body = CodeRequest,
    responses((status = 200, description = "The verification", body = VerificationDto), WriteErrors))]
pub async fn code(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Json<VerificationDto>, ApiError> {
    let id = vid(&id)?;
    // Exactly the schema: ASCII digits and spaces (the pages also take other white space).
    if !req.code.chars().all(|c| c.is_ascii_digit() || c == ' ') {
        return Err(ApiError::reason(Reason::InvalidInput));
    }
    let c = crate::input::code(&req.code)?;
    let v = st
        .engine()
        .submit_code(&a.agent, &a.ctx, id, c.into_secret())
        .await?;
    let dto = verification_dto(&v);
    st.polls().publish(&a.agent, id, v);
    Ok(Json(dto))
}

/// Run an action under the agent's live grant. A one-time secret is in this response only (`no-store`). When
/// policy holds the action back for a second agent's approval (four-eyes), nothing runs: `202` names the approval
/// request; send the same action again once it is approved.
#[utoipa::path(post, path = "/api/v1/users/{id}/actions/{action}",
    params(("id" = UserId, Path), ("action" = ActionPathName, Path)),
    request_body(content = Option<FactorRequest>, description = "Optional, and ignored by these actions"),
    responses((status = 200, description = "What the action returned", body = ActionResult,
        headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 202, description = "Waiting for a second agent's approval; nothing ran", body = ApprovalPending),
        WriteErrors))]
pub async fn act(
    State(st): State<AppState>,
    a: ApiAgent,
    Path((id, action)): Path<(String, String)>,
    OptionalBody(req): OptionalBody<FactorRequest>,
) -> Result<Response, ApiError> {
    let kind = ActionKind::parse(&action).ok_or_else(|| ApiError::reason(Reason::InvalidInput))?;
    let f = factor(req.factor_id.as_deref())?;
    perform(&st, &a, &id, kind, f).await
}

/// Remove one of the caller's factors under the agent's live grant (`202` when it waits for approval, as for
/// other actions).
#[utoipa::path(post, path = "/api/v1/users/{id}/actions/remove_factor",
    params(("id" = UserId, Path)), request_body = RemoveFactorRequest,
    responses((status = 200, description = "What the action returned", body = ActionResult,
        headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 202, description = "Waiting for a second agent's approval; nothing ran", body = ApprovalPending),
        WriteErrors))]
pub async fn remove_factor(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RemoveFactorRequest>,
) -> Result<Response, ApiError> {
    let f = FactorId::parse(req.factor_id).map_err(|_| ApiError::reason(Reason::InvalidInput))?;
    perform(&st, &a, &id, ActionKind::RemoveFactor, Some(f)).await
}

async fn perform(
    st: &AppState,
    a: &ApiAgent,
    id: &str,
    kind: ActionKind,
    f: Option<FactorId>,
) -> Result<Response, ApiError> {
    let act = fctr_core::ActionRequest::new(kind, f)?;
    let subject = subject(id)?;
    let agent = a.for_action(st).await?;
    let outcome = match st
        .engine()
        .perform_action(&agent, &a.ctx, &subject, act)
        .await
    {
        Ok(o) => o,
        Err(d) if d.reason == Reason::ApprovalPending => {
            let body = ApprovalPending {
                status: "pending_approval".to_owned(),
                approval_id: d.approval.map(|i| i.to_string()).unwrap_or_default(),
                message: d.message().to_owned(),
            };
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        Err(d) => return Err(d.into()),
    };
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

/// The changes the IdP's own log records in the window that fctr's audit does not account for, pseudonymous
/// (roles with `view_audit`). `unsupported` when the IdP has no change log fctr can read in this build.
#[utoipa::path(get, path = "/api/v1/audit/out-of-band",
    params(("since" = Option<OutOfBandWindow>, Query, description = "The window: `1h`, `6h`, `24h` (default), `3d` or `7d`; anything else is `invalid_input`")),
    responses((status = 200, description = "The changes made outside fctr", body = OutOfBandReport), ReadErrors))]
pub async fn out_of_band(
    State(st): State<AppState>,
    a: ApiAgent,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let engine = st.engine();
    let policy = engine.policy();
    let permitted = a
        .agent
        .role()
        .and_then(|r| policy.role(r))
        .is_some_and(|r| policy.permits(r, Permission::ViewAudit));
    if !permitted {
        // The engine refuses, and audits the refusal, before anything else is looked at.
        engine
            .audit_view(&a.agent, &a.ctx, &fctr_core::AuditViewQuery::default())
            .await?;
    }
    let asked = crate::input::since_param(q.as_deref().unwrap_or(""));
    // The API takes exactly the documented names: an empty `since=` is not "the default" here (the auditors'
    // page form may send one; a client naming the parameter must name a window).
    if asked.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return Err(ApiError::reason(Reason::InvalidInput));
    }
    let (_, length) = crate::input::window(asked.as_deref())
        .ok_or_else(|| ApiError::reason(Reason::InvalidInput))?;
    let feed = st
        .change_feed()
        .ok_or_else(|| ApiError::reason(Reason::Unsupported))?;
    let _turn = st.out_of_band_turn().await;
    let until = st.0.clock.now();
    let since = until - length;
    let tolerance = fctr_core::out_of_band::DEFAULT_TOLERANCE;
    let findings = engine
        .out_of_band_view(&a.agent, &a.ctx, feed.as_ref(), since, until, tolerance)
        .await?;
    let report = OutOfBandReport {
        since,
        until,
        tolerance_secs: tolerance.num_seconds(),
        findings: findings.iter().map(OutOfBandFinding::from).collect(),
    };
    let mut resp = Json(report).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn approval_id(id: &str) -> Result<ApprovalId, ApiError> {
    ApprovalId::parse(id).map_err(|_| ApiError::reason(Reason::ApprovalNotFound))
}

/// The approvals queue (four-eyes): pending requests this agent may decide, oldest first. Only for roles the
/// policy names in `four_eyes.approver_roles`; the agent's own requests and requests about themselves are left out.
#[utoipa::path(get, path = "/api/v1/approvals",
    responses((status = 200, description = "Pending approval requests", body = [ApprovalDto],
        headers(("Cache-Control" = String, description = "`no-store`"))), ReadErrors))]
pub async fn approvals(State(st): State<AppState>, a: ApiAgent) -> Result<Response, ApiError> {
    let agent = a.for_action(&st).await?;
    let queue = st.engine().pending_approvals(&agent, &a.ctx).await?;
    let body: Vec<ApprovalDto> = queue.iter().map(approval_dto).collect();
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn decide(
    st: &AppState,
    a: &ApiAgent,
    id: &str,
    approve: bool,
) -> Result<Json<ApprovalDecisionDto>, ApiError> {
    let id = approval_id(id)?;
    let agent = a.for_action(st).await?;
    let d = st
        .engine()
        .decide_approval(&agent, &a.ctx, id, approve)
        .await?;
    Ok(Json(ApprovalDecisionDto {
        id: d.id.to_string(),
        decision: if d.approved { "approved" } else { "refused" }.to_owned(),
        action: d.action.as_str().to_owned(),
    }))
}

/// Approve a pending request (never your own, never one about yourself). Of two approvers at once, one decides;
/// the other is told `approval_already_decided`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", params(("id" = ApprovalIdParam, Path)),
    responses((status = 200, description = "The decision", body = ApprovalDecisionDto), WriteErrors))]
pub async fn approve(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
) -> Result<Json<ApprovalDecisionDto>, ApiError> {
    decide(&st, &a, &id, true).await
}

/// Refuse a pending request: the action can never run under it, and the requesting agent's grant is revoked.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/refuse", params(("id" = ApprovalIdParam, Path)),
    responses((status = 200, description = "The decision", body = ApprovalDecisionDto), WriteErrors))]
pub async fn refuse(
    State(st): State<AppState>,
    a: ApiAgent,
    Path(id): Path<String>,
) -> Result<Json<ApprovalDecisionDto>, ApiError> {
    decide(&st, &a, &id, false).await
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fctr API",
        description = "Helpdesk identity verification: look up, verify, act under a grant."
    ),
    paths(search, lookup, explain, begin, continue_, poll, code, act, remove_factor, out_of_band,
        approvals, approve, refuse),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
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
        SignInLinkDto,
        FactorRequest,
        CodeRequest,
        RemoveFactorRequest,
        UserId,
        VerificationIdParam,
        ActionName,
        ActionPathName,
        ActionResult,
        SecretDto,
        OutOfBandReport,
        OutOfBandFinding,
        OutOfBandWindow,
        ApprovalIdParam,
        ApprovalPending,
        ApprovalDto,
        ApprovalDecisionDto
    ))
)]
pub struct ApiDoc;

/// The document as served: [`ApiDoc`] with its links ([`doc::add_links`]).
pub fn document() -> serde_json::Value {
    let mut v = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc::add_links(&mut v);
    v
}

async fn openapi() -> Response {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(document)).into_response()
}

async fn api_not_found() -> ApiError {
    ApiError::not_found()
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
        .route(
            "/api/v1/users/{id}/actions/remove_factor",
            post(remove_factor),
        )
        .route("/api/v1/verifications/{id}", get(poll))
        .route("/api/v1/verifications/{id}/continue", post(continue_))
        .route("/api/v1/verifications/{id}/code", post(code))
        .route("/api/v1/audit/out-of-band", get(out_of_band))
        .route("/api/v1/approvals", get(approvals))
        .route("/api/v1/approvals/{id}/approve", post(approve))
        .route("/api/v1/approvals/{id}/refuse", post(refuse))
        .route("/api/v1/{*rest}", any(api_not_found))
}
