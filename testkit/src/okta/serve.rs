//! Serving: our own accept loop (hyper-util) so a fault can drop a connection without any response, and a
//! graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;
use url::Url;

use super::{
    Effects, FakeOktaOptions, FakeOktaState, Faults, Fixtures, OidcClient, OidcControl, Phones,
    ServiceApp, StartError,
};

/// Per-connection handle a fault uses to drop the connection.
#[derive(Clone)]
pub(crate) struct ConnKill(pub Arc<Notify>);

/// A running fake Okta tenant on loopback. Dropping it stops the server; [`FakeOkta::shutdown`] waits for it.
pub struct FakeOkta {
    state: FakeOktaState,
    addr: SocketAddr,
    base_url: Url,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeOkta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOkta")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl FakeOkta {
    /// Binds `options.listen`, seeds the fixture org and serves until [`FakeOkta::shutdown`] or drop.
    ///
    /// # Errors
    /// [`StartError::Bind`] if the address cannot be bound, [`StartError::Key`] if key generation fails.
    pub async fn start(options: FakeOktaOptions) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: options.listen,
            source,
        })?;
        let base_url = Url::parse(&format!("http://{addr}"))
            .map_err(|e| StartError::InvalidOption(format!("base url: {e}")))?;
        let state = FakeOktaState::new_async(&options, base_url.clone()).await?;
        let app = super::router(state.clone());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, app, stop_rx));
        tracing::debug!(%base_url, "fake okta listening");
        Ok(Self {
            state,
            addr,
            base_url,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (what the server is bound to; links in bodies use [`FakeOkta::issuer`]).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer (the base URL unless overridden).
    pub fn issuer(&self) -> Url {
        self.state.issuer()
    }

    /// The SSWS token the fake accepts.
    pub fn api_token(&self) -> &str {
        self.state.api_token()
    }

    /// The registered service app with its private key.
    pub fn service_app(&self) -> &ServiceApp {
        self.state.service_app()
    }

    /// The OIDC client for agent sign-in.
    pub fn oidc_client(&self) -> OidcClient {
        self.state.oidc_client()
    }

    /// The seeded fixture org.
    pub fn fixtures(&self) -> &Fixtures {
        self.state.fixtures()
    }

    /// Simulated phones.
    pub fn phones(&self) -> Phones {
        self.state.phones()
    }

    /// Fault injection.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// OIDC test hooks.
    pub fn oidc(&self) -> OidcControl {
        self.state.oidc()
    }

    /// Side-effect counters of a user (by id or login).
    pub fn effects(&self, user: &str) -> Option<Effects> {
        self.state.effects(user)
    }

    /// The state, for everything else (clock, rate limit, extra keys and redirect URIs).
    pub fn state(&self) -> &FakeOktaState {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s) and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeOkta {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: TcpListener, app: axum::Router, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(stream, app.clone(), stop.clone()));
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

async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let kill = Arc::new(Notify::new());
    let kill_ext = ConnKill(Arc::clone(&kill));
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(kill_ext.clone());
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
