//! The egress path (`[network] egress_proxy`, `egress_bind`), against real components: a real forward proxy
//! (`tinyproxy`, from Debian's packages; `scripts/test` installs it) started here on a loopback port with a
//! throw-away configuration, whose outgoing connections leave from `127.0.0.3`, and the fakes' peer log, which
//! records the address of every connection and request they saw. So a request that went through the proxy comes
//! from 127.0.0.3, a direct one from 127.0.0.1 (or the `egress_bind` address), and the tests can tell.
//!
//! The browser's own visits to the fake's sign-in pages (`…/authorize`) are not the portal's traffic: they come
//! directly from 127.0.0.1, and are the only requests allowed to.

use crate::entra::{Credential, EntraPortal, config_text, method, write};
use crate::helpers::{TestApp, start_with};
use axum::http::StatusCode;
use fctr_portal::config::Config;
use fctr_portal::startup::from_config;
use fctr_ports::{Directory as _, Egress, EgressProxy, PortError, UserQuery};
use fctr_testkit::entra::{FakeEntra, FakeEntraOptions, FixtureMethod};
use fctr_testkit::server::{PeerLog, PeerRequest};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where tinyproxy's connections to the fakes come from.
const PROXY_OUT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// The `egress_bind` address of the bind test.
const BOUND: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// The test's own address (the browser, and any direct connection).
const DIRECT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A tinyproxy process on `127.0.0.1:port`, killed on drop.
struct Tinyproxy {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tinyproxy_binary() -> PathBuf {
    for p in ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("tinyproxy is not installed: apt-get install tinyproxy (scripts/test installs it)");
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A password made at run time (no secret-looking literal in the repository).
fn run_time_password() -> String {
    format!("egress-{:016x}", rand::random::<u64>())
}

impl Tinyproxy {
    /// Starts tinyproxy: outgoing connections from [`PROXY_OUT`], `CONNECT` allowed to `connect_ports` only,
    /// Basic authentication required when `auth` is given.
    async fn start(connect_ports: &[u16], auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nBind {PROXY_OUT}\nTimeout 60\nMaxClients 64\nAllow 127.0.0.0/8\n\
             DisableViaHeader Yes\nLogLevel Connect\nLogFile \"{}\"\n",
            dir.path().join("tinyproxy.log").display()
        );
        for p in connect_ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let path = write(dir.path(), "tinyproxy.conf", conf.as_bytes());
        let child = Command::new(tinyproxy_binary())
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let t = Self { child, port, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("tinyproxy did not listen on {port}: {}", t.log());
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

/// The requests the browser may send directly: the fake's sign-in pages.
fn is_browser(r: &PeerRequest) -> bool {
    r.path.ends_with("/authorize")
}

/// Asserts that every connection and request the fake saw came from `from`, except the browser's sign-in pages
/// (from [`DIRECT`]); returns the paths requested from `from`.
fn all_from(peers: &PeerLog, from: IpAddr) -> BTreeSet<String> {
    let requests = peers.requests();
    let mut paths = BTreeSet::new();
    for r in &requests {
        if r.peer.ip() == from {
            paths.insert(format!("{} {}", r.method, r.path));
        } else {
            assert!(
                r.peer.ip() == DIRECT && is_browser(r),
                "a request did not take the egress path ({from}): {r:?}\nall: {requests:#?}"
            );
        }
    }
    let browser: BTreeSet<u64> = requests
        .iter()
        .filter(|r| r.peer.ip() != from)
        .map(|r| r.connection)
        .collect();
    for c in peers.connections() {
        assert!(
            c.peer.ip() == from || browser.contains(&c.id),
            "a connection did not take the egress path ({from}): {c:?}"
        );
    }
    paths
}

fn has(paths: &BTreeSet<String>, needle: &str) -> bool {
    paths.iter().any(|p| p.contains(needle))
}

/// An Entra portal (production wiring, `from_config`) whose configuration has `network` appended.
async fn entra_portal(fake: FakeEntra, network: &str) -> Result<EntraPortal, String> {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&fake, dir.path(), &Credential::Secret);
    let text = format!("{text}\n[network]\n{network}\n");
    let path = write(dir.path(), "fctr.toml", text.as_bytes());
    let cfg = Config::load(&path).map_err(|e| e.to_string())?;
    cfg.validate().map_err(|e| e.to_string())?;
    let state = from_config(&cfg).await.map_err(|e| e.to_string())?;
    let app = fctr_portal::router(state.clone());
    Ok(EntraPortal {
        fake,
        state,
        app,
        _dir: dir,
    })
}

/// Signs an agent in, looks Bob up through Graph and checks his TOTP code through the MFA connector: sign-in
/// (token exchange, signing keys), Graph (token, users, methods) and the connector (token, code check).
async fn entra_round(t: &EntraPortal) {
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let card = t.find(&mut b, "bob@example.com").await;
    let page = t.get(&mut b, &card).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let oath = method(&t.fake, "bob", FixtureMethod::SoftwareOath);
    let r = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &oath)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let verification = r.location();
    let upn = t.fake.fixtures().user("bob").unwrap().upn.clone();
    let code = t.fake.state().totp_now(&upn).unwrap();
    let r = t
        .post(
            &mut b,
            &format!("{verification}/code"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = t.get(&mut b, &verification).await.body;
    assert!(
        page.contains("1 of 2 factors approved"),
        "the code was checked: {page}"
    );
}

#[tokio::test]
async fn every_entra_request_of_the_portal_goes_through_the_proxy_with_its_credentials() {
    let fake = FakeEntra::start(FakeEntraOptions::default()).await.unwrap();
    let port = fake.base_url().port().unwrap();
    let password = run_time_password();
    let proxy = Tinyproxy::start(&[port], Some(("fctr-egress", &password))).await;
    let dir = tempfile::tempdir().unwrap();
    let pw = write(
        dir.path(),
        "proxy-password",
        format!("{password}\n").as_bytes(),
    );
    let network = format!(
        "egress_proxy = \"{}\"\negress_proxy_username = \"fctr-egress\"\negress_proxy_password_file = \"{}\"",
        proxy.url(),
        pw.display()
    );
    let t = entra_portal(fake, &network).await.unwrap();
    entra_round(&t).await;

    let paths = all_from(t.fake.peers(), PROXY_OUT);
    let connector = t.fake.connector_endpoint().path().to_owned();
    for needle in [
        "/v2.0/.well-known/openid-configuration", // sign-in discovery
        "/discovery/v2.0/keys",                   // sign-in signing keys
        "/oauth2/v2.0/token",                     // code exchange and client credentials
        "GET /v1.0/users",                        // Graph
        connector.as_str(),                       // the MFA connector (code check)
    ] {
        assert!(
            has(&paths, needle),
            "{needle} went through the proxy: {paths:#?}"
        );
    }
    assert!(
        !proxy.log().contains(&password),
        "tinyproxy's own log does not hold the password"
    );
}

#[tokio::test]
async fn wrong_proxy_credentials_fail_closed_and_are_never_shown() {
    let fake = FakeEntra::start(FakeEntraOptions::default()).await.unwrap();
    let port = fake.base_url().port().unwrap();
    let right = run_time_password();
    let proxy = Tinyproxy::start(&[port], Some(("fctr-egress", &right))).await;
    let wrong = run_time_password();
    let dir = tempfile::tempdir().unwrap();
    let pw = write(dir.path(), "proxy-password", wrong.as_bytes());
    let network = format!(
        "egress_proxy = \"{}\"\negress_proxy_username = \"fctr-egress\"\negress_proxy_password_file = \"{}\"",
        proxy.url(),
        pw.display()
    );
    let peers = fake.peers().clone();
    let e = match entra_portal(fake, &network).await {
        Ok(_) => panic!("a proxy refusing the credentials must stop the portal"),
        Err(e) => e,
    };
    assert!(e.contains("agent sign-in"), "{e}");
    assert!(!e.contains(&wrong) && !e.contains(&right), "{e}");
    assert!(
        peers.connections().is_empty(),
        "nothing reached the fake, directly or otherwise: {:?}",
        peers.connections()
    );
}

#[tokio::test]
async fn an_unreachable_proxy_fails_closed_and_nothing_goes_direct() {
    let fake = FakeEntra::start(FakeEntraOptions::default()).await.unwrap();
    let peers = fake.peers().clone();
    let dead = format!("http://127.0.0.1:{}", free_port());

    // The adapter alone: every call fails, none reaches the fake.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[network]\negress_proxy = \"{dead}\"\n",
        config_text(&fake, dir.path(), &Credential::Secret)
    );
    let path = write(dir.path(), "fctr.toml", text.as_bytes());
    let cfg = Config::load(&path).unwrap();
    let idp = cfg.idp_adapter().unwrap();
    let q = UserQuery::login("bob@example.com").unwrap();
    let e = idp.find_users(&q, 5).await.unwrap_err();
    assert!(
        matches!(e, PortError::Unavailable | PortError::Timeout),
        "{e:?}"
    );

    // The portal: sign-in discovery fails, so it does not start.
    let e = match entra_portal(fake, &format!("egress_proxy = \"{dead}\"")).await {
        Ok(_) => panic!("an unreachable proxy must stop the portal"),
        Err(e) => e,
    };
    assert!(e.contains("agent sign-in"), "{e}");
    assert!(
        peers.connections().is_empty(),
        "no direct connection reached the fake: {:?}",
        peers.connections()
    );
}

#[tokio::test]
async fn the_okta_portal_signs_in_and_looks_up_through_the_proxy() {
    let proxy = Tinyproxy::start(&[], None).await;
    let egress = Egress::new(Some(EgressProxy::parse(&proxy.url()).unwrap()), None);
    let t: TestApp = start_with(|o| o.egress = egress).await;
    okta_round(&t).await;
    let paths = all_from(t.demo.fake.peers(), PROXY_OUT);
    for needle in [
        "GET /.well-known/openid-configuration",
        "/v1/token",
        "/v1/keys",
        "GET /api/v1/users",
    ] {
        assert!(
            has(&paths, needle),
            "{needle} went through the proxy: {paths:#?}"
        );
    }
}

#[tokio::test]
async fn egress_bind_sets_the_source_address_of_every_idp_connection() {
    let egress = Egress::new(None, Some(BOUND));
    let t: TestApp = start_with(|o| o.egress = egress).await;
    okta_round(&t).await;
    let paths = all_from(t.demo.fake.peers(), BOUND);
    for needle in [
        "GET /.well-known/openid-configuration",
        "/v1/token",
        "/v1/keys",
        "GET /api/v1/users",
    ] {
        assert!(
            has(&paths, needle),
            "{needle} left from {BOUND}: {paths:#?}"
        );
    }
}

#[tokio::test]
async fn an_entra_portal_bound_to_an_address_uses_it_for_graph_token_connector_and_sign_in() {
    let fake = FakeEntra::start(FakeEntraOptions::default()).await.unwrap();
    let t = entra_portal(fake, &format!("egress_bind = \"{BOUND}\""))
        .await
        .unwrap();
    entra_round(&t).await;
    let paths = all_from(t.fake.peers(), BOUND);
    let connector = t.fake.connector_endpoint().path().to_owned();
    for needle in [
        "/v2.0/.well-known/openid-configuration",
        "/discovery/v2.0/keys",
        "/oauth2/v2.0/token",
        "GET /v1.0/users",
        connector.as_str(),
    ] {
        assert!(
            has(&paths, needle),
            "{needle} left from {BOUND}: {paths:#?}"
        );
    }
}

#[tokio::test]
async fn https_targets_are_tunnelled_with_connect_so_tls_stays_end_to_end() {
    // The fake speaks plain HTTP: an https URL to it fails the TLS handshake, and that is the point. The proxy
    // only relays bytes (CONNECT), so the fake receives the TLS handshake itself, from the proxy, and no request
    // it can read: the proxy never saw inside the TLS session.
    let fake = fctr_testkit::okta::FakeOkta::start(Default::default())
        .await
        .unwrap();
    let port = fake.base_url().port().unwrap();
    let proxy = Tinyproxy::start(&[port], None).await;
    let mut c = fctr_okta::OktaConfig::new(
        url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
        fctr_okta::OktaAuth::ApiToken(fctr_ports::SecretString::from(fake.api_token().to_owned())),
    );
    c.egress = Egress::new(Some(EgressProxy::parse(&proxy.url()).unwrap()), None);
    let okta = fctr_okta::OktaAdapter::new(c).unwrap();
    let q = UserQuery::login("alice@example.com").unwrap();
    assert!(okta.find_users(&q, 5).await.is_err());
    let conns = fake.peers().connections();
    assert!(!conns.is_empty(), "the tunnel reached the fake");
    assert!(
        conns.iter().all(|c| c.peer.ip() == PROXY_OUT),
        "only through the proxy: {conns:?}"
    );
    assert!(
        fake.peers().requests().is_empty(),
        "the fake saw TLS bytes, not a request the proxy could read: {:?}",
        fake.peers().requests()
    );
    assert!(
        proxy.log().contains(&format!("CONNECT 127.0.0.1:{port}")),
        "{}",
        proxy.log()
    );

    // A proxy that refuses the tunnel (port not allowed): the request fails, nothing reaches the fake.
    fake.peers().clear();
    let strict = Tinyproxy::start(&[1], None).await;
    let mut c = fctr_okta::OktaConfig::new(
        url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
        fctr_okta::OktaAuth::ApiToken(fctr_ports::SecretString::from(fake.api_token().to_owned())),
    );
    c.egress = Egress::new(Some(EgressProxy::parse(&strict.url()).unwrap()), None);
    let okta = fctr_okta::OktaAdapter::new(c).unwrap();
    assert!(okta.find_users(&q, 5).await.is_err());
    assert!(
        fake.peers().connections().is_empty(),
        "a refused tunnel is not retried directly: {:?}",
        fake.peers().connections()
    );
}

/// Signs an agent in on the Okta demo and looks a caller up (sign-in discovery, token, keys; users API).
async fn okta_round(t: &TestApp) {
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let page = t.get(&mut b, &card).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[test]
fn proxy_credentials_never_show_in_debug_output_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let password = run_time_password();
    let pw = write(dir.path(), "pw", password.as_bytes());
    let text = format!(
        "[network]\negress_proxy = \"http://proxy.internal:3128\"\negress_proxy_username = \"fctr\"\n\
         egress_proxy_password_file = \"{}\"\negress_bind = \"{BOUND}\"\n",
        pw.display()
    );
    let cfg = Config::parse(&text, Path::new("x.toml")).unwrap();
    let egress = cfg.egress().unwrap();
    assert_eq!(
        egress.to_string(),
        format!("via proxy proxy.internal:3128 (as fctr), bound to {BOUND}")
    );
    for shown in [
        format!("{cfg:?}"),
        format!("{egress:?}"),
        format!("{egress}"),
        format!("{:?}", egress.proxy().unwrap()),
    ] {
        assert!(!shown.contains(&password), "{shown}");
    }
    // Credentials in the URL are refused when the file is parsed, without echoing them.
    let with_userinfo = format!("http://fctr:{password}@proxy.internal:3128");
    let e = Config::parse(
        &format!("[network]\negress_proxy = \"{with_userinfo}\"\n"),
        Path::new("x.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("must not hold credentials"), "{e}");
    assert!(e.contains("line "), "{e}");
    assert!(!e.contains(&password), "{e}");
    // An unreadable password names the key and the file, not a value.
    std::fs::remove_file(&pw).unwrap();
    let e = cfg.egress().unwrap_err().to_string();
    assert!(e.contains("network.egress_proxy_password"), "{e}");
}

#[test]
fn egress_settings_are_checked_when_the_file_is_parsed() {
    for (network, says) in [
        (
            "egress_proxy = \"https://proxy:3128\"",
            "must start with http://",
        ),
        ("egress_proxy = \"http://proxy\"", "must end with the port"),
        ("egress_proxy = \"http://:3128\"", "must name a host"),
        ("egress_proxy = \"http://proxy:3128/x\"", "no path"),
        (
            "egress_bind = \"127.0.0.1:80\"",
            "egress_bind: must be an IP address",
        ),
        (
            "egress_bind = \"eth0\"",
            "egress_bind: must be an IP address",
        ),
        (
            "egress_proxy_username = \"fctr\"\negress_proxy_password_env = \"P\"",
            "need egress_proxy",
        ),
        (
            "egress_proxy = \"http://proxy:3128\"\negress_proxy_username = \"fctr\"",
            "together, or neither",
        ),
        (
            "egress_proxy = \"http://proxy:3128\"\negress_proxy_password = \"x\"",
            "unknown field",
        ),
    ] {
        let e = Config::parse(&format!("[network]\n{network}\n"), Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{network}: {e}");
    }
    let c = Config::parse("[network]\nallow = [\"10.0.0.0/8\"]\n", Path::new("x.toml")).unwrap();
    assert!(c.egress().unwrap().is_direct(), "no egress keys: direct");
}
