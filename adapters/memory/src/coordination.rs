//! The in-memory coordinator (one process): leases, fan-out and short-lived values.

use crate::sync::{add_std, lock};
use crate::ttl::TtlMap;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{Clock, Coordinator, PortError, Subscription};
use futures::channel::mpsc::{UnboundedSender, unbounded};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Leases, topics and values in this process's memory. Atomic within the process (one short lock per call);
/// a second process shares nothing. Time comes from the [`Clock`], so tests drive lease expiry exactly.
pub struct MemoryCoordinator {
    clock: Arc<dyn Clock>,
    leases: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    topics: Mutex<HashMap<String, Vec<UnboundedSender<Vec<u8>>>>>,
    values: Mutex<TtlMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for MemoryCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryCoordinator")
    }
}

impl MemoryCoordinator {
    /// An empty coordinator reading time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            leases: Mutex::new(HashMap::new()),
            topics: Mutex::new(HashMap::new()),
            values: Mutex::new(TtlMap::new()),
        }
    }
}

#[async_trait]
impl Coordinator for MemoryCoordinator {
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, PortError> {
        let now = self.clock.now();
        let mut g = lock(&self.leases);
        g.retain(|_, (_, until)| *until > now);
        match g.get_mut(key) {
            Some((h, until)) if h == holder => {
                *until = add_std(now, ttl);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                g.insert(key.to_owned(), (holder.to_owned(), add_std(now, ttl)));
                Ok(true)
            }
        }
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), PortError> {
        let mut g = lock(&self.leases);
        if g.get(key).is_some_and(|(h, _)| h == holder) {
            g.remove(key);
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, message: Vec<u8>) -> Result<(), PortError> {
        let mut g = lock(&self.topics);
        if let Some(subs) = g.get_mut(topic) {
            subs.retain(|tx| tx.unbounded_send(message.clone()).is_ok());
            if subs.is_empty() {
                g.remove(topic);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, PortError> {
        let (tx, rx) = unbounded();
        lock(&self.topics)
            .entry(topic.to_owned())
            .or_default()
            .push(tx);
        Ok(Box::pin(rx))
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), PortError> {
        let now = self.clock.now();
        lock(&self.values).insert(key.to_owned(), value, add_std(now, ttl), now);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        let now = self.clock.now();
        Ok(lock(&self.values).get(&key.to_owned(), now).cloned())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        lock(&self.values).remove(&key.to_owned());
        Ok(())
    }
}
