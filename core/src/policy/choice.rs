//! The factor choice, as a pure function of the caller's factors, what the verification already proved and what
//! the IdP can do: which factor to challenge next, or why none may be. No engine, no ports, no clock.

use super::{Policy, TargetClass};
use fctr_ports::{
    ApprovedFactor, Capabilities, FactorId, FactorInfo, FactorKind, FactorStatus, Reason,
};

/// What the factor choice looks at.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FactorChoice<'a> {
    /// The caller's class.
    pub class: TargetClass,
    /// What this identity provider can challenge.
    pub caps: &'a Capabilities,
    /// The caller's enrolled factors, in the directory's order (only active ones are candidates).
    pub enrolled: &'a [FactorInfo],
    /// Factors this verification already proved (none for a new verification).
    pub approved: &'a [ApprovedFactor],
}

impl<'a> FactorChoice<'a> {
    /// The choice for a new verification of a caller of `class` with these enrolled factors.
    #[must_use]
    pub fn new(class: TargetClass, caps: &'a Capabilities, enrolled: &'a [FactorInfo]) -> Self {
        Self {
            class,
            caps,
            enrolled,
            approved: &[],
        }
    }

    /// The choice of a further factor, after these were proved.
    #[must_use]
    pub fn after(mut self, approved: &'a [ApprovedFactor]) -> Self {
        self.approved = approved;
        self
    }
}

/// Why no factor may be challenged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no factor may be challenged: {}", reason.as_str())]
#[non_exhaustive]
pub struct NoFactor {
    /// The machine-readable reason.
    pub reason: Reason,
    /// The kind of the factor asked for or picked, when there was one (so the refusal can name it).
    pub kind: Option<FactorKind>,
}

impl NoFactor {
    fn new(reason: Reason, kind: Option<&FactorKind>) -> Self {
        Self {
            reason,
            kind: kind.cloned(),
        }
    }
}

