//! `[okta]`: the Okta org the engine talks to, and how fctr authenticates to it.

use super::{ConfigError, invalid};
use crate::secret::SecretSource;
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig, SigningAlgorithm};
use fctr_ports::Egress;
use serde::Deserialize;
use std::path::PathBuf;
use url::Url;

/// `[okta]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawOkta")]
pub struct OktaSection {
    /// The org URL.
    pub org_url: Url,
    /// An SSWS API token (`api_token_env` or `api_token_file`).
    pub api_token: Option<SecretSource>,
    /// Service app client id (private_key_jwt).
    pub client_id: Option<String>,
    /// Service app key id.
    pub key_id: Option<String>,
    /// Service app private key (PEM file).
    pub private_key_file: Option<PathBuf>,
    /// `ES256` (default) or `RS256`.
    pub algorithm: Option<String>,
    /// Bind the service app's access tokens to a DPoP proof key (RFC 9449), as an Okta app with "Require
    /// DPoP" needs. Only with the service app (`client_id`), not an SSWS token.
    pub dpop: bool,
    /// The most requests at the org at once (1 to 75; default [`fctr_okta::DEFAULT_MAX_IN_FLIGHT`]).
    pub max_in_flight: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOkta {
    org_url: Url,
    api_token_env: Option<String>,
    api_token_file: Option<PathBuf>,
    client_id: Option<String>,
    key_id: Option<String>,
    private_key_file: Option<PathBuf>,
    algorithm: Option<String>,
    #[serde(default)]
    dpop: bool,
    max_in_flight: Option<usize>,
}

impl TryFrom<RawOkta> for OktaSection {
    type Error = String;
    fn try_from(r: RawOkta) -> Result<Self, String> {
        Ok(Self {
            org_url: r.org_url,
            api_token: SecretSource::from_keys("api_token", r.api_token_env, r.api_token_file)?,
            client_id: r.client_id,
            key_id: r.key_id,
            private_key_file: r.private_key_file,
            algorithm: r.algorithm,
            dpop: r.dpop,
            max_in_flight: r.max_in_flight,
        })
    }
}

impl OktaSection {
    /// How to authenticate to Okta: the service app (private_key_jwt, DPoP when `dpop = true`) or the SSWS
    /// token. Secrets and key files are read now.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `okta.…` key.
    pub fn auth(&self) -> Result<OktaAuth, ConfigError> {
        match &self.client_id {
            Some(client_id) => Ok(OktaAuth::PrivateKeyJwt {
                client_id: client_id.clone(),
                key_id: self.key_id.clone().unwrap_or_default(),
                private_key_pem: SecretSource::resolve_required(
                    self.private_key_file
                        .clone()
                        .map(SecretSource::File)
                        .as_ref(),
                    "okta.private_key_file",
                )?,
                algorithm: if self.algorithm.as_deref() == Some("RS256") {
                    SigningAlgorithm::Rs256
                } else {
                    SigningAlgorithm::Es256
                },
                dpop: self.dpop,
            }),
            None if self.dpop => Err(invalid(
                "okta.dpop",
                "DPoP binds the service app's tokens: set client_id, key_id and private_key_file, or remove dpop",
            )),
            None => Ok(OktaAuth::ApiToken(SecretSource::resolve_required(
                self.api_token.as_ref(),
                "okta.api_token",
            )?)),
        }
    }

    /// Builds the adapter (no request is made), sending its traffic by `egress` (`[network]`,
    /// [`super::NetworkSection::egress`]).
    ///
    /// # Errors
    /// As [`OktaSection::auth`], plus [`ConfigError::Invalid`] naming `okta` with the adapter's own rule (an org
    /// URL that is not https off loopback, or has a path).
    pub fn adapter(&self, egress: &Egress) -> Result<OktaAdapter, ConfigError> {
        let mut c = OktaConfig::new(self.org_url.clone(), self.auth()?);
        c.egress = egress.clone();
        if let Some(n) = self.max_in_flight {
            c.max_in_flight = n;
        }
        OktaAdapter::new(c).map_err(|e| invalid("okta", e.to_string()))
    }

    /// Checks the section without the network: the service app's keys go together, the algorithm is known,
    /// and the adapter builds (credential read, DPoP only with the service app, org URL rules).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `okta.…` key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_id.is_some() {
            for (k, v) in [
                ("okta.key_id", self.key_id.is_some()),
                ("okta.private_key_file", self.private_key_file.is_some()),
            ] {
                if !v {
                    return Err(invalid(k, "required with okta.client_id"));
                }
            }
            if let Some(a) = &self.algorithm {
                if a != "ES256" && a != "RS256" {
                    return Err(invalid("okta.algorithm", "ES256 or RS256"));
                }
            }
        }
        self.adapter(&Egress::direct())?;
        Ok(())
    }
}
