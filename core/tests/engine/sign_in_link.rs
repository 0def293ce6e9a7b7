//! Verification by IdP sign-in (`idp_sign_in`): the link opens once and only in time, the sign-in must be the
//! caller's own, fresh and with MFA, and only the agent's own poll turns an accepted sign-in into a grant.

use super::*;
use common::World;
use common::gate::GatedGrants;
use fctr_core::{Agent, OpenedLink, SignInEvidence, SignInLinks, VerificationView};
use fctr_ports::{AlertRule, VerificationId};

const LINKS_POLICY: &str = r#"
[factors.default]
accepted = ["idp_sign_in", "push", "totp"]
"#;

fn w() -> World {
    links_world(|_| {})
}

fn links_world(wrap: impl FnOnce(&mut fctr_core::Ports)) -> World {
    links_world_with(SignInLinks::default(), wrap)
}

fn links_world_with(links: SignInLinks, wrap: impl FnOnce(&mut fctr_core::Ports)) -> World {
    common::world_engine(
        Policy::parse(LINKS_POLICY).unwrap(),
        |_| {},
        wrap,
        |a| a,
        |e| e.with_sign_in_links(links),
    )
}

fn agent(w: &World) -> Agent {
    w.agent("agent2", "fctr-tier2")
}

/// Starts a sign-in verification of alice and returns its view (with the link).
async fn begin(w: &World, a: &Agent) -> VerificationView {
    w.engine
        .begin_verification(a, &ctx(), &sid("alice"), Some(&fid("idp_sign_in")))
        .await
        .unwrap()
}

fn token(v: &VerificationView) -> String {
    v.link
        .as_ref()
        .and_then(|l| l.token.clone())
        .expect("an unopened link shows its text to the agent")
}

fn signed_in_as(subject: &str, w: &World) -> SignInEvidence {
    SignInEvidence::Token {
        subject: subject.to_owned(),
        auth_time: Some(w.clock.get()),
        mfa: true,
    }
}

async fn poll(w: &World, a: &Agent, id: VerificationId) -> VerificationView {
    w.engine.poll_verification(a, &ctx(), id).await.unwrap()
}

async fn open(w: &World, t: &str) -> OpenedLink {
    w.engine.open_sign_in_link(&ctx(), t).await.unwrap()
}

#[tokio::test]
async fn sign_in_is_offered_only_when_links_are_configured() {
    let plain = world_with(Policy::parse(LINKS_POLICY).unwrap());
    let a = agent(&plain);
    let d = plain
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), Some(&fid("idp_sign_in")))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::FactorNotEnrolled);
    let card = plain
        .engine
        .lookup(&a, &ctx(), &sid("alice"))
        .await
        .unwrap();
    assert!(
        card.factors
            .iter()
            .all(|f| f.info.kind != FactorKind::IdpSignIn)
    );

    let w = w();
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    let offered = card
        .factors
        .iter()
        .find(|f| f.info.kind == FactorKind::IdpSignIn)
        .expect("the sign-in is on the card");
    assert!(offered.accepted, "{offered:?}");
    assert_eq!(card.recommended_factor, Some(fid("idp_sign_in")));
}

#[tokio::test]
async fn the_callers_own_fresh_mfa_sign_in_verifies_and_the_agents_poll_mints_the_grant() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    assert_eq!(v.factor, Some(FactorKind::IdpSignIn));
    assert_eq!(v.status, VerificationStatus::Challenged);
    assert!(v.challenge_expires_at.is_some());
    let t = token(&v);
    assert!(
        t.starts_with(&v.id.to_string()),
        "the link names only the verification"
    );
    assert!(!t.contains("alice"));

    w.clock.advance(Duration::seconds(20));
    let opened = open(&w, &t).await;
    let after_open = poll(&w, &a, v.id).await;
    let link = after_open.link.clone().unwrap();
    assert!(
        link.opened && link.token.is_none(),
        "an opened link is not shown again"
    );
    assert_eq!(after_open.status, VerificationStatus::Challenged);

    w.clock.advance(Duration::seconds(30));
    w.engine
        .finish_sign_in_link(&ctx(), &opened, &signed_in_as("alice", &w))
        .await
        .unwrap();
    let done = poll(&w, &a, v.id).await;
    assert_eq!(done.status, VerificationStatus::Verified, "{done:?}");
    assert!(done.grant.is_some());
    let events = w.events().await;
    assert!(events.iter().any(|e| e.kind == EventKind::GrantIssued));
    assert!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::ChallengeResult && e.outcome == Outcome::Success)
            .all(|e| e.factor.as_ref() == Some(&FactorKind::IdpSignIn))
    );
}

