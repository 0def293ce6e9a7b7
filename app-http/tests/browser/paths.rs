//! The agent's paths off the happy one, in a real browser: a locked-out caller from search to resolution, a wrong
//! code then a right one, a denied push then a new one, an unanswered push, the confirmation step (cancel, and a
//! ticket reference found again in the audit log), Tier 1's verify-only result, every fixture caller's card, and
//! the whole way from search to a sent push by keyboard alone. Every page on the way goes through
//! `Browser::check_page` (screenshots at 1280 and 390 px, no sideways scrolling, no axe-core violation).

use crate::flows::{ACTION_BUTTONS, Phone, push_and_answer, verify};
use crate::harness::{Browser, Stack, WAIT, browser_or_skip};
use fantoccini::Locator;
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fctr_testkit::okta::PendingPush;
use serde_json::{Value, json};

/// WebDriver's key codes.
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';

/// Searches for `login` from a fresh search page, opens the first result and checks the card as `step`; returns
/// the card's path.
async fn open_card(b: &mut Browser, stack: &Stack, login: &str, step: &str) -> String {
    b.goto(&stack.url("/search")).await;
    let q = b.wait(Locator::Id("q")).await;
    q.send_keys(login).await.expect("type the search");
    b.click(Locator::Css("form.search button[type='submit']"))
        .await;
    b.click(Locator::Css("table.results a")).await;
    b.wait(Locator::Id("caller-name")).await;
    let path = b.path().await;
    assert!(path.starts_with("/callers/"), "{path}");
    b.check_page(step).await;
    path
}

/// The HTTP status of the document now shown (Navigation Timing's `responseStatus`).
async fn response_status(b: &Browser) -> Value {
    b.js(
        "const e = performance.getEntriesByType('navigation')[0]; return e ? e.responseStatus : null;",
        vec![],
    )
    .await
}

/// Picks the factor whose words contain `words` on the caller card's verify step.
async fn choose_factor(b: &mut Browser, words: &str) {
    let radio = format!(
        "//div[contains(@class,'choice')][label[contains(normalize-space(.), '{words}')]]/input[@type='radio']"
    );
    b.click(Locator::XPath(&radio)).await;
    let checked = b
        .js(
            "return document.querySelector(\"input[name='factor_id']:checked\").labels[0].textContent;",
            vec![],
        )
        .await;
    assert!(
        checked.as_str().is_some_and(|t| t.contains(words)),
        "the {words:?} radio is checked: {checked}"
    );
}

/// Presses and releases one key in the focused element (WebDriver actions: a real key event, as a keyboard).
async fn press(b: &Browser, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    b.client.perform_actions(keys).await.expect("key press");
}

/// Presses Tab until the focused element matches `selector` (at most `max` presses); fails naming where the focus
/// went.
async fn tab_to(b: &mut Browser, selector: &str, max: usize) {
    let mut trail = Vec::new();
    for _ in 0..max {
        press(b, TAB).await;
        let here = b
            .js(
                "const e = document.activeElement; \
                 return [e.matches(arguments[0]), e.tagName + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').trim().slice(0, 30)];",
                vec![json!(selector)],
            )
            .await;
        if here[0] == json!(true) {
            return;
        }
        trail.push(here[1].as_str().unwrap_or_default().to_owned());
    }
    b.fail(&format!(
        "{max} Tab presses did not reach {selector}; the focus went: {}",
        trail.join(" -> ")
    ))
    .await;
}

/// The focused element shows a focus indicator: an outline that is drawn (style not `none`, width not 0).
async fn assert_focus_visible(b: &Browser, what: &str) {
    let style = b
        .js(
            "const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth];",
            vec![],
        )
        .await;
    assert_ne!(style[0], json!("none"), "{what}: focus outline {style}");
    assert_ne!(style[1], json!("0px"), "{what}: focus outline {style}");
}

