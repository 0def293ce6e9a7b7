//! Rate limits and the wrong-code lockout: what is counted ([`RateScope`]), against which rule, and the audited
//! refusal when a limit is reached.
//!
//! The keys a scope produces are stored by the rate limiter (in Redis, across replicas and across a deploy), so
//! they must never change: `rate_keys_are_byte_identical` pins them.

use super::call::Call;
use super::{Agent, Engine, bad_key};
use crate::denial::Denial;
use crate::policy::Policy;
use fctr_ports::{AuditDetail, PseudoId, RateDecision, RateKey, RateRule, Reason};
use std::time::Duration;

/// What one rate-limit counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateScope<'a> {
    /// Lookups (and searches, and explanations about a caller) by one agent, per hour.
    LookupsByAgent(&'a PseudoId),
    /// Challenges sent by one agent, per hour.
    ChallengesByAgent(&'a PseudoId),
    /// Challenges sent to one caller by any agent, per hour (stops push bombing).
    ChallengesToTarget(&'a PseudoId),
    /// Wrong codes for one caller, per lockout period.
    CodesForTarget(&'a PseudoId),
    /// Wrong codes entered by one agent, per lockout period.
    CodesByAgent(&'a PseudoId),
    /// Unlocks of one caller before verification (the locked-out procedure), by any agent, per 24 hours.
    UnlocksForTarget(&'a PseudoId),
    /// Completed verifications of one caller by any agent in the last hour (a counter, never a refusal: the card
    /// warns when another agent verified this caller recently).
    VerifiedTarget(&'a PseudoId),
    /// Completed verifications of one caller by one agent in the last hour (the agent's own share of the above).
    VerifiedPair(&'a PseudoId, &'a PseudoId),
}

/// The window of the "recently verified" counters.
const RECENT: Duration = Duration::from_secs(3600);
/// A limit the "recently verified" counters never reach.
const COUNTER_LIMIT: u32 = 100_000;

impl RateScope<'_> {
    /// The limiter's key: `<what>:<whose>:<pseudonym>`.
    pub(crate) fn key(&self) -> Result<RateKey, fctr_ports::IdError> {
        if let Self::VerifiedPair(agent, target) = self {
            return RateKey::parse(format!(
                "verified:pair:{}:{}",
                agent.as_str(),
                target.as_str()
            ));
        }
        let (what, whose, p) = match self {
            Self::LookupsByAgent(p) => ("lookup", "agent", p),
            Self::ChallengesByAgent(p) => ("challenge", "agent", p),
            Self::ChallengesToTarget(p) => ("challenge", "target", p),
            Self::CodesForTarget(p) => ("code", "target", p),
            Self::CodesByAgent(p) => ("code", "agent", p),
            Self::UnlocksForTarget(p) => ("unlock", "target", p),
            Self::VerifiedTarget(p) | Self::VerifiedPair(_, p) => ("verified", "target", p),
        };
        RateKey::parse(format!("{what}:{whose}:{}", p.as_str()))
    }

    /// The rule policy sets for this scope.
    pub(crate) fn rule(&self, policy: &Policy) -> RateRule {
        let limits = policy.limits();
        let hourly = |limit| RateRule {
            limit,
            window: Duration::from_secs(3600),
        };
        match self {
            Self::LookupsByAgent(_) => hourly(limits.lookups_per_agent_per_hour),
            Self::ChallengesByAgent(_) => hourly(limits.challenges_per_agent_per_hour),
            Self::ChallengesToTarget(_) => hourly(limits.challenges_per_target_per_hour),
            Self::CodesForTarget(_) | Self::CodesByAgent(_) => RateRule {
                limit: limits.wrong_codes_before_lockout,
                window: Duration::from_secs(u64::from(limits.lockout_minutes) * 60),
            },
            Self::UnlocksForTarget(_) => RateRule {
                limit: policy.locked_out().unlocks_per_caller_per_day,
                window: Duration::from_secs(24 * 3600),
            },
            Self::VerifiedTarget(_) | Self::VerifiedPair(..) => RateRule {
                limit: COUNTER_LIMIT,
                window: RECENT,
            },
        }
    }

    /// The policy setting's name, as the audit detail of a refusal names it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::LookupsByAgent(_) => "lookups_per_agent",
            Self::ChallengesByAgent(_) => "challenges_per_agent",
            Self::ChallengesToTarget(_) => "challenges_per_target",
            Self::CodesForTarget(_) | Self::CodesByAgent(_) => "wrong_codes_before_lockout",
            Self::UnlocksForTarget(_) => "unlocks_per_caller_per_day",
            Self::VerifiedTarget(_) | Self::VerifiedPair(..) => "recently_verified",
        }
    }

    /// The lockout scopes a code attempt counts against: the caller, and the agent.
    fn codes<'a>(agent: &'a Agent, target: &'a PseudoId) -> [RateScope<'a>; 2] {
        [
            RateScope::CodesForTarget(target),
            RateScope::CodesByAgent(&agent.pseudo),
        ]
    }
}

/// A wait from the limiter, in the crate's duration type.
fn wait(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Engine {
    /// Counts one hit against `scope`; an audited refusal (with the rule's name and the wait) when over it.
    pub(crate) async fn rate(&self, c: &Call<'_>, scope: RateScope<'_>) -> Result<(), Denial> {
        let key = scope.key().map_err(bad_key)?;
        match self.ports.rate.hit(&key, scope.rule(&self.policy)).await {
            Ok(RateDecision::Allowed { .. }) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => {
                let detail = AuditDetail::RateLimit {
                    rule: scope.name().to_owned(),
                    retry_after_secs: retry_after.as_secs(),
                };
                Err(self
                    .deny_with(
                        c,
                        Denial::after(Reason::RateLimited, wait(retry_after)),
                        Some(detail),
                    )
                    .await)
            }
            // The limiter is down: fail closed.
            Err(_) => Err(self.deny(c, Reason::StateUnavailable).await),
        }
    }

    /// Counts a lookup against the agent's hourly quota.
    pub(crate) async fn lookup_quota(&self, c: &Call<'_>) -> Result<(), Denial> {
        self.rate(c, RateScope::LookupsByAgent(&c.agent().pseudo))
            .await?;
        self.count_lookup(c).await;
        Ok(())
    }

    /// Refuses (audited) when the caller or the agent is locked out after wrong codes, without counting.
    pub(crate) async fn check_lockout(
        &self,
        c: &Call<'_>,
        target: &PseudoId,
    ) -> Result<(), Denial> {
        for scope in RateScope::codes(c.agent(), target) {
            let key = scope.key().map_err(bad_key)?;
            match self.ports.rate.peek(&key, scope.rule(&self.policy)).await {
                Ok(RateDecision::Allowed { .. }) => {}
                Ok(RateDecision::Limited { retry_after }) => {
                    return Err(self
                        .deny_with(
                            c,
                            Denial::after(Reason::VerificationLocked, wait(retry_after)),
                            None,
                        )
                        .await);
                }
                Err(_) => return Err(self.deny(c, Reason::StateUnavailable).await),
            }
        }
        Ok(())
    }

    /// Counts a completed verification of `target` by `agent` (best effort: a counter the card reads, not a
    /// rule).
    pub(crate) async fn count_verified(&self, agent: &PseudoId, target: &PseudoId) {
        for scope in [
            RateScope::VerifiedTarget(target),
            RateScope::VerifiedPair(agent, target),
        ] {
            if let Ok(key) = scope.key() {
                let _ = self.ports.rate.hit(&key, scope.rule(&self.policy)).await;
            }
        }
    }

    /// Hits against `scope` in its window, without counting one (0 when unknown).
    async fn count_of(&self, scope: RateScope<'_>) -> u32 {
        let Ok(key) = scope.key() else { return 0 };
        let rule = scope.rule(&self.policy);
        match self.ports.rate.peek(&key, rule).await {
            Ok(RateDecision::Allowed { remaining }) => rule.limit.saturating_sub(remaining),
            Ok(RateDecision::Limited { .. }) => rule.limit,
            Err(_) => 0,
        }
    }

    /// Whether another agent completed a verification of `target` in the last hour.
    pub(crate) async fn verified_by_another_recently(
        &self,
        agent: &PseudoId,
        target: &PseudoId,
    ) -> bool {
        let (all, own) = futures::join!(
            self.count_of(RateScope::VerifiedTarget(target)),
            self.count_of(RateScope::VerifiedPair(agent, target)),
        );
        all > own
    }

    /// Whether the daily limit of unlocks before verification of `target` is used up (without counting one).
    pub(crate) async fn unlocks_used_up(&self, target: &PseudoId) -> bool {
        let scope = RateScope::UnlocksForTarget(target);
        let Ok(key) = scope.key() else { return true };
        !matches!(
            self.ports.rate.peek(&key, scope.rule(&self.policy)).await,
            Ok(RateDecision::Allowed { .. })
        )
    }

    /// How long until another challenge may be sent to `target` (`None`: one may be sent now).
    pub(crate) async fn challenge_wait(&self, target: &PseudoId) -> Option<chrono::Duration> {
        let scope = RateScope::ChallengesToTarget(target);
        let key = scope.key().ok()?;
        match self.ports.rate.peek(&key, scope.rule(&self.policy)).await {
            Ok(RateDecision::Limited { retry_after }) => Some(wait(retry_after)),
            _ => None,
        }
    }

    /// Wrong codes the agent may still enter for this caller before the lockout (the smaller of the caller's and
    /// the agent's budget), without counting anything. `None` when the limiter cannot be read.
    pub(crate) async fn codes_left(&self, agent: &Agent, target: &PseudoId) -> Option<u32> {
        let mut left = u32::MAX;
        for scope in RateScope::codes(agent, target) {
            let key = scope.key().ok()?;
            match self.ports.rate.peek(&key, scope.rule(&self.policy)).await {
                Ok(RateDecision::Allowed { remaining }) => left = left.min(remaining),
                Ok(RateDecision::Limited { .. }) => return Some(0),
                Err(_) => return None,
            }
        }
        Some(left)
    }

    /// Counts one code attempt against the caller and the agent, atomically in the rate limiter. Refused (and
    /// nothing left counted) when either is locked out or the limiter cannot be reached.
    pub(crate) async fn count_code_attempt(
        &self,
        c: &Call<'_>,
        target: &PseudoId,
    ) -> Result<Vec<(RateKey, RateRule)>, Denial> {
        let mut counted = Vec::with_capacity(2);
        for scope in RateScope::codes(c.agent(), target) {
            let key = scope.key().map_err(bad_key)?;
            let rule = scope.rule(&self.policy);
            let refused = match self.ports.rate.hit(&key, rule).await {
                Ok(RateDecision::Allowed { .. }) => {
                    counted.push((key, rule));
                    continue;
                }
                Ok(RateDecision::Limited { retry_after }) => {
                    Denial::after(Reason::VerificationLocked, wait(retry_after))
                }
                Err(_) => Denial::new(Reason::StateUnavailable),
            };
            self.refund_code_attempt(&counted).await;
            return Err(self.deny_with(c, refused, None).await);
        }
        Ok(counted)
    }

    /// Takes back a counted code attempt (the code was right).
    pub(crate) async fn refund_code_attempt(&self, counted: &[(RateKey, RateRule)]) {
        for (key, rule) in counted {
            // A refund that fails leaves the attempt counted: that only makes the lockout stricter (the safe
            // side), so it is not the request's error.
            self.ports.rate.undo(key, *rule).await.ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores hold these keys across a deploy: they are pinned byte for byte.
    #[test]
    fn rate_keys_are_byte_identical() {
        let p = PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let cases = [
            (RateScope::LookupsByAgent(&p), "lookup:agent:"),
            (RateScope::ChallengesByAgent(&p), "challenge:agent:"),
            (RateScope::ChallengesToTarget(&p), "challenge:target:"),
            (RateScope::CodesForTarget(&p), "code:target:"),
            (RateScope::CodesByAgent(&p), "code:agent:"),
        ];
        for (scope, prefix) in cases {
            assert_eq!(
                scope.key().unwrap().as_str(),
                format!("{prefix}k1:AAAAAAAAAAAAAAAAAAAAAA"),
                "{scope:?}"
            );
        }
    }

    #[test]
    fn rules_come_from_policy_limits() {
        let p = PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let policy = Policy::default();
        let l = *policy.limits();
        let hour = Duration::from_secs(3600);
        let rule = |s: RateScope<'_>| s.rule(&policy);
        assert_eq!(
            rule(RateScope::LookupsByAgent(&p)),
            RateRule {
                limit: l.lookups_per_agent_per_hour,
                window: hour
            }
        );
        assert_eq!(
            rule(RateScope::ChallengesToTarget(&p)).limit,
            l.challenges_per_target_per_hour
        );
        assert_eq!(
            rule(RateScope::ChallengesByAgent(&p)).limit,
            l.challenges_per_agent_per_hour
        );
        assert_eq!(
            rule(RateScope::CodesByAgent(&p)),
            RateRule {
                limit: l.wrong_codes_before_lockout,
                window: Duration::from_secs(u64::from(l.lockout_minutes) * 60)
            }
        );
        assert_eq!(
            rule(RateScope::UnlocksForTarget(&p)),
            RateRule {
                limit: policy.locked_out().unlocks_per_caller_per_day,
                window: Duration::from_secs(24 * 3600)
            }
        );
    }
}
