//! OAuth service app: private_key_jwt client credentials, token caching and refresh, token-endpoint errors, DPoP,
//! and eager configuration checks.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use fctr_okta::{ConfigError, OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm, TokenError};
use fctr_ports::{Directory, PortError, SecretString, UserQuery};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Match, Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "/oauth2/v1/token";

fn form(r: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

/// The token request, pinned: method, path, headers, and the fixed form fields.
fn token_request() -> MockBuilder {
    Mock::given(method("POST"))
        .and(path(TOKEN))
        .and(RawQuery(None))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("user-agent", UA))
        .and(header("accept", "application/json"))
        .and(NoHeader("authorization"))
        .and(FormFields)
}

struct FormFields;
impl Match for FormFields {
    fn matches(&self, r: &Request) -> bool {
        let f = form(r);
        f.len() == 4
            && f.get("grant_type").map(String::as_str) == Some("client_credentials")
            && f.get("scope").map(String::as_str) == Some("okta.users.read okta.users.manage")
            && f.get("client_assertion_type").map(String::as_str)
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            && f.contains_key("client_assertion")
    }
}

fn token_ok(token: &str, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": kind,
        "expires_in": 3600,
        "access_token": token,
        "scope": "okta.users.read okta.users.manage"
    }))
}

fn api_get_user(auth: &str) -> MockBuilder {
    Mock::given(method("GET"))
        .and(path("/api/v1/users/00u1"))
        .and(RawQuery(None))
        .and(header("authorization", auth))
        .and(header("user-agent", UA))
        .and(header("accept", "application/json"))
}

fn claims(jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let h = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let c = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    (h, c)
}

#[tokio::test]
async fn private_key_jwt_assertion_is_signed_and_complete_and_the_token_is_cached() {
    let server = MockServer::start().await;
    let (pem, public) = ec_key();
    token_request()
        .and(NoHeader("dpop"))
        .respond_with(token_ok("at-1", "Bearer"))
        .expect(1)
        .mount(&server)
        .await;
    api_get_user("Bearer at-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u1")))
        .expect(2)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, false))).unwrap();
    okta.get_user(&sid("00u1")).await.unwrap();
    okta.get_user(&sid("00u1")).await.unwrap();

    let reqs = server.received_requests().await.unwrap();
    let token_req = reqs.iter().find(|r| r.url.path() == TOKEN).unwrap();
    let assertion = form(token_req).remove("client_assertion").unwrap();
    let token_url = format!("{}{TOKEN}", server.uri());
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(header.kid.as_deref(), Some(KEY_ID));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[token_url.as_str()]);
    v.set_issuer(&[CLIENT_ID]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(
        &assertion,
        &jsonwebtoken::DecodingKey::from_ec_der(&public),
        &v,
    )
    .unwrap();
    let c = data.claims;
    assert_eq!(c["sub"], CLIENT_ID);
    assert_eq!(c["iss"], CLIENT_ID);
    assert_eq!(c["aud"], token_url);
    let iat = c["iat"].as_i64().unwrap();
    assert_eq!(c["exp"].as_i64().unwrap() - iat, 300);
    assert!((iat - chrono::Utc::now().timestamp()).abs() < 30);
    uuid::Uuid::parse_str(c["jti"].as_str().unwrap()).unwrap();
}