/// Locks `handle` at the fake IdP as repeated failed sign-ins would: wrong passcodes against the caller's TOTP
/// factor over the fake's management API (SSWS), until its lockout threshold sets `LOCKED_OUT`.
async fn lock_at_idp(stack: &Stack, handle: &str) {
    let fake = &stack.demo.fake;
    let user = fake.fixtures().user(handle).expect("fixture user").clone();
    let totp = user
        .factors
        .iter()
        .find(|f| f.factor_type == "token:software:totp")
        .expect("a TOTP factor");
    let url = fake
        .base_url()
        .join(&format!(
            "/api/v1/users/{}/factors/{}/verify",
            user.id, totp.id
        ))
        .expect("verify URL");
    let now = fake.totp_now(handle).unwrap_or_default();
    let wrong = if now == "000000" { "000001" } else { "000000" };
    let http = reqwest::Client::new();
    for _ in 0..10 {
        if fake.user_status(handle).as_deref() == Some("LOCKED_OUT") {
            return;
        }
        let r = http
            .post(url.clone())
            .header("Authorization", format!("SSWS {}", fake.api_token()))
            .header("Accept", "application/json")
            .json(&json!({"passCode": wrong}))
            .send()
            .await
            .expect("the fake answers");
        assert!(r.status().is_client_error(), "a wrong code: {}", r.status());
    }
    panic!(
        "{handle} is not LOCKED_OUT after 10 wrong codes: {:?}",
        fake.user_status(handle)
    );
}

