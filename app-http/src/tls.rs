//! TLS termination by the portal itself: rustls with the ring provider, TLS 1.2 and 1.3 only, ECDHE key
//! exchange and AEAD ciphers only, the certificate chain and key from PEM files, ALPN `h2` and `http/1.1`.
//!
//! [`TlsListener`] plugs into `axum::serve`: a background task accepts TCP connections and runs each handshake
//! in its own task (bounded in number and time, so a client that opens a connection and sends nothing delays
//! nobody), and hands finished TLS streams to the server with the peer address.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CipherSuite, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many handshakes may run at once.
pub const MAX_CONCURRENT_HANDSHAKES: usize = 512;

/// Why TLS could not be set up. Messages name the file and the problem, never key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read.
    #[error("tls: cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The certificate file holds no PEM certificate.
    #[error("tls.cert_file {0}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM private key.
    #[error(
        "tls.key_file {path}: no usable private key ({reason}); expected PKCS#8, PKCS#1 or SEC1 PEM"
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls refused the pair.
    #[error(
        "tls: the key in {key} does not match the certificate in {cert}, or the pair is unusable: {reason}"
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' words.
        reason: String,
    },
}

/// TLS 1.3 suites, then TLS 1.2 suites with ECDHE and an AEAD cipher. rustls offers no CBC, RC4, 3DES, static RSA
/// or DHE suite at all; the list is explicit so an upgrade cannot widen it silently.
pub const CIPHER_SUITES: [CipherSuite; 9] = [
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The ring provider restricted to [`CIPHER_SUITES`].
#[must_use]
pub fn provider() -> CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .retain(|s| CIPHER_SUITES.contains(&s.suite()));
    p
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Builds the server configuration from PEM files: TLS 1.2 and 1.3 only, [`CIPHER_SUITES`] only, no client
/// certificates, ALPN `h2` then `http/1.1`.
///
/// # Errors
/// [`TlsError`] naming the file: unreadable, no certificate, no key, or a key that does not match the
/// certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mismatch = |e: rustls::Error| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(mismatch)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that yields finished TLS streams; use with `axum::serve` (see [`crate::tls`]).
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` and handshaking with `config`.
    ///
    /// # Errors
    /// When the listener has no local address.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake refused");
                            ::metrics::counter!("fctr_tls_handshake_failures_total").increment(1);
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            ::metrics::counter!("fctr_tls_handshake_failures_total").increment(1);
                        }
                    }
                });
            }
        });
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves `app` on `tcp`: over TLS with `tls`, else plain HTTP. Client addresses reach the edge as
/// `ConnectInfo<SocketAddr>`. Returns when `shutdown` completes and open requests finish.
///
/// # Errors
/// I/O errors of the server.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
            // `tap_io` is what gives a custom listener `ConnectInfo<SocketAddr>` in axum 0.8.
            let listener = TlsListener::new(tcp, config)?.tap_io(|_| {});
            axum::serve(listener, make)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(tcp, make)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