/// Each refusal ends the challenge with its reason (shown to the agent), is audited, and leaves no grant.
async fn refused(evidence: impl FnOnce(&World, &OpenedLink) -> SignInEvidence, reason: Reason) {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let opened = open(&w, &token(&v)).await;
    w.clock.advance(Duration::seconds(5));
    let e = evidence(&w, &opened);
    let d = w
        .engine
        .finish_sign_in_link(&ctx(), &opened, &e)
        .await
        .unwrap_err();
    assert_eq!(d.reason, reason);
    assert!(
        w.events()
            .await
            .iter()
            .any(|e| e.kind == EventKind::ChallengeResult
                && e.outcome == Outcome::Rejected
                && e.reason == Some(reason)),
        "{reason:?} is audited"
    );
    let view = poll(&w, &a, v.id).await;
    assert_eq!(view.status, VerificationStatus::Rejected, "{reason:?}");
    assert_eq!(view.reason, Some(reason));
    assert!(view.grant.is_none());
    // And the same sign-in cannot be presented again.
    let again = w
        .engine
        .finish_sign_in_link(&ctx(), &opened, &signed_in_as("alice", &w))
        .await
        .unwrap_err();
    assert_eq!(again.reason, Reason::SignInLinkInvalid);
    assert_eq!(
        poll(&w, &a, v.id).await.status,
        VerificationStatus::Rejected
    );
}

#[tokio::test]
async fn a_sign_in_by_someone_else_is_refused_audited_and_alerted() {
    refused(|w, _| signed_in_as("bob", w), Reason::SignInOtherUser).await;

    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let opened = open(&w, &token(&v)).await;
    let _ = w
        .engine
        .finish_sign_in_link(&ctx(), &opened, &signed_in_as("bob", &w))
        .await;
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules(), vec![AlertRule::SignInOtherUser]);
}

#[tokio::test]
async fn a_sign_in_from_before_the_link_was_opened_is_stale() {
    refused(
        |_, opened| SignInEvidence::Token {
            subject: "alice".into(),
            // An IdP session from ten minutes before: max_age=0 was not honoured.
            auth_time: Some(opened.opened_at - Duration::minutes(10)),
            mfa: true,
        },
        Reason::SignInStale,
    )
    .await;
    refused(
        |_, _| SignInEvidence::Token {
            subject: "alice".into(),
            auth_time: None,
            mfa: true,
        },
        Reason::SignInStale,
    )
    .await;
}

#[tokio::test]
async fn a_sign_in_that_is_too_old_by_the_time_it_arrives_is_stale() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let opened = open(&w, &token(&v)).await;
    let at = w.clock.get();
    w.clock.advance(Duration::seconds(301));
    let d = w
        .engine
        .finish_sign_in_link(
            &ctx(),
            &opened,
            &SignInEvidence::Token {
                subject: "alice".into(),
                auth_time: Some(at),
                mfa: true,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SignInStale);
}

#[tokio::test]
async fn a_sign_in_without_mfa_is_refused() {
    refused(
        |w, _| SignInEvidence::Token {
            subject: "alice".into(),
            auth_time: Some(w.clock.get()),
            mfa: false,
        },
        Reason::SignInNoMfa,
    )
    .await;
}

#[tokio::test]
async fn a_token_the_shell_refused_fails_the_challenge() {
    refused(|_, _| SignInEvidence::Failed, Reason::SignInFailed).await;
}

#[tokio::test]
async fn a_link_opens_once_and_a_wrong_or_unknown_link_never() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let t = token(&v);
    let before = w.events().await.len();
    // Garbage, and a well-formed link naming no verification: refused, and nothing audited (anyone can send them).
    for bad in [
        "nonsense".to_owned(),
        format!("{}.{}", VerificationId::random(), "A".repeat(43)),
    ] {
        let d = w.engine.open_sign_in_link(&ctx(), &bad).await.unwrap_err();
        assert_eq!(d.reason, Reason::SignInLinkInvalid);
    }
    assert_eq!(w.events().await.len(), before);
    // The right verification with the wrong secret: refused and audited.
    let wrong = format!("{}.{}", v.id, "A".repeat(43));
    let d = w
        .engine
        .open_sign_in_link(&ctx(), &wrong)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SignInLinkInvalid);
    w.assert_audited(Reason::SignInLinkInvalid).await;

    open(&w, &t).await;
    let replay = w.engine.open_sign_in_link(&ctx(), &t).await.unwrap_err();
    assert_eq!(replay.reason, Reason::SignInLinkInvalid);
    w.assert_audited(Reason::SignInLinkInvalid).await;
}

