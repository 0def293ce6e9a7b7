//! The issuer's signing keys: the key set the verifier uses, verification with one bounded refetch when a token
//! names a key we do not have (key rotation), and the scheduled refresh. At most one refetch runs at a time;
//! concurrent misses wait for it and reuse its result.

// the relying party's own vocabulary, split out for length only
use super::*;

/// The client (and so the verifier's keys) from one JWKS fetch.
pub(super) struct KeySet {
    pub(super) client: Client,
    /// Counts successful fetches: a verification that saw generation `n` and finds `n + 1` after waiting knows
    /// another request refreshed the keys meanwhile.
    pub(super) generation: u64,
    pub(super) fetched_at: DateTime<Utc>,
}

/// One verification waiting for the refresh lock (decremented on drop).
pub(super) struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Self(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What triggered a JWKS refetch (the metric's `trigger` label).
#[derive(Clone, Copy)]
enum Trigger {
    UnknownKey,
    Scheduled,
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::UnknownKey => "unknown_key",
            Self::Scheduled => "scheduled",
        }
    }
}

impl Oidc {
    /// The current key set (the client built from it).
    pub(super) fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `check` with the crate's verifier (the portal's algorithm allow-list set) over the current keys. When
    /// it fails because no cached key verifies the token, the keys are refetched (bounded; see
    /// [`Oidc::refetch`]) and, if they changed, `check` runs once more. First, keys past their scheduled refresh
    /// are refetched.
    pub(super) async fn verified<T>(
        &self,
        check: impl Fn(&CoreIdTokenVerifier<'_>) -> Result<T, openidconnect::ClaimsVerificationError>,
    ) -> Result<T, OidcError> {
        self.scheduled_refresh().await;
        let keys = self.key_set();
        let first = check(&verifier_of(&keys.client));
        match first {
            Err(e) if key_may_have_rotated(&e) => {
                if self.refetch(keys.generation, Trigger::UnknownKey).await {
                    let keys = self.key_set();
                    check(&verifier_of(&keys.client)).map_err(|e| OidcError::Token(classify(&e)))
                } else {
                    Err(OidcError::Token(classify(&e)))
                }
            }
            other => other.map_err(|e| OidcError::Token(classify(&e))),
        }
    }

    /// Refetches keys older than [`JwksRefresh::every`]. Never waits for a refetch already in flight (the
    /// current keys are still good for this request) and respects [`JwksRefresh::min_interval`].
    async fn scheduled_refresh(&self) {
        let keys = self.key_set();
        if !elapsed(keys.fetched_at, self.clock.now(), self.timing.every) {
            return;
        }
        let Ok(last) = self.refresh.try_lock() else {
            return;
        };
        self.refetch_locked(last, keys.generation, Trigger::Scheduled)
            .await;
    }

    /// After a miss on key set `seen`: waits for any refetch in flight; returns true when the keys changed since
    /// `seen` (someone else's refetch, or ours). Refetches only when no refetch happened since `seen` and the last
    /// attempt is [`JwksRefresh::min_interval`] old.
    async fn refetch(&self, seen: u64, trigger: Trigger) -> bool {
        let last = {
            // Counted while waiting, also if the request is dropped meanwhile.
            let _waiting = Waiting::enter(&self.waiting);
            self.refresh.lock().await
        };
        self.refetch_locked(last, seen, trigger).await
    }

    async fn refetch_locked(
        &self,
        mut last: tokio::sync::MutexGuard<'_, Option<DateTime<Utc>>>,
        seen: u64,
        trigger: Trigger,
    ) -> bool {
        if self.key_set().generation != seen {
            return true;
        }
        let now = self.clock.now();
        if last.is_some_and(|t| !elapsed(t, now, self.timing.min_interval)) {
            return false;
        }
        *last = Some(now);
        let label = trigger.label();
        match self.fetch_jwks().await {
            Ok(jwks) => {
                let client = build_client(&self.meta, &self.redirect, &self.settings, jwks);
                let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
                *keys = Arc::new(KeySet {
                    client,
                    generation: seen + 1,
                    fetched_at: now,
                });
                drop(keys);
                metrics::counter!("fctr_oidc_jwks_refresh_total", "result" => "ok", "trigger" => label)
                    .increment(1);
                tracing::info!(trigger = label, "OIDC signing keys refreshed");
                true
            }
            Err(kind) => {
                metrics::counter!("fctr_oidc_jwks_refresh_total", "result" => "error", "trigger" => label)
                    .increment(1);
                tracing::warn!(
                    trigger = label,
                    error = kind,
                    "OIDC signing key refresh failed; keeping the previous keys"
                );
                false
            }
        }
    }

    /// GETs the JWKS with the discovery client (no redirects, timeouts). An empty key set counts as a failure.
    async fn fetch_jwks(&self) -> Result<CoreJsonWebKeySet, &'static str> {
        use openidconnect::DiscoveryError as D;
        let jwks = CoreJsonWebKeySet::fetch_async(self.meta.jwks_uri(), &self.http)
            .await
            .map_err(|e| match e {
                D::Request(_) => "request",
                D::Response(..) => "response",
                D::Parse(_) => "parse",
                _ => "other",
            })?;
        if jwks.keys().is_empty() {
            return Err("empty");
        }
        Ok(jwks)
    }
}

/// True when a verification failed because no cached key verifies the token: its `kid` is in no cached key, or
/// (without a `kid`, or with a reused one) the signature does not verify. A new key may then have been rotated in.
/// Other failures (algorithm, issuer, audience, expiry, nonce) are final.
fn key_may_have_rotated(e: &openidconnect::ClaimsVerificationError) -> bool {
    use openidconnect::SignatureVerificationError as S;
    matches!(
        e,
        openidconnect::ClaimsVerificationError::SignatureVerification(
            S::NoMatchingKey | S::CryptoError(_)
        )
    )
}

/// True when `since` lies at least `interval` before `now` (a clock that went back counts as not elapsed).
fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>, interval: Duration) -> bool {
    chrono::TimeDelta::from_std(interval).is_ok_and(|i| now - since >= i)
}
