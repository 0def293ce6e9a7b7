//! The verification state machine, as a typestate.
//!
//! ```text
//! Pending ──challenge──> Challenged ──approve──> Verified ──mint_grant──> Grant
//!    ^                       │  └─(more factors needed)─> Pending
//!    └───────────────────────┘
//! Challenged ──reject | time out | fail──> Ended(Rejected | Expired | Failed)
//! ```
//!
//! Each step consumes `self`, so a value in the wrong state cannot take the next step, and only a
//! `Verification<Verified>` can mint a grant. Between requests the state is stored as a plain
//! [`VerificationRecord`] and rehydrated with [`Verification::from_record`].

use chrono::{DateTime, Duration, Utc};
use fctr_ports::{
    ActionKind, ApprovedFactor, ChallengeTicket, FactorId, FactorKind, GrantId, GrantRecord,
    OutstandingChallenge, PseudoId, Reason, SignInLink, SubjectId, TenantId, VerificationId,
    VerificationRecord, VerificationStatus,
};
use std::collections::BTreeSet;
use std::marker::PhantomData;

/// Started, no challenge outstanding.
#[derive(Debug)]
pub struct Pending;
/// A challenge is outstanding.
#[derive(Debug)]
pub struct Challenged;
/// Enough factors approved.
#[derive(Debug)]
pub struct Verified;

/// A verification in state `S`.
#[derive(Debug)]
pub struct Verification<S> {
    record: VerificationRecord,
    _state: PhantomData<S>,
}

/// A stored verification, rehydrated into its state.
#[derive(Debug)]
pub enum AnyVerification {
    /// Pending.
    Pending(Verification<Pending>),
    /// Challenged.
    Challenged(Verification<Challenged>),
    /// Verified.
    Verified(Verification<Verified>),
    /// Ended without success (rejected, expired, failed).
    Ended(VerificationRecord),
}

impl<S> Verification<S> {
    fn into_state<T>(self) -> Verification<T> {
        Verification {
            record: self.record,
            _state: PhantomData,
        }
    }

    /// The stored form.
    #[must_use]
    pub fn record(&self) -> &VerificationRecord {
        &self.record
    }

    /// Consumes into the stored form.
    #[must_use]
    pub fn into_record(self) -> VerificationRecord {
        self.record
    }

    /// Whether the verification window has closed at `now`.
    #[must_use]
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.record.expires_at
    }

    /// Ends the verification because its window closed.
    #[must_use]
    pub fn expire(self) -> VerificationRecord {
        self.end(VerificationStatus::Expired)
    }

    fn end(mut self, status: VerificationStatus) -> VerificationRecord {
        self.record.status = status;
        self.record.challenge = None;
        self.record.version += 1;
        self.record
    }
}

/// Parameters for a new verification.
#[derive(Debug, Clone)]
pub struct NewVerification {
    /// The tenant.
    pub tenant: TenantId,
    /// The agent, pseudonymized.
    pub agent: PseudoId,
    /// The caller's IdP id.
    pub subject: SubjectId,
    /// The caller, pseudonymized.
    pub subject_pseudo: PseudoId,
    /// Distinct factors required (at least 1).
    pub required_factors: u8,
    /// Whether the caller is in a privileged group (kept for the approval).
    pub privileged: bool,
    /// Now.
    pub now: DateTime<Utc>,
    /// The verification window.
    pub window: Duration,
}

impl Verification<Pending> {
    /// Starts a verification (version 0).
    #[must_use]
    pub fn start(p: NewVerification) -> Self {
        Self {
            record: VerificationRecord {
                id: VerificationId::random(),
                tenant: p.tenant,
                agent: p.agent,
                subject: p.subject,
                subject_pseudo: p.subject_pseudo,
                status: VerificationStatus::Pending,
                challenge: None,
                approved: Vec::new(),
                required_factors: p.required_factors.max(1),
                privileged: Some(p.privileged),
                created_at: p.now,
                expires_at: p.now + p.window,
                grant: None,
                ended_by: None,
                version: 0,
            },
            _state: PhantomData,
        }
    }

    /// Records that a challenge was sent to `factor` (a ticket for push-like factors; none when the caller reads
    /// a code back).
    #[must_use]
    pub fn challenge(
        mut self,
        factor: FactorId,
        kind: FactorKind,
        ticket: Option<ChallengeTicket>,
        now: DateTime<Utc>,
    ) -> Verification<Challenged> {
        self.record.status = VerificationStatus::Challenged;
        self.record.challenge = Some(OutstandingChallenge {
            factor,
            kind,
            ticket,
            started_at: now,
            link: None,
        });
        self.record.version += 1;
        self.into_state()
    }

