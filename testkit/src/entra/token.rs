//! The token endpoints: v2.0 (`scope=…/.default`) and v1 (`resource=…`) client credentials with a client secret
//! or a certificate assertion, the authorization-code grant (agent sign-in, see [`super::oidc`]), and the checks
//! Graph and the connector make on the bearer token.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

use super::error::{AadError, GraphError, uuid_v4};
use super::state::{AccessToken, App};
use super::{CONNECTOR_RESOURCE, FakeEntraState, GRAPH_APP_ID, MFA_CLIENT_ID};
use crate::common::jwt::{jwt_header, verify_signature};
use crate::common::oidc::is_form;
use crate::common::oidc::no_store;
use crate::common::util::ct_eq;

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Which resource a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Graph,
    Connector,
}

/// Parses a form body; repeated parameters are refused.
pub(crate) fn parse_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, AadError> {
    if !is_form(headers) {
        return Err(AadError::invalid_request(
            900_144,
            "The request body must contain the following parameter: 'grant_type'.",
        ));
    }
    let mut form = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if form.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(AadError::invalid_request(
                90_015,
                format!("Requested query string is too long or has a duplicate parameter '{k}'."),
            ));
        }
    }
    Ok(form)
}

fn tenant_error(tenant: &str) -> AadError {
    AadError::invalid_request(
        90_002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token_v2(
    State(st): State<FakeEntraState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !st.shared.cfg.is_tenant(&tenant) {
        return tenant_error(&tenant).into_response();
    }
    let form = match parse_form(&headers, &body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let result = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            client_credentials(&st, &headers, &form, true).map(|(tok, exp)| {
                Json(json!({
                    "token_type": "Bearer",
                    "expires_in": exp,
                    "ext_expires_in": exp,
                    "access_token": tok,
                }))
                .into_response()
            })
        }
        Some("authorization_code") => super::oidc::exchange_code(&st, &headers, &form),
        Some(other) => Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
        None => Err(AadError::invalid_request(
            900_144,
            "The request body must contain the following parameter: 'grant_type'.",
        )),
    };
    match result {
        Ok(r) => no_store(r),
        Err(e) => e.into_response(),
    }
}

/// `POST /{tenant}/oauth2/token` (v1: `resource=` instead of `scope=`), client credentials only.
pub(crate) async fn token_v1(
    State(st): State<FakeEntraState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !st.shared.cfg.is_tenant(&tenant) {
        return tenant_error(&tenant).into_response();
    }
    let form = match parse_form(&headers, &body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type.",
        )
        .into_response();
    }
    match client_credentials(&st, &headers, &form, false) {
        Ok((tok, exp)) => {
            let now = st.shared.now_secs();
            let resource = form.get("resource").cloned().unwrap_or_default();
            no_store(
                Json(json!({
                    "token_type": "Bearer",
                    "expires_in": exp.to_string(),
                    "ext_expires_in": exp.to_string(),
                    "expires_on": (now + exp).to_string(),
                    "not_before": now.to_string(),
                    "resource": resource,
                    "access_token": tok,
                }))
                .into_response(),
            )
        }
        Err(e) => e.into_response(),
    }
}

