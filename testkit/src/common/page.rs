//! HTML pages the fakes serve (login, simulated phone): a banner saying it is a fake, and strict headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::util::html_escape;

/// CSP of the simulated phone pages (forms post back to the fake).
pub(crate) const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML page with a red "{banner} (fctr testkit) - not a real identity provider" banner and strict headers.
pub(crate) fn html_page(
    banner: &str,
    title: &str,
    body: &str,
    refresh: Option<u32>,
    csp: &str,
) -> Response {
    let refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222}}\
.banner{{background:#b00020;color:#fff;padding:.4rem .8rem;font-weight:bold;border-radius:4px}}\
.card{{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1rem 0}}\
button{{font-size:1.2rem;margin:.3rem;padding:.5rem 1rem}}.muted{{color:#666;font-size:.9rem}}</style></head>\
<body><p class=\"banner\">{banner} (fctr testkit) &mdash; not a real identity provider</p>{body}</body></html>",
        title = html_escape(title),
        banner = html_escape(banner),
    );
    let mut resp = (StatusCode::OK, axum::response::Html(html)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// 303 back to the simulated phone page with a message, keeping the user it was showing.
pub(crate) fn back_to_phone(msg: &str, user: Option<String>) -> Response {
    let mut location = url::form_urlencoded::Serializer::new(String::new());
    location.append_pair("msg", msg);
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        location.append_pair("user", &u);
    }
    let loc = format!("phone?{}", location.finish());
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&loc) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod phone_tests {
    use super::*;

    #[test]
    fn back_to_phone_keeps_the_user_and_encodes_the_message() {
        let r = back_to_phone("Approved & done.", Some("alice@example.com".into()));
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            r.headers()[header::LOCATION],
            "phone?msg=Approved+%26+done.&user=alice%40example.com"
        );
        let r = back_to_phone("Noted.", Some(String::new()));
        assert_eq!(r.headers()[header::LOCATION], "phone?msg=Noted.");
    }
}
