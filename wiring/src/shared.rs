//! [`SharedState`]: the short-lived state every replica of a deployment must see alike (sessions and sign-in
//! state, verifications and grants, rate limits, the live-status pollers' leases and hints). In this process's
//! memory for a single node (the default, the demo and the CLI), in Redis (`[state] redis_url_env` or
//! `redis_url_file`) for several replicas behind a load balancer.

use fctr_memory::{
    MemoryApprovalStore, MemoryCoordinator, MemoryGrantStore, MemoryRateLimiter, MemorySessionStore,
};
use fctr_ports::{
    ApprovalStore, Clock, Coordinator, GrantStore, RateLimiter, SessionStore, Timeouts,
};
use std::sync::Arc;

/// Where the short-lived state lives, and a handle on each port over it.
#[derive(Clone)]
pub struct SharedState {
    /// Verifications and grants.
    pub grants: Arc<dyn GrantStore>,
    /// Rate limits (the engine's and the portal edge's).
    pub rates: Arc<dyn RateLimiter>,
    /// Agent sessions and sign-in state.
    pub sessions: Arc<dyn SessionStore>,
    /// Leases and fan-out between replicas.
    pub coordinator: Arc<dyn Coordinator>,
    /// Four-eyes approval requests; `None` where the backend has no approval store (a stack whose policy holds
    /// actions back for approval then refuses to start: fail closed).
    pub approvals: Option<Arc<dyn ApprovalStore>>,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Memory,
    Redis(fctr_redis::RedisState),
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.backend {
            Backend::Memory => "SharedState::Memory",
            Backend::Redis(_) => "SharedState::Redis",
        })
    }
}

impl SharedState {
    /// Everything in this process's memory, on `clock`: one node only.
    #[must_use]
    pub fn memory(clock: &Arc<dyn Clock>, timeouts: Timeouts) -> Self {
        Self {
            grants: Arc::new(MemoryGrantStore::new(Arc::clone(clock))),
            rates: Arc::new(MemoryRateLimiter::new(Arc::clone(clock))),
            sessions: Arc::new(MemorySessionStore::new(Arc::clone(clock), timeouts)),
            coordinator: Arc::new(MemoryCoordinator::new(Arc::clone(clock))),
            approvals: Some(Arc::new(MemoryApprovalStore::new(Arc::clone(clock)))),
            backend: Backend::Memory,
        }
    }

    /// Everything in Redis, through `redis`, sessions timed out by `clock` and `timeouts`: any number of
    /// replicas.
    #[must_use]
    pub fn redis(
        redis: fctr_redis::RedisState,
        clock: &Arc<dyn Clock>,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            grants: redis.grant_store(),
            rates: redis.rate_limiter(),
            sessions: redis.session_store(Arc::clone(clock), timeouts),
            coordinator: redis.coordinator(),
            approvals: Some(redis.approval_store()),
            backend: Backend::Redis(redis),
        }
    }

    /// Whether the state is shared between processes (Redis), so several replicas can run.
    #[must_use]
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Whether the store answers now (readiness): memory always does; Redis must answer a `PING`.
    pub async fn ready(&self) -> bool {
        match &self.backend {
            Backend::Memory => true,
            Backend::Redis(r) => r.ping().await.is_ok(),
        }
    }
}

impl SharedState {
    /// The shared state a configuration names: memory unless `[state]` names Redis (connected now, so a wrong
    /// URL or an unreachable server stops the start with a clear message).
    ///
    /// Values that name people in Redis are sealed under a key derived from the pseudonymization key (already
    /// the same on every replica, and never stored): no second key to distribute, and rotating it makes the
    /// sealed state unreadable, which only signs agents out.
    ///
    /// # Errors
    /// [`crate::StackError`] naming the key or the store that failed (never the URL: it may hold a password).
    pub async fn from_config(
        cfg: &crate::Config,
        clock: &Arc<dyn Clock>,
    ) -> Result<Self, crate::StackError> {
        let timeouts = cfg.session.timeouts();
        let Some(url) = cfg.state.redis_url()? else {
            return Ok(Self::memory(clock, timeouts));
        };
        let seal = cfg
            .pseudonymization
            .as_ref()
            .ok_or_else(|| crate::config::invalid("pseudonymization", "missing section"))?
            .key()?;
        let options = fctr_redis::RedisOptions::new(seal).with_prefix(cfg.state.key_prefix()?);
        let redis = fctr_redis::RedisState::connect(url, options)
            .await
            .map_err(|e| crate::StackError::Start {
                what: "shared state (Redis, [state] redis_url)",
                message: e.to_string(),
            })?;
        Ok(Self::redis(redis, clock, timeouts))
    }
}
