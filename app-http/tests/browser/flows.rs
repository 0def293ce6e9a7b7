//! The agent's flows in a real browser: live push status over server-sent events, one-time secrets, role limits,
//! used and expired grants, a denied push.

use crate::harness::{Browser, Stack, WAIT, browser_or_skip};
use fantoccini::Locator;
use fctr_testkit::okta::PendingPush;

/// Any action button or action form (the card's and the verification page's).
pub(crate) const ACTION_BUTTONS: &str = "form.action, button[id^='act-']";

/// How the simulated phone answers.
pub(crate) enum Phone {
    /// Approve, picking the number the page shows (the fake's in-process handle).
    ApproveShownNumber,
    /// "No, it's not me", over the fake's control API (`POST /_fake/pushes/{tx}/answer`).
    DenyOverHttp,
}

/// Sends a push from the open caller card, lets the simulated phone answer it, and waits for the live panel to
/// read `expect` WITHOUT a reload: the same document (a marker set on it survives) at the same URL. Returns the
/// verification page's path.
pub(crate) async fn push_and_answer(
    b: &mut Browser,
    stack: &Stack,
    login: &str,
    phone: Phone,
    expect: &str,
) -> String {
    let (path, shown) = b.send_push().await;
    b.mark_document("before-answer").await;
    let push: PendingPush = stack
        .demo
        .fake
        .phones()
        .wait_for_push(login, WAIT)
        .await
        .unwrap_or_else(|| panic!("no push reached {login}'s phone"));
    assert_eq!(
        push.correct_answer,
        Some(shown),
        "the page shows the number the phone expects"
    );
    assert!(
        push.choices.contains(&shown),
        "the phone offers {:?}",
        push.choices
    );
    match phone {
        Phone::ApproveShownNumber => {
            stack
                .demo
                .fake
                .phones()
                .approve(&push.transaction_id, shown)
                .expect("approve");
        }
        Phone::DenyOverHttp => {
            let url = stack
                .demo
                .fake
                .base_url()
                .join(&format!("/_fake/pushes/{}/answer", push.transaction_id))
                .expect("control URL");
            let r = reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"action": "deny"}))
                .send()
                .await
                .expect("the control API answers");
            assert!(r.status().is_success(), "deny: {}", r.status());
        }
    }
    b.wait_status(expect).await;
    assert_eq!(
        b.document_marker().await.as_deref(),
        Some("before-answer"),
        "the status changed in place (server-sent events), not by reloading the page"
    );
    assert_eq!(b.path().await, path, "the URL did not change");
    b.check_page(expect).await;
    path
}

