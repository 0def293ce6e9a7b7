//! Who connected to a fake: [`PeerLog`], the peer address of every connection the fake accepted and of every
//! request it served, in order. Tests of the egress path (a forward proxy, a fixed source address) read it to
//! prove where IdP traffic came from; it is also served at `GET /_fake/peers` (and cleared with
//! `DELETE /_fake/peers`) for runs against the standalone `fake-idp` binary.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::lock;

/// The most entries kept of each kind (the oldest are dropped first), so a long-running fake stays small.
const MAX_ENTRIES: usize = 10_000;

/// A connection the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerConnection {
    /// Its number, from 1, in the order accepted.
    pub id: u64,
    /// The peer's address and port, as the socket says (a proxy's, when one is in between).
    pub peer: SocketAddr,
}

/// A request the fake served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerRequest {
    /// The connection it came on ([`PeerConnection::id`]).
    pub connection: u64,
    /// The peer's address and port.
    pub peer: SocketAddr,
    /// The method.
    pub method: String,
    /// The path (no query string).
    pub path: String,
}

#[derive(Debug, Default)]
struct Entries {
    next_id: u64,
    connections: Vec<PeerConnection>,
    requests: Vec<PeerRequest>,
}

/// The record of who connected to a fake (cheap to clone: one shared log).
#[derive(Debug, Clone, Default)]
pub struct PeerLog(Arc<Mutex<Entries>>);

fn push_bounded<T>(v: &mut Vec<T>, item: T) {
    if v.len() >= MAX_ENTRIES {
        v.remove(0);
    }
    v.push(item);
}

impl PeerLog {
    /// Records an accepted connection; returns its id.
    pub(crate) fn connection(&self, peer: SocketAddr) -> u64 {
        let mut e = lock(&self.0);
        e.next_id += 1;
        let id = e.next_id;
        push_bounded(&mut e.connections, PeerConnection { id, peer });
        id
    }

    /// Records a request on connection `connection`.
    pub(crate) fn request(&self, connection: u64, peer: SocketAddr, method: &str, path: &str) {
        push_bounded(
            &mut lock(&self.0).requests,
            PeerRequest {
                connection,
                peer,
                method: method.to_owned(),
                path: path.to_owned(),
            },
        );
    }

    /// Every connection accepted since the start (or the last [`PeerLog::clear`]).
    pub fn connections(&self) -> Vec<PeerConnection> {
        lock(&self.0).connections.clone()
    }

    /// Every request served since the start (or the last [`PeerLog::clear`]).
    pub fn requests(&self) -> Vec<PeerRequest> {
        lock(&self.0).requests.clone()
    }

    /// Forgets what was recorded (connection ids keep counting).
    pub fn clear(&self) {
        let mut e = lock(&self.0);
        e.connections.clear();
        e.requests.clear();
    }

    /// `GET /_fake/peers` (`{"connections": […], "requests": […]}`) and `DELETE /_fake/peers`.
    pub(crate) fn routes(&self) -> Router {
        Router::new()
            .route("/_fake/peers", get(list).delete(clear))
            .with_state(self.clone())
    }
}

async fn list(State(log): State<PeerLog>) -> Response {
    Json(serde_json::json!({
        "connections": log.connections(),
        "requests": log.requests(),
    }))
    .into_response()
}

async fn clear(State(log): State<PeerLog>) -> Response {
    log.clear();
    StatusCode::NO_CONTENT.into_response()
}