fn resource_for(
    st: &FakeEntraState,
    form: &HashMap<String, String>,
    v2: bool,
) -> Result<Resource, AadError> {
    if v2 {
        let scope = form.get("scope").map(String::as_str).unwrap_or("").trim();
        if scope.is_empty() {
            return Err(AadError::invalid_request(
                900_144,
                "The request body must contain the following parameter: 'scope'.",
            ));
        }
        // Scripts sometimes add `openid`; the resource scope decides.
        let scopes: Vec<&str> = scope
            .split_whitespace()
            .filter(|s| *s != "openid")
            .collect();
        let [one] = scopes.as_slice() else {
            return Err(AadError::invalid_scope(
                70_011,
                format!(
                    "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                ),
            ));
        };
        let Some(res) = one.strip_suffix("/.default") else {
            return Err(AadError::invalid_scope(
                1_002_012,
                format!(
                    "The provided value for scope {one} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        };
        resource_named(st, res)
    } else {
        let res = form.get("resource").map(String::as_str).unwrap_or("");
        if res.is_empty() {
            return Err(AadError::invalid_request(
                900_144,
                "The request body must contain the following parameter: 'resource'.",
            ));
        }
        resource_named(st, res)
    }
}

fn resource_named(st: &FakeEntraState, res: &str) -> Result<Resource, AadError> {
    let r = res.trim_end_matches('/');
    if r.eq_ignore_ascii_case(GRAPH_RESOURCE) || r.eq_ignore_ascii_case(GRAPH_APP_ID) {
        Ok(Resource::Graph)
    } else if r.eq_ignore_ascii_case(CONNECTOR_RESOURCE) {
        Ok(Resource::Connector)
    } else {
        Err(AadError::invalid_request(
            500_011,
            format!(
                "The resource principal named {res} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                st.shared.cfg.tenant_id
            ),
        ))
    }
}

/// Authenticates the client (secret or assertion) and mints an access token. Returns (token, expires_in).
fn client_credentials(
    st: &FakeEntraState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    v2: bool,
) -> Result<(String, i64), AadError> {
    let cfg = &st.shared.cfg;
    let (app, jti) = authenticate(st, headers, form)?;
    let resource = resource_for(st, form, v2)?;
    let now = st.shared.now_secs();
    let exp = cfg.token_lifetime;
    let roles = match resource {
        Resource::Graph => app.permissions.clone(),
        Resource::Connector => Vec::new(),
    };
    let (aud, audience) = match resource {
        Resource::Graph => (GRAPH_RESOURCE.to_string(), "graph"),
        Resource::Connector => (CONNECTOR_RESOURCE.to_string(), "connector"),
    };
    let mut claims = json!({
        "aud": aud,
        "iss": format!("https://sts.windows.net/{}/", cfg.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now + exp,
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": if jti.is_some() { "2" } else { "1" },
        "idp": format!("https://sts.windows.net/{}/", cfg.tenant_id),
        "idtyp": "app",
        "oid": super::fixtures::guid("sp", &app.client_id),
        "sub": super::fixtures::guid("sp", &app.client_id),
        "tid": cfg.tenant_id,
        "uti": uuid_v4(),
        "ver": "1.0",
    });
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
    header.kid = Some(st.shared.signer.kid.clone());
    let token =
        jsonwebtoken::encode(&header, &claims, &st.shared.signer.encoding).map_err(|_| {
            AadError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "temporarily_unavailable",
                50_000,
                "There was an error issuing a token.",
            )
        })?;
    let mut inner = st.shared.lock();
    if let Some((j, jexp)) = jti {
        inner.used_jtis.retain(|_, e| *e > now);
        if inner.used_jtis.insert(j, jexp).is_some() {
            return Err(AadError::invalid_client(
                700_025,
                "Client assertion contains a replayed jti (the assertion has already been used).",
            ));
        }
    }
    inner.tokens.retain(|_, t| t.expires_at > now);
    inner.tokens.insert(
        token.clone(),
        AccessToken {
            app_id: app.client_id.clone(),
            audience,
            roles,
            expires_at: now + exp,
        },
    );
    Ok((token, exp))
}

/// Client authentication: `client_secret` (post or basic) or a `client_assertion`. Returns the app and, for an
/// assertion, its `jti` and `exp` (spent only when a token is minted).
fn authenticate(
    st: &FakeEntraState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(App, Option<(String, i64)>), AadError> {
    let cfg = &st.shared.cfg;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|s| {
            s.split_once(':').map(|(a, b)| {
                let dec = |x: &str| {
                    percent_encoding::percent_decode_str(x)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                (dec(a), dec(b))
            })
        });
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
    let assertion = form.get("client_assertion");
    let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
        if assertion.is_none() {
            return Err(AadError::invalid_request(
                900_144,
                "The request body must contain the following parameter: 'client_id'.",
            ));
        }
        return authenticate_assertion(st, form, None);
    };
    let app = st.shared.lock().app(&client_id).cloned();
    let Some(app) = app else {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                cfg.tenant_domain
            ),
        ));
    };
    if !app.enabled {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            7_000_112,
            format!(
                "Application '{}'({}) is disabled.",
                app.client_id, app.display_name
            ),
        ));
    }
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.map(|(_, s)| s));
    match (secret, assertion) {
        (Some(_), Some(_)) => Err(AadError::invalid_request(
            50_027,
            "Only one client credential may be presented: client_secret or client_assertion.",
        )),
        (Some(s), None) => {
            if app.secret.as_deref().is_some_and(|own| ct_eq(own, &s)) {
                Ok((app, None))
            } else {
                Err(AadError::invalid_client(
                    7_000_215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"
                        .to_string()
                        + &app.client_id
                        + "'.",
                ))
            }
        }
        (None, Some(_)) => authenticate_assertion(st, form, Some(app)),
        (None, None) => Err(AadError::invalid_client(
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )),
    }
}

