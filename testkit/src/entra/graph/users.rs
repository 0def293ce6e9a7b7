//! Graph users: list with `$filter`, `$search`, `$select`, `$count` and paging; one user; `PATCH` of
//! `passwordProfile` and `accountEnabled`; `memberOf`; `revokeSignInSessions`.

use super::*;

pub(super) fn list_users(
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
    let mut matched: Vec<&crate::entra::state::User> = inner
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

pub(super) fn context(
    graph: &str,
    what: &str,
    q: &std::collections::HashMap<String, String>,
) -> String {
    match q.get("$select") {
        Some(s) => format!("{graph}/$metadata#{what}({s})"),
        None => format!("{graph}/$metadata#{what}"),
    }
}

pub(super) fn count_users(st: &FakeEntraState, roles: &[String], headers: &HeaderMap) -> GResult {
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

pub(super) fn get_user(
    st: &FakeEntraState,
    roles: &[String],
    key: &str,
    query: Option<&str>,
) -> GResult {
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
pub(super) fn password_ok(pw: &str, upn: &str) -> bool {
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

pub(super) fn patch_user(
    st: &FakeEntraState,
    roles: &[String],
    app_id: &str,
    key: &str,
    body: &[u8],
) -> GResult {
    let Ok(Value::Object(mut patch)) = serde_json::from_slice::<Value>(body) else {
        return Err(GraphError::bad_request(
            "Empty Payload. JSON content expected.",
        ));
    };
    strip_annotations(&mut patch, "microsoft.graph.user")?;
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
            let mut pp = pp.clone();
            strip_annotations(&mut pp, "microsoft.graph.passwordProfile")?;
            if let Some(k) = pp.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "password"
                        | "forceChangePasswordNextSignIn"
                        | "forceChangePasswordNextSignInWithMfa"
                )
            }) {
                return Err(GraphError::bad_request(format!(
                    "Property '{k}' does not exist on type 'microsoft.graph.passwordProfile'."
                )));
            }
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
                    || has(crate::entra::GLOBAL_ADMINISTRATOR);
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

pub(super) fn member_of(
    st: &FakeEntraState,
    roles: &[String],
    key: &str,
    query: Option<&str>,
) -> GResult {
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

pub(super) fn revoke(st: &FakeEntraState, roles: &[String], key: &str) -> GResult {
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
