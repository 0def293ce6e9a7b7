//! Single-flight reads: concurrent reads of the same user share one upstream request.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// The body of a `200 OK` user read, shared by the callers that asked for it at the same time (zeroized when the
/// last of them drops it).
pub(super) type SharedBody = Arc<Zeroizing<Vec<u8>>>;

/// Concurrent reads of the same user share one upstream request. A lookup asks for the user and for its risk facts
/// at once, and both are `GET /api/v1/users/{id}`: without this, every lookup read the same user twice.
///
/// Only requests in flight are shared; nothing is kept once the leader's request has ended (no cache of caller
/// data). A follower gets the leader's body only for a `200 OK`; after any other outcome, or if the leader was
/// cancelled, the follower sends its own request, so errors and retries behave exactly as without sharing.
#[derive(Default)]
pub(super) struct InFlight {
    waiting: std::sync::Mutex<HashMap<String, Vec<oneshot::Sender<SharedBody>>>>,
}

pub(super) enum Flight<'a> {
    /// Sends the request and hands the body to the followers ([`Leader::finish`]).
    Leader(Leader<'a>),
    /// Waits for the leader's body.
    Follower(oneshot::Receiver<SharedBody>),
}

/// The caller that sends the request. Dropping it without [`Leader::finish`] (an error, a cancelled future)
/// releases the followers, who then ask for themselves.
pub(super) struct Leader<'a> {
    flights: &'a InFlight,
    key: String,
}

impl InFlight {
    pub(super) fn join(&self, key: &str) -> Flight<'_> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(followers) = waiting.get_mut(key) {
            let (tx, rx) = oneshot::channel();
            followers.push(tx);
            return Flight::Follower(rx);
        }
        waiting.insert(key.to_owned(), Vec::new());
        Flight::Leader(Leader {
            flights: self,
            key: key.to_owned(),
        })
    }

    fn take(&self, key: &str) -> Vec<oneshot::Sender<SharedBody>> {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
            .unwrap_or_default()
    }
}

impl Leader<'_> {
    pub(super) fn finish(self, body: &SharedBody) {
        for f in self.flights.take(&self.key) {
            let _ = f.send(Arc::clone(body));
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        // After `finish` the entry is already gone and this is a no-op; otherwise the followers' senders are
        // dropped here and each of them sends its own request.
        drop(self.flights.take(&self.key));
    }
}
