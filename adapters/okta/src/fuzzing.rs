//! Fuzzing entry points (cargo feature `fuzzing`, off by default; not a stable API, hidden from the docs).
//!
//! [`parse_okta_responses`] feeds one input through every decoder the adapter runs on an Okta answer, and then
//! through the conversions into port types that the adapter applies to the decoded value, so a panic anywhere in
//! decoding or conversion is found. The same bytes are also read as response headers (lines `Name: value`), for
//! the `Link`, rate-limit, `Retry-After`, `Date` and `WWW-Authenticate` readers. Results are ignored: the only
//! property checked is "no panic" (and the arithmetic the callers do with the results does not overflow).

use crate::errors::{OktaError, rate_headers, retry_after, server_date, www_authenticate_error};
use crate::http::{Op, Resp, next_link, on_org};
use crate::wire::{FactorDto, GroupDto, ResetPasswordDto, TempPasswordDto, UserDto, VerifyDto};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::{Duration, Instant};
use url::Url;
use zeroize::Zeroizing;

/// The prefix the adapter requires of poll and next-page links.
const USERS_PREFIX: &str = "/api/v1/users/";

/// Every Okta response decoder the adapter uses, on `data` as a body and as headers. Never panics (that is what
/// the fuzz target checks).
pub fn parse_okta_responses(data: &[u8]) {
    let org = Url::parse("https://acme.okta.com/").ok();
    // Directory: search results, one user, risk facts, factors, group pages.
    if let Ok(users) = serde_json::from_slice::<Vec<UserDto>>(data) {
        for u in users {
            let _ = u.subject();
            let _ = u.risk_facts();
            let _ = u.into_record();
        }
    }
    if let Ok(u) = serde_json::from_slice::<UserDto>(data) {
        let _ = u.subject();
        let _ = u.risk_facts();
        let _ = u.into_record();
    }
    if let Ok(factors) = serde_json::from_slice::<Vec<FactorDto>>(data) {
        for f in factors {
            let _ = f.into_info();
        }
    }
    if let Ok(groups) = serde_json::from_slice::<Vec<GroupDto>>(data) {
        for g in groups {
            let _ = g.into_ref();
        }
    }
    // Push start and poll, code checks: the factor result, the number challenge, the poll link, the expiry.
    if let Ok(v) = serde_json::from_slice::<VerifyDto>(data) {
        let _ = v.factor_result.as_deref();
        let _ = v.correct_answer();
        if let (Some(href), Some(org)) = (v.poll_href(), org.as_ref()) {
            if let Ok(u) = Url::parse(href) {
                let _ = on_org(org, &u, USERS_PREFIX);
            }
        }
        let now = chrono::Utc::now();
        let _ = v
            .expires()
            .unwrap_or(now + chrono::TimeDelta::minutes(5))
            .min(now + chrono::TimeDelta::minutes(10));
    }
    // Lifecycle answers carrying a one-time secret.
    let _ = serde_json::from_slice::<ResetPasswordDto>(data);
    let _ = serde_json::from_slice::<TempPasswordDto>(data);
    // Token endpoint answers (success and refusal bodies).
    crate::token::fuzz_bodies(data);
    // Error bodies and headers, through the full error mapping for each status the mapping distinguishes.
    let _ = OktaError::parse(data);
    let headers = headers_from(data);
    let body = Zeroizing::new(data.to_vec());
    let ops = [
        Op::read("fuzz_read", "users.get"),
        Op::verify("fuzz_verify"),
        Op::lifecycle("fuzz_lifecycle", "lifecycle"),
    ];
    for status in [400u16, 401, 403, 404, 410, 423, 429, 500, 503] {
        let Ok(status) = StatusCode::from_u16(status) else {
            continue;
        };
        let resp = Resp {
            status,
            headers: headers.clone(),
            body: body.clone(),
        };
        for op in &ops {
            let _ = crate::errors::map_error(&resp, op);
        }
    }
    read_headers(&headers, org.as_ref());
}

/// The header readers, and the arithmetic `Transport` does with what they return.
fn read_headers(headers: &HeaderMap, org: Option<&Url>) {
    if let (Some(next), Some(org)) = (next_link(headers), org) {
        if let Ok(u) = Url::parse(&next) {
            let _ = on_org(org, &u, USERS_PREFIX);
        }
    }
    let _ = www_authenticate_error(headers);
    let _ = server_date(headers);
    let _ = retry_after(headers, Duration::from_secs(300));
    if let Some((_limit, _remaining, reset)) = rate_headers(headers) {
        // What the transport does with an observed budget (`Transport::observe`).
        let _ = Instant::now() + reset;
        let _ = chrono::Utc::now() + chrono::Duration::from_std(reset).unwrap_or_default();
    }
}

/// Reads `Name: value` lines as response headers; lines that are not valid headers are skipped.
fn headers_from(data: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.trim_ascii();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            h.append(n, v);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_are_read() {
        let h = headers_from(
            b"Link: <https://a/x>; rel=\"next\"\r\nnot a header\nx-rate-limit-reset: 7\n",
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://a/x"));
        assert!(h.get("x-rate-limit-reset").is_some());
    }
}
