//! What an API caller controls: JSON request bodies, the search text, ids in paths, X-Forwarded-For.
#![no_main]
use fctr_portal::api::{CodeRequest, FactorRequest, SearchRequest};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<SearchRequest>(data) {
        let _ = fctr_ports::UserQuery::guess(&r.query);
    }
    if let Ok(r) = serde_json::from_slice::<CodeRequest>(data) {
        let _ = r.code.trim().len();
    }
    if let Ok(r) = serde_json::from_slice::<FactorRequest>(data) {
        if let Some(f) = r.factor_id {
            let _ = fctr_ports::FactorId::parse(f);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = fctr_ports::SubjectId::parse(s.to_owned());
        let _ = fctr_ports::VerificationId::parse(s);
        let _ = fctr_ports::ActionKind::parse(s);
        if let Ok(v) = axum::http::HeaderValue::from_str(s) {
            let mut h = axum::http::HeaderMap::new();
            h.insert("x-forwarded-for", v);
            let mut e = fctr_portal::edge::EdgeSettings::default();
            e.trusted_proxies =
                fctr_portal::edge::parse_cidrs(&["0.0.0.0/0".to_owned(), "::/0".to_owned()])
                    .unwrap_or_default();
            let _ = e.client_ip(std::net::IpAddr::from([10, 0, 0, 1]), &h);
        }
        let _ = fctr_portal::edge::parse_cidrs(&[s.to_owned()]);
    }
});
