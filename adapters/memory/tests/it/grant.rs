use crate::support::{
    assert_send_sync, current_thread, grant, multi_thread, pseudo, t0, verification,
};
use chrono::TimeDelta;
use fctr_memory::{ManualClock, MemoryGrantStore};
use fctr_ports::{
    ActionKind, GrantConsumption, GrantId, GrantRecord, GrantStore, PseudoId, VerificationStatus,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(600);

fn store() -> (ManualClock, Arc<MemoryGrantStore>) {
    let clock = ManualClock::new(t0());
    let store = Arc::new(MemoryGrantStore::new(Arc::new(clock.clone())));
    (clock, store)
}

#[tokio::test]
async fn verification_insert_only_if_absent() {
    assert_send_sync::<MemoryGrantStore>();
    let (_, store) = store();
    let store: Arc<dyn GrantStore> = store;
    let v = verification(1);
    assert_eq!(store.get_verification(v.id).await.unwrap(), None);
    assert!(store.put_verification(&v, None, TTL).await.unwrap());
    assert_eq!(store.get_verification(v.id).await.unwrap(), Some(v.clone()));

    let mut other = v.clone();
    other.status = VerificationStatus::Rejected;
    assert!(
        !store.put_verification(&other, None, TTL).await.unwrap(),
        "id taken"
    );
    assert_eq!(store.get_verification(v.id).await.unwrap(), Some(v));
}

#[tokio::test]
async fn verification_compare_and_swap_on_version() {
    let (_, store) = store();
    let v1 = verification(1);
    assert!(
        !store.put_verification(&v1, Some(1), TTL).await.unwrap(),
        "nothing to swap with"
    );
    assert!(store.put_verification(&v1, None, TTL).await.unwrap());

    let mut v2 = v1.clone();
    v2.version = 2;
    v2.status = VerificationStatus::Challenged;
    assert!(
        !store.put_verification(&v2, Some(0), TTL).await.unwrap(),
        "stale version"
    );
    assert!(
        !store.put_verification(&v2, Some(2), TTL).await.unwrap(),
        "future version"
    );
    assert_eq!(
        store.get_verification(v1.id).await.unwrap(),
        Some(v1.clone())
    );

    assert!(store.put_verification(&v2, Some(1), TTL).await.unwrap());
    assert_eq!(
        store.get_verification(v1.id).await.unwrap(),
        Some(v2.clone())
    );
    assert!(
        !store.put_verification(&v2, Some(1), TTL).await.unwrap(),
        "the same swap twice loses"
    );
}

#[test]
fn concurrent_compare_and_swap_has_one_winner() {
    let (_, store) = store();
    multi_thread().block_on(async {
        let v = verification(1);
        assert!(store.put_verification(&v, None, TTL).await.unwrap());
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                let mut next = v.clone();
                next.version = 2;
                tokio::spawn(
                    async move { store.put_verification(&next, Some(1), TTL).await.unwrap() },
                )
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1);
    });
}

#[tokio::test]
async fn verification_expires_by_the_clock_at_its_ttl() {
    let (clock, store) = store();
    let v = verification(1);
    store
        .put_verification(&v, None, Duration::from_secs(60))
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(60) - TimeDelta::nanoseconds(1));
    assert!(store.get_verification(v.id).await.unwrap().is_some());
    clock.advance(TimeDelta::nanoseconds(1));
    assert_eq!(
        store.get_verification(v.id).await.unwrap(),
        None,
        "expired is absent"
    );
    assert!(
        !store.put_verification(&v, Some(1), TTL).await.unwrap(),
        "no swap against an expired record"
    );
    assert!(
        store.put_verification(&v, None, TTL).await.unwrap(),
        "an expired id is free again"
    );
}

#[tokio::test]
async fn each_write_restarts_the_ttl() {
    let (clock, store) = store();
    let mut v = verification(1);
    let ttl = Duration::from_secs(60);
    store.put_verification(&v, None, ttl).await.unwrap();
    clock.advance(TimeDelta::seconds(50));
    v.version = 2;
    assert!(store.put_verification(&v, Some(1), ttl).await.unwrap());
    clock.advance(TimeDelta::seconds(50));
    assert_eq!(store.get_verification(v.id).await.unwrap(), Some(v));
}

#[tokio::test]
async fn grants_are_keyed_by_agent_and_subject_and_replaced() {
    let (_, store) = store();
    let g1 = grant(1, 2);
    store.put_grant(&g1, TTL).await.unwrap();
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        Some(g1.clone())
    );
    assert_eq!(
        store.find_grant(&pseudo(2), &pseudo(1)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(3)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        Some(g1.clone()),
        "finding does not consume"
    );

    let g2 = grant(1, 2);
    store.put_grant(&g2, TTL).await.unwrap();
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        Some(g2.clone())
    );
    assert_eq!(
        consume(&store, 1, 2, ActionKind::ResetPassword).await,
        GrantConsumption::Consumed(g2),
        "the newer grant is the one spent"
    );
}

