//! The API's JSON request bodies: [`JsonBody`] (required) and [`OptionalBody`] (an empty body means the type's
//! default), in place of axum's `Json`, whose rejections are `text/plain` and quote serde's error, and with it
//! the input (`invalid type: integer 12345`).
//!
//! Every refusal is the error envelope with a stable code and fixed words, never a serde message:
//!
//! | what | status | code |
//! |---|---|---|
//! | a `Content-Type` other than `application/json` (or none, with a body) | 415 | `unsupported_media_type` |
//! | longer than `[limits] body_limit_bytes` | 413 | `body_too_large` |
//! | not JSON (syntax, cut short, not UTF-8), or empty where a body is required | 400 | `malformed_json` |
//! | JSON, but not an object, or an object that does not fit the type (missing, unknown or mistyped field) | 422 | `invalid_body` |
//!
//! The body is parsed to a `serde_json::Value` first and must be an object: serde's derived `Deserialize` for a
//! struct also takes a JSON array (the fields in order), which the schema does not allow. The request types deny
//! unknown fields, and say so in the OpenAPI document (`additionalProperties: false`).

use crate::reply::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// A required JSON object body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// An optional JSON object body: no body at all (zero bytes), or the JSON `null` the schema of an optional body
/// allows, gives `T::default()`.
#[derive(Debug)]
pub struct OptionalBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match read(req, state).await? {
            Some(bytes) => parse(&bytes).map(Self),
            None => Err(ApiError::malformed_json()),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match read(req, state).await? {
            Some(bytes) => match json(&bytes)? {
                serde_json::Value::Null => Ok(Self(T::default())),
                value => object(value).map(Self),
            },
            None => Ok(Self(T::default())),
        }
    }
}

/// The body's bytes, `None` when there are none; 415 when there are and they are not declared JSON, 413 when
/// they are too many.
async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Option<Bytes>, ApiError> {
    let declared_json = json_content_type(req.headers());
    let bytes = Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large()
        } else {
            ApiError::malformed_json()
        }
    })?;
    match (bytes.is_empty(), declared_json) {
        (true, Some(false)) | (false, None | Some(false)) => {
            Err(ApiError::unsupported_media_type())
        }
        (true, _) => Ok(None),
        (false, Some(true)) => Ok(Some(bytes)),
    }
}

/// `None` without a `Content-Type`; else whether it is `application/json` (parameters such as `charset` allowed).
fn json_content_type(h: &HeaderMap) -> Option<bool> {
    let ct = h.get(header::CONTENT_TYPE)?;
    Some(ct.to_str().is_ok_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    }))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    object(json(bytes)?)
}

fn json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        // The category only: serde's message can quote the input.
        tracing::debug!(category = ?e.classify(), "API request body is not JSON");
        ApiError::malformed_json()
    })
}

fn object<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        tracing::debug!("API request body is JSON but not an object");
        return Err(ApiError::invalid_body());
    }
    T::deserialize(value).map_err(|_| {
        tracing::debug!("API request body does not fit the operation's schema");
        ApiError::invalid_body()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use axum::response::IntoResponse as _;
    use http_body_util::BodyExt as _;
    use serde::Deserialize;

    #[derive(Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    struct T {
        #[allow(dead_code)]
        a: Option<String>,
    }

    async fn run(ct: Option<&str>, body: &'static str) -> (StatusCode, String) {
        let mut r = Request::post("/");
        if let Some(ct) = ct {
            r = r.header(header::CONTENT_TYPE, ct);
        }
        let req = r.body(Body::from(body)).unwrap();
        match JsonBody::<T>::from_request(req, &()).await {
            Ok(_) => (StatusCode::OK, String::new()),
            Err(e) => {
                let resp = e.into_response();
                let s = resp.status();
                let b = resp.into_body().collect().await.unwrap().to_bytes();
                (s, String::from_utf8_lossy(&b).into_owned())
            }
        }
    }

    #[tokio::test]
    async fn refusals_have_stable_codes_and_never_quote_the_input() {
        let j = Some("application/json");
        for (ct, body, status, code) in [
            (j, r#"{"a": "ok"}"#, StatusCode::OK, ""),
            (
                Some("application/json; charset=utf-8"),
                "{}",
                StatusCode::OK,
                "",
            ),
            (
                Some("text/plain"),
                r#"{"a": "MARK"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                None,
                r#"{"a": "MARK"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (j, "", StatusCode::BAD_REQUEST, "malformed_json"),
            (
                j,
                r#"{"a": "MARK""#,
                StatusCode::BAD_REQUEST,
                "malformed_json",
            ),
            (j, "MARK", StatusCode::BAD_REQUEST, "malformed_json"),
            (
                j,
                r#"["MARK"]"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                j,
                r#""MARK""#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                j,
                r#"{"a": 12345}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
            (
                j,
                r#"{"MARK": 1}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
            ),
        ] {
            let (s, b) = run(ct, body).await;
            assert_eq!(s, status, "{ct:?} {body}: {b}");
            assert!(b.contains(code), "{body}: {b}");
            assert!(
                !b.contains("MARK") && !b.contains("12345"),
                "{body} echoed: {b}"
            );
        }
    }

    #[tokio::test]
    async fn an_optional_body_may_be_absent_but_not_malformed() {
        let req = Request::post("/").body(Body::empty()).unwrap();
        assert!(OptionalBody::<T>::from_request(req, &()).await.is_ok());
        let req = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("null"))
            .unwrap();
        assert!(OptionalBody::<T>::from_request(req, &()).await.is_ok());
        let req = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("null"))
            .unwrap();
        assert!(JsonBody::<T>::from_request(req, &()).await.is_err());
        let req = Request::post("/")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("[]"))
            .unwrap();
        assert!(OptionalBody::<T>::from_request(req, &()).await.is_err());
    }
}