    /// Raises the number of distinct factors required (never lowers it).
    pub fn raise_required(&mut self, required: u8) {
        self.record.required_factors = self.record.required_factors.max(required);
    }
}

/// What approving a challenge led to.
#[derive(Debug)]
pub enum Approval {
    /// More factors are needed.
    NeedMore(Verification<Pending>),
    /// Enough factors: verified.
    Complete(Verification<Verified>),
}

impl Verification<Challenged> {
    /// The outstanding challenge.
    #[must_use]
    pub fn outstanding(&self) -> Option<&OutstandingChallenge> {
        self.record.challenge.as_ref()
    }

    /// Whether every push this verification relies on (approved ones, and the outstanding one as it would be
    /// approved) came with a number challenge from the IdP. `true` when no push is involved.
    #[must_use]
    pub fn pushes_number_matched_if_approved(&self) -> bool {
        let approved = self
            .record
            .approved
            .iter()
            .filter(|a| a.kind == FactorKind::Push)
            .all(|a| a.number_matched);
        let outstanding = self.record.challenge.as_ref().is_none_or(|c| {
            c.kind != FactorKind::Push || c.ticket.as_ref().is_some_and(|t| t.number.is_some())
        });
        approved && outstanding
    }

    /// Kinds approved so far, plus the outstanding one, as they would be after approval.
    #[must_use]
    pub fn kinds_if_approved(&self) -> Vec<FactorKind> {
        let mut kinds: Vec<FactorKind> = self
            .record
            .approved
            .iter()
            .map(|a| a.kind.clone())
            .collect();
        if let Some(c) = &self.record.challenge {
            kinds.push(c.kind.clone());
        }
        kinds
    }

    /// The caller proved the outstanding factor. `still_needed` is policy's answer for the approved kinds
    /// including this one: 0 completes the verification.
    #[must_use]
    pub fn approve(mut self, now: DateTime<Utc>, still_needed: u8) -> Approval {
        if let Some(c) = self.record.challenge.take() {
            // The same factor approved twice counts once.
            if !self.record.approved.iter().any(|a| a.factor == c.factor) {
                // Observed, not assumed: a push counts as number-matched only if the IdP's answer to this very
                // challenge carried a number for the caller to pick.
                let number_matched = c.kind == FactorKind::Push
                    && c.ticket.as_ref().is_some_and(|t| t.number.is_some());
                self.record.approved.push(ApprovedFactor {
                    factor: c.factor,
                    kind: c.kind,
                    at: now,
                    number_matched,
                });
            }
        }
        self.record.version += 1;
        if still_needed == 0 && !self.record.approved.is_empty() {
            self.record.status = VerificationStatus::Verified;
            Approval::Complete(self.into_state())
        } else {
            self.record.status = VerificationStatus::Pending;
            Approval::NeedMore(self.into_state())
        }
    }

    /// The caller rejected the challenge (or picked the wrong number).
    #[must_use]
    pub fn reject(self) -> VerificationRecord {
        self.end(VerificationStatus::Rejected)
    }

    /// The IdP failed the challenge.
    #[must_use]
    pub fn fail(self) -> VerificationRecord {
        self.end(VerificationStatus::Failed)
    }

    /// Attaches the one-time sign-in link to the outstanding challenge (a [`FactorKind::IdpSignIn`] challenge).
    #[must_use]
    pub fn with_link(mut self, link: SignInLink) -> Self {
        if let Some(c) = self.record.challenge.as_mut() {
            c.link = Some(link);
        }
        self
    }

    /// The outstanding sign-in link moved on (opened, or its sign-in accepted): the same state, one version on.
    #[must_use]
    pub fn update_link(mut self, f: impl FnOnce(&mut SignInLink)) -> Self {
        if let Some(link) = self.record.challenge.as_mut().and_then(|c| c.link.as_mut()) {
            f(link);
        }
        self.record.version += 1;
        self
    }

    /// A refusal the agent must be told about ended the challenge (a sign-in by someone else, a stale or
    /// single-factor sign-in): rejected, with the reason kept on the record.
    #[must_use]
    pub fn refuse(self, reason: Reason) -> VerificationRecord {
        let mut rec = self.end(VerificationStatus::Rejected);
        rec.ended_by = Some(reason);
        rec
    }
}

/// What a grant should allow and for how long.
#[derive(Debug, Clone)]
pub struct GrantTerms {
    /// Actions allowed.
    pub actions: BTreeSet<ActionKind>,
    /// Lifetime from now.
    pub lifetime: Duration,
    /// Whether one action consumes it.
    pub single_use: bool,
}