#[tokio::test]
async fn an_expired_link_does_not_open_and_the_challenge_times_out() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let t = token(&v);
    w.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let d = w.engine.open_sign_in_link(&ctx(), &t).await.unwrap_err();
    assert_eq!(d.reason, Reason::SignInLinkInvalid);
    let view = poll(&w, &a, v.id).await;
    assert!(
        matches!(view.status, VerificationStatus::Expired),
        "{view:?}"
    );
    assert!(view.grant.is_none());
}

#[tokio::test]
async fn the_link_is_not_a_code_and_the_callback_alone_mints_nothing() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let d = w
        .engine
        .submit_code(&a, &ctx(), v.id, SecretString::from("123456".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::InvalidState);
    let opened = open(&w, &token(&v)).await;
    w.engine
        .finish_sign_in_link(&ctx(), &opened, &signed_in_as("alice", &w))
        .await
        .unwrap();
    // Accepted, but no grant until the agent's own request: the link's request has no role to mint one with.
    let events = w.events().await;
    assert!(events.iter().all(|e| e.kind != EventKind::GrantIssued));
    // Another agent cannot collect it.
    let other = w.agent("agent3", "fctr-tier3");
    let d = w
        .engine
        .poll_verification(&other, &ctx(), v.id)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::VerificationNotFound);
    assert_eq!(
        poll(&w, &a, v.id).await.status,
        VerificationStatus::Verified
    );
}

/// Two browsers open the same link at the same moment: the first is parked just before its write; the second
/// opens it meanwhile; the first then loses its compare-and-set. One open, whatever the timing.
#[tokio::test]
async fn two_opens_at_the_same_moment_open_the_link_once() {
    let mut gated = None;
    let w = links_world(|ports| {
        let g = Arc::new(GatedGrants::new(ports.grants.clone()));
        ports.grants = g.clone();
        gated = Some(g);
    });
    let grants = gated.unwrap();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let t = token(&v);
    grants.before_put.arm(1);
    let first = {
        let (engine, t) = (w.engine.clone(), t.clone());
        tokio::spawn(async move { engine.open_sign_in_link(&ctx(), &t).await })
    };
    grants.before_put.wait_parked(1).await;
    let second = w.engine.open_sign_in_link(&ctx(), &t).await;
    grants.before_put.release(1);
    let first = first.await.unwrap();
    assert!(second.is_ok(), "the request that was not parked opened it");
    assert_eq!(first.unwrap_err().reason, Reason::SignInLinkInvalid);
}

/// Two callbacks for the same opened link at the same moment (a replayed redirect): one is judged, the other is
/// refused; one grant at most.
#[tokio::test]
async fn two_callbacks_at_the_same_moment_count_once() {
    let mut gated = None;
    let w = links_world(|ports| {
        let g = Arc::new(GatedGrants::new(ports.grants.clone()));
        ports.grants = g.clone();
        gated = Some(g);
    });
    let grants = gated.unwrap();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let opened = open(&w, &token(&v)).await;
    grants.before_put.arm(1);
    let first = {
        let (engine, opened, e) = (w.engine.clone(), opened.clone(), signed_in_as("bob", &w));
        tokio::spawn(async move { engine.finish_sign_in_link(&ctx(), &opened, &e).await })
    };
    grants.before_put.wait_parked(1).await;
    let second = w
        .engine
        .finish_sign_in_link(&ctx(), &opened, &signed_in_as("alice", &w))
        .await;
    grants.before_put.release(1);
    let first = first.await.unwrap();
    assert!(second.is_ok());
    // The parked "someone else" sign-in lost its write, but a red flag is never lost to a race: refused,
    // audited and alerted all the same.
    assert_eq!(first.unwrap_err().reason, Reason::SignInOtherUser);
    assert!(
        w.events()
            .await
            .iter()
            .any(|e| e.reason == Some(Reason::SignInOtherUser))
    );
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules(), vec![AlertRule::SignInOtherUser]);
    assert_eq!(
        poll(&w, &a, v.id).await.status,
        VerificationStatus::Verified
    );
}

