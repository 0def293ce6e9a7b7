//! The Microsoft Graph v1.0 subset under `/v1.0/…`: users (by id, UPN or `users('…')` key), `$select`,
//! `$filter`, `$search`, `$count`, paging; authentication methods; `memberOf`; `revokeSignInSessions`;
//! `PATCH` of `passwordProfile` and `accountEnabled`; Temporary Access Pass create, list and delete; method
//! deletes. Routing is by hand so UPN quirks (`$`, `#` as `%23`, the key form) behave as on Graph.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::FakeEntraState;
use super::error::GraphError;
use super::odata::{self, Filter, Search};
use super::permissions as p;
use super::state::{ALL_PROPS, DEFAULT_PROPS, Inner, Method as AuthMethod, MethodKind, Tap};
use super::token::bearer;
use crate::common::oidc::query_map;
use crate::common::util::{b64url, b64url_decode};

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
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let method = req.method().clone();
    let kill = req
        .extensions()
        .get::<crate::server::serve::ConnKill>()
        .cloned();
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
        _ => Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            format!("The HTTP method '{method}' is not allowed on this resource."),
        )),
    };
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    if let Some(v) = headers.get("client-request-id") {
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

fn list_users(
    st: &FakeEntraState,
    roles: &[String],
    headers: &HeaderMap,
    query: Option<&str>,
) -> GResult {
    need(roles, READ_USERS)?;
    let q = query_map(query);
    if q.contains_key("$skip") {
        return Err(GraphError::bad_request(
            "'$skip' is not supported by the service.",
        ));
    }
    if let Some(k) = q
        .keys()
        .find(|k| k.starts_with('$') && !KNOWN_QUERY.contains(&k.as_str()))
    {
        return Err(GraphError::bad_request(format!(
            "Query option '{k}' is not allowed."
        )));
    }
    let eventual = eventual(headers);
    let count = match q.get("$count").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(GraphError::bad_request(format!(
                "Invalid value '{other}' for $count."
            )));
        }
    };
    if count && !eventual {
        return Err(GraphError::unsupported_query(
            "$count is an advanced query: it needs the request header 'ConsistencyLevel: eventual'.",
        ));
    }
    let search: Option<Search> = match q.get("$search") {
        None => None,
        Some(s) => {
            if !eventual {
                return Err(GraphError::unsupported_query(
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                ));
            }
            Some(odata::parse_search(s).map_err(GraphError::bad_request)?)
        }
    };
    let filter: Option<Filter> = match q.get("$filter") {
        None => None,
        Some(f) => {
            let (filter, advanced) = odata::parse_filter(f)
                .map_err(|e| GraphError::bad_request(format!("Invalid filter clause: {e}")))?;
            if advanced && !(eventual && count) {
                return Err(GraphError::unsupported_query(
                    "Unsupported or invalid query filter clause specified for property of resource 'User': this operator is an advanced query and needs 'ConsistencyLevel: eventual' and '$count=true'.",
                ));
            }
            Some(filter)
        }
    };
    let order = match q.get("$orderby").map(String::as_str) {
        None => None,
        Some(o) => {
            let (prop, desc) = match o.split_once(' ') {
                Some((p, d)) if d.eq_ignore_ascii_case("desc") => (p, true),
                Some((p, d)) if d.eq_ignore_ascii_case("asc") => (p, false),
                None => (o, false),
                _ => return Err(GraphError::bad_request("Invalid $orderby clause.")),
            };
            if !matches!(prop, "displayName" | "userPrincipalName") {
                return Err(GraphError::unsupported_query(format!(
                    "Sorting by '{prop}' is not supported."
                )));
            }
            if (filter.is_some() || search.is_some()) && !(eventual && count) {
                return Err(GraphError::unsupported_query(
                    "$orderby with $filter or $search is an advanced query: it needs 'ConsistencyLevel: eventual' and '$count=true'.",
                ));
            }
            Some((prop, desc))
        }
    };
    let top = match q.get("$top") {
        None => 100,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                )));
            }
        },
    };
    let offset = match q.get("$skiptoken") {
        None => 0,
        Some(t) => b64url_decode(t)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o=").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| GraphError::bad_request("Invalid $skiptoken."))?,
    };
    let props = select(&q, roles)?;
    let inner = st.shared.lock();
    let mut matched: Vec<&super::state::User> = inner
        .users
        .iter()
        .filter(|u| {
            let get = |name: &str| u.prop(name);
            filter.as_ref().is_none_or(|f| odata::eval(f, &get))
                && search
                    .as_ref()
                    .is_none_or(|s| odata::search_matches(s, &get))
        })
        .collect();
    if let Some((prop, desc)) = order {
        matched.sort_by_key(|u| {
            u.prop(prop)
                .and_then(|v| v.as_str().map(str::to_lowercase))
                .unwrap_or_default()
        });
        if desc {
            matched.reverse();
        }
    }
    let total = matched.len();
    let page: Vec<Value> = matched
        .iter()
        .skip(offset)
        .take(top)
        .map(|u| u.json(&props))
        .collect();
    let graph = st.shared.cfg.graph();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context(&graph, "users", &q)));
    if count {
        body.insert("@odata.count".into(), json!(total));
    }
    body.insert("value".into(), Value::Array(page));
    if offset + top < total {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        let mut keys: Vec<&String> = q.keys().filter(|k| *k != "$skiptoken").collect();
        keys.sort();
        for k in keys {
            ser.append_pair(k, &q[k]);
        }
        ser.append_pair(
            "$skiptoken",
            &b64url(format!("o={}", offset + top).as_bytes()),
        );
        body.insert(
            "@odata.nextLink".into(),
            json!(format!("{graph}/users?{}", ser.finish())),
        );
    }
    Ok(json_resp(StatusCode::OK, &Value::Object(body)))
}