/// The badge with the account's status.
async fn status_badge(b: &mut Browser) -> String {
    b.text(Locator::Id("status-badge")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_out_caller_is_unlocked_then_verified_then_helped_and_a_second_lockout_is_escalated()
 {
    const TEST: &str = "a_locked_out_caller_is_unlocked_then_verified_then_helped_and_a_second_lockout_is_escalated";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let fake = &stack.demo.fake;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    let card = open_card(&mut b, &stack, "erin@example.com", "locked-out-card").await;

    // The card: locked out, step 1 unlock, no way to verify yet (the IdP does not challenge a locked account).
    assert_eq!(status_badge(&mut b).await, "Locked out");
    let badges = b.text(Locator::Id("badges")).await;
    assert_eq!(
        badges.matches("Locked out").count(),
        1,
        "said once, by the status badge: {badges}"
    );
    assert!(b.has(Locator::Id("unlock-step")).await, "the unlock step");
    assert!(b.has(Locator::Id("act-unlock")).await, "Tier 2 may unlock");
    assert!(
        !b.has(Locator::Id("verify-button")).await,
        "no verify button"
    );
    let blocked = b.text(Locator::Id("verify-blocked")).await;
    assert!(blocked.contains("Unlock the account first"), "{blocked}");

    // Unlock before verification: a confirmation that says so, then done.
    b.click(Locator::Id("act-unlock")).await;
    b.wait(Locator::Id("confirm")).await;
    let heading = b.text(Locator::Css("main h1")).await;
    assert!(
        heading.starts_with("Unlock the account for Erin"),
        "{heading}"
    );
    let before = b.text(Locator::Id("before-verification")).await;
    assert!(before.contains("not verified yet"), "{before}");
    b.check_page("confirm-unlock-before-verification").await;
    b.click_to_load(Locator::Id("confirm")).await;
    let done = b.text(Locator::Css("main h1")).await;
    assert!(
        done.starts_with("Done: Unlock the account for Erin"),
        "{done}"
    );
    assert!(!b.has(Locator::Id("one-time-secret")).await, "no secret");
    b.check_page("unlocked").await;
    assert_eq!(fake.user_status("erin").as_deref(), Some("ACTIVE"));
    assert_eq!(fake.effects("erin").expect("erin").unlocks, 1);

    // Back on the card: active, the verify step offered, no unlock step.
    b.click(Locator::XPath(
        "//a[normalize-space(.)='Back to the caller']",
    ))
    .await;
    b.wait(Locator::Id("caller-name")).await;
    assert_eq!(b.path().await, card);
    assert_eq!(status_badge(&mut b).await, "Active");
    assert!(!b.has(Locator::Id("unlock-step")).await);
    assert!(!b.has(Locator::Id("verify-blocked")).await);
    assert!(b.has(Locator::Id("verify-button")).await, "verify offered");
    b.check_page("card-after-unlock").await;

    // Verify, then the action the caller called for: a password reset, confirmed, its link shown once.
    verify(&mut b, &stack, "erin@example.com").await;
    b.click_to_load(Locator::Id("act-reset_password")).await;
    let confirm = b.text(Locator::Css("main h1")).await;
    assert!(confirm.contains("Erin"), "{confirm}");
    assert!(!b.has(Locator::Id("before-verification")).await);
    b.check_page("confirm-reset-after-unlock").await;
    b.click(Locator::Id("confirm")).await;
    let secret = b.text(Locator::Id("one-time-secret")).await;
    assert!(secret.starts_with("http"), "a reset link: {secret:?}");
    b.check_page("reset-link-after-unlock").await;
    let effects = fake.effects("erin").expect("erin");
    assert_eq!(effects.password_resets, 1);
    assert_eq!(effects.unlocks, 1);

    // Locked out again the same day (someone keeps failing): the policy allows one unlock per caller per day, so
    // this one is escalated, not unlocked.
    lock_at_idp(&stack, "erin").await;
    b.goto(&stack.url(&card)).await;
    b.wait(Locator::Id("caller-name")).await;
    assert_eq!(status_badge(&mut b).await, "Locked out");
    b.check_page("locked-out-again").await;
    // The card no longer offers the unlock: it escalates, and says why.
    assert!(
        !b.has(Locator::Id("act-unlock")).await,
        "no second unlock offered"
    );
    let esc = b.text(Locator::Id("escalate-step")).await;
    assert!(esc.contains("already unlocked once"), "{esc}");
    // A forged unlock (the old button, posted by hand) is refused by the engine as the locked-out procedure.
    let csrf = b.csrf().await;
    let (status, body) = b
        .fetch_post(
            &format!("{card}/actions/unlock"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("caller_locked_out"), "{body}");
    assert_eq!(
        fake.effects("erin").expect("erin").unlocks,
        1,
        "no second unlock"
    );
    assert_eq!(fake.user_status("erin").as_deref(), Some("LOCKED_OUT"));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_shows_attempts_left_in_the_page_then_the_right_code_verifies() {
    const TEST: &str = "a_wrong_code_shows_attempts_left_in_the_page_then_the_right_code_verifies";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    b.open_caller("bob@example.com").await;
    choose_factor(&mut b, "Code from").await;
    b.click(Locator::Id("verify-button")).await;
    b.wait(Locator::Id("code")).await;
    assert!(b.path().await.starts_with("/verifications/"));
    assert_eq!(b.status().await, "challenged");
    assert_eq!(
        b.text(Locator::Id("state-heading")).await,
        "Ask for the code"
    );
    assert!(!b.has(Locator::Id("number")).await, "no number for a code");
    b.check_page("ask-for-the-code").await;

    let right = stack.demo.fake.totp_now("bob").expect("bob's code");
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let input = b.wait(Locator::Id("code")).await;
    input.send_keys(wrong).await.expect("type the code");
    b.click(Locator::Id("check-code")).await;
    let error = b.text(Locator::Id("code-error")).await;
    assert!(error.contains("attempts left"), "{error}");
    assert_eq!(response_status(&b).await, json!(422));
    assert_eq!(b.status().await, "challenged", "still asking for the code");
    assert_eq!(
        b.attr(Locator::Id("code"), "aria-invalid").await.as_deref(),
        Some("true")
    );
    b.check_page("wrong-code").await;

    let right = stack.demo.fake.totp_now("bob").expect("bob's code");
    let input = b.wait(Locator::Id("code")).await;
    input.send_keys(&right).await.expect("type the code");
    b.click(Locator::Id("check-code")).await;
    b.wait_status("verified").await;
    assert!(b.has(Locator::Id("grant")).await);
    assert!(!b.has(Locator::Id("code-error")).await);
    b.check_page("code-verified").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_push_then_a_new_push_verifies() {
    const TEST: &str = "a_denied_push_then_a_new_push_verifies";
    if !browser_or_skip(TEST) {
        return;
    }
    // A tenant whose policy does not treat a denied push as "not me" (docs/alarms.md): the agent may try again.
    let policy = fctr_core::policy::Policy::parse("[alarms.not_me]\non_push_denied = false\n")
        .expect("policy");
    let stack = Stack::start_with_policy(Some(policy)).await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    b.open_caller("alice@example.com").await;
    let denied = push_and_answer(
        &mut b,
        &stack,
        "alice@example.com",
        Phone::DenyOverHttp,
        "rejected",
    )
    .await;
    assert_eq!(b.text(Locator::Id("state-heading")).await, "Push denied");

    b.click(Locator::Id("new-push")).await;
    let shown = b.text(Locator::Id("number")).await;
    let path = b.path().await;
    assert!(path.starts_with("/verifications/"), "{path}");
    assert_ne!(path, denied, "a new verification");
    assert_eq!(b.status().await, "challenged");
    b.check_page("new-push-sent").await;
    let shown: u8 = shown.trim().parse().expect("a number");
    let push: PendingPush = stack
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", WAIT)
        .await
        .expect("the new push reached the phone");
    assert_eq!(push.correct_answer, Some(shown));
    stack
        .demo
        .fake
        .phones()
        .approve(&push.transaction_id, shown)
        .expect("approve");
    b.wait_status("verified").await;
    assert!(b.has(Locator::Id("grant")).await);
    b.check_page("verified-after-new-push").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_push_expires_and_offers_a_retry() {
    const TEST: &str = "an_unanswered_push_expires_and_offers_a_retry";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    let card = b.open_caller("alice@example.com").await;
    let (path, _) = b.send_push().await;
    stack
        .demo
        .fake
        .phones()
        .wait_for_push("alice@example.com", WAIT)
        .await
        .expect("the push reached the phone");
    // The phone is never answered: time passes past the push's lifetime (60 s at the fake) for both the IdP and
    // the portal.
    stack.demo.fake.advance_clock(61);
    stack.clock.advance(chrono::TimeDelta::seconds(61));
    b.wait_status("expired").await;
    assert_eq!(b.path().await, path);
    assert_eq!(b.text(Locator::Id("state-heading")).await, "No answer");
    assert!(b.has(Locator::Id("retry")).await);
    assert!(b.has(Locator::Id("new-push")).await);
    assert!(!b.has(Locator::Id("number")).await, "the number is gone");
    assert!(!b.has(Locator::Id("grant")).await);
    b.check_page("push-expired").await;

    // Another method: back to the card's verify step.
    b.click(Locator::Id("other-method")).await;
    b.wait(Locator::Id("verify-step")).await;
    assert_eq!(b.path().await, card);
    assert!(b.has(Locator::Id("verify-button")).await);
    b.check_page("back-to-verify-step").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_runs_nothing_and_a_confirmed_ticket_is_found_in_the_audit_log() {
    const TEST: &str = "cancel_runs_nothing_and_a_confirmed_ticket_is_found_in_the_audit_log";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let fake = &stack.demo.fake;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;
    let card = b.open_caller("alice@example.com").await;
    verify(&mut b, &stack, "alice@example.com").await;
    let note = b.text(Locator::Id("verification-note")).await;
    assert!(note.contains("verified"), "{note}");
    let before = fake.effects("alice").expect("alice");

    // Cancel: back on the card, nothing done at the IdP, the verification still good.
    b.click(Locator::Id("act-clear_sessions")).await;
    b.wait(Locator::Id("cancel")).await;
    let heading = b.text(Locator::Css("main h1")).await;
    assert!(heading.contains("Alice"), "{heading}");
    let consequence = b.text(Locator::Id("consequence")).await;
    assert!(!consequence.is_empty());
    b.check_page("confirm-clear-sessions").await;
    b.click(Locator::Id("cancel")).await;
    b.wait(Locator::Id("caller-name")).await;
    assert_eq!(b.path().await, card);
    assert!(b.has(Locator::Id("grant-status")).await, "still verified");
    b.check_page("cancelled").await;
    let after = fake.effects("alice").expect("alice");
    assert_eq!(after.sessions_revoked, before.sessions_revoked);
    assert_eq!(after.password_resets, before.password_resets);

    // Confirm, with a ticket reference: done, and the result says where it is recorded.
    b.click(Locator::Id("act-clear_sessions")).await;
    let ticket = b.wait(Locator::Id("ticket")).await;
    ticket
        .send_keys("INC0012345")
        .await
        .expect("type the ticket");
    b.click(Locator::Id("confirm")).await;
    let recorded = b.text(Locator::Id("ticket-ref")).await;
    assert_eq!(recorded, "INC0012345");
    let done = b.text(Locator::Css("main h1")).await;
    assert!(
        done.starts_with("Done:") && done.contains("Alice"),
        "{done}"
    );
    b.check_page("done-with-ticket").await;
    assert_eq!(
        fake.effects("alice").expect("alice").sessions_revoked,
        before.sessions_revoked + 1
    );

    // An auditor finds the action by its ticket.
    b.click(Locator::XPath("//button[normalize-space(.)='Sign out']"))
        .await;
    b.wait(Locator::Css("p.notice")).await;
    b.sign_in(&stack, "agent3", "tier3").await;
    b.goto(&stack.url("/audit?ticket=INC0012345")).await;
    b.wait(Locator::Css("table.audit-table tbody tr")).await;
    let rows = b
        .js(
            "return Array.from(document.querySelectorAll('table.audit-table tbody tr')).map(r => r.textContent);",
            vec![],
        )
        .await;
    let rows = rows.as_array().cloned().unwrap_or_default();
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(
            r.as_str().is_some_and(|t| t.contains("INC0012345")),
            "a row without the ticket: {r}"
        );
    }
    assert_eq!(
        b.attr(Locator::Id("ticket"), "value").await.as_deref(),
        Some("INC0012345"),
        "the filter shows the ticket"
    );
    b.check_page("audit-by-ticket").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier1_verifies_and_gets_the_note_to_hand_over_but_no_action() {
    const TEST: &str = "tier1_verifies_and_gets_the_note_to_hand_over_but_no_action";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent1", "tier1").await;
    b.open_caller("alice@example.com").await;
    verify(&mut b, &stack, "alice@example.com").await;
    let note = b.text(Locator::Id("verification-note")).await;
    assert!(
        note.starts_with("Caller identity verified with fctr"),
        "{note}"
    );
    let tier = b.text(Locator::Id("tier-note")).await;
    assert!(tier.contains("verification note"), "{tier}");
    assert!(
        !b.has(Locator::Css(ACTION_BUTTONS)).await,
        "no action button for Tier 1"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_caller_card_passes_the_page_checks() {
    const TEST: &str = "every_kind_of_caller_card_passes_the_page_checks";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;

    open_card(&mut b, &stack, "alice@example.com", "card-alice-active").await;
    assert_eq!(status_badge(&mut b).await, "Active");
    assert!(b.has(Locator::Id("verify-button")).await);

    open_card(&mut b, &stack, "carol@example.com", "card-carol-protected").await;
    assert!(b.text(Locator::Id("badges")).await.contains("Protected"));
    assert!(b.has(Locator::Id("verify-blocked")).await);
    assert!(!b.has(Locator::Id("verify-button")).await);
    assert!(!b.has(Locator::Css(ACTION_BUTTONS)).await);

    open_card(&mut b, &stack, "dave@example.com", "card-dave-privileged").await;
    let badges = b.text(Locator::Id("badges")).await;
    assert!(badges.contains("2 different factors"), "{badges}");

    open_card(&mut b, &stack, "erin@example.com", "card-erin-locked-out").await;
    assert_eq!(status_badge(&mut b).await, "Locked out");
    assert!(b.has(Locator::Id("unlock-step")).await);

    open_card(
        &mut b,
        &stack,
        "frank@example.com",
        "card-frank-password-expired",
    )
    .await;
    assert_eq!(status_badge(&mut b).await, "Password expired");

    open_card(&mut b, &stack, "grace@example.com", "card-grace-suspended").await;
    assert_eq!(status_badge(&mut b).await, "Suspended");

    open_card(&mut b, &stack, "heidi@example.com", "card-heidi-sms-only").await;
    assert!(
        !b.has(Locator::Id("verify-button")).await || b.has(Locator::Css("details.unusable")).await,
        "SMS is not a strong enough method: said on the card"
    );

    open_card(&mut b, &stack, "ivan@example.com", "card-ivan-no-factors").await;
    assert!(b.has(Locator::Id("verify-blocked")).await);
    assert!(!b.has(Locator::Id("verify-button")).await);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_from_search_to_a_sent_push_with_a_visible_focus() {
    const TEST: &str = "keyboard_only_from_search_to_a_sent_push_with_a_visible_focus";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.sign_in(&stack, "agent2", "tier2").await;

    // The search field has the focus on arrival: type and press Enter.
    let focused = b.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(focused, json!("q"), "the search field is focused");
    let field = b.client.active_element().await.expect("the focused field");
    field
        .send_keys(&format!("alice@example.com{ENTER}"))
        .await
        .expect("type and press Enter");
    b.wait(Locator::Css("table.results a")).await;

    // Tab to the first result and open it.
    tab_to(&mut b, "table.results a", 10).await;
    assert_focus_visible(&b, "the first result link").await;
    b.check_page("keyboard-focus-on-result").await;
    assert_focus_visible(&b, "the first result link, after the checks").await;
    press(&b, ENTER).await;
    b.wait(Locator::Id("caller-name")).await;
    assert!(b.path().await.starts_with("/callers/"));

    // Tab to Verify and press Enter: the push goes out.
    tab_to(&mut b, "#verify-button", 30).await;
    assert_focus_visible(&b, "the Verify button").await;
    b.check_page("keyboard-focus-on-verify").await;
    assert_focus_visible(&b, "the Verify button, after the checks").await;
    press(&b, ENTER).await;
    b.wait(Locator::Id("number")).await;
    assert!(b.path().await.starts_with("/verifications/"));
    assert_eq!(b.status().await, "challenged");
    b.check_page("keyboard-push-sent").await;
    b.close().await;
}
