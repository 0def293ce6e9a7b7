//! Building the portal's [`AppState`] from a configuration (production), on the stack [`fctr_wiring`] builds:
//! what this module adds is only the portal's own part (agent sign-in, sessions, edge settings, checkpoints).
//! Demo mode builds the same state around the fake Okta in [`crate::demo`] (feature `demo`).

use crate::config::{Config, ConfigError, PortalConfig as _};
use crate::metrics::{CountingAudit, CountingIdp};
use crate::oidc::{JwksRefresh, Oidc, OidcSettings};
use crate::state::{AppState, Checkpoints, Settings, StateParts};
use fctr_wiring::{Stack, StackError, StackParts};
use std::sync::Arc;
use url::Url;

/// Why the stack could not be built. Messages name the part, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something failed to start.
    #[error("{0}")]
    Start(String),
}

impl From<StackError> for BuildError {
    fn from(e: StackError) -> Self {
        match e {
            StackError::Config(c) => Self::Config(c),
            other => Self::Start(other.to_string()),
        }
    }
}

pub(crate) fn start(what: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError::Start(format!("{what}: {e}"))
}

/// The redirect URI agents come back to after signing in.
pub(crate) fn callback(public_url: &Url) -> Result<Url, BuildError> {
    public_url
        .join("/auth/callback")
        .map_err(|e| start("public URL", e))
}

/// The portal around a wiring [`Stack`]: the policy announced in the audit log, agent sign-in discovered,
/// in-memory sessions, checkpoints of the durable store (SQLite or PostgreSQL) every `checkpoint_interval`.
/// Hands the engine's queued alerts to its alert sink twice a second (docs/alarms.md), counting
/// `fctr_alerts_total{rule,outcome}`; ends when the engine is dropped.
fn spawn_alert_delivery(engine: std::sync::Weak<fctr_core::Engine>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            tick.tick().await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            for (rule, delivered) in engine.deliver_alerts().await.outcomes {
                let outcome = if delivered { "delivered" } else { "failed" };
                metrics::counter!("fctr_alerts_total", "rule" => rule.as_str(), "outcome" => outcome)
                    .increment(1);
            }
        }
    });
}

