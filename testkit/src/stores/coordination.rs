//! The checks of [`Coordinator`]: leases, fan-out across replicas, values with TTLs.

use super::support::{
    Ctx, DELIVERY, LONG, LONGEST, PAST_SHORT, SHORT, all_ok, concurrently, ensure, fail, made,
};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use fctr_ports::{Coordinator, Subscription};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The coordinator's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Coordinator;
    "lease_one_holder_of_many" => one_holder_of_many,
    "lease_renewed_by_holder" => renewed_by_holder,
    "lease_released_only_by_holder" => released_only_by_holder,
    "lease_expiry_frees_it" => expiry_frees_it,
    "publish_reaches_other_replica" => publish_reaches_other_replica,
    "value_put_get_delete" => value_put_get_delete,
    "value_ttl_expiry" => value_ttl_expiry,
];

async fn store(f: Arc<dyn StoreFixture>) -> Result<Replicas<dyn Coordinator>, Verdict> {
    made(f.coordinator().await, Port::Coordinator)
}

const KEY: &str = "suite:lease:poller";

async fn acquire(s: &Arc<dyn Coordinator>, holder: &str, ttl: Duration) -> Result<bool, Verdict> {
    s.acquire(KEY, holder, ttl).await.ctx("acquire")
}

/// Of 16 concurrent holders (both replicas), exactly one gets the lease; it can renew, nobody else can take it,
/// and another key is unaffected.
async fn one_holder_of_many(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let outputs = concurrently(16, |i| {
        let s = r.pick(i);
        async move { s.acquire(KEY, &format!("replica-{i}"), LONG).await }
    })
    .await?;
    let won: Vec<usize> = all_ok(outputs, "acquire")?
        .iter()
        .enumerate()
        .filter(|(_, w)| **w)
        .map(|(i, _)| i)
        .collect();
    ensure(won.len() == 1, || {
        format!(
            "{} of 16 concurrent holders got the lease (exactly one must)",
            won.len()
        )
    })?;
    let winner = won
        .first()
        .map(|i| format!("replica-{i}"))
        .unwrap_or_default();
    ensure(acquire(&r.b, &winner, LONG).await?, || {
        "the holder could not renew its lease".into()
    })?;
    ensure(!acquire(&r.a, "replica-late", LONG).await?, || {
        "a second holder took a lease that is held".into()
    })?;
    ensure(
        r.b.acquire("suite:lease:other", "replica-late", LONG)
            .await
            .ctx("acquire")?,
        || "a lease on another key was refused while the first was held".into(),
    )
}

/// A holder that renews keeps the lease past its first TTL; once it stops, the lease runs out one TTL after the
/// last renewal.
async fn renewed_by_holder(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    ensure(acquire(&r.a, "replica-1", LONGEST).await?, || {
        "a free lease was refused".into()
    })?;
    r.time.advance(Duration::from_millis(750)).await;
    ensure(acquire(&r.b, "replica-1", LONGEST).await?, || {
        "the holder's renewal (on the other replica) was refused".into()
    })?;
    r.time.advance(Duration::from_millis(900)).await;
    ensure(!acquire(&r.b, "replica-2", LONGEST).await?, || {
        "1.65 s after a 1.5 s lease was taken but 0.9 s after its renewal, another holder took it (renewal must extend it)".into()
    })?;
    r.time.advance(Duration::from_millis(750)).await;
    ensure(acquire(&r.a, "replica-2", LONGEST).await?, || {
        "1.65 s after the last renewal of a 1.5 s lease, another holder could not take it".into()
    })
}

/// `release` by another holder does nothing; by the holder (on either replica) it frees the lease.
async fn released_only_by_holder(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    ensure(acquire(&r.a, "replica-1", LONG).await?, || {
        "a free lease was refused".into()
    })?;
    r.b.release(KEY, "replica-2").await.ctx("release")?;
    ensure(!acquire(&r.a, "replica-2", LONG).await?, || {
        "a release by a holder that does not hold the lease freed it".into()
    })?;
    r.b.release(KEY, "replica-1").await.ctx("release")?;
    ensure(acquire(&r.a, "replica-2", LONG).await?, || {
        "after the holder released it, another holder could not take the lease".into()
    })?;
    r.a.release("suite:lease:nobody", "replica-1")
        .await
        .ctx("release of a lease nobody holds")
}