fn authenticate_assertion(
    st: &FakeEntraState,
    form: &HashMap<String, String>,
    app: Option<App>,
) -> Result<(App, Option<(String, i64)>), AadError> {
    let shared = &st.shared;
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(AadError::invalid_request(
            50_027,
            "The client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let assertion = form
        .get("client_assertion")
        .map(String::as_str)
        .unwrap_or("");
    let malformed = || AadError::invalid_request(50_027, "JWT token is invalid or malformed.");
    let header = jwt_header(assertion).ok_or_else(malformed)?;
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Algorithm::RS256,
        Some("PS256") => Algorithm::PS256,
        _ => {
            return Err(AadError::invalid_client(
                5_002_738,
                "Invalid JWT token. 'alg' must be RS256 or PS256.",
            ));
        }
    };
    let s256 = header.get("x5t#S256").and_then(Value::as_str);
    let sha1 = header.get("x5t").and_then(Value::as_str);
    // Unverified claims first, to find the app when no client_id was sent.
    let unverified: Value = assertion
        .split('.')
        .nth(1)
        .and_then(crate::common::util::b64url_decode)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    let claimed = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
    let app = match app {
        Some(a) => a,
        None => shared.lock().app(claimed).cloned().ok_or_else(|| {
            AadError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700_016,
                format!("Application with identifier '{claimed}' was not found in the directory."),
            )
        })?,
    };
    let cert = &shared.cert;
    let known =
        app.cert && (s256 == Some(cert.x5t_s256.as_str()) || sha1 == Some(cert.x5t.as_str()));
    if !known {
        let id = s256.or(sha1).unwrap_or("(none)");
        return Err(AadError::invalid_client(
            700_027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{id}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                app.client_id
            ),
        ));
    }
    let jwk = &cert.public_jwk;
    let key = DecodingKey::from_rsa_components(
        jwk.get("n").and_then(Value::as_str).unwrap_or(""),
        jwk.get("e").and_then(Value::as_str).unwrap_or(""),
    )
    .map_err(|_| malformed())?;
    let claims = verify_signature(assertion, &key, alg).map_err(|_| {
        AadError::invalid_client(700_027, "Client assertion failed signature validation.")
    })?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(app.client_id.as_str()) || s("sub") != Some(app.client_id.as_str()) {
        return Err(AadError::invalid_client(
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials.",
        ));
    }
    let endpoint = shared.cfg.token_endpoint();
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == &endpoint,
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str() == Some(endpoint.as_str()),
        _ => false,
    };
    if !aud_ok {
        return Err(AadError::invalid_client(
            700_023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected '{endpoint}'."
            ),
        ));
    }
    let now = shared.now_secs();
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    let skew = 300;
    let Some(exp) = exp.filter(|e| *e + skew > now) else {
        return Err(AadError::invalid_client(
            700_024,
            "Client assertion is not within its valid time range.",
        ));
    };
    if nbf.is_some_and(|n| n - skew > now) {
        return Err(AadError::invalid_client(
            700_024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let Some(jti) = s("jti").filter(|j| !j.is_empty()) else {
        return Err(AadError::invalid_client(
            700_025,
            "Client assertion must contain a 'jti' claim.",
        ));
    };
    if shared.lock().used_jtis.contains_key(jti) {
        return Err(AadError::invalid_client(
            700_025,
            "Client assertion contains a replayed jti (the assertion has already been used).",
        ));
    }
    Ok((app, Some((jti.to_owned(), exp))))
}

/// The bearer token of a request, checked for `audience`; `None` with the 401 to answer.
pub(crate) fn bearer(
    st: &FakeEntraState,
    headers: &HeaderMap,
    audience: &'static str,
) -> Result<AccessToken, GraphError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(GraphError::invalid_token("Access token is empty."));
    };
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(GraphError::invalid_token("Access token is empty."));
    };
    let now = st.shared.now_secs();
    let t = st.shared.lock().tokens.get(token).cloned();
    let Some(t) = t else {
        return Err(GraphError::invalid_token(
            "IDX14100: JWT is not well formed, there are no dots (.).",
        ));
    };
    if t.expires_at <= now {
        return Err(GraphError::invalid_token(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if t.audience != audience {
        return Err(GraphError::invalid_token("Invalid audience."));
    }
    Ok(t)
}

/// Whether the token's app is the MFA client (the only caller the connector serves).
pub(crate) fn is_mfa_client(t: &AccessToken) -> bool {
    t.app_id.eq_ignore_ascii_case(MFA_CLIENT_ID)
}