/// Looks for changes made at the IdP outside fctr on `schedule` (docs/out-of-band.md): at start and then every
/// `every`, the last `lookback` of the IdP's log matched against the audit log; each change not raised before (by
/// this replica or another) is audited and alerted ([`fctr_core::Engine::scan_out_of_band`]). Counts
/// `fctr_out_of_band_scans_total{outcome}` and `fctr_out_of_band_changes_total`; a failed scan is logged (the
/// error names the part and, for a missing permission, the scope; never a person) and retried next time. Ends
/// when the engine is dropped.
fn spawn_out_of_band_schedule(
    engine: std::sync::Weak<fctr_core::Engine>,
    feed: Arc<dyn fctr_ports::ChangeFeed>,
    schedule: fctr_wiring::OutOfBandSchedule,
) {
    let lookback =
        chrono::TimeDelta::from_std(schedule.lookback).unwrap_or(chrono::TimeDelta::hours(1));
    let tolerance = chrono::TimeDelta::from_std(schedule.tolerance)
        .unwrap_or(fctr_core::out_of_band::DEFAULT_TOLERANCE);
    let longest = chrono::TimeDelta::from_std(fctr_wiring::OutOfBandSchedule::LONGEST_WINDOW)
        .unwrap_or(chrono::TimeDelta::days(7));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(schedule.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Where this replica's last successful scan ended: after failed scans (an IdP or audit outage) the next
        // one reads back to it, not only `lookback`, so an outage up to the longest window loses nothing.
        let mut covered: Option<chrono::DateTime<chrono::Utc>> = None;
        loop {
            tick.tick().await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let until = chrono::Utc::now();
            let mut since = until - lookback;
            if let Some(c) = covered.filter(|c| *c < since) {
                if c < until - longest {
                    tracing::warn!(
                        target: "fctr::out_of_band",
                        "out-of-band scans failed for longer than the longest window: older changes are not read; run `fctr changes --since` over the gap"
                    );
                }
                since = c.max(until - longest);
            }
            let scan = engine
                .scan_out_of_band(feed.as_ref(), since, until, tolerance, schedule.remember())
                .await;
            match scan {
                Ok(s) => {
                    covered = Some(until);
                    metrics::counter!("fctr_out_of_band_scans_total", "outcome" => "ok")
                        .increment(1);
                    metrics::counter!("fctr_out_of_band_changes_total").increment(s.raised as u64);
                    if s.raised > 0 {
                        tracing::warn!(
                            target: "fctr::out_of_band",
                            raised = s.raised,
                            "changes made at the identity provider outside fctr: alerted (see the auditors' out-of-band page)"
                        );
                    }
                }
                Err(e) => {
                    metrics::counter!("fctr_out_of_band_scans_total", "outcome" => "failed")
                        .increment(1);
                    tracing::warn!(target: "fctr::out_of_band", error = %e, "out-of-band scan failed; retried at the next one");
                }
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn assemble(
    stack: Stack,
    oidc: OidcSettings,
    jwks_refresh: JwksRefresh,
    settings: Settings,
    checkpoint_interval: std::time::Duration,
    tickets: Option<(Arc<dyn fctr_ports::TicketSink>, fctr_wiring::NoteRetry)>,
    out_of_band: Option<fctr_wiring::OutOfBandSchedule>,
) -> Result<AppState, BuildError> {
    stack
        .engine
        .announce_policy()
        .await
        .map_err(|e| start("audit log (announcing the policy)", e))?;
    let oidc = Oidc::discover_with(oidc, Arc::clone(&stack.clock), jwks_refresh)
        .await
        .map_err(|e| start("agent sign-in", e))?;
    let checkpoints = stack.durable.clone().map(|store| Checkpoints {
        store,
        interval: checkpoint_interval,
    });
    spawn_alert_delivery(Arc::downgrade(&stack.engine));
    match (out_of_band, &stack.change_feed) {
        (Some(schedule), Some(feed)) => {
            spawn_out_of_band_schedule(Arc::downgrade(&stack.engine), Arc::clone(feed), schedule);
        }
        (Some(_), None) => {
            return Err(start(
                "out_of_band",
                "a schedule is configured but this identity provider has no change log fctr reads",
            ));
        }
        (None, _) => {}
    }
    Ok(AppState::new(StateParts {
        engine: stack.engine,
        idp: stack.idp,
        audit: stack.audit,
        clock: stack.clock,
        shared: stack.shared,
        oidc: Arc::new(oidc),
        settings,
        checkpoints,
        tickets,
        change_feed: stack.change_feed,
    }))
}

/// Builds the production stack from a configuration (validated here, portal checks included): the Okta or the
/// Entra adapter (whichever section is present) behind the same ports, audit in SQLite or PostgreSQL.
///
/// # Errors
/// [`BuildError`] naming the key or the part that failed.
pub async fn from_config(cfg: &Config) -> Result<AppState, BuildError> {
    cfg.validate_portal()?;
    for w in cfg.topology_warnings() {
        tracing::warn!(target: "fctr::config", "{w}");
    }
    let missing = |k: &str| {
        BuildError::Config(ConfigError::Invalid {
            key: k.into(),
            problem: "missing".into(),
        })
    };
    let egress = cfg.egress()?;
    tracing::info!(
        target: "fctr::config",
        egress = %egress,
        "identity provider traffic (API, tokens, sign-in) goes {egress}"
    );
    let mut parts = StackParts::from_config(cfg).await?;
    parts.idp = Arc::new(CountingIdp::new(parts.idp));
    let stack = Stack::assemble_wrapping_audit(parts, |audit| Arc::new(CountingAudit::new(audit)))?;
    let s = cfg.sign_in.as_ref().ok_or_else(|| missing("sign_in"))?;
    let public_url = cfg
        .server
        .public_url
        .clone()
        .ok_or_else(|| missing("server.public_url"))?;
    let oidc = OidcSettings {
        issuer: s.issuer.clone(),
        client_id: s.client_id.clone(),
        client_auth: s.client_auth()?,
        redirect_uri: callback(&public_url)?,
        groups_claim: s.groups_claim.clone().unwrap_or_else(|| "groups".into()),
        require_mfa: s.require_mfa,
        egress,
    };
    let timeouts = cfg.session.timeouts();
    if let Some(c) = &cfg.caller_sign_in {
        if cfg.okta.is_some() && c.auth_context.is_some() {
            return Err(BuildError::Config(ConfigError::Invalid {
                key: "caller_sign_in.auth_context".into(),
                problem: "an Entra authentication context; with [okta] demand MFA with acr_values"
                    .into(),
            }));
        }
        if cfg.entra.is_some() && c.auth_context.is_none() {
            tracing::warn!(
                target: "fctr::config",
                "[caller_sign_in] without auth_context on Entra: Entra's ID tokens may carry no amr, so sign-ins                  without one are refused as single-factor (docs/idp-sign-in.md)"
            );
        }
    }
    let caller_sign_in = match &cfg.caller_sign_in {
        Some(c) => Some(crate::oidc::CallerAuth {
            redirect_uri: Some(
                public_url
                    .join("/link/callback")
                    .map_err(|e| start("public URL", e))?,
            ),
            acr_values: c.acr_values.clone(),
            auth_context: c.auth_context.clone(),
            entra: cfg.entra.is_some(),
        }),
        None => None,
    };
    let settings = Settings {
        public_url,
        timeouts,
        demo: None,
        poll: cfg.poll_settings()?,
        edge: cfg.edge_settings()?,
        caller_sign_in,
    };
    let interval = cfg
        .audit
        .as_ref()
        .ok_or_else(|| missing("audit"))?
        .checkpoint_interval()?;
    let tickets = match &cfg.tickets {
        Some(t) => {
            let sink: Arc<dyn fctr_ports::TicketSink> = Arc::new(t.adapter(&cfg.egress()?)?);
            tracing::info!(
                target: "fctr::config",
                system = %t.system,
                "ticket write-back to {} (work notes, retried in memory)",
                t.system.label()
            );
            Some((sink, fctr_wiring::NoteRetry::default()))
        }
        None => None,
    };
    assemble(
        stack,
        oidc,
        cfg.jwks_refresh()?,
        settings,
        interval,
        tickets,
        cfg.out_of_band
            .as_ref()
            .map(fctr_wiring::config::OutOfBandSection::schedule),
    )
    .await
}
