//! The Microsoft Graph v1.0 subset under `/v1.0/…`: users (by id, UPN or `users('…')` key), `$select`,
//! `$filter`, `$search`, `$count`, paging; authentication methods; `memberOf`; `revokeSignInSessions`;
//! `PATCH` of `passwordProfile` and `accountEnabled`; Temporary Access Pass create, list and delete; method
//! deletes (the default method last). Under `/beta/…` only the user's sign-in preferences (the default MFA method).
//! Routing is by hand so UPN quirks (`$`, `#` as `%23`, the key form) behave as on Graph.

mod audits;
mod methods;
mod users;

pub(crate) use audits::AuditEntry;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::FakeEntraState;
use super::error::GraphError;
use super::odata::{self, Filter, Search};
use super::permissions as p;
use super::state::{
    ALL_PROPS, DEFAULT_PROPS, Inner, Method as AuthMethod, MethodKind, SignInPreferences, Tap,
};
use super::token::bearer;
use crate::common::oidc::query_map;
use crate::common::util::{b64url, b64url_decode};

use methods::{create_tap, delete_method, get_method, list_methods, sign_in_preferences};
use users::{count_users, get_user, list_users, member_of, patch_user, revoke};

const JSON_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

type GResult = Result<Response, GraphError>;

/// A JSON response with Graph's content type.
fn json_resp(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    resp
}

/// A parsed Graph route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Users,
    UsersCount,
    User(String),
    Methods(String),
    Collection(String, String),
    MethodItem(String, String, String),
    ResetPassword(String, String),
    MemberOf(String),
    Revoke(String),
    /// Beta only.
    SignInPreferences(String),
    /// The directory audit log.
    DirectoryAudits,
}

impl Route {
    /// The route template, as fault rules name it.
    pub(crate) fn template(&self) -> &'static str {
        match self {
            Self::Users => "/v1.0/users",
            Self::UsersCount => "/v1.0/users/$count",
            Self::User(_) => "/v1.0/users/{id}",
            Self::Methods(_) => "/v1.0/users/{id}/authentication/methods",
            Self::Collection(..) => "/v1.0/users/{id}/authentication/{collection}",
            Self::MethodItem(..) => "/v1.0/users/{id}/authentication/{collection}/{method_id}",
            Self::ResetPassword(..) => {
                "/v1.0/users/{id}/authentication/methods/{method_id}/resetPassword"
            }
            Self::MemberOf(_) => "/v1.0/users/{id}/memberOf",
            Self::Revoke(_) => "/v1.0/users/{id}/revokeSignInSessions",
            Self::SignInPreferences(_) => "/beta/users/{id}/authentication/signInPreferences",
            Self::DirectoryAudits => "/v1.0/auditLogs/directoryAudits",
        }
    }
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

fn segment_error(seg: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{seg}'."),
    )
}

/// Parses the path after `/v1.0/`.
pub(crate) fn parse_route(raw: &str) -> Result<Route, GraphError> {
    if raw.trim_end_matches('/') == "auditLogs/directoryAudits" {
        return Ok(Route::DirectoryAudits);
    }
    let segs: Vec<&str> = raw.trim_end_matches('/').split('/').collect();
    let first = segs.first().copied().unwrap_or("");
    // users('key') key form: quotes doubled inside.
    let (user, rest): (Option<String>, &[&str]) = if let Some(inner) = first
        .strip_prefix("users(")
        .and_then(|s| s.strip_suffix(')'))
    {
        let lit = decode(inner);
        let key = lit
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .filter(|k| !k.is_empty())
            .ok_or_else(|| GraphError::bad_request(format!("Invalid key segment '{lit}'.")))?;
        (Some(key.replace("''", "'")), &segs[1..])
    } else if first == "users" {
        match segs.get(1) {
            None => return Ok(Route::Users),
            Some(s) => {
                let key = decode(s);
                if key == "$count" {
                    return if segs.len() == 2 {
                        Ok(Route::UsersCount)
                    } else {
                        Err(segment_error(&key))
                    };
                }
                if key.starts_with('$') {
                    // Graph reads a leading `$` as a system segment: such UPNs need the users('…') form.
                    return Err(GraphError::bad_request(format!(
                        "Invalid object identifier '{key}'. A userPrincipalName starting with '$' must be addressed as users('{key}')."
                    )));
                }
                (Some(key), &segs[2..])
            }
        }
    } else {
        return Err(segment_error(&decode(first)));
    };
    let Some(user) = user else {
        return Err(segment_error(first));
    };
    let rest: Vec<String> = rest.iter().map(|s| decode(s)).collect();
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    Ok(match r.as_slice() {
        [] => Route::User(user),
        ["memberOf"] => Route::MemberOf(user),
        ["revokeSignInSessions"] => Route::Revoke(user),
        ["authentication", "methods"] => Route::Methods(user),
        ["authentication", "signInPreferences"] => Route::SignInPreferences(user),
        ["authentication", "methods", mid, "resetPassword"] => {
            Route::ResetPassword(user, (*mid).to_owned())
        }
        ["authentication", "methods", mid] => {
            Route::MethodItem(user, "methods".into(), (*mid).to_owned())
        }
        ["authentication", c] if MethodKind::from_collection(c).is_some() => {
            Route::Collection(user, (*c).to_owned())
        }
        ["authentication", c, mid] if MethodKind::from_collection(c).is_some() => {
            Route::MethodItem(user, (*c).to_owned(), (*mid).to_owned())
        }
        [other, ..] => return Err(segment_error(other)),
    })
}