fn context(graph: &str, what: &str, q: &std::collections::HashMap<String, String>) -> String {
    match q.get("$select") {
        Some(s) => format!("{graph}/$metadata#{what}({s})"),
        None => format!("{graph}/$metadata#{what}"),
    }
}

fn count_users(st: &FakeEntraState, roles: &[String], headers: &HeaderMap) -> GResult {
    need(roles, READ_USERS)?;
    if !eventual(headers) {
        return Err(GraphError::unsupported_query(
            "Count is not currently supported without the request header 'ConsistencyLevel: eventual'.",
        ));
    }
    let n = st.shared.lock().users.len();
    let mut resp = (StatusCode::OK, n.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=utf-8"),
    );
    Ok(resp)
}

fn get_user(st: &FakeEntraState, roles: &[String], key: &str, query: Option<&str>) -> GResult {
    need(roles, READ_USERS)?;
    let q = query_map(query);
    let props = select(&q, roles)?;
    let inner = st.shared.lock();
    let u = &inner.users[user_idx(&inner, key)?];
    let mut v = u.json(&props);
    v["@odata.context"] = json!(format!(
        "{}/$metadata#users{}/$entity",
        st.shared.cfg.graph(),
        q.get("$select")
            .map(|s| format!("({s})"))
            .unwrap_or_default()
    ));
    Ok(json_resp(StatusCode::OK, &v))
}

