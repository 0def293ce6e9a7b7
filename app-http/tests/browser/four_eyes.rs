//! Four-eyes approval in real browsers: one agent's confirmed reset waits for a second agent's approval; the
//! approver opens the queue from the navigation and approves; the first agent runs the reset and sees the link.

use crate::flows::verify;
use crate::harness::{Browser, Stack, browser_or_skip};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_a_reset_waits_for_the_approver_then_runs() {
    const TEST: &str = "four_eyes_a_reset_waits_for_the_approver_then_runs";
    if !browser_or_skip(TEST) {
        return;
    }
    let policy = fctr_core::policy::Policy::parse(
        "[four_eyes]\nactions = [\"reset_password\"]\napprover_roles = [\"tier3\"]\n",
    )
    .unwrap();
    let stack = Stack::start_with_policy(Some(policy)).await;

    // agent2 verifies alice and confirms the reset: it waits.
    let mut a2 = Browser::launch(TEST).await;
    a2.sign_in(&stack, "agent2", "tier2").await;
    assert!(
        !a2.has(Locator::Id("nav-approvals")).await,
        "a tier2 agent is no approver"
    );
    let card = a2.open_caller("alice@example.com").await;
    verify(&mut a2, &stack, "alice@example.com").await;
    a2.click(Locator::Id("act-reset_password")).await;
    a2.wait(Locator::Id("needs-approval")).await;
    a2.check_page("confirm-needs-approval").await;
    a2.click_to_load(Locator::Id("confirm")).await;
    let heading = a2.text(Locator::Css("main h1")).await;
    assert!(heading.contains("Waiting for a second agent"), "{heading}");
    assert!(!a2.has(Locator::Id("one-time-secret")).await);
    a2.check_page("waiting-for-approval").await;

    // agent3 opens the queue from the navigation, reviews and approves.
    let mut a3 = Browser::launch(&format!("{TEST}-approver")).await;
    a3.sign_in(&stack, "agent3", "tier3").await;
    a3.click(Locator::Id("nav-approvals")).await;
    a3.wait(Locator::Id("approvals")).await;
    let row = a3.text(Locator::Css("#approvals tbody tr")).await;
    assert!(row.contains("Alice") && row.contains("Agent Two"), "{row}");
    a3.check_page("approvals-queue").await;
    a3.click_to_load(Locator::Css("#approvals button.approve"))
        .await;
    let heading = a3.text(Locator::Css("main h1")).await;
    assert_eq!(heading, "Approved");
    a3.check_page("approved").await;
    a3.click(Locator::Id("back")).await;
    a3.wait(Locator::Id("approvals-empty")).await;

    // agent2 runs the reset now: the one-time link.
    a2.goto(&stack.url(&card)).await;
    a2.click(Locator::Id("act-reset_password")).await;
    a2.click(Locator::Id("confirm")).await;
    let secret = a2.text(Locator::Id("one-time-secret")).await;
    assert!(secret.starts_with("http"), "a reset link: {secret:?}");
    a2.check_page("reset-after-approval").await;
    a3.close().await;
    a2.close().await;
}
