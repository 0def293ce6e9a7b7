//! The org authorization server's OIDC side for agent sign-in: discovery, authorize (with a login page listing
//! the demo agents), the authorization code grant with PKCE S256, JWKS, userinfo and logout (okta.md section 8).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::FakeOktaState;
use super::control::html_page;
use super::error::OAuthError;
use super::state::{AuthCode, AuthRequest, OidcAccess};
use super::util::{b64url, ct_eq, html_escape, random_id};
use crate::common::keys::{KeyError, Signer, generate_ed25519, generate_rsa};
use crate::common::oidc::WebClientAuth;
use crate::common::oidc::no_store;
use crate::common::oidc::{IdTokenTweak, sign_hs256, sign_id_token};
use crate::common::oidc::{query_map, redirect, valid_pkce_string, with_params};
use crate::server::lock;

const LOGIN_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";
const ORG_ID: &str = "00ofctrfakeorg000001";

pub(crate) async fn discovery(State(st): State<FakeOktaState>) -> Response {
    let iss = st.shared.cfg.issuer_str();
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth2/v1/authorize"),
        "token_endpoint": format!("{iss}/oauth2/v1/token"),
        "userinfo_endpoint": format!("{iss}/oauth2/v1/userinfo"),
        "registration_endpoint": format!("{iss}/oauth2/v1/clients"),
        "jwks_uri": format!("{iss}/oauth2/v1/keys"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": id_token_algs(&st),
        "scopes_supported": ["openid", "email", "profile", "groups", "okta.users.read", "okta.users.manage"],
        "token_endpoint_auth_methods_supported": lock(&st.shared.web_app).advertised_methods(),
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
        "claims_supported": [
            "iss", "ver", "sub", "aud", "iat", "exp", "jti", "auth_time", "amr", "idp", "nonce", "name",
            "given_name", "family_name", "email", "email_verified", "preferred_username", "groups", "at_hash"
        ],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": format!("{iss}/oauth2/v1/introspect"),
        "revocation_endpoint": format!("{iss}/oauth2/v1/revoke"),
        "end_session_endpoint": format!("{iss}/oauth2/v1/logout"),
        "request_parameter_supported": false,
        "dpop_signing_alg_values_supported": ["RS256", "ES256"],
    }))
    .into_response()
}

/// `RS256`, plus what the control API asked the discovery document to advertise on top (a test of the relying
/// party's own algorithm allow-list).
fn id_token_algs(st: &FakeOktaState) -> Vec<String> {
    let mut algs = vec![match st.shared.keys.current().alg {
        jsonwebtoken::Algorithm::EdDSA => "EdDSA".to_owned(),
        _ => "RS256".to_owned(),
    }];
    algs.extend(st.shared.extra_id_token_algs());
    algs
}

pub(crate) async fn discovery_oauth(state: State<FakeOktaState>) -> Response {
    discovery(state).await
}

/// How the OIDC web app (the portal) is registered, as a test sets it: where `groups` is released, how the client
/// must authenticate, the public keys registered for `private_key_jwt`, and what discovery advertises.
#[derive(Default)]
pub(crate) struct WebApp {
    /// `groups` only at userinfo, never in the ID token (what a provider that follows the spec's claim placement
    /// does).
    pub groups_only_at_userinfo: bool,
    /// The one method accepted; `None`: either secret method.
    pub client_auth: Option<WebClientAuth>,
    /// Public JWKs registered for `private_key_jwt`.
    pub client_keys: Vec<Value>,
    /// `token_endpoint_auth_methods_supported` as advertised; `None`: all three.
    pub advertised: Option<Vec<String>>,
}

impl WebApp {
    fn advertised_methods(&self) -> Vec<String> {
        self.advertised.clone().unwrap_or_else(|| {
            [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ]
            .map(str::to_owned)
            .to_vec()
        })
    }
}

