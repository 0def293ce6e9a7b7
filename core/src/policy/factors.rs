//! Which factor may verify a caller: acceptance, what this IdP can challenge, no downgrades, and how many
//! distinct factors are still needed.

use super::{Policy, PushWithoutNumberMatching, TargetClass};
use crate::assurance::{self, AssuranceClass};
use fctr_ports::{Capabilities, FactorInfo, FactorKind, FactorStatus, Reason};
use serde::Serialize;
use std::collections::BTreeSet;

/// Why policy refuses a factor for a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "refusal")]
#[non_exhaustive]
pub enum FactorRefusal {
    /// Policy does not accept this kind for this target class.
    #[error("policy does not accept this factor for this user")]
    NotAccepted,
    /// The caller has an accepted, challengeable, stronger factor enrolled, and policy refuses downgrades.
    #[error("the caller has a stronger factor enrolled ({stronger}); use that one")]
    Downgrade {
        /// The stronger kind to use instead (the strongest, most preferred one).
        stronger: FactorKind,
    },
    /// This identity provider cannot challenge this kind (no push, or no code checks).
    #[error("this identity provider cannot challenge this factor")]
    NotChallengeable,
    /// The push would carry no number to match, and policy says
    /// `push_without_number_matching = "refuse"`.
    #[error("pushes without number matching are refused by policy")]
    PushWithoutNumberMatching,
}

impl FactorRefusal {
    /// The machine-readable reason for the denial.
    #[must_use]
    pub fn reason(&self) -> Reason {
        match self {
            Self::NotAccepted | Self::NotChallengeable | Self::PushWithoutNumberMatching => {
                Reason::FactorNotAccepted
            }
            Self::Downgrade { .. } => Reason::DowngradeRefused,
        }
    }
}

/// Whether this IdP can challenge the kind at all: push needs `caps.push`; OTP kinds, and SMS/voice (the
/// caller reads a code back), need `caps.code_verification`. Anything else cannot be checked by an agent.
pub(crate) fn challengeable(kind: &FactorKind, caps: &Capabilities) -> bool {
    match assurance::classify(kind) {
        AssuranceClass::OutOfBandDevice => caps.push,
        AssuranceClass::SingleFactorOtp | AssuranceClass::RestrictedPstn => caps.code_verification,
        // Offered only when the engine has sign-in links configured (it adds the caller's sign-in to the list).
        AssuranceClass::IdpSignInMfa => true,
        AssuranceClass::MultiFactorCryptographic | AssuranceClass::NotAnAuthenticator => false,
    }
}

/// Whether a factor kind may be verified by a helpdesk agent at all (belt and braces: a parsed policy never
/// lists anything else).
fn helpdesk_verifiable(kind: &FactorKind) -> bool {
    matches!(
        assurance::classify(kind),
        AssuranceClass::OutOfBandDevice
            | AssuranceClass::SingleFactorOtp
            | AssuranceClass::RestrictedPstn
            | AssuranceClass::IdpSignInMfa
    )
}

impl Policy {
    /// The checks on one kind alone: accepted for the class, challengeable by this IdP, and not a push that
    /// policy refuses for lack of number matching.
    fn usable(
        &self,
        class: TargetClass,
        kind: &FactorKind,
        caps: &Capabilities,
    ) -> Result<(), FactorRefusal> {
        if !self.factor_rule(class).accepts(kind) || !helpdesk_verifiable(kind) {
            return Err(FactorRefusal::NotAccepted);
        }
        if !challengeable(kind, caps) {
            return Err(FactorRefusal::NotChallengeable);
        }
        if *kind == FactorKind::Push
            && !caps.push_number_matching
            && self.rules.push_without_number_matching == PushWithoutNumberMatching::Refuse
        {
            return Err(FactorRefusal::PushWithoutNumberMatching);
        }
        Ok(())
    }

