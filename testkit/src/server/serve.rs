//! Serving the fakes: [`FakeServer`] (bind, serve, `base_url`, shutdown) over our own accept loop (hyper-util),
//! so a fault can drop a connection without any response, and a graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::common::keys::KeyError;

use super::peers::PeerLog;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// Errors starting a fake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Key generation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An option is invalid.
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

/// A fake tenant's state as the skeleton starts it: built from its options for a base URL, served by its router.
/// Implemented by [`FakeOktaState`](crate::okta::FakeOktaState) and
/// [`FakeEntraState`](crate::entra::FakeEntraState).
pub trait Launch: Clone + Send + Sync + Sized + 'static {
    /// The options the fake starts from.
    type Options: Clone + Send + 'static;
    /// What the logs call it (`fake okta`).
    const NAME: &'static str;
    /// What `Debug` calls the running fake (`FakeOkta`).
    const SERVER_NAME: &'static str;
    /// Where [`FakeServer::start`] listens.
    fn listen(options: &Self::Options) -> SocketAddr;
    /// Builds the state for a fake reachable at `base_url`; may block a moment (key generation).
    ///
    /// # Errors
    /// [`StartError::Key`] if key generation fails, [`StartError::InvalidOption`] for a bad option.
    fn build(options: &Self::Options, base_url: Url) -> Result<Self, StartError>;
    /// The fake's routes: the vendor's and `/_fake/…`.
    fn router(self) -> axum::Router;
}

/// [`Launch::build`] on a blocking thread.
pub(crate) async fn build_async<S: Launch>(
    options: &S::Options,
    base_url: Url,
) -> Result<S, StartError> {
    let options = options.clone();
    tokio::task::spawn_blocking(move || S::build(&options, base_url))
        .await
        .map_err(|e| StartError::InvalidOption(format!("key generation task failed: {e}")))?
}

/// A running fake tenant on loopback ([`FakeOkta`](crate::okta::FakeOkta),
/// [`FakeEntra`](crate::entra::FakeEntra)). It dereferences to its state `S`, so every state method (fixtures,
/// phones, faults, clock, …) is called on it directly. Dropping it stops the server; [`FakeServer::shutdown`]
/// waits for it.
pub struct FakeServer<S> {
    state: S,
    addr: SocketAddr,
    base_url: Url,
    server: Server,
    peers: PeerLog,
}

impl<S: Launch> std::fmt::Debug for FakeServer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(S::SERVER_NAME)
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl<S: Launch> FakeServer<S> {
    /// Binds the options' listen address, seeds the fixture tenant and serves until [`FakeServer::shutdown`] or
    /// drop.
    ///
    /// # Errors
    /// [`StartError::Bind`] if the address cannot be bound, [`StartError::Key`] if key generation fails,
    /// [`StartError::InvalidOption`] for a bad option.
    pub async fn start(options: S::Options) -> Result<Self, StartError> {
        let listen = S::listen(&options);
        let (listener, addr, base_url) = bind(listen).await.map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        let state = build_async::<S>(&options, base_url.clone()).await?;
        let peers = PeerLog::default();
        let app = state.clone().router().merge(peers.routes());
        let server = Server::spawn_logged(listener, app, peers.clone());
        tracing::debug!(%base_url, "{} listening", S::NAME);
        Ok(Self {
            state,
            addr,
            base_url,
            server,
            peers,
        })
    }

    /// Who connected: the peer address of every connection accepted and every request served (also at
    /// `GET /_fake/peers`).
    pub fn peers(&self) -> &PeerLog {
        &self.peers
    }

    /// `http://127.0.0.1:PORT`: what the server is bound to (links in bodies use the fake's issuer or base).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The state, for everything else (clock, rate limit, extra keys and redirect URIs, …).
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s) and waits for the server task.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

impl<S> std::ops::Deref for FakeServer<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.state
    }
}

/// Per-connection handle a fault uses to drop the connection.
#[derive(Clone)]
pub(crate) struct ConnKill(pub Arc<Notify>);

/// A running accept loop. Dropping it stops accepting; [`Server::shutdown`] also waits for the loop to end.
pub(crate) struct Server {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `app` on `listener` until shutdown or drop, recording every connection and request in `peers` (and
    /// handing handlers the peer as `ConnectInfo<SocketAddr>`).
    pub(crate) fn spawn_logged(listener: TcpListener, app: axum::Router, peers: PeerLog) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, app, stop_rx, peers));
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s) and waits for the loop.
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Binds `addr` and returns the listener, the bound address and `http://ADDR`.
pub(crate) async fn bind(
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr, url::Url), std::io::Error> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let base = url::Url::parse(&format!("http://{bound}"))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    Ok((listener, bound, base))
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    peers: PeerLog,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let id = peers.connection(peer);
                let conn = Conn { id, peer, log: peers.clone() };
                conns.spawn(serve_connection(stream, app.clone(), stop.clone(), conn));
            }
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

/// An accepted connection: its number and peer, and the log its requests go to.
struct Conn {
    id: u64,
    peer: SocketAddr,
    log: PeerLog,
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
    conn: Conn,
) {
    let kill = Arc::new(Notify::new());
    let kill_ext = ConnKill(Arc::clone(&kill));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        conn.log
            .request(conn.id, conn.peer, req.method().as_str(), req.uri().path());
        req.extensions_mut().insert(kill_ext.clone());
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(conn.peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = kill.notified() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
        }
    }
}