/// "I did not call" and an open of the same link at the same moment (two tabs, or the real employee and a
/// forwarded copy): whichever request is parked just before its write loses its compare-and-set, and only the
/// other one happens. `decline_parked`: the decline is parked and the open wins; otherwise the reverse.
async fn decline_and_open_at_the_same_moment(decline_parked: bool) {
    let mut gated = None;
    let w = links_world(|ports| {
        let g = Arc::new(GatedGrants::new(ports.grants.clone()));
        ports.grants = g.clone();
        gated = Some(g);
    });
    let grants = gated.unwrap();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let t = token(&v);
    grants.before_put.arm(1);
    let (engine, tt) = (w.engine.clone(), t.clone());
    let parked = tokio::spawn(async move {
        if decline_parked {
            engine
                .decline_sign_in_link(&ctx(), &tt)
                .await
                .map(|()| false)
        } else {
            engine.open_sign_in_link(&ctx(), &tt).await.map(|_| true)
        }
    });
    grants.before_put.wait_parked(1).await;
    let other = if decline_parked {
        w.engine.open_sign_in_link(&ctx(), &t).await.map(|_| true)
    } else {
        w.engine
            .decline_sign_in_link(&ctx(), &t)
            .await
            .map(|()| false)
    };
    grants.before_put.release(1);
    let parked = parked.await.unwrap();
    assert!(other.is_ok(), "the request that was not parked won");
    assert_eq!(parked.unwrap_err().reason, Reason::SignInLinkInvalid);
    let declined = w.events().await.iter().any(|e| e.kind == EventKind::NotMe);
    let view = poll(&w, &a, v.id).await;
    if decline_parked {
        assert!(!declined, "a decline that lost runs no \"not me\" response");
        assert_eq!(view.status, VerificationStatus::Challenged);
        assert!(view.link.is_some_and(|l| l.opened), "the link is open");
    } else {
        assert!(declined);
        assert_eq!(view.status, VerificationStatus::Rejected);
        assert_eq!(view.reason, Some(Reason::CallerBlocked));
    }
}

#[tokio::test]
async fn an_open_that_overtakes_a_decline_stands_and_the_decline_is_refused() {
    decline_and_open_at_the_same_moment(true).await;
}

#[tokio::test]
async fn a_decline_that_overtakes_an_open_ends_the_challenge_and_the_open_is_refused() {
    decline_and_open_at_the_same_moment(false).await;
}

#[tokio::test]
async fn a_sign_in_after_the_window_closed_counts_for_nothing() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let opened = open(&w, &token(&v)).await;
    // The caller takes longer than the verification window (10 minutes) to come back.
    w.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let e = SignInEvidence::Token {
        subject: "alice".into(),
        auth_time: Some(w.clock.get()),
        mfa: true,
    };
    let d = w
        .engine
        .finish_sign_in_link(&ctx(), &opened, &e)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::SignInLinkInvalid);
    let view = poll(&w, &a, v.id).await;
    assert_ne!(view.status, VerificationStatus::Verified);
    assert!(view.grant.is_none());
}

#[tokio::test]
async fn an_opened_link_nobody_finishes_times_out_so_the_agent_can_send_another() {
    // Links live 2 minutes, a sign-in may take 5 more; the verification window is 10 minutes.
    let w = links_world_with(
        SignInLinks {
            lifetime: Duration::minutes(2),
            max_auth_age: Duration::minutes(5),
        },
        |_| {},
    );
    let a = agent(&w);
    let v = begin(&w, &a).await;
    open(&w, &token(&v)).await;
    // Past the link's expiry but the caller may still be signing in: waiting.
    w.clock.advance(Duration::minutes(3));
    assert_eq!(
        poll(&w, &a, v.id).await.status,
        VerificationStatus::Challenged
    );
    // Past expiry plus the sign-in allowance (7 minutes), inside the window: the challenge timed out.
    w.clock.advance(Duration::minutes(4) + Duration::seconds(1));
    let view = poll(&w, &a, v.id).await;
    assert_eq!(view.status, VerificationStatus::Expired, "{view:?}");
    assert_eq!(view.reason, Some(Reason::ChallengeTimedOut));
}

#[tokio::test]
async fn i_did_not_call_ends_the_challenge_and_runs_the_not_me_response() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let t = token(&v);
    w.engine.decline_sign_in_link(&ctx(), &t).await.unwrap();
    let view = poll(&w, &a, v.id).await;
    assert_eq!(view.status, VerificationStatus::Rejected);
    assert_eq!(view.reason, Some(Reason::CallerBlocked));
    let events = w.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::NotMe && e.reason == Some(Reason::CallerBlocked))
    );
    w.engine.deliver_alerts().await;
    assert_eq!(w.alerts.rules(), vec![AlertRule::NotMe]);
    // The link is spent, and the caller is blocked for a while (policy's default "not me" response).
    let d = w.engine.open_sign_in_link(&ctx(), &t).await.unwrap_err();
    assert_eq!(d.reason, Reason::SignInLinkInvalid);
    let d = w
        .engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::CallerBlocked);
}

#[tokio::test]
async fn an_opened_link_cannot_be_declined() {
    let w = w();
    let a = agent(&w);
    let v = begin(&w, &a).await;
    let t = token(&v);
    open(&w, &t).await;
    let d = w.engine.decline_sign_in_link(&ctx(), &t).await.unwrap_err();
    assert_eq!(d.reason, Reason::SignInLinkInvalid);
    assert_eq!(
        poll(&w, &a, v.id).await.status,
        VerificationStatus::Challenged
    );
}
