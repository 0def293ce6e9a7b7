//! Engine: the basic flow and every refusal on its way: roles, protected callers, grants bound and expiring, IdP and audit failures.

use super::*;

#[tokio::test]
async fn tier2_verifies_by_push_then_resets_password_once() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    assert_eq!(v.number, Some(42), "the number to read to the caller");
    assert_eq!(v.factor, Some(FactorKind::Push), "policy prefers push");
    let _ = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    let g = v.grant.expect("a grant");
    assert_eq!(g.assurance, "AAL2-capable authenticator verified");
    assert!(g.actions.contains(&ActionKind::ResetPassword));
    assert!(
        !g.actions.contains(&ActionKind::ResetFactors),
        "tier 2 may not reset factors"
    );

    let out = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap();
    assert!(out.receipt.secret.is_some(), "the one-time reset link");
    assert_eq!(
        w.idp.executed(),
        vec![(sid("alice"), ActionKind::ResetPassword)]
    );

    let kinds: Vec<EventKind> = w.events().await.iter().map(|e| e.kind).collect();
    let intent = kinds
        .iter()
        .position(|k| *k == EventKind::ActionIntent)
        .unwrap();
    let outcome = kinds
        .iter()
        .position(|k| *k == EventKind::ActionOutcome)
        .unwrap();
    assert!(
        intent < outcome,
        "intent is written before the outcome: {kinds:?}"
    );

    let again = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap_err();
    assert_eq!(again.reason, Reason::GrantUsed);
    w.assert_audited(Reason::GrantUsed).await;
    assert_eq!(w.idp.executed().len(), 1);
}

#[tokio::test]
async fn tier1_is_offered_nothing_and_refused_even_when_verified() {
    let w = world();
    let a = w.agent("agent1", "fctr-tier1");
    w.verify_push(&a, "alice").await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), reset())
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NotPermittedForRole);
    w.assert_audited(Reason::NotPermittedForRole).await;
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert!(
        card.actions
            .iter()
            .all(|x| !x.available_now && !x.permitted_for_role)
    );
    assert!(w.idp.executed().is_empty());
}

#[tokio::test]
async fn agent_without_role_is_refused_everything() {
    let w = world();
    let a = w.agent("nobody", "Staff");
    assert_eq!(a.role(), None);
    let d = w
        .engine
        .lookup(&a, &ctx(), &sid("alice"))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoRole);
    let d = w
        .engine
        .sign_in(AgentId::parse("nobody").unwrap(), &["Staff".into()], &ctx())
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoRole);
    w.assert_audited(Reason::NoRole).await;
}

#[tokio::test]
async fn protected_target_is_never_challenged_or_acted_on() {
    let w = world();
    let a = w.agent("agent3", "fctr-tier3");
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("root"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ProtectedTarget);
    w.assert_audited(Reason::ProtectedTarget).await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("root"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::ProtectedTarget);
    let card = w.engine.lookup(&a, &ctx(), &sid("root")).await.unwrap();
    assert!(card.protected && card.recommended_factor.is_none());
    assert!(w.idp.executed().is_empty());
}

#[tokio::test]
async fn grant_is_bound_to_its_agent_and_its_caller() {
    let w = world();
    let a = w.agent("agentA", "fctr-tier2");
    let b = w.agent("agentB", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    let d = w
        .engine
        .perform_action(&b, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(
        d.reason,
        Reason::NoLiveGrant,
        "another agent cannot use A's grant"
    );
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("bob"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(
        d.reason,
        Reason::NoLiveGrant,
        "A's grant for alice does not cover bob"
    );
    w.assert_audited(Reason::NoLiveGrant).await;
    // B cannot even poll A's verification.
    assert!(w.idp.executed().is_empty());
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap();
}

#[tokio::test]
async fn another_agents_verification_is_not_found() {
    let w = world();
    let a = w.agent("agentA", "fctr-tier2");
    let b = w.agent("agentB", "fctr-tier2");
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    let d = w
        .engine
        .poll_verification(&b, &ctx(), v.id)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::VerificationNotFound);
}

#[tokio::test]
async fn expired_grant_is_refused() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    w.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::GrantExpired);
    w.assert_audited(Reason::GrantExpired).await;
    assert!(w.idp.executed().is_empty());
}

