//! The OIDC v2 provider for agent sign-in (entra.md §9): discovery, authorize (a login page listing the demo
//! agents), the authorization-code grant with PKCE, JWKS and Graph's userinfo. ID tokens are RS256 with `iss`
//! `{base}/{tid}/v2.0`, `aud` the portal client id, `tid`, `oid`, a pairwise `sub`, `nonce`, `roles` (app
//! roles, e.g. `fctr.tier1`), `groups` (security-group object ids) and `wids` (directory-role template ids).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};
use sha2::{Digest as _, Sha256};

use super::FakeEntraState;
use super::error::{AadError, uuid_v4};
use super::state::{AccessToken, AuthCode, AuthRequest, ROLE_MARK};
use crate::common::oidc::{
    no_store, query_map, redirect, sign_id_token, valid_pkce_string, with_params,
};
use crate::common::page::html_page;
use crate::common::util::{b64url, ct_eq, html_escape, random_id};

const LOGIN_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
/// `form_post` pages submit themselves with one inline script.
const FORM_POST_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'; base-uri 'none'";

fn page(title: &str, body: &str, csp: &str) -> Response {
    html_page("FAKE ENTRA", title, body, None, csp)
}

fn error_page(status: StatusCode, code: u32, detail: &str) -> Response {
    let body = format!(
        "<h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p><p>AADSTS{code}: {}</p>",
        html_escape(detail)
    );
    let mut resp = page("Sign in", &body, LOGIN_CSP);
    *resp.status_mut() = status;
    resp
}

