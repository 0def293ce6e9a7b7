//! The portal's pages that the flows in `flows.rs` do not reach, each through `Browser::check_page`
//! (screenshots at 1280 and 390 px, no sideways scrolling at 390, no axe-core violation); and the page checks
//! themselves shown able to fail.

use crate::harness::{Browser, NARROW, Stack, WIDE, browser_or_skip};
use fantoccini::Locator;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_outside_the_flows_pass_the_page_checks() {
    const TEST: &str = "pages_outside_the_flows_pass_the_page_checks";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;

    // agent0's groups map to no role: the sign-in ends on "Not authorized".
    b.sign_in_at_idp(&stack, "agent0").await;
    assert_eq!(b.text(Locator::Id("reason-code")).await, "no_role");
    assert_eq!(
        b.text(Locator::Css("section.message h1")).await,
        "Not authorized"
    );
    b.check_page("not-authorized").await;

    // Tier 1 may not read the audit log; an unknown page; signing out.
    b.sign_in(&stack, "agent1", "tier1").await;
    b.goto(&stack.url("/audit")).await;
    b.wait(Locator::Id("reason-code")).await;
    b.check_page("audit-refused").await;
    b.goto(&stack.url("/no-such-page")).await;
    b.wait(Locator::Css("main h1")).await;
    b.check_page("not-found").await;
    b.goto(&stack.url("/search")).await;
    b.click(Locator::XPath("//button[normalize-space(.)='Sign out']"))
        .await;
    b.wait(Locator::Css("p.notice")).await;
    b.check_page("signed-out").await;

    // Tier 3: the audit log (with the events of this test's sign-ins), a search with no match.
    b.sign_in(&stack, "agent3", "tier3").await;
    b.click(Locator::XPath("//nav//a[normalize-space(.)='Audit log']"))
        .await;
    b.wait(Locator::Css("table.audit-table tbody tr")).await;
    b.check_page("audit").await;
    b.goto(&stack.url("/search")).await;
    let q = b.wait(Locator::Id("q")).await;
    q.send_keys("nobody-matches-this").await.expect("type");
    b.click(Locator::Css("form.search button[type='submit']"))
        .await;
    b.wait(Locator::XPath(
        "//p[normalize-space(.)='No callers match.']",
    ))
    .await;
    b.check_page("no-results").await;
    b.close().await;
}

/// The checks find what they look for: an image without a text alternative and an element wider than a phone,
/// added to the sign-in page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_checks_can_fail() {
    const TEST: &str = "the_page_checks_can_fail";
    if !browser_or_skip(TEST) {
        return;
    }
    let stack = Stack::start().await;
    let mut b = Browser::launch(TEST).await;
    b.goto(&stack.url("/")).await;
    b.wait(Locator::Id("sign-in")).await;
    b.check_page("clean").await;
    // CSSOM, not a style attribute: the page's CSP allows no inline style.
    b.js(
        r"
        const img = document.createElement('img');
        img.id = 'no-alt'; img.src = '/static/app.css';
        const wide = document.createElement('div');
        wide.id = 'too-wide'; wide.style.width = '600px'; wide.textContent = 'wide';
        document.querySelector('main').append(img, wide);
        return true;
        ",
        vec![],
    )
    .await;

    b.set_viewport(NARROW).await;
    let overflow = b.overflow().await;
    b.set_viewport(WIDE).await;
    let overflow = overflow.expect("a 600 px element scrolls a 390 px page sideways");
    let first = &overflow["offenders"][0];
    assert!(
        first["selector"]
            .as_str()
            .is_some_and(|s| s.ends_with("div#too-wide")),
        "{overflow}"
    );
    assert_eq!(overflow["innerWidth"], json!(NARROW.0));
    assert!(b.overflow().await.is_none(), "600 px fits in 1280");

    if let Some(violations) = b.axe_violations("planted").await {
        let alt = violations
            .iter()
            .find(|v| v["id"] == "image-alt")
            .unwrap_or_else(|| panic!("no image-alt violation in {violations:?}"));
        assert_eq!(alt["nodes"][0]["target"], json!(["#no-alt"]), "{alt}");
    }
    b.close().await;
}
