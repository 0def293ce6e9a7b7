//! The use cases. Each one: authorize (role), apply policy, call ports, append the audit event, return a typed
//! result. Every refusal is a [`Denial`] and is itself audited. Any error is a denial (fail closed).

use crate::assurance;
use crate::audit::AuditBuilder;
use crate::denial::Denial;
use crate::policy::{Explanation, Permission, Policy, Role, TargetClass};
use crate::pseudonym::Pseudonymizer;
use crate::verification::{
    AnyVerification, Approval, Grant, GrantTerms, NewVerification, Verification,
};
use chrono::{DateTime, Utc};
use fctr_ports::{
    Action, ActionKind, ActionReceipt, AgentId, AuditDetail, AuditLog, Capabilities,
    ChallengeContext, ChallengeState, Clock, CodeVerdict, EventKind, FactorId, FactorInfo,
    FactorKind, FactorStatus, GrantConsumption, GrantStore, IdentityProvider, Outcome, PortError,
    PseudoId, RateDecision, RateKey, RateLimiter, RateRule, Reason, RequestId, RiskFacts,
    SecretString, SubjectId, TenantId, UsageKind, UsageLedger, UsageRecord, UserQuery, UserRecord,
    VerificationId, VerificationRecord, VerificationStatus,
};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
mod agent_check;
mod builder;
pub use builder::{EngineBuilder, MissingPart};

/// Most search results returned.
const SEARCH_LIMIT: usize = 20;
/// How long a verification record outlives its window in the store (so late polls see "expired", not "missing").
const RECORD_GRACE: Duration = Duration::from_secs(300);

/// The ports the engine talks through.
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id.
    pub request_id: Option<RequestId>,
    /// The client address (truncated before it reaches the audit log).
    pub client_ip: Option<IpAddr>,
}

/// A live grant, as shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantView {
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Whether one action consumes it.
    pub single_use: bool,
    /// Actions it allows.
    pub actions: BTreeSet<ActionKind>,
    /// Factor kinds verified.
    pub factors: Vec<FactorKind>,
    /// The assurance wording ("AAL2-capable authenticator verified").
    pub assurance: &'static str,
}

/// A verification, as shown to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationView {
    /// Its id.
    pub id: VerificationId,
    /// Where it stands.
    pub status: VerificationStatus,
    /// The factor kind of the outstanding challenge.
    pub factor: Option<FactorKind>,
    /// The number the caller must pick (number matching).
    pub number: Option<u16>,
    /// When the outstanding challenge expires.
    pub challenge_expires_at: Option<DateTime<Utc>>,
    /// When the verification window closes.
    pub expires_at: DateTime<Utc>,
    /// Distinct factors approved.
    pub approved: u8,
    /// Distinct factors required.
    pub required: u8,
    /// The grant, once verified.
    pub grant: Option<GrantView>,
    /// Why it ended, if it ended without success.
    pub reason: Option<Reason>,
}

/// One enrolled factor on the caller card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorView {
    /// The factor.
    pub info: FactorInfo,
    /// Its assurance class, in words.
    pub assurance: &'static str,
    /// Whether policy accepts it for this caller now.
    pub accepted: bool,
    /// Why not, if not.
    pub refusal: Option<Reason>,
}

/// One action on the caller card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionView {
    /// The action.
    pub kind: ActionKind,
    /// The agent's role allows it.
    pub permitted_for_role: bool,
    /// The IdP can do it.
    pub supported: bool,
    /// A live grant covers it right now.
    pub available_now: bool,
    /// What policy requires, and why.
    pub explanation: Explanation,
}

/// What an agent sees about a caller. Holds personal data (in [`fctr_ports::Pii`]) for the agent's view only.
#[derive(Debug, Clone)]
pub struct CallerCard {
    /// The account.
    pub user: UserRecord,
    /// Enrolled factors with assurance and acceptance.
    pub factors: Vec<FactorView>,
    /// Risk facts.
    pub risk: RiskFacts,
    /// Standard or privileged.
    pub class: TargetClass,
    /// In a protected group: no action may touch it.
    pub protected: bool,
    /// Actions and what each requires.
    pub actions: Vec<ActionView>,
    /// The agent's live grant for this caller, if any.
    pub grant: Option<GrantView>,
    /// The factor policy would challenge first.
    pub recommended_factor: Option<FactorId>,
}

/// What an action returned.
#[derive(Debug)]
pub struct ActionOutcome {
    /// The adapter's receipt; may carry a one-time secret to show once.
    pub receipt: ActionReceipt,
    /// Whether the action's usage record is durable in the ledger. `false` means the ledger refused it even after
    /// retries: it is held in memory and retried by the next write or [`Engine::flush_usage`] (see
    /// [`Engine::pending_usage`]), never dropped silently.
    pub usage_recorded: bool,
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
}

/// How many times one usage write is tried before it is held for later.
const USAGE_ATTEMPTS: usize = 3;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Who and what an event is about.
struct Scope<'a> {
    agent: &'a Agent,
    ctx: &'a RequestContext,
    target: Option<PseudoId>,
    factor: Option<FactorKind>,
    action: Option<ActionKind>,
}

fn needs_start(kind: &FactorKind) -> bool {
    matches!(kind, FactorKind::Push | FactorKind::Sms | FactorKind::Voice)
}

fn std_dur(d: chrono::Duration) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

fn rate_key(parts: &[&str]) -> Result<RateKey, Denial> {
    RateKey::parse(parts.join(":")).map_err(|_| Denial::new(Reason::InvalidInput))
}

/// The outcome an event records for a refusal: the caller's wrong answer (or silence) is `rejected`, a failure of
/// the IdP or of our own stores `failed`, a rule's refusal `denied`.
fn outcome_of(reason: Reason) -> Outcome {
    match reason {
        Reason::ChallengeRejected
        | Reason::WrongCode
        | Reason::CodeReplayed
        | Reason::ChallengeTimedOut => Outcome::Rejected,
        Reason::IdpError | Reason::AuditUnavailable => Outcome::Failed,
        _ => Outcome::Denied,
    }
}

fn idp_reason(e: &PortError) -> Reason {
    match e {
        PortError::NotFound => Reason::TargetNotFound,
        PortError::Unsupported => Reason::Unsupported,
        PortError::RateLimited { .. } => Reason::RateLimited,
        _ => Reason::IdpError,
    }
}

