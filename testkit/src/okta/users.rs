//! Users: get, list/search, groups, sessions and lifecycle operations (okta.md sections 1 and 5).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::FakeOktaState;
use super::auth::{Need, authorize};
use super::error::OktaError;
use super::logs;
use super::search;
use super::state::Inner;
use super::util::random_id;

pub(crate) type ApiResult = Result<Response, OktaError>;

pub(crate) use crate::common::oidc::query_map;

/// Parses an optional boolean query parameter.
pub(crate) fn bool_param(
    q: &HashMap<String, String>,
    name: &str,
) -> Result<Option<bool>, OktaError> {
    match q.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v == "true" => Ok(Some(true)),
        Some(v) if v == "false" => Ok(Some(false)),
        Some(_) => Err(OktaError::validation(
            name,
            format!("{name}: The value must be true or false."),
        )),
    }
}

pub(crate) fn user_idx(inner: &Inner, id: &str) -> Result<usize, OktaError> {
    inner
        .user_idx_by_any(id)
        .ok_or_else(|| OktaError::not_found(id))
}

/// `{userId}` paths take the id only.
pub(crate) fn user_idx_strict(inner: &Inner, id: &str) -> Result<usize, OktaError> {
    inner
        .user_idx_by_id(id)
        .ok_or_else(|| OktaError::not_found(id))
}

fn invalid_search() -> OktaError {
    OktaError::new(
        StatusCode::BAD_REQUEST,
        "E0000031",
        "Invalid search criteria.",
    )
}

pub(crate) async fn get_user(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Read)?;
    let base = st.shared.cfg.base();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx(&inner, &id)?];
    let body = u.json(&base, true);
    let etag = format!("W/\"{}\"", u.last_updated.timestamp_millis());
    drop(inner);
    let mut resp = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

pub(crate) async fn list_users(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Read)?;
    let q = query_map(raw.as_deref());
    let search = q
        .get("search")
        .map(|s| search::parse(s).map_err(|_| invalid_search()))
        .transpose()?;
    let filter = q
        .get("filter")
        .map(|s| search::parse_filter(s).map_err(|_| invalid_search()))
        .transpose()?;
    let prefix = q.get("q").map(|s| s.to_lowercase());
    let default_limit = if prefix.is_some() { 10 } else { 200 };
    let limit = match q.get("limit") {
        None => default_limit,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(200),
            _ => {
                return Err(OktaError::validation(
                    "limit",
                    "limit: The value must be a positive integer.",
                ));
            }
        },
    };
    let base = st.shared.cfg.base();
    let inner = st.shared.lock();
    let matching: Vec<&super::state::User> = inner
        .users
        .iter()
        .filter(|u| match (&search, &filter, &prefix) {
            (Some(s), _, _) => {
                search::eval(s, u) && filter.as_ref().is_none_or(|f| search::eval(f, u))
            }
            (None, Some(f), _) => search::eval(f, u),
            (None, None, Some(p)) => {
                u.status != "DEPROVISIONED"
                    && [&u.first_name, &u.last_name, &u.email]
                        .iter()
                        .any(|v| v.to_lowercase().starts_with(p))
            }
            (None, None, None) => u.status != "DEPROVISIONED",
        })
        .collect();
    let start = match q.get("after") {
        Some(after) => matching
            .iter()
            .position(|u| &u.id == after)
            .map_or(matching.len(), |i| i + 1),
        None => 0,
    };
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|u| u.json(&base, false))
        .collect();
    let next_after =
        (start + limit < matching.len()).then(|| matching[start + limit - 1].id.clone());
    drop(inner);

    let link_for = |after: Option<&str>| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for key in ["search", "filter", "q"] {
            if let Some(v) = q.get(key) {
                ser.append_pair(key, v);
            }
        }
        ser.append_pair("limit", &limit.to_string());
        if let Some(a) = after {
            ser.append_pair("after", a);
        }
        format!("{base}/api/v1/users?{}", ser.finish())
    };
    let mut resp = Json(page).into_response();
    let self_link = format!(
        "<{}>; rel=\"self\"",
        link_for(q.get("after").map(String::as_str))
    );
    if let Ok(v) = HeaderValue::from_str(&self_link) {
        resp.headers_mut().append(header::LINK, v);
    }
    if let Some(a) = next_after {
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>; rel=\"next\"", link_for(Some(&a)))) {
            resp.headers_mut().append(header::LINK, v);
        }
    }
    Ok(resp)
}

pub(crate) async fn user_groups(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Read)?;
    let base = st.shared.cfg.base();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx(&inner, &id)?];
    let groups: Vec<Value> = inner
        .groups
        .iter()
        .filter(|g| u.groups.contains(&g.id))
        .map(|g| g.json(&base))
        .collect();
    Ok(Json(groups).into_response())
}

pub(crate) async fn revoke_sessions(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Manage)?;
    let q = query_map(raw.as_deref());
    let oauth = bool_param(&q, "oauthTokens")?.unwrap_or(false);
    let forget = bool_param(&q, "forgetDevices")?.unwrap_or(false);
    let mut inner = st.shared.lock();
    let i = user_idx_strict(&inner, &id)?;
    let e = &mut inner.users[i].effects;
    e.sessions_revoked += 1;
    if oauth {
        e.oauth_tokens_revoked += 1;
    }
    if forget {
        e.devices_forgotten += 1;
    }
    let target = inner.users[i].id.clone();
    drop(inner);
    let actor = logs::caller(&st.shared, &headers);
    logs::record(&st.shared, actor, "user.session.clear", &target);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn wrong_status() -> OktaError {
    OktaError::new(
        StatusCode::FORBIDDEN,
        "E0000038",
        "This operation is not allowed in the user's current status.",
    )
}

