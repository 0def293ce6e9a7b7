//! `[entra]` and `[entra.connector]`: the Microsoft Entra ID tenant the engine talks to, its credential (a client
//! secret or a certificate) and the optional MFA connector.

use super::{ConfigError, invalid};
use crate::secret::SecretSource;
use base64::Engine as _;
use fctr_entra::{
    AssertionAlgorithm, CertificateRef, ConnectorOtpMode, EntraAdapter, EntraConfig,
    EntraCredential, MfaConnectorConfig, NameSearch, TapBounds,
};
use fctr_ports::Egress;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use url::Url;

/// `[entra]`: the Microsoft Entra ID tenant (Microsoft Graph with application permissions, client credentials).
/// The credential is a client secret (`client_secret_env` or `client_secret_file`) or, preferred, a certificate
/// (`private_key_file` with exactly one of `certificate_file`, `certificate_sha256`, `certificate_sha1`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawEntra")]
pub struct EntraSection {
    /// The directory (tenant) id GUID, or a verified domain (not `common` or `organizations`).
    pub tenant_id: String,
    /// The application (client) id GUID of fctr's app registration.
    pub client_id: String,
    /// The client secret (`client_secret_env` or `client_secret_file`).
    pub client_secret: Option<SecretSource>,
    /// The certificate's RSA private key (PEM, PKCS#1 or PKCS#8, unencrypted).
    pub private_key_file: Option<PathBuf>,
    /// The certificate uploaded to the app registration (PEM or DER).
    pub certificate_file: Option<PathBuf>,
    /// The certificate's SHA-256 thumbprint (hex or base64url), instead of `certificate_file`; PS256 only.
    pub certificate_sha256: Option<String>,
    /// The certificate's SHA-1 thumbprint (hex as the Entra admin center shows it), instead of
    /// `certificate_file`; RS256 only.
    pub certificate_sha1: Option<String>,
    /// The client-assertion algorithm: `PS256` (default, header `x5t#S256`) or `RS256` (header `x5t`).
    pub algorithm: Option<String>,
    /// The login authority (default `https://login.microsoftonline.com/`; sovereign clouds and tests set it).
    pub authority: Option<Url>,
    /// The Microsoft Graph base (default `https://graph.microsoft.com/v1.0/`).
    pub graph_base: Option<Url>,
    /// How name prefixes are searched: `search` (default, `$search`) or `starts_with` (`$filter`).
    pub name_search: Option<String>,
    /// Shortest Temporary Access Pass lifetime sent, in minutes (default 60; your TAP policy's minimum).
    pub tap_min_minutes: Option<u32>,
    /// Longest Temporary Access Pass lifetime sent, in minutes (default 480; your TAP policy's maximum).
    pub tap_max_minutes: Option<u32>,
    /// Allow a temporary password on users synced from on-premises AD (only with password writeback).
    pub allow_password_set_on_synced_users: bool,
    /// The unofficial MFA connector (Authenticator push and code checks). Absent: no push, no code check.
    pub connector: Option<EntraConnectorSection>,
}

/// `[entra.connector]`: the unofficial Azure MFA connector, authenticating as Microsoft's "Azure Multi-Factor
/// Auth Client" service principal with a credential added to it (a secret, or a certificate as for `[entra]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawConnector")]
pub struct EntraConnectorSection {
    /// The client id (default `981f26a1-7f43-403b-a875-f8b09b8cd720`, the MFA client app).
    pub client_id: Option<String>,
    /// The service principal's secret (`client_secret_env` or `client_secret_file`).
    pub client_secret: Option<SecretSource>,
    /// The certificate's private key (PEM).
    pub private_key_file: Option<PathBuf>,
    /// The certificate (PEM or DER).
    pub certificate_file: Option<PathBuf>,
    /// The certificate's SHA-256 thumbprint; PS256 only.
    pub certificate_sha256: Option<String>,
    /// The certificate's SHA-1 thumbprint; RS256 only.
    pub certificate_sha1: Option<String>,
    /// `PS256` (default) or `RS256` (what public tools use for the connector).
    pub algorithm: Option<String>,
    /// The connector base URL, ending in `/Connector/` (default: Microsoft's current host).
    pub endpoint: Option<Url>,
    /// How long a push waits for the user, in seconds (default 90, at most 300).
    pub push_timeout_secs: Option<u64>,
    /// How codes are checked: `number_matching_override` (default, as the NPS extension) or `phone_app_otp`
    /// (as the AD FS adapter).
    pub otp_mode: Option<String>,
    /// The prompt language (default `en-us`).
    pub lcid: Option<String>,
    /// The caller name the connector records (default `fctr`).
    pub caller_name: Option<String>,
    /// Most pushes waiting at once in this process (default 256).
    pub max_pending_pushes: Option<usize>,
}