const RESET: ActionKind = ActionKind::ResetPassword;

async fn consume(
    store: &MemoryGrantStore,
    agent: u8,
    subject: u8,
    action: ActionKind,
) -> GrantConsumption {
    store
        .consume(&pseudo(agent), &pseudo(subject), action, t0())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_single_use_grant_is_consumed_once_then_reads_already_used() {
    let (_, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, TTL).await.unwrap();
    assert_eq!(
        consume(&store, 2, 1, RESET).await,
        GrantConsumption::Missing
    );
    assert_eq!(
        consume(&store, 1, 3, RESET).await,
        GrantConsumption::Missing
    );
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Consumed(g.clone())
    );
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::AlreadyUsed
    );
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        None,
        "a used grant is not shown as live"
    );
}

#[tokio::test]
async fn a_grant_that_does_not_cover_the_action_is_left_alone() {
    let (_, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, TTL).await.unwrap();
    assert_eq!(
        consume(&store, 1, 2, ActionKind::ResetFactors).await,
        GrantConsumption::DoesNotCover
    );
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Consumed(g)
    );
}

#[tokio::test]
async fn an_expired_grant_is_not_consumed_by_the_engine_clock_or_the_ttl() {
    let (clock, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, TTL).await.unwrap();
    // The grant's own expiry, judged at the caller's `now`.
    assert_eq!(
        store
            .consume(&pseudo(1), &pseudo(2), RESET, g.expires_at)
            .await
            .unwrap(),
        GrantConsumption::Expired
    );
    // The store's TTL.
    clock.advance(TimeDelta::seconds(600));
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Missing
    );
}

#[tokio::test]
async fn a_multi_use_grant_stays_live() {
    let (_, store) = store();
    let mut g = grant(1, 2);
    g.single_use = false;
    store.put_grant(&g, TTL).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            consume(&store, 1, 2, RESET).await,
            GrantConsumption::Consumed(g.clone())
        );
    }
}

#[tokio::test]
async fn restore_gives_back_only_our_own_used_grant() {
    let (_, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, TTL).await.unwrap();
    assert!(
        !store.restore(&g, TTL).await.unwrap(),
        "not used: nothing to give back"
    );
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Consumed(g.clone())
    );
    assert!(store.restore(&g, TTL).await.unwrap());
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Consumed(g.clone())
    );
    // A newer grant took the slot: the old one is not restored over it.
    let g2 = grant(1, 2);
    store.put_grant(&g2, TTL).await.unwrap();
    assert!(!store.restore(&g, TTL).await.unwrap());
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Consumed(g2)
    );
}

#[tokio::test]
async fn expired_grant_cannot_be_found_or_consumed() {
    let (clock, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, Duration::from_secs(30)).await.unwrap();
    clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        None
    );
    assert_eq!(
        consume(&store, 1, 2, RESET).await,
        GrantConsumption::Missing
    );

    store.put_grant(&g, Duration::ZERO).await.unwrap();
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        None,
        "a zero TTL is expired at once"
    );
}

#[tokio::test]
async fn a_huge_ttl_saturates_instead_of_failing() {
    let (clock, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, Duration::MAX).await.unwrap();
    clock.advance(TimeDelta::days(365 * 100));
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        Some(g)
    );
}

#[tokio::test]
async fn expired_entries_are_collected_on_later_writes() {
    let (clock, store) = store();
    for i in 0..100u8 {
        store
            .put_verification(&verification(1), None, Duration::from_secs(10))
            .await
            .unwrap();
        store
            .put_grant(&grant(i, 200), Duration::from_secs(10))
            .await
            .unwrap();
    }
    assert_eq!(store.stored_len(), 200);
    clock.advance(TimeDelta::seconds(11));
    // One write to each map, nothing read in between.
    store
        .put_verification(&verification(1), None, TTL)
        .await
        .unwrap();
    store.put_grant(&grant(1, 2), TTL).await.unwrap();
    assert_eq!(store.stored_len(), 2);
}

#[tokio::test]
async fn memory_stays_bounded_with_a_frozen_clock_and_zero_ttls() {
    let (_, store) = store();
    for i in 0..2000u32 {
        let g = grant((i % 250) as u8, (i / 250) as u8);
        store.put_grant(&g, Duration::ZERO).await.unwrap();
        assert!(
            store.stored_len() <= 64,
            "{} entries at {i}",
            store.stored_len()
        );
    }
}

