//! Agent sign-in against an OpenID-certified provider nobody here wrote: npm `oidc-provider` (configured by
//! testkit/interop/oidc_provider.mjs), with three app registrations a customer may have: `client_secret_basic` +
//! RS256, `client_secret_post` + EdDSA ID tokens, `private_key_jwt` + ES256. The provider releases `groups` only at
//! userinfo (its default for the code flow). The fake Okta stays the directory (role re-checks).
//!
//! Needs Node.js and the pinned package: `bash scripts/oidc-interop.sh` installs them and runs these tests
//! (`--ignored`), and `bash scripts/test` calls that script.

use crate::helpers::{Browser, PUBLIC, TestApp, between, start_with};
use axum::http::StatusCode;
use base64::Engine as _;
use fctr_portal::demo::DemoOptions;
use fctr_portal::oidc::{ClientAuth, ClientKey, ClientKeyAlg};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The provider process, killed when the test ends (pass or fail).
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Starts the provider with the fake Okta's agents as accounts (their directory groups as the `groups` claim).
fn start_provider(
    port: u16,
    secret: &str,
    client_jwk: &serde_json::Value,
    agents: &[(String, &str)],
) -> Node {
    let dir = std::env::var("FCTR_OIDC_PROVIDER_DIR")
        .expect("FCTR_OIDC_PROVIDER_DIR: run through bash scripts/oidc-interop.sh");
    // An ES module resolves its imports beside itself (NODE_PATH does not apply): run a copy in the install dir.
    let script = std::path::Path::new(&dir).join("oidc_provider.mjs");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testkit/interop/oidc_provider.mjs"),
        &script,
    )
    .unwrap();
    let accounts: BTreeMap<&str, Vec<&str>> = agents
        .iter()
        .map(|(id, group)| (id.as_str(), vec![*group]))
        .collect();
    let child = Command::new("node")
        .arg(&script)
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("REDIRECT_URI", format!("{PUBLIC}/auth/callback"))
        .env("SECRET", secret)
        .env("ACCOUNTS", serde_json::to_string(&accounts).unwrap())
        .env(
            "CLIENT_JWKS",
            serde_json::json!({ "keys": [client_jwk] }).to_string(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let node = Node(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "oidc-provider did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    node
}

/// A browser on the provider's side: follows its redirects by hand, keeps its cookies, answers its login and
/// consent pages, and returns the portal callback path it finally redirects to.
async fn through_provider(authorize: &str, account: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let mut url = url::Url::parse(authorize).unwrap();
    let mut form: Option<Vec<(&str, String)>> = None;
    for _ in 0..12 {
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(f) => http.post(url.clone()).form(&f),
            None => http.get(url.clone()),
        };
        let resp = req.header("cookie", cookie).send().await.unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let first = c.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = first.split_once('=') {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp.headers()["location"].to_str().unwrap().to_owned();
            if let Some(path) = loc.strip_prefix(PUBLIC) {
                return path.to_owned();
            }
            url = url.join(&loc).unwrap();
            continue;
        }
        let page = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{page}");
        let action = between(&page, "action=\"", "\"").expect("a form");
        url = url.join(action).unwrap();
        form = Some(if page.contains("name=\"prompt\" value=\"login\"") {
            vec![
                ("prompt", "login".to_owned()),
                ("login", account.to_owned()),
                ("password", "any".to_owned()),
            ]
        } else {
            assert!(page.contains("value=\"consent\""), "{page}");
            vec![("prompt", "consent".to_owned())]
        });
    }
    panic!("the provider never sent the browser back to the portal");
}

/// The portal on the fake Okta's directory, signing in at the provider as `client_id` with `auth`.
async fn portal(
    client_id: &'static str,
    auth: impl FnOnce(&SecretString) -> ClientAuth + Send + 'static,
    client_jwk: serde_json::Value,
) -> (TestApp, Arc<Mutex<Option<Node>>>) {
    let node = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&node);
    let t = start_with(move |o: &mut DemoOptions| {
        o.sign_in = Some(Box::new(move |fake, settings| {
            let port = free_port();
            let secret = uuid::Uuid::new_v4().simple().to_string();
            let f = fake.fixtures();
            let agents = [
                (f.id_of("agent1"), "fctr-tier1"),
                (f.id_of("agent2"), "fctr-tier2"),
                (f.id_of("agent0"), "Everyone"),
            ];
            *keep.lock().unwrap() = Some(start_provider(port, &secret, &client_jwk, &agents));
            settings.issuer = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
            settings.client_id = client_id.into();
            settings.client_auth = auth(&SecretString::from(secret));
        }));
    })
    .await;
    (t, node)
}

async fn sign_in(t: &TestApp, handle: &str) -> (StatusCode, String, bool) {
    let mut b = Browser::default();
    let r = t.get(&mut b, "/auth/login?return_to=%2Fsearch").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let account = t.demo.fake.fixtures().id_of(handle);
    let callback = through_provider(&r.location(), &account).await;
    let r = t.get(&mut b, &callback).await;
    let search = t.get(&mut b, "/search").await;
    (r.status, r.body, search.status == StatusCode::OK)
}

fn es256_key() -> (SecretString, serde_json::Value) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64url(&raw[1..33]),
        "y": b64url(&raw[33..65]), "kid": "fctr-portal-1", "alg": "ES256", "use": "sig"});
    (SecretString::from(pair.serialize_pem()), jwk)
}

async fn each_agent_gets_their_role(t: &TestApp) {
    let (status, body, search) = sign_in(t, "agent2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(search, "tier 2 from the groups at userinfo");
    let (status, body, search) = sign_in(t, "agent0").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("Not authorized"), "{body}");
    assert!(!search);
}

#[tokio::test]
#[ignore = "needs Node.js and npm oidc-provider: bash scripts/oidc-interop.sh"]
async fn certified_provider_client_secret_basic_rs256_groups_at_userinfo() {
    let (_, jwk) = es256_key();
    let (t, _node) = portal("fctr-basic", |s| ClientAuth::SecretBasic(s.clone()), jwk).await;
    each_agent_gets_their_role(&t).await;
}

#[tokio::test]
#[ignore = "needs Node.js and npm oidc-provider: bash scripts/oidc-interop.sh"]
async fn certified_provider_client_secret_post_eddsa() {
    let (_, jwk) = es256_key();
    let (t, _node) = portal("fctr-post", |s| ClientAuth::SecretPost(s.clone()), jwk).await;
    each_agent_gets_their_role(&t).await;
}

#[tokio::test]
#[ignore = "needs Node.js and npm oidc-provider: bash scripts/oidc-interop.sh"]
async fn certified_provider_private_key_jwt_es256() {
    let (pem, jwk) = es256_key();
    let (t, _node) = portal(
        "fctr-pkjwt",
        move |_| {
            ClientAuth::PrivateKeyJwt(ClientKey {
                pem,
                alg: ClientKeyAlg::ES256,
                kid: Some("fctr-portal-1".into()),
                x5t_s256: None,
            })
        },
        jwk,
    )
    .await;
    each_agent_gets_their_role(&t).await;
}