/// The ID-token signing key the fake signs with and publishes at its JWKS endpoint (rotatable through
/// [`OidcControl::rotate_signing_key`](super::control::OidcControl::rotate_signing_key)), a count of JWKS
/// requests, and an optional hold that parks JWKS requests until released (a relying party's key-refresh tests).
pub(crate) struct SigningKeys {
    current: Mutex<Arc<Signer>>,
    jwks_requests: AtomicU64,
    hold: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl SigningKeys {
    pub(crate) fn new(signer: Arc<Signer>) -> Self {
        Self {
            current: Mutex::new(signer),
            jwks_requests: AtomicU64::new(0),
            hold: Mutex::new(None),
        }
    }

    /// The key ID tokens are signed with now (the only one the JWKS publishes).
    pub(crate) fn current(&self) -> Arc<Signer> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Generates a fresh RSA key with a new `kid` (on a blocking thread), signs with it from now on and publishes
    /// only it: the previous key leaves the JWKS, as after an IdP's rotation. Returns the new `kid`.
    pub(crate) async fn rotate(&self) -> Result<String, KeyError> {
        let fresh = tokio::task::spawn_blocking(generate_rsa)
            .await
            .map_err(|e| KeyError::Generate(e.to_string()))??;
        let kid = fresh.kid.clone();
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(kid)
    }

    /// Generates a fresh Ed25519 key and signs ID tokens EdDSA with it from now on (the JWKS publishes only it).
    /// Returns the new `kid`.
    pub(crate) fn use_eddsa(&self) -> Result<String, KeyError> {
        let fresh = generate_ed25519()?;
        let kid = fresh.kid.clone();
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(kid)
    }

    /// JWKS requests received so far (counted on arrival, before any hold).
    pub(crate) fn jwks_requests(&self) -> u64 {
        self.jwks_requests.load(Ordering::SeqCst)
    }

    /// From now on, JWKS requests wait (after being counted) until [`SigningKeys::release`].
    pub(crate) fn hold(&self) {
        *self.hold.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Arc::new(tokio::sync::Semaphore::new(0)));
    }

    /// Lets every held JWKS request (and later ones) through.
    pub(crate) fn release(&self) {
        if let Some(gate) = self
            .hold
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            gate.close();
        }
    }
}

pub(crate) async fn keys(State(st): State<FakeOktaState>) -> Response {
    let keys = &st.shared.keys;
    keys.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let gate = keys
        .hold
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some(gate) = gate {
        // Closed on release: acquire then fails, and the request goes on.
        let _ = gate.acquire().await;
    }
    let mut resp = Json(json!({"keys": [keys.current().public_jwk.clone()]})).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600, must-revalidate"),
    );
    resp
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p>",
        html_escape(title),
        html_escape(detail)
    );
    let mut resp = html_page(title, &body, None, LOGIN_CSP);
    *resp.status_mut() = status;
    resp
}

/// The `acr_values` Okta's authorize endpoint takes (okta.md §8).
const OKTA_ACR_VALUES: [&str; 6] = [
    "urn:okta:loa:1fa:any",
    "urn:okta:loa:1fa:pwd",
    "urn:okta:loa:2fa:any",
    "urn:okta:loa:2fa:any:ifpossible",
    "phr",
    "phrh",
];