/// The credential keys of `[entra]` or `[entra.connector]`, with the section's name for errors.
struct CredentialKeys<'a> {
    section: &'static str,
    secret: Option<&'a SecretSource>,
    private_key_file: Option<&'a Path>,
    certificate_file: Option<&'a Path>,
    certificate_sha256: Option<&'a str>,
    certificate_sha1: Option<&'a str>,
    algorithm: Option<&'a str>,
}

impl CredentialKeys<'_> {
    /// Reads the credential: exactly one of a secret and a certificate; files are read now.
    fn read(&self) -> Result<EntraCredential, ConfigError> {
        let sec = self.section;
        let key = |k: &str| format!("{sec}.{k}");
        let secret = self.secret.is_some();
        let cert_refs = [
            ("certificate_file", self.certificate_file.is_some()),
            ("certificate_sha256", self.certificate_sha256.is_some()),
            ("certificate_sha1", self.certificate_sha1.is_some()),
        ];
        let given: Vec<&str> = cert_refs
            .iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| *k)
            .collect();
        match (secret, self.private_key_file) {
            (true, Some(_)) => Err(invalid(
                &key("private_key_file"),
                "give a client secret or a certificate, not both",
            )),
            (false, None) => Err(invalid(
                &key("credential"),
                format!(
                    "missing: give private_key_file with certificate_file (a certificate, preferred), or \
                     client_secret_env / client_secret_file; secrets never go in the TOML (under [{sec}])"
                ),
            )),
            (true, None) => {
                if let Some(k) = given.first() {
                    return Err(invalid(
                        &key(k),
                        "only with private_key_file (a certificate)",
                    ));
                }
                if self.algorithm.is_some() {
                    return Err(invalid(
                        &key("algorithm"),
                        "only with private_key_file (a certificate)",
                    ));
                }
                Ok(EntraCredential::client_secret(
                    SecretSource::resolve_required(self.secret, &key("client_secret"))?,
                ))
            }
            (false, Some(pem)) => {
                let private_key_pem =
                    SecretSource::File(pem.to_path_buf()).resolve(&key("private_key_file"))?;
                let algorithm = match self.algorithm {
                    None | Some("PS256") => AssertionAlgorithm::Ps256,
                    Some("RS256") => AssertionAlgorithm::Rs256,
                    Some(_) => return Err(invalid(&key("algorithm"), "PS256 or RS256")),
                };
                let certificate = match (
                    given.len(),
                    self.certificate_file,
                    self.certificate_sha256,
                    self.certificate_sha1,
                ) {
                    (0, ..) => {
                        return Err(invalid(
                            &key("certificate_file"),
                            "required with private_key_file (or certificate_sha256 / certificate_sha1)",
                        ));
                    }
                    (2.., ..) => {
                        return Err(invalid(
                            &key("certificate_file"),
                            "give one of certificate_file, certificate_sha256, certificate_sha1",
                        ));
                    }
                    (_, Some(f), _, _) => {
                        CertificateRef::Der(read_certificate(&key("certificate_file"), f)?)
                    }
                    (_, None, Some(t), _) => CertificateRef::Sha256Thumbprint(t.to_owned()),
                    (_, None, None, Some(t)) => CertificateRef::Sha1Thumbprint(t.to_owned()),
                    (_, None, None, None) => {
                        return Err(invalid(&key("certificate_file"), "missing"));
                    }
                };
                Ok(EntraCredential::Certificate {
                    private_key_pem,
                    certificate,
                    algorithm,
                })
            }
        }
    }
}

