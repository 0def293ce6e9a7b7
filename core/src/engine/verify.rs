//! Verifying a caller: start, challenge another factor, poll a push, submit a code read back, and mint the grant
//! when the last required factor is approved.
//!
//! The verification moves through [`crate::verification`]'s typestate; between requests it is a stored
//! [`VerificationRecord`] that changes only by compare-and-set on its version, so concurrent polls and replicas
//! move it once.

use super::call::Call;
use super::rate::RateScope;
use super::views::VerificationView;
use super::{Agent, Engine, RequestContext, store_ttl};
use crate::denial::Denial;
use crate::policy::{FactorChoice, Permission, TargetClass};
use crate::verification::{
    AnyVerification, Approval, Challenged, Grant, GrantTerms, NewVerification, Verification,
};
use fctr_ports::{
    ActionKind, AuditDetail, ChallengeContext, ChallengeState, CodeVerdict, EventKind, FactorId,
    FactorInfo, FactorKind, FactorStatus, Outcome, Reason, SecretString, SubjectId, UsageKind,
    VerificationId, VerificationRecord, VerificationStatus,
};
use std::collections::BTreeSet;

/// Whether a factor kind needs the IdP to start a challenge (a push, a text, a call); a code the caller reads
/// from an app needs nothing sent.
fn needs_start(kind: &FactorKind) -> bool {
    matches!(kind, FactorKind::Push | FactorKind::Sms | FactorKind::Voice)
}