pub(crate) async fn authorize(
    State(st): State<FakeOktaState>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = query_map(raw.as_deref());
    let cfg = &st.shared.cfg;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("client_id") != Some(cfg.oidc_client_id.as_str()) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Invalid value for 'client_id' parameter.",
        );
    }
    let redirect_uri = get("redirect_uri").unwrap_or("").to_string();
    if !st.shared.lock().redirect_uris.contains(&redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings.",
        );
    }
    let state = get("state").unwrap_or("").to_string();
    let fail = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if !state.is_empty() {
            params.push(("state", state.as_str()));
        }
        redirect(&with_params(&redirect_uri, &params))
    };
    if get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "The response type is not supported by the authorization server. Configured response types: [code].",
        );
    }
    if state.is_empty() {
        return fail(
            "invalid_request",
            "The authorization request must include a 'state' parameter.",
        );
    }
    let scope = get("scope").unwrap_or("").to_string();
    if !scope.split_whitespace().any(|s| s == "openid") {
        return fail(
            "invalid_scope",
            "The authorization request must include the 'openid' scope.",
        );
    }
    if let Some(bad) = scope.split_whitespace().find(|s| {
        !matches!(
            *s,
            "openid" | "profile" | "email" | "groups" | "offline_access" | "address" | "phone"
        )
    }) {
        return fail(
            "invalid_scope",
            &format!(
                "One or more scopes are not configured for the authorization server resource: {bad}."
            ),
        );
    }
    let Some(nonce) = get("nonce") else {
        return fail(
            "invalid_request",
            "The authorization request must include a 'nonce' parameter.",
        );
    };
    let Some(challenge) = get("code_challenge") else {
        return fail(
            "invalid_request",
            "PKCE code challenge is required by the client.",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "The 'code_challenge_method' parameter must be 'S256'.",
        );
    }
    if !valid_pkce_string(challenge) {
        return fail(
            "invalid_request",
            "The 'code_challenge' parameter is invalid.",
        );
    }
    if get("prompt") == Some("none") {
        return fail(
            "login_required",
            "The client specified not to prompt, but the user is not logged in.",
        );
    }
    if let Some(bad) = get("prompt").and_then(|p| {
        p.split_whitespace()
            .find(|v| !matches!(*v, "login" | "consent" | "none" | "select_account"))
            .map(str::to_owned)
    }) {
        return fail(
            "invalid_request",
            &format!("The 'prompt' parameter value '{bad}' is invalid."),
        );
    }
    if get("max_age").is_some_and(|m| m.parse::<u64>().is_err()) {
        return fail(
            "invalid_request",
            "The 'max_age' parameter must be a non-negative integer.",
        );
    }
    let acr_values = get("acr_values").map(str::to_owned);
    if let Some(bad) = acr_values.as_deref().and_then(|a| {
        a.split_whitespace()
            .find(|v| !OKTA_ACR_VALUES.contains(v))
            .map(str::to_owned)
    }) {
        return fail(
            "invalid_request",
            &format!("The 'acr_values' parameter value '{bad}' is not supported."),
        );
    }
    // Every sign-in on this fake authenticates afresh (there are no sessions), so `prompt=login` and `max_age`
    // hold; `prompt=login` also offers every active user, so a caller can sign in through a link.
    let anyone = get("prompt").is_some_and(|p| p.split_whitespace().any(|v| v == "login"));
    let now = st.shared.now_secs();
    let request_id = random_id(32);
    let agents: Vec<(String, String, String)> = {
        let mut inner = st.shared.lock();
        inner.auth_requests.retain(|_, r| r.expires_at > now);
        inner.auth_requests.insert(
            request_id.clone(),
            AuthRequest {
                client_id: cfg.oidc_client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                state: state.clone(),
                nonce: nonce.to_string(),
                scope: scope.clone(),
                code_challenge: challenge.to_string(),
                expires_at: now + 600,
                acr_values,
            },
        );
        inner
            .users
            .iter()
            .filter(|u| (u.is_agent || anyone) && u.status == "ACTIVE")
            .map(|u| {
                let groups: Vec<&str> = u
                    .groups
                    .iter()
                    .filter_map(|g| inner.group_name(g))
                    .filter(|n| *n != "Everyone")
                    .collect();
                let groups = if groups.is_empty() {
                    "no fctr group".to_string()
                } else {
                    groups.join(", ")
                };
                (u.id.clone(), u.login.clone(), groups)
            })
            .collect()
    };
    let mut body = String::from(if anyone {
        "<h1>Sign in</h1><p>Demo sign-in (<code>prompt=login</code>): pick who signs in. No password is asked; \
         the ID token says <code>amr: [\"pwd\",\"mfa\"]</code> and a fresh <code>auth_time</code>.</p>\
         <form method=\"post\" action=\"authorize\">"
    } else {
        "<h1>Sign in</h1><p>Demo sign-in: pick an agent. No password is asked; the ID token says \
         <code>amr: [\"pwd\",\"mfa\"]</code>.</p><form method=\"post\" action=\"authorize\">"
    });
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"request_id\" value=\"{}\">",
        html_escape(&request_id)
    ));
    for (id, login, groups) in &agents {
        body.push_str(&format!(
            "<div class=\"card\"><button name=\"user\" value=\"{}\">Sign in as {}</button> <span class=\"muted\">{}</span></div>",
            html_escape(id),
            html_escape(login),
            html_escape(groups)
        ));
    }
    body.push_str("</form>");
    html_page("Sign in - Fake Okta", &body, None, LOGIN_CSP)
}

pub(crate) async fn authorize_submit(
    State(st): State<FakeOktaState>,
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
            "Sign-in expired",
            "Start the sign-in again from the application.",
        );
    };
    let Some(user) = form
        .get("user")
        .and_then(|u| inner.user_idx_by_id(u))
        .map(|i| &inner.users[i])
        .filter(|u| u.status == "ACTIVE")
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown user",
            "Pick one of the listed agents.",
        );
    };
    let user_id = user.id.clone();
    let code = random_id(43);
    inner.codes.retain(|_, c| c.expires_at > now);
    let location = with_params(&req.redirect_uri, &[("code", &code), ("state", &req.state)]);
    inner.codes.insert(
        code,
        AuthCode {
            req,
            user_id,
            auth_time: now,
            expires_at: now + 300,
        },
    );
    redirect(&location)
}

