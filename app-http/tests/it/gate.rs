//! Issue 11, portal part: sessions that a slow IdP call cannot resurrect, `require_mfa` on bearer tokens, the
//! agent's role re-checked against the IdP, and request ids the client cannot choose. Each race is driven by an
//! IdP wrapper that pauses one request inside the IdP while another runs.

use crate::api::{call, id_token};
use crate::helpers::*;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fctr_ports::{
    Action, ActionReceipt, Capabilities, ChallengeContext, ChallengeState, ChallengeTicket,
    Challenger, CodeVerdict, Directory, EventKind, FactorInfo, GroupRef, IdentityProvider,
    Lifecycle, Outcome, PortError, Reason, RiskFacts, SecretString, SubjectId, UserQuery,
    UserRecord,
};
use fctr_testkit::okta::IdTokenTweak;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Holds the next `armed` searches inside the IdP: each reports on `entered`, then waits for a `release` permit.
/// `fail_groups_of` makes `groups` of that one user (an agent) fail as an unreachable IdP would.
struct Gate {
    armed: AtomicUsize,
    entered: mpsc::UnboundedSender<()>,
    release: Semaphore,
    fail_groups_of: std::sync::Mutex<Option<String>>,
}

struct PausingIdp {
    inner: Arc<dyn IdentityProvider>,
    gate: Arc<Gate>,
}

#[async_trait]
impl Directory for PausingIdp {
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        let hold = self
            .gate
            .armed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if hold {
            let _ = self.gate.entered.send(());
            self.gate.release.acquire().await.unwrap().forget();
        }
        self.inner.find_users(query, limit).await
    }
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.inner.get_user(id).await
    }
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        self.inner.list_factors(id).await
    }
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        if self.gate.fail_groups_of.lock().unwrap().as_deref() == Some(id.as_str()) {
            return Err(PortError::Unavailable);
        }
        self.inner.groups(id).await
    }
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        self.inner.risk_facts(id).await
    }
}

#[async_trait]
impl Challenger for PausingIdp {
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        self.inner.start(subject, factor, context).await
    }
    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        self.inner.poll(ticket).await
    }
    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        self.inner.verify_code(subject, factor, code).await
    }
}

#[async_trait]
impl Lifecycle for PausingIdp {
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        self.inner.execute(subject, action).await
    }
}

impl IdentityProvider for PausingIdp {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
}

/// A demo stack whose IdP goes through a [`Gate`], and the receiver of its "entered" reports.
async fn gated() -> (TestApp, Arc<Gate>, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Gate {
        armed: AtomicUsize::new(0),
        entered: tx,
        release: Semaphore::new(0),
        fail_groups_of: std::sync::Mutex::new(None),
    });
    let g = Arc::clone(&gate);
    let t = start_with(move |o| {
        o.wrap_idp = Some(Box::new(move |inner| {
            Arc::new(PausingIdp { inner, gate: g }) as Arc<dyn IdentityProvider>
        }));
    })
    .await;
    (t, gate, rx)
}

async fn entered(rx: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a request reached the IdP")
        .expect("gate open");
}

/// Finding 4: a search paused inside the IdP while the same session signs out. After the search returns, the old
/// cookie is refused and the old CSRF token is dead: the search did not write the session back.
#[tokio::test]
async fn sign_out_during_a_slow_search_leaves_the_cookie_and_csrf_token_dead() {
    let (t, gate, mut rx) = gated().await;
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let mut tab = b.clone();
    gate.armed.store(1, Ordering::SeqCst);
    let form = [("csrf", csrf.as_str()), ("q", "alice@example.com")];
    let search = t.post(&mut tab, "/search", &form);
    let sign_out = async {
        entered(&mut rx).await;
        let mut other = b.clone();
        let r = t
            .post(&mut other, "/auth/logout", &[("csrf", csrf.as_str())])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        gate.release.add_permits(1);
    };
    let (r, ()) = tokio::join!(search, sign_out);
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the search answered as if still signed in"
    );
    assert!(
        !r.body.contains("alice@example.com"),
        "no caller data after sign-out"
    );
    // The old cookie: refused on a page and on the API.
    let page = t.get(&mut b, "/search").await;
    assert_eq!(
        page.status,
        StatusCode::UNAUTHORIZED,
        "the old cookie works again after sign-out"
    );
    let req = Request::get("/api/v1/users/x")
        .header("cookie", b.cookie_header())
        .body(Body::empty())
        .unwrap();
    assert_eq!(t.send(req).await.status, StatusCode::UNAUTHORIZED);
    // The old CSRF token with the old cookie: still no session.
    let r = t
        .post(
            &mut b,
            "/search",
            &[("csrf", csrf.as_str()), ("q", "bob@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(t.demo.state.sessions().is_empty().await.unwrap());
}

/// Finding 4: two tabs of one session search at once (both paused in the IdP after loading the session); both
/// tabs' caller links work afterwards.
#[tokio::test]
async fn two_tabs_searching_at_once_both_keep_valid_caller_handles() {
    let (t, gate, mut rx) = gated().await;
    let b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let (mut one, mut two) = (b.clone(), b.clone());
    gate.armed.store(2, Ordering::SeqCst);
    let f1 = [("csrf", csrf.as_str()), ("q", "alice@example.com")];
    let f2 = [("csrf", csrf.as_str()), ("q", "bob@example.com")];
    let s1 = t.post(&mut one, "/search", &f1);
    let s2 = t.post(&mut two, "/search", &f2);
    let release = async {
        entered(&mut rx).await;
        entered(&mut rx).await;
        // Both requests hold a session read from before either search finished.
        gate.release.add_permits(2);
    };
    let (r1, r2, ()) = tokio::join!(s1, s2, release);
    let mut b = b;
    for r in [r1, r2] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let card = format!(
            "/callers/{}",
            between(&r.body, "href=\"/callers/", "\"").expect("a result")
        );
        let page = t.get(&mut b, &card).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "a tab's caller handle was lost: {card}"
        );
    }
}

