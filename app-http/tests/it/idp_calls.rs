//! How many times one flow asks the IdP, by kind, counted by the fake Okta's own request log: the card, the push
//! and its approval read each fact once (at most 4 calls plus the polls); verify-then-act adds the action (at
//! most 5 plus the polls), the confirmation step included.

use crate::helpers::*;
use axum::http::StatusCode;
use std::collections::BTreeMap;
use std::time::Duration;

const USER: &str = "GET /api/v1/users/{id}";
const FACTORS: &str = "GET /api/v1/users/{id}/factors";
const GROUPS: &str = "GET /api/v1/users/{id}/groups";
const PUSH: &str = "POST /api/v1/users/{id}/factors/{factor_id}/verify";
const POLL: &str = "GET /api/v1/users/{id}/factors/{factor_id}/transactions/{tx_id}";
const RESET: &str = "POST /api/v1/users/{id}/lifecycle/{action}";

/// The calls of a step, without the polls (counted apart).
fn split(mut log: BTreeMap<String, u64>) -> (BTreeMap<String, u64>, u64) {
    let polls = log.remove(POLL).unwrap_or(0);
    (log, polls)
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn one_verification_reads_each_fact_once_and_verify_then_act_adds_only_the_action() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "alice@example.com").await;
    let fake = &t.demo.fake;
    fake.take_requests(); // sign-in and search are not part of the flow

    // The card, the push, the approval.
    let r = t.get(&mut b, &card).await;
    assert_eq!(r.status, StatusCode::OK);
    let factor = fake.fixtures().factor("alice", "push").unwrap().id.clone();
    let v = t.send_push(&mut b, &card, &factor).await;
    let push = fake
        .phones()
        .wait_for_push("alice@example.com", Duration::from_secs(5))
        .await
        .unwrap();
    fake.phones()
        .approve(&push.transaction_id, push.correct_answer.unwrap())
        .unwrap();
    t.wait_page(&mut b, &v, "data-status=\"verified\"").await;
    let (calls, polls) = split(fake.take_requests());
    assert_eq!(
        calls,
        expect(&[(USER, 1), (FACTORS, 1), (GROUPS, 1), (PUSH, 1)]),
        "lookup, push and approval: each fact read once"
    );
    assert!(polls >= 1, "the approval was seen by a poll");
    let verify_calls: u64 = calls.values().sum();
    assert!(verify_calls <= 4);

    // The confirmation step and the action: only the action itself goes to the IdP.
    let csrf = b.csrf.clone();
    let action = format!("{card}/actions/reset_password");
    let confirm = t.post(&mut b, &action, &[("csrf", csrf.as_str())]).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    let done = t
        .post(
            &mut b,
            &action,
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let (act_calls, act_polls) = split(fake.take_requests());
    assert_eq!(act_polls, 0);
    assert_eq!(act_calls, expect(&[(RESET, 1)]), "{act_calls:?}");
    assert!(verify_calls + act_calls.values().sum::<u64>() <= 5);

    // After the action nothing of the caller is reused: a confirmation step now reads the IdP again (and
    // refuses: the single-use grant is spent).
    let confirm = t
        .post(
            &mut b,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(confirm.status, StatusCode::FORBIDDEN, "{}", confirm.body);
    assert!(confirm.body.contains("no_live_grant"));
    let (after, _) = split(fake.take_requests());
    assert_eq!(
        after,
        expect(&[(USER, 1), (FACTORS, 1), (GROUPS, 1)]),
        "{after:?}"
    );
}

/// The card itself is always read when the agent asks for it (a reload shows what the IdP says now); the steps
/// after it reuse that read within the window, and read again past it.
#[tokio::test]
async fn the_card_reads_now_and_the_next_step_reuses_it_only_within_the_window() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let card = t.find(&mut b, "bob@example.com").await;
    let fake = &t.demo.fake;
    t.get(&mut b, &card).await;
    fake.take_requests();
    t.get(&mut b, &card).await;
    let (reload, _) = split(fake.take_requests());
    assert_eq!(
        reload,
        expect(&[(USER, 1), (FACTORS, 1), (GROUPS, 1)]),
        "a reload reads again: {reload:?}"
    );
    let factor = fake.fixtures().factor("bob", "push").unwrap().id.clone();
    t.clock.advance(chrono::Duration::seconds(31));
    t.send_push(&mut b, &card, &factor).await;
    let (late, _) = split(fake.take_requests());
    assert_eq!(
        late,
        expect(&[(FACTORS, 1), (GROUPS, 1), (PUSH, 1)]),
        "a push sent after the window reads factors and groups again: {late:?}"
    );
}
