//! Engine: what the caller card warns about beyond the account itself: another agent's recent verification of
//! the same caller, and the per-caller challenge limit.

use super::*;

#[tokio::test]
async fn the_card_says_when_another_agent_verified_the_caller_in_the_last_hour() {
    let w = world();
    let a = w.agent("agent2", "fctr-tier2");
    let b = w.agent("agent2b", "fctr-tier2");
    let card = w.engine.lookup(&b, &ctx(), &sid("alice")).await.unwrap();
    assert!(!card.verified_by_another_recently);

    w.verify_push(&a, "alice").await;
    // The verifying agent's own verification is no warning for them...
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert!(!card.verified_by_another_recently);
    // ...but it is for anyone else, about that caller only, for an hour.
    let card = w.engine.lookup(&b, &ctx(), &sid("alice")).await.unwrap();
    assert!(card.verified_by_another_recently);
    let card = w.engine.lookup(&b, &ctx(), &sid("bob")).await.unwrap();
    assert!(!card.verified_by_another_recently);
    w.clock.advance(Duration::minutes(61));
    let card = w.engine.lookup(&b, &ctx(), &sid("alice")).await.unwrap();
    assert!(
        !card.verified_by_another_recently,
        "the warning ends after an hour"
    );
}

#[tokio::test]
async fn the_card_says_when_the_per_caller_challenge_limit_is_reached() {
    let policy =
        Policy::parse("version = 1\n[limits]\nchallenges_per_target_per_hour = 1\n").unwrap();
    let w = world_with(policy);
    let a = w.agent("agent2", "fctr-tier2");
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    assert_eq!(card.challenges_blocked_for, None);
    w.engine
        .begin_verification(&a, &ctx(), &sid("alice"), None)
        .await
        .unwrap();
    let card = w.engine.lookup(&a, &ctx(), &sid("alice")).await.unwrap();
    let wait = card.challenges_blocked_for.expect("the limit is reached");
    assert!(
        wait > Duration::zero() && wait <= Duration::hours(1),
        "{wait:?}"
    );
    // Looking does not count: the limit is unchanged by the two lookups, and bob is unaffected.
    let card = w.engine.lookup(&a, &ctx(), &sid("bob")).await.unwrap();
    assert_eq!(card.challenges_blocked_for, None);
}