fn empty_ok() -> Response {
    Json(json!({})).into_response()
}

pub(crate) async fn lifecycle(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Manage)?;
    let q = query_map(raw.as_deref());
    let base = st.shared.cfg.base();
    let now = st.shared.now();
    let mut inner = st.shared.lock();
    let i = user_idx(&inner, &id)?;
    let password_ops_allowed = matches!(
        inner.users[i].status.as_str(),
        "ACTIVE" | "PASSWORD_EXPIRED" | "LOCKED_OUT" | "RECOVERY"
    );
    let target = inner.users[i].id.clone();
    let revoke_too = bool_param(&q, "revokeSessions").ok().flatten() == Some(true);
    let result = match action.as_str() {
        "reset_password" => {
            let send_email = bool_param(&q, "sendEmail")?.ok_or_else(|| {
                OktaError::validation("sendEmail", "sendEmail: The value is required.")
            })?;
            let revoke = bool_param(&q, "revokeSessions")?.unwrap_or(false);
            if !password_ops_allowed {
                return Err(wrong_status());
            }
            let u = &mut inner.users[i];
            u.set_status("RECOVERY", now);
            u.effects.password_resets += 1;
            if revoke {
                u.effects.sessions_revoked_by_lifecycle += 1;
            }
            if send_email {
                u.effects.last_reset_password_url = None;
                Ok(empty_ok())
            } else {
                let url = format!("{base}/reset_password/{}", random_id(20));
                u.effects.last_reset_password_url = Some(url.clone());
                Ok(Json(json!({"resetPasswordUrl": url})).into_response())
            }
        }
        "expire_password" => {
            if !password_ops_allowed {
                return Err(wrong_status());
            }
            let u = &mut inner.users[i];
            u.set_status("PASSWORD_EXPIRED", now);
            u.effects.password_expirations += 1;
            Ok(Json(u.json(&base, true)).into_response())
        }
        "expire_password_with_temp_password" => {
            let revoke = bool_param(&q, "revokeSessions")?.unwrap_or(false);
            if !password_ops_allowed {
                return Err(wrong_status());
            }
            let u = &mut inner.users[i];
            u.set_status("PASSWORD_EXPIRED", now);
            let temp = random_id(8);
            u.effects.password_expirations += 1;
            u.effects.temp_passwords_issued += 1;
            u.effects.last_temp_password = Some(temp.clone());
            if revoke {
                u.effects.sessions_revoked_by_lifecycle += 1;
            }
            Ok(Json(json!({"tempPassword": temp})).into_response())
        }
        "unlock" => {
            let u = &mut inner.users[i];
            if u.status != "LOCKED_OUT" {
                return Err(OktaError::new(
                    StatusCode::FORBIDDEN,
                    "E0000032",
                    "Unlock is not allowed for this user.",
                ));
            }
            u.set_status("ACTIVE", now);
            u.effects.unlocks += 1;
            u.effects.consecutive_passcode_failures = 0;
            Ok(empty_ok())
        }
        "reset_factors" => {
            if inner.users[i].status == "DEPROVISIONED" {
                return Err(wrong_status());
            }
            let user_id = inner.users[i].id.clone();
            let u = &mut inner.users[i];
            u.factors.clear();
            u.last_updated = now;
            u.effects.factor_resets += 1;
            for tx in inner.txs.values_mut().filter(|t| t.user_id == user_id) {
                tx.push.cancel();
            }
            Ok(empty_ok())
        }
        "suspend" => {
            let u = &mut inner.users[i];
            if u.status != "ACTIVE" {
                return Err(OktaError::validation(
                    "suspend",
                    "Cannot suspend a user that is not active",
                ));
            }
            u.set_status("SUSPENDED", now);
            u.effects.suspensions += 1;
            Ok(empty_ok())
        }
        "unsuspend" => {
            let u = &mut inner.users[i];
            if u.status != "SUSPENDED" {
                return Err(OktaError::validation(
                    "unsuspend",
                    "Cannot unsuspend a user that is not suspended",
                ));
            }
            u.set_status("ACTIVE", now);
            u.effects.unsuspensions += 1;
            Ok(empty_ok())
        }
        _ => Err(OktaError::new(
            StatusCode::NOT_FOUND,
            "E0000007",
            "Not found: Resource not found",
        )),
    };
    drop(inner);
    if result.is_ok() {
        let event = match action.as_str() {
            "reset_password" => Some("user.account.reset_password"),
            "expire_password" | "expire_password_with_temp_password" => {
                Some("user.account.expire_password")
            }
            "unlock" => Some("user.account.unlock_by_admin"),
            "reset_factors" => Some("user.mfa.factor.reset_all"),
            "suspend" => Some("user.lifecycle.suspend"),
            "unsuspend" => Some("user.lifecycle.unsuspend"),
            _ => None,
        };
        let actor = logs::caller(&st.shared, &headers);
        if let Some(event) = event {
            logs::record(&st.shared, actor.clone(), event, &target);
        }
        if revoke_too
            && matches!(
                action.as_str(),
                "reset_password" | "expire_password_with_temp_password"
            )
        {
            logs::record(&st.shared, actor, "user.session.clear", &target);
        }
    }
    result
}
