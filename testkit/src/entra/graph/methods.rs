//! Graph authentication methods: list (all or one collection), get, delete (never the default while others
//! remain), Temporary Access Pass create, and the beta sign-in preferences (the default method).

use super::*;

pub(super) fn list_methods(
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

pub(super) fn get_method(
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

pub(super) fn delete_method(
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
    // Graph refuses to delete the default MFA method while the user has others (the password aside): 400
    // `badRequest` (messages seen: "Cannot delete default method with other methods configured…" and "The
    // requested authentication method id of […] matches the user's current default authentication method…").
    let is_default = u
        .default_method
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case(&u.methods[pos].id));
    let others = u
        .methods
        .iter()
        .enumerate()
        .any(|(i, m)| i != pos && m.kind != MethodKind::Password);
    if is_default && others {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Cannot delete default method with other methods configured. Please change default method before deletion.",
        ));
    }
    u.methods.remove(pos);
    if is_default {
        u.default_method = None;
    }
    u.effects.methods_deleted += 1;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn tap_error(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "badRequest", message)
}

pub(super) fn random_pass(len: u32) -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789@#$%&*+=?";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

pub(super) fn create_tap(st: &FakeEntraState, roles: &[String], key: &str, body: &[u8]) -> GResult {
    need(roles, WRITE_TAP)?;
    let mut req: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            _ => return Err(GraphError::bad_request("Invalid JSON payload.")),
        }
    };
    strip_annotations(
        &mut req,
        "microsoft.graph.temporaryAccessPassAuthenticationMethod",
    )?;
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
        id: crate::entra::error::uuid_v4(),
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

/// `GET /beta/users/{id}/authentication/signInPreferences` (beta only; Microsoft documents no v1.0 form):
/// `isSystemPreferredAuthenticationMethodEnabled` and `userPreferredMethodForSecondaryAuthentication` (the
/// default method's kind, `null` without one). The documented least privilege is a methods read permission, so
/// either methods permission admits it. [`SignInPreferences`](crate::entra::SignInPreferences) makes it answer
/// 403 or 404 instead.
pub(super) fn sign_in_preferences(st: &FakeEntraState, roles: &[String], key: &str) -> GResult {
    let inner = st.shared.lock();
    match inner.sign_in_preferences {
        SignInPreferences::Served => {}
        SignInPreferences::Forbidden => return Err(GraphError::denied()),
        SignInPreferences::NotFound => {
            return Err(GraphError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested resource is not available.",
            ));
        }
    }
    need(roles, READ_METHODS)?;
    let u = &inner.users[user_idx(&inner, key)?];
    Ok(json_resp(
        StatusCode::OK,
        &json!({
            "@odata.context": format!(
                "{}/beta/$metadata#users('{}')/authentication/signInPreferences",
                st.shared.cfg.base_str(),
                u.id
            ),
            "isSystemPreferredAuthenticationMethodEnabled": false,
            "userPreferredMethodForSecondaryAuthentication": u.preferred_method_value(),
        }),
    ))
}