/// Finding 5: with `require_mfa`, a bearer ID token without `amr` is refused by the API (401, audited as a failed
/// sign-in) as the browser sign-in refuses it; the same agent's token with `amr: ["mfa"]` is accepted.
#[tokio::test]
async fn a_bearer_token_without_mfa_is_refused_when_mfa_is_required() {
    let t = start_with(|o| o.require_mfa = true).await;
    let failed = |events: &[fctr_ports::AuditEvent]| {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Login && e.outcome == Outcome::Failed)
            .count()
    };
    let before = failed(&t.audit_events().await);
    for tweak in [IdTokenTweak::NoAmr, IdTokenTweak::AmrPwdOnly] {
        t.demo.fake.oidc().tweak_next_id_token(tweak);
        let tok = id_token(&t, "agent2").await;
        let (s, v, _) = call(
            &t,
            "POST",
            "/api/v1/users/search",
            Some(&tok),
            Some(serde_json::json!({"query": "bob@example.com"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{tweak:?}: {v}");
        assert_eq!(v["error"]["code"], "unauthenticated");
        t.demo.fake.oidc().clear_tweaks();
    }
    assert_eq!(
        failed(&t.audit_events().await),
        before + 2,
        "each refusal audited"
    );
    // The fake's normal tokens say amr ["pwd","mfa"].
    let tok = id_token(&t, "agent2").await;
    let (s, v, _) = call(
        &t,
        "POST",
        "/api/v1/users/search",
        Some(&tok),
        Some(serde_json::json!({"query": "bob@example.com"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Finding 6: a Tier 3 agent verifies a caller, is removed from their group at the IdP, and (once the one-minute
/// role cache has run out) the next action is refused (`agent_role_revoked`, audited), nothing runs at the IdP,
/// and the session is gone. A bearer token minted before the removal is refused too.
#[tokio::test]
async fn an_agent_removed_from_their_group_is_refused_at_the_next_action_and_signed_out() {
    let t = start().await;
    let mut b = t.sign_in("agent3").await;
    let tok = id_token(&t, "agent3").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let (s, _, _) = call(
        &t,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the bearer token works before");
    let (card, _) = t.verified(&mut b, "alice").await;
    assert!(
        t.demo
            .fake
            .state()
            .remove_from_group("agent3", "fctr-tier3")
    );
    t.clock.advance(chrono::Duration::seconds(61));
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("agent_role_revoked"), "{}", r.body);
    assert_eq!(
        t.denials(Reason::AgentRoleRevoked).await.len(),
        1,
        "the refusal is audited"
    );
    assert!(
        !t.audit_events()
            .await
            .iter()
            .any(|e| e.kind == EventKind::ActionIntent),
        "no action was attempted"
    );
    assert_eq!(
        t.get(&mut b, "/search").await.status,
        StatusCode::UNAUTHORIZED,
        "the session is gone"
    );
    assert!(t.demo.state.sessions().is_empty().await.unwrap());
    // The bearer token still says tier3; the IdP does not.
    let (s, v, _) = call(
        &t,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "agent_role_revoked");
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{alice}/actions/clear_sessions"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(t.denials(Reason::AgentRoleRevoked).await.len(), 3);
}

/// Finding 6, periodic part: a session that only views pages is re-checked at least every five minutes; a removed
/// agent's next page view ends the session.
#[tokio::test]
async fn a_removed_agent_loses_the_session_within_five_minutes_of_page_views() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    assert!(
        t.demo
            .fake
            .state()
            .remove_from_group("agent2", "fctr-tier2")
    );
    t.clock.advance(chrono::Duration::minutes(4));
    assert_eq!(t.get(&mut b, "/search").await.status, StatusCode::OK);
    t.clock.advance(chrono::Duration::minutes(1));
    let r = t.get(&mut b, "/search").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(t.denials(Reason::AgentRoleRevoked).await.len(), 1);
    assert!(t.demo.state.sessions().is_empty().await.unwrap());
}

/// Finding 6, failure mode: when the IdP cannot read the agent's groups, a high-risk action is refused (fail
/// closed, audited) while a page view keeps the previous role.
#[tokio::test]
async fn an_unreadable_idp_refuses_actions_but_not_page_views() {
    let (t, gate, _rx) = gated().await;
    let mut b = t.sign_in("agent3").await;
    let (card, _) = t.verified(&mut b, "alice").await;
    *gate.fail_groups_of.lock().unwrap() = Some(t.demo.fake.fixtures().id_of("agent3"));
    t.clock.advance(chrono::Duration::minutes(6));
    assert_eq!(t.get(&mut b, "/search").await.status, StatusCode::OK);
    let before = t.denials(Reason::IdpError).await.len();
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(r.body.contains("idp_error"));
    assert_eq!(t.denials(Reason::IdpError).await.len(), before + 1);
    *gate.fail_groups_of.lock().unwrap() = None;
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