impl Policy {
    /// The factor to challenge next: `requested` (by id) if the agent named one, else the first of the caller's
    /// unproved active factors in the class's preference order that [`Policy::check_factor`] allows.
    ///
    /// Factors this verification already proved are not candidates, and a stronger kind already proved does not
    /// make a weaker next factor a downgrade: it is an addition. A challenge that could never lead to a grant is
    /// refused before anything is sent (it would only be a nuisance push).
    ///
    /// # Errors
    /// [`NoFactor`] with, in this order: [`Reason::FactorNotEnrolled`] (the requested factor is not an active
    /// factor of the caller), [`Reason::FactorNotAccepted`] (nothing to offer, or the factor was already proved),
    /// the reason of a [`super::FactorRefusal`] (not accepted, downgrade), [`Reason::NotEnoughFactors`].
    pub fn choose_factor<'a>(
        &self,
        c: &FactorChoice<'a>,
        requested: Option<&FactorId>,
    ) -> Result<&'a FactorInfo, NoFactor> {
        let active: Vec<&'a FactorInfo> = c
            .enrolled
            .iter()
            .filter(|f| f.status == FactorStatus::Active)
            .collect();
        let proved = |f: &FactorInfo| c.approved.iter().any(|a| a.factor == f.id);
        let chosen = match requested {
            Some(id) => active.iter().find(|f| &f.id == id).copied(),
            None => {
                let candidates: Vec<&'a FactorInfo> =
                    active.iter().copied().filter(|f| !proved(f)).collect();
                self.first_preferred(c.class, &candidates, c.caps)
            }
        };
        let Some(chosen) = chosen else {
            let reason = if requested.is_some() {
                Reason::FactorNotEnrolled
            } else {
                Reason::FactorNotAccepted
            };
            return Err(NoFactor::new(reason, None));
        };
        let refuse = |reason| NoFactor::new(reason, Some(&chosen.kind));
        if proved(chosen) {
            // The same factor twice proves nothing new.
            return Err(refuse(Reason::FactorNotAccepted));
        }
        let unproved_kinds: Vec<FactorKind> = active
            .iter()
            .filter(|f| !c.approved.iter().any(|a| a.kind == f.kind))
            .map(|f| f.kind.clone())
            .collect();
        self.check_factor(c.class, &chosen.kind, &unproved_kinds, c.caps)
            .map_err(|r| refuse(r.reason()))?;
        let approved_kinds: Vec<FactorKind> = c.approved.iter().map(|a| a.kind.clone()).collect();
        if !self.can_complete(c.class, c.caps, &approved_kinds, &unproved_kinds) {
            return Err(refuse(Reason::NotEnoughFactors));
        }
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use fctr_ports::ActionKind;
    use std::collections::BTreeSet;

    fn caps() -> Capabilities {
        Capabilities {
            provider: "test".to_owned(),
            push: true,
            push_number_matching: true,
            code_verification: true,
            name_search: true,
            actions: BTreeSet::from([ActionKind::Unlock]),
        }
    }

    fn factor(id: &str, kind: FactorKind) -> FactorInfo {
        FactorInfo {
            id: FactorId::parse(id).unwrap(),
            kind,
            status: FactorStatus::Active,
            vendor: None,
            label: None,
        }
    }

    fn proved(f: &FactorInfo) -> ApprovedFactor {
        ApprovedFactor {
            factor: f.id.clone(),
            kind: f.kind.clone(),
            at: Utc::now(),
            number_matched: true,
        }
    }

    fn enrolled() -> Vec<FactorInfo> {
        vec![
            factor("totp1", FactorKind::Totp),
            factor("push1", FactorKind::Push),
            factor("sms1", FactorKind::Sms),
        ]
    }

    #[test]
    fn policy_order_wins_over_directory_order() {
        let (p, caps, f) = (Policy::default(), caps(), enrolled());
        let c = FactorChoice::new(TargetClass::Standard, &caps, &f);
        assert_eq!(p.choose_factor(&c, None).unwrap().id.as_str(), "push1");
    }

    #[test]
    fn a_requested_factor_must_be_active_and_accepted() {
        let (p, caps, mut f) = (Policy::default(), caps(), enrolled());
        f[1].status = FactorStatus::Inactive;
        let c = FactorChoice::new(TargetClass::Standard, &caps, &f);
        let gone = FactorId::parse("push1").unwrap();
        assert_eq!(
            p.choose_factor(&c, Some(&gone)).unwrap_err(),
            NoFactor::new(Reason::FactorNotEnrolled, None)
        );
        let sms = FactorId::parse("sms1").unwrap();
        assert_eq!(
            p.choose_factor(&c, Some(&sms)).unwrap_err(),
            NoFactor::new(Reason::FactorNotAccepted, Some(&FactorKind::Sms))
        );
        // With the push inactive, TOTP is the best left.
        assert_eq!(p.choose_factor(&c, None).unwrap().id.as_str(), "totp1");
    }

    #[test]
    fn a_weaker_factor_is_a_downgrade_when_a_stronger_one_is_enrolled() {
        // A push without number matching is weaker than the TOTP the caller also has.
        let (p, mut caps) = (Policy::default(), caps());
        caps.push_number_matching = false;
        let f = vec![
            factor("push1", FactorKind::Push),
            factor("totp1", FactorKind::Totp),
        ];
        let c = FactorChoice::new(TargetClass::Standard, &caps, &f);
        let push = FactorId::parse("push1").unwrap();
        let refused = p.choose_factor(&c, Some(&push)).unwrap_err();
        assert_eq!(refused.reason, Reason::DowngradeRefused);
        assert_eq!(refused.kind, Some(FactorKind::Push));
        assert_eq!(p.choose_factor(&c, None).unwrap().id.as_str(), "totp1");
    }

    #[test]
    fn a_privileged_caller_gets_a_second_different_factor_and_never_the_first_again() {
        let (p, caps, f) = (Policy::default(), caps(), enrolled());
        let first = FactorChoice::new(TargetClass::Privileged, &caps, &f);
        let push = p.choose_factor(&first, None).unwrap();
        assert_eq!(push.kind, FactorKind::Push);
        let approved = [proved(push)];
        let next = first.after(&approved);
        assert_eq!(p.choose_factor(&next, None).unwrap().id.as_str(), "totp1");
        assert_eq!(
            p.choose_factor(&next, Some(&push.id)).unwrap_err(),
            NoFactor::new(Reason::FactorNotAccepted, Some(&FactorKind::Push))
        );
    }

    #[test]
    fn no_challenge_is_sent_that_can_never_complete() {
        let (p, caps) = (Policy::default(), caps());
        // Privileged callers need two of push/TOTP; a push alone can never get there.
        let f = vec![factor("push1", FactorKind::Push)];
        let c = FactorChoice::new(TargetClass::Privileged, &caps, &f);
        assert_eq!(
            p.choose_factor(&c, None).unwrap_err(),
            NoFactor::new(Reason::NotEnoughFactors, Some(&FactorKind::Push))
        );
        let none: Vec<FactorInfo> = Vec::new();
        let c = FactorChoice::new(TargetClass::Standard, &caps, &none);
        assert_eq!(
            p.choose_factor(&c, None).unwrap_err(),
            NoFactor::new(Reason::FactorNotAccepted, None)
        );
    }
}
