//! The portal's view of the deployment configuration: the file itself is [`fctr_wiring::config`] (re-exported
//! here, shared with the CLI); this module adds what only the portal reads from it ([`PortalConfig`]): the
//! network edge, the transport rule, TLS termination, the sign-in key refresh and the live-status poll schedule.

pub use fctr_wiring::config::*;

/// The portal-only settings read from a [`Config`].
pub trait PortalConfig {
    /// [`Config::validate`], then the portal's own checks: sign-in key refresh, edge settings, transport, TLS, poll
    /// schedule.
    ///
    /// # Errors
    /// The first problem found.
    fn validate_portal(&self) -> Result<(), ConfigError>;

    /// Refuses plain HTTP off loopback unless a TLS-terminating proxy is declared, and a declared proxy whose
    /// address is not trusted.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key to set.
    fn check_transport(&self) -> Result<(), ConfigError>;

    /// The TLS server configuration when `[tls]` is present.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `tls` with the file and the problem (unreadable, not PEM, a key that does
    /// not match the certificate).
    fn tls_config(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, ConfigError>;

    /// When to refetch the sign-in issuer's signing keys (`[sign_in] jwks_refresh_minutes`, default hourly).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] outside 1 to 1440 minutes.
    fn jwks_refresh(&self) -> Result<crate::oidc::JwksRefresh, ConfigError>;

    /// The edge settings (allow-list, trusted proxies, limits) with their defaults.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a malformed CIDR or a zero limit.
    fn edge_settings(&self) -> Result<crate::edge::EdgeSettings, ConfigError>;

    /// The live-status poll schedule (`[poll]`), defaults for absent keys.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `poll.…` key: an interval outside 100 to 60,000 ms, `fast_interval_ms`
    /// longer than `interval_ms`, `max_interval_ms` shorter than `interval_ms`, `backoff_after_secs` before
    /// `fast_for_secs` or after an hour.
    fn poll_settings(&self) -> Result<crate::poller::PollSettings, ConfigError>;
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

impl PortalConfig for Config {
    fn validate_portal(&self) -> Result<(), ConfigError> {
        self.validate()?;
        self.jwks_refresh()?;
        self.edge_settings()?;
        self.check_transport()?;
        self.tls_config()?;
        self.poll_settings()?;
        Ok(())
    }

    fn poll_settings(&self) -> Result<crate::poller::PollSettings, ConfigError> {
        use std::time::Duration;
        let d = crate::poller::PollSettings::default();
        let p = &self.poll;
        let ms = |v: Option<u64>, dflt: Duration| v.map_or(dflt, Duration::from_millis);
        let secs = |v: Option<u64>, dflt: Duration| v.map_or(dflt, Duration::from_secs);
        let schedule = crate::poller::PollSchedule {
            fast: ms(p.fast_interval_ms, d.schedule.fast),
            fast_for: secs(p.fast_for_secs, d.schedule.fast_for),
            interval: ms(p.interval_ms, d.schedule.interval),
            backoff_after: secs(p.backoff_after_secs, d.schedule.backoff_after),
            max: ms(p.max_interval_ms, d.schedule.max),
        };
        schedule
            .check()
            .map_err(|(field, problem)| invalid(&format!("poll.{field}"), problem))?;
        Ok(crate::poller::PollSettings { schedule, ..d })
    }

    fn check_transport(&self) -> Result<(), ConfigError> {
        crate::edge::check_transport(
            self.listen(),
            self.tls.is_some(),
            self.server.behind_tls_proxy,
            !self.network.trusted_proxies.is_empty(),
        )
        .map_err(|problem| invalid("server.listen", problem))
    }

    fn tls_config(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, ConfigError> {
        self.tls
            .as_ref()
            .map(|t| crate::tls::server_config(&t.cert_file, &t.key_file))
            .transpose()
            .map_err(|e| invalid("tls", e.to_string()))
    }

    fn jwks_refresh(&self) -> Result<crate::oidc::JwksRefresh, ConfigError> {
        let d = crate::oidc::JwksRefresh::default();
        match &self.sign_in {
            None => Ok(d),
            Some(s) => Ok(crate::oidc::JwksRefresh {
                every: s.jwks_refresh_every()?,
                ..d
            }),
        }
    }

    fn edge_settings(&self) -> Result<crate::edge::EdgeSettings, ConfigError> {
        let d = crate::edge::EdgeSettings::default();
        let parse =
            |key: &str, v: &[String]| crate::edge::parse_cidrs(v).map_err(|e| invalid(key, e));
        let allow = match &self.network.allow {
            Some(v) => parse("network.allow", v)?,
            None => d.allow.clone(),
        };
        let trusted_proxies = parse("network.trusted_proxies", &self.network.trusted_proxies)?;
        let l = &self.limits;
        let nonzero = |key: &str, v: Option<u64>, dflt: u64| match v {
            Some(0) => Err(invalid(key, "must be at least 1")),
            Some(x) => Ok(x),
            None => Ok(dflt),
        };
        let sign_in = nonzero(
            "limits.sign_in_per_ip_per_minute",
            l.sign_in_per_ip_per_minute.map(u64::from),
            u64::from(d.sign_in_per_ip_per_minute),
        )?;
        let api = nonzero(
            "limits.api_per_agent_per_minute",
            l.api_per_agent_per_minute.map(u64::from),
            u64::from(d.api_per_agent_per_minute),
        )?;
        let body = nonzero(
            "limits.body_limit_bytes",
            l.body_limit_bytes.map(|b| b as u64),
            d.body_limit_bytes as u64,
        )?;
        if body > 16 * 1024 * 1024 {
            return Err(invalid("limits.body_limit_bytes", "at most 16 MiB"));
        }
        let timeout = nonzero(
            "limits.request_timeout_secs",
            l.request_timeout_secs,
            d.request_timeout.as_secs(),
        )?;
        if timeout > 300 {
            return Err(invalid("limits.request_timeout_secs", "at most 300"));
        }
        Ok(crate::edge::EdgeSettings {
            allow,
            trusted_proxies,
            sign_in_per_ip_per_minute: u32::try_from(sign_in).unwrap_or(u32::MAX),
            api_per_agent_per_minute: u32::try_from(api).unwrap_or(u32::MAX),
            body_limit_bytes: usize::try_from(body).unwrap_or(d.body_limit_bytes),
            request_timeout: std::time::Duration::from_secs(timeout),
        })
    }
}
