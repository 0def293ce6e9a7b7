//! [`FakeEntra`]: the fake tenant running on loopback.

use std::net::SocketAddr;

use url::Url;

use super::{
    AppCredentials, Certificate, Effects, FakeEntraOptions, FakeEntraState, Faults, Fixtures,
    OidcClient, OidcControl, Phones, StartError,
};
use crate::common::serve::{Server, bind};

/// A running fake Entra tenant on loopback. Dropping it stops the server; [`FakeEntra::shutdown`] waits for it.
pub struct FakeEntra {
    state: FakeEntraState,
    addr: SocketAddr,
    base_url: Url,
    server: Server,
}

impl std::fmt::Debug for FakeEntra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEntra")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl FakeEntra {
    /// Binds `options.listen`, seeds the fixture tenant and serves until [`FakeEntra::shutdown`] or drop.
    ///
    /// # Errors
    /// [`StartError::Bind`] if the address cannot be bound, [`StartError::Key`] if key generation fails.
    pub async fn start(options: FakeEntraOptions) -> Result<Self, StartError> {
        let (listener, addr, base_url) =
            bind(options.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let state = FakeEntraState::new_async(&options, base_url.clone()).await?;
        let server = Server::spawn(listener, super::router(state.clone()));
        tracing::debug!(%base_url, "fake entra listening");
        Ok(Self {
            state,
            addr,
            base_url,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (what the server is bound to; links use [`FakeEntraState::base`]).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory (tenant) id.
    pub fn tenant_id(&self) -> &str {
        self.state.tenant_id()
    }

    /// The authority base for the adapter (`{base}/`).
    pub fn authority(&self) -> Url {
        self.state.authority()
    }

    /// The Graph base for the adapter (`{base}/v1.0/`).
    pub fn graph_base(&self) -> Url {
        self.state.graph_base()
    }

    /// The connector endpoint for the adapter (`{base}/StrongAuthenticationService.svc/Connector/`).
    pub fn connector_endpoint(&self) -> Url {
        self.state.connector_endpoint()
    }

    /// fctr's app registration (client id, secret, permissions, token URL).
    pub fn app(&self) -> AppCredentials {
        self.state.app()
    }

    /// fctr's app client secret.
    pub fn client_secret(&self) -> secrecy::SecretString {
        self.state.app().client_secret
    }

    /// The read-only app registration.
    pub fn reader_app(&self) -> AppCredentials {
        self.state.reader_app()
    }

    /// The MFA client's service principal credential.
    pub fn mfa_client(&self) -> AppCredentials {
        self.state.mfa_client()
    }

    /// The registered certificate (private key PEM and thumbprints).
    pub fn certificate(&self) -> &Certificate {
        self.state.certificate()
    }

    /// The portal app for agent sign-in.
    pub fn oidc_client(&self) -> OidcClient {
        self.state.oidc_client()
    }

    /// The seeded fixture tenant.
    pub fn fixtures(&self) -> &Fixtures {
        self.state.fixtures()
    }

    /// Simulated phones.
    pub fn phones(&self) -> Phones {
        self.state.phones()
    }

    /// Fault injection on Graph routes.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// OIDC test hooks.
    pub fn oidc(&self) -> OidcControl {
        self.state.oidc()
    }

    /// Side-effect counters of a user (by id or UPN).
    pub fn effects(&self, user: &str) -> Option<Effects> {
        self.state.effects(user)
    }

    /// The state, for everything else (clock, rate limit, permissions, redirect URIs).
    pub fn state(&self) -> &FakeEntraState {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s) and waits for the server task.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}
