//! TLS termination, played against a real socket: TLS 1.2 and 1.3 handshakes succeed, TLS 1.0 and 1.1 and plain
//! HTTP do not, and a bad certificate or key is named at start.

use crate::helpers::*;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

struct Pem {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().clone())
}

fn pem() -> Pem {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed(dir.path(), "portal");
    Pem {
        _dir: dir,
        cert,
        key,
        der,
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _t: TestApp,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn serve_tls(p: &Pem) -> Server {
    let t = start().await;
    let config = fctr_portal::tls::server_config(&p.cert, &p.key).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let app = fctr_portal::router(t.demo.state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(fctr_portal::tls::serve(tcp, Some(config), app, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
        _t: t,
    }
}

/// A rustls client pinned to one protocol version: GET /healthz; returns (negotiated version, response head).
async fn get_over(
    p: &Pem,
    addr: SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<(rustls::ProtocolVersion, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let v = tls.get_ref().1.protocol_version().unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
    Ok((v, String::from_utf8_lossy(&out).into_owned()))
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_accepted_with_the_secure_headers() {
    let p = pem();
    let s = serve_tls(&p).await;
    for (version, want) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let (got, head) = get_over(&p, s.addr, version).await.unwrap();
        assert_eq!(got, want);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("strict-transport-security: max-age=31536000; includesubdomains"),
            "{head}"
        );
    }
}

/// A ClientHello with record and body version 3.`minor` and no supported_versions extension, offering the
/// suites an old client would (ECDHE with CBC, static RSA, 3DES) and also ECDHE-GCM, which the portal accepts
/// over TLS 1.2.
fn legacy_client_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![0x03, minor];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    let suites: [u16; 8] = [
        0xc02b, 0xc02f, 0xc013, 0xc014, 0x002f, 0x0035, 0x000a, 0x00ff,
    ];
    body.extend_from_slice(&u16::try_from(suites.len() * 2).unwrap().to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let exts: Vec<u8> = [
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x18][..], // supported_groups P-256, P-384
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00][..],                         // ec_point_formats
        &[
            0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
        ][..], // signature_algorithms
    ]
    .concat();
    body.extend_from_slice(&u16::try_from(exts.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, minor];
    rec.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn tls_1_0_and_1_1_client_hellos_get_an_alert_not_a_server_hello() {
    let p = pem();
    let s = serve_tls(&p).await;
    for minor in [1u8, 2] {
        let out = raw_exchange(s.addr, &legacy_client_hello(minor)).await;
        assert!(
            !out.is_empty(),
            "TLS 1.{}: expected an alert before the close",
            minor - 1
        );
        assert_eq!(
            out[0],
            0x15,
            "TLS 1.{}: an alert record, got {out:02x?}",
            minor - 1
        );
        assert_ne!(out[0], 0x16, "no ServerHello");
        // Alert: level 2 (fatal), description protocol_version (70) or handshake_failure (40).
        assert_eq!(out[5], 2, "fatal: {out:02x?}");
        assert!(matches!(out[6], 70 | 40), "{out:02x?}");
    }
    // The same hello as TLS 1.2 is answered with a ServerHello: the refusal above is about the version.
    let out = raw_exchange(s.addr, &legacy_client_hello(3)).await;
    assert_eq!(out.first(), Some(&0x16), "{out:02x?}");
}

#[tokio::test]
async fn openssl_s_client_cannot_negotiate_tls_1_0_or_1_1() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("openssl not installed: the raw ClientHello test covers this");
        return;
    }
    let p = pem();
    let s = serve_tls(&p).await;
    let addr = s.addr.to_string();
    let run = |flag: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("openssl")
                .args(["s_client", "-connect", &addr, flag])
                .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "localhost"])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    // Positive control: the tool negotiates TLS 1.2 here, so its failures below mean something.
    let ok = run("-tls1_2").await.unwrap();
    assert!(ok.contains("TLSv1.2"), "{ok}");
    assert!(!ok.contains("Cipher is (NONE)"), "{ok}");
    for flag in ["-tls1", "-tls1_1"] {
        let out = run(flag).await.unwrap();
        assert!(
            out.contains("Cipher is (NONE)")
                || out.contains("alert protocol version")
                || out.contains("alert handshake failure")
                || out.contains("no protocols available"),
            "{flag}: {out}"
        );
        assert!(!out.contains("New, TLSv1, Cipher"), "{flag}: {out}");
        assert!(!out.contains("New, TLSv1.1, Cipher"), "{flag}: {out}");
        // s_client's session block names the version it attempted even when nothing was negotiated; the
        // cipher line is what shows a session.
        assert!(
            out.contains("Cipher    : 0000") || !out.contains("Cipher    :"),
            "{flag}: {out}"
        );
    }
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_page() {
    let p = pem();
    let s = serve_tls(&p).await;
    let out = raw_exchange(
        s.addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("HTTP/1.1 200"), "{text}");
    assert!(!text.contains("ok"), "{text}");
}

#[test]
fn only_ecdhe_aead_suites_are_configured() {
    let p = fctr_portal::tls::provider();
    assert!(!p.cipher_suites.is_empty());
    for s in &p.cipher_suites {
        let name = format!("{:?}", s.suite());
        let ok = name.starts_with("TLS13_")
            || (name.starts_with("TLS_ECDHE_")
                && (name.contains("_GCM_") || name.contains("CHACHA20_POLY1305")));
        assert!(ok, "{name}");
    }
}

#[test]
fn a_bad_or_mismatched_pair_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, _key_a, _) = self_signed(dir.path(), "a");
    let (_cert_b, key_b, _) = self_signed(dir.path(), "b");
    let e = fctr_portal::tls::server_config(&cert_a, &key_b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not match"), "{e}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = fctr_portal::tls::server_config(&junk, &key_b)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = fctr_portal::tls::server_config(&cert_a, &cert_a)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no usable private key"), "{e}");
    assert!(!e.contains("BEGIN"), "no key material echoed: {e}");
    let e = fctr_portal::tls::server_config(&cert_a, &dir.path().join("missing.key"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
}

fn run_portal(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fctr.toml");
    std::fs::write(&p, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fctr-portal"))
        .arg("--config")
        .arg(&p)
        .env_remove("FCTR_SERVER_LISTEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn startup_refuses_plain_http_off_loopback_without_a_declared_proxy() {
    let (code, err) = run_portal("[server]\nlisten = \"0.0.0.0:0\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refusing plain HTTP"), "{err}");
    assert!(err.contains("behind_tls_proxy"), "{err}");
    let (code, err) = run_portal("[server]\nlisten = \"0.0.0.0:0\"\nbehind_tls_proxy = true\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("trusted_proxies"), "{err}");
}

#[test]
fn startup_names_a_mismatched_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, _, _) = self_signed(dir.path(), "a");
    let (_, key_b, _) = self_signed(dir.path(), "b");
    let (code, err) = run_portal(&format!(
        "[server]\nlisten = \"0.0.0.0:0\"\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert_a.display().to_string(),
        key_b.display().to_string()
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("does not match"), "{err}");
}