/// A live verification grant: proof, for a limited time, that this agent verified this caller.
///
/// It has no public fields and no public constructor: only [`Verification::mint_grant`] (a verified
/// verification) makes one, and the engine rebuilds one only from its own grant store. Shells see a
/// [`crate::GrantView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    record: GrantRecord,
}

impl Grant {
    /// Rebuilds a grant the engine's own store gave back.
    pub(crate) fn from_store(record: GrantRecord) -> Self {
        Self { record }
    }

    /// The stored form, for the grant store.
    #[must_use]
    pub fn record(&self) -> &GrantRecord {
        &self.record
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> GrantId {
        self.record.id
    }

    /// The agent it is bound to.
    #[must_use]
    pub fn agent(&self) -> &PseudoId {
        &self.record.agent
    }

    /// The caller it is bound to.
    #[must_use]
    pub fn subject(&self) -> &PseudoId {
        &self.record.subject
    }

    /// Actions it allows.
    #[must_use]
    pub fn actions(&self) -> &BTreeSet<ActionKind> {
        &self.record.actions
    }

    /// The factor kinds verified.
    #[must_use]
    pub fn factors(&self) -> &[FactorKind] {
        &self.record.factors
    }

    /// When it stops working.
    #[must_use]
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.record.expires_at
    }

    /// Whether one action consumes it.
    #[must_use]
    pub fn single_use(&self) -> bool {
        self.record.single_use
    }

    /// Whether this grant lets `agent` run `action` on `subject` of `tenant` at `now`.
    ///
    /// # Errors
    /// The refusal, checked in this order: [`Reason::GrantOtherAgent`], [`Reason::GrantOtherSubject`] (another
    /// caller, or another tenant's), [`Reason::GrantExpired`] (at or after `expires_at`),
    /// [`Reason::GrantDoesNotCoverAction`].
    pub fn admits(
        &self,
        agent: &PseudoId,
        subject: &PseudoId,
        tenant: &TenantId,
        action: ActionKind,
        now: DateTime<Utc>,
    ) -> Result<(), Reason> {
        let g = &self.record;
        if &g.agent != agent {
            return Err(Reason::GrantOtherAgent);
        }
        if &g.subject != subject || &g.tenant != tenant {
            return Err(Reason::GrantOtherSubject);
        }
        if now >= g.expires_at {
            return Err(Reason::GrantExpired);
        }
        if !g.actions.contains(&action) {
            return Err(Reason::GrantDoesNotCoverAction);
        }
        Ok(())
    }
}

impl Verification<Verified> {
    /// Mints the grant, bound to this verification's agent and caller. Only a verified verification can.
    #[must_use]
    pub fn mint_grant(
        mut self,
        terms: GrantTerms,
        now: DateTime<Utc>,
    ) -> (Grant, VerificationRecord) {
        let record = GrantRecord {
            id: GrantId::random(),
            tenant: self.record.tenant.clone(),
            verification: self.record.id,
            agent: self.record.agent.clone(),
            subject: self.record.subject_pseudo.clone(),
            actions: terms.actions,
            factors: self
                .record
                .approved
                .iter()
                .map(|a| a.kind.clone())
                .collect(),
            issued_at: now,
            expires_at: now + terms.lifetime,
            single_use: terms.single_use,
        };
        self.record.grant = Some(record.id);
        (Grant { record }, self.record)
    }
}

impl Verification<AnyState> {
    /// Rehydrates a stored record into its state.
    #[must_use]
    pub fn from_record(record: VerificationRecord) -> AnyVerification {
        fn any<S>(record: VerificationRecord) -> Verification<S> {
            Verification {
                record,
                _state: PhantomData,
            }
        }
        match record.status {
            VerificationStatus::Pending => AnyVerification::Pending(any(record)),
            VerificationStatus::Challenged if record.challenge.is_some() => {
                AnyVerification::Challenged(any(record))
            }
            VerificationStatus::Verified if record.grant.is_some() => {
                AnyVerification::Verified(any(record))
            }
            // Challenged without a challenge is inconsistent: treat as ended (fail closed).
            _ => AnyVerification::Ended(record),
        }
    }
}

