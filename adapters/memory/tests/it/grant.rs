use crate::support::{
    assert_send_sync, current_thread, grant, multi_thread, pseudo, t0, verification,
};
use chrono::TimeDelta;
use fctr_memory::{ManualClock, MemoryGrantStore};
use fctr_ports::{Grant, GrantId, GrantStore, PseudoId, VerificationStatus};
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
        store
            .take_grant(&pseudo(1), &pseudo(2), g1.id)
            .await
            .unwrap(),
        None,
        "the replaced grant is gone"
    );
    assert_eq!(
        store
            .take_grant(&pseudo(1), &pseudo(2), g2.id)
            .await
            .unwrap(),
        Some(g2)
    );
}

#[tokio::test]
async fn take_grant_needs_the_right_id_and_works_once() {
    let (_, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, TTL).await.unwrap();
    assert_eq!(
        store
            .take_grant(&pseudo(1), &pseudo(2), GrantId::random())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        Some(g.clone()),
        "a wrong id leaves it in place"
    );
    assert_eq!(
        store
            .take_grant(&pseudo(2), &pseudo(1), g.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_grant(&pseudo(1), &pseudo(2), g.id)
            .await
            .unwrap(),
        Some(g.clone())
    );
    assert_eq!(
        store
            .take_grant(&pseudo(1), &pseudo(2), g.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn expired_grant_cannot_be_found_or_taken() {
    let (clock, store) = store();
    let g = grant(1, 2);
    store.put_grant(&g, Duration::from_secs(30)).await.unwrap();
    clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        store.find_grant(&pseudo(1), &pseudo(2)).await.unwrap(),
        None
    );
    store.put_grant(&g, Duration::from_secs(30)).await.unwrap();
    clock.advance(TimeDelta::seconds(30));
    assert_eq!(
        store
            .take_grant(&pseudo(1), &pseudo(2), g.id)
            .await
            .unwrap(),
        None
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

/// Races `takers` concurrent takes of one stored grant; each taker uses the right id or a wrong one.
fn race(takers: &[bool], expired: bool) -> (Grant, Vec<Option<Grant>>) {
    let (clock, store) = store();
    let rt = multi_thread();
    rt.block_on(async {
        let g = grant(1, 2);
        store.put_grant(&g, Duration::from_secs(60)).await.unwrap();
        if expired {
            clock.advance(TimeDelta::seconds(60));
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(takers.len()));
        let tasks: Vec<_> = takers
            .iter()
            .map(|&right| {
                let store = store.clone();
                let barrier = barrier.clone();
                let id = if right { g.id } else { GrantId::random() };
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.take_grant(&pseudo(1), &pseudo(2), id).await.unwrap()
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
fn of_many_concurrent_takes_exactly_one_wins() {
    for _ in 0..50 {
        let (g, results) = race(&[true; 64], false);
        let winners: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(winners, vec![g]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_takes_with_random_ids(takers in proptest::collection::vec(any::<bool>(), 1..24), expired in any::<bool>()) {
        let (g, results) = race(&takers, expired);
        let winners: Vec<Grant> = results.iter().flatten().cloned().collect();
        prop_assert!(winners.len() <= 1);
        let should_win = !expired && takers.contains(&true);
        prop_assert_eq!(winners.len(), usize::from(should_win));
        if let Some(w) = winners.first() {
            prop_assert_eq!(w, &g);
        }
        for (right, result) in takers.iter().zip(&results) {
            prop_assert!(*right || result.is_none(), "a wrong id never wins");
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put { pair: u8, ttl_secs: u64 },
    Take { pair: u8, id: u8 },
    Find { pair: u8 },
    Advance { secs: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, 0..20u64).prop_map(|(pair, ttl_secs)| Op::Put { pair, ttl_secs }),
        (0..3u8, 0..6u8).prop_map(|(pair, id)| Op::Take { pair, id }),
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
        // Model: pair -> (grant, expires_at). Every grant put gets a fresh id; `Take.id` picks one of the last few
        // issued ids (or a never-issued one).
        let mut model: HashMap<u8, (Grant, chrono::DateTime<chrono::Utc>)> = HashMap::new();
        let mut issued: Vec<GrantId> = Vec::new();
        let rt = current_thread();
        for op in ops {
            let now = clock.get();
            match op {
                Op::Put { pair: p, ttl_secs } => {
                    let mut g = grant(p, p + 10);
                    g.id = GrantId::random();
                    issued.push(g.id);
                    rt.block_on(store.put_grant(&g, Duration::from_secs(ttl_secs))).unwrap();
                    model.insert(p, (g, now + TimeDelta::seconds(ttl_secs as i64)));
                }
                Op::Take { pair: p, id } => {
                    let id = issued.iter().rev().nth(usize::from(id)).copied().unwrap_or_else(GrantId::random);
                    let (a, s) = pair(p);
                    let got = rt.block_on(store.take_grant(&a, &s, id)).unwrap();
                    let want = match model.get(&p) {
                        Some((g, exp)) if now < *exp && g.id == id => model.remove(&p).map(|(g, _)| g),
                        _ => None,
                    };
                    prop_assert_eq!(got, want);
                }
                Op::Find { pair: p } => {
                    let (a, s) = pair(p);
                    let got = rt.block_on(store.find_grant(&a, &s)).unwrap();
                    let want = model.get(&p).filter(|(_, exp)| now < *exp).map(|(g, _)| g.clone());
                    prop_assert_eq!(got, want);
                }
                Op::Advance { secs } => clock.advance(TimeDelta::seconds(secs)),
            }
        }
    }
}