#[tokio::test]
async fn a_401_refreshes_the_token_once() {
    let server = MockServer::start().await;
    let (pem, _) = ec_key();
    token_request()
        .respond_with(token_ok("at-old", "Bearer"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    token_request()
        .respond_with(token_ok("at-new", "Bearer"))
        .expect(1)
        .mount(&server)
        .await;
    api_get_user("Bearer at-old")
        .respond_with(
            ResponseTemplate::new(401).set_body_json(okta_error("E0000011", "Invalid token")),
        )
        .expect(1)
        .mount(&server)
        .await;
    api_get_user("Bearer at-new")
        .respond_with(ResponseTemplate::new(200).set_body_json(user_json("00u1")))
        .expect(1)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, false))).unwrap();
    okta.get_user(&sid("00u1")).await.unwrap();
    // The two assertions had different jti (single use).
    let reqs = server.received_requests().await.unwrap();
    let jtis: Vec<String> = reqs
        .iter()
        .filter(|r| r.url.path() == TOKEN)
        .map(|r| {
            claims(&form(r)["client_assertion"]).1["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(jtis.len(), 2);
    assert_ne!(jtis[0], jtis[1]);
}

#[tokio::test]
async fn a_second_401_is_unauthorized() {
    let server = MockServer::start().await;
    let (pem, _) = ec_key();
    token_request()
        .respond_with(token_ok("at-x", "Bearer"))
        .expect(2)
        .mount(&server)
        .await;
    api_get_user("Bearer at-x")
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, false))).unwrap();
    assert!(matches!(
        okta.get_user(&sid("00u1")).await,
        Err(PortError::Unauthorized)
    ));
}

#[tokio::test]
async fn invalid_client_is_unauthorized_with_a_clear_check_message() {
    let server = MockServer::start().await;
    let (pem, _) = ec_key();
    token_request()
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "invalid_client",
            "error_description": "The client_assertion signature is invalid."
        })))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/users/00u1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, false))).unwrap();
    assert!(matches!(
        okta.get_user(&sid("00u1")).await,
        Err(PortError::Unauthorized)
    ));
    let e = okta.check_credentials().await.unwrap_err();
    assert_eq!(e, TokenError::InvalidClient);
    assert_eq!(
        e.to_string(),
        "client authentication failed (check client id, key id and registered public key)"
    );
}

#[tokio::test]
async fn invalid_scope_names_the_missing_scope() {
    let server = MockServer::start().await;
    let (pem, _) = ec_key();
    token_request()
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_scope",
            "error_description": "The following scopes are not allowed: okta.users.manage"
        })))
        .expect(2)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, false))).unwrap();
    let e = okta.get_user(&sid("00u1")).await.unwrap_err();
    assert_eq!(e.to_string(), "forbidden: missing scope okta.users.manage");
    let e = okta.check_credentials().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "the service app was not granted scope okta.users.manage"
    );
}

/// Matches a DPoP proof header with the given nonce claim (or none).
struct ProofNonce(Option<&'static str>);
impl Match for ProofNonce {
    fn matches(&self, r: &Request) -> bool {
        let Some(p) = r.headers.get("dpop").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let (_, c) = claims(p);
        c.get("nonce").and_then(Value::as_str) == self.0
    }
}

/// Verifies a DPoP proof's signature and returns (header, claims).
fn check_proof(p: &str) -> (Value, Value) {
    let (h, c) = claims(p);
    assert_eq!(h["typ"], "dpop+jwt");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["jwk"]["kty"], "EC");
    assert_eq!(h["jwk"]["crv"], "P-256");
    assert!(
        h["jwk"].get("d").is_none(),
        "private key in the proof header"
    );
    let mut point = vec![4u8];
    point.extend(B64.decode(h["jwk"]["x"].as_str().unwrap()).unwrap());
    point.extend(B64.decode(h["jwk"]["y"].as_str().unwrap()).unwrap());
    let (input, sig) = p.rsplit_once('.').unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(input.as_bytes(), &B64.decode(sig).unwrap())
        .unwrap();
    uuid::Uuid::parse_str(c["jti"].as_str().unwrap()).unwrap();
    assert!((c["iat"].as_i64().unwrap() - chrono::Utc::now().timestamp()).abs() < 30);
    (h, c)
}