/// Takes the OData annotations out of a request body, as Graph does: instance annotations (`@odata.type`,
/// `@odata.context`, any `@namespace.term`) and property annotations (`name@namespace.term`) are not properties,
/// so they never count as unknown ones. Microsoft's Graph SDKs send `@odata.type` in every body. When present,
/// `@odata.type` must name `entity_type` (`#microsoft.graph.user`, the `#` optional): Graph refuses a body
/// typed as something else.
pub(crate) fn strip_annotations(
    body: &mut Map<String, Value>,
    entity_type: &str,
) -> Result<(), GraphError> {
    if let Some(t) = body.get("@odata.type") {
        let named = t.as_str().map(|s| s.strip_prefix('#').unwrap_or(s));
        if !named.is_some_and(|n| n.eq_ignore_ascii_case(entity_type)) {
            return Err(GraphError::bad_request(format!(
                "The '@odata.type' annotation does not name the expected type '{entity_type}'."
            )));
        }
    }
    // OData property names never contain `@`: every such key is an annotation.
    body.retain(|k, _| !k.contains('@'));
    Ok(())
}

/// Checks the token holds one of `any` (application permissions).
fn need(roles: &[String], any: &[&str]) -> Result<(), GraphError> {
    if roles.iter().any(|r| any.contains(&r.as_str())) {
        Ok(())
    } else {
        Err(GraphError::denied())
    }
}

const READ_USERS: &[&str] = &[
    p::USER_READ_ALL,
    p::USER_READWRITE_ALL,
    p::DIRECTORY_READ_ALL,
    p::DIRECTORY_READWRITE_ALL,
];
const READ_METHODS: &[&str] = &[p::METHODS_READ_ALL, p::METHODS_READWRITE_ALL];
const WRITE_METHODS: &[&str] = &[p::METHODS_READWRITE_ALL];
const WRITE_TAP: &[&str] = &[p::TAP_READWRITE_ALL, p::METHODS_READWRITE_ALL];
const READ_GROUPS: &[&str] = &[
    p::GROUP_MEMBER_READ_ALL,
    "Group.Read.All",
    p::DIRECTORY_READ_ALL,
    p::DIRECTORY_READWRITE_ALL,
];
const REVOKE: &[&str] = &[
    p::REVOKE_SESSIONS_ALL,
    p::USER_READWRITE_ALL,
    p::DIRECTORY_READWRITE_ALL,
];
const ENABLE: &[&str] = &[
    p::ENABLE_DISABLE_ALL,
    p::USER_READWRITE_ALL,
    p::DIRECTORY_READWRITE_ALL,
];
const PASSWORD: &[&str] = &[p::PASSWORD_PROFILE_READWRITE_ALL];

/// Entry point for every `/v1.0/…` request: auth, route, faults and throttling (see [`super::edge`]), handler.
pub(crate) async fn dispatch(State(st): State<FakeEntraState>, req: Request) -> Response {
    let raw = req
        .uri()
        .path()
        .strip_prefix("/v1.0/")
        .unwrap_or("")
        .to_owned();
    let route = match parse_route(&raw) {
        // signInPreferences exists under /beta only.
        Ok(Route::SignInPreferences(_)) => {
            return segment_error("signInPreferences").into_response();
        }
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let kill = crate::server::fault::conn_kill(&req);
    if let Some(resp) = super::edge::graph_edge(&st, kill, method.as_str(), route.template()).await
    {
        return resp;
    }
    let headers = req.headers().clone();
    let query = req.uri().query().map(str::to_owned);
    let body = match axum::body::to_bytes(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(_) => return GraphError::bad_request("The request body is too large.").into_response(),
    };
    let token = match bearer(&st, &headers, "graph") {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let roles = token.roles.clone();
    let app_id = token.app_id.clone();
    let result = match (&method, &route) {
        (&Method::GET, Route::Users) => list_users(&st, &roles, &headers, query.as_deref()),
        (&Method::GET, Route::UsersCount) => count_users(&st, &roles, &headers),
        (&Method::GET, Route::User(id)) => get_user(&st, &roles, id, query.as_deref()),
        (&Method::PATCH, Route::User(id)) => patch_user(&st, &roles, &app_id, id, &body),
        (&Method::GET, Route::Methods(id)) => list_methods(&st, &roles, id, None),
        (&Method::GET, Route::Collection(id, c)) => list_methods(&st, &roles, id, Some(c)),
        (&Method::POST, Route::Collection(id, c)) if c == "temporaryAccessPassMethods" => {
            create_tap(&st, &roles, id, &body)
        }
        (&Method::GET, Route::MethodItem(id, c, mid)) => get_method(&st, &roles, id, c, mid),
        (&Method::DELETE, Route::MethodItem(id, c, mid)) if c != "methods" => {
            delete_method(&st, &roles, id, c, mid)
        }
        (&Method::POST, Route::ResetPassword(..)) => Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "resetPassword does not support application permissions; use a delegated token.",
        )),
        (&Method::GET, Route::MemberOf(id)) => member_of(&st, &roles, id, query.as_deref()),
        (&Method::POST, Route::Revoke(id)) => revoke(&st, &roles, id),
        (&Method::GET, Route::DirectoryAudits) => {
            audits::list_audits(&st, &roles, query.as_deref())
        }
        _ => Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed on this resource."),
        )),
    };
    if result.as_ref().is_ok_and(|r| r.status().is_success()) {
        record_change(&st, &app_id, &method, &route, &body);
    }
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    if let Some(v) = headers.get("client-request-id") {
        resp.headers_mut().insert("client-request-id", v.clone());
    }
    resp
}

