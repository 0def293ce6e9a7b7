//! Leases, fan-out and short-lived values on Redis.
//!
//! - `P:l:<sha256(lease key)>`: the SHA-256 of the holder, TTL the lease. Taken with `SET NX PX`-like logic and
//!   renewed or released only by its holder, each in one script.
//! - `P:c:<sha256(key)>`: a sealed value, TTL as given.
//! - Channel `P:t:<sha256(topic)>`: sealed messages. Each store instance holds one pub/sub connection subscribed
//!   to `P:t:*` and hands messages to its local subscribers.

use crate::keys::{aad, sha256_hex};
use crate::pubsub::Hub;
use crate::state::{Inner, ttl_millis};
use async_trait::async_trait;
use fctr_ports::{Coordinator, PortError, Subscription};
use redis::Script;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// KEYS: lease. ARGV: holder hash, ttl ms. Takes a free lease, renews our own; 1 when we hold it now.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
",
    )
});

/// KEYS: lease. ARGV: holder hash. Deletes the lease only if we hold it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// [`Coordinator`] on Redis.
pub(crate) struct RedisCoordinator {
    inner: Arc<Inner>,
}

impl RedisCoordinator {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    fn hub(&self) -> &Hub {
        let inner = &self.inner;
        inner.hub.get_or_init(|| {
            Hub::start(
                inner.client.clone(),
                inner.keys.topic_pattern(),
                inner.timeout,
                inner.sealer.clone(),
            )
        })
    }
}

#[async_trait]
impl Coordinator for RedisCoordinator {
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, PortError> {
        let k = self.inner.keys.lease(key);
        let mut c = self.inner.conn();
        let mut inv = ACQUIRE.prepare_invoke();
        inv.key(&k)
            .arg(sha256_hex(holder.as_bytes()))
            .arg(ttl_millis(ttl).max(1));
        let held: i64 = self.inner.run("acquire", inv.invoke_async(&mut c)).await?;
        Ok(held == 1)
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), PortError> {
        let k = self.inner.keys.lease(key);
        let mut c = self.inner.conn();
        let mut inv = RELEASE.prepare_invoke();
        inv.key(&k).arg(sha256_hex(holder.as_bytes()));
        let _: i64 = self.inner.run("release", inv.invoke_async(&mut c)).await?;
        Ok(())
    }

    async fn publish(&self, topic: &str, message: Vec<u8>) -> Result<(), PortError> {
        let channel = self.inner.keys.topic(topic);
        let sealed = self.inner.sealer.seal(&aad(&channel, ""), &message)?;
        let mut c = self.inner.conn();
        let _: i64 = self
            .inner
            .run(
                "publish",
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(sealed)
                    .query_async(&mut c),
            )
            .await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, PortError> {
        let channel = self.inner.keys.topic(topic);
        let hub = self.hub();
        let (id, rx) = hub.add(&channel);
        if hub.wait(|live, _| live, self.inner.timeout).await {
            Ok(Box::pin(rx))
        } else {
            hub.remove(&channel, id);
            Err(PortError::Unavailable)
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), PortError> {
        let k = self.inner.keys.value(key);
        let ms = ttl_millis(ttl);
        let mut c = self.inner.conn();
        if ms == 0 {
            // Stored for no time at all: nothing remains.
            let _: i64 = self
                .inner
                .run("put", redis::cmd("DEL").arg(&k).query_async(&mut c))
                .await?;
            return Ok(());
        }
        let sealed = self.inner.sealer.seal(&aad(&k, ""), &value)?;
        let _: () = self
            .inner
            .run(
                "put",
                redis::cmd("SET")
                    .arg(&k)
                    .arg(sealed)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut c),
            )
            .await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let k = self.inner.keys.value(key);
        let mut c = self.inner.conn();
        let sealed: Option<Vec<u8>> = self
            .inner
            .run("get", redis::cmd("GET").arg(&k).query_async(&mut c))
            .await?;
        Ok(sealed.and_then(|s| {
            let v = self.inner.sealer.open(&aad(&k, ""), &s);
            if v.is_none() {
                tracing::warn!(target: "fctr::redis", kind = "value", "a stored value could not be opened; treated as absent");
            }
            v
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        let k = self.inner.keys.value(key);
        let mut c = self.inner.conn();
        let _: i64 = self
            .inner
            .run("delete", redis::cmd("DEL").arg(&k).query_async(&mut c))
            .await?;
        Ok(())
    }
}