/// Marker for [`Verification::from_record`].
#[derive(Debug)]
pub struct AnyState;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn new() -> Verification<Pending> {
        Verification::start(NewVerification {
            tenant: TenantId::parse("t").unwrap(),
            agent: PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            subject: SubjectId::parse("00u1").unwrap(),
            subject_pseudo: PseudoId::parse("k1:BBBBBBBBBBBBBBBBBBBBBA").unwrap(),
            required_factors: 2,
            privileged: false,
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            window: Duration::minutes(10),
        })
    }

    #[test]
    fn two_factor_flow_collects_until_satisfied() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0).unwrap();
        let v = new().challenge(FactorId::parse("f1").unwrap(), FactorKind::Push, None, now);
        let Approval::NeedMore(v) = v.approve(now, 1) else {
            panic!("one factor of two must not verify")
        };
        assert_eq!(v.record().status, VerificationStatus::Pending);
        // Re-approving the same factor does not count twice.
        let v = v.challenge(FactorId::parse("f1").unwrap(), FactorKind::Push, None, now);
        let Approval::NeedMore(v) = v.approve(now, 1) else {
            panic!("same factor twice must not verify")
        };
        assert_eq!(v.record().approved.len(), 1);
        let v = v.challenge(FactorId::parse("f2").unwrap(), FactorKind::Totp, None, now);
        let Approval::Complete(v) = v.approve(now, 0) else {
            panic!("two factors must verify")
        };
        let terms = GrantTerms {
            actions: BTreeSet::from([ActionKind::Unlock]),
            lifetime: Duration::minutes(5),
            single_use: true,
        };
        let (grant, rec) = v.mint_grant(terms, now);
        assert_eq!(grant.expires_at(), now + Duration::minutes(5));
        assert_eq!(grant.factors(), vec![FactorKind::Push, FactorKind::Totp]);
        assert_eq!(rec.grant, Some(grant.id()));
        assert_eq!(grant.subject().as_str(), "k1:BBBBBBBBBBBBBBBBBBBBBA");
    }

    #[test]
    fn rehydration_is_fail_closed() {
        let mut rec = new().into_record();
        rec.status = VerificationStatus::Challenged; // but no challenge
        assert!(matches!(
            Verification::from_record(rec.clone()),
            AnyVerification::Ended(_)
        ));
        rec.status = VerificationStatus::Rejected;
        assert!(matches!(
            Verification::from_record(rec),
            AnyVerification::Ended(_)
        ));
        let mut rec = new().into_record();
        rec.status = VerificationStatus::Verified; // but no grant
        assert!(matches!(
            Verification::from_record(rec),
            AnyVerification::Ended(_)
        ));
    }

    #[test]
    fn versions_bump_on_every_step() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0).unwrap();
        let v = new();
        assert_eq!(v.record().version, 0);
        let v = v.challenge(FactorId::parse("f1").unwrap(), FactorKind::Push, None, now);
        assert_eq!(v.record().version, 1);
        let rec = v.reject();
        assert_eq!((rec.version, rec.status), (2, VerificationStatus::Rejected));
        let v = new().challenge(FactorId::parse("f1").unwrap(), FactorKind::Totp, None, now);
        let Approval::Complete(v) = v.approve(now, 0) else {
            panic!("one of one verifies")
        };
        assert_eq!(v.record().version, 2, "approving bumps the version by one");
        let v = new().challenge(FactorId::parse("f1").unwrap(), FactorKind::Totp, None, now);
        let Approval::NeedMore(v) = v.approve(now, 1) else {
            panic!("one of two does not")
        };
        assert_eq!(v.record().version, 2);
    }

    #[test]
    fn a_grant_admits_only_its_agent_its_caller_its_actions_while_live() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 0).unwrap();
        let v = new().challenge(FactorId::parse("f1").unwrap(), FactorKind::Totp, None, now);
        let Approval::Complete(v) = v.approve(now, 0) else {
            panic!("one of one verifies")
        };
        let terms = GrantTerms {
            actions: BTreeSet::from([ActionKind::Unlock]),
            lifetime: Duration::minutes(5),
            single_use: true,
        };
        let (g, _) = v.mint_grant(terms, now);
        let agent = g.agent().clone();
        let subject = g.subject().clone();
        let tenant = TenantId::parse("t").unwrap();
        let other = PseudoId::parse("k1:CCCCCCCCCCCCCCCCCCCCCA").unwrap();
        let unlock = ActionKind::Unlock;
        assert_eq!(g.admits(&agent, &subject, &tenant, unlock, now), Ok(()));
        assert_eq!(
            g.admits(&other, &subject, &tenant, unlock, now),
            Err(Reason::GrantOtherAgent)
        );
        assert_eq!(
            g.admits(&agent, &other, &tenant, unlock, now),
            Err(Reason::GrantOtherSubject)
        );
        let elsewhere = TenantId::parse("u").unwrap();
        assert_eq!(
            g.admits(&agent, &subject, &elsewhere, unlock, now),
            Err(Reason::GrantOtherSubject)
        );
        assert_eq!(
            g.admits(&agent, &subject, &tenant, unlock, g.expires_at()),
            Err(Reason::GrantExpired),
            "expired at its expiry instant"
        );
        assert_eq!(
            g.admits(&agent, &subject, &tenant, ActionKind::ResetFactors, now),
            Err(Reason::GrantDoesNotCoverAction)
        );
    }
}
