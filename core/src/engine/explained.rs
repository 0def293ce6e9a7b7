//! The card's explanations, worked out once per engine.
//!
//! What policy says about an action depends only on the agent's role, the caller's class, whether the caller is
//! protected, and what the identity provider can do: all fixed for an engine's life (a new policy is a new
//! engine). The card shows all nine actions on every lookup, and composing their sentences was half the engine's
//! time per lookup, so each answer is composed once here and shared.

use crate::policy::{Explanation, Policy, Role, TargetClass};
use fctr_ports::{ActionKind, Capabilities};
use std::collections::HashMap;
use std::sync::Arc;

const CLASSES: [TargetClass; 2] = [TargetClass::Standard, TargetClass::Privileged];
const PER_ROLE: usize = CLASSES.len() * 2 * ActionKind::ALL.len();

/// Every (role, class, protected, action) explanation, for one policy and one IdP's capabilities.
pub(crate) struct Explained {
    /// The capabilities these were composed for.
    caps: Capabilities,
    by_role: HashMap<String, Vec<Arc<Explanation>>>,
}

fn slot(class: TargetClass, protected: bool, action: ActionKind) -> usize {
    let class = match class {
        TargetClass::Standard => 0,
        TargetClass::Privileged => 1,
    };
    let action = ActionKind::ALL
        .iter()
        .position(|a| *a == action)
        .unwrap_or_default();
    (class * 2 + usize::from(protected)) * ActionKind::ALL.len() + action
}

impl Explained {
    pub(crate) fn new(policy: &Policy, caps: &Capabilities) -> Self {
        let by_role = policy
            .roles()
            .iter()
            .map(|role| {
                let mut all = Vec::with_capacity(PER_ROLE);
                for class in CLASSES {
                    for protected in [false, true] {
                        for action in ActionKind::ALL {
                            all.push(Arc::new(policy.explain(
                                Some(role),
                                action,
                                class,
                                protected,
                                Some(caps),
                            )));
                        }
                    }
                }
                (role.name().to_owned(), all)
            })
            .collect();
        Self {
            caps: caps.clone(),
            by_role,
        }
    }

    /// The explanation for `role`. Composed afresh when the IdP now reports other capabilities than at start, or
    /// for a role this policy does not hold (the engine's policy never changes, so that is only a safety net).
    pub(crate) fn get(
        &self,
        policy: &Policy,
        caps: &Capabilities,
        role: &Role,
        action: ActionKind,
        class: TargetClass,
        protected: bool,
    ) -> Arc<Explanation> {
        (*caps == self.caps)
            .then(|| self.by_role.get(role.name()))
            .flatten()
            .and_then(|all| all.get(slot(class, protected, action)))
            .cloned()
            .unwrap_or_else(|| {
                Arc::new(policy.explain(Some(role), action, class, protected, Some(caps)))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities {
            provider: "test".to_owned(),
            push: true,
            push_number_matching: true,
            code_verification: true,
            name_search: true,
            actions: ActionKind::ALL.into_iter().collect(),
        }
    }

    #[test]
    fn every_slot_holds_the_explanation_policy_would_compose() {
        let policy = Policy::default();
        let caps = caps();
        let explained = Explained::new(&policy, &caps);
        let mut seen = std::collections::HashSet::new();
        for role in policy.roles() {
            for class in CLASSES {
                for protected in [false, true] {
                    for action in ActionKind::ALL {
                        assert!(
                            seen.insert((role.name().to_owned(), slot(class, protected, action)))
                        );
                        let got = explained.get(&policy, &caps, role, action, class, protected);
                        let want =
                            policy.explain(Some(role), action, class, protected, Some(&caps));
                        assert_eq!(
                            *got,
                            want,
                            "{} {class:?} {protected} {action:?}",
                            role.name()
                        );
                    }
                }
            }
        }
        assert_eq!(seen.len(), policy.roles().len() * PER_ROLE);
    }

    #[test]
    fn other_capabilities_are_explained_afresh_not_from_the_cache() {
        let policy = Policy::default();
        let explained = Explained::new(&policy, &caps());
        let mut fewer = caps();
        fewer.actions.remove(&ActionKind::Unlock);
        let role = policy
            .roles()
            .iter()
            .find(|r| {
                policy.permits(r, crate::policy::Permission::Act(ActionKind::Unlock))
                    && policy.permits(r, crate::policy::Permission::Verify)
            })
            .expect("the default policy has a role that may unlock");
        let got = explained.get(
            &policy,
            &fewer,
            role,
            ActionKind::Unlock,
            TargetClass::Standard,
            false,
        );
        assert_eq!(got.blocked_by, Some(fctr_ports::Reason::Unsupported));
        let cached = explained.get(
            &policy,
            &caps(),
            role,
            ActionKind::Unlock,
            TargetClass::Standard,
            false,
        );
        assert_ne!(cached.blocked_by, Some(fctr_ports::Reason::Unsupported));
    }
}