#[tokio::test]
async fn verification_window_closes() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([ChallengeState::Waiting]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(10));
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Expired);
    assert!(v.grant.is_none());
}

/// With the "not me" response off, a denied push leaves no grant; with it on (the default) the caller is blocked
/// as well.
#[tokio::test]
async fn denied_push_mints_nothing() {
    for (policy, reason) in [
        (
            "[alarms.not_me]\non_push_denied = false\n",
            Reason::NoLiveGrant,
        ),
        ("", Reason::CallerBlocked),
    ] {
        denied_push_refuses_with(Policy::parse(policy).unwrap(), reason).await;
    }
}

async fn denied_push_refuses_with(policy: Policy, reason: Reason) {
    let w = world_with(policy);
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([ChallengeState::Rejected]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert_eq!(v.status, VerificationStatus::Rejected);
    assert_eq!(v.reason, Some(Reason::ChallengeRejected));
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, reason);
}

#[tokio::test]
async fn idp_error_during_poll_mints_no_grant() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([ChallengeState::Approved]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    w.idp.fail(IdpMethod::Poll, true);
    let d = w
        .engine
        .poll_verification(&a, &ctx(), v.id)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::IdpError);
    w.assert_audited(Reason::IdpError).await;
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NoLiveGrant);
}

#[tokio::test]
async fn audit_failure_stops_the_action_and_keeps_the_grant() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    w.audit.fail_appends(true);
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::AuditUnavailable);
    assert!(w.idp.executed().is_empty(), "no intent, no action");
    w.audit.fail_appends(false);
    w.engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap();
    assert_eq!(w.idp.executed().len(), 1);
}

#[tokio::test]
async fn idp_failure_during_action_is_audited_not_retried() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.verify_push(&a, "alice").await;
    w.idp.fail(IdpMethod::Execute, true);
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::IdpError);
    let events = w.events().await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind, last.outcome),
        (EventKind::ActionOutcome, Outcome::Failed)
    );
    // The single-use grant was spent on the attempt: the outcome is unknown, so no blind retry.
    let d = w
        .engine
        .perform_action(&a, &ctx(), &sid("alice"), Action::Unlock)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::GrantUsed);
}

/// A card's audit event is appended while the IdP is read: with the log down, the read may have happened but
/// nothing is shown and the refusal says why; with the IdP down, the refusal is recorded after the lookup event.
#[tokio::test]
async fn a_card_is_shown_only_when_its_lookup_is_durably_audited() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    w.audit.fail_appends(true);
    let d = w
        .engine
        .lookup(&a, &ctx(), &sid("alice"))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::AuditUnavailable);
    let d = w
        .engine
        .search(
            &a,
            &ctx(),
            &fctr_ports::UserQuery::Login(fctr_ports::Pii::new("alice@example.com".to_owned())),
        )
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::AuditUnavailable);
    w.audit.fail_appends(false);

    w.idp.fail(fctr_testkit::IdpMethod::Groups, true);
    let d = w.engine.lookup(&a, &ctx(), &sid("bob")).await.unwrap_err();
    assert_eq!(d.reason, Reason::IdpError);
    let kinds: Vec<_> = w.events().await.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        [fctr_ports::EventKind::Lookup, fctr_ports::EventKind::Denied]
    );
    w.idp.fail(fctr_testkit::IdpMethod::Groups, false);
    let card = w.engine.lookup(&a, &ctx(), &sid("bob")).await.unwrap();
    assert_eq!(card.user.id, sid("bob"));
}

/// An audit log that notes which events were being appended at the same time: each append waits a turn before it
/// is stored, so appends started together (one `join!`, which a durable store commits as one group) overlap.
struct Overlapping {
    inner: Arc<dyn fctr_ports::AuditLog>,
    grants: Arc<dyn fctr_ports::GrantStore>,
    /// Whether the agent's grant for the event's caller was stored when the result's event was appended.
    grant_stored_before_result: std::sync::Mutex<Option<bool>>,
    in_flight: std::sync::Mutex<Vec<EventKind>>,
    /// For each append, the kinds in flight when it was stored (itself included).
    together: std::sync::Mutex<Vec<(EventKind, Vec<EventKind>)>>,
}

