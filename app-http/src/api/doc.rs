//! The OpenAPI document's shared parts: the security schemes (bearer ID token; the session cookie for the
//! portal's own pages) and the error responses each kind of operation can answer, every one with the
//! [`ErrorBody`](crate::reply::ErrorBody) envelope. The operations name these sets in their `#[utoipa::path]`, so
//! the document and the handlers are generated from one place.

use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response};

/// The security scheme name of the bearer ID token.
pub const BEARER: &str = "bearer";
/// The security scheme name of the portal's session cookie.
pub const SESSION: &str = "session";

/// Adds the security schemes to the document's components.
pub struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An ID token issued by the configured sign-in issuer for the portal's client id; \
                         its groups claim maps to a role by policy.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-fctr",
                "The portal's session cookie, for same-origin calls from its own pages (`fctr` when served over \
                 plain HTTP on loopback). Every non-GET request also needs `X-CSRF-Token`.",
            ))),
        );
    }
}

/// What each error status means, in the document.
fn meaning(status: u16) -> &'static str {
    match status {
        400 => {
            "Invalid input (`invalid_input`: an id, action, query or code the server cannot use) or a body that \
                is not JSON (`malformed_json`)."
        }
        401 => "No valid bearer token or session (`unauthenticated`, `authentication_failed`).",
        403 => {
            "Refused: no role, the role does not allow it, a protected target, no live grant, a cross-site \
                request (`no_role`, `not_permitted_for_role`, `protected_target`, `no_live_grant`, `csrf_rejected`, …)."
        }
        404 => "No such caller or verification (`target_not_found`, `verification_not_found`).",
        408 => "The request took longer than `[limits] request_timeout_secs` (`request_timeout`).",
        413 => "The body is larger than `[limits] body_limit_bytes` (`body_too_large`).",
        415 => "A body that is not declared `application/json` (`unsupported_media_type`).",
        422 => {
            "A JSON body of the wrong shape: not an object, a missing, unknown or mistyped field (`invalid_body`)."
        }
        429 => {
            "Rate limited or locked out (`rate_limited`, `verification_locked`); see `Retry-After`."
        }
        502 => "The identity provider failed (`idp_error`); nothing of its answer is passed on.",
        503 => {
            "The audit log or the shared state store is unavailable (`audit_unavailable`, `state_unavailable`); \
                nothing was done."
        }
        _ => "Error.",
    }
}

/// The error responses for `statuses`, each the envelope, with `Retry-After` on 429 and `WWW-Authenticate` on
/// 401.
fn responses(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .map(|&s| {
            let mut r = ResponseBuilder::new().description(meaning(s)).content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
            let int = || {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
            };
            let text = || ObjectBuilder::new().schema_type(Type::String);
            if s == 429 {
                r = r.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(int())
                        .description(Some("Seconds until a retry can succeed."))
                        .build(),
                );
            }
            if s == 401 {
                r = r.header(
                    "WWW-Authenticate",
                    HeaderBuilder::new().schema(text()).build(),
                );
            }
            (s.to_string(), RefOr::T(r.build()))
        })
        .collect()
}

macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident: $($status:literal),+) => {
        $(#[$doc])*
        pub struct $name;
        impl $name {
            /// The statuses in this set.
            pub const STATUSES: &'static [u16] = &[$($status),+];
        }
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                responses(Self::STATUSES)
            }
        }
    };
}

error_set!(
    /// A search: a required body, no path id.
    SearchErrors: 400, 401, 403, 408, 413, 415, 422, 429, 502, 503
);
error_set!(
    /// A GET of a caller by id (and action): no body.
    ReadErrors: 400, 401, 403, 404, 408, 429, 502, 503
);
error_set!(
    /// A GET of a verification: no body; a malformed id is simply not found.
    PollErrors: 401, 403, 404, 408, 429, 502, 503
);
error_set!(
    /// A POST with an id in the path and a JSON body (required or optional).
    WriteErrors: 400, 401, 403, 404, 408, 413, 415, 422, 429, 502, 503
);

/// Adds OpenAPI links to the serialized document: which response field feeds which operation's parameter (a
/// search result's `id` is a user id for the caller operations; a verification's `id` is the verification
/// operations' id). Clients and API fuzzers follow them from real responses to real resources. Done on the JSON
/// because utoipa 5's `Link` serializes its fields in snake case (`operation_id`), which is not OpenAPI.
pub fn add_links(doc: &mut serde_json::Value) {
    let mut links: Vec<(&str, &str, &str, &str, &str)> = Vec::new();
    for op in ["lookup", "explain", "begin", "act", "remove_factor"] {
        links.push((
            "/api/v1/users/search",
            "post",
            "200",
            "$response.body#/0/id",
            op,
        ));
        links.push(("/api/v1/users/{id}", "get", "200", "$response.body#/id", op));
    }
    for op in ["poll", "continue_", "code"] {
        for (path, method, status) in [
            ("/api/v1/users/{id}/verifications", "post", "201"),
            ("/api/v1/verifications/{id}", "get", "200"),
            ("/api/v1/verifications/{id}/continue", "post", "200"),
        ] {
            links.push((path, method, status, "$response.body#/id", op));
        }
    }
    for (path, method, status, expr, target) in links {
        let Some(resp) = doc
            .pointer_mut(&format!(
                "/paths/{}/{method}/responses/{status}",
                path.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        let all = resp.entry("links").or_insert_with(|| serde_json::json!({}));
        if let Some(all) = all.as_object_mut() {
            all.insert(
                target.trim_end_matches('_').to_owned(),
                serde_json::json!({"operationId": target, "parameters": {"id": expr}}),
            );
        }
    }
}
