//! Shared helpers: adapters pointed at a fresh wiremock server, pinned-request builders, keys, fixtures.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fctr_okta::{DEFAULT_USER_AGENT, OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm};
use fctr_ports::{FactorId, FactorInfo, FactorKind, FactorStatus, SubjectId};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Match, MockBuilder, MockServer, Request};

pub const SSWS: &str = "test-ssws-token-0123456789";
pub const UA: &str = DEFAULT_USER_AGENT;
pub const CLIENT_ID: &str = "0oaTESTCLIENT";
pub const KEY_ID: &str = "fctr-test-kid";

/// A config against `server` with fast, test-friendly limits.
pub fn config(server: &MockServer, auth: OktaAuth) -> OktaConfig {
    let mut c = OktaConfig::new(server.uri().parse().unwrap(), auth);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.max_retry_wait = Duration::from_secs(2);
    c.max_slow_down = Duration::ZERO;
    c
}

pub fn ssws(server: &MockServer) -> OktaAdapter {
    OktaAdapter::new(config(server, OktaAuth::ApiToken(SecretString::from(SSWS)))).unwrap()
}

/// An EC P-256 key made now: (PKCS#8 PEM, uncompressed public point).
pub fn ec_key() -> (String, Vec<u8>) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let b64 = STANDARD.encode(pkcs8.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    (pem, pair.public_key().as_ref().to_vec())
}

pub fn jwt_auth(pem: &str, dpop: bool) -> OktaAuth {
    OktaAuth::PrivateKeyJwt {
        client_id: CLIENT_ID.into(),
        key_id: KEY_ID.into(),
        private_key_pem: SecretString::from(pem.to_owned()),
        algorithm: SigningAlgorithm::Es256,
        dpop,
    }
}

pub fn sid(s: &str) -> SubjectId {
    SubjectId::parse(s).unwrap()
}

pub fn factor(id: &str, kind: FactorKind) -> FactorInfo {
    FactorInfo {
        id: FactorId::parse(id).unwrap(),
        kind,
        status: FactorStatus::Active,
        vendor: Some("OKTA".into()),
        label: None,
    }
}

/// A request pinned by method, path, exact raw query (`None` = no query at all), SSWS auth, User-Agent, Accept.
pub fn pinned(m: &str, p: &str, query: Option<&str>) -> MockBuilder {
    wiremock::Mock::given(method(m))
        .and(path(p))
        .and(RawQuery(query.map(str::to_owned)))
        .and(header("authorization", format!("SSWS {SSWS}").as_str()))
        .and(header("user-agent", UA))
        .and(header("accept", "application/json"))
}

/// As [`pinned`], with the query checked by other matchers.
pub fn pinned_any_query(m: &str, p: &str) -> MockBuilder {
    wiremock::Mock::given(method(m))
        .and(path(p))
        .and(header("authorization", format!("SSWS {SSWS}").as_str()))
        .and(header("user-agent", UA))
        .and(header("accept", "application/json"))
}

/// Matches when the query has exactly these keys, in this order, each once.
pub struct QueryKeys(pub &'static [&'static str]);
impl Match for QueryKeys {
    fn matches(&self, r: &Request) -> bool {
        let keys: Vec<String> = r.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        keys == self.0
    }
}

/// Matches the raw query string exactly (encoding included).
pub struct RawQuery(pub Option<String>);
impl Match for RawQuery {
    fn matches(&self, r: &Request) -> bool {
        r.url.query() == self.0.as_deref()
    }
}

/// Matches an empty body.
pub struct EmptyBody;
impl Match for EmptyBody {
    fn matches(&self, r: &Request) -> bool {
        r.body.is_empty()
    }
}

/// Matches when a header is absent.
pub struct NoHeader(pub &'static str);
impl Match for NoHeader {
    fn matches(&self, r: &Request) -> bool {
        !r.headers.contains_key(self.0)
    }
}

pub fn user_json(id: &str) -> Value {
    json!({
        "id": id,
        "status": "ACTIVE",
        "created": "2024-01-02T03:04:05.000Z",
        "activated": "2024-01-02T03:05:00.000Z",
        "statusChanged": "2024-02-01T00:00:00.000Z",
        "lastLogin": "2026-05-01T08:30:00.000Z",
        "lastUpdated": "2026-05-01T08:30:00.000Z",
        "passwordChanged": "2025-12-24T10:00:00.000Z",
        "type": { "id": "oty1" },
        "profile": {
            "login": "jane.canary@example.com",
            "email": "jane.canary@example.com",
            "firstName": "Jane",
            "lastName": "Canary",
            "mobilePhone": "+1-555-415-1337",
            "primaryPhone": null,
            "costCenter": 42
        },
        "credentials": { "provider": { "type": "OKTA", "name": "OKTA" } },
        "_links": { "self": { "href": "https://example.invalid/api/v1/users/x" } }
    })
}

pub fn okta_error(code: &str, summary: &str) -> Value {
    json!({
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oaeTESTERRORID",
        "errorCauses": [{ "errorSummary": summary }]
    })
}

/// A tracing subscriber writing everything (TRACE, with span fields) into a buffer, for leak checks.
#[derive(Clone, Default)]
pub struct LogBuf(pub Arc<Mutex<Vec<u8>>>);
impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let me = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || me.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }
}