#[tokio::test]
async fn dpop_answers_the_nonce_challenge_and_binds_api_calls() {
    let server = MockServer::start().await;
    let (pem, _) = ec_key();
    token_request()
        .and(ProofNonce(None))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("dpop-nonce", "nonce-1")
                .set_body_json(json!({
                    "error": "use_dpop_nonce",
                    "error_description": "Authorization server requires nonce in DPoP proof."
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    token_request()
        .and(ProofNonce(Some("nonce-1")))
        .respond_with(token_ok("dpop-at-1", "DPoP"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/users"))
        .and(header("authorization", "DPoP dpop-at-1"))
        .and(header_exists("dpop"))
        .and(header("user-agent", UA))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, true))).unwrap();
    let q = UserQuery::login("jane@example.com").unwrap();
    okta.find_users(&q, 3).await.unwrap();

    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    let proofs: Vec<(Value, Value)> = reqs
        .iter()
        .map(|r| check_proof(r.headers.get("dpop").unwrap().to_str().unwrap()))
        .collect();
    let token_url = format!("{}{TOKEN}", server.uri());
    for (_, c) in &proofs[..2] {
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["htu"], token_url);
        assert!(c.get("ath").is_none());
    }
    assert_ne!(proofs[0].1["jti"], proofs[1].1["jti"]);
    let (h, c) = &proofs[2];
    assert_eq!(c["htm"], "GET");
    // htu carries no query.
    assert_eq!(c["htu"], format!("{}/api/v1/users", server.uri()));
    assert_eq!(c["ath"], B64.encode(Sha256::digest(b"dpop-at-1")));
    // The same key signs every proof.
    assert_eq!(h["jwk"], proofs[0].0["jwk"]);
}

#[tokio::test]
async fn dpop_nonce_asked_twice_is_unauthorized() {
    let server = MockServer::start().await;
    let (pem, _) = ec_key();
    token_request()
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("dpop-nonce", "again")
                .set_body_json(json!({"error": "use_dpop_nonce"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let okta = OktaAdapter::new(config(&server, jwt_auth(&pem, true))).unwrap();
    assert!(matches!(
        okta.get_user(&sid("00u1")).await,
        Err(PortError::Unauthorized)
    ));
}

#[test]
fn config_is_validated_eagerly_with_clear_secret_free_messages() {
    let org = || "https://acme.okta.com".parse().unwrap();
    let err = |c: OktaConfig| OktaAdapter::new(c).unwrap_err();

    let e = err(OktaConfig::new(
        "http://acme.okta.com".parse().unwrap(),
        OktaAuth::ApiToken(SecretString::from(SSWS)),
    ));
    assert!(
        matches!(e, ConfigError::OrgUrl(_)) && e.to_string().contains("https"),
        "{e}"
    );
    let e = err(OktaConfig::new(
        "https://acme-admin.okta.com".parse().unwrap(),
        OktaAuth::ApiToken(SecretString::from(SSWS)),
    ));
    assert!(e.to_string().contains("-admin"), "{e}");
    let e = err(OktaConfig::new(
        org(),
        OktaAuth::ApiToken(SecretString::from(" ")),
    ));
    assert!(e.to_string().contains("api_token"), "{e}");

    let secret_body = "Q0FOQVJZLUtFWS1NQVRFUklBTA==";
    let bad_pem =
        format!("-----BEGIN PRIVATE KEY-----\n{secret_body}\n-----END PRIVATE KEY-----\n");
    let e = err(OktaConfig::new(org(), jwt_auth(&bad_pem, false)));
    assert!(matches!(e, ConfigError::PrivateKey(_)), "{e}");
    assert!(!e.to_string().contains(secret_body) && !format!("{e:?}").contains(secret_body));

    // A valid EC key declared as RS256.
    let (pem, _) = ec_key();
    let e = err(OktaConfig::new(
        org(),
        OktaAuth::PrivateKeyJwt {
            client_id: CLIENT_ID.into(),
            key_id: KEY_ID.into(),
            private_key_pem: SecretString::from(pem.clone()),
            algorithm: SigningAlgorithm::Rs256,
            dpop: false,
        },
    ));
    assert!(e.to_string().contains("RSA"), "{e}");
    let e = err(OktaConfig::new(
        org(),
        OktaAuth::PrivateKeyJwt {
            client_id: String::new(),
            key_id: KEY_ID.into(),
            private_key_pem: SecretString::from(pem.clone()),
            algorithm: SigningAlgorithm::Es256,
            dpop: false,
        },
    ));
    assert_eq!(e.to_string(), "client_id: is empty");
    // The good one builds without any network call.
    OktaAdapter::new(OktaConfig::new(org(), jwt_auth(&pem, true))).unwrap();
}