fn upstream_detail(e: &PortError) -> AuditDetail {
    let status = match e {
        PortError::Upstream { status, .. } => Some(*status),
        _ => None,
    };
    AuditDetail::Upstream {
        code: e.code().to_owned(),
        status,
    }
}

impl Engine {
    /// An engine for one tenant.
    #[must_use]
    pub fn new(ports: Ports, policy: Arc<Policy>, pseudo: Pseudonymizer, tenant: TenantId) -> Self {
        Self {
            ports,
            policy,
            pseudo,
            tenant,
            retention: Retention::default(),
            pending_usage: std::sync::Mutex::new(Vec::new()),
        }
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

    fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    fn event(&self, s: &Scope<'_>, kind: EventKind, outcome: Outcome) -> AuditBuilder {
        let mut b = AuditBuilder::new(self.tenant.clone(), self.now(), kind, outcome)
            .agent(&s.agent.pseudo)
            .request(s.ctx.request_id.as_ref())
            .client_ip(s.ctx.client_ip);
        if let Some(t) = &s.target {
            b = b.target(t);
        }
        if let Some(f) = &s.factor {
            b = b.factor(f);
        }
        if let Some(a) = s.action {
            b = b.action(a);
        }
        b
    }

    /// Appends an event that must be durable before the caller proceeds.
    async fn must_append(&self, s: &Scope<'_>, b: AuditBuilder) -> Result<(), Denial> {
        match self.ports.audit.append(b.build()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(self.deny(s, Reason::AuditUnavailable).await),
        }
    }

    /// Appends an event after the fact; a failure cannot undo what happened, so it is only reported upward by
    /// the store's own health checks.
    async fn record(&self, b: AuditBuilder) {
        let _ = self.ports.audit.append(b.build()).await;
    }

    /// An IdP result, or its audited denial: the reason from the port error, its code as detail.
    async fn idp_or_deny<T>(&self, s: &Scope<'_>, r: Result<T, PortError>) -> Result<T, Denial> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self
                .deny_with(s, Denial::new(idp_reason(&e)), Some(upstream_detail(&e)))
                .await),
        }
    }

    /// The caller's class from their groups, refusing a protected caller.
    async fn unprotected_class(
        &self,
        s: &Scope<'_>,
        subject: &SubjectId,
    ) -> Result<TargetClass, Denial> {
        let groups = self
            .idp_or_deny(s, self.ports.idp.groups(subject).await)
            .await?;
        if self.policy.is_protected(&groups) {
            return Err(self.deny(s, Reason::ProtectedTarget).await);
        }
        Ok(self.policy.classify(&groups))
    }

    /// Audits a refusal and returns it.
    async fn deny(&self, s: &Scope<'_>, reason: Reason) -> Denial {
        self.deny_with(s, Denial::new(reason), None).await
    }

    async fn deny_with(
        &self,
        s: &Scope<'_>,
        denial: Denial,
        detail: Option<AuditDetail>,
    ) -> Denial {
        let mut b = self
            .event(s, EventKind::Denied, outcome_of(denial.reason))
            .reason(denial.reason);
        if let Some(d) = detail {
            b = b.detail(d);
        }
        self.record(b).await;
        denial
    }

    fn role_of(&self, agent: &Agent) -> Option<&Role> {
        agent.role.as_deref().and_then(|r| self.policy.role(r))
    }

    async fn authorize(&self, s: &Scope<'_>, permission: Permission) -> Result<&Role, Denial> {
        let Some(role) = self.role_of(s.agent) else {
            return Err(self.deny(s, Reason::NoRole).await);
        };
        if !self.policy.permits(role, permission) {
            return Err(self.deny(s, Reason::NotPermittedForRole).await);
        }
        Ok(role)
    }

    async fn rate(
        &self,
        s: &Scope<'_>,
        key: &RateKey,
        rule: RateRule,
        name: &str,
    ) -> Result<(), Denial> {
        match self.ports.rate.hit(key, rule).await {
            Ok(RateDecision::Allowed { .. }) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => {
                let detail = AuditDetail::RateLimit {
                    rule: name.to_owned(),
                    retry_after_secs: retry_after.as_secs(),
                };
                Err(self
                    .deny_with(
                        s,
                        Denial::after(Reason::RateLimited, retry_after),
                        Some(detail),
                    )
                    .await)
            }
            // The limiter is down: fail closed.
            Err(_) => Err(self.deny(s, Reason::RateLimited).await),
        }
    }

    /// Counts a lookup against the agent's hourly quota.
    async fn lookup_quota(&self, s: &Scope<'_>) -> Result<(), Denial> {
        let key = rate_key(&["lookup", "agent", s.agent.pseudo.as_str()])?;
        self.rate(
            s,
            &key,
            Self::hourly(self.policy.limits().lookups_per_agent_per_hour),
            "lookups_per_agent",
        )
        .await
    }

    fn hourly(limit: u32) -> RateRule {
        RateRule {
            limit,
            window: Duration::from_secs(3600),
        }
    }

    fn lockout_rule(&self) -> RateRule {
        let l = self.policy.limits();
        RateRule {
            limit: l.wrong_codes_before_lockout,
            window: Duration::from_secs(u64::from(l.lockout_minutes) * 60),
        }
    }

    async fn check_lockout(&self, s: &Scope<'_>, target: &PseudoId) -> Result<(), Denial> {
        let rule = self.lockout_rule();
        for key in &self.code_keys(s.agent, target)? {
            match self.ports.rate.peek(key, rule).await {
                Ok(RateDecision::Allowed { .. }) => {}
                Ok(RateDecision::Limited { retry_after }) => {
                    return Err(self
                        .deny_with(
                            s,
                            Denial::after(Reason::VerificationLocked, retry_after),
                            None,
                        )
                        .await);
                }
                Err(_) => return Err(self.deny(s, Reason::VerificationLocked).await),
            }
        }
        Ok(())
    }

    /// Refuses an agent acting on their own account, unless policy allows it. Agent and caller pseudonyms share
    /// one namespace, so the agent's IdP id and the caller's compare through them.
    async fn refuse_self(&self, s: &Scope<'_>, subject: &SubjectId) -> Result<(), Denial> {
        if !self.policy.allow_agent_self_actions() && self.pseudo.subject(subject) == s.agent.pseudo
        {
            return Err(self.deny(s, Reason::SelfAction).await);
        }
        Ok(())
    }

    /// Records one usage row as part of the outcome it counts. Each write is tried [`USAGE_ATTEMPTS`] times;
    /// rows the ledger still refuses are held (counts merged) and written before the next row or by
    /// [`Engine::flush_usage`]. Returns whether everything is durable now.
    async fn record_usage(&self, agent: &Agent, kind: UsageKind, now: DateTime<Utc>) -> bool {
        self.hold_usage(UsageRecord {
            month: fctr_ports::Month::of(now),
            tenant: self.tenant.clone(),
            agent: agent.pseudo.clone(),
            kind,
            count: 1,
        });
        self.flush_usage().await == 0
    }

    fn hold_usage(&self, usage: UsageRecord) {
        let mut held = self
            .pending_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match held.iter_mut().find(|h| {
            h.month == usage.month
                && h.tenant == usage.tenant
                && h.agent == usage.agent
                && h.kind == usage.kind
        }) {
            Some(h) => h.count = h.count.saturating_add(usage.count),
            None => held.push(usage),
        }
    }

    /// Writes the usage rows the ledger refused earlier. Returns how many rows are still held (0: all durable).
    /// Shells call it on a schedule; every usage write calls it too.
    pub async fn flush_usage(&self) -> usize {
        let batch = std::mem::take(
            &mut *self
                .pending_usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for row in batch {
            let mut written = false;
            for _ in 0..USAGE_ATTEMPTS {
                if self.ports.usage.record(row.clone()).await.is_ok() {
                    written = true;
                    break;
                }
            }
            if !written {
                self.hold_usage(row);
            }
        }
        self.pending_usage()
    }

    /// Usage rows held because the ledger refused them (a metric and a readiness signal: non-zero means the
    /// ledger is failing; nothing is lost while the process runs).
    #[must_use]
    pub fn pending_usage(&self) -> usize {
        self.pending_usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    // ----- sign-in -----

    /// Resolves an agent's role from their IdP groups, without auditing (for per-request bearer tokens).
    #[must_use]
    pub fn resolve_agent(&self, id: AgentId, groups: &[String]) -> Agent {
        let pseudo = self.pseudo.agent(&id);
        let role = self
            .policy
            .role_for_groups(groups)
            .map(|r| r.name().to_owned());
        Agent { id, pseudo, role }
    }

    /// Rebuilds an agent from a stored session (role name as resolved at sign-in). A role that policy no longer
    /// has resolves to none.
    #[must_use]
    pub fn restore_agent(&self, id: AgentId, role: Option<&str>) -> Agent {
        let pseudo = self.pseudo.agent(&id);
        let role = role
            .and_then(|r| self.policy.role(r))
            .map(|r| r.name().to_owned());
        Agent { id, pseudo, role }
    }

    /// Signs an agent in: maps groups to a role and audits the sign-in.
    ///
    /// # Errors
    /// [`Reason::NoRole`] when no role matches (audited), [`Reason::AuditUnavailable`].
    pub async fn sign_in(
        &self,
        id: AgentId,
        groups: &[String],
        ctx: &RequestContext,
    ) -> Result<Agent, Denial> {
        let agent = self.resolve_agent(id, groups);
        let s = Scope {
            agent: &agent,
            ctx,
            target: None,
            factor: None,
            action: None,
        };
        if agent.role.is_none() {
            return Err(self.deny(&s, Reason::NoRole).await);
        }
        self.must_append(&s, self.event(&s, EventKind::Login, Outcome::Success))
            .await?;
        Ok(agent)
    }

    /// Records a failed sign-in (bad state, nonce, token...) for an unknown agent.
    pub async fn sign_in_failed(&self, ctx: &RequestContext) {
        let b = AuditBuilder::new(
            self.tenant.clone(),
            self.now(),
            EventKind::Login,
            Outcome::Failed,
        )
        .reason(Reason::AuthenticationFailed)
        .request(ctx.request_id.as_ref())
        .client_ip(ctx.client_ip);
        self.record(b).await;
    }

    /// Audits a sign-out.
    pub async fn sign_out(&self, agent: &Agent, ctx: &RequestContext) {
        let s = Scope {
            agent,
            ctx,
            target: None,
            factor: None,
            action: None,
        };
        self.record(self.event(&s, EventKind::Logout, Outcome::Success))
            .await;
    }

    /// Records the policy in force in the audit log (call at start and after a reload).
    ///
    /// # Errors
    /// [`PortError`] when the audit log cannot be written.
    pub async fn announce_policy(&self) -> Result<(), PortError> {
        let b = AuditBuilder::new(
            self.tenant.clone(),
            self.now(),
            EventKind::PolicyLoaded,
            Outcome::Success,
        )
        .detail(AuditDetail::Policy {
            digest: self.policy.source_digest().to_owned(),
        });
        self.ports.audit.append(b.build()).await.map(|_| ())
    }

    /// Audits an arbitrary refusal decided at the edge (CSRF, IP allow-list), so every 403 leaves a trace.
    pub async fn audit_edge_denial(
        &self,
        agent: Option<&Agent>,
        reason: Reason,
        ctx: &RequestContext,
    ) {
        let mut b = AuditBuilder::new(
            self.tenant.clone(),
            self.now(),
            EventKind::Denied,
            Outcome::Denied,
        )
        .reason(reason)
        .request(ctx.request_id.as_ref())
        .client_ip(ctx.client_ip);
        if let Some(a) = agent {
            b = b.agent(&a.pseudo);
        }
        self.record(b).await;
    }

    // ----- lookup -----

    /// Searches for callers.
    ///
    /// # Errors
    /// Role, rate-limit, IdP and audit denials.
    pub async fn search(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        query: &UserQuery,
    ) -> Result<Vec<UserRecord>, Denial> {
        let s = Scope {
            agent,
            ctx,
            target: None,
            factor: None,
            action: None,
        };
        self.authorize(&s, Permission::Lookup).await?;
        self.lookup_quota(&s).await?;
        let users = self
            .idp_or_deny(&s, self.ports.idp.find_users(query, SEARCH_LIMIT).await)
            .await?;
        self.must_append(&s, self.event(&s, EventKind::Lookup, Outcome::Success))
            .await?;
        Ok(users)
    }

    /// Builds the caller card: account, factors with assurance and acceptance, risk facts, and per action what
    /// policy requires.
    ///
    /// # Errors
    /// Role, rate-limit, not-found, IdP and audit denials.
    pub async fn lookup(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
    ) -> Result<CallerCard, Denial> {
        let target = self.pseudo.subject(subject);
        let s = Scope {
            agent,
            ctx,
            target: Some(target.clone()),
            factor: None,
            action: None,
        };
        let role = self.authorize(&s, Permission::Lookup).await?;
        self.lookup_quota(&s).await?;
        let idp = &self.ports.idp;
        let fetched = futures::future::try_join4(
            idp.get_user(subject),
            idp.list_factors(subject),
            idp.groups(subject),
            idp.risk_facts(subject),
        )
        .await;
        let (user, factors, groups, risk) = match fetched {
            Ok(v) => v,
            Err(e) => {
                return Err(self
                    .deny_with(&s, Denial::new(idp_reason(&e)), Some(upstream_detail(&e)))
                    .await);
            }
        };
        self.must_append(&s, self.event(&s, EventKind::Lookup, Outcome::Success))
            .await?;

        let caps = idp.capabilities();
        let class = self.policy.classify(&groups);
        let protected = self.policy.is_protected(&groups);
        let active: Vec<FactorInfo> = factors
            .iter()
            .filter(|f| f.status == FactorStatus::Active)
            .cloned()
            .collect();
        let active_kinds: Vec<FactorKind> = active.iter().map(|f| f.kind.clone()).collect();
        let factor_views = factors
            .into_iter()
            .map(|info| {
                let check = if info.status == FactorStatus::Active {
                    self.policy
                        .check_factor(class, &info.kind, &active_kinds, &caps)
                        .map_err(|r| r.reason())
                } else {
                    Err(Reason::FactorNotEnrolled)
                };
                FactorView {
                    assurance: assurance::classify(&info.kind).label(),
                    accepted: check.is_ok() && !protected,
                    refusal: if protected {
                        Some(Reason::ProtectedTarget)
                    } else {
                        check.err()
                    },
                    info,
                }
            })
            .collect();
        let grant = self.live_grant(&agent.pseudo, &target).await;
        let actions = ActionKind::ALL
            .into_iter()
            .map(|kind| {
                let permitted = self.policy.permits(role, Permission::Act(kind));
                let supported = caps.actions.contains(&kind);
                let available_now = permitted
                    && supported
                    && !protected
                    && grant.as_ref().is_some_and(|g| g.actions.contains(&kind));
                ActionView {
                    kind,
                    permitted_for_role: permitted,
                    supported,
                    available_now,
                    explanation: self.policy.explain(
                        Some(role),
                        kind,
                        class,
                        protected,
                        Some(&caps),
                    ),
                }
            })
            .collect();
        let recommended_factor =
            if protected || !self.policy.can_complete(class, &caps, &[], &active_kinds) {
                None
            } else {
                self.policy
                    .preferred_factor(class, &active, &caps)
                    .map(|f| f.id.clone())
            };
        Ok(CallerCard {
            user,
            factors: factor_views,
            risk,
            class,
            protected,
            actions,
            grant,
            recommended_factor,
        })
    }

    async fn live_grant(&self, agent: &PseudoId, target: &PseudoId) -> Option<GrantView> {
        let g = self
            .ports
            .grants
            .find_grant(agent, target)
            .await
            .ok()
            .flatten()?;
        if self.now() >= g.expires_at {
            return None;
        }
        Some(grant_view(&Grant::from_store(g)))
    }

    /// Explains what an action on a caller would require and why, for this agent (or for a role by name, with
    /// no agent, from the command line).
    ///
    /// # Errors
    /// IdP denials when a subject is given and its groups cannot be read.
    pub async fn explain(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: Option<&SubjectId>,
        action: ActionKind,
    ) -> Result<Explanation, Denial> {
        let caps = self.ports.idp.capabilities();
        let (class, protected) = match subject {
            None => (TargetClass::Standard, false),
            Some(id) => {
                // About a real caller it says whether they are privileged or protected: a lookup, so it is
                // authorized, rate-limited and audited like one (no quiet oracle).
                let s = Scope {
                    agent,
                    ctx,
                    target: Some(self.pseudo.subject(id)),
                    factor: None,
                    action: Some(action),
                };
                self.authorize(&s, Permission::Lookup).await?;
                self.lookup_quota(&s).await?;
                let groups = self
                    .idp_or_deny(&s, self.ports.idp.groups(id).await)
                    .await?;
                self.must_append(&s, self.event(&s, EventKind::Lookup, Outcome::Success))
                    .await?;
                (
                    self.policy.classify(&groups),
                    self.policy.is_protected(&groups),
                )
            }
        };
        Ok(self
            .policy
            .explain(self.role_of(agent), action, class, protected, Some(&caps)))
    }

    // ----- verification -----

    /// Starts verifying a caller: checks role, protection, policy and rate limits, then challenges `factor` (or
    /// the factor policy prefers).
    ///
    /// # Errors
    /// Role, protected target, factor policy, rate limit, lockout, IdP and audit denials. No challenge is sent
    /// when any check fails.
    pub async fn begin_verification(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
        factor: Option<&FactorId>,
    ) -> Result<VerificationView, Denial> {
        let target = self.pseudo.subject(subject);
        let s = Scope {
            agent,
            ctx,
            target: Some(target.clone()),
            factor: None,
            action: None,
        };
        self.authorize(&s, Permission::Verify).await?;
        self.refuse_self(&s, subject).await?;
        let class = self.unprotected_class(&s, subject).await?;
        let required = self.policy.factor_rule(class).required();
        let v = Verification::start(NewVerification {
            tenant: self.tenant.clone(),
            agent: agent.pseudo.clone(),
            subject: subject.clone(),
            subject_pseudo: target,
            required_factors: required,
            now: self.now(),
            window: self.policy.verification_window(),
        });
        self.challenge_next(agent, ctx, v.into_record(), factor, class, true)
            .await
    }

    /// Challenges one more factor of a verification that needs more (two-factor policy).
    ///
    /// # Errors
    /// As [`Engine::begin_verification`], plus [`Reason::VerificationNotFound`] and [`Reason::InvalidState`].
    pub async fn continue_verification(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        id: VerificationId,
        factor: Option<&FactorId>,
    ) -> Result<VerificationView, Denial> {
        let (rec, s) = self.load_own(agent, ctx, id).await?;
        self.authorize(&s, Permission::Verify).await?;
        if rec.status != VerificationStatus::Pending {
            return Err(self.deny(&s, Reason::InvalidState).await);
        }
        let class = self.unprotected_class(&s, &rec.subject).await?;
        self.challenge_next(agent, ctx, rec, factor, class, false)
            .await
    }

    async fn challenge_next(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        rec: VerificationRecord,
        factor: Option<&FactorId>,
        class: TargetClass,
        new: bool,
    ) -> Result<VerificationView, Denial> {
        let target = rec.subject_pseudo.clone();
        let mut s = Scope {
            agent,
            ctx,
            target: Some(target.clone()),
            factor: None,
            action: None,
        };
        let AnyVerification::Pending(v) = Verification::from_record(rec) else {
            return Err(self.deny(&s, Reason::InvalidState).await);
        };
        let now = self.now();
        if v.is_expired(now) {
            let rec = v.expire();
            let _ = self.store_verification(&rec, Some(rec.version - 1)).await;
            return Err(self.deny(&s, Reason::VerificationExpired).await);
        }
        self.check_lockout(&s, &target).await?;
        let subject = v.record().subject.clone();
        let factors = self
            .idp_or_deny(&s, self.ports.idp.list_factors(&subject).await)
            .await?;
        let active: Vec<FactorInfo> = factors
            .into_iter()
            .filter(|f| f.status == FactorStatus::Active)
            .collect();
        let caps = self.ports.idp.capabilities();
        // Factors this verification already proved are not candidates for the next one, and a stronger kind
        // already proved does not make a weaker second factor a "downgrade": it is an addition.
        let approved = &v.record().approved;
        let candidates: Vec<FactorInfo> = active
            .iter()
            .filter(|f| !approved.iter().any(|a| a.factor == f.id))
            .cloned()
            .collect();
        let chosen = match factor {
            Some(id) => active.iter().find(|f| &f.id == id).cloned(),
            None => self
                .policy
                .preferred_factor(class, &candidates, &caps)
                .cloned(),
        };
        let Some(chosen) = chosen else {
            let reason = if factor.is_some() {
                Reason::FactorNotEnrolled
            } else {
                Reason::FactorNotAccepted
            };
            return Err(self.deny(&s, reason).await);
        };
        s.factor = Some(chosen.kind.clone());
        if v.record().approved.iter().any(|a| a.factor == chosen.id) {
            // The same factor twice proves nothing new.
            return Err(self.deny(&s, Reason::FactorNotAccepted).await);
        }
        let unproved_kinds: Vec<FactorKind> = active
            .iter()
            .filter(|f| !approved.iter().any(|a| a.kind == f.kind))
            .map(|f| f.kind.clone())
            .collect();
        if let Err(refusal) = self
            .policy
            .check_factor(class, &chosen.kind, &unproved_kinds, &caps)
        {
            return Err(self.deny(&s, refusal.reason()).await);
        }
        // A challenge that can never lead to a grant is only a nuisance push: refuse it before anything is sent.
        let approved_kinds: Vec<FactorKind> = approved.iter().map(|a| a.kind.clone()).collect();
        if !self
            .policy
            .can_complete(class, &caps, &approved_kinds, &unproved_kinds)
        {
            return Err(self.deny(&s, Reason::NotEnoughFactors).await);
        }
        let limits = self.policy.limits();
        let agent_key = rate_key(&["challenge", "agent", agent.pseudo.as_str()])?;
        self.rate(
            &s,
            &agent_key,
            Self::hourly(limits.challenges_per_agent_per_hour),
            "challenges_per_agent",
        )
        .await?;
        let target_key = rate_key(&["challenge", "target", target.as_str()])?;
        self.rate(
            &s,
            &target_key,
            Self::hourly(limits.challenges_per_target_per_hour),
            "challenges_per_target",
        )
        .await?;

        // The challenge is audited before it is sent: no unaudited push.
        self.must_append(
            &s,
            self.event(&s, EventKind::ChallengeStarted, Outcome::Pending),
        )
        .await?;
        let ticket = if needs_start(&chosen.kind) {
            let cctx = ChallengeContext {
                request_id: ctx.request_id.clone(),
            };
            match self.ports.idp.start(&subject, &chosen, &cctx).await {
                Ok(t) => Some(t),
                Err(e) => {
                    let detail = upstream_detail(&e);
                    return Err(self
                        .deny_with(&s, Denial::new(idp_reason(&e)), Some(detail))
                        .await);
                }
            }
        } else {
            None
        };
        let prev = v.record().version;
        let v = v.challenge(chosen.id.clone(), chosen.kind.clone(), ticket, self.now());
        let expected = if new { None } else { Some(prev) };
        if !self.store_verification(v.record(), expected).await {
            return Err(self.deny(&s, Reason::InvalidState).await);
        }
        Ok(self.view(v.record(), None))
    }

    async fn store_verification(&self, rec: &VerificationRecord, expected: Option<u64>) -> bool {
        let ttl = std_dur(rec.expires_at - self.now()) + RECORD_GRACE;
        matches!(
            self.ports.grants.put_verification(rec, expected, ttl).await,
            Ok(true)
        )
    }

    async fn load_own<'a>(
        &self,
        agent: &'a Agent,
        ctx: &'a RequestContext,
        id: VerificationId,
    ) -> Result<(VerificationRecord, Scope<'a>), Denial> {
        let s = Scope {
            agent,
            ctx,
            target: None,
            factor: None,
            action: None,
        };
        let rec = match self.ports.grants.get_verification(id).await {
            Ok(Some(r)) if r.agent == agent.pseudo && r.tenant == self.tenant => r,
            Ok(_) => return Err(self.deny(&s, Reason::VerificationNotFound).await),
            Err(_) => return Err(self.deny(&s, Reason::InvalidState).await),
        };
        let s = Scope {
            target: Some(rec.subject_pseudo.clone()),
            ..s
        };
        Ok((rec, s))
    }

    fn view(&self, rec: &VerificationRecord, grant: Option<&Grant>) -> VerificationView {
        let reason = match rec.status {
            VerificationStatus::Rejected => Some(Reason::ChallengeRejected),
            VerificationStatus::Expired => Some(Reason::VerificationExpired),
            VerificationStatus::Failed => Some(Reason::IdpError),
            _ => None,
        };
        let distinct: BTreeSet<&FactorKind> = rec.approved.iter().map(|a| &a.kind).collect();
        VerificationView {
            id: rec.id,
            status: rec.status,
            factor: rec.challenge.as_ref().map(|c| c.kind.clone()),
            number: rec
                .challenge
                .as_ref()
                .and_then(|c| c.ticket.as_ref())
                .and_then(|t| t.number),
            challenge_expires_at: rec
                .challenge
                .as_ref()
                .and_then(|c| c.ticket.as_ref())
                .map(|t| t.expires_at),
            expires_at: rec.expires_at,
            approved: u8::try_from(distinct.len()).unwrap_or(u8::MAX),
            required: rec.required_factors,
            grant: grant.map(grant_view),
            reason,
        }
    }

    /// Polls the outstanding push-like challenge once and moves the verification on. Mints the grant when the
    /// last required factor is approved.
    ///
    /// # Errors
    /// [`Reason::VerificationNotFound`] (unknown, or another agent's), [`Reason::IdpError`] (no grant is minted
    /// on an IdP error), [`Reason::AuditUnavailable`].
    pub async fn poll_verification(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        id: VerificationId,
    ) -> Result<VerificationView, Denial> {
        let (rec, mut s) = self.load_own(agent, ctx, id).await?;
        let v = match Verification::from_record(rec) {
            AnyVerification::Challenged(v) => v,
            AnyVerification::Verified(v) => {
                let rec = v.into_record();
                let grant = self.current_grant(&rec).await;
                return Ok(self.view(&rec, grant.as_ref()));
            }
            AnyVerification::Pending(v) => return Ok(self.view(v.record(), None)),
            AnyVerification::Ended(rec) => return Ok(self.view(&rec, None)),
        };
        let prev = v.record().version;
        s.factor = v.outstanding().map(|c| c.kind.clone());
        if v.is_expired(self.now()) {
            let rec = v.expire();
            if self.store_verification(&rec, Some(prev)).await {
                self.record(
                    self.event(&s, EventKind::ChallengeResult, Outcome::Rejected)
                        .reason(Reason::VerificationExpired),
                )
                .await;
            }
            return Ok(self.view(&rec, None));
        }
        let Some(ticket) = v.outstanding().and_then(|c| c.ticket.clone()) else {
            // A code factor: nothing to poll; the agent submits the code.
            return Ok(self.view(v.record(), None));
        };
        let state = match self.ports.idp.poll(&ticket).await {
            Ok(st) => st,
            Err(e) => {
                return Err(self
                    .deny_with(&s, Denial::new(Reason::IdpError), Some(upstream_detail(&e)))
                    .await);
            }
        };
        match state {
            ChallengeState::Waiting => {
                if self.now() >= ticket.expires_at {
                    return self
                        .end_challenge(&s, v.reject(), prev, Reason::ChallengeTimedOut)
                        .await;
                }
                Ok(self.view(v.record(), None))
            }
            ChallengeState::Approved => self.approve(&s, v, prev).await,
            ChallengeState::Rejected => {
                self.end_challenge(&s, v.reject(), prev, Reason::ChallengeRejected)
                    .await
            }
            ChallengeState::TimedOut => {
                let mut rec = v.reject();
                rec.status = VerificationStatus::Expired;
                self.end_challenge(&s, rec, prev, Reason::ChallengeTimedOut)
                    .await
            }
            _ => {
                self.end_challenge(&s, v.fail(), prev, Reason::IdpError)
                    .await
            }
        }
    }

    async fn end_challenge(
        &self,
        s: &Scope<'_>,
        rec: VerificationRecord,
        prev: u64,
        reason: Reason,
    ) -> Result<VerificationView, Denial> {
        if self.store_verification(&rec, Some(prev)).await {
            self.record(
                self.event(s, EventKind::ChallengeResult, outcome_of(reason))
                    .reason(reason),
            )
            .await;
            return Ok(self.view(&rec, None));
        }
        // Another replica moved it first: show what it stored.
        self.reload_view(s, rec.id).await
    }

    async fn reload_view(
        &self,
        s: &Scope<'_>,
        id: VerificationId,
    ) -> Result<VerificationView, Denial> {
        match self.ports.grants.get_verification(id).await {
            Ok(Some(r)) => {
                let g = self.current_grant(&r).await;
                Ok(self.view(&r, g.as_ref()))
            }
            _ => Err(self.deny(s, Reason::VerificationNotFound).await),
        }
    }

    /// The live, unused grant a verification minted, if it still exists.
    async fn current_grant(&self, rec: &VerificationRecord) -> Option<Grant> {
        let g = self
            .ports
            .grants
            .find_grant(&rec.agent, &rec.subject_pseudo)
            .await
            .ok()
            .flatten()?;
        (Some(g.id) == rec.grant && self.now() < g.expires_at).then(|| Grant::from_store(g))
    }

    async fn approve(
        &self,
        s: &Scope<'_>,
        v: Verification<crate::verification::Challenged>,
        prev: u64,
    ) -> Result<VerificationView, Denial> {
        // Number matching is observed, not assumed: the provider may say its pushes carry a number, but a push
        // whose challenge came back without one is judged as a plain push (`push_without_number_matching`).
        let mut caps = self.ports.idp.capabilities();
        caps.push_number_matching =
            caps.push_number_matching && v.pushes_number_matched_if_approved();
        let subject = v.record().subject.clone();
        let groups = match self.ports.idp.groups(&subject).await {
            Ok(g) => g,
            Err(e) => {
                return Err(self
                    .deny_with(s, Denial::new(Reason::IdpError), Some(upstream_detail(&e)))
                    .await);
            }
        };
        if self.policy.is_protected(&groups) {
            return Err(self.deny(s, Reason::ProtectedTarget).await);
        }
        let class = self.policy.classify(&groups);
        let needed = self
            .policy
            .factors_still_needed(class, &caps, &v.kinds_if_approved());
        let now = self.now();
        match v.approve(now, needed) {
            Approval::NeedMore(p) => {
                // Policy may need more than the configured count (e.g. a push without number matching).
                let mut p = p;
                let distinct: BTreeSet<&FactorKind> =
                    p.record().approved.iter().map(|a| &a.kind).collect();
                let approved = u8::try_from(distinct.len()).unwrap_or(u8::MAX);
                p.raise_required(approved.saturating_add(needed));
                if !self.store_verification(p.record(), Some(prev)).await {
                    return self.reload_view(s, p.record().id).await;
                }
                let detail = AuditDetail::Factors {
                    approved: u8::try_from(p.record().approved.len()).unwrap_or(u8::MAX),
                    required: p.record().required_factors,
                };
                self.record(
                    self.event(s, EventKind::ChallengeResult, Outcome::Success)
                        .detail(detail),
                )
                .await;
                Ok(self.view(p.record(), None))
            }
            Approval::Complete(verified) => {
                let role = self.role_of(s.agent);
                let actions: BTreeSet<ActionKind> = role
                    .map(|r| self.policy.permitted_actions(r))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|a| caps.actions.contains(a))
                    .collect();
                let terms = GrantTerms {
                    actions,
                    lifetime: self.policy.grant_lifetime(),
                    single_use: self.policy.single_use_grants(),
                };
                let (grant, rec) = verified.mint_grant(terms, now);
                // Win the state change first, so concurrent polls mint one grant at most.
                if !self.store_verification(&rec, Some(prev)).await {
                    return self.reload_view(s, rec.id).await;
                }
                self.record(self.event(s, EventKind::ChallengeResult, Outcome::Success))
                    .await;
                let grant_ttl = std_dur(grant.expires_at() - now) + RECORD_GRACE;
                if self
                    .ports
                    .grants
                    .put_grant(grant.record(), grant_ttl)
                    .await
                    .is_err()
                {
                    return Err(self.deny(s, Reason::InvalidState).await);
                }
                self.record(self.event(s, EventKind::GrantIssued, Outcome::Success))
                    .await;
                self.record_usage(s.agent, UsageKind::Verification, now)
                    .await;
                Ok(self.view(&rec, Some(&grant)))
            }
        }
    }

    /// Checks a one-time code the caller read out for the outstanding code challenge.
    ///
    /// # Errors
    /// [`Reason::WrongCode`] / [`Reason::CodeReplayed`] (the verification stays open for another try until the
    /// lockout), [`Reason::VerificationLocked`] after too many wrong codes for this caller or by this agent, and
    /// the denials of [`Engine::poll_verification`].
    pub async fn submit_code(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        id: VerificationId,
        code: SecretString,
    ) -> Result<VerificationView, Denial> {
        let (rec, mut s) = self.load_own(agent, ctx, id).await?;
        let target = rec.subject_pseudo.clone();
        let AnyVerification::Challenged(v) = Verification::from_record(rec) else {
            return Err(self.deny(&s, Reason::InvalidState).await);
        };
        let prev = v.record().version;
        let Some(outstanding) = v.outstanding().cloned() else {
            return Err(self.deny(&s, Reason::InvalidState).await);
        };
        s.factor = Some(outstanding.kind.clone());
        if matches!(outstanding.kind, FactorKind::Push) {
            return Err(self.deny(&s, Reason::InvalidState).await);
        }
        if v.is_expired(self.now()) {
            let rec = v.expire();
            let _ = self.store_verification(&rec, Some(prev)).await;
            return Err(self.deny(&s, Reason::VerificationExpired).await);
        }
        // The attempt is counted BEFORE the IdP sees the code (and refunded only if the code is right), so of any
        // number of concurrent submissions, on any number of replicas, at most the policy's number of wrong codes
        // ever reach the IdP.
        let counted = self.count_code_attempt(&s, &target).await?;
        let factor = FactorInfo {
            id: outstanding.factor.clone(),
            kind: outstanding.kind.clone(),
            status: FactorStatus::Active,
            vendor: None,
            label: None,
        };
        let subject = v.record().subject.clone();
        // An IdP error leaves the attempt counted: the code may have been judged (fail closed).
        let verdict = self
            .idp_or_deny(
                &s,
                self.ports.idp.verify_code(&subject, &factor, code).await,
            )
            .await?;
        let reason = match verdict {
            CodeVerdict::Accepted => {
                self.refund_code_attempt(&counted).await;
                self.record(self.event(&s, EventKind::CodeSubmitted, Outcome::Success))
                    .await;
                return self.approve(&s, v, prev).await;
            }
            CodeVerdict::Replayed => Reason::CodeReplayed,
            CodeVerdict::Locked => Reason::VerificationLocked,
            _ => Reason::WrongCode,
        };
        let b = self
            .event(&s, EventKind::CodeSubmitted, Outcome::Rejected)
            .reason(reason);
        self.record(b).await;
        if reason == Reason::VerificationLocked {
            return Err(self.deny(&s, Reason::VerificationLocked).await);
        }
        // The last allowed failure locks verification: say so now rather than on the next try.
        self.check_lockout(&s, &target).await?;
        Err(Denial::new(reason))
    }

    /// The lockout keys a code attempt counts against: the caller, and the agent.
    fn code_keys(&self, agent: &Agent, target: &PseudoId) -> Result<[RateKey; 2], Denial> {
        Ok([
            rate_key(&["code", "target", target.as_str()])?,
            rate_key(&["code", "agent", agent.pseudo.as_str()])?,
        ])
    }

    /// Counts one code attempt against the caller and the agent, atomically in the rate limiter. Refused (and
    /// nothing left counted) when either is locked out or the limiter cannot be reached.
    async fn count_code_attempt(
        &self,
        s: &Scope<'_>,
        target: &PseudoId,
    ) -> Result<Vec<RateKey>, Denial> {
        let rule = self.lockout_rule();
        let mut counted = Vec::with_capacity(2);
        for key in self.code_keys(s.agent, target)? {
            let refused = match self.ports.rate.hit(&key, rule).await {
                Ok(RateDecision::Allowed { .. }) => {
                    counted.push(key);
                    continue;
                }
                Ok(RateDecision::Limited { retry_after }) => {
                    Denial::after(Reason::VerificationLocked, retry_after)
                }
                Err(_) => Denial::new(Reason::VerificationLocked),
            };
            self.refund_code_attempt(&counted).await;
            return Err(self.deny_with(s, refused, None).await);
        }
        Ok(counted)
    }

    /// Takes back a counted code attempt (the code was right). A refund that fails leaves the attempt counted:
    /// the safe side.
    async fn refund_code_attempt(&self, counted: &[RateKey]) {
        let rule = self.lockout_rule();
        for key in counted {
            // An unrefunded attempt only makes the lockout stricter (the safe side): not an error.
            self.ports.rate.undo(key, rule).await.ok();
        }
    }

    // ----- actions -----

    /// Runs a high-risk action on a caller, only under a live grant for this agent and this caller.
    ///
    /// Order: role, IdP capability, protection, grant (same agent, same caller, unexpired, covering the action;
    /// consumed atomically when single-use), audit intent (durable; no intent, no action), the action, audit
    /// outcome. A failed IdP call is never retried here (lifecycle calls are not idempotent).
    ///
    /// # Errors
    /// Every refusal reason of the grant rules, [`Reason::AuditUnavailable`], [`Reason::IdpError`].
    pub async fn perform_action(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        subject: &SubjectId,
        action: Action,
    ) -> Result<ActionOutcome, Denial> {
        let kind = action.kind();
        let target = self.pseudo.subject(subject);
        let s = Scope {
            agent,
            ctx,
            target: Some(target.clone()),
            factor: None,
            action: Some(kind),
        };
        self.authorize(&s, Permission::Act(kind)).await?;
        self.refuse_self(&s, subject).await?;
        if !self.ports.idp.capabilities().actions.contains(&kind) {
            return Err(self.deny(&s, Reason::Unsupported).await);
        }
        let groups = self
            .idp_or_deny(&s, self.ports.idp.groups(subject).await)
            .await?;
        if self.policy.is_protected(&groups) {
            return Err(self.deny(&s, Reason::ProtectedTarget).await);
        }
        let now = self.now();
        // One atomic step decides and spends: no find-then-take here, so two requests can never both act.
        let grant = match self
            .ports
            .grants
            .consume(&agent.pseudo, &target, kind, now)
            .await
        {
            Ok(GrantConsumption::Consumed(g)) => Grant::from_store(g),
            Ok(GrantConsumption::AlreadyUsed) => {
                return Err(self.deny(&s, Reason::GrantUsed).await);
            }
            Ok(GrantConsumption::Expired) => {
                return Err(self.deny(&s, Reason::GrantExpired).await);
            }
            Ok(GrantConsumption::DoesNotCover) => {
                return Err(self.deny(&s, Reason::GrantDoesNotCoverAction).await);
            }
            Ok(_) | Err(_) => return Err(self.deny(&s, Reason::NoLiveGrant).await),
        };
        // Defence in depth: the store is keyed by agent and caller, but check the binding itself. A grant that
        // fails here stays spent (fail closed).
        if grant.agent() != &agent.pseudo {
            return Err(self.deny(&s, Reason::GrantOtherAgent).await);
        }
        if grant.subject() != &target || grant.record().tenant != self.tenant {
            return Err(self.deny(&s, Reason::GrantOtherSubject).await);
        }
        let ttl = std_dur(grant.expires_at() - now) + RECORD_GRACE;
        // Policy, not the client, decides the terms of a Temporary Access Pass.
        let action = match action {
            Action::IssueTemporaryAccessPass { .. } => {
                let tap = self.policy.temporary_access_pass();
                Action::IssueTemporaryAccessPass {
                    lifetime_minutes: tap.lifetime_minutes,
                    one_time: tap.one_time,
                }
            }
            other => other,
        };
        if let Err(d) = self
            .must_append(
                &s,
                self.event(&s, EventKind::ActionIntent, Outcome::Pending),
            )
            .await
        {
            // Nothing ran: give the grant back (only if its "used" marker is still ours). If even that fails the
            // grant stays spent: the agent verifies again, which is the safe side.
            if grant.single_use() {
                self.ports
                    .grants
                    .restore(grant.record(), ttl)
                    .await
                    .unwrap_or(false);
            }
            return Err(d);
        }
        match self.ports.idp.execute(subject, &action).await {
            Ok(receipt) => {
                self.record(self.event(&s, EventKind::ActionOutcome, Outcome::Success))
                    .await;
                let usage_recorded = self.record_usage(agent, UsageKind::Action, now).await;
                Ok(ActionOutcome {
                    receipt,
                    usage_recorded,
                })
            }
            Err(e) => {
                let reason = match e {
                    PortError::Unsupported => Reason::Unsupported,
                    PortError::InvalidState => Reason::InvalidState,
                    _ => Reason::IdpError,
                };
                let b = self
                    .event(&s, EventKind::ActionOutcome, Outcome::Failed)
                    .reason(reason)
                    .detail(upstream_detail(&e));
                self.record(b).await;
                Err(Denial::new(reason))
            }
        }
    }

    // ----- retention -----

    /// Purges audit events and usage records older than the retention periods, auditing each purge.
    ///
    /// # Errors
    /// [`PortError`] when a store cannot be written.
    pub async fn purge_expired(&self) -> Result<(u64, u64), PortError> {
        let now = self.now();
        let audit_before = now - self.retention.audit;
        let usage_before = now - self.retention.usage;
        let a = self.ports.audit.purge_before(audit_before).await?;
        self.purge_event("audit", a.removed, audit_before).await?;
        let u = self.ports.usage.purge_before(usage_before).await?;
        self.purge_event("usage", u.removed, usage_before).await?;
        Ok((a.removed, u.removed))
    }

    async fn purge_event(
        &self,
        store: &str,
        removed: u64,
        before: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let b = AuditBuilder::new(
            self.tenant.clone(),
            self.now(),
            EventKind::Purge,
            Outcome::Success,
        )
        .detail(AuditDetail::Purge {
            store: store.to_owned(),
            removed,
            before: chrono::SubsecRound::trunc_subsecs(before, 6),
        });
        self.ports.audit.append(b.build()).await.map(|_| ())
    }
}

fn grant_view(g: &Grant) -> GrantView {
    GrantView {
        expires_at: g.expires_at(),
        single_use: g.single_use(),
        actions: g.actions().clone(),
        factors: g.factors().to_vec(),
        assurance: assurance::verified_label(g.factors()),
    }
}
