//! Factors: list, get, unenroll, verify (push with number matching, passcodes, SMS) and push transaction polls
//! (okta.md sections 2 to 5).

use axum::Json;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use rand::Rng as _;
use rand::seq::SliceRandom as _;
use serde_json::{Value, json};

use super::FakeOktaState;
use super::auth::{Need, authorize};
use super::error::OktaError;
use super::state::{PushState, PushTx, ts};
use super::totp;
use super::users::{ApiResult, bool_param, query_map, user_idx_strict};
use super::util::random_id;
use crate::server::phones::Push;

pub(crate) async fn list_factors(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Read)?;
    let base = st.shared.cfg.base();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx_strict(&inner, &id)?];
    let list: Vec<Value> = u.factors.iter().map(|f| f.json(&base, &u.id)).collect();
    Ok(Json(list).into_response())
}

pub(crate) async fn get_factor(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path((id, fid)): Path<(String, String)>,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Read)?;
    let base = st.shared.cfg.base();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx_strict(&inner, &id)?];
    let f = u
        .factors
        .iter()
        .find(|f| f.id == fid)
        .ok_or_else(|| OktaError::factor_not_found(&fid))?;
    Ok(Json(f.json(&base, &u.id)).into_response())
}

pub(crate) async fn delete_factor(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path((id, fid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Manage)?;
    let q = query_map(raw.as_deref());
    bool_param(&q, "removeRecoveryEnrollment")?;
    let now = st.shared.now();
    let mut inner = st.shared.lock();
    let i = user_idx_strict(&inner, &id)?;
    let u = &mut inner.users[i];
    if u.status == "DEPROVISIONED" {
        return Err(OktaError::new(
            StatusCode::FORBIDDEN,
            "E0000038",
            "This operation is not allowed in the user's current status.",
        ));
    }
    let Some(f) = u.factors.iter().find(|f| f.id == fid).cloned() else {
        return Err(OktaError::factor_not_found(&fid));
    };
    // Removing an Okta Verify push or FastPass removes the user's other Okta Verify factors (okta.md section 5).
    let companions =
        f.is_okta_verify() && matches!(f.factor_type.as_str(), "push" | "signed_nonce");
    let before = u.factors.len();
    u.factors
        .retain(|g| g.id != fid && !(companions && g.is_okta_verify()));
    let removed = u32::try_from(before - u.factors.len()).unwrap_or(0);
    u.effects.factors_unenrolled += removed;
    u.last_updated = now;
    let remaining: Vec<String> = u.factors.iter().map(|f| f.id.clone()).collect();
    let user_id = u.id.clone();
    for tx in inner
        .txs
        .values_mut()
        .filter(|t| t.user_id == user_id && !remaining.contains(&t.factor_id))
    {
        tx.push.cancel();
    }
    drop(inner);
    let actor = super::logs::caller(&st.shared, &headers);
    super::logs::record(&st.shared, actor, "user.mfa.factor.deactivate", &user_id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn tx_href(base: &str, uid: &str, fid: &str, tx: &str) -> String {
    format!("{base}/api/v1/users/{uid}/factors/{fid}/transactions/{tx}")
}

fn waiting_body(base: &str, tx: &PushTx, credential_id: &str) -> Value {
    let href = tx_href(base, &tx.user_id, &tx.factor_id, &tx.id);
    let mut body = json!({
        "factorResult": "WAITING",
        "expiresAt": ts(tx.push.expires_at),
        "profile": {"credentialId": credential_id},
        "_links": {
            "poll": {"href": href, "hints": {"allow": ["GET"]}},
            "cancel": {"href": href, "hints": {"allow": ["DELETE"]}},
        },
    });
    if let Some(n) = tx.push.number {
        body["_embedded"] = json!({"challenge": {"correctAnswer": n}});
    }
    body
}

fn finished_body(base: &str, tx: &PushTx, result: &str, credential_id: &str) -> Value {
    let factor = format!(
        "{base}/api/v1/users/{}/factors/{}",
        tx.user_id, tx.factor_id
    );
    json!({
        "factorResult": result,
        "profile": {"credentialId": credential_id},
        "_links": {
            "verify": {"href": format!("{factor}/verify"), "hints": {"allow": ["POST"]}},
            "factor": {"href": factor, "hints": {"allow": ["GET", "DELETE"]}},
        },
    })
}

fn passcode_error(code: &'static str, summary: &str, cause: &str) -> OktaError {
    OktaError::new(StatusCode::FORBIDDEN, code, summary).cause(cause)
}

fn wrong_passcode() -> OktaError {
    passcode_error(
        "E0000068",
        "Invalid Passcode/Answer",
        "Your passcode doesn't match our records. Please try again.",
    )
}

fn user_locked() -> OktaError {
    passcode_error(
        "E0000069",
        "User Locked",
        "Your account is locked. Please contact your administrator.",
    )
}

pub(crate) async fn verify(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path((id, fid)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Manage)?;
    let q = query_map(raw.as_deref());
    if let Some(t) = q.get("tokenLifetimeSeconds") {
        if !t.parse::<u32>().is_ok_and(|n| (1..=86_400).contains(&n)) {
            return Err(OktaError::validation(
                "tokenLifetimeSeconds",
                "tokenLifetimeSeconds: The value must be between 1 and 86400.",
            ));
        }
    }
    let req: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            OktaError::new(
                StatusCode::BAD_REQUEST,
                "E0000003",
                "The request body was not well-formed.",
            )
        })?
    };
    if !req.is_object() {
        return Err(OktaError::new(
            StatusCode::BAD_REQUEST,
            "E0000003",
            "The request body was not well-formed.",
        ));
    }
    let passcode = match req.get("passCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(OktaError::validation(
                "passCode",
                "passCode: The value must be a string.",
            ));
        }
    };
    let number_matching = match req.get("useNumberMatchingChallenge") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(OktaError::validation(
                "useNumberMatchingChallenge",
                "useNumberMatchingChallenge: The value must be a boolean.",
            ));
        }
    };

    let base = st.shared.cfg.base();
    let now = st.shared.now();
    let cfg = &st.shared.cfg;
    let mut inner = st.shared.lock();
    let i = user_idx_strict(&inner, &id)?;
    let user_id = inner.users[i].id.clone();
    let login = inner.users[i].login.clone();
    let status = inner.users[i].status.clone();
    let Some(fidx) = inner.users[i].factors.iter().position(|f| f.id == fid) else {
        return Err(OktaError::factor_not_found(&fid));
    };
    match status.as_str() {
        "LOCKED_OUT" => return Err(user_locked()),
        "SUSPENDED" | "DEPROVISIONED" | "STAGED" => {
            return Err(OktaError::new(
                StatusCode::FORBIDDEN,
                "E0000038",
                "This operation is not allowed in the user's current status.",
            ));
        }
        _ => {}
    }
    let factor_type = inner.users[i].factors[fidx].factor_type.clone();
    let credential_id = inner.users[i].factors[fidx]
        .profile
        .get("credentialId")
        .and_then(Value::as_str)
        .unwrap_or(&login)
        .to_string();

    let number_matching =
        number_matching && !inner.plain_push_org && !inner.plain_push_users.contains(&user_id);
    match factor_type.as_str() {
        "push" => {
            let mut rng = rand::thread_rng();
            let correct = number_matching.then(|| rng.gen_range(10u8..=99));
            let choices = correct.map_or_else(Vec::new, |c| {
                let mut v = vec![c];
                while v.len() < 3 {
                    let n = rng.gen_range(10u8..=99);
                    if !v.contains(&n) {
                        v.push(n);
                    }
                }
                v.shuffle(&mut rng);
                v
            });
            let timeout = chrono::Duration::from_std(cfg.push_timeout)
                .unwrap_or(chrono::Duration::seconds(60));
            let tx = PushTx {
                id: format!("v2mst.{}", random_id(22)),
                user_id: user_id.clone(),
                factor_id: fid.clone(),
                push: Push::new(correct, choices, now, timeout),
                user_agent: headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                client_ip: headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(',').next())
                    .map(|v| v.trim().to_string()),
            };
            let body = waiting_body(&base, &tx, &credential_id);
            inner.users[i].effects.pushes_sent += 1;
            inner.txs.insert(tx.id.clone(), tx);
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
        "token:software:totp" | "token:hotp" | "token" | "token:hardware" => {
            let Some(code) = passcode else {
                return Err(OktaError::validation(
                    "passCode",
                    "passCode: The passcode is required.",
                ));
            };
            let step_now = totp::step_at(now.timestamp());
            let threshold = cfg.lockout_threshold;
            let as_body = cfg.passcode_replay_as_body;
            let u = &mut inner.users[i];
            let f = &mut u.factors[fidx];
            let secret = f.secret.clone().unwrap_or_default();
            let valid = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
            let exact = if valid {
                totp::find_step(&secret, &code, step_now, 1)
            } else {
                None
            };
            if let Some(off) = exact {
                let step = step_now + off;
                if f.last_used_step.is_some_and(|last| last >= step) {
                    u.effects.passcode_failures += 1;
                    if as_body {
                        return Ok(
                            Json(json!({"factorResult": "PASSCODE_REPLAYED"})).into_response()
                        );
                    }
                    return Err(passcode_error(
                        "E0000082",
                        "Each code can only be used once. Please wait for a new code and try again.",
                        "Each code can only be used once. Please wait for a new code and try again.",
                    ));
                }
                f.last_used_step = Some(step);
                u.effects.passcode_successes += 1;
                u.effects.consecutive_passcode_failures = 0;
                return Ok(Json(json!({"factorResult": "SUCCESS"})).into_response());
            }
            let out_of_window = valid && totp::find_step(&secret, &code, step_now, 10).is_some();
            u.effects.passcode_failures += 1;
            u.effects.consecutive_passcode_failures += 1;
            if threshold > 0 && u.effects.consecutive_passcode_failures >= threshold {
                u.set_status("LOCKED_OUT", now);
                return Err(user_locked());
            }
            if out_of_window {
                if as_body {
                    return Ok(
                        Json(json!({"factorResult": "TIME_WINDOW_EXCEEDED"})).into_response()
                    );
                }
                return Err(passcode_error(
                    "E0000083",
                    "Your passcode is valid but exceeded time window.",
                    "Your passcode is valid but exceeded time window.",
                ));
            }
            Err(wrong_passcode())
        }
        "sms" | "call" | "email" => {
            let threshold = cfg.lockout_threshold;
            let u = &mut inner.users[i];
            let f = &mut u.factors[fidx];
            let factor_href = format!("{base}/api/v1/users/{user_id}/factors/{fid}");
            match passcode {
                None => {
                    let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32));
                    f.sms_code = Some((code.clone(), now.timestamp() + 300));
                    let profile = f.profile.clone();
                    u.effects.sms_sent += 1;
                    u.effects.last_sms_code = Some(code);
                    Ok(Json(json!({
                        "factorResult": "CHALLENGE",
                        "profile": profile,
                        "_links": {
                            "verify": {"href": format!("{factor_href}/verify"), "hints": {"allow": ["POST"]}},
                            "factor": {"href": factor_href, "hints": {"allow": ["GET", "DELETE"]}},
                        },
                    }))
                    .into_response())
                }
                Some(code) => {
                    let ok = f.sms_code.as_ref().is_some_and(|(c, exp)| {
                        *exp > now.timestamp() && super::util::ct_eq(c, &code)
                    });
                    if ok {
                        f.sms_code = None;
                        u.effects.passcode_successes += 1;
                        u.effects.consecutive_passcode_failures = 0;
                        return Ok(Json(json!({"factorResult": "SUCCESS"})).into_response());
                    }
                    u.effects.passcode_failures += 1;
                    u.effects.consecutive_passcode_failures += 1;
                    if threshold > 0 && u.effects.consecutive_passcode_failures >= threshold {
                        u.set_status("LOCKED_OUT", now);
                        return Err(user_locked());
                    }
                    Err(wrong_passcode())
                }
            }
        }
        _ => Err(OktaError::validation(
            "factorType",
            "This factor cannot be verified through this API.",
        )),
    }
}

pub(crate) async fn poll(
    State(st): State<FakeOktaState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path((id, fid, txid)): Path<(String, String, String)>,
) -> ApiResult {
    authorize(&st.shared, &headers, &method, uri.path(), Need::Read)?;
    let base = st.shared.cfg.base();
    let now = st.shared.now();
    let inner = st.shared.lock();
    let u = &inner.users[user_idx_strict(&inner, &id)?];
    let tx = inner
        .txs
        .get(&txid)
        .filter(|t| t.user_id == u.id && t.factor_id == fid)
        .ok_or_else(|| {
            OktaError::new(
                StatusCode::NOT_FOUND,
                "E0000191",
                "The transaction was not found or has expired.",
            )
        })?;
    let credential_id = u.login.clone();
    let body = match tx.push.state_at(now) {
        PushState::Waiting => waiting_body(&base, tx, &credential_id),
        PushState::Success => json!({"factorResult": "SUCCESS"}),
        PushState::Rejected => finished_body(&base, tx, "REJECTED", &credential_id),
        PushState::Timeout => finished_body(&base, tx, "TIMEOUT", &credential_id),
    };
    Ok(Json(body).into_response())
}
