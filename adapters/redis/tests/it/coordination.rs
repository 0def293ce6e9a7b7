//! Leases, fan-out and values across two replicas.

use crate::support::Fixture;
use futures::StreamExt;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_fought_over_by_eight_holders_on_two_replicas_has_one_holder() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.coordinator();
    let b = fx.replica().await.coordinator();
    for round in 0..10 {
        let key = format!("poll:{round}");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let c = if i % 2 == 0 { a.clone() } else { b.clone() };
                let key = key.clone();
                tokio::spawn(async move {
                    let holder = format!("replica-{i}");
                    (
                        holder.clone(),
                        c.acquire(&key, &holder, Duration::from_secs(30))
                            .await
                            .unwrap(),
                    )
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (holder, won) = t.await.unwrap();
            if won {
                winners.push(holder);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let winner = &winners[0];
        assert!(
            a.acquire(&key, winner, Duration::from_secs(30))
                .await
                .unwrap(),
            "the holder renews"
        );
        assert!(
            !b.acquire(&key, "someone-else", Duration::from_secs(30))
                .await
                .unwrap()
        );
        b.release(&key, "someone-else").await.unwrap();
        assert!(
            !b.acquire(&key, "someone-else", Duration::from_secs(30))
                .await
                .unwrap(),
            "not released by another"
        );
        b.release(&key, winner).await.unwrap();
        assert!(
            b.acquire(&key, "someone-else", Duration::from_secs(30))
                .await
                .unwrap(),
            "free once released"
        );
    }
    fx.cleanup().await;
}

#[tokio::test]
async fn a_lease_nobody_renews_runs_out() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.coordinator();
    let b = fx.replica().await.coordinator();
    assert!(
        a.acquire("job", "a", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !b.acquire("job", "b", Duration::from_millis(300))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        b.acquire("job", "b", Duration::from_secs(5)).await.unwrap(),
        "replica a died; b takes over"
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_on_one_replica_reaches_subscribers_on_the_other() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.coordinator();
    let b = fx.replica().await.coordinator();
    let mut on_b = b.subscribe("verification:1").await.unwrap();
    let mut also_b = b.subscribe("verification:1").await.unwrap();
    let mut other_topic = b.subscribe("verification:2").await.unwrap();
    let mut on_a = a.subscribe("verification:1").await.unwrap();
    // Live when subscribe returned: published right away, delivered.
    a.publish("verification:1", b"approved".to_vec())
        .await
        .unwrap();
    a.publish("verification:1", b"second".to_vec())
        .await
        .unwrap();
    for sub in [&mut on_b, &mut also_b, &mut on_a] {
        let got = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"approved"[..]));
        let got = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"second"[..]), "in publish order");
    }
    b.publish("verification:2", b"x".to_vec()).await.unwrap();
    let got = tokio::time::timeout(WAIT, other_topic.next())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"x"[..]), "topics are separate");
    fx.cleanup().await;
}

#[tokio::test]
async fn subscriptions_end_when_the_store_is_dropped() {
    let fx = Fixture::new().await;
    let state = fx.replica().await;
    let mut sub = state.coordinator().subscribe("t").await.unwrap();
    drop(state);
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert_eq!(end, None);
}

#[tokio::test]
async fn values_are_shared_and_expire() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.coordinator();
    let b = fx.replica().await.coordinator();
    a.put("pending:1", b"one".to_vec(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        b.get("pending:1").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    b.put("pending:1", b"two".to_vec(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        a.get("pending:1").await.unwrap().as_deref(),
        Some(&b"two"[..]),
        "replaced"
    );
    a.delete("pending:1").await.unwrap();
    assert_eq!(b.get("pending:1").await.unwrap(), None);
    b.delete("never").await.unwrap();
    a.put("short", b"x".to_vec(), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(b.get("short").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(b.get("short").await.unwrap(), None);
    a.put("zero", b"x".to_vec(), Duration::ZERO).await.unwrap();
    assert_eq!(a.get("zero").await.unwrap(), None);
    fx.cleanup().await;
}