#[async_trait::async_trait]
impl fctr_ports::AuditLog for Overlapping {
    async fn append(
        &self,
        event: fctr_ports::AuditEvent,
    ) -> Result<fctr_ports::SealedEvent, fctr_ports::PortError> {
        let kind = event.kind;
        if kind == EventKind::ChallengeResult {
            let stored = match (&event.agent, &event.target) {
                (Some(a), Some(t)) => self.grants.find_grant(a, t).await.unwrap().is_some(),
                _ => false,
            };
            *self.grant_stored_before_result.lock().unwrap() = Some(stored);
        }
        self.in_flight.lock().unwrap().push(kind);
        tokio::task::yield_now().await;
        let seen = self.in_flight.lock().unwrap().clone();
        self.together.lock().unwrap().push((kind, seen));
        let r = self.inner.append(event).await;
        let mut f = self.in_flight.lock().unwrap();
        if let Some(i) = f.iter().position(|k| *k == kind) {
            f.remove(i);
        }
        r
    }
    async fn read(
        &self,
        q: &fctr_ports::AuditQuery,
    ) -> Result<Vec<fctr_ports::SealedEvent>, fctr_ports::PortError> {
        self.inner.read(q).await
    }
    async fn verify_chain(
        &self,
    ) -> Result<Result<fctr_ports::ChainSummary, fctr_ports::ChainBreak>, fctr_ports::PortError>
    {
        self.inner.verify_chain().await
    }
    async fn purge_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<fctr_ports::PurgeReport, fctr_ports::PortError> {
        self.inner.purge_before(before).await
    }
}

/// The approval's result and the grant's announcement are appended side by side (one durable commit on a store
/// that groups concurrent appends), after the grant is stored, and in that order in the chain.
#[tokio::test]
async fn an_approval_appends_its_result_and_grant_together_in_order() {
    let overlap = Arc::new(std::sync::OnceLock::<Arc<Overlapping>>::new());
    let slot = Arc::clone(&overlap);
    let w = common::world_wrapped(
        Policy::default(),
        |_| {},
        move |ports| {
            let o = Arc::new(Overlapping {
                inner: Arc::clone(&ports.audit),
                grants: Arc::clone(&ports.grants),
                grant_stored_before_result: std::sync::Mutex::new(None),
                in_flight: std::sync::Mutex::new(Vec::new()),
                together: std::sync::Mutex::new(Vec::new()),
            });
            ports.audit = Arc::clone(&o) as Arc<dyn fctr_ports::AuditLog>;
            let _ = slot.set(o);
        },
    );
    let a = w.agent("agent2", "fctr-tier2");
    w.idp.script_push([ChallengeState::Approved]);
    let v = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    let v = w.engine.poll_verification(&a, &ctx(), v.id).await.unwrap();
    assert!(v.grant.is_some(), "verified");
    let o = overlap.get().unwrap();
    assert_eq!(
        *o.grant_stored_before_result.lock().unwrap(),
        Some(true),
        "the grant is stored before the result is appended"
    );
    let together = o.together.lock().unwrap().clone();
    let with = |k: EventKind| {
        together
            .iter()
            .find(|(kind, _)| *kind == k)
            .map(|(_, seen)| seen.clone())
            .unwrap_or_default()
    };
    let result = with(EventKind::ChallengeResult);
    assert!(
        result.contains(&EventKind::GrantIssued),
        "the result and the grant's event are written together: {together:?}"
    );
    let kinds: Vec<EventKind> = w.events().await.iter().map(|e| e.kind).collect();
    let r = kinds.iter().position(|k| *k == EventKind::ChallengeResult);
    let g = kinds.iter().position(|k| *k == EventKind::GrantIssued);
    assert!(r.is_some() && r < g, "result before grant: {kinds:?}");
    // The challenge's own event stays apart: it is durable before the push is sent.
    assert_eq!(
        with(EventKind::ChallengeStarted),
        vec![EventKind::ChallengeStarted]
    );
}
