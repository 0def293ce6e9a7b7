//! Four-eyes approval (`[four_eyes]`): an action policy holds back waits for a second agent; who may decide, what a
//! refusal or an expiry leaves, single use. The concurrent decisions are in `tests/approval_races.rs`.

use super::*;
use common::World;
use fctr_core::{ActionRequest, Agent, Denial};
use fctr_ports::{ApprovalId, AuditDetail, AuditEvent};

const FOUR_EYES: &str = r#"
[four_eyes]
actions = ["reset_password"]
approver_roles = ["tier3"]
request_ttl_seconds = 120
"#;

fn w() -> World {
    world_with(Policy::parse(FOUR_EYES).unwrap())
}

fn requester(w: &World) -> Agent {
    w.agent("agent2", "fctr-tier2")
}

fn approver(w: &World) -> Agent {
    w.agent("agent3", "fctr-tier3")
}

fn reset_req() -> ActionRequest {
    ActionRequest::from(reset())
}

async fn act(w: &World, a: &Agent, subject: &str) -> Result<(), Denial> {
    w.engine
        .perform_action(a, &ctx(), &sid(subject), reset_req())
        .await
        .map(|_| ())
}

/// Verifies alice for `a` and asks for the held action: it waits, and the answer names the request.
async fn requested(w: &World, a: &Agent) -> ApprovalId {
    w.verify_push(a, "alice").await;
    let d = act(w, a, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    d.approval.expect("the pending answer names the request")
}

fn resets(w: &World) -> usize {
    w.idp
        .executed()
        .iter()
        .filter(|(_, k)| *k == ActionKind::ResetPassword)
        .count()
}

fn of_kind(events: &[AuditEvent], kind: EventKind) -> Vec<AuditEvent> {
    events.iter().filter(|e| e.kind == kind).cloned().collect()
}

#[tokio::test]
async fn foureyes_the_action_waits_for_a_second_agent_and_then_runs_once() {
    let w = w();
    // The requesting agent is a user of the IdP too: their name is read from it.
    w.idp
        .add_user(common::user("agent2", vec![], &["fctr-tier2"]));
    let (a, b) = (requester(&w), approver(&w));
    let id = requested(&w, &a).await;
    assert_eq!(resets(&w), 0, "nothing ran before the approval");
    // Asking again while it waits: the same request, no second one.
    let again = act(&w, &a, "alice").await.unwrap_err();
    assert_eq!(
        (again.reason, again.approval),
        (Reason::ApprovalPending, Some(id))
    );
    assert_eq!(resets(&w), 0);

    let queue = w.engine.pending_approvals(&b, &ctx()).await.unwrap();
    assert_eq!(queue.len(), 1);
    let q = &queue[0];
    assert_eq!(q.id, id);
    assert_eq!(q.action, ActionKind::ResetPassword);
    assert_eq!(q.class, fctr_core::policy::TargetClass::Standard);
    assert_eq!(q.factors, vec![FactorKind::Push]);
    assert_eq!(
        q.requested_by, "User agent2",
        "the requester as the IdP names them, read when the request was made"
    );
    assert_eq!(
        q.caller.as_ref().map(|p| p.expose_pii().to_owned()),
        Some("User alice".to_owned())
    );
    // Seeing the caller's name in the queue is audited as the approver's lookup of the caller.
    assert!(w.events().await.iter().any(|e| e.kind == EventKind::Lookup
        && e.agent.as_ref() == Some(b.pseudonym())
        && e.target.as_ref() == Some(&w.engine.pseudonymizer().subject(&sid("alice")))));
    // The requesting agent does not see their own request.
    let mine = w.engine.pending_approvals(&a, &ctx()).await.unwrap_err();
    assert_eq!(mine.reason, Reason::NotPermittedForRole);

    let decided = w
        .engine
        .decide_approval(&b, &ctx(), id, true)
        .await
        .unwrap();
    assert!(decided.approved);
    assert!(
        w.engine
            .pending_approvals(&b, &ctx())
            .await
            .unwrap()
            .is_empty(),
        "a decided request leaves the queue"
    );
    act(&w, &a, "alice").await.unwrap();
    assert_eq!(resets(&w), 1);
    // Used once only: the approval and the grant are spent.
    let d = act(&w, &a, "alice").await.unwrap_err();
    assert_ne!(d.reason, Reason::ApprovalPending);
    assert_eq!(resets(&w), 1);
    // A new verification needs a new approval: the old one does not carry over.
    w.verify_push(&a, "alice").await;
    let d = act(&w, &a, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    assert_ne!(d.approval, Some(id));
    assert_eq!(resets(&w), 1);

    // Audited with pseudonyms: requested (pending) by the agent, decided (success) by the approver.
    let events = w.events().await;
    let req = of_kind(&events, EventKind::ApprovalRequested);
    assert_eq!(req.len(), 2);
    assert_eq!(req[0].outcome, Outcome::Pending);
    assert_eq!(req[0].agent.as_ref(), Some(a.pseudonym()));
    assert_eq!(req[0].action, Some(ActionKind::ResetPassword));
    assert_eq!(
        req[0].target.as_ref(),
        Some(&w.engine.pseudonymizer().subject(&sid("alice")))
    );
    let dec = of_kind(&events, EventKind::ApprovalDecided);
    assert_eq!(dec.len(), 1);
    assert_eq!(dec[0].outcome, Outcome::Success);
    assert_eq!(dec[0].agent.as_ref(), Some(b.pseudonym()));
    assert_eq!(
        dec[0].detail,
        Some(AuditDetail::Approval {
            approval_id: id.as_uuid(),
            requested_by: Some(a.pseudonym().clone()),
        })
    );
    let json = serde_json::to_string(&events).unwrap();
    for raw in ["alice", "agent2", "agent3", "User agent2", "User alice"] {
        assert!(!json.contains(raw), "{raw} reached the audit log");
    }
}

#[tokio::test]
async fn foureyes_actions_policy_does_not_hold_back_run_as_before() {
    let w = w();
    let a = requester(&w);
    w.verify_push(&a, "alice").await;
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap();
    assert!(of_kind(&w.events().await, EventKind::ApprovalRequested).is_empty());
}

#[tokio::test]
async fn foureyes_a_class_holds_back_every_action_on_its_callers() {
    let w = world_with(
        Policy::parse("[four_eyes]\nclasses = [\"standard\"]\napprover_roles = [\"tier3\"]\n")
            .unwrap(),
    );
    let a = requester(&w);
    w.verify_push(&a, "alice").await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    assert!(w.idp.executed().is_empty());
}

#[tokio::test]
async fn foureyes_without_a_grant_no_request_is_made() {
    let w = w();
    let a = requester(&w);
    let d = act(&w, &a, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
    assert_eq!(d.approval, None);
    assert!(of_kind(&w.events().await, EventKind::ApprovalRequested).is_empty());
}

#[tokio::test]
async fn foureyes_the_same_agent_cannot_approve() {
    let w = w();
    // A tier3 requester holds the approver role too: still not for their own request.
    let a = approver(&w);
    let id = requested(&w, &a).await;
    let d = w
        .engine
        .decide_approval(&a, &ctx(), id, true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SelfApproval);
    w.assert_audited(Reason::SelfApproval).await;
    assert!(
        w.engine
            .pending_approvals(&a, &ctx())
            .await
            .unwrap()
            .is_empty()
    );
    // Still pending, still unusable.
    let d = act(&w, &a, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    assert_eq!(resets(&w), 0);
}

#[tokio::test]
async fn foureyes_the_caller_cannot_approve_themselves() {
    let w = w();
    let a = requester(&w);
    let id = requested(&w, &a).await;
    // The caller alice is also a tier3 agent: her IdP id is the request's subject.
    let alice = w.agent("alice", "fctr-tier3");
    assert!(
        w.engine
            .pending_approvals(&alice, &ctx())
            .await
            .unwrap()
            .is_empty(),
        "a request about the approver is not in their queue"
    );
    let d = w
        .engine
        .decide_approval(&alice, &ctx(), id, true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SelfApproval);
    w.assert_audited(Reason::SelfApproval).await;
    assert_eq!(
        act(&w, &a, "alice").await.unwrap_err().reason,
        Reason::ApprovalPending
    );
    assert_eq!(resets(&w), 0);
}

#[tokio::test]
async fn foureyes_a_role_that_is_not_an_approver_cannot_approve() {
    let w = w();
    let a = requester(&w);
    let id = requested(&w, &a).await;
    let other = w.agent("agent4", "fctr-tier2");
    let d = w
        .engine
        .decide_approval(&other, &ctx(), id, true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NotPermittedForRole);
    w.assert_audited(Reason::NotPermittedForRole).await;
    let d = w
        .engine
        .pending_approvals(&other, &ctx())
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NotPermittedForRole);
    let nobody = w.agent("agent5", "no-such-group");
    let d = w
        .engine
        .decide_approval(&nobody, &ctx(), id, true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoRole);
    assert_eq!(
        act(&w, &a, "alice").await.unwrap_err().reason,
        Reason::ApprovalPending
    );
    assert_eq!(resets(&w), 0);
}

#[tokio::test]
async fn foureyes_a_refused_request_leaves_no_usable_grant() {
    let w = w();
    let (a, b) = (requester(&w), approver(&w));
    let id = requested(&w, &a).await;
    let decided = w
        .engine
        .decide_approval(&b, &ctx(), id, false)
        .await
        .unwrap();
    assert!(!decided.approved);
    // Neither the held action nor any other runs under the grant.
    let d = act(&w, &a, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::GrantExpired);
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::GrantExpired);
    assert!(w.idp.executed().is_empty());
    // A second decision changes nothing.
    let d = w
        .engine
        .decide_approval(&b, &ctx(), id, true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalAlreadyDecided);
    let dec = of_kind(&w.events().await, EventKind::ApprovalDecided);
    assert_eq!(dec.len(), 1);
    assert_eq!(dec[0].outcome, Outcome::Rejected);
    assert_eq!(dec[0].reason, Some(Reason::ApprovalRefused));
}

#[tokio::test]
async fn foureyes_an_expired_request_cannot_be_approved() {
    let w = w();
    let (a, b) = (requester(&w), approver(&w));
    let id = requested(&w, &a).await;
    w.clock.advance(Duration::seconds(121));
    let d = w
        .engine
        .decide_approval(&b, &ctx(), id, true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalExpired);
    w.assert_audited(Reason::ApprovalExpired).await;
    assert!(
        w.engine
            .pending_approvals(&b, &ctx())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(resets(&w), 0);
}

#[tokio::test]
async fn foureyes_an_expired_approval_cannot_be_used() {
    let w = w();
    let (a, b) = (requester(&w), approver(&w));
    let id = requested(&w, &a).await;
    w.engine
        .decide_approval(&b, &ctx(), id, true)
        .await
        .unwrap();
    w.clock.advance(Duration::seconds(121));
    // The grant (10 minutes) still lives; the approval (2 minutes) does not: a new request, nothing runs.
    let d = act(&w, &a, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    assert_ne!(d.approval, Some(id));
    assert_eq!(resets(&w), 0);
}

#[tokio::test]
async fn foureyes_an_approval_is_bound_to_its_agent() {
    let w = w();
    let (a, b) = (requester(&w), approver(&w));
    let id = requested(&w, &a).await;
    w.engine
        .decide_approval(&b, &ctx(), id, true)
        .await
        .unwrap();
    // Another agent with their own grant for the same caller does not inherit it.
    let c = w.agent("agent6", "fctr-tier2");
    w.verify_push(&c, "alice").await;
    let d = act(&w, &c, "alice").await.unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    assert_ne!(d.approval, Some(id));
    assert_eq!(resets(&w), 0);
}

#[tokio::test]
async fn foureyes_an_unknown_request_is_not_found() {
    let w = w();
    let b = approver(&w);
    let d = w
        .engine
        .decide_approval(&b, &ctx(), ApprovalId::random(), true)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalNotFound);
    w.assert_audited(Reason::ApprovalNotFound).await;
}

/// The locked-out procedure's unlock before verification is not a way around four-eyes: an unlock that policy
/// holds back needs a grant (and then an approval) like any other held action.
#[tokio::test]
async fn foureyes_a_held_unlock_takes_no_shortcut_before_verification() {
    let w = world_with(
        Policy::parse("[four_eyes]\nactions = [\"unlock\"]\napprover_roles = [\"tier3\"]\n")
            .unwrap(),
    );
    w.idp
        .set_status(&sid("alice"), fctr_ports::AccountStatus::LockedOut);
    let a = requester(&w);
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
    assert!(w.idp.executed().is_empty(), "nothing ran");
    // Without four-eyes the same unlock runs before verification (the procedure's default).
    let w = world();
    w.idp
        .set_status(&sid("alice"), fctr_ports::AccountStatus::LockedOut);
    let a = requester(&w);
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap();
}

/// The approval covers the factor the request named: approved to remove one factor, the agent cannot remove
/// another under it (nothing runs; the other removal is a request of its own).
#[tokio::test]
async fn foureyes_an_approved_factor_removal_covers_that_factor_only() {
    let w = world_with(
        Policy::parse("[four_eyes]\nactions = [\"remove_factor\"]\napprover_roles = [\"tier3\"]\n")
            .unwrap(),
    );
    let a = w.agent("agent4", "fctr-tier3");
    let b = approver(&w);
    let factors = fctr_ports::Directory::list_factors(w.idp.as_ref(), &sid("alice"))
        .await
        .unwrap();
    assert!(factors.len() >= 2, "{factors:?}");
    let (named, other) = (factors[0].id.clone(), factors[1].id.clone());
    let remove = |f: &fctr_ports::FactorId| {
        ActionRequest::new(ActionKind::RemoveFactor, Some(f.clone())).unwrap()
    };
    w.verify_push(&a, "alice").await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), remove(&named))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ApprovalPending);
    w.engine
        .decide_approval(&b, &ctx(), d.approval.unwrap(), true)
        .await
        .unwrap();
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), remove(&other))
        .await
        .unwrap_err();
    assert_eq!(
        d.reason,
        Reason::ApprovalPending,
        "another factor: a new request"
    );
    assert!(
        !w.idp
            .executed()
            .iter()
            .any(|(_, k)| *k == ActionKind::RemoveFactor),
        "nothing was removed"
    );
}

/// With `[locked_out] procedure = "escalate"`, a locked-out caller's unlock is refused even when four-eyes holds
/// unlocks back and the agent holds a grant: approval is no way around the procedure.
#[tokio::test]
async fn foureyes_a_held_unlock_still_escalates_a_locked_out_caller() {
    let w = world_with(
        Policy::parse(
            "[locked_out]\nprocedure = \"escalate\"\n\n[four_eyes]\nactions = [\"unlock\"]\napprover_roles = [\"tier3\"]\n",
        )
        .unwrap(),
    );
    let a = requester(&w);
    w.verify_push(&a, "alice").await;
    w.idp
        .set_status(&sid("alice"), fctr_ports::AccountStatus::LockedOut);
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::CallerLockedOut);
    assert!(w.idp.executed().is_empty(), "nothing ran");
}
