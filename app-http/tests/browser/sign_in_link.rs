//! Verification by IdP sign-in in real browsers: the agent sends a one-time link (shown with its QR code); the
//! caller, in a browser of their own with no portal session, opens it, signs in at the fake Okta (forced fresh,
//! with MFA) and sees it confirmed; the agent's page turns verified by itself, without a reload.

use crate::harness::{Browser, Stack, browser_or_skip};
use fantoccini::Locator;
use fctr_core::SignInLinks;
use fctr_portal::oidc::CallerAuth;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_link_the_callers_sign_in_turns_the_agents_page_verified() {
    const TEST: &str = "sign_in_link_the_callers_sign_in_turns_the_agents_page_verified";
    if !browser_or_skip(TEST) {
        return;
    }
    let policy = fctr_core::policy::Policy::parse(
        "[factors.default]\naccepted = [\"idp_sign_in\", \"push\", \"totp\"]\n",
    )
    .unwrap();
    let stack = Stack::start_with_options(Some(policy), |o| {
        o.caller_sign_in = Some((
            CallerAuth {
                acr_values: Some("urn:okta:loa:2fa:any".into()),
                ..CallerAuth::default()
            },
            SignInLinks::default(),
        ));
    })
    .await;

    let mut agent = Browser::launch(TEST).await;
    agent.sign_in(&stack, "agent2", "tier2").await;
    agent.open_caller("alice@example.com").await;
    agent
        .click(Locator::Css("input[name='factor_id'][value='idp_sign_in']"))
        .await;
    agent.click(Locator::Id("verify-button")).await;
    let link = agent.text(Locator::Id("link-url")).await;
    assert!(link.starts_with(&stack.url("/link/")), "{link}");
    assert!(
        agent.has(Locator::Css("#sign-in-link svg")).await,
        "a QR code"
    );
    assert_eq!(agent.status().await, "challenged");
    agent.check_page("sign-in-link-sent").await;

    // The caller's own browser: no session, the link only.
    let mut caller = Browser::launch(&format!("{TEST}-caller")).await;
    caller.goto(&link).await;
    caller.wait(Locator::Id("continue-sign-in")).await;
    caller.check_page("caller-link").await;
    caller.click(Locator::Id("continue-sign-in")).await;
    let button = "//button[normalize-space(.)='Sign in as alice@example.com']";
    caller.wait(Locator::XPath(button)).await;
    caller.shot("caller-idp-login").await;
    caller.click(Locator::XPath(button)).await;
    let heading = caller.text(Locator::Id("link-heading")).await;
    assert!(heading.contains("Thank you"), "{heading}");
    caller.check_page("caller-confirmed").await;

    // The agent's page turns verified by itself (the live status), with the grant.
    agent.wait_status("verified").await;
    agent.wait(Locator::Id("grant")).await;
    agent.check_page("verified-by-sign-in").await;
    caller.close().await;
    agent.close().await;
}
