//! The shared state every handler sees.

use crate::oidc::Oidc;
use crate::poller::{PollRegistry, PollSettings};
use crate::session::{SessionStore, Timeouts};
use fctr_core::Engine;
use fctr_ports::{AuditLog, Clock, IdentityProvider};
use std::sync::Arc;
use url::Url;

/// Links shown in demo mode.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    /// The simulated phone page of the fake Okta.
    pub phone_url: Url,
}

/// Settings of the HTTP shell.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The origin agents use (CSRF origin check, redirect URI, cookie security).
    pub public_url: Url,
    /// Session timeouts.
    pub timeouts: Timeouts,
    /// Demo mode: banner and phone link.
    pub demo: Option<DemoInfo>,
    /// Poller timing.
    pub poll: PollSettings,
    /// The network edge: allow-list, trusted proxies, edge rate limits, body and time limits.
    pub edge: crate::edge::EdgeSettings,
}

impl Settings {
    /// Whether cookies get `Secure` and the `__Host-` prefix (everything but plain-HTTP loopback).
    #[must_use]
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The session cookie name: `__Host-fctr`, or `fctr` on plain-HTTP loopback (a `__Host-` cookie must be
    /// `Secure`).
    #[must_use]
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-fctr"
        } else {
            "fctr"
        }
    }

    /// The short-lived pre-login cookie name.
    #[must_use]
    pub fn pre_login_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-fctr-login"
        } else {
            "fctr-login"
        }
    }

    /// The public origin, `scheme://host[:port]`.
    #[must_use]
    pub fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

/// What [`AppState::new`] is built from.
pub struct StateParts {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The identity provider the engine uses (readiness probe).
    pub idp: Arc<dyn IdentityProvider>,
    /// The audit log the engine uses (readiness probe, audit view).
    pub audit: Arc<dyn AuditLog>,
    /// The engine's clock (session timeouts).
    pub clock: Arc<dyn Clock>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Agent sign-in.
    pub oidc: Arc<Oidc>,
    /// Shell settings.
    pub settings: Settings,
}

/// The shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub engine: Arc<Engine>,
    pub idp: Arc<dyn IdentityProvider>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub sessions: Arc<dyn SessionStore>,
    pub oidc: Arc<Oidc>,
    pub settings: Settings,
    pub polls: Arc<PollRegistry>,
    pub ready_cache: tokio::sync::Mutex<Option<(tokio::time::Instant, bool)>>,
    /// The edge's own limiter (per-IP sign-in, per-agent API), on the engine's clock.
    pub edge_limiter: Arc<dyn fctr_ports::RateLimiter>,
    /// API bearer tokens already verified.
    pub bearers: crate::api::BearerCache,
    /// Agent roles read from the IdP (at most a minute old).
    pub roles: crate::access::RoleCache,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state.
    #[must_use]
    pub fn new(parts: StateParts) -> Self {
        // Install the Prometheus recorder before anything records.
        let _ = crate::metrics::handle();
        let polls = Arc::new(PollRegistry::new(
            Arc::clone(&parts.engine),
            parts.settings.poll,
        ));
        let edge_limiter: Arc<dyn fctr_ports::RateLimiter> = Arc::new(
            fctr_memory::MemoryRateLimiter::new(Arc::clone(&parts.clock)),
        );
        Self(Arc::new(Inner {
            engine: parts.engine,
            idp: parts.idp,
            audit: parts.audit,
            clock: parts.clock,
            sessions: parts.sessions,
            oidc: parts.oidc,
            settings: parts.settings,
            polls,
            ready_cache: tokio::sync::Mutex::new(None),
            edge_limiter,
            bearers: crate::api::BearerCache::default(),
            roles: crate::access::RoleCache::default(),
        }))
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.0.engine
    }

    /// The poller registry.
    #[must_use]
    pub fn polls(&self) -> &Arc<PollRegistry> {
        &self.0.polls
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// The audit log the engine writes (the audit view; tests read it).
    #[must_use]
    pub fn audit(&self) -> &Arc<dyn AuditLog> {
        &self.0.audit
    }

    /// The session store.
    #[must_use]
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.0.sessions
    }
}
