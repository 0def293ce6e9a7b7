//! [`Engine::builder`]: the one way shells, embedders, tests and benches put an engine together.
//!
//! Every port but the clock must be given (the clock defaults to [`SystemClock`]); a missing one is a typed
//! error naming it, never a panic and never a silent in-memory default (the core knows no adapters).

use super::{Engine, Ports, Retention};
use crate::policy::Policy;
use crate::pseudonym::Pseudonymizer;
use fctr_ports::{
    ApprovalStore, AuditLog, Clock, GrantStore, IdentityProvider, RateLimiter, SystemClock,
    TenantId, UsageLedger,
};
use std::sync::Arc;

/// A part the builder was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the engine needs {0}: none was given to the builder")]
pub struct MissingPart(pub &'static str);

/// Builds an [`Engine`]: `Engine::builder().idp(…).audit(…)…build()`.
#[derive(Default)]
#[must_use]
pub struct EngineBuilder {
    idp: Option<Arc<dyn IdentityProvider>>,
    audit: Option<Arc<dyn AuditLog>>,
    usage: Option<Arc<dyn UsageLedger>>,
    grants: Option<Arc<dyn GrantStore>>,
    rate: Option<Arc<dyn RateLimiter>>,
    clock: Option<Arc<dyn Clock>>,
    approvals: Option<Arc<dyn ApprovalStore>>,
    policy: Option<Arc<Policy>>,
    pseudo: Option<Pseudonymizer>,
    tenant: Option<TenantId>,
    retention: Retention,
}

impl Engine {
    /// A builder for an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }
}

impl EngineBuilder {
    /// All six ports at once (replaces any given one by one).
    pub fn ports(self, ports: Ports) -> Self {
        self.idp(ports.idp)
            .audit(ports.audit)
            .usage(ports.usage)
            .grants(ports.grants)
            .rate(ports.rate)
            .clock(ports.clock)
    }

    /// The identity provider.
    pub fn idp(mut self, idp: Arc<dyn IdentityProvider>) -> Self {
        self.idp = Some(idp);
        self
    }

    /// The audit log.
    pub fn audit(mut self, audit: Arc<dyn AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// The usage ledger.
    pub fn usage(mut self, usage: Arc<dyn UsageLedger>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The store of verifications and grants.
    pub fn grants(mut self, grants: Arc<dyn GrantStore>) -> Self {
        self.grants = Some(grants);
        self
    }

    /// The rate limiter.
    pub fn rate(mut self, rate: Arc<dyn RateLimiter>) -> Self {
        self.rate = Some(rate);
        self
    }

    /// The store of four-eyes approval requests (required when the policy's `[four_eyes]` holds anything back).
    pub fn approvals(mut self, approvals: Arc<dyn ApprovalStore>) -> Self {
        self.approvals = Some(approvals);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The policy in force.
    pub fn policy(mut self, policy: impl Into<Arc<Policy>>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// The pseudonymizer (keyed hash of identifiers for audit and usage).
    pub fn pseudonymizer(mut self, pseudo: Pseudonymizer) -> Self {
        self.pseudo = Some(pseudo);
        self
    }

    /// The tenant.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// The retention periods (default: [`Retention::default`]).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The engine.
    ///
    /// # Errors
    /// [`MissingPart`] naming the first part that was not given; an approval store is a part when the policy
    /// holds actions back for four-eyes approval.
    pub fn build(self) -> Result<Engine, MissingPart> {
        let ports = Ports {
            idp: self.idp.ok_or(MissingPart("an identity provider"))?,
            audit: self.audit.ok_or(MissingPart("an audit log"))?,
            usage: self.usage.ok_or(MissingPart("a usage ledger"))?,
            grants: self.grants.ok_or(MissingPart("a grant store"))?,
            rate: self.rate.ok_or(MissingPart("a rate limiter"))?,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        };
        let policy = self.policy.ok_or(MissingPart("a policy"))?;
        let pseudo = self.pseudo.ok_or(MissingPart("a pseudonymizer"))?;
        let tenant = self.tenant.ok_or(MissingPart("a tenant"))?;
        if policy.four_eyes().enabled() && self.approvals.is_none() {
            return Err(MissingPart(
                "an approval store (the policy's [four_eyes] holds actions back)",
            ));
        }
        let mut engine = Engine::new(ports, policy, pseudo, tenant).with_retention(self.retention);
        if let Some(a) = self.approvals {
            engine = engine.with_approvals(a);
        }
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use fctr_memory::{MemoryAuditLog, MemoryGrantStore, MemoryRateLimiter, MemoryUsageLedger};
    use fctr_ports::KeyId;
    use fctr_ports::mock::MockIdentityProvider;
    use secrecy::SecretString;

    fn complete() -> EngineBuilder {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Engine::builder()
            .idp(Arc::new(MockIdentityProvider::new()))
            .audit(Arc::new(MemoryAuditLog::new()))
            .usage(Arc::new(MemoryUsageLedger::new()))
            .grants(Arc::new(MemoryGrantStore::new(clock.clone())))
            .rate(Arc::new(MemoryRateLimiter::new(clock)))
            .policy(Policy::default())
            .pseudonymizer(
                Pseudonymizer::new(
                    KeyId::parse("k1").unwrap(),
                    &SecretString::from("k".repeat(32)),
                )
                .unwrap(),
            )
            .tenant(TenantId::parse("acme").unwrap())
    }

    #[test]
    fn a_complete_builder_builds_with_the_given_parts() {
        let days = Retention {
            audit: chrono::Duration::days(7),
            ..Retention::default()
        };
        let engine = complete().retention(days).build().unwrap();
        assert_eq!(engine.tenant().as_str(), "acme");
        assert_eq!(engine.retention(), days);
        assert_eq!(
            Engine::builder().build().err(),
            Some(MissingPart("an identity provider"))
        );
    }

    #[test]
    fn a_four_eyes_policy_needs_an_approval_store() {
        let held = Policy::parse(
            "[four_eyes]\nactions = [\"reset_factors\"]\napprover_roles = [\"tier3\"]\n",
        )
        .unwrap();
        let err = complete().policy(held.clone()).build().err().unwrap();
        assert!(err.0.contains("approval store"), "{err}");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        complete()
            .policy(held)
            .approvals(Arc::new(fctr_memory::MemoryApprovalStore::new(clock)))
            .build()
            .unwrap();
    }

    #[test]
    fn each_missing_part_is_named() {
        type Drop = fn(EngineBuilder) -> EngineBuilder;
        let cases: [(Drop, &str); 4] = [
            (|b| EngineBuilder { audit: None, ..b }, "an audit log"),
            (|b| EngineBuilder { rate: None, ..b }, "a rate limiter"),
            (|b| EngineBuilder { policy: None, ..b }, "a policy"),
            (|b| EngineBuilder { tenant: None, ..b }, "a tenant"),
        ];
        for (drop_part, name) in cases {
            let err = drop_part(complete()).build().err().unwrap();
            assert_eq!(err, MissingPart(name));
            assert!(err.to_string().contains(name));
        }
    }
}
