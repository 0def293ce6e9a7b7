//! The guard of `fctr contract-test --mutating` against a real tenant: every test user must be in the group named
//! by `[contract_test] allowed_group` (read through the `Directory::groups` port before anything mutating runs),
//! and every lifecycle call is written to the configured audit store (agent: the pseudonym of `cli`; target: the
//! user's pseudonym; an intent before the call, the outcome after; no audit, no call).

use crate::{Fail, config};
use async_trait::async_trait;
use fctr_core::Pseudonymizer;
use fctr_ports::{
    Action, ActionReceipt, AgentId, AuditEvent, AuditLog as _, Capabilities, ChallengeContext,
    ChallengeState, ChallengeTicket, Challenger, CodeVerdict, Directory, EventKind, FactorInfo,
    GroupRef, IdentityProvider, Lifecycle, Outcome, PortError, PseudoId, RiskFacts, SecretString,
    SubjectId, TenantId, UserQuery, UserRecord,
};
use fctr_wiring::DurableStore;
use fctr_wiring::config::Config;
use std::path::Path;
use std::sync::Arc;

/// Refuses unless every subject is a member of `[contract_test] allowed_group`.
pub(crate) async fn check_members(
    path: &Path,
    cfg: &Config,
    idp: &dyn IdentityProvider,
    subjects: &[SubjectId],
) -> Result<(), Fail> {
    let Some(group) = cfg
        .contract_test
        .as_ref()
        .map(|c| c.allowed_group.trim().to_owned())
        .filter(|g| !g.is_empty())
    else {
        return Err(Fail::usage(
            format!(
                "--mutating against a real tenant needs [contract_test] allowed_group in {}",
                path.display()
            ),
            "create a group holding only test accounts, put the test users in it, and name it: \
             [contract_test] allowed_group = \"fctr-contract-test\"",
        ));
    };
    for s in subjects {
        let groups = idp.groups(s).await.map_err(|e| {
            crate::stack::port_error("contract-test: reading the test user's groups", &e)
        })?;
        if !groups.iter().any(|g| g.name == group || g.id == group) {
            return Err(Fail::check(
                format!(
                    "a test user is not a member of the allowed group `{group}`: nothing was changed"
                ),
                "add the test account to that group (only test accounts belong there), or pick another user",
            ));
        }
    }
    Ok(())
}

/// The configured audit store, the pseudonymizer and the tenant, for [`Audited`].
pub(crate) async fn audit_parts(
    path: &Path,
    cfg: &Config,
) -> Result<(DurableStore, Pseudonymizer, TenantId), Fail> {
    let audit = cfg.audit.as_ref().ok_or_else(|| {
        Fail::usage(
            format!(
                "--mutating against a real tenant needs [audit] (sqlite_path or postgres_url_env) in {}",
                path.display()
            ),
            "every mutating call is audited: configure the portal's audit store",
        )
    })?;
    let target = config::audit_section_target(path, audit)?;
    let store = crate::stack::open_target(&target, false, None).await?;
    let pseudo = config::pseudonymizer(path, cfg)?;
    let tenant = config::tenant(Some(cfg))?;
    Ok((store, pseudo, tenant))
}

/// An identity provider whose lifecycle calls are audited; everything else passes through.
pub(crate) struct Audited {
    inner: Arc<dyn IdentityProvider>,
    store: DurableStore,
    pseudo: Pseudonymizer,
    agent: PseudoId,
    tenant: TenantId,
}

impl Audited {
    pub(crate) fn new(
        inner: Arc<dyn IdentityProvider>,
        store: DurableStore,
        pseudo: Pseudonymizer,
        tenant: TenantId,
    ) -> Result<Self, Fail> {
        let agent = AgentId::parse("cli")
            .map(|a| pseudo.agent(&a))
            .map_err(|e| Fail::usage(format!("agent id: {e}"), "report a bug"))?;
        Ok(Self {
            inner,
            store,
            pseudo,
            agent,
            tenant,
        })
    }

    pub(crate) fn store(&self) -> &DurableStore {
        &self.store
    }

    fn event(
        &self,
        kind: EventKind,
        outcome: Outcome,
        subject: &SubjectId,
        action: &Action,
    ) -> AuditEvent {
        let mut e = AuditEvent::new(self.tenant.clone(), chrono::Utc::now(), kind, outcome);
        e.agent = Some(self.agent.clone());
        e.target = Some(self.pseudo.subject(subject));
        e.action = Some(action.kind());
        e
    }
}

#[async_trait]
impl Directory for Audited {
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        self.inner.find_users(query, limit).await
    }
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.inner.get_user(id).await
    }
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        self.inner.list_factors(id).await
    }
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        self.inner.groups(id).await
    }
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        self.inner.risk_facts(id).await
    }
}

#[async_trait]
impl Challenger for Audited {
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        self.inner.start(subject, factor, context).await
    }
    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        self.inner.poll(ticket).await
    }
    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        self.inner.verify_code(subject, factor, code).await
    }
}

#[async_trait]
impl Lifecycle for Audited {
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        // No durable intent, no call.
        self.store
            .append(self.event(EventKind::ActionIntent, Outcome::Success, subject, action))
            .await?;
        let result = self.inner.execute(subject, action).await;
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failed
        };
        self.store
            .append(self.event(EventKind::ActionOutcome, outcome, subject, action))
            .await?;
        result
    }
}

#[async_trait]
impl IdentityProvider for Audited {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}