/// Reads a certificate file: PEM (`-----BEGIN CERTIFICATE-----`) or DER. Certificates are public.
fn read_certificate(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let Some(text) = std::str::from_utf8(&bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN CERTIFICATE-----"))
    else {
        if bytes.is_empty() {
            return Err(invalid(key, format!("{} is empty", path.display())));
        }
        return Ok(bytes);
    };
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| invalid(key, format!("{}: not a PEM certificate", path.display())))
}

fn entra_error(e: &fctr_entra::ConfigError) -> ConfigError {
    invalid("entra", e.to_string())
}

impl EntraSection {
    fn credential_keys(&self) -> CredentialKeys<'_> {
        CredentialKeys {
            section: "entra",
            secret: self.client_secret.as_ref(),
            private_key_file: self.private_key_file.as_deref(),
            certificate_file: self.certificate_file.as_deref(),
            certificate_sha256: self.certificate_sha256.as_deref(),
            certificate_sha1: self.certificate_sha1.as_deref(),
            algorithm: self.algorithm.as_deref(),
        }
    }

    /// `"certificate"` or `"client secret"`: the kind of credential configured, without reading it.
    #[must_use]
    pub fn credential_kind(&self) -> &'static str {
        if self.private_key_file.is_some() {
            "certificate"
        } else {
            "client secret"
        }
    }

    /// The adapter configuration: secrets and key files are read now (from the environment or files).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `entra.…` key: a missing or doubled credential, an unreadable or empty
    /// secret, key or certificate, an unknown `algorithm`, `name_search` or `otp_mode`.
    pub fn adapter_config(&self) -> Result<EntraConfig, ConfigError> {
        let mut c = EntraConfig::new(
            self.tenant_id.trim(),
            self.client_id.trim(),
            self.credential_keys().read()?,
        )
        .map_err(|e| entra_error(&e))?;
        if let Some(a) = &self.authority {
            c.authority = a.clone();
        }
        if let Some(g) = &self.graph_base {
            c.graph_base = g.clone();
        }
        c.name_search = match self.name_search.as_deref() {
            None | Some("search") => NameSearch::Search,
            Some("starts_with") => NameSearch::StartsWith,
            Some(_) => return Err(invalid("entra.name_search", "search or starts_with")),
        };
        let d = TapBounds::default();
        c.tap = TapBounds {
            min_lifetime_minutes: self.tap_min_minutes.unwrap_or(d.min_lifetime_minutes),
            max_lifetime_minutes: self.tap_max_minutes.unwrap_or(d.max_lifetime_minutes),
        };
        c.allow_password_set_on_synced_users = self.allow_password_set_on_synced_users;
        c.connector = self
            .connector
            .as_ref()
            .map(EntraConnectorSection::adapter_config)
            .transpose()?;
        Ok(c)
    }

    /// Builds the adapter (validating every setting; no request is made), sending all its traffic (Graph, token,
    /// connector) by `egress` (`[network]`, [`super::NetworkSection::egress`]).
    ///
    /// # Errors
    /// As [`EntraSection::adapter_config`], plus [`ConfigError::Invalid`] naming `entra` with the adapter's own
    /// rule (a tenant or client id that is not a GUID, a non-https URL off loopback, an unusable key, bad TAP
    /// bounds, …).
    pub fn adapter(&self, egress: &Egress) -> Result<EntraAdapter, ConfigError> {
        let mut c = self.adapter_config()?;
        c.egress = egress.clone();
        EntraAdapter::new(c).map_err(|e| entra_error(&e))
    }
}