/// Entra's default password policy: 8–256 characters, three of the four character classes.
fn password_ok(pw: &str, upn: &str) -> bool {
    let len = pw.chars().count();
    let classes = [
        pw.chars().any(|c| c.is_ascii_lowercase()),
        pw.chars().any(|c| c.is_ascii_uppercase()),
        pw.chars().any(|c| c.is_ascii_digit()),
        pw.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let local = upn.split('@').next().unwrap_or("").to_lowercase();
    (8..=256).contains(&len)
        && classes >= 3
        && !(local.len() >= 3 && pw.to_lowercase().contains(&local))
}

fn patch_user(
    st: &FakeEntraState,
    roles: &[String],
    app_id: &str,
    key: &str,
    body: &[u8],
) -> GResult {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(body) else {
        return Err(GraphError::bad_request(
            "Empty Payload. JSON content expected.",
        ));
    };
    if patch.is_empty() {
        return Err(GraphError::bad_request(
            "Empty Payload. JSON content expected.",
        ));
    }
    if let Some(k) = patch
        .keys()
        .find(|k| !matches!(k.as_str(), "passwordProfile" | "accountEnabled"))
    {
        return Err(GraphError::bad_request(format!(
            "Property '{k}' cannot be updated through the fake; only passwordProfile and accountEnabled."
        )));
    }
    if patch.contains_key("passwordProfile") {
        need(roles, PASSWORD)?;
    }
    if patch.contains_key("accountEnabled") {
        need(roles, ENABLE)?;
    }
    let enabled = match patch.get("accountEnabled") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(GraphError::bad_request(
                "Invalid value specified for property 'accountEnabled' of resource 'User'.",
            ));
        }
    };
    let now = st.shared.now();
    let needs_role = st.options().password_needs_directory_role;
    let mut inner = st.shared.lock();
    let i = user_idx(&inner, key)?;
    let profile = match patch.get("passwordProfile") {
        None => None,
        Some(Value::Object(pp)) => {
            let Some(pw) = pp.get("password").and_then(Value::as_str) else {
                return Err(GraphError::bad_request(
                    "Invalid value specified for property 'passwordProfile' of resource 'User'.",
                ));
            };
            let force = match pp.get("forceChangePasswordNextSignIn") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(GraphError::bad_request(
                        "Invalid value specified for property 'forceChangePasswordNextSignIn'.",
                    ));
                }
            };
            if needs_role {
                let app_roles = inner
                    .app(app_id)
                    .map(|a| a.directory_roles.clone())
                    .unwrap_or_default();
                let has = |r: &str| app_roles.iter().any(|x| x == r);
                let privileged = has("Privileged Authentication Administrator")
                    || has(super::GLOBAL_ADMINISTRATOR);
                let allowed = if inner.users[i].has_role() {
                    privileged
                } else {
                    privileged || has("User Administrator") || has("Helpdesk Administrator")
                };
                if !allowed {
                    return Err(GraphError::denied());
                }
            }
            if !password_ok(pw, &inner.users[i].upn) {
                return Err(GraphError::bad_request(
                    "The specified password does not comply with password complexity requirements. Please provide a different password.",
                ));
            }
            Some((pw.to_owned(), force))
        }
        Some(_) => {
            return Err(GraphError::bad_request(
                "Invalid value specified for property 'passwordProfile' of resource 'User'.",
            ));
        }
    };
    let u = &mut inner.users[i];
    if let Some((pw, force)) = profile {
        u.last_password_change = now;
        u.effects.password_sets += 1;
        u.effects.last_password = Some(pw);
        u.effects.force_change_password_next_sign_in = Some(force);
    }
    if let Some(e) = enabled {
        u.account_enabled = e;
        if e {
            u.effects.enables += 1;
        } else {
            u.effects.disables += 1;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn list_methods(
    st: &FakeEntraState,
    roles: &[String],
    key: &str,
    collection: Option<&str>,
) -> GResult {
    let kind = collection.and_then(MethodKind::from_collection);
    if kind == Some(MethodKind::Tap) {
        need(
            roles,
            &[
                p::METHODS_READ_ALL,
                p::METHODS_READWRITE_ALL,
                p::TAP_READWRITE_ALL,
            ],
        )?;
    } else {
        need(roles, READ_METHODS)?;
    }
    let now = st.shared.now();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx(&inner, key)?];
    let items: Vec<Value> = u
        .methods
        .iter()
        .filter(|m| kind.is_none_or(|k| m.kind == k))
        .map(|m| m.json(now, kind.is_none()))
        .collect();
    let what = collection.unwrap_or("methods");
    Ok(json_resp(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{}/$metadata#users('{}')/authentication/{what}", st.shared.cfg.graph(), u.id),
            "value": items,
        }),
    ))
}

