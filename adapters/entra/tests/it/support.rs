//! Shared helpers: adapters pointed at a fresh wiremock server, exact-request matchers, keys, fixtures.

use fctr_entra::{
    CertificateRef, DEFAULT_USER_AGENT, EntraAdapter, EntraConfig, EntraCredential,
    MfaConnectorConfig,
};
use fctr_ports::{FactorId, FactorInfo, FactorKind, FactorStatus, SubjectId};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
pub const SECRET: &str = "canary-client-secret-Q9z";
pub const TOKEN: &str = "graph-access-token-1";
pub const TOKEN2: &str = "graph-access-token-2";
pub const CONNECTOR_SECRET: &str = "canary-connector-secret-X7";
pub const CONNECTOR_TOKEN: &str = "connector-access-token-1";
pub const UID: &str = "6e7b768e-07e2-4810-8459-485f84f8f204";
pub const UPN: &str = "canary.person@example.com";
pub const UA: &str = DEFAULT_USER_AGENT;
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const CONNECTOR_SCOPE: &str =
    "https://adnotifications.windowsazure.com/StrongAuthenticationService.svc/Connector/.default";
pub const MFA_CLIENT: &str = "981f26a1-7f43-403b-a875-f8b09b8cd720";
pub const SELECT: &str = "id,userPrincipalName,displayName,mail,mobilePhone,accountEnabled,onPremisesSyncEnabled,lastPasswordChangeDateTime,createdDateTime";
pub const CONNECTOR_PATH: &str = "/StrongAuthenticationService.svc/Connector/";

pub fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

/// A config against `server` with fast, test-friendly limits.
pub fn config(server: &MockServer, credential: EntraCredential) -> EntraConfig {
    let mut c = EntraConfig::new(TENANT, CLIENT_ID, credential).unwrap();
    c.authority = format!("{}/", server.uri()).parse().unwrap();
    c.graph_base = format!("{}/v1.0/", server.uri()).parse().unwrap();
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.max_retry_wait = Duration::from_secs(2);
    c
}

pub fn secret() -> EntraCredential {
    EntraCredential::client_secret(SecretString::from(SECRET))
}

pub fn adapter(server: &MockServer) -> EntraAdapter {
    EntraAdapter::new(config(server, secret())).unwrap()
}

pub fn connector_config(server: &MockServer) -> MfaConnectorConfig {
    let mut c = MfaConnectorConfig::new(EntraCredential::client_secret(SecretString::from(
        CONNECTOR_SECRET,
    )))
    .unwrap();
    c.endpoint = format!("{}{CONNECTOR_PATH}", server.uri()).parse().unwrap();
    c.push_timeout = Duration::from_secs(3);
    c
}

pub fn adapter_with_connector(server: &MockServer) -> EntraAdapter {
    let mut c = config(server, secret());
    c.connector = Some(connector_config(server));
    EntraAdapter::new(c).unwrap()
}

pub fn subject() -> SubjectId {
    SubjectId::parse(UID).unwrap()
}

pub fn factor(id: &str, kind: FactorKind) -> FactorInfo {
    FactorInfo {
        id: FactorId::parse(id).unwrap(),
        kind,
        status: FactorStatus::Active,
        vendor: None,
        label: None,
    }
}

/// A 2048-bit RSA key made once per test run: (PKCS#8 PEM private key, SPKI PEM public key).
pub fn rsa_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand::rngs::OsRng;
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (private, public)
    })
}

/// Arbitrary bytes standing in for a certificate: only its thumbprint matters to the adapter.
pub const CERT_DER: &[u8] = b"not-really-a-certificate-but-the-thumbprint-is-what-counts";

pub fn certificate() -> EntraCredential {
    EntraCredential::certificate(
        SecretString::from(rsa_key().0.clone()),
        CertificateRef::Der(CERT_DER.to_vec()),
    )
}

// ---- matchers ----

/// The request's query pairs equal exactly these (order-insensitive, decoded).
pub struct ExactQuery(pub Vec<(String, String)>);