/// A holder that stops renewing loses the lease when its TTL runs out; another then takes it.
async fn expiry_frees_it(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    ensure(acquire(&r.a, "replica-1", SHORT).await?, || {
        "a free lease was refused".into()
    })?;
    ensure(!acquire(&r.b, "replica-2", SHORT).await?, || {
        "a second holder took a lease that is held".into()
    })?;
    r.time.advance(PAST_SHORT).await;
    ensure(acquire(&r.b, "replica-2", SHORT).await?, || {
        "after the holder's TTL ran out, another holder could not take the lease".into()
    })?;
    ensure(!acquire(&r.a, "replica-1", SHORT).await?, || {
        "the old holder got the lease back while the new holder holds it".into()
    })
}

/// The next message on `sub`, waiting at most [`DELIVERY`].
async fn next(sub: &mut Subscription, what: &str) -> Result<Vec<u8>, Verdict> {
    match tokio::time::timeout(DELIVERY, sub.next()).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(fail(format!("{what}: the subscription ended"))),
        Err(_) => Err(fail(format!(
            "{what}: nothing arrived within {} s",
            DELIVERY.as_secs()
        ))),
    }
}

/// A message published on one replica reaches subscribers on both, in publish order, and only on its topic.
async fn publish_reaches_other_replica(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let topic = "suite:topic:verification";
    let mut on_b = r.b.subscribe(topic).await.ctx("subscribe")?;
    let mut on_a = r.a.subscribe(topic).await.ctx("subscribe")?;
    let mut elsewhere = r.b.subscribe("suite:topic:other").await.ctx("subscribe")?;
    r.a.publish("suite:topic:other", b"other".to_vec())
        .await
        .ctx("publish")?;
    let sent: Vec<Vec<u8>> = (1..=3)
        .map(|i| format!("update-{i}").into_bytes())
        .collect();
    for m in &sent {
        r.a.publish(topic, m.clone()).await.ctx("publish")?;
    }
    for (who, sub) in [
        ("the other replica", &mut on_b),
        ("the same replica", &mut on_a),
    ] {
        for (i, want) in sent.iter().enumerate() {
            let got = next(sub, &format!("message {} to a subscriber on {who}", i + 1)).await?;
            ensure(&got == want, || {
                format!(
                    "a subscriber on {who} got {:?} as message {} (expected {:?}: publish order, this topic only)",
                    String::from_utf8_lossy(&got),
                    i + 1,
                    String::from_utf8_lossy(want)
                )
            })?;
        }
    }
    let got = next(&mut elsewhere, "the message on another topic").await?;
    ensure(got == b"other", || {
        format!(
            "a subscriber of another topic got {:?}",
            String::from_utf8_lossy(&got)
        )
    })?;
    r.b.publish(topic, b"from-b".to_vec())
        .await
        .ctx("publish")?;
    let got = next(&mut on_a, "a message published on the other replica").await?;
    ensure(got == b"from-b", || {
        format!(
            "a message published on replica b arrived on a as {:?}",
            String::from_utf8_lossy(&got)
        )
    })
}

/// Values: stored on one replica, read on the other, replaced, deleted; missing reads `None`.
async fn value_put_get_delete(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let (k, other) = ("suite:value:push", "suite:value:other");
    ensure(r.a.get(k).await.ctx("get")?.is_none(), || {
        "a key never stored reads as a value".into()
    })?;
    r.a.put(k, b"one".to_vec(), LONG).await.ctx("put")?;
    r.a.put(other, b"keep".to_vec(), LONG).await.ctx("put")?;
    ensure(
        r.b.get(k).await.ctx("get")? == Some(b"one".to_vec()),
        || "a value stored on one replica does not read on the other".into(),
    )?;
    r.b.put(k, b"two".to_vec(), LONG).await.ctx("put")?;
    ensure(
        r.a.get(k).await.ctx("get")? == Some(b"two".to_vec()),
        || "put did not replace the earlier value".into(),
    )?;
    r.b.delete(k).await.ctx("delete")?;
    ensure(r.a.get(k).await.ctx("get")?.is_none(), || {
        "a deleted value still reads".into()
    })?;
    r.a.delete(k).await.ctx("delete of a missing key")?;
    ensure(
        r.b.get(other).await.ctx("get")? == Some(b"keep".to_vec()),
        || "deleting one key changed another".into(),
    )
}

/// A value's TTL ends it.
async fn value_ttl_expiry(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let k = "suite:value:short";
    r.a.put(k, b"soon gone".to_vec(), SHORT).await.ctx("put")?;
    ensure(r.b.get(k).await.ctx("get")?.is_some(), || {
        "a value is gone before its TTL".into()
    })?;
    r.time.advance(PAST_SHORT).await;
    ensure(r.a.get(k).await.ctx("get")?.is_none(), || {
        "a value still reads after its TTL".into()
    })
}
