//! What replicas of one deployment coordinate through besides sessions, grants and limits: leases (one worker
//! for a job across all replicas), fan-out of small messages to every replica, and small opaque values with a TTL
//! that an adapter must find on whichever replica asks (the Entra connector's pending pushes).
//!
//! Keys and topics are built by the caller from opaque ids and pseudonyms only (never a name, a login or an IdP
//! id); values and messages are opaque bytes that the caller already keeps free of personal data or seals.

use crate::error::PortError;
use async_trait::async_trait;
use futures_core::Stream;
use std::pin::Pin;
use std::time::Duration;

/// Messages published on one topic after the subscription started, in publish order per publisher. A
/// subscription that falls behind or loses its connection may miss messages (fan-out is a hint to look again,
/// never the only copy of a fact); it ends when the coordinator shuts down.
pub type Subscription = Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>;

/// Leases, fan-out and short-lived values shared by replicas.
#[async_trait]
pub trait Coordinator: Send + Sync {
    /// Takes the lease `key` for `holder` for `ttl` if nobody holds it, or renews it if `holder` already does.
    /// Returns whether `holder` holds it now. Atomic: of any number of concurrent callers with different holders,
    /// at most one gets `true` while the lease runs. A holder that stops renewing (a replica killed) loses it when
    /// `ttl` runs out.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the store cannot be reached (the caller must then not act as the holder).
    async fn acquire(&self, key: &str, holder: &str, ttl: Duration) -> Result<bool, PortError>;

    /// Gives the lease up if `holder` holds it (otherwise does nothing).
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn release(&self, key: &str, holder: &str) -> Result<(), PortError>;

    /// Sends `message` to every current subscriber of `topic`, on every replica.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn publish(&self, topic: &str, message: Vec<u8>) -> Result<(), PortError>;

    /// Subscribes to `topic`. The subscription is live when this returns: a message published after it returned
    /// is delivered.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn subscribe(&self, topic: &str) -> Result<Subscription, PortError>;

    /// Stores `value` under `key` for `ttl`, replacing any earlier value.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), PortError>;

    /// Reads the value under `key`; missing or expired is `None`.
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError>;

    /// Deletes the value under `key` (nothing when there is none).
    ///
    /// # Errors
    /// [`PortError::Unavailable`].
    async fn delete(&self, key: &str) -> Result<(), PortError>;
}