impl Match for ExactQuery {
    fn matches(&self, request: &Request) -> bool {
        let mut got: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut want = self.0.clone();
        got.sort();
        want.sort();
        got == want
    }
}

pub fn query(pairs: &[(&str, &str)]) -> ExactQuery {
    ExactQuery(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

/// No query string at all.
pub fn no_query() -> ExactQuery {
    ExactQuery(Vec::new())
}

/// The header is absent.
pub struct NoHeader(pub &'static str);

impl Match for NoHeader {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key(self.0)
    }
}

/// The body is empty.
pub struct EmptyBody;

impl Match for EmptyBody {
    fn matches(&self, request: &Request) -> bool {
        request.body.is_empty()
    }
}

/// The form body equals exactly these pairs.
pub struct ExactForm(pub BTreeMap<String, String>);

impl Match for ExactForm {
    fn matches(&self, request: &Request) -> bool {
        form(&request.body) == self.0
    }
}

pub fn form(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Records every body it sees (and always matches).
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Vec<u8>>>>);

impl Match for Capture {
    fn matches(&self, request: &Request) -> bool {
        self.0.lock().unwrap().push(request.body.clone());
        true
    }
}

impl Capture {
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }
}

// ---- mocks ----

pub fn token_ok(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": token,
    }))
}

/// The exact client-secret token request for Graph.
pub fn graph_token_request() -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(token_path()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("user-agent", UA))
        .and(ExactForm(
            [
                ("client_id", CLIENT_ID),
                ("scope", GRAPH_SCOPE),
                ("grant_type", "client_credentials"),
                ("client_secret", SECRET),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ))
}

/// Mounts the Graph token endpoint, expecting exactly `n` requests.
pub async fn mount_token(server: &MockServer, n: u64) {
    graph_token_request()
        .respond_with(token_ok(TOKEN))
        .expect(n)
        .named("graph token")
        .mount(server)
        .await;
}

/// Mounts the connector token endpoint (client secret on the MFA client SP), expecting `n` requests.
pub async fn mount_connector_token(server: &MockServer, n: u64) {
    Mock::given(method("POST"))
        .and(path(token_path()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(ExactForm(
            [
                ("client_id", MFA_CLIENT),
                ("scope", CONNECTOR_SCOPE),
                ("grant_type", "client_credentials"),
                ("client_secret", CONNECTOR_SECRET),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ))
        .respond_with(token_ok(CONNECTOR_TOKEN))
        .expect(n)
        .named("connector token")
        .mount(server)
        .await;
}

/// A Graph request with the standard headers pinned.
pub fn graph(verb: &str, p: &str) -> MockBuilder {
    Mock::given(method(verb))
        .and(path(format!("/v1.0/{p}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("user-agent", UA))
        .and(header("accept", "application/json"))
}

pub fn user_json() -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": UID,
        "userPrincipalName": UPN,
        "displayName": "Canary Person",
        "mail": "canary.mail@example.com",
        "mobilePhone": "+1 555 0199",
        "accountEnabled": true,
        "onPremisesSyncEnabled": null,
        "lastPasswordChangeDateTime": "2025-01-02T03:04:05Z",
        "createdDateTime": "2024-06-07T08:09:10Z"
    })
}

/// Mounts `GET /users/{UID}?$select=…`, expecting `n` requests.
pub async fn mount_user(server: &MockServer, body: Value, n: u64) {
    graph("GET", &format!("users/{UID}"))
        .and(query(&[("$select", SELECT)]))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(n)
        .named("get user")
        .mount(server)
        .await;
}

pub fn graph_error(code: &str) -> Value {
    json!({"error": {"code": code, "message": "canary.person@example.com said something", "innerError": {"date": "2025-01-01T00:00:00", "request-id": "r1", "client-request-id": "c1"}}})
}

/// Everything logged at any level while the guard lives, for checking that nothing personal or secret is logged.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's logs (TRACE and up) until the guard is dropped.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
