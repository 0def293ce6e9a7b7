//! The shared state every handler sees.

use crate::oidc::Oidc;
use crate::poller::{PollRegistry, PollSettings};
use crate::session::{SessionStore, Timeouts};
use fctr_core::Engine;
use fctr_ports::{AuditLog, ChangeFeed, Clock, IdentityProvider};
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
    pub edge: crate::net::EdgeSettings,
    /// Verification by IdP sign-in (`[caller_sign_in]`): what the caller's sign-in asks of the IdP. `None`: the
    /// `/link/` pages refuse every link.
    pub caller_sign_in: Option<crate::oidc::CallerAuth>,
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

    /// The cookie with the agent's display name for the page header (the name stays in the agent's browser: the
    /// server keeps no copy).
    #[must_use]
    pub fn name_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-fctr-name"
        } else {
            "fctr-name"
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

    /// The cookie holding a caller's pre-login key between a sign-in link and the IdP's redirect back.
    #[must_use]
    pub fn link_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-fctr-link"
        } else {
            "fctr-link"
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
    /// The short-lived state shared with the other replicas: sessions, the live-status pollers' leases and hints,
    /// and the edge's rate limits (per-IP sign-in, per-agent API), in the same store as the engine's.
    pub shared: fctr_wiring::SharedState,
    /// Agent sign-in.
    pub oidc: Arc<Oidc>,
    /// Shell settings.
    pub settings: Settings,
    /// The durable audit store (SQLite or PostgreSQL) and how often to checkpoint it (none with an in-memory
    /// audit log).
    pub checkpoints: Option<Checkpoints>,
    /// Ticket write-back, when `[tickets]` is configured (the sink is wrapped around the engine here:
    /// [`fctr_wiring::TicketDesk::new`]).
    pub tickets: Option<(Arc<dyn fctr_ports::TicketSink>, fctr_wiring::NoteRetry)>,
    /// The IdP's own change log, for the auditors' out-of-band page (none when the IdP has none in this build).
    pub change_feed: Option<Arc<dyn ChangeFeed>>,
}

/// The audit store's checkpointer: records each chain head, HMAC'd with the configured checkpoint key, so that a
/// cut tail or a re-hashed chain is found by `fctr audit verify --checkpoint-key-file`.
#[derive(Clone)]
pub struct Checkpoints {
    /// The store (opened with the checkpoint key).
    pub store: fctr_wiring::DurableStore,
    /// Time between two checkpoints.
    pub interval: std::time::Duration,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

/// How many out-of-band reports may read the logs at once on one replica (see `AppState::out_of_band_turn`).
pub const OUT_OF_BAND_REPORTS: usize = 2;

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
    pub shared: fctr_wiring::SharedState,
    /// The edge's own limiter (per-IP sign-in, per-agent API), on the engine's clock.
    pub edge_limiter: Arc<dyn fctr_ports::RateLimiter>,
    /// API bearer tokens already verified.
    pub bearers: crate::caches::BearerCache,
    pub checkpoints: Option<Checkpoints>,
    /// Agent roles read from the IdP (at most a minute old).
    pub roles: crate::caches::RoleCache,
    /// Ticket write-back, when configured.
    pub tickets: Option<fctr_wiring::TicketDesk>,
    /// The IdP's own change log (out-of-band change detection).
    pub change_feed: Option<Arc<dyn ChangeFeed>>,
    /// At most this many out-of-band reports read the logs at once (each may read up to a week of both logs).
    pub out_of_band_reports: tokio::sync::Semaphore,
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
            Arc::clone(&parts.shared.coordinator),
            Arc::clone(&parts.idp),
            parts.settings.poll,
        ));
        let edge_limiter = Arc::clone(&parts.shared.rates);
        let tickets = parts.tickets.map(|(sink, retry)| {
            fctr_wiring::TicketDesk::new(sink, Arc::clone(&parts.engine), retry)
        });
        Self(Arc::new(Inner {
            engine: parts.engine,
            idp: parts.idp,
            audit: parts.audit,
            clock: parts.clock,
            sessions: Arc::clone(&parts.shared.sessions),
            oidc: parts.oidc,
            settings: parts.settings,
            polls,
            ready_cache: tokio::sync::Mutex::new(None),
            shared: parts.shared,
            edge_limiter,
            bearers: crate::caches::BearerCache::default(),
            checkpoints: parts.checkpoints,
            roles: crate::caches::RoleCache::default(),
            tickets,
            change_feed: parts.change_feed,
            out_of_band_reports: tokio::sync::Semaphore::new(OUT_OF_BAND_REPORTS),
        }))
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.0.engine
    }

    /// Ticket write-back, when configured.
    #[must_use]
    pub fn tickets(&self) -> Option<&fctr_wiring::TicketDesk> {
        self.0.tickets.as_ref()
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

    /// Agent sign-in and bearer-token verification (its JWKS refresh state is visible to tests).
    #[must_use]
    pub fn oidc(&self) -> &Arc<Oidc> {
        &self.0.oidc
    }

    /// The IdP's own change log, when it has one (the auditors' out-of-band page).
    #[must_use]
    pub fn change_feed(&self) -> Option<&Arc<dyn ChangeFeed>> {
        self.0.change_feed.as_ref()
    }

    /// A turn to read both logs for an out-of-band report (the page or the API): at most
    /// [`OUT_OF_BAND_REPORTS`] run at once on this replica, the rest wait, so repeated requests cannot spend the
    /// IdP's log rate limit (which the schedule needs too) or the replica's cores. `None` only if the semaphore
    /// were closed, which it never is.
    pub(crate) async fn out_of_band_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.0.out_of_band_reports.acquire().await.ok()
    }

    /// The session store.
    #[must_use]
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.0.sessions
    }

    /// Records a first checkpoint now (so a verifier holding the key finds one for every chain from the start),
    /// then starts the scheduled checkpointer (every `[audit] checkpoint_interval_secs`, default 60 s), which ends
    /// when the store is closed. Returns `None` when the audit log is in memory.
    pub async fn start_checkpointer(&self) -> Option<tokio::task::JoinHandle<()>> {
        let c = self.0.checkpoints.as_ref()?;
        if let Err(e) = c.store.checkpoint().await {
            tracing::warn!(error = e.code(), "audit checkpoint failed");
        }
        Some(c.store.spawn_checkpointer(c.interval))
    }

    /// Records a checkpoint now (at shutdown) and closes the audit store; logs a failure by its code only.
    pub async fn checkpoint_and_close(&self) {
        if let Some(c) = &self.0.checkpoints {
            if let Err(e) = c.store.checkpoint().await {
                tracing::warn!(error = e.code(), "final audit checkpoint failed");
            }
            c.store.close().await;
        }
    }
}
