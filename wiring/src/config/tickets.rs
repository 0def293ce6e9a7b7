//! `[tickets]`: ticket write-back, the helpdesk system fctr posts work notes to, and its credentials.
//!
//! ```toml
//! [tickets]
//! system = "servicenow"                      # or "jira", "zendesk"
//! base_url = "https://acme.service-now.com"  # https://acme.atlassian.net, https://acme.zendesk.com
//! user = "svc-fctr"                          # ServiceNow user; Jira and Zendesk: the account's e-mail
//! secret_env = "FCTR_TICKETS_SECRET"         # or secret_file: the password (ServiceNow) or API token
//! # bearer_token_env / bearer_token_file     # ServiceNow only: an OAuth access token instead of user + secret
//! ```

use super::{ConfigError, invalid};
use crate::secret::SecretSource;
use fctr_ports::{Egress, TicketSystem};
use fctr_tickets::{TicketAdapter, TicketAuth, TicketConfig};
use serde::Deserialize;
use std::path::PathBuf;
use url::Url;

/// `[tickets]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawTickets")]
pub struct TicketsSection {
    /// Which system.
    pub system: TicketSystem,
    /// The instance URL.
    pub base_url: Url,
    /// The integration account (user name or e-mail), with `secret`.
    pub user: Option<String>,
    /// Its password or API token (`secret_env` or `secret_file`).
    pub secret: Option<SecretSource>,
    /// A ServiceNow OAuth bearer token (`bearer_token_env` or `bearer_token_file`), instead of `user` and `secret`.
    pub bearer_token: Option<SecretSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    system: String,
    base_url: Url,
    user: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    bearer_token_env: Option<String>,
    bearer_token_file: Option<PathBuf>,
}

impl TryFrom<RawTickets> for TicketsSection {
    type Error = String;
    fn try_from(r: RawTickets) -> Result<Self, String> {
        let system = TicketSystem::parse(&r.system)
            .ok_or_else(|| "tickets.system: servicenow, jira or zendesk".to_owned())?;
        Ok(Self {
            system,
            base_url: r.base_url,
            user: r.user,
            secret: SecretSource::from_keys("secret", r.secret_env, r.secret_file)?,
            bearer_token: SecretSource::from_keys(
                "bearer_token",
                r.bearer_token_env,
                r.bearer_token_file,
            )?,
        })
    }
}

impl TicketsSection {
    /// The credentials, read now.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `tickets.…` key.
    pub fn auth(&self) -> Result<TicketAuth, ConfigError> {
        match (&self.bearer_token, &self.user) {
            (Some(_), user) if user.is_some() || self.secret.is_some() => Err(invalid(
                "tickets.bearer_token",
                "either bearer_token or user with secret, not both",
            )),
            (Some(t), _) => Ok(TicketAuth::Bearer(t.resolve("tickets.bearer_token")?)),
            (None, Some(user)) => Ok(TicketAuth::Basic {
                user: user.clone(),
                secret: SecretSource::resolve_required(self.secret.as_ref(), "tickets.secret")?,
            }),
            (None, None) => Err(invalid(
                "tickets.user",
                "missing (with secret_env or secret_file; ServiceNow also takes bearer_token_env)",
            )),
        }
    }

    /// Builds the adapter (no request is made), its traffic by `egress` (`[network]`, as the IdP's).
    ///
    /// # Errors
    /// As [`TicketsSection::auth`], plus [`ConfigError::Invalid`] naming `tickets` with the adapter's own rule.
    pub fn adapter(&self, egress: &Egress) -> Result<TicketAdapter, ConfigError> {
        let mut c = TicketConfig::new(self.system, self.base_url.clone(), self.auth()?);
        c.egress = egress.clone();
        TicketAdapter::new(c).map_err(|e| invalid("tickets", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<TicketsSection, String> {
        toml::from_str::<TicketsSection>(t).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn a_section_parses_and_builds_its_adapter_from_a_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "api-token\n").unwrap();
        let s = parse(&format!(
            "system = \"jira\"\nbase_url = \"https://acme.atlassian.net\"\nuser = \"bot@example.com\"\nsecret_file = {:?}\n",
            f.display().to_string()
        ))
        .unwrap();
        assert_eq!(s.system, TicketSystem::Jira);
        assert!(s.adapter(&Egress::direct()).is_ok());
    }

    #[test]
    fn wrong_sections_are_refused_by_key() {
        assert!(
            parse("system = \"remedy\"\nbase_url = \"https://x\"\n")
                .unwrap_err()
                .contains("tickets.system")
        );
        assert!(
            parse("system = \"jira\"\nbase_url = \"https://x\"\nsecret = \"pasted\"\n").is_err()
        );
        let s = parse("system = \"zendesk\"\nbase_url = \"https://x.zendesk.com\"\n").unwrap();
        let ConfigError::Invalid { key, .. } = s.auth().unwrap_err() else {
            panic!()
        };
        assert_eq!(key, "tickets.user");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "bearer").unwrap();
        let bearer = |system: &str| {
            parse(&format!(
                "system = \"{system}\"\nbase_url = \"https://x.example.com\"\nbearer_token_file = {:?}\n",
                f.display().to_string()
            ))
            .unwrap()
            .adapter(&Egress::direct())
        };
        assert!(bearer("servicenow").is_ok());
        let ConfigError::Invalid { key, .. } = bearer("jira").unwrap_err() else {
            panic!()
        };
        assert_eq!(key, "tickets");
    }
}
