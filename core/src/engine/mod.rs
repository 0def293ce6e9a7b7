//! The use cases. Each one: authorize (role), apply policy, call ports, append the audit event, return a typed
//! result. Every refusal is a [`Denial`] and is itself audited. Any error is a denial (fail closed).
//!
//! One file per use case (on the model of mini-redis `src/cmd/`), each its own `impl Engine` block:
//!
//! | file | use cases |
//! |---|---|
//! | `sign_in.rs` | [`Engine::sign_in`], [`Engine::resolve_agent`], [`Engine::restore_agent`], sign-out, edge denials, policy announcement |
//! | `agent_check.rs` | [`Engine::recheck_agent`] |
//! | `lookup.rs` | [`Engine::search`], [`Engine::lookup`], [`Engine::explain`] |
//! | `verify.rs` | [`Engine::begin_verification`], [`Engine::continue_verification`], [`Engine::poll_verification`], [`Engine::submit_code`] |
//! | `act.rs` | [`Engine::perform_action`] with the [`ActionRequest`] a shell passes |
//! | `approvals.rs` | four-eyes: the gate of [`Engine::perform_action`], [`Engine::pending_approvals`], [`Engine::decide_approval`] |
//! | `alarms.rs` | [`Engine::report_not_me`], [`Engine::raise_alert`], [`Engine::deliver_alerts`]; the "not me" response, the block and the velocity counters |
//! | `audit_view.rs` | [`Engine::audit_view`], [`Engine::audit_caller_pseudonym`] |
//! | `retention.rs` | [`Engine::purge_expired`] |
//! | `tickets.rs` | [`Engine::action_note`], [`Engine::record_ticket_note`] (ticket write-back) |
//!
//! Shared steps, `pub(crate)`: `call.rs` (the [`call::Call`] context every audit event of a call is built from,
//! authorization, denials), `rate.rs` (the rate scopes and lockout), `usage.rs` (the usage ledger with its
//! hold-and-retry), `views.rs` (what shells are shown).
//!
//! # Durations
//! The public API of this crate uses one duration type, [`chrono::Duration`]: every duration here is added to or
//! subtracted from a [`DateTime<Utc>`] from the [`Clock`] port (windows, grant lifetimes, retention cut-offs,
//! a retry time), which chrono does directly, and embedders already write `Duration::days(30)` for
//! [`Retention`] and read [`crate::policy::Policy::verification_window`]. `std::time::Duration` appears only
//! where the ports take it (store TTLs, rate-limit rules), converted in one private helper.

use crate::denial::Denial;
use crate::policy::Policy;
use crate::pseudonym::Pseudonymizer;
use chrono::{DateTime, Utc};
use fctr_ports::{
    AgentId, ApprovalStore, AuditLog, Capabilities, Clock, GrantStore, IdentityProvider, PseudoId,
    RateLimiter, RequestId, TenantId, TicketRef, UsageLedger, UsageRecord,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod act;
mod agent_check;
mod alarms;
mod approvals;
mod audit_view;
mod builder;
pub(crate) mod call;
mod changes;
mod explained;
mod lookup;
pub(crate) mod rate;
mod reads;
mod retention;
mod sign_in;
mod sign_in_link;
mod tickets;
mod usage;
mod verify;
mod views;

pub use act::ActionRequest;
pub use alarms::AlertDelivery;
pub use approvals::{ApprovalDecided, ApprovalView};
pub use audit_view::{AuditPage, AuditRow, AuditSort, AuditViewQuery};
pub use builder::{EngineBuilder, MissingPart};
pub use changes::{ChangeReportError, OutOfBandScan};
pub use sign_in_link::{
    DEFAULT_LINK_MINUTES, DEFAULT_MAX_AUTH_AGE_SECONDS, OpenedLink, SignInEvidence, SignInLinks,
    link_token,
};
pub use tickets::NoteDelivery;
pub use views::{
    ActionOutcome, ActionView, CallerCard, FactorView, GrantView, LinkView, VerificationView,
};

/// How long a verification record or grant outlives its window in the store (so late polls see "expired", not
/// "missing").
const RECORD_GRACE: std::time::Duration = std::time::Duration::from_secs(300);

/// A store TTL: what is left of `d` (nothing when it is negative), plus [`RECORD_GRACE`].
fn store_ttl(d: chrono::Duration) -> std::time::Duration {
    d.to_std().unwrap_or(std::time::Duration::ZERO) + RECORD_GRACE
}

/// The ports the engine talks through.
///
/// Not `#[non_exhaustive]`: embedders and tests build it as a literal; [`Engine::builder`] is the way that
/// survives a new port.
#[derive(Clone)]
pub struct Ports {
    /// The identity provider.
    pub idp: Arc<dyn IdentityProvider>,
    /// The audit log.
    pub audit: Arc<dyn AuditLog>,
    /// The usage ledger.
    pub usage: Arc<dyn UsageLedger>,
    /// Verifications and grants.
    pub grants: Arc<dyn GrantStore>,
    /// Rate limits.
    pub rate: Arc<dyn RateLimiter>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// How long records are kept.
///
/// Not `#[non_exhaustive]`: configuration code builds it field by field; a new store would add a field with a
/// default through `..Retention::default()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Audit events (default 30 days).
    pub audit: chrono::Duration,
    /// Usage records (default 3 years).
    pub usage: chrono::Duration,
    /// Runtime log files, where a file sink is configured (default 1 day).
    pub runtime_logs: chrono::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            audit: chrono::Duration::days(30),
            usage: chrono::Duration::days(3 * 365),
            runtime_logs: chrono::Duration::days(1),
        }
    }
}

