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
//! codes (the engine's reason codes plus `unauthenticated`); never a stack trace or upstream text.

pub mod dto;

pub use crate::auth::ApiAgent;
pub use crate::reply::{ApiError, ErrorBody, ErrorDetail};
pub use dto::*;

use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fctr_ports::{
    ActionKind, ExposeSecret, FactorId, Reason, SubjectId, UserQuery, VerificationId,
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
    let c = crate::input::code(&req.code)?;
    let v = st
        .engine()
        .submit_code(&a.agent, &a.ctx, id, c.into_secret())
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
        .route("/api/v1/verifications/{id}", get(poll))
        .route("/api/v1/verifications/{id}/continue", post(continue_))
        .route("/api/v1/verifications/{id}/code", post(code))
        .route("/api/v1/{*rest}", get(api_not_found).post(api_not_found))
}