pub(crate) async fn discovery(
    State(st): State<FakeEntraState>,
    Path(tenant): Path<String>,
) -> Response {
    let cfg = &st.shared.cfg;
    if !cfg.is_tenant(&tenant) {
        return AadError::invalid_request(90_002, format!("Tenant '{tenant}' not found."))
            .into_response();
    }
    let base = cfg.base_str();
    let tid = &cfg.tenant_id;
    Json(json!({
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": cfg.issuer(),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
            "ver", "at_hash", "c_hash", "email", "oid", "roles", "groups", "wids"
        ],
        "kerberos_endpoint": format!("{base}/{tid}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
    .into_response()
}

pub(crate) async fn keys(State(st): State<FakeEntraState>, Path(tenant): Path<String>) -> Response {
    if !st.shared.cfg.is_tenant(&tenant) {
        return AadError::invalid_request(90_002, format!("Tenant '{tenant}' not found."))
            .into_response();
    }
    let mut jwk = st.shared.signer.public_jwk.clone();
    jwk["x5t"] = json!(st.shared.signer.kid.clone());
    jwk["issuer"] = json!(st.shared.cfg.issuer());
    let mut resp = Json(json!({"keys": [jwk]})).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    resp
}

pub(crate) async fn authorize(
    State(st): State<FakeEntraState>,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let cfg = &st.shared.cfg;
    if !cfg.is_tenant(&tenant) {
        return error_page(
            StatusCode::BAD_REQUEST,
            90_002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let q = query_map(raw.as_deref());
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            900_144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if !client_id.eq_ignore_ascii_case(&cfg.portal_client_id) {
        return error_page(
            StatusCode::BAD_REQUEST,
            700_016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    }
    let redirect_uri = get("redirect_uri").unwrap_or("").to_string();
    if !st.shared.lock().redirect_uris.contains(&redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            50_011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
        );
    }
    let state = get("state").unwrap_or("").to_string();
    let response_mode = get("response_mode").unwrap_or("query").to_string();
    let fail = |error: &str, code: u32, description: &str| {
        let d = format!("AADSTS{code}: {description}");
        let mut params = vec![("error", error), ("error_description", d.as_str())];
        if !state.is_empty() {
            params.push(("state", state.as_str()));
        }
        redirect(&with_params(&redirect_uri, &params))
    };
    if !matches!(response_mode.as_str(), "query" | "form_post" | "fragment") {
        return fail(
            "invalid_request",
            900_144,
            "The response_mode is not supported.",
        );
    }
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            700_054,
            "response_type 'id_token' or 'code' is required; the fake serves 'code' only.",
        );
    }
    let scope = get("scope").unwrap_or("").to_string();
    if !scope.split_whitespace().any(|s| s == "openid") {
        return fail(
            "invalid_scope",
            70_011,
            "The provided value for the input parameter 'scope' is not valid: 'openid' is required.",
        );
    }
    let challenge = get("code_challenge").unwrap_or("").to_string();
    let method = get("code_challenge_method").unwrap_or("plain").to_string();
    if !challenge.is_empty()
        && (!valid_pkce_string(&challenge) || !matches!(method.as_str(), "S256" | "plain"))
    {
        return fail(
            "invalid_request",
            501_491,
            "Invalid size of Code_Challenge parameter or unsupported code_challenge_method.",
        );
    }
    if get("prompt") == Some("none") {
        return fail(
            "login_required",
            50_058,
            "A silent sign-in request was sent but no user is signed in.",
        );
    }
    if get("prompt").is_some_and(|p| !matches!(p, "login" | "consent" | "select_account")) {
        return fail(
            "invalid_request",
            90_023,
            "Invalid value for the 'prompt' parameter.",
        );
    }
    // `claims` asking for an authentication context in the ID token: {"id_token":{"acrs":{"essential":true,
    // "value":"c1"}}}. The fake's Conditional Access satisfies any context c1..c99.
    let auth_context = match get("claims") {
        None => None,
        Some(raw) => {
            let v: Option<serde_json::Value> = serde_json::from_str(raw).ok();
            let ctx = v
                .as_ref()
                .and_then(|v| v.pointer("/id_token/acrs/value"))
                .and_then(serde_json::Value::as_str)
                .filter(|c| {
                    c.strip_prefix('c')
                        .and_then(|d| d.parse::<u8>().ok())
                        .is_some_and(|n| (1..=99).contains(&n))
                })
                .map(str::to_owned);
            if v.is_none() || ctx.is_none() {
                return fail(
                    "invalid_request",
                    90_014,
                    "The claims parameter is not valid JSON or names an unknown authentication context.",
                );
            }
            ctx
        }
    };
    let anyone = get("prompt") == Some("login");
    let now = st.shared.now_secs();
    let request_id = random_id(32);
    let agents: Vec<(String, String, String)> = {
        let mut inner = st.shared.lock();
        inner.auth_requests.retain(|_, r| r.expires_at > now);
        inner.auth_requests.insert(
            request_id.clone(),
            AuthRequest {
                redirect_uri: redirect_uri.clone(),
                state: state.clone(),
                nonce: get("nonce").unwrap_or("").to_string(),
                scope: scope.clone(),
                code_challenge: challenge,
                code_challenge_method: method,
                response_mode,
                expires_at: now + 600,
                auth_context,
            },
        );
        inner
            .users
            .iter()
            .filter(|u| (u.is_agent || anyone) && u.account_enabled)
            .map(|u| {
                let roles = if u.app_roles.is_empty() {
                    "no app role".to_string()
                } else {
                    u.app_roles.join(", ")
                };
                (u.id.clone(), u.upn.clone(), roles)
            })
            .collect()
    };
    let mut body = String::from(
        "<h1>Sign in</h1><p>Demo sign-in: pick an agent. No password is asked.</p>\
         <form method=\"post\" action=\"authorize\">",
    );
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"request_id\" value=\"{}\">",
        html_escape(&request_id)
    ));
    for (id, upn, roles) in &agents {
        body.push_str(&format!(
            "<div class=\"card\"><button name=\"user\" value=\"{}\">Sign in as {}</button> <span class=\"muted\">{}</span></div>",
            html_escape(id),
            html_escape(upn),
            html_escape(roles)
        ));
    }
    body.push_str("</form>");
    page("Sign in to your account", &body, LOGIN_CSP)
}

pub(crate) async fn authorize_submit(
    State(st): State<FakeEntraState>,
    Path(_tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let now = st.shared.now_secs();
    let mut inner = st.shared.lock();
    let Some(req) = form
        .get("request_id")
        .and_then(|id| inner.auth_requests.remove(id))
        .filter(|r| r.expires_at > now)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50_058,
            "The sign-in session expired. Start the sign-in again from the application.",
        );
    };
    let Some(user) = form
        .get("user")
        .and_then(|u| inner.user_idx_by_id(u))
        .map(|i| &inner.users[i])
        .filter(|u| u.account_enabled)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50_034,
            "The user account does not exist.",
        );
    };
    let user_id = user.id.clone();
    let code = random_id(64);
    inner.codes.retain(|_, c| c.expires_at > now);
    let params = [("code", code.as_str()), ("state", req.state.as_str())];
    let resp = match req.response_mode.as_str() {
        "form_post" => {
            let mut body = format!(
                "<form method=\"post\" action=\"{}\">",
                html_escape(&req.redirect_uri)
            );
            for (k, v) in params {
                body.push_str(&format!(
                    "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                    html_escape(v)
                ));
            }
            body.push_str("<noscript><button>Continue</button></noscript></form><script>document.forms[0].submit()</script>");
            page("Working...", &body, FORM_POST_CSP)
        }
        "fragment" => {
            let q = with_params("", &params);
            redirect(&format!(
                "{}#{}",
                req.redirect_uri,
                q.trim_start_matches('?')
            ))
        }
        _ => redirect(&with_params(&req.redirect_uri, &params)),
    };
    inner.codes.insert(
        code,
        AuthCode {
            req,
            user_id,
            auth_time: now,
            expires_at: now + 600,
        },
    );
    resp
}