/// A push approved with the number the page showed.
pub(crate) async fn verify(b: &mut Browser, stack: &Stack, login: &str) -> String {
    push_and_answer(b, stack, login, Phone::ApproveShownNumber, "verified").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier2_push_turns_verified_live_and_the_reset_link_shows_once() {
    const TEST: &str = "tier2_push_turns_verified_live_and_the_reset_link_shows_once";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    let card = b.open_caller("alice@example.com").await;
    let name = b.text(Locator::Id("caller-name")).await;
    assert!(name.contains("Alice"), "{name}");
    assert!(
        b.has(Locator::Id("verify-button")).await,
        "not verified yet: the verify step"
    );
    let vpath = verify(&mut b, &stack, "alice@example.com").await;
    let grant = b.text(Locator::Id("grant")).await;
    assert!(grant.contains("until"), "{grant}");
    assert!(b.has(Locator::Id("act-reset_password")).await);

    // The action: a confirmation step naming the caller, then the one-time link on the answer page, once.
    b.click_to_load(Locator::Id("act-reset_password")).await;
    let confirm = b.text(Locator::Css("main h1")).await;
    assert!(
        confirm.contains("Alice"),
        "the confirmation names the caller: {confirm}"
    );
    b.check_page("confirm-reset").await;
    b.click(Locator::Id("confirm")).await;
    let secret = b.text(Locator::Id("one-time-secret")).await;
    assert!(secret.starts_with("http"), "a reset link: {secret:?}");
    assert!(b.source().await.contains("Shown once."));
    b.check_page("reset-link-shown").await;
    // app.js replaced the history entry: the address bar names the card, not the POST.
    assert_eq!(b.path().await, card, "history entry replaced by the card");

    // Reload: the card, no secret.
    b.client.refresh().await.expect("reload");
    b.wait(Locator::Id("caller-name")).await;
    assert!(!b.source().await.contains(&secret), "reload shows the link");
    assert!(!b.has(Locator::Id("one-time-secret")).await);
    b.check_page("after-reload").await;

    // Back: the confirmation step's entry (a POST answer the browser does not resubmit by itself), no secret.
    b.client.back().await.expect("back");
    b.wait(Locator::Css("body")).await;
    assert_ne!(b.path().await, card, "went back");
    assert!(!b.source().await.contains(&secret), "back shows the link");
    // Back once more: the verification page.
    b.client.back().await.expect("back");
    b.wait(Locator::Id("live")).await;
    assert_eq!(b.path().await, vpath);
    assert!(!b.source().await.contains(&secret), "back shows the link");
    b.check_page("after-back").await;
    b.client.forward().await.expect("forward");

    // Forward again: still no secret.
    b.client.forward().await.expect("forward");
    b.wait(Locator::Id("caller-name")).await;
    assert!(
        !b.source().await.contains(&secret),
        "forward shows the link"
    );
    b.check_page("after-forward").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier1_sees_no_action_buttons_and_a_forged_action_is_refused() {
    const TEST: &str = "tier1_sees_no_action_buttons_and_a_forged_action_is_refused";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent1", "tier1").await;
    let card = b.open_caller("alice@example.com").await;
    assert!(
        b.source().await.contains("Not for your role."),
        "the card says why each action is not offered"
    );
    assert!(
        !b.has(Locator::Css(ACTION_BUTTONS)).await,
        "no action button on the card"
    );
    // Tier 1 may verify; even verified, no action is offered.
    verify(&mut b, &stack, "alice@example.com").await;
    assert!(b.has(Locator::Id("grant")).await, "verified with a grant");
    assert!(
        !b.has(Locator::Css(ACTION_BUTTONS)).await,
        "no action button after verifying either"
    );

    // A forged POST from the page itself, with the session cookie and the page's CSRF token.
    let csrf = b.csrf().await;
    let action = format!("{card}/actions/reset_password");
    let (status, body) = b
        .fetch_post(&action, &[("csrf", csrf.as_str()), ("confirmed", "yes")])
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_permitted_for_role"), "{body}");
    assert!(!body.contains("one-time-secret"), "{body}");
    let effects = stack.demo.fake.effects("alice").expect("alice");
    assert_eq!(effects.password_resets, 0, "no reset at the IdP");
    assert!(effects.last_reset_password_url.is_none());

    // The same forgery as a navigation shows the refusal with its reason.
    b.submit_form(&action, &[("csrf", &csrf)]).await;
    let reason = b.text(Locator::Id("reason-code")).await;
    assert_eq!(reason, "not_permitted_for_role");
    let heading = b.text(Locator::Css("section.message h1")).await;
    assert_eq!(heading, "Refused");
    b.check_page("forged-action-refused").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_click_after_the_grant_was_used_is_refused_in_the_page() {
    const TEST: &str = "a_second_click_after_the_grant_was_used_is_refused_in_the_page";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    b.open_caller("bob@example.com").await;
    let vpath = verify(&mut b, &stack, "bob@example.com").await;
    // A second tab on the same verification page: it offers the same button.
    let first = b.client.window().await.expect("window");
    let second = b
        .client
        .new_window(true)
        .await
        .expect("a second tab")
        .handle;
    b.client
        .switch_to_window(second.clone())
        .await
        .expect("switch");
    b.goto(&stack.url(&vpath)).await;
    b.wait(Locator::Id("act-clear_sessions")).await;
    b.check_page("second-tab-offers-the-action").await;

    // First click, in the first tab: done, the grant (single use) is spent.
    b.client.switch_to_window(first).await.expect("switch");
    b.click(Locator::Id("act-clear_sessions")).await;
    b.click_to_load(Locator::Id("confirm")).await;
    let done = b.text(Locator::Css("main h1")).await;
    assert!(done.starts_with("Done:"), "{done}");
    b.check_page("first-click-done").await;
    let revoked = stack
        .demo
        .fake
        .effects("bob")
        .expect("bob")
        .sessions_revoked;
    assert_eq!(revoked, 1, "the first click cleared bob's sessions");

    // Second click on the same button, in the second tab: refused, with the reason in the page.
    b.client.switch_to_window(second).await.expect("switch");
    b.click(Locator::Id("act-clear_sessions")).await;
    // The confirmation step re-reads the card: the single-use grant is spent, so there is nothing to confirm.
    let reason = b.text(Locator::Id("reason-code")).await;
    assert_eq!(reason, "no_live_grant");
    assert!(b.has(Locator::Id("back")).await, "a way to verify again");
    let what = b.text(Locator::Css("section.message .what")).await;
    assert!(!what.is_empty(), "the refusal says why in words");
    b.check_page("second-click-refused").await;
    assert_eq!(
        stack
            .demo
            .fake
            .effects("bob")
            .expect("bob")
            .sessions_revoked,
        revoked,
        "the second click changed nothing at the IdP"
    );

    // Reopened now, the verification page offers nothing more.
    b.goto(&stack.url(&vpath)).await;
    b.wait_status("verified").await;
    assert!(
        !b.has(Locator::Css(ACTION_BUTTONS)).await,
        "a used grant offers no action"
    );
    b.check_page("used-grant-offers-nothing").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_after_the_grant_expired_is_refused_in_the_page() {
    const TEST: &str = "an_action_after_the_grant_expired_is_refused_in_the_page";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    b.open_caller("alice@example.com").await;
    verify(&mut b, &stack, "alice@example.com").await;
    // The default grant lives 10 minutes; the session's idle timeout is 15.
    stack.clock.advance(chrono::TimeDelta::minutes(11));
    b.click(Locator::Id("act-reset_password")).await;
    let reason = b.text(Locator::Id("reason-code")).await;
    assert_eq!(
        reason, "no_live_grant",
        "the confirmation step finds no live grant"
    );
    assert!(!b.has(Locator::Id("one-time-secret")).await);
    b.check_page("expired-grant-refused").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_denied_on_the_phone_shows_rejected_live() {
    const TEST: &str = "a_push_denied_on_the_phone_shows_rejected_live";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    b.open_caller("alice@example.com").await;
    push_and_answer(
        &mut b,
        &stack,
        "alice@example.com",
        Phone::DenyOverHttp,
        "rejected",
    )
    .await;
    let heading = b.text(Locator::Id("state-heading")).await;
    assert_eq!(heading, "Push denied");
    // The default policy treats a denied push as "not me" (docs/alarms.md): the caller is blocked, so no retry
    // is offered (the retry path under a policy that allows it: paths.rs).
    assert!(
        !b.has(Locator::Id("new-push")).await,
        "no new push after a denial"
    );
    assert!(
        !b.has(Locator::Id("other-method")).await,
        "nor another method"
    );
    let panel = b.text(Locator::Id("status-panel")).await;
    assert!(panel.contains("challenge_rejected"), "{panel}");
    assert!(panel.contains("blocked for 30 minutes"), "{panel}");
    assert!(
        !b.has(Locator::Css("form.action, button[id^='act-'], #grant"))
            .await,
        "no grant and no action after a denial"
    );
    assert!(!b.has(Locator::Id("number")).await, "the number is gone");
    assert!(panel.contains("signed out everywhere"), "{panel}");
    // The caller's card refuses a new push too (the backend, not only the page), and none reaches the phone.
    b.goto(&stack.url("/")).await;
    b.open_caller("alice@example.com").await;
    b.click(Locator::Id("verify-button")).await;
    assert_eq!(b.text(Locator::Id("reason-code")).await, "caller_blocked");
    assert!(
        stack
            .demo
            .fake
            .phones()
            .wait_for_push("alice@example.com", std::time::Duration::from_millis(500))
            .await
            .is_none(),
        "no second push reached the phone"
    );
    b.close().await;
}
