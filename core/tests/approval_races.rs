//! Four-eyes decisions when approvers (or the requester) arrive at the same moment: deterministic interleavings.
//! A test double wraps the in-memory approval store and parks calls right after they read the request (both
//! approvers have seen it pending) until the test lets them go on to the compare-and-set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::gate::Gate;
use common::{World, ctx, sid, world_full};
use fctr_core::policy::Policy;
use fctr_core::{ActionRequest, Agent, Denial};
use fctr_ports::{
    Action, ActionKind, ApprovalDecision, ApprovalId, ApprovalRecord, ApprovalStore, DecideOutcome,
    EventKind, Outcome, PortError, PseudoId, Reason, TakeOutcome, TenantId,
};
use std::sync::Arc;
use std::time::Duration;

/// An approval store that passes a gate after `get` and after `find` have read.
struct GatedApprovals {
    inner: Arc<dyn ApprovalStore>,
    get: Gate,
    find: Gate,
}

#[async_trait]
impl ApprovalStore for GatedApprovals {
    async fn put(&self, record: &ApprovalRecord, ttl: Duration) -> Result<bool, PortError> {
        self.inner.put(record, ttl).await
    }
    async fn get(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let r = self.inner.get(tenant, id).await;
        self.get.pass().await;
        r
    }
    async fn find(
        &self,
        tenant: &TenantId,
        agent: &PseudoId,
        subject: &PseudoId,
        action: ActionKind,
    ) -> Result<Option<ApprovalRecord>, PortError> {
        let r = self.inner.find(tenant, agent, subject, action).await;
        self.find.pass().await;
        r
    }
    async fn pending(&self, tenant: &TenantId) -> Result<Vec<ApprovalRecord>, PortError> {
        self.inner.pending(tenant).await
    }
    async fn decide(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        decision: &ApprovalDecision,
        now: DateTime<Utc>,
    ) -> Result<DecideOutcome, PortError> {
        self.inner.decide(tenant, id, decision, now).await
    }
    async fn take(
        &self,
        tenant: &TenantId,
        id: ApprovalId,
        now: DateTime<Utc>,
    ) -> Result<TakeOutcome, PortError> {
        self.inner.take(tenant, id, now).await
    }
}

fn gated_world() -> (World, Arc<GatedApprovals>) {
    let policy = Policy::parse(
        "[four_eyes]\nactions = [\"reset_password\"]\napprover_roles = [\"tier3\"]\n",
    )
    .unwrap();
    let mut slot = None;
    let w = world_full(
        policy,
        |_| {},
        |_| {},
        |inner| {
            let g = Arc::new(GatedApprovals {
                inner,
                get: Gate::default(),
                find: Gate::default(),
            });
            slot = Some(g.clone());
            g
        },
    );
    (w, slot.unwrap())
}

async fn act(w: &World, a: &Agent) -> Result<(), Denial> {
    w.engine
        .perform_action(
            a,
            &ctx(),
            &sid("alice"),
            ActionRequest::from(Action::ResetPassword { send_email: false }),
        )
        .await
        .map(|_| ())
}

fn resets(w: &World) -> usize {
    w.idp
        .executed()
        .iter()
        .filter(|(_, k)| *k == ActionKind::ResetPassword)
        .count()
}

async fn requested(w: &World, a: &Agent) -> ApprovalId {
    w.verify_push(a, "alice").await;
    let d = act(w, a).await.unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    d.approval.unwrap()
}

/// Two approvers both read the request as pending, then both decide: exactly one decision is taken, the other
/// is told it was already decided, one `approval_decided` event is written, and what the requester can do
/// afterwards follows the one decision taken.
async fn two_approvers_at_once(first_approves: bool, second_approves: bool) {
    let (w, gate) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    let id = requested(&w, &a).await;
    let b1 = w.agent("agent3", "fctr-tier3");
    let b2 = w.agent("agent4", "fctr-tier3");
    gate.get.arm(2);
    let spawn = |b: Agent, approve: bool| {
        let e = w.engine.clone();
        tokio::spawn(async move { e.decide_approval(&b, &ctx(), id, approve).await })
    };
    let t1 = spawn(b1, first_approves);
    let t2 = spawn(b2, second_approves);
    gate.get.wait_parked(2).await;
    gate.get.release(2);
    let r1 = t1.await.unwrap();
    let r2 = t2.await.unwrap();
    let winners: Vec<bool> = [&r1, &r2]
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|d| d.approved))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one decision: {r1:?} {r2:?}");
    let loser = [r1, r2].into_iter().find_map(Result::err).unwrap();
    assert_eq!(loser.reason, Reason::ApprovalAlreadyDecided);

    let events = w.events().await;
    let decided: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::ApprovalDecided)
        .collect();
    assert_eq!(decided.len(), 1);
    let approved = winners[0];
    assert_eq!(
        decided[0].outcome,
        if approved {
            Outcome::Success
        } else {
            Outcome::Rejected
        }
    );
    let after = act(&w, &a).await;
    if approved {
        after.unwrap();
        assert_eq!(resets(&w), 1);
    } else {
        assert_eq!(after.unwrap_err().reason, Reason::GrantExpired);
        assert_eq!(resets(&w), 0);
    }
}

#[tokio::test]
async fn foureyes_race_two_approvers_approving_at_once_make_one_decision() {
    two_approvers_at_once(true, true).await;
}

#[tokio::test]
async fn foureyes_race_one_approving_one_refusing_at_once_make_one_decision() {
    two_approvers_at_once(true, false).await;
}

#[tokio::test]
async fn foureyes_race_one_refusing_one_approving_at_once_make_one_decision() {
    two_approvers_at_once(false, true).await;
}

/// After approval, two requests of the requesting agent both read the approved request before either takes it:
/// one action runs, the other is refused.
#[tokio::test]
async fn foureyes_race_an_approval_is_used_once_by_two_requests_at_once() {
    let (w, gate) = gated_world();
    let a = w.agent("agent2", "fctr-tier2");
    let id = requested(&w, &a).await;
    let b = w.agent("agent3", "fctr-tier3");
    w.engine
        .decide_approval(&b, &ctx(), id, true)
        .await
        .unwrap();
    gate.find.arm(2);
    let spawn = || {
        let (e, a) = (w.engine.clone(), a.clone());
        tokio::spawn(async move {
            e.perform_action(
                &a,
                &ctx(),
                &sid("alice"),
                ActionRequest::from(Action::ResetPassword { send_email: false }),
            )
            .await
            .map(|_| ())
        })
    };
    let t1 = spawn();
    let t2 = spawn();
    gate.find.wait_parked(2).await;
    gate.find.release(2);
    let results = [t1.await.unwrap(), t2.await.unwrap()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let refused = results.into_iter().find_map(Result::err).unwrap();
    assert_eq!(refused.reason, Reason::ApprovalAlreadyDecided);
    assert_eq!(resets(&w), 1);
}