/// Client authentication of the portal app: `client_secret_post` or `client_secret_basic`.
fn authenticate_portal(
    st: &FakeEntraState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), AadError> {
    let cfg = &st.shared.cfg;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::common::util::client_secret_basic);
    let (id, secret) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(AadError::invalid_request(
                50_027,
                "Only one client credential may be presented.",
            ));
        }
        (Some((id, s)), None) => (id, s),
        (None, Some(s)) => (
            form.get("client_id").cloned().unwrap_or_default(),
            s.clone(),
        ),
        (None, None) => {
            return Err(AadError::invalid_client(
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
    };
    if !id.eq_ignore_ascii_case(&cfg.portal_client_id) {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            format!("Application with identifier '{id}' was not found in the directory."),
        ));
    }
    if !ct_eq(&secret, &cfg.portal_client_secret) {
        return Err(AadError::invalid_client(
            7_000_215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        ));
    }
    Ok(())
}

/// The authorization-code grant (from the v2.0 token endpoint).
pub(crate) fn exchange_code(
    st: &FakeEntraState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Response, AadError> {
    authenticate_portal(st, headers, form)?;
    let cfg = &st.shared.cfg;
    let now = st.shared.now_secs();
    let code = form.get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
        AadError::invalid_request(
            900_144,
            "The request body must contain the following parameter: 'code'.",
        )
    })?;
    // A presented code is spent, whatever happens next.
    let grant = st.shared.lock().codes.remove(code);
    let grant = grant.filter(|g| g.expires_at > now).ok_or_else(|| {
        AadError::invalid_grant(
            70_008,
            "The provided authorization code or refresh token has expired due to inactivity, or was already redeemed.",
        )
    })?;
    if form.get("redirect_uri") != Some(&grant.req.redirect_uri) {
        return Err(AadError::invalid_grant(
            500_117,
            "The reply uri specified in the request does not match the reply uri used in the authorization request.",
        ));
    }
    if !grant.req.code_challenge.is_empty() {
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        let derived = if grant.req.code_challenge_method == "S256" {
            b64url(&Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_owned()
        };
        if !valid_pkce_string(verifier) || derived != grant.req.code_challenge {
            return Err(AadError::invalid_grant(
                501_481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    let access_token = format!("fake-entra-userinfo.{}", random_id(48));
    let id_token = mint_id_token(st, &grant, now).ok_or_else(|| {
        AadError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50_000,
            "There was an error issuing a token.",
        )
    })?;
    st.shared.lock().tokens.insert(
        access_token.clone(),
        AccessToken {
            app_id: grant.user_id.clone(),
            audience: "userinfo",
            roles: Vec::new(),
            expires_at: now + cfg.token_lifetime,
        },
    );
    Ok(Json(json!({
        "token_type": "Bearer",
        "scope": grant.req.scope,
        "expires_in": cfg.token_lifetime,
        "ext_expires_in": cfg.token_lifetime,
        "access_token": access_token,
        "id_token": id_token,
    }))
    .into_response())
}

fn mint_id_token(st: &FakeEntraState, grant: &AuthCode, now: i64) -> Option<String> {
    let cfg = &st.shared.cfg;
    let (mut claims, tweak) = {
        let inner = st.shared.lock();
        let u = &inner.users[inner.user_idx_by_id(&grant.user_id)?];
        let has = |s: &str| grant.req.scope.split_whitespace().any(|x| x == s);
        let sub = b64url(&Sha256::digest(
            format!("{}:{}", u.id, cfg.portal_client_id).as_bytes(),
        ));
        let mut c = Map::new();
        c.insert("aud".into(), json!(cfg.portal_client_id));
        c.insert("iss".into(), json!(cfg.issuer()));
        c.insert("iat".into(), json!(now));
        c.insert("nbf".into(), json!(now));
        c.insert("exp".into(), json!(now + 3600));
        // Entra releases `oid` only with the `profile` scope.
        if has("profile") {
            c.insert("oid".into(), json!(u.id));
        }
        c.insert("sub".into(), json!(sub));
        c.insert("tid".into(), json!(cfg.tenant_id));
        c.insert("uti".into(), json!(random_id(22)));
        // The `auth_time` optional claim (configured on the app registration for caller sign-in).
        c.insert("auth_time".into(), json!(grant.auth_time));
        // No `amr`: whether v2 ID tokens carry it is uncertain (entra.md §9); MFA shows in `acrs` when asked.
        if let Some(ctx) = &grant.req.auth_context {
            c.insert("acrs".into(), json!([ctx]));
        }
        c.insert("ver".into(), json!("2.0"));
        if !grant.req.nonce.is_empty() {
            c.insert("nonce".into(), json!(grant.req.nonce));
        }
        if has("profile") {
            c.insert("name".into(), json!(u.display_name));
            c.insert("preferred_username".into(), json!(u.upn));
        }
        if has("email") {
            if let Some(m) = &u.mail {
                c.insert("email".into(), json!(m));
            }
        }
        if !u.app_roles.is_empty() {
            c.insert("roles".into(), json!(u.app_roles));
        }
        let groups: Vec<&str> = u
            .member_of
            .iter()
            .filter(|m| !m.starts_with(ROLE_MARK))
            .map(String::as_str)
            .collect();
        c.insert("groups".into(), json!(groups));
        let wids: Vec<String> = u
            .member_of
            .iter()
            .filter_map(|m| inner.object(m))
            .filter_map(|o| o.role_template_id.clone())
            .collect();
        if !wids.is_empty() {
            c.insert("wids".into(), json!(wids));
        }
        let tweak = st.shared.core.next_tweak();
        (c, tweak)
    };
    claims.insert("aio".into(), json!(random_id(40)));
    sign_id_token(
        &st.shared.signer,
        claims,
        tweak,
        &grant.req.nonce,
        "fc7a0001-0000-4000-8000-0000000000ff",
        now,
    )
    .ok()
}

/// `GET /oidc/userinfo` with the access token from the code exchange.
pub(crate) async fn userinfo(State(st): State<FakeEntraState>, headers: HeaderMap) -> Response {
    let token = match super::token::bearer(&st, &headers, "userinfo") {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let inner = st.shared.lock();
    let Some(i) = inner.user_idx_by_id(&token.app_id) else {
        return super::error::GraphError::invalid_token("Invalid user.").into_response();
    };
    let u = &inner.users[i];
    no_store(
        Json(json!({
            "sub": b64url(&Sha256::digest(format!("{}:{}", u.id, st.shared.cfg.portal_client_id).as_bytes())),
            "name": u.display_name,
            "family_name": u.surname,
            "given_name": u.given_name,
            "email": u.mail,
            "picture": "https://graph.microsoft.com/v1.0/me/photo/$value",
            "request_id": uuid_v4(),
        }))
        .into_response(),
    )
}