/// A signed-in agent: identity, pseudonym and role (if policy gives one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    id: AgentId,
    pseudo: PseudoId,
    role: Option<String>,
}

impl Agent {
    /// The agent's identity.
    #[must_use]
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The agent's pseudonym.
    #[must_use]
    pub fn pseudonym(&self) -> &PseudoId {
        &self.pseudo
    }

    /// The role name, if policy gives one.
    #[must_use]
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }
}

/// Where a request came from.
///
/// Not `#[non_exhaustive]`: shells build it as a literal from their request; [`RequestContext::new`] is the
/// constructor that will keep working when a field is added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id.
    pub request_id: Option<RequestId>,
    /// The client address (truncated before it reaches the audit log).
    pub client_ip: Option<IpAddr>,
    /// The helpdesk ticket the agent named for this request, stamped on its audit events.
    pub ticket: Option<TicketRef>,
}

impl RequestContext {
    /// A context with a request id and a client address.
    #[must_use]
    pub fn new(request_id: Option<RequestId>, client_ip: Option<IpAddr>) -> Self {
        Self {
            request_id,
            client_ip,
            ticket: None,
        }
    }

    /// The same context naming a helpdesk ticket.
    #[must_use]
    pub fn with_ticket(mut self, ticket: Option<TicketRef>) -> Self {
        self.ticket = ticket;
        self
    }
}

/// The fctr engine.
pub struct Engine {
    ports: Ports,
    policy: Arc<Policy>,
    pseudo: Pseudonymizer,
    tenant: TenantId,
    retention: Retention,
    /// Usage records the ledger refused, waiting to be written (counts merged per row).
    pending_usage: std::sync::Mutex<Vec<UsageRecord>>,
    /// After-the-fact audit events the log refused (see [`Engine::unrecorded_events`]).
    unrecorded: AtomicU64,
    /// What the IdP said about callers in the last few seconds (memory only; see `reads.rs`).
    reads: reads::Reads,
    /// The card's explanations, composed once, at the first card (see `explained.rs`).
    explained: std::sync::OnceLock<explained::Explained>,
    /// Alerts waiting for the sink (see `alarms.rs`).
    alerts: alarms::AlertQueue,
    /// Four-eyes approval requests (see `approvals.rs`); `None` when none was given, and then every action policy
    /// holds back is refused (fail closed).
    approvals: Option<Arc<dyn ApprovalStore>>,
    /// Verification by IdP sign-in (see `sign_in_link.rs`); `None`: not offered.
    sign_in_links: Option<SignInLinks>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for one tenant.
    #[must_use]
    pub fn new(ports: Ports, policy: Arc<Policy>, pseudo: Pseudonymizer, tenant: TenantId) -> Self {
        let reads = reads::Reads::new(policy.reuse_idp_reads());
        Self {
            ports,
            policy,
            pseudo,
            tenant,
            retention: Retention::default(),
            pending_usage: std::sync::Mutex::new(Vec::new()),
            unrecorded: AtomicU64::new(0),
            reads,
            explained: std::sync::OnceLock::new(),
            alerts: alarms::AlertQueue::default(),
            approvals: None,
            sign_in_links: None,
        }
    }

    /// Gives the engine its store of four-eyes approval requests (needed when policy's `[four_eyes]` holds
    /// anything back; [`Engine::builder`] refuses to build without it then).
    #[must_use]
    pub fn with_approvals(mut self, approvals: Arc<dyn ApprovalStore>) -> Self {
        self.approvals = Some(approvals);
        self
    }

    /// Overrides the retention periods.
    #[must_use]
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The pseudonymizer (for shells that pseudonymize identifiers before logging them).
    #[must_use]
    pub fn pseudonymizer(&self) -> &Pseudonymizer {
        &self.pseudo
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The identity provider's capabilities.
    #[must_use]
    pub fn capabilities(&self) -> Capabilities {
        self.ports.idp.capabilities()
    }

    /// The retention periods.
    #[must_use]
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// How many after-the-fact audit events (outcomes, results, refusals: things that already happened) the audit
    /// log refused since start. A metric and a readiness signal: non-zero means the log is failing. Events that
    /// must be durable before something happens (intents, challenges) are never counted here: their failure
    /// refuses the request instead.
    #[must_use]
    pub fn unrecorded_events(&self) -> u64 {
        self.unrecorded.load(Ordering::Relaxed)
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }
}

/// A rate-limit key failed to parse: a pseudonym that does not fit a key, which fails closed.
fn bad_key(_: fctr_ports::IdError) -> Denial {
    Denial::new(fctr_ports::Reason::InvalidInput)
}