    /// Whether the agent may challenge the caller's `chosen` factor kind.
    ///
    /// `enrolled_active` are the kinds of the caller's active factors. With `no_downgrade` on, a kind is refused
    /// when the caller has another kind enrolled that is accepted, challengeable by this IdP and stronger (see
    /// [`assurance::strength`]; a push counts as number-matched when `caps.push_number_matching`).
    ///
    /// This does not check that `chosen` itself is enrolled: the engine checks the concrete factor.
    ///
    /// # Errors
    /// [`FactorRefusal`], in this order: not accepted, not challengeable, push without number matching refused,
    /// downgrade.
    pub fn check_factor(
        &self,
        class: TargetClass,
        chosen: &FactorKind,
        enrolled_active: &[FactorKind],
        caps: &Capabilities,
    ) -> Result<(), FactorRefusal> {
        self.usable(class, chosen, caps)?;
        if !self.rules.no_downgrade {
            return Ok(());
        }
        let nm = caps.push_number_matching;
        let mine = assurance::strength(chosen, nm);
        let mut best: Option<(&FactorKind, u8)> = None;
        // Preference order, so that among equally strong kinds the preferred one is named.
        for kind in self.factor_rule(class).accepted() {
            if !enrolled_active.contains(kind) || self.usable(class, kind, caps).is_err() {
                continue;
            }
            let s = assurance::strength(kind, nm);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((kind, s));
            }
        }
        match best {
            Some((kind, s)) if s > mine => Err(FactorRefusal::Downgrade {
                stronger: kind.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The factor to offer first: the caller's first active factor, in the class's preference order, that
    /// [`Policy::check_factor`] allows. `None` when no enrolled factor can verify this caller here.
    #[must_use]
    pub fn preferred_factor<'a>(
        &self,
        class: TargetClass,
        enrolled_active: &'a [FactorInfo],
        caps: &Capabilities,
    ) -> Option<&'a FactorInfo> {
        let active: Vec<&FactorInfo> = enrolled_active
            .iter()
            .filter(|f| f.status == FactorStatus::Active)
            .collect();
        self.first_preferred(class, &active, caps)
    }

    /// Among `candidates` (all taken as active), the first in the class's preference order that
    /// [`Policy::check_factor`] allows against the candidates' own kinds.
    pub(super) fn first_preferred<'a>(
        &self,
        class: TargetClass,
        candidates: &[&'a FactorInfo],
        caps: &Capabilities,
    ) -> Option<&'a FactorInfo> {
        let kinds: Vec<FactorKind> = candidates.iter().map(|f| f.kind.clone()).collect();
        self.factor_rule(class).accepted().iter().find_map(|kind| {
            let factor = candidates.iter().find(|f| f.kind == *kind)?;
            self.check_factor(class, kind, &kinds, caps).ok()?;
            Some(*factor)
        })
    }

    /// Whether a verification can still be completed: would [`Policy::factors_still_needed`] reach 0 if every
    /// kind in `unproved_active` that this class accepts and this IdP can challenge were approved on top of
    /// `approved`? `false` means a challenge could never lead to a grant, so none should be sent (for example a
    /// caller whose only factor is a push without number matching, under `require_another_factor`).
    #[must_use]
    pub fn can_complete(
        &self,
        class: TargetClass,
        caps: &Capabilities,
        approved: &[FactorKind],
        unproved_active: &[FactorKind],
    ) -> bool {
        let mut all = approved.to_vec();
        all.extend(
            unproved_active
                .iter()
                .filter(|k| self.usable(class, k, caps).is_ok())
                .cloned(),
        );
        self.factors_still_needed(class, caps, &all) == 0
    }

    /// How many more distinct factor kinds the caller must prove; 0 means satisfied.
    ///
    /// Only distinct kinds that the class accepts count. When this IdP's pushes carry no number to match
    /// (`caps.push_number_matching == false`):
    /// - with `push_without_number_matching = "require_another_factor"` (the default), an approved push still
    ///   counts, but the requirement becomes at least 2, so a second, different factor is needed;
    /// - with `"refuse"`, an approved push does not count at all (it should never have been sent).
    #[must_use]
    pub fn factors_still_needed(
        &self,
        class: TargetClass,
        caps: &Capabilities,
        approved: &[FactorKind],
    ) -> u8 {
        let rule = self.factor_rule(class);
        let mode = self.rules.push_without_number_matching;
        let plain_push = !caps.push_number_matching;
        let counted: BTreeSet<&FactorKind> = approved
            .iter()
            .filter(|k| rule.accepts(k) && helpdesk_verifiable(k))
            .filter(|k| {
                !(**k == FactorKind::Push
                    && plain_push
                    && mode == PushWithoutNumberMatching::Refuse)
            })
            .collect();
        let mut required = rule.required();
        if plain_push
            && mode == PushWithoutNumberMatching::RequireAnotherFactor
            && counted.contains(&FactorKind::Push)
        {
            required = required.max(2);
        }
        let have = u8::try_from(counted.len()).unwrap_or(u8::MAX);
        required.saturating_sub(have)
    }
}