/// Client authentication for the web app: `client_secret_basic`, `client_secret_post` or `private_key_jwt` (one
/// of them; only the pinned one when a test pinned it).
fn authenticate_client(
    st: &FakeOktaState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let cfg = &st.shared.cfg;
    let pinned = lock(&st.shared.web_app).client_auth;
    let wrong_method = || {
        OAuthError::invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid.",
        )
    };
    if form.contains_key("client_assertion") || form.contains_key("client_assertion_type") {
        if headers.contains_key(header::AUTHORIZATION) || form.contains_key("client_secret") {
            return Err(OAuthError::invalid_request(
                "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
            ));
        }
        if pinned != Some(WebClientAuth::PrivateKeyJwt) {
            return Err(wrong_method());
        }
        let registered = lock(&st.shared.web_app).client_keys.clone();
        let (jti, exp) = super::oauth::check_client_assertion(
            &st.shared,
            form,
            &cfg.oidc_client_id,
            &registered,
            false,
        )?;
        super::oauth::spend_jti(&st.shared, jti, exp)?;
        return Ok(cfg.oidc_client_id.clone());
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(str::trim);
    let (id, secret) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
            ));
        }
        (Some(b), None) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| OAuthError::invalid_client("Client authentication failed."))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("Client authentication failed."))?;
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(id), dec(secret))
        }
        (None, Some(secret)) => {
            let id = form
                .get("client_id")
                .cloned()
                .ok_or_else(|| OAuthError::invalid_client("Client authentication failed."))?;
            (id, secret.clone())
        }
        (None, None) => {
            return Err(OAuthError::invalid_client(
                "Client authentication failed. Either the client or the client credentials are invalid.",
            ));
        }
    };
    let used = if basic.is_some() {
        WebClientAuth::ClientSecretBasic
    } else {
        WebClientAuth::ClientSecretPost
    };
    if pinned.is_some_and(|p| p != used) {
        return Err(wrong_method());
    }
    if id != cfg.oidc_client_id || !ct_eq(&secret, &cfg.oidc_client_secret) {
        return Err(OAuthError::invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid.",
        ));
    }
    if form.get("client_id").is_some_and(|c| c != &id) {
        return Err(OAuthError::invalid_client(
            "The client_id does not match the authenticated client.",
        ));
    }
    Ok(id)
}

pub(crate) fn exchange_code(
    st: &FakeOktaState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let client_id = authenticate_client(st, headers, form)?;
    let now = st.shared.now_secs();
    let code = form
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("The 'code' parameter is required."))?;
    // A presented code is spent, whatever happens next.
    let grant = st.shared.lock().codes.remove(code);
    let grant = grant
        .filter(|g| g.expires_at > now && g.req.client_id == client_id)
        .ok_or_else(|| {
            OAuthError::invalid_grant("The authorization code is invalid or has expired.")
        })?;
    if form.get("redirect_uri") != Some(&grant.req.redirect_uri) {
        return Err(OAuthError::invalid_grant(
            "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
        ));
    }
    let verifier = form.get("code_verifier").ok_or_else(|| {
        OAuthError::invalid_grant(
            "PKCE verification failed: the 'code_verifier' parameter is required.",
        )
    })?;
    if !valid_pkce_string(verifier)
        || b64url(&Sha256::digest(verifier.as_bytes())) != grant.req.code_challenge
    {
        return Err(OAuthError::invalid_grant("PKCE verification failed."));
    }
    let access_token = random_id(64);
    let id_token = mint_id_token(st, &grant, &access_token, now)?;
    st.shared.lock().oidc_tokens.insert(
        access_token.clone(),
        OidcAccess {
            user_id: grant.user_id.clone(),
            scope: grant.req.scope.clone(),
            expires_at: now + 3600,
        },
    );
    Ok(Json(json!({
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": access_token,
        "scope": grant.req.scope,
        "id_token": id_token,
    }))
    .into_response())
}

