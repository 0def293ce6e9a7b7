//! Serving: our own accept loop (hyper-util) so a fault can drop a connection without any response, and a
//! graceful shutdown.

use std::net::SocketAddr;

use url::Url;

use super::{
    Effects, FakeOktaOptions, FakeOktaState, Faults, Fixtures, OidcClient, OidcControl, Phones,
    ServiceApp, StartError,
};

use crate::common::serve::{Server, bind};

/// A running fake Okta tenant on loopback. Dropping it stops the server; [`FakeOkta::shutdown`] waits for it.
pub struct FakeOkta {
    state: FakeOktaState,
    addr: SocketAddr,
    base_url: Url,
    server: Server,
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
        let (listener, addr, base_url) =
            bind(options.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let state = FakeOktaState::new_async(&options, base_url.clone()).await?;
        let server = Server::spawn(listener, super::router(state.clone()));
        tracing::debug!(%base_url, "fake okta listening");
        Ok(Self {
            state,
            addr,
            base_url,
            server,
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
        self.server.shutdown().await;
    }
}