fn get_method(
    st: &FakeEntraState,
    roles: &[String],
    key: &str,
    collection: &str,
    mid: &str,
) -> GResult {
    let kind = MethodKind::from_collection(collection);
    if kind == Some(MethodKind::Tap) {
        need(
            roles,
            &[
                p::METHODS_READ_ALL,
                p::METHODS_READWRITE_ALL,
                p::TAP_READWRITE_ALL,
            ],
        )?;
    } else {
        need(roles, READ_METHODS)?;
    }
    let now = st.shared.now();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx(&inner, key)?];
    let m = u
        .methods
        .iter()
        .find(|m| m.id.eq_ignore_ascii_case(mid) && kind.is_none_or(|k| m.kind == k))
        .ok_or_else(|| GraphError::not_found(mid))?;
    Ok(json_resp(StatusCode::OK, &m.json(now, true)))
}

fn delete_method(
    st: &FakeEntraState,
    roles: &[String],
    key: &str,
    collection: &str,
    mid: &str,
) -> GResult {
    let Some(kind) = MethodKind::from_collection(collection) else {
        return Err(segment_error(collection));
    };
    if kind == MethodKind::Tap {
        need(roles, WRITE_TAP)?;
    } else {
        need(roles, WRITE_METHODS)?;
    }
    if kind == MethodKind::Password {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "The password method cannot be deleted.",
        ));
    }
    let mut inner = st.shared.lock();
    let i = user_idx(&inner, key)?;
    let u = &mut inner.users[i];
    let pos = u
        .methods
        .iter()
        .position(|m| m.id.eq_ignore_ascii_case(mid) && m.kind == kind)
        .ok_or_else(|| GraphError::not_found(mid))?;
    u.methods.remove(pos);
    u.effects.methods_deleted += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn tap_error(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "badRequest", message)
}

fn random_pass(len: u32) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789@#$%&*+=?";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

fn create_tap(st: &FakeEntraState, roles: &[String], key: &str, body: &[u8]) -> GResult {
    need(roles, WRITE_TAP)?;
    let req: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => return Err(GraphError::bad_request("Invalid JSON payload.")),
        }
    };
    if let Some(k) = req.keys().find(|k| {
        !matches!(
            k.as_str(),
            "startDateTime" | "lifetimeInMinutes" | "isUsableOnce"
        )
    }) {
        return Err(GraphError::bad_request(format!(
            "Invalid property '{k}' for temporaryAccessPassAuthenticationMethod."
        )));
    }
    let now = st.shared.now();
    let mut inner = st.shared.lock();
    let policy = inner.tap_policy.clone();
    let i = user_idx(&inner, key)?;
    let u = &inner.users[i];
    if !policy.enabled || u.tap_policy_disabled {
        return Err(tap_error(
            "The Temporary Access Pass policy is disabled or does not include this user.",
        ));
    }
    if u.user_type == "Guest" && u.upn.contains("#EXT#") {
        return Err(tap_error(
            "A Temporary Access Pass cannot be issued to an external guest.",
        ));
    }
    let lifetime = match req.get("lifetimeInMinutes") {
        None => policy.default_lifetime_in_minutes,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| GraphError::bad_request("Invalid value for 'lifetimeInMinutes'."))?,
    };
    let (lo, hi) = (
        policy.minimum_lifetime_in_minutes.max(10),
        policy.maximum_lifetime_in_minutes.min(43_200),
    );
    if !(lo..=hi).contains(&lifetime) {
        return Err(tap_error(format!(
            "The lifetimeInMinutes {lifetime} is outside the policy's range of {lo} to {hi} minutes."
        )));
    }
    let once = match req.get("isUsableOnce") {
        None => policy.is_usable_once,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(GraphError::bad_request("Invalid value for 'isUsableOnce'.")),
    };
    if policy.is_usable_once && !once {
        return Err(tap_error(
            "The Temporary Access Pass policy allows one-time passes only.",
        ));
    }
    let start = match req.get("startDateTime") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|_| GraphError::bad_request("Invalid value for 'startDateTime'."))?,
        Some(_) => {
            return Err(GraphError::bad_request(
                "Invalid value for 'startDateTime'.",
            ));
        }
    };
    let pass = random_pass(policy.default_length.clamp(8, 48));
    let tap = Tap {
        start,
        lifetime_minutes: lifetime,
        is_usable_once: once,
    };
    let method = AuthMethod {
        id: super::error::uuid_v4(),
        kind: MethodKind::Tap,
        created: Some(now),
        fields: Map::new(),
        tap: Some(tap),
    };
    let mut v = method.json(now, false);
    v["temporaryAccessPass"] = json!(pass);
    let graph = st.shared.cfg.graph();
    let u = &mut inner.users[i];
    v["@odata.context"] = json!(format!(
        "{graph}/$metadata#users('{}')/authentication/temporaryAccessPassMethods/$entity",
        u.id
    ));
    // One TAP per user: a new one replaces the old.
    u.methods.retain(|m| m.kind != MethodKind::Tap);
    u.methods.push(method);
    u.effects.taps_issued += 1;
    u.effects.last_tap = Some(pass);
    Ok(json_resp(StatusCode::CREATED, &v))
}

