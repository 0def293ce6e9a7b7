//! The one pub/sub connection of a store instance: `PSUBSCRIBE P:t:*`, messages dispatched to this process's
//! subscribers by channel, reconnected and re-subscribed after a connection loss.

use crate::keys::aad;
use crate::seal::Sealer;
use futures::StreamExt;
use futures::channel::mpsc;
use redis::Client;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Messages a subscriber may have waiting before further ones are dropped for it (fan-out is a hint; a
/// subscriber that falls behind may miss messages).
const SUBSCRIBER_BUFFER: usize = 1024;
/// First and longest pause between two attempts to (re)open the pub/sub connection.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Shortest interval between two health pings on an idle pub/sub connection.
const MIN_PING_INTERVAL: Duration = Duration::from_secs(1);

type Subscribers = HashMap<String, Vec<(u64, mpsc::Sender<Vec<u8>>)>>;

/// What the connection task and the subscribers share.
struct Shared {
    subscribers: Mutex<Subscribers>,
    next_id: AtomicU64,
    /// (subscribed now, how many times a subscription has been made).
    state: watch::Sender<(bool, u64)>,
}

impl Shared {
    fn subscribers(&self) -> MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_live(&self, live: bool) {
        self.state.send_modify(|(l, generation)| {
            if live && !*l {
                *generation += 1;
            }
            *l = live;
        });
    }

    /// Hands a message to every local subscriber of `channel`, dropping it for those whose buffer is full and
    /// forgetting those that went away.
    fn dispatch(&self, sealer: &Sealer, channel: &str, payload: &[u8]) {
        let mut subs = self.subscribers();
        let Some(list) = subs.get_mut(channel) else {
            return;
        };
        let Some(message) = sealer.open(&aad(channel, ""), payload) else {
            tracing::warn!(target: "fctr::redis", "a published message could not be opened; dropped");
            return;
        };
        list.retain_mut(|(_, tx)| match tx.try_send(message.clone()) {
            Ok(()) => true,
            Err(e) if e.is_full() => {
                tracing::warn!(target: "fctr::redis", "a subscriber is behind; a message was dropped for it");
                true
            }
            Err(_) => false,
        });
        if list.is_empty() {
            subs.remove(channel);
        }
    }
}

/// The pub/sub connection task and its subscribers.
pub(crate) struct Hub {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Hub {
    /// Starts the connection task (on the current tokio runtime).
    pub(crate) fn start(
        client: Client,
        pattern: String,
        timeout: Duration,
        sealer: Arc<Sealer>,
    ) -> Self {
        let (state, _) = watch::channel((false, 0));
        let shared = Arc::new(Shared {
            subscribers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            state,
        });
        let task = tokio::spawn(run(shared.clone(), client, pattern, timeout, sealer));
        Self { shared, task }
    }

    /// Stops the task; subscriptions end once the last handle is gone.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }

    /// Registers a local subscriber of `channel`.
    pub(crate) fn add(&self, channel: &str) -> (u64, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared
            .subscribers()
            .entry(channel.to_owned())
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    /// Forgets subscriber `id` of `channel`.
    pub(crate) fn remove(&self, channel: &str, id: u64) {
        let mut subs = self.shared.subscribers();
        if let Some(list) = subs.get_mut(channel) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                subs.remove(channel);
            }
        }
    }

    /// Waits until `pred(live, generation)` holds, for at most `within`.
    pub(crate) async fn wait(&self, pred: impl Fn(bool, u64) -> bool, within: Duration) -> bool {
        let mut rx = self.shared.state.subscribe();
        tokio::time::timeout(within, rx.wait_for(|&(live, g)| pred(live, g)))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Keeps one pattern subscription open: connect, `PSUBSCRIBE`, dispatch until the connection is lost or stops
/// answering pings, then start again after a growing pause.
async fn run(
    shared: Arc<Shared>,
    client: Client,
    pattern: String,
    timeout: Duration,
    sealer: Arc<Sealer>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        shared.set_live(false);
        match session(&shared, &client, &pattern, timeout, &sealer).await {
            // It was subscribed, then lost: start again soon (but never in a tight loop).
            Ok(()) => backoff = MIN_BACKOFF,
            Err(stage) => {
                tracing::warn!(target: "fctr::redis", stage, "pub/sub connection failed; retrying");
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// One connection's life. `Ok` when it was subscribed and then lost; `Err` when it never got that far.
async fn session(
    shared: &Shared,
    client: &Client,
    pattern: &str,
    timeout: Duration,
    sealer: &Sealer,
) -> Result<(), &'static str> {
    let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .map_err(|_| "connect timed out")?
        .map_err(|_| "connect")?;
    let (mut sink, mut stream) = pubsub.split();
    tokio::time::timeout(timeout, sink.psubscribe(pattern))
        .await
        .map_err(|_| "subscribe timed out")?
        .map_err(|_| "subscribe")?;
    shared.set_live(true);
    let mut ping = tokio::time::interval(timeout.max(MIN_PING_INTERVAL));
    ping.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(msg) => shared.dispatch(sealer, msg.get_channel_name(), msg.get_payload_bytes()),
                None => {
                    tracing::warn!(target: "fctr::redis", "pub/sub connection lost; reconnecting");
                    return Ok(());
                }
            },
            _ = ping.tick() => {
                let answered = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                if !matches!(answered, Ok(Ok(_))) {
                    tracing::warn!(target: "fctr::redis", "pub/sub connection stopped answering; reconnecting");
                    return Ok(());
                }
            }
        }
    }
}