/// Profile claims for a user, by scope.
fn user_claims(
    st: &FakeOktaState,
    user_id: &str,
    scope: &str,
) -> Option<serde_json::Map<String, Value>> {
    let inner = st.shared.lock();
    let u = &inner.users[inner.user_idx_by_id(user_id)?];
    let has = |s: &str| scope.split_whitespace().any(|x| x == s);
    let mut c = serde_json::Map::new();
    c.insert("sub".into(), json!(u.id));
    if has("profile") {
        c.insert(
            "name".into(),
            json!(format!("{} {}", u.first_name, u.last_name)),
        );
        c.insert("preferred_username".into(), json!(u.login));
        c.insert("given_name".into(), json!(u.first_name));
        c.insert("family_name".into(), json!(u.last_name));
    }
    if has("email") {
        c.insert("email".into(), json!(u.email));
        c.insert("email_verified".into(), json!(true));
    }
    if has("groups") {
        let groups: Vec<&str> = u
            .groups
            .iter()
            .filter_map(|g| inner.group_name(g))
            .collect();
        c.insert("groups".into(), json!(groups));
    }
    Some(c)
}

fn mint_id_token(
    st: &FakeOktaState,
    grant: &AuthCode,
    access_token: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let cfg = &st.shared.cfg;
    let server_error = || {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Could not mint the ID token.",
        )
    };
    let mut claims = user_claims(st, &grant.user_id, &grant.req.scope).ok_or_else(server_error)?;
    if lock(&st.shared.web_app).groups_only_at_userinfo {
        claims.remove("groups");
    }
    let digest = Sha256::digest(access_token.as_bytes());
    claims.insert("ver".into(), json!(1));
    claims.insert("iss".into(), json!(cfg.issuer_str()));
    claims.insert("aud".into(), json!(grant.req.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + 3600));
    claims.insert("jti".into(), json!(format!("ID.{}", random_id(40))));
    claims.insert("amr".into(), json!(["pwd", "mfa"]));
    claims.insert("idp".into(), json!(ORG_ID));
    claims.insert("nonce".into(), json!(grant.req.nonce));
    claims.insert("auth_time".into(), json!(grant.auth_time));
    // The fake satisfies any level asked for (every sign-in here counts as two factors): it names the first.
    if let Some(acr) = grant
        .req
        .acr_values
        .as_deref()
        .and_then(|a| a.split_whitespace().next())
    {
        claims.insert("acr".into(), json!(acr));
    }
    claims.insert("at_hash".into(), json!(b64url(&digest[..16])));
    let tweak = st.shared.core.next_tweak();
    let signer = st.shared.keys.current();
    if tweak == Some(IdTokenTweak::HmacWithClientSecret) {
        // Only the token endpoint knows the client secret: sign HS256 with it here.
        return sign_hs256(
            &Value::Object(claims),
            cfg.oidc_client_secret.as_bytes(),
            &signer.kid,
        )
        .map_err(|()| server_error());
    }
    sign_id_token(
        &signer,
        claims,
        tweak,
        &grant.req.nonce,
        "0oaanotherclient0001",
        now,
    )
    .map_err(|()| server_error())
}

pub(crate) async fn userinfo(State(st): State<FakeOktaState>, headers: HeaderMap) -> Response {
    let invalid = || {
        let mut resp = (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token", "error_description": "The access token is invalid."})),
        )
            .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer error=\"invalid_token\", error_description=\"The access token is invalid\"",
            ),
        );
        resp
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let now = st.shared.now_secs();
    let Some(access) = token
        .and_then(|t| st.shared.lock().oidc_tokens.get(t).cloned())
        .filter(|a| a.expires_at > now)
    else {
        return invalid();
    };
    match user_claims(&st, &access.user_id, &access.scope) {
        Some(c) => no_store(Json(Value::Object(c)).into_response()),
        None => invalid(),
    }
}

pub(crate) async fn logout(State(st): State<FakeOktaState>, RawQuery(raw): RawQuery) -> Response {
    let q = query_map(raw.as_deref());
    if let Some(target) = q.get("post_logout_redirect_uri") {
        let allowed = st.shared.lock().redirect_uris.iter().any(|r| {
            r == target
                || url::Url::parse(r).ok().is_some_and(|u| {
                    let origin = u.origin().ascii_serialization();
                    target == &origin || target == &format!("{origin}/")
                })
        });
        if !allowed {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the client app settings.",
            );
        }
        let location = match q.get("state") {
            Some(s) => with_params(target, &[("state", s)]),
            None => target.clone(),
        };
        return redirect(&location);
    }
    html_page(
        "Signed out",
        "<h1>Signed out</h1><p>You have been signed out of the fake Okta org.</p>",
        None,
        LOGIN_CSP,
    )
}