fn member_of(st: &FakeEntraState, roles: &[String], key: &str, query: Option<&str>) -> GResult {
    need(roles, READ_GROUPS)?;
    let q = query_map(query);
    let sel: Option<Vec<String>> = q.get("$select").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let inner = st.shared.lock();
    let u = &inner.users[user_idx(&inner, key)?];
    let items: Vec<Value> = u
        .member_of
        .iter()
        .filter_map(|id| inner.object(id))
        .map(|o| {
            let full = o.json();
            match &sel {
                None => full,
                Some(s) => {
                    let mut m = Map::new();
                    m.insert("@odata.type".into(), full["@odata.type"].clone());
                    for k in s {
                        if let Some(v) = full.get(k) {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    Value::Object(m)
                }
            }
        })
        .collect();
    Ok(json_resp(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{}/$metadata#directoryObjects", st.shared.cfg.graph()),
            "value": items,
        }),
    ))
}

fn revoke(st: &FakeEntraState, roles: &[String], key: &str) -> GResult {
    need(roles, REVOKE)?;
    let now = st.shared.now();
    let mut inner = st.shared.lock();
    let i = user_idx(&inner, key)?;
    let u = &mut inner.users[i];
    u.sessions_valid_from = now;
    u.effects.sessions_revoked += 1;
    Ok(json_resp(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("{}/$metadata#Edm.Boolean", st.shared.cfg.graph()),
            "value": true,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_with_upn_quirks() {
        assert_eq!(parse_route("users").unwrap(), Route::Users);
        assert_eq!(parse_route("users/$count").unwrap(), Route::UsersCount);
        assert_eq!(
            parse_route("users/a%40b.com").unwrap(),
            Route::User("a@b.com".into())
        );
        assert_eq!(
            parse_route("users/kim_x%23EXT%23%40t.onmicrosoft.com/memberOf").unwrap(),
            Route::MemberOf("kim_x#EXT#@t.onmicrosoft.com".into())
        );
        assert_eq!(
            parse_route("users('%24kiosk%40example.com')").unwrap(),
            Route::User("$kiosk@example.com".into())
        );
        assert_eq!(
            parse_route("users('o''brien@x.com')/authentication/methods").unwrap(),
            Route::Methods("o'brien@x.com".into())
        );
        assert!(parse_route("users/$kiosk@example.com").is_err());
        assert!(parse_route("users/%24kiosk@example.com").is_err());
        assert!(parse_route("groups").is_err());
        assert!(parse_route("users/x/authentication/fooMethods").is_err());
        assert_eq!(
            parse_route("users/x/authentication/temporaryAccessPassMethods/t1").unwrap(),
            Route::MethodItem("x".into(), "temporaryAccessPassMethods".into(), "t1".into())
        );
    }

    #[test]
    fn password_policy() {
        assert!(password_ok("Correct-Horse-7", "alice@example.com"));
        assert!(!password_ok("short1A", "alice@example.com"));
        assert!(!password_ok("alllowercase", "alice@example.com"));
        assert!(!password_ok("Alice-2024-xyz", "alice@example.com"));
    }
}
