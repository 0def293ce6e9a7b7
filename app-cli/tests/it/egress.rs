//! `fctr doctor` and the egress path, against a `fctr mock-idp okta` child and a real `tinyproxy` (Debian's
//! package; `scripts/test` installs it) started here on a loopback port, its outgoing connections pinned to
//! 127.0.0.3 so the fake's peer log (`GET /_fake/peers`) tells proxied connections from direct ones.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PROXY_OUT: &str = "127.0.0.3";

struct Tinyproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Tinyproxy {
    fn start(auth: Option<(&str, &str)>) -> Self {
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect(
                "tinyproxy is not installed: apt-get install tinyproxy (scripts/test installs it)",
            );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nBind {PROXY_OUT}\nTimeout 60\nAllow 127.0.0.0/8\n\
             DisableViaHeader Yes\nLogLevel Connect\nLogFile \"{}\"\n",
            dir.path().join("log").display()
        );
        if let Some((u, p)) = auth {
            conf.push_str(&format!("BasicAuth {u} {p}\n"));
        }
        let path = dir.path().join("tinyproxy.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(bin)
            .args(["-d", "-c"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let t = Self {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return t;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tinyproxy did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn config(dir: &Path, org: &str, db: &Path, network: &str) -> PathBuf {
    let p = dir.join("fctr.toml");
    std::fs::write(
        &p,
        format!(
            "[okta]\norg_url = \"{org}\"\napi_token_env = \"DOCTOR_OKTA_TOKEN\"\n\n\
             [pseudonymization]\nkey_id = \"k1\"\nkey_env = \"DOCTOR_PSEUDO_KEY\"\n\n\
             [audit]\nsqlite_path = \"{}\"\n\n[network]\n{network}\n",
            db.display()
        ),
    )
    .unwrap();
    p
}

fn doctor(cfg: &Path, env: &[(&str, &str)]) -> Run {
    let mut c = cmd(&["doctor", "--config", cfg.to_str().unwrap()]);
    c.env("DOCTOR_OKTA_TOKEN", "00fctr-fake-ssws-token-not-a-secret")
        .env("DOCTOR_PSEUDO_KEY", "a pseudonymization key of 32+ bytes");
    for (k, v) in env {
        c.env(k, v);
    }
    run_with(c, None, Duration::from_secs(90))
}

/// The source addresses of the requests the mock saw (its own `/_fake/peers` reads left out), then clears them.
fn peer_ips(mock: &Mock) -> Vec<String> {
    let (st, v) = mock.control("GET", "/_fake/peers", None);
    assert_eq!(st, 200, "{v}");
    let ips = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] != "/_fake/peers" && r["path"] != "/_fake/fixtures")
        .map(|r| {
            let peer: std::net::SocketAddr = r["peer"].as_str().unwrap().parse().unwrap();
            peer.ip().to_string()
        })
        .collect();
    let (st, _) = mock.control("DELETE", "/_fake/peers", None);
    assert_eq!(st, 204);
    ips
}

#[tokio::test]
async fn doctor_reports_the_proxy_path_and_every_okta_call_goes_through_it() {
    let mock = Mock::start();
    let password = format!("egress-{:016x}", rand::random::<u64>());
    let proxy = Tinyproxy::start(Some(("fctr", &password)));
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 1).await;
    let pw = dir.path().join("proxy-pw");
    std::fs::write(&pw, &password).unwrap();
    let cfg = config(
        dir.path(),
        &mock.url,
        &db,
        &format!(
            "egress_proxy = \"{}\"\negress_proxy_username = \"fctr\"\negress_proxy_password_file = \"{}\"",
            proxy.url(),
            pw.display()
        ),
    );
    peer_ips(&mock);
    let r = doctor(&cfg, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let expected = format!(
        "ok    network.egress     via proxy 127.0.0.1:{} (as fctr): the proxy answers",
        proxy.port
    );
    assert!(r.out.contains(&expected), "{r:?}");
    assert!(r.out.contains("ok    okta.read"), "{r:?}");
    assert!(
        !r.out.contains(&password) && !r.err.contains(&password),
        "{r:?}"
    );
    let ips = peer_ips(&mock);
    assert!(!ips.is_empty(), "doctor called the org");
    assert!(
        ips.iter().all(|ip| ip == PROXY_OUT),
        "all via the proxy: {ips:?}"
    );

    // The wrong password: the proxy refuses (tinyproxy answers a forwarded request 401, a tunnel 407), doctor
    // says so and nothing reaches the org directly.
    std::fs::write(&pw, format!("{password}x")).unwrap();
    let r = doctor(&cfg, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("(as fctr): the proxy refused the credentials (40"),
        "{r:?}"
    );
    assert!(r.out.contains("FAIL  okta.read"), "{r:?}");
    assert!(!r.out.contains(&password), "{r:?}");
    assert_eq!(peer_ips(&mock), Vec::<String>::new(), "nothing went direct");
}

#[tokio::test]
async fn doctor_names_an_unreachable_proxy_and_never_goes_direct() {
    let mock = Mock::start();
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 1).await;
    let dead = free_port();
    let cfg = config(
        dir.path(),
        &mock.url,
        &db,
        &format!("egress_proxy = \"http://127.0.0.1:{dead}\""),
    );
    peer_ips(&mock);
    let r = doctor(&cfg, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out.contains(&format!(
            "FAIL  network.egress     via proxy 127.0.0.1:{dead}: the proxy does not answer: cannot connect"
        )),
        "{r:?}"
    );
    assert!(
        r.out
            .contains("fctr never falls back to a direct connection"),
        "{r:?}"
    );
    assert!(r.out.contains("FAIL  okta.read"), "{r:?}");
    assert_eq!(peer_ips(&mock), Vec::<String>::new(), "nothing went direct");
}

#[tokio::test]
async fn environment_proxies_never_apply_and_egress_bind_is_reported_and_used() {
    let mock = Mock::start();
    let proxy = Tinyproxy::start(None);
    let dir = tempfile::tempdir().unwrap();
    let db = audit_file(dir.path(), 1).await;
    // No egress keys: direct, even with every proxy variable pointing at a working proxy.
    let cfg = config(dir.path(), &mock.url, &db, "");
    peer_ips(&mock);
    let url = proxy.url();
    let env = [
        ("HTTP_PROXY", url.as_str()),
        ("HTTPS_PROXY", url.as_str()),
        ("ALL_PROXY", url.as_str()),
        ("http_proxy", url.as_str()),
        ("https_proxy", url.as_str()),
        ("all_proxy", url.as_str()),
    ];
    let r = doctor(&cfg, &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.out.contains("ok    network.egress     direct"), "{r:?}");
    let ips = peer_ips(&mock);
    assert!(!ips.is_empty());
    assert!(
        ips.iter().all(|ip| ip == "127.0.0.1"),
        "direct, not via HTTP_PROXY: {ips:?}"
    );

    // egress_bind: the source address doctor names is the one the org sees.
    let cfg = config(dir.path(), &mock.url, &db, "egress_bind = \"127.0.0.2\"");
    let r = doctor(&cfg, &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("ok    network.egress     direct, bound to 127.0.0.2"),
        "{r:?}"
    );
    let ips = peer_ips(&mock);
    assert!(!ips.is_empty());
    assert!(ips.iter().all(|ip| ip == "127.0.0.2"), "{ips:?}");

    // An address this host does not have: named, and the IdP checks fail rather than leave from another one.
    let cfg = config(dir.path(), &mock.url, &db, "egress_bind = \"192.0.2.123\"");
    let r = doctor(&cfg, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.out
            .contains("cannot use 192.0.2.123 as the source address"),
        "{r:?}"
    );
    assert_eq!(peer_ips(&mock), Vec::<String>::new());
}