impl Engine {
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
        let c = Call::new(agent, ctx).about(target.clone());
        self.authorize(&c, Permission::Verify).await?;
        self.refuse_self(&c, subject).await?;
        self.refuse_blocked(&c, &target).await?;
        let class = self.unprotected_class(&c, subject).await?;
        let required = self.policy.factor_rule(class).required();
        let v = Verification::start(NewVerification {
            tenant: self.tenant.clone(),
            agent: agent.pseudo.clone(),
            subject: subject.clone(),
            subject_pseudo: target,
            required_factors: required,
            privileged: class == TargetClass::Privileged,
            now: self.now(),
            window: self.policy.verification_window(),
        });
        self.challenge_next(c, v.into_record(), factor, class, true)
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
        let (rec, c) = self.load_own(agent, ctx, id).await?;
        self.authorize(&c, Permission::Verify).await?;
        if rec.status != VerificationStatus::Pending {
            return Err(self.deny(&c, Reason::InvalidState).await);
        }
        self.refuse_blocked(&c, &rec.subject_pseudo).await?;
        let class = self.unprotected_class(&c, &rec.subject).await?;
        self.challenge_next(c, rec, factor, class, false).await
    }

    async fn challenge_next(
        &self,
        mut c: Call<'_>,
        rec: VerificationRecord,
        factor: Option<&FactorId>,
        class: TargetClass,
        new: bool,
    ) -> Result<VerificationView, Denial> {
        let target = rec.subject_pseudo.clone();
        let AnyVerification::Pending(v) = Verification::from_record(rec) else {
            return Err(self.deny(&c, Reason::InvalidState).await);
        };
        if v.is_expired(self.now()) {
            let rec = v.expire();
            // Best effort: the window is closed whatever the store says (every later load sees `expires_at`
            // passed), and a lost compare-and-set means another request already moved it on.
            // Best effort: the request is refused either way.
            let _ = self.store_verification(&rec, Some(rec.version - 1)).await;
            return Err(self.deny(&c, Reason::VerificationExpired).await);
        }
        self.check_lockout(&c, &target).await?;
        let subject = v.record().subject.clone();
        let factors = self
            .idp_or_deny(&c, self.caller_factors(&subject).await)
            .await?;
        let factors = self.with_sign_in_factor(factors);
        let caps = self.ports.idp.capabilities();
        let choice = FactorChoice::new(class, &caps, &factors).after(&v.record().approved);
        let chosen = match self.policy.choose_factor(&choice, factor) {
            Ok(f) => f.clone(),
            Err(refused) => {
                c.set_factor(refused.kind);
                return Err(self.deny(&c, refused.reason).await);
            }
        };
        c.set_factor(Some(chosen.kind.clone()));
        self.rate(&c, RateScope::ChallengesByAgent(&c.agent().pseudo))
            .await?;
        self.rate(&c, RateScope::ChallengesToTarget(&target))
            .await?;

        // The challenge is audited before it is sent: no unaudited push.
        self.must_append(
            &c,
            self.event(&c, EventKind::ChallengeStarted, Outcome::Pending),
        )
        .await?;
        let ticket = if needs_start(&chosen.kind) {
            let cctx = ChallengeContext {
                request_id: c.ctx().request_id.clone(),
            };
            let started = self.ports.idp.start(&subject, &chosen, &cctx).await;
            Some(self.idp_or_deny(&c, started).await?)
        } else {
            None
        };
        let prev = v.record().version;
        let v = v.challenge(chosen.id.clone(), chosen.kind.clone(), ticket, self.now());
        let v = if chosen.kind == FactorKind::IdpSignIn {
            let window_end = v.record().expires_at;
            v.with_link(self.new_link(window_end))
        } else {
            v
        };
        let expected = if new { None } else { Some(prev) };
        match self.store_verification(v.record(), expected).await {
            Ok(true) => {}
            Ok(false) => return Err(self.deny(&c, Reason::InvalidState).await),
            Err(_) => return Err(self.deny(&c, Reason::StateUnavailable).await),
        }
        Ok(self.view(v.record(), None))
    }

    /// Writes a verification if its stored version is still `expected` (`None`: it must be new). `Ok(false)` when
    /// another request moved it first, an error when the store failed (either way this request's change did not
    /// happen).
    async fn store_verification(
        &self,
        rec: &VerificationRecord,
        expected: Option<u64>,
    ) -> Result<bool, fctr_ports::PortError> {
        let ttl = store_ttl(rec.expires_at - self.now());
        self.ports.grants.put_verification(rec, expected, ttl).await
    }

    /// The agent's own verification, and the call about its caller. Another agent's is "not found".
    pub(crate) async fn load_own<'a>(
        &self,
        agent: &'a Agent,
        ctx: &'a RequestContext,
        id: VerificationId,
    ) -> Result<(VerificationRecord, Call<'a>), Denial> {
        let c = Call::new(agent, ctx);
        let rec = match self.ports.grants.get_verification(id).await {
            Ok(Some(r)) if r.agent == agent.pseudo && r.tenant == self.tenant => r,
            Ok(_) => return Err(self.deny(&c, Reason::VerificationNotFound).await),
            Err(_) => return Err(self.deny(&c, Reason::StateUnavailable).await),
        };
        let c = c.about(rec.subject_pseudo.clone());
        Ok((rec, c))
    }

    /// How many more wrong codes the agent may enter in their verification `id` before fctr locks code checks for
    /// this caller (for the page's "attempts left"). Reads only; audits nothing. `None` when the verification is
    /// not the agent's or the limiter cannot be read.
    pub async fn code_attempts_left(&self, agent: &Agent, id: VerificationId) -> Option<u32> {
        match self.ports.grants.get_verification(id).await {
            Ok(Some(r)) if r.agent == agent.pseudo && r.tenant == self.tenant => {
                self.codes_left(agent, &r.subject_pseudo).await
            }
            _ => None,
        }
    }

    /// The agent's own verification as stored now, without asking the IdP anything: what a replica that is not
    /// polling the challenge shows its watchers (the replica that is polling moves the stored record on).
    ///
    /// # Errors
    /// [`Reason::VerificationNotFound`] (unknown, or another agent's), [`Reason::StateUnavailable`].
    pub async fn verification_view(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        id: VerificationId,
    ) -> Result<VerificationView, Denial> {
        let (rec, _) = self.load_own(agent, ctx, id).await?;
        let grant = self.current_grant(&rec).await;
        Ok(self.view(&rec, grant.as_ref()))
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
        let (rec, mut c) = self.load_own(agent, ctx, id).await?;
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
        c.set_factor(v.outstanding().map(|o| o.kind.clone()));
        if v.is_expired(self.now()) {
            let rec = v.expire();
            if matches!(self.store_verification(&rec, Some(prev)).await, Ok(true)) {
                self.record(
                    self.event(&c, EventKind::ChallengeResult, Outcome::Rejected)
                        .reason(Reason::VerificationExpired),
                )
                .await;
            }
            return Ok(self.view(&rec, None));
        }
        if let Some(link) = v.outstanding().and_then(|o| o.link.clone()) {
            // A sign-in link: nothing to ask the IdP; the caller's sign-in marked the record (see
            // `sign_in_link.rs`).
            if link.verified_at.is_some() {
                return self.approve(&c, v, prev).await;
            }
            if self.now() >= self.link_deadline(&link) {
                let mut rec = v.reject();
                rec.status = VerificationStatus::Expired;
                return self
                    .end_challenge(&c, rec, prev, Reason::ChallengeTimedOut)
                    .await;
            }
            return Ok(self.view(v.record(), None));
        }
        let Some(ticket) = v.outstanding().and_then(|o| o.ticket.clone()) else {
            // A code factor: nothing to poll; the agent submits the code.
            return Ok(self.view(v.record(), None));
        };
        let state = match self.ports.idp.poll(&ticket).await {
            Ok(st) => st,
            Err(e) => return Err(self.deny_idp(&c, Reason::IdpError, &e).await),
        };
        match state {
            ChallengeState::Waiting => {
                if self.now() >= ticket.expires_at {
                    // Unanswered in time: an expiry, not a denial (the agent may send a new push).
                    let mut rec = v.reject();
                    rec.status = VerificationStatus::Expired;
                    return self
                        .end_challenge(&c, rec, prev, Reason::ChallengeTimedOut)
                        .await;
                }
                Ok(self.view(v.record(), None))
            }
            ChallengeState::Approved => self.approve(&c, v, prev).await,
            ChallengeState::Rejected => {
                let subject = v.record().subject.clone();
                let target = v.record().subject_pseudo.clone();
                let (view, won) = self
                    .end_challenge_once(&c, v.reject(), prev, Reason::ChallengeRejected)
                    .await?;
                // Only the request that recorded the rejection responds to it (one response across replicas).
                if won {
                    self.count_failure(&c, &target).await;
                    self.push_denied(&c, &subject, &target).await;
                }
                Ok(view)
            }
            ChallengeState::TimedOut => {
                let mut rec = v.reject();
                rec.status = VerificationStatus::Expired;
                self.end_challenge(&c, rec, prev, Reason::ChallengeTimedOut)
                    .await
            }
            _ => {
                self.end_challenge(&c, v.fail(), prev, Reason::IdpError)
                    .await
            }
        }
    }

    async fn end_challenge(
        &self,
        c: &Call<'_>,
        rec: VerificationRecord,
        prev: u64,
        reason: Reason,
    ) -> Result<VerificationView, Denial> {
        self.end_challenge_once(c, rec, prev, reason)
            .await
            .map(|(v, _)| v)
    }

    /// As `end_challenge`, also saying whether this request recorded the end (`false`: another got there first).
    async fn end_challenge_once(
        &self,
        c: &Call<'_>,
        rec: VerificationRecord,
        prev: u64,
        reason: Reason,
    ) -> Result<(VerificationView, bool), Denial> {
        if matches!(self.store_verification(&rec, Some(prev)).await, Ok(true)) {
            self.record(
                self.event(
                    c,
                    EventKind::ChallengeResult,
                    super::call::outcome_of(reason),
                )
                .reason(reason),
            )
            .await;
            return Ok((self.view(&rec, None), true));
        }
        // Another replica moved it first: show what it stored.
        self.reload_view(c, rec.id).await.map(|v| (v, false))
    }

    async fn reload_view(
        &self,
        c: &Call<'_>,
        id: VerificationId,
    ) -> Result<VerificationView, Denial> {
        match self.ports.grants.get_verification(id).await {
            Ok(Some(r)) => {
                let g = self.current_grant(&r).await;
                Ok(self.view(&r, g.as_ref()))
            }
            Ok(None) => Err(self.deny(c, Reason::VerificationNotFound).await),
            Err(_) => Err(self.deny(c, Reason::StateUnavailable).await),
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
        c: &Call<'_>,
        v: Verification<Challenged>,
        prev: u64,
    ) -> Result<VerificationView, Denial> {
        // Number matching is observed, not assumed: the provider may say its pushes carry a number, but a push
        // whose challenge came back without one is judged as a plain push (`push_without_number_matching`).
        let mut caps = self.ports.idp.capabilities();
        caps.push_number_matching =
            caps.push_number_matching && v.pushes_number_matched_if_approved();
        // The class the verification began with: no second read of the groups here (an action checks protection
        // again before it runs). A record from before the class was kept reads the groups (fail closed).
        let class = match v.record().privileged {
            Some(true) => TargetClass::Privileged,
            Some(false) => TargetClass::Standard,
            None => {
                let subject = v.record().subject.clone();
                let groups = match self.caller_groups(&subject).await {
                    Ok(g) => g,
                    Err(e) => return Err(self.deny_idp(c, Reason::IdpError, &e).await),
                };
                if self.policy.is_protected(&groups) {
                    return Err(self.deny(c, Reason::ProtectedTarget).await);
                }
                self.policy.classify(&groups)
            }
        };
        let needed = self
            .policy
            .factors_still_needed(class, &caps, &v.kinds_if_approved());
        let now = self.now();
        match v.approve(now, needed) {
            Approval::NeedMore(mut p) => {
                // Policy may need more than the configured count (e.g. a push without number matching).
                let distinct: BTreeSet<&FactorKind> =
                    p.record().approved.iter().map(|a| &a.kind).collect();
                let approved = u8::try_from(distinct.len()).unwrap_or(u8::MAX);
                p.raise_required(approved.saturating_add(needed));
                if !matches!(
                    self.store_verification(p.record(), Some(prev)).await,
                    Ok(true)
                ) {
                    return self.reload_view(c, p.record().id).await;
                }
                let detail = AuditDetail::Factors {
                    approved: u8::try_from(p.record().approved.len()).unwrap_or(u8::MAX),
                    required: p.record().required_factors,
                };
                self.record(
                    self.event(c, EventKind::ChallengeResult, Outcome::Success)
                        .detail(detail),
                )
                .await;
                Ok(self.view(p.record(), None))
            }
            Approval::Complete(verified) => {
                let actions: BTreeSet<ActionKind> = self
                    .role_of(c.agent())
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
                if !matches!(self.store_verification(&rec, Some(prev)).await, Ok(true)) {
                    return self.reload_view(c, rec.id).await;
                }
                // The grant is stored first (short-lived state: memory or Redis, no fsync), then the result, the
                // grant's announcement and the usage row go to the durable stores side by side, which commit
                // concurrent writes together: the agent waits for one durable write, not two in a row, and the
                // grant is announced only once it is stored.
                let grant_ttl = store_ttl(grant.expires_at() - now);
                if self
                    .ports
                    .grants
                    .put_grant(grant.record(), grant_ttl)
                    .await
                    .is_err()
                {
                    self.record(self.event(c, EventKind::ChallengeResult, Outcome::Success))
                        .await;
                    return Err(self.deny(c, Reason::StateUnavailable).await);
                }
                // A row the ledger refuses is held and retried (see `Engine::pending_usage`); the verification
                // stands either way, and its view has no use for the flag. The result is appended before the
                // grant's event (the writes are started in this order).
                futures::join!(
                    self.record(self.event(c, EventKind::ChallengeResult, Outcome::Success)),
                    self.record(self.event(c, EventKind::GrantIssued, Outcome::Success)),
                    self.count_verified(&c.agent().pseudo, &rec.subject_pseudo),
                    self.count_agent_on_caller(c, &rec.subject_pseudo),
                    self.record_usage(c.agent(), UsageKind::Verification, now),
                );
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
        let (rec, mut c) = self.load_own(agent, ctx, id).await?;
        let target = rec.subject_pseudo.clone();
        let AnyVerification::Challenged(v) = Verification::from_record(rec) else {
            return Err(self.deny(&c, Reason::InvalidState).await);
        };
        let prev = v.record().version;
        let Some(outstanding) = v.outstanding().cloned() else {
            return Err(self.deny(&c, Reason::InvalidState).await);
        };
        c.set_factor(Some(outstanding.kind.clone()));
        if matches!(outstanding.kind, FactorKind::Push | FactorKind::IdpSignIn) {
            return Err(self.deny(&c, Reason::InvalidState).await);
        }
        if v.is_expired(self.now()) {
            let rec = v.expire();
            // Best effort, as in `challenge_next`: the window is closed whatever the store says.
            // Best effort: the request is refused either way.
            let _ = self.store_verification(&rec, Some(prev)).await;
            return Err(self.deny(&c, Reason::VerificationExpired).await);
        }
        // The attempt is counted BEFORE the IdP sees the code (and refunded only if the code is right), so of any
        // number of concurrent submissions, on any number of replicas, at most the policy's number of wrong codes
        // ever reach the IdP.
        let counted = self.count_code_attempt(&c, &target).await?;
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
                &c,
                self.ports.idp.verify_code(&subject, &factor, code).await,
            )
            .await?;
        let reason = match verdict {
            CodeVerdict::Accepted => {
                self.refund_code_attempt(&counted).await;
                self.record(self.event(&c, EventKind::CodeSubmitted, Outcome::Success))
                    .await;
                return self.approve(&c, v, prev).await;
            }
            CodeVerdict::Replayed => Reason::CodeReplayed,
            // The IdP's lock is the account's (Okta E0000069), not fctr's code lockout.
            CodeVerdict::Locked => Reason::CallerLockedOut,
            _ => Reason::WrongCode,
        };
        let b = self
            .event(&c, EventKind::CodeSubmitted, Outcome::Rejected)
            .reason(reason);
        self.record(b).await;
        self.count_failure(&c, &target).await;
        if reason == Reason::VerificationLocked {
            return Err(self.deny(&c, Reason::VerificationLocked).await);
        }
        // The last allowed failure locks verification: say so now rather than on the next try.
        self.check_lockout(&c, &target).await?;
        Err(Denial::new(reason))
    }
}
