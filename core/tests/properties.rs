//! Properties of the engine that hold for any sequence of requests: no action without a live grant for the same
//! agent and caller, protected targets never touched, every refusal audited.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use chrono::Duration;
use common::{ctx, sid, world};
use fctr_ports::Clock;
use fctr_ports::{
    Action, ActionKind, AuditLog, AuditQuery, ChallengeState, EventKind, Outcome, Reason,
};
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Op {
    Begin {
        agent: usize,
        subject: usize,
    },
    Poll {
        agent: usize,
    },
    Act {
        agent: usize,
        subject: usize,
        action: usize,
    },
    Advance {
        minutes: i64,
    },
    Script {
        approve: bool,
    },
}

const AGENTS: [(&str, &str); 4] = [
    ("a1", "fctr-tier1"),
    ("a2", "fctr-tier2"),
    ("a3", "fctr-tier3"),
    ("b3", "fctr-tier3"),
];
const SUBJECTS: [&str; 3] = ["alice", "bob", "root"];
const ACTIONS: [ActionKind; 4] = [
    ActionKind::Unlock,
    ActionKind::ResetPassword,
    ActionKind::ResetFactors,
    ActionKind::Suspend,
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..AGENTS.len(), 0..SUBJECTS.len()).prop_map(|(agent, subject)| Op::Begin { agent, subject }),
        4 => (0..AGENTS.len()).prop_map(|agent| Op::Poll { agent }),
        4 => (0..AGENTS.len(), 0..SUBJECTS.len(), 0..ACTIONS.len())
            .prop_map(|(agent, subject, action)| Op::Act { agent, subject, action }),
        2 => (0i64..16).prop_map(|minutes| Op::Advance { minutes }),
        1 => any::<bool>().prop_map(|approve| Op::Script { approve }),
    ]
}

fn action(kind: ActionKind) -> Action {
    match kind {
        ActionKind::ResetPassword => Action::ResetPassword { send_email: false },
        ActionKind::ResetFactors => Action::ResetFactors,
        ActionKind::Suspend => Action::Suspend,
        _ => Action::Unlock,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn engine_invariants_hold_for_any_sequence(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let w = world();
            let agents: Vec<_> = AGENTS.iter().map(|(n, g)| w.agent(n, g)).collect();
            // The verification each agent last started, and grants we saw minted: (agent, subject, expiry).
            let mut last = vec![None; AGENTS.len()];
            let mut minted: Vec<(usize, usize, chrono::DateTime<chrono::Utc>, BTreeSet<ActionKind>)> = Vec::new();
            let mut used: BTreeSet<(usize, usize, chrono::DateTime<chrono::Utc>)> = BTreeSet::new();
            let mut expected_exec = 0usize;
            for op in ops {
                let before = w.audit.read(&AuditQuery::default()).await.unwrap().len();
                let result: Result<(), fctr_core::Denial> = match op {
                    Op::Begin { agent, subject } => {
                        match w.engine.begin_verification(&agents[agent], &ctx(), &sid(SUBJECTS[subject]), None).await {
                            Ok(v) => { last[agent] = Some((v.id, subject)); Ok(()) }
                            Err(d) => Err(d),
                        }
                    }
                    Op::Poll { agent } => match last[agent] {
                        None => Ok(()),
                        Some((id, subject)) => match w.engine.poll_verification(&agents[agent], &ctx(), id).await {
                            Ok(v) => {
                                if let Some(g) = v.grant {
                                    if !minted.iter().any(|m| m.0 == agent && m.1 == subject && m.2 == g.expires_at) {
                                        minted.push((agent, subject, g.expires_at, g.actions));
                                    }
                                }
                                Ok(())
                            }
                            Err(d) => Err(d),
                        },
                    },
                    Op::Act { agent, subject, action: a } => {
                        let kind = ACTIONS[a];
                        let now = w.clock.now();
                        let live = minted.iter().rev().find(|m| m.0 == agent && m.1 == subject).cloned();
                        match w.engine.perform_action(&agents[agent], &ctx(), &sid(SUBJECTS[subject]), action(kind)).await {
                            Ok(_) => {
                                // Property: an action ran only under a live, unused grant minted for this very
                                // agent and caller, covering this action, on an unprotected caller.
                                let (_, _, exp, actions) = live.clone().expect("an action ran without any grant for this agent and caller");
                                assert!(now < exp, "an action ran under an expired grant");
                                assert!(actions.contains(&kind), "an action ran that the grant does not cover");
                                assert!(used.insert((agent, subject, exp)), "a single-use grant was used twice");
                                assert_ne!(SUBJECTS[subject], "root", "a protected caller was acted on");
                                expected_exec += 1;
                                Ok(())
                            }
                            Err(d) => Err(d),
                        }
                    }
                    Op::Advance { minutes } => { w.clock.advance(Duration::minutes(minutes)); Ok(()) }
                    Op::Script { approve } => {
                        let last = if approve { ChallengeState::Approved } else { ChallengeState::Rejected };
                        w.idp.script_push([ChallengeState::Waiting, last]);
                        Ok(())
                    }
                };
                if let Err(d) = result {
                    // Property: every refusal leaves an audit event with its reason.
                    let events = w.audit.read(&AuditQuery::default()).await.unwrap();
                    assert!(events.len() > before, "denial {:?} was not audited", d.reason);
                    let last = &events.last().unwrap().event;
                    assert_eq!(last.reason, Some(d.reason));
                    assert!(matches!(last.outcome, Outcome::Denied | Outcome::Rejected | Outcome::Failed));
                    assert!(matches!(last.kind, EventKind::Denied | EventKind::CodeSubmitted | EventKind::ActionOutcome));
                }
            }
            // Clearing sessions is the "not me" response to a denied push (no grant needed, not in ACTIONS);
            // every other action ran under a grant.
            let granted = w.idp.executed().into_iter().filter(|(_, k)| *k != ActionKind::ClearSessions).count();
            assert_eq!(granted, expected_exec);
            assert!(w.idp.executed().iter().all(|(s, _)| s.as_str() != "root"));
            let _ = Reason::NoLiveGrant;
        });
    }
}