#[tokio::test]
async fn purge_expired_collects_on_demand() {
    let (clock, store) = store();
    store
        .put_grant(&grant(1, 2), Duration::from_secs(5))
        .await
        .unwrap();
    store
        .put_grant(&grant(1, 3), Duration::from_secs(50))
        .await
        .unwrap();
    store
        .put_verification(&verification(1), None, Duration::from_secs(5))
        .await
        .unwrap();
    clock.advance(TimeDelta::seconds(5));
    assert_eq!(store.purge_expired(), 2);
    assert_eq!(store.stored_len(), 1);
    assert!(
        store
            .find_grant(&pseudo(1), &pseudo(3))
            .await
            .unwrap()
            .is_some()
    );
}

/// Races `n` concurrent consumes of one stored single-use grant (all released by one barrier, on 8 threads).
fn race(n: usize, expired: bool) -> (GrantRecord, Vec<GrantConsumption>) {
    let (clock, store) = store();
    let rt = multi_thread();
    rt.block_on(async {
        let g = grant(1, 2);
        store.put_grant(&g, Duration::from_secs(60)).await.unwrap();
        if expired {
            clock.advance(TimeDelta::seconds(60));
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let store = store.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .consume(&pseudo(1), &pseudo(2), RESET, t0())
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        (g, results)
    })
}

#[test]
fn of_many_concurrent_consumes_exactly_one_wins() {
    for n in [2, 8, 64] {
        for _ in 0..20 {
            let (g, results) = race(n, false);
            let winners: Vec<_> = results
                .iter()
                .filter(|r| matches!(r, GrantConsumption::Consumed(_)))
                .collect();
            assert_eq!(winners, vec![&GrantConsumption::Consumed(g)]);
            assert!(
                results.iter().all(|r| matches!(
                    r,
                    GrantConsumption::Consumed(_) | GrantConsumption::AlreadyUsed
                )),
                "{results:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_consumes(n in 1usize..24, expired in any::<bool>()) {
        let (_, results) = race(n, expired);
        let winners = results.iter().filter(|r| matches!(r, GrantConsumption::Consumed(_))).count();
        prop_assert_eq!(winners, usize::from(!expired));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put { pair: u8, ttl_secs: u64 },
    Consume { pair: u8 },
    Find { pair: u8 },
    Advance { secs: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, 0..20u64).prop_map(|(pair, ttl_secs)| Op::Put { pair, ttl_secs }),
        (0..3u8).prop_map(|pair| Op::Consume { pair }),
        (0..3u8).prop_map(|pair| Op::Find { pair }),
        (0..15i64).prop_map(|secs| Op::Advance { secs }),
    ]
}

fn pair(p: u8) -> (PseudoId, PseudoId) {
    (pseudo(p), pseudo(p + 10))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any sequence of puts, takes, finds and clock moves behaves like a plain map with expiry times.
    #[test]
    fn grants_behave_like_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let (clock, store) = store();
        // Model: pair -> (grant, used, expires_at). Grants are single-use and expire (by their own clock) long
        // after the TTLs used here, so only the TTL and the use decide.
        let mut model: HashMap<u8, (GrantRecord, bool, chrono::DateTime<chrono::Utc>)> = HashMap::new();
        let rt = current_thread();
        for op in ops {
            let now = clock.get();
            match op {
                Op::Put { pair: p, ttl_secs } => {
                    let mut g = grant(p, p + 10);
                    g.id = GrantId::random();
                    g.expires_at = now + TimeDelta::days(1);
                    rt.block_on(store.put_grant(&g, Duration::from_secs(ttl_secs))).unwrap();
                    model.insert(p, (g, false, now + TimeDelta::seconds(ttl_secs as i64)));
                }
                Op::Consume { pair: p } => {
                    let (a, s) = pair(p);
                    let got = rt.block_on(store.consume(&a, &s, RESET, now)).unwrap();
                    let want = match model.get_mut(&p) {
                        Some((g, used, exp)) if now < *exp => {
                            if *used {
                                GrantConsumption::AlreadyUsed
                            } else {
                                *used = true;
                                GrantConsumption::Consumed(g.clone())
                            }
                        }
                        _ => GrantConsumption::Missing,
                    };
                    prop_assert_eq!(got, want);
                }
                Op::Find { pair: p } => {
                    let (a, s) = pair(p);
                    let got = rt.block_on(store.find_grant(&a, &s)).unwrap();
                    let want = model
                        .get(&p)
                        .filter(|(_, used, exp)| now < *exp && !used)
                        .map(|(g, _, _)| g.clone());
                    prop_assert_eq!(got, want);
                }
                Op::Advance { secs } => clock.advance(TimeDelta::seconds(secs)),
            }
        }
    }
}
