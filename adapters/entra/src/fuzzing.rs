//! Fuzzing entry points (cargo feature `fuzzing`, off by default; not a stable API, hidden from the docs).
//!
//! [`parse_graph_responses`] feeds one input through every decoder the adapter runs on a Microsoft Graph or token
//! endpoint answer, then through the conversions into port types the adapter applies to the decoded values;
//! [`parse_connector_answers`] does the same for the MFA connector's XML. The bytes are also read as response
//! headers (lines `Name: value`) for `Retry-After` and the error mapping. Results are ignored: the property
//! checked is "no panic".

use crate::config::{EntraCredential, MfaConnectorConfig};
use crate::connector::{Connector, end_verdict, parse_answer, push_state};
use crate::errors::{USER_READ, graph_code, graph_error, retry_after, safe_token};
use crate::http::Graph;
use crate::token::{GRAPH_SCOPE, TokenSource};
use crate::wire::{
    GraphDirectoryObject, GraphMethod, GraphTap, GraphUser, Page, delete_collection, parse,
    short_type,
};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use std::sync::OnceLock;
use std::time::Duration;
use url::Url;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "00000000-0000-0000-0000-000000000002";

fn secret() -> EntraCredential {
    EntraCredential::ClientSecret(SecretString::from("fuzz"))
}

/// A Graph side like the adapter's (default base), for the `@odata.nextLink` check.
fn graph() -> Option<&'static Graph> {
    static GRAPH: OnceLock<Option<Graph>> = OnceLock::new();
    GRAPH
        .get_or_init(|| {
            let authority = Url::parse(crate::DEFAULT_AUTHORITY).ok()?;
            Some(Graph {
                client: reqwest::Client::new(),
                base: Url::parse(crate::DEFAULT_GRAPH_BASE).ok()?,
                tokens: TokenSource::new(
                    &authority,
                    TENANT,
                    CLIENT_ID,
                    &secret(),
                    GRAPH_SCOPE,
                    "fuzz",
                )
                .ok()?,
                max_rate_limit_retries: 2,
                max_retry_wait: Duration::from_secs(10),
                throttle: crate::http::Throttle::default(),
            })
        })
        .as_ref()
}

/// A connector with the default settings, for the `AffinityUrl` handling.
fn connector() -> Option<&'static Connector> {
    static CONNECTOR: OnceLock<Option<Connector>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let authority = Url::parse(crate::DEFAULT_AUTHORITY).ok()?;
            let cfg = MfaConnectorConfig::new(secret()).ok()?;
            Connector::new(reqwest::Client::new(), &authority, TENANT, &cfg).ok()
        })
        .as_ref()
}

/// What the adapter does with a `@odata.nextLink`: parse it and accept it only on the Graph base.
fn next_link(link: Option<&str>) {
    if let (Some(link), Some(g)) = (link, graph()) {
        if let Ok(u) = Url::parse(link) {
            let _ = g.on_base(&u);
        }
    }
}

/// Every Graph and token-endpoint response decoder the adapter uses, on `data` as a body and as headers.
pub fn parse_graph_responses(data: &[u8]) {
    // One user (get_user, risk_facts, login lookup) and user pages (searches).
    if let Ok(u) = parse::<GraphUser>(data) {
        let _ = u.status();
        let _ = u.risk_facts();
        let _ = u.into_record();
    }
    if let Ok(page) = parse::<Page<GraphUser>>(data) {
        next_link(page.next_link.as_deref());
        for u in page.value {
            let _ = u.into_record();
        }
    }
    // Authentication methods (list_factors, remove_factor).
    if let Ok(page) = parse::<Page<GraphMethod>>(data) {
        next_link(page.next_link.as_deref());
        for m in page.value {
            let _ = delete_collection(short_type(m.odata_type.as_deref()));
            let _ = m.into_factor();
        }
    }
    // memberOf pages (groups).
    if let Ok(page) = parse::<Page<GraphDirectoryObject>>(data) {
        next_link(page.next_link.as_deref());
        for o in page.value {
            let _ = o.into_group();
        }
    }
    // A Temporary Access Pass answer, with its expiry as the receipt computes it.
    if let Ok(tap) = parse::<GraphTap>(data) {
        let _ = tap.expires_at(60);
    }
    // Token endpoint answers.
    crate::token::fuzz_bodies(data);
    // Error bodies and headers through the error mapping.
    let _ = graph_code(data);
    let headers = headers_from(data);
    let _ = retry_after(&headers);
    for status in [400u16, 401, 403, 404, 409, 429, 500, 503] {
        if let Ok(s) = StatusCode::from_u16(status) {
            let _ = graph_error(s, &headers, data, USER_READ);
        }
    }
    if let Some(v) = headers.get("request-id").and_then(|v| v.to_str().ok()) {
        let _ = safe_token(v);
    }
}

/// The MFA connector's answers: Begin and End responses through the XML reader and the result mapping, the
/// session id check and the `AffinityUrl` handling of a code check.
pub fn parse_connector_answers(data: &[u8]) {
    for root in [
        "BeginTwoWayAuthenticationResponse",
        "EndTwoWayAuthenticationResponse",
    ] {
        let Ok(a) = parse_answer(data, root) else {
            continue;
        };
        let _ = push_state(&a);
        let _ = end_verdict(&a);
        let _ = a.value.as_deref().and_then(safe_token);
        let _ = a.authentication_result.as_deref().and_then(safe_token);
        let _ = a
            .session_id
            .as_deref()
            .filter(|s| s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if let Some(c) = connector() {
            let _ = c.end_url_for(a.affinity_url.as_deref());
        }
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
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value.trim_ascii()),
        ) {
            h.append(n, v);
        }
    }
    h
}
