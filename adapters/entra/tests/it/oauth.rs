//! Token requests: client secret, certificate assertions (PS256 + x5t#S256, RS256 + x5t), token errors and
//! configuration validation.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fctr_entra::{
    AssertionAlgorithm, CertificateRef, ConfigError, EntraAdapter, EntraConfig, EntraCredential,
    TokenError,
};
use fctr_ports::{Directory, PortError};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Mounts a certificate-credential token endpoint that records the form bodies.
async fn mount_assertion_token(server: &MockServer, n: u64) -> Capture {
    let capture = Capture::default();
    Mock::given(method("POST"))
        .and(path(token_path()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(capture.clone())
        .respond_with(token_ok(TOKEN))
        .expect(n)
        .mount(server)
        .await;
    capture
}

fn check_form(body: &[u8]) -> String {
    let mut f = form(body);
    let assertion = f.remove("client_assertion").expect("client_assertion");
    let want: std::collections::BTreeMap<String, String> = [
        ("client_id", CLIENT_ID),
        ("scope", GRAPH_SCOPE),
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(f, want);
    assertion
}

fn verify(assertion: &str, alg: Algorithm, aud: &str) -> Value {
    let key = DecodingKey::from_rsa_pem(rsa_key().1.as_bytes()).unwrap();
    let mut v = Validation::new(alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[CLIENT_ID]);
    v.sub = Some(CLIENT_ID.to_owned());
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    v.validate_nbf = true;
    jsonwebtoken::decode::<Value>(assertion, &key, &v)
        .unwrap()
        .claims
}

#[tokio::test]
async fn certificate_assertion_is_ps256_with_x5t_s256_and_the_documented_claims() {
    let server = MockServer::start().await;
    let capture = mount_assertion_token(&server, 1).await;
    mount_user(&server, user_json(), 1).await;
    let a = EntraAdapter::new(config(&server, certificate())).unwrap();
    a.get_user(&subject()).await.unwrap();
    let bodies = capture.bodies();
    assert_eq!(bodies.len(), 1);
    let assertion = check_form(&bodies[0]);
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(header.alg, Algorithm::PS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.x5t_s256.as_deref(),
        Some(URL_SAFE_NO_PAD.encode(Sha256::digest(CERT_DER)).as_str())
    );
    assert_eq!(header.x5t, None);
    let aud = format!("{}{}", server.uri(), token_path());
    assert_eq!(a.token_endpoint().as_str(), aud);
    let claims = verify(&assertion, Algorithm::PS256, &aud);
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["sub"], CLIENT_ID);
    uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).unwrap();
    let nbf = claims["nbf"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - nbf, 300);
    assert!((chrono::Utc::now().timestamp() - nbf).abs() < 60);
}

#[tokio::test]
async fn each_assertion_has_a_fresh_jti() {
    let server = MockServer::start().await;
    let capture = mount_assertion_token(&server, 2).await;
    let a = EntraAdapter::new(config(&server, certificate())).unwrap();
    a.check_credentials().await.unwrap();
    a.check_credentials().await.unwrap();
    let jtis: Vec<String> = capture
        .bodies()
        .iter()
        .map(|b| {
            let c = verify(
                &check_form(b),
                Algorithm::PS256,
                a.token_endpoint().as_str(),
            );
            c["jti"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_ne!(jtis[0], jtis[1]);
}

#[tokio::test]
async fn rs256_uses_the_sha1_x5t_from_a_hex_thumbprint() {
    let server = MockServer::start().await;
    let capture = mount_assertion_token(&server, 1).await;
    let sha1_hex = "3A:5F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:02";
    let cred = EntraCredential::Certificate {
        private_key_pem: SecretString::from(rsa_key().0.clone()),
        certificate: CertificateRef::Sha1Thumbprint(sha1_hex.into()),
        algorithm: AssertionAlgorithm::Rs256,
    };
    let a = EntraAdapter::new(config(&server, cred)).unwrap();
    a.check_credentials().await.unwrap();
    let assertion = check_form(&capture.bodies()[0]);
    let h = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(h.alg, Algorithm::RS256);
    let want = URL_SAFE_NO_PAD.encode(hex::decode(sha1_hex.replace(':', "")).unwrap());
    assert_eq!(h.x5t.as_deref(), Some(want.as_str()));
    assert_eq!(h.x5t_s256, None);
    verify(&assertion, Algorithm::RS256, a.token_endpoint().as_str());
}

#[tokio::test]
async fn token_errors_say_what_to_fix_and_map_to_unauthorized() {
    let cases: [(u16, Value, TokenError, &str); 4] = [
        (
            401,
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. canary-echo", "error_codes": [7000215]}),
            TokenError::InvalidClientSecret { code: 7_000_215 },
            "Certificates & secrets",
        ),
        (
            400,
            json!({"error": "unauthorized_client", "error_description": "AADSTS700016: Application with identifier 'canary-echo' was not found", "error_codes": [700016]}),
            TokenError::UnknownApplication,
            "client_id",
        ),
        (
            400,
            json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant 'canary-echo' not found.", "error_codes": [90002]}),
            TokenError::TenantNotFound { code: 90_002 },
            "tenant_id",
        ),
        (
            401,
            json!({"error": "invalid_client", "error_description": "AADSTS700027: canary-echo", "error_codes": [700027]}),
            TokenError::CertificateRejected { code: 700_027 },
            "thumbprint",
        ),
    ];
    for (status, body, want, hint) in cases {
        let server = MockServer::start().await;
        graph_token_request()
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .expect(2)
            .mount(&server)
            .await;
        let a = adapter(&server);
        let e = a.check_credentials().await.unwrap_err();
        assert_eq!(e, want);
        let msg = e.to_string();
        assert!(msg.contains(hint), "{msg}");
        assert!(!msg.contains("canary") && !msg.contains(SECRET), "{msg}");
        let pe = a.get_user(&subject()).await.unwrap_err();
        assert!(matches!(pe, PortError::Unauthorized), "{pe:?}");
        assert!(!format!("{pe} {pe:?}").contains("canary"));
    }
}

#[tokio::test]
async fn token_endpoint_throttling_and_outage_map() {
    let server = MockServer::start().await;
    graph_token_request()
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "9"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    graph_token_request()
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>down</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let a = adapter(&server);
    assert!(matches!(
        a.get_user(&subject()).await,
        Err(PortError::RateLimited { retry_after: Some(d) }) if d.as_secs() == 9
    ));
    assert!(matches!(
        a.get_user(&subject()).await,
        Err(PortError::Upstream { status: 503, .. })
    ));
}

#[test]
fn configuration_is_validated() {
    let base = || {
        let mut c = EntraConfig::new(
            TENANT,
            CLIENT_ID,
            EntraCredential::client_secret(SecretString::from(SECRET)),
        )
        .unwrap();
        c.graph_base = "http://127.0.0.1:9/v1.0/".parse().unwrap();
        c
    };
    assert!(EntraAdapter::new(base()).is_ok());

    let mut c = base();
    c.graph_base = "http://graph.example.com/v1.0/".parse().unwrap();
    assert_eq!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::InsecureUrl {
            field: "graph_base"
        }
    );
    let mut c = base();
    c.authority = "http://login.example.com/".parse().unwrap();
    assert_eq!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::InsecureUrl { field: "authority" }
    );
    let mut c = base();
    c.tenant_id = "common".into();
    assert_eq!(EntraAdapter::new(c).unwrap_err(), ConfigError::BadTenant);
    let mut c = base();
    c.tenant_id = "a/b".into();
    assert_eq!(EntraAdapter::new(c).unwrap_err(), ConfigError::BadTenant);
    let mut c = base();
    c.client_id = "not-a-guid".into();
    assert!(matches!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::BadClientId { .. }
    ));
    let mut c = base();
    c.credential = EntraCredential::client_secret(SecretString::from("  "));
    assert!(matches!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::EmptySecret { .. }
    ));
    let mut c = base();
    c.credential = EntraCredential::certificate(
        SecretString::from("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        CertificateRef::Der(CERT_DER.to_vec()),
    );
    let e = EntraAdapter::new(c).unwrap_err();
    assert!(matches!(e, ConfigError::BadPrivateKey { .. }), "{e:?}");
    let mut c = base();
    c.credential = EntraCredential::certificate(
        SecretString::from(rsa_key().0.clone()),
        CertificateRef::Sha1Thumbprint("00".repeat(20)),
    );
    assert!(matches!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::BadCertificate { .. }
    ));
    let mut c = base();
    c.credential = EntraCredential::certificate(
        SecretString::from(rsa_key().0.clone()),
        CertificateRef::Sha256Thumbprint("abc".into()),
    );
    assert!(matches!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::BadCertificate { .. }
    ));
    let mut c = base();
    c.credential = EntraCredential::certificate(
        SecretString::from(rsa_key().0.clone()),
        CertificateRef::Sha256Thumbprint("ab".repeat(32)),
    );
    assert!(EntraAdapter::new(c).is_ok());
    let mut c = base();
    c.tap.min_lifetime_minutes = 5;
    assert_eq!(EntraAdapter::new(c).unwrap_err(), ConfigError::BadTapBounds);
    let mut c = base();
    c.request_timeout = std::time::Duration::ZERO;
    assert!(matches!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::ZeroTimeout { .. }
    ));
    let mut c = base();
    let mut conn = fctr_entra::MfaConnectorConfig::new(EntraCredential::client_secret(
        SecretString::from("x"),
    ))
    .unwrap();
    conn.endpoint = "http://connector.example.com/Connector/".parse().unwrap();
    c.connector = Some(conn);
    assert!(matches!(
        EntraAdapter::new(c).unwrap_err(),
        ConfigError::InsecureUrl { .. }
    ));
}