/// Records a change the fake served in its directory audit log, attributed to the calling app (the activity
/// names of `fctr_entra`'s reading of Entra's log).
fn record_change(st: &FakeEntraState, app_id: &str, method: &Method, route: &Route, body: &[u8]) {
    let (activity, user) = match (method, route) {
        (&Method::PATCH, Route::User(id)) => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if v.get("passwordProfile").is_some() {
                ("Reset user password", id)
            } else {
                match v.get("accountEnabled").and_then(Value::as_bool) {
                    Some(false) => ("Disable account", id),
                    Some(true) => ("Enable account", id),
                    None => return,
                }
            }
        }
        (&Method::POST, Route::Collection(id, _)) => ("Admin registered security info", id),
        (&Method::DELETE, Route::MethodItem(id, ..)) => ("Admin deleted security info", id),
        (&Method::POST, Route::Revoke(id)) => ("Update StsRefreshTokenValidFrom Timestamp", id),
        _ => return,
    };
    audits::record(
        st,
        audits::AuditActor::App(app_id.to_owned()),
        activity,
        user,
    );
}

/// Entry point for `/beta/…`: only `GET users/{id}/authentication/signInPreferences`; every other beta path
/// answers as an unknown segment. Auth, faults and throttling as for v1.0.
pub(crate) async fn dispatch_beta(State(st): State<FakeEntraState>, req: Request) -> Response {
    let raw = req
        .uri()
        .path()
        .strip_prefix("/beta/")
        .unwrap_or("")
        .to_owned();
    let id = match parse_route(&raw) {
        Ok(Route::SignInPreferences(id)) => id,
        Ok(_) => return segment_error(raw.split('/').next_back().unwrap_or("")).into_response(),
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let kill = crate::server::fault::conn_kill(&req);
    let template = Route::SignInPreferences(String::new()).template();
    if let Some(resp) = super::edge::graph_edge(&st, kill, method.as_str(), template).await {
        return resp;
    }
    let token = match bearer(&st, req.headers(), "graph") {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let result = if method == Method::GET {
        sign_in_preferences(&st, &token.roles, &id)
    } else {
        Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed on this resource."),
        ))
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    if let Some(v) = req.headers().get("client-request-id") {
        resp.headers_mut().insert("client-request-id", v.clone());
    }
    resp
}

fn user_idx(inner: &Inner, key: &str) -> Result<usize, GraphError> {
    inner
        .user_idx(key)
        .ok_or_else(|| GraphError::not_found(key))
}

fn eventual(headers: &HeaderMap) -> bool {
    headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
}

/// `$select` → the property list (validated), or the defaults.
fn select(
    q: &std::collections::HashMap<String, String>,
    roles: &[String],
) -> Result<Vec<&'static str>, GraphError> {
    let Some(sel) = q.get("$select") else {
        return Ok(DEFAULT_PROPS.to_vec());
    };
    let mut out = Vec::new();
    for name in sel.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(known) = ALL_PROPS.iter().find(|p| p.eq_ignore_ascii_case(name)) else {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.user'."
            )));
        };
        if *known == "signInActivity" && !roles.iter().any(|r| r == p::AUDIT_LOG_READ_ALL) {
            return Err(GraphError::denied());
        }
        out.push(*known);
    }
    Ok(out)
}

const KNOWN_QUERY: &[&str] = &[
    "$select",
    "$filter",
    "$search",
    "$count",
    "$top",
    "$skiptoken",
    "$orderby",
];