impl EntraConnectorSection {
    fn adapter_config(&self) -> Result<MfaConnectorConfig, ConfigError> {
        let keys = CredentialKeys {
            section: "entra.connector",
            secret: self.client_secret.as_ref(),
            private_key_file: self.private_key_file.as_deref(),
            certificate_file: self.certificate_file.as_deref(),
            certificate_sha256: self.certificate_sha256.as_deref(),
            certificate_sha1: self.certificate_sha1.as_deref(),
            algorithm: self.algorithm.as_deref(),
        };
        let mut c = MfaConnectorConfig::new(keys.read()?).map_err(|e| entra_error(&e))?;
        if let Some(id) = &self.client_id {
            c.client_id = id.trim().to_owned();
        }
        if let Some(e) = &self.endpoint {
            c.endpoint = e.clone();
        }
        if let Some(s) = self.push_timeout_secs {
            if !(1..=300).contains(&s) {
                return Err(invalid("entra.connector.push_timeout_secs", "1 to 300"));
            }
            c.push_timeout = std::time::Duration::from_secs(s);
        }
        c.otp_mode = match self.otp_mode.as_deref() {
            None | Some("number_matching_override") => ConnectorOtpMode::NumberMatchingOverride,
            Some("phone_app_otp") => ConnectorOtpMode::PhoneAppOtp,
            Some(_) => {
                return Err(invalid(
                    "entra.connector.otp_mode",
                    "number_matching_override or phone_app_otp",
                ));
            }
        };
        if let Some(l) = &self.lcid {
            c.lcid = l.clone();
        }
        if let Some(n) = &self.caller_name {
            c.caller_name = n.clone();
        }
        if let Some(m) = self.max_pending_pushes {
            if m == 0 {
                return Err(invalid(
                    "entra.connector.max_pending_pushes",
                    "must be at least 1",
                ));
            }
            c.max_pending_pushes = m;
        }
        Ok(c)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntra {
    tenant_id: String,
    client_id: String,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    private_key_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    certificate_sha256: Option<String>,
    certificate_sha1: Option<String>,
    algorithm: Option<String>,
    authority: Option<Url>,
    graph_base: Option<Url>,
    name_search: Option<String>,
    tap_min_minutes: Option<u32>,
    tap_max_minutes: Option<u32>,
    #[serde(default)]
    allow_password_set_on_synced_users: bool,
    connector: Option<EntraConnectorSection>,
}

impl TryFrom<RawEntra> for EntraSection {
    type Error = String;
    fn try_from(r: RawEntra) -> Result<Self, String> {
        Ok(Self {
            tenant_id: r.tenant_id,
            client_id: r.client_id,
            client_secret: SecretSource::from_keys(
                "client_secret",
                r.client_secret_env,
                r.client_secret_file,
            )?,
            private_key_file: r.private_key_file,
            certificate_file: r.certificate_file,
            certificate_sha256: r.certificate_sha256,
            certificate_sha1: r.certificate_sha1,
            algorithm: r.algorithm,
            authority: r.authority,
            graph_base: r.graph_base,
            name_search: r.name_search,
            tap_min_minutes: r.tap_min_minutes,
            tap_max_minutes: r.tap_max_minutes,
            allow_password_set_on_synced_users: r.allow_password_set_on_synced_users,
            connector: r.connector,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    private_key_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    certificate_sha256: Option<String>,
    certificate_sha1: Option<String>,
    algorithm: Option<String>,
    endpoint: Option<Url>,
    push_timeout_secs: Option<u64>,
    otp_mode: Option<String>,
    lcid: Option<String>,
    caller_name: Option<String>,
    max_pending_pushes: Option<usize>,
}

impl TryFrom<RawConnector> for EntraConnectorSection {
    type Error = String;
    fn try_from(r: RawConnector) -> Result<Self, String> {
        Ok(Self {
            client_id: r.client_id,
            client_secret: SecretSource::from_keys(
                "client_secret",
                r.client_secret_env,
                r.client_secret_file,
            )?,
            private_key_file: r.private_key_file,
            certificate_file: r.certificate_file,
            certificate_sha256: r.certificate_sha256,
            certificate_sha1: r.certificate_sha1,
            algorithm: r.algorithm,
            endpoint: r.endpoint,
            push_timeout_secs: r.push_timeout_secs,
            otp_mode: r.otp_mode,
            lcid: r.lcid,
            caller_name: r.caller_name,
            max_pending_pushes: r.max_pending_pushes,
        })
    }
}
