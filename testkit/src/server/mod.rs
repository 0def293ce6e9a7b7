//! The fake-server skeleton both fake tenants are built on: what a fake IdP needs whatever its vendor.
//!
//! - `Core`: the clock (real time plus an offset the tests move), fault rules, per-route rate-limit buckets,
//!   the queue of ID-token tweaks and the marker injected 5xx bodies carry. Each fake holds one beside its own
//!   tenant state (`Base`: the tenant behind one lock, plus the core).
//! - `edge`: the gate every vendor API request passes (faults, then the rate limit); the vendor renders the
//!   refusals in its own error shape and rate-limit headers.
//! - `phones`: a pending push (number, choices, expiry, answer), what a simulated phone can answer
//!   ([`PhoneAnswer`]) and [`Phones`], over the sealed [`PhoneBook`] each fake's state implements.
//! - `control`: the `/_fake/…` control-plane routes both fakes serve alike (pushes, TOTP, faults, effects,
//!   fixtures, clock, rate limit, next ID token, phone page), over a crate-private `Tenant` trait each fake
//!   implements: its records, its JSON field names and the words of its phone page.
//! - `serve`: binding, the accept loop (so a fault can drop a connection), shutdown, and [`FakeServer`], the
//!   running fake, started from any state that implements [`Launch`].
//! - `peers`: [`PeerLog`], the peer address of every connection and request a fake saw (`GET /_fake/peers`), so
//!   egress tests can prove where IdP traffic came from.
//! - `fixtures`: the fixture vocabulary both tenants share (roles, group names, TOTP seeds).
//! - `contract`: the contract-suite drivers ([`crate::contract::Phone`], [`crate::contract::CodeSource`],
//!   [`crate::contract::FaultInjector`], [`crate::contract::Upstream`]) for any running fake.
//!
//! Handles on a fake: [`Faults`], [`Phones`], [`OidcControl`]. The vendor parts ([`crate::okta`],
//! [`crate::entra`]) add their routes, error bodies, fixtures and wire format on top, and never import each other.

pub(crate) mod contract;
pub(crate) mod control;
pub(crate) mod edge;
pub(crate) mod fault;
pub(crate) mod fixtures;
pub(crate) mod peers;
pub(crate) mod phones;
pub(crate) mod serve;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::common::oidc::IdTokenTweak;

pub(crate) use control::Tenant;
pub use fault::{Fault, Faults};
pub use peers::{PeerConnection, PeerLog, PeerRequest};
pub use phones::{PhoneAnswer, PhoneBook, Phones};
pub use serve::{FakeServer, Launch, StartError};

/// Locks `m`, recovering a poisoned lock (state stays usable after a panicking test thread).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The fake's clock: real time plus an offset the control API moves.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// Now, on the fake's clock.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset.load(Ordering::Relaxed))
    }

    /// Now, in Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves the clock by `seconds` (back with a negative value).
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// OIDC test hooks of a fake (`T`: its state, for the vendor's own hooks).
#[derive(Clone)]
pub struct OidcControl<T> {
    pub(crate) core: Arc<Core>,
    pub(crate) tenant: T,
}

impl<T> std::fmt::Debug for OidcControl<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OidcControl")
    }
}

impl<T> OidcControl<T> {
    pub(crate) fn new(core: &Arc<Core>, tenant: T) -> Self {
        Self {
            core: Arc::clone(core),
            tenant,
        }
    }

    /// The next ID token minted carries this defect (tweaks queue up, one per token).
    pub fn tweak_next_id_token(&self, tweak: IdTokenTweak) {
        self.core.push_tweak(tweak);
    }

    /// Drops queued tweaks.
    pub fn clear_tweaks(&self) {
        self.core.clear_tweaks();
    }
}

/// A fake's tenant state behind one lock, beside the vendor-neutral [`Core`]. Each fake's shared state
/// dereferences to one.
#[derive(Debug)]
pub(crate) struct Base<I> {
    /// Clock, faults, rate limits, ID-token tweaks.
    pub core: Arc<Core>,
    inner: Mutex<I>,
}

impl<I> Base<I> {
    pub fn new(core: Arc<Core>, inner: I) -> Self {
        Self {
            core,
            inner: Mutex::new(inner),
        }
    }

    /// The lock; a poisoned lock is recovered (state stays usable after a panicking test thread).
    pub fn lock(&self) -> MutexGuard<'_, I> {
        lock(&self.inner)
    }

    /// The fake's clock: real time plus the offset set through the control API.
    pub fn now(&self) -> DateTime<Utc> {
        self.core.clock.now()
    }

    /// The fake's clock in Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.core.clock.now_secs()
    }
}

/// The vendor-neutral state of a fake: clock, faults and rate limits, ID-token tweaks.
#[derive(Debug)]
pub(crate) struct Core {
    /// The fake's clock.
    pub clock: Clock,
    edge: Mutex<edge::Edge>,
    tweaks: Mutex<VecDeque<IdTokenTweak>>,
    server_error_marker: Mutex<Option<String>>,
}

impl Core {
    /// A core with no faults, no tweaks and `per_minute` requests per route bucket.
    pub fn new(per_minute: u32) -> Arc<Self> {
        Arc::new(Self {
            clock: Clock::default(),
            edge: Mutex::new(edge::Edge::new(per_minute)),
            tweaks: Mutex::new(VecDeque::new()),
            server_error_marker: Mutex::new(None),
        })
    }

    /// Fault rules and rate-limit buckets.
    pub fn edge(&self) -> MutexGuard<'_, edge::Edge> {
        lock(&self.edge)
    }

    /// Queues a defect for the next ID token minted.
    pub fn push_tweak(&self, tweak: IdTokenTweak) {
        lock(&self.tweaks).push_back(tweak);
    }

    /// The defect for the ID token being minted now, if one is queued.
    pub fn next_tweak(&self) -> Option<IdTokenTweak> {
        lock(&self.tweaks).pop_front()
    }

    /// Drops queued tweaks.
    pub fn clear_tweaks(&self) {
        lock(&self.tweaks).clear();
    }

    /// The marker injected 5xx answers carry, if any.
    pub fn server_error_marker(&self) -> Option<String> {
        lock(&self.server_error_marker).clone()
    }

    /// Sets (or clears) the marker injected 5xx answers carry.
    pub fn set_server_error_marker(&self, marker: Option<String>) {
        *lock(&self.server_error_marker) = marker;
    }
}
