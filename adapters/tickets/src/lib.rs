//! # fctr-tickets: ticket write-back adapters
//!
//! [`TicketAdapter`] implements fctr's [`TicketSink`] port for three helpdesk systems, one module each:
//!
//! | system | request | auth |
//! |---|---|---|
//! | ServiceNow | `GET /api/now/table/incident?sysparm_query=number=INC…&sysparm_fields=sys_id&sysparm_limit=1`, then `PATCH /api/now/table/incident/{sys_id}` with `{"work_notes": …}` | basic (user, password) or an OAuth bearer token |
//! | Jira Cloud | `POST /rest/api/3/issue/{key}/comment` with an Atlassian Document Format body | basic (e-mail, API token) |
//! | Zendesk | `PUT /api/v2/tickets/{id}.json` with `{"ticket":{"comment":{"body":…,"public":false}}}` | basic (`e-mail/token`, API token) |
//!
//! ## What it promises
//! - **Only ticket-shaped references reach a URL.** [`TicketSystem::accept`] checks the reference against the
//!   configured system before any request; anything else is [`PortError::InvalidState`] and nothing is sent.
//! - **One attempt per call.** The caller (fctr's delivery worker) retries; a 429's `Retry-After` (seconds or an
//!   HTTP date) comes back in [`PortError::RateLimited`].
//! - **Nothing leaks.** Credentials are [`SecretString`]s, sent only in a sensitive `Authorization` header; errors
//!   carry HTTP statuses, never the note, a response body or a credential.
//! - **Hardened client**: rustls, TLS 1.2+, https only (except loopback, for tests), connect and request timeouts,
//!   redirects off, a User-Agent, and the same [`Egress`] path (proxy, source address) as the IdP traffic.

#![forbid(unsafe_code)]

mod http;
mod jira;
mod servicenow;
mod zendesk;

use async_trait::async_trait;
use fctr_ports::{Egress, PortError, TicketRef, TicketSink, TicketSystem, WorkNote};
use secrecy::SecretString;
use std::time::Duration;
use url::Url;

/// How fctr authenticates to the ticket system.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TicketAuth {
    /// HTTP basic: ServiceNow user and password; Jira e-mail and API token; Zendesk e-mail and API token (the
    /// adapter sends the user as `e-mail/token`, as Zendesk's API token authentication asks).
    Basic {
        /// The user name or e-mail address (not a secret; it names fctr's integration account).
        user: String,
        /// The password or API token.
        secret: SecretString,
    },
    /// An OAuth bearer token (ServiceNow).
    Bearer(SecretString),
}

/// The adapter's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TicketConfig {
    /// Which system.
    pub system: TicketSystem,
    /// The instance: `https://example.service-now.com`, `https://example.atlassian.net`,
    /// `https://example.zendesk.com`.
    pub base_url: Url,
    /// Credentials.
    pub auth: TicketAuth,
    /// The outbound path (proxy, source address): the IdP's.
    pub egress: Egress,
    /// Connect timeout (default 5 s).
    pub connect_timeout: Duration,
    /// Whole-request timeout (default 15 s).
    pub request_timeout: Duration,
}

impl TicketConfig {
    /// Settings with default timeouts and a direct egress path.
    #[must_use]
    pub fn new(system: TicketSystem, base_url: Url, auth: TicketAuth) -> Self {
        Self {
            system,
            base_url,
            auth,
            egress: Egress::direct(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Why the adapter could not be built. Names the setting, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The base URL is not `https` (plain `http` is allowed on loopback only), or has a query or credentials.
    #[error("tickets.base_url must be an https URL with no query, fragment or credentials")]
    BaseUrl,
    /// The credentials do not suit the system (a bearer token for Jira or Zendesk, an empty user).
    #[error("tickets: {0}")]
    Auth(&'static str),
    /// The HTTP client could not be built (egress settings).
    #[error("tickets: the HTTP client could not be built")]
    HttpClient,
}

/// The ticket write-back adapter: one system, one HTTP client.
#[derive(Debug, Clone)]
pub struct TicketAdapter {
    system: TicketSystem,
    http: http::Http,
}

impl TicketAdapter {
    /// Builds the adapter and its client.
    ///
    /// # Errors
    /// [`ConfigError`] naming what is wrong.
    pub fn new(config: TicketConfig) -> Result<Self, ConfigError> {
        let url = &config.base_url;
        let loopback = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !scheme_ok
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(ConfigError::BaseUrl);
        }
        match &config.auth {
            TicketAuth::Basic { user, .. } if user.trim().is_empty() => {
                return Err(ConfigError::Auth("the user (or e-mail) is empty"));
            }
            TicketAuth::Bearer(_) if config.system != TicketSystem::ServiceNow => {
                return Err(ConfigError::Auth(
                    "a bearer token works with ServiceNow only; Jira and Zendesk take an e-mail and an API token",
                ));
            }
            _ => {}
        }
        let auth = match (config.system, config.auth) {
            (TicketSystem::Zendesk, TicketAuth::Basic { user, secret }) => TicketAuth::Basic {
                user: if user.ends_with("/token") {
                    user
                } else {
                    format!("{user}/token")
                },
                secret,
            },
            (_, a) => a,
        };
        let http = http::Http::new(
            url,
            auth,
            config.connect_timeout,
            config.request_timeout,
            loopback,
            &config.egress,
        )?;
        Ok(Self {
            system: config.system,
            http,
        })
    }
}

#[async_trait]
impl TicketSink for TicketAdapter {
    fn system(&self) -> TicketSystem {
        self.system
    }

    async fn post_note(&self, ticket: &TicketRef, note: &WorkNote) -> Result<(), PortError> {
        let id = self
            .system
            .accept(ticket)
            .map_err(|_| PortError::InvalidState)?;
        match self.system {
            TicketSystem::ServiceNow => servicenow::post(&self.http, &id, note).await,
            TicketSystem::Jira => jira::post(&self.http, &id, note).await,
            TicketSystem::Zendesk => zendesk::post(&self.http, &id, note).await,
            _ => Err(PortError::Unsupported),
        }
    }
}
