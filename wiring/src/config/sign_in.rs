//! `[sign_in]`: the portal as an OpenID Connect client of the company IdP (agents sign in with it).
//!
//! How the portal authenticates at the token endpoint is `token_endpoint_auth_method`, as registered for the app
//! at the IdP (RFC 7591 names): `client_secret_basic` (the default), `client_secret_post`, or `private_key_jwt`
//! (a short-lived assertion signed with the portal's own private key; no shared secret exists at all, the
//! strongest option Okta and Entra offer). The portal checks the method against the provider's discovery document
//! when it starts.

use super::{ConfigError, invalid};
use crate::secret::SecretSource;
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use url::Url;

/// Default minutes between two fetches of the sign-in issuer's signing keys.
pub const DEFAULT_JWKS_REFRESH_MINUTES: u32 = 60;

/// `[sign_in] token_endpoint_auth_method`: how the portal authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the client id and secret (the OAuth default).
    #[default]
    ClientSecretBasic,
    /// The client id and secret in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with the portal's private key (RFC 7523); no client secret.
    PrivateKeyJwt,
}

impl TokenEndpointAuthMethod {
    /// The registered name (`client_secret_basic`, …), as discovery documents list it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// `[sign_in] client_key_alg`: the algorithm of the `private_key_jwt` assertion (default `RS256`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ClientKeyAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (an RSA key; what Okta and Entra take by default).
    #[default]
    RS256,
    /// RSASSA-PSS with SHA-256 (an RSA key).
    PS256,
    /// ECDSA P-256 with SHA-256 (an EC P-256 key).
    ES256,
    /// Ed25519 (an Ed25519 key).
    EdDSA,
}

impl ClientKeyAlg {
    /// The JWS `alg` name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// The portal's credential at the token endpoint, read from its source.
#[derive(Clone)]
pub enum ClientAuth {
    /// `client_secret_basic` with this secret.
    SecretBasic(SecretString),
    /// `client_secret_post` with this secret.
    SecretPost(SecretString),
    /// `private_key_jwt` with this key.
    PrivateKeyJwt(ClientKey),
}

impl ClientAuth {
    /// The method's registered name.
    #[must_use]
    pub const fn method(&self) -> TokenEndpointAuthMethod {
        match self {
            Self::SecretBasic(_) => TokenEndpointAuthMethod::ClientSecretBasic,
            Self::SecretPost(_) => TokenEndpointAuthMethod::ClientSecretPost,
            Self::PrivateKeyJwt(_) => TokenEndpointAuthMethod::PrivateKeyJwt,
        }
    }
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PrivateKeyJwt(k) => f.debug_tuple("PrivateKeyJwt").field(k).finish(),
            _ => f
                .debug_tuple(self.method().as_str())
                .finish_non_exhaustive(),
        }
    }
}

/// The private key that signs the portal's client assertions, and what its header names.
#[derive(Clone)]
pub struct ClientKey {
    /// PKCS#8 (or PKCS#1 RSA / SEC1 EC) private key, PEM.
    pub pem: SecretString,
    /// The assertion's algorithm.
    pub alg: ClientKeyAlg,
    /// `kid` header: the key's id as registered at the IdP (Okta's JWKS for the app), if any.
    pub kid: Option<String>,
    /// `x5t#S256` header: the SHA-256 thumbprint of the certificate registered at the IdP (Entra's certificate
    /// credentials), base64url, if a certificate was given.
    pub x5t_s256: Option<String>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("x5t_s256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

/// `[sign_in]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSignIn")]
pub struct SignInSection {
    /// The OIDC issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: Url,
    /// The portal's client id.
    pub client_id: String,
    /// How the portal authenticates at the token endpoint (default `client_secret_basic`).
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// The client secret (`client_secret_env` or `client_secret_file`), for the two secret methods.
    pub client_secret: Option<SecretSource>,
    /// The private key, PEM (`client_key_env` or `client_key_file`), for `private_key_jwt`.
    pub client_key: Option<SecretSource>,
    /// The assertion's algorithm (default RS256).
    pub client_key_alg: ClientKeyAlg,
    /// The `kid` the IdP knows the key by.
    pub client_key_id: Option<String>,
    /// A PEM certificate for the key (its SHA-256 thumbprint goes in the `x5t#S256` header; Entra).
    pub client_certificate_file: Option<PathBuf>,
    /// The claim holding group names (default `groups`; Entra app roles: `roles`). A dotted path
    /// (`realm_access.roles`) reaches into nested objects when no claim has that exact name. Read from the ID
    /// token, else from the userinfo endpoint.
    pub groups_claim: Option<String>,
    /// Refuse sign-in unless the ID token's `amr` shows MFA.
    pub require_mfa: bool,
    /// Refetch the issuer's signing keys (JWKS) when they are this many minutes old (default 60, 1 to 1440).
    /// Independently, a token signed by an unknown key triggers a refetch, at most one a minute.
    pub jwks_refresh_minutes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignIn {
    issuer: Url,
    client_id: String,
    #[serde(default)]
    token_endpoint_auth_method: TokenEndpointAuthMethod,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_key_env: Option<String>,
    client_key_file: Option<PathBuf>,
    client_key_alg: Option<ClientKeyAlg>,
    client_key_id: Option<String>,
    client_certificate_file: Option<PathBuf>,
    groups_claim: Option<String>,
    #[serde(default)]
    require_mfa: bool,
    jwks_refresh_minutes: Option<u32>,
}

impl TryFrom<RawSignIn> for SignInSection {
    type Error = String;
    fn try_from(r: RawSignIn) -> Result<Self, String> {
        let client_secret =
            SecretSource::from_keys("client_secret", r.client_secret_env, r.client_secret_file)?;
        let client_key =
            SecretSource::from_keys("client_key", r.client_key_env, r.client_key_file)?;
        let method = r.token_endpoint_auth_method;
        if method == TokenEndpointAuthMethod::PrivateKeyJwt {
            if client_secret.is_some() {
                return Err(
                    "token_endpoint_auth_method = \"private_key_jwt\" uses client_key_env or \
                            client_key_file; remove the client secret"
                        .into(),
                );
            }
        } else if client_key.is_some()
            || r.client_key_alg.is_some()
            || r.client_key_id.is_some()
            || r.client_certificate_file.is_some()
        {
            return Err(format!(
                "client_key_* and client_certificate_file are for token_endpoint_auth_method = \
                 \"private_key_jwt\" (this section uses \"{}\")",
                method.as_str()
            ));
        }
        if let Some(kid) = &r.client_key_id {
            if kid.is_empty() || kid.len() > 256 || !kid.chars().all(|c| c.is_ascii_graphic()) {
                return Err("client_key_id must be 1 to 256 printable ASCII characters".into());
            }
        }
        if let Some(claim) = &r.groups_claim {
            if claim.is_empty() || claim.len() > 256 || claim.split('.').any(str::is_empty) {
                return Err(
                    "groups_claim must name a claim (or a dotted path without empty parts)".into(),
                );
            }
        }
        Ok(Self {
            issuer: r.issuer,
            client_id: r.client_id,
            token_endpoint_auth_method: method,
            client_secret,
            client_key,
            client_key_alg: r.client_key_alg.unwrap_or_default(),
            client_key_id: r.client_key_id,
            client_certificate_file: r.client_certificate_file,
            groups_claim: r.groups_claim,
            require_mfa: r.require_mfa,
            jwks_refresh_minutes: r.jwks_refresh_minutes,
        })
    }
}

impl SignInSection {
    /// The token-endpoint credential, read now from its source.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `sign_in.client_secret`, `sign_in.client_key` or
    /// `sign_in.client_certificate_file` when the source is missing or unreadable, or the key or certificate is
    /// not PEM of the right kind. Key material never appears in the error.
    pub fn client_auth(&self) -> Result<ClientAuth, ConfigError> {
        let secret =
            || SecretSource::resolve_required(self.client_secret.as_ref(), "sign_in.client_secret");
        Ok(match self.token_endpoint_auth_method {
            TokenEndpointAuthMethod::ClientSecretBasic => ClientAuth::SecretBasic(secret()?),
            TokenEndpointAuthMethod::ClientSecretPost => ClientAuth::SecretPost(secret()?),
            TokenEndpointAuthMethod::PrivateKeyJwt => {
                let pem =
                    SecretSource::resolve_required(self.client_key.as_ref(), "sign_in.client_key")?;
                let label = pem_label(pem.expose_secret()).unwrap_or_default();
                if !matches!(
                    label.as_str(),
                    "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
                ) {
                    return Err(invalid(
                        "sign_in.client_key",
                        "is not a PEM private key (PKCS#8, or PKCS#1 RSA, or SEC1 EC)",
                    ));
                }
                let x5t_s256 = match &self.client_certificate_file {
                    None => None,
                    Some(path) => Some(certificate_thumbprint(path)?),
                };
                ClientAuth::PrivateKeyJwt(ClientKey {
                    pem,
                    alg: self.client_key_alg,
                    kid: self.client_key_id.clone(),
                    x5t_s256,
                })
            }
        })
    }

    /// How often to refetch the issuer's signing keys (`jwks_refresh_minutes`, default hourly).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] outside 1 to 1440 minutes.
    pub fn jwks_refresh_every(&self) -> Result<std::time::Duration, ConfigError> {
        match self
            .jwks_refresh_minutes
            .unwrap_or(DEFAULT_JWKS_REFRESH_MINUTES)
        {
            m @ 1..=1440 => Ok(std::time::Duration::from_secs(u64::from(m) * 60)),
            _ => Err(invalid(
                "sign_in.jwks_refresh_minutes",
                "must be between 1 and 1440",
            )),
        }
    }
}

/// The label of the first PEM block (`PRIVATE KEY` for a PKCS#8 key).
fn pem_label(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")?;
    Some(text[start..start + end].to_owned())
}

/// The SHA-256 thumbprint (base64url) of the first certificate in a PEM file: the `x5t#S256` header value.
fn certificate_thumbprint(path: &std::path::Path) -> Result<String, ConfigError> {
    const KEY: &str = "sign_in.client_certificate_file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(KEY, format!("cannot read {}: {e}", path.display())))?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin).ok_or_else(|| {
        invalid(
            KEY,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        )
    })? + begin.len();
    let end = text[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or_else(|| invalid(KEY, "the PEM certificate is not terminated"))?;
    let body: String = text[start..start + end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| invalid(KEY, "the PEM certificate is not valid base64"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PEM block (built at run time: no key-shaped literal in the source for the secret scanners).
    fn pem(label: &str, body: &str) -> String {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    }

    fn parse(body: &str) -> Result<SignInSection, String> {
        let text = format!("issuer = \"https://idp.example.com\"\nclient_id = \"0oa1\"\n{body}");
        toml::from_str::<SignInSection>(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_method_is_client_secret_basic() {
        let s = parse("client_secret_env = \"X\"").unwrap();
        assert_eq!(
            s.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
    }

    #[test]
    fn private_key_jwt_takes_a_key_and_no_secret() {
        let e = parse(
            "token_endpoint_auth_method = \"private_key_jwt\"\nclient_key_env = \"K\"\nclient_secret_env = \"S\"",
        )
        .unwrap_err();
        assert!(e.contains("remove the client secret"), "{e}");
        let e = parse("client_secret_env = \"S\"\nclient_key_env = \"K\"").unwrap_err();
        assert!(e.contains("private_key_jwt"), "{e}");
        let s = parse(
            "token_endpoint_auth_method = \"private_key_jwt\"\nclient_key_env = \"K\"\nclient_key_alg = \"ES256\"",
        )
        .unwrap();
        assert_eq!(s.client_key_alg, ClientKeyAlg::ES256);
        assert!(parse("token_endpoint_auth_method = \"client_secret_jwt\"").is_err());
    }

    #[test]
    fn a_key_that_is_not_a_pem_private_key_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem("PUBLIC KEY", "QUJD")).unwrap();
        let s = parse(&format!(
            "token_endpoint_auth_method = \"private_key_jwt\"\nclient_key_file = \"{}\"",
            path.display()
        ))
        .unwrap();
        let e = s.client_auth().unwrap_err().to_string();
        assert!(
            e.contains("sign_in.client_key") && !e.contains("QUJD"),
            "{e}"
        );
    }

    #[test]
    fn the_certificate_thumbprint_is_sha256_of_the_der() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        // Not a real certificate: the thumbprint is over whatever DER the PEM holds.
        std::fs::write(&path, pem("CERTIFICATE", "AAEC")).unwrap();
        let expected =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest([0u8, 1, 2]));
        assert_eq!(certificate_thumbprint(&path).unwrap(), expected);
    }

    #[test]
    fn the_groups_claim_path_has_no_empty_parts() {
        assert!(parse("client_secret_env = \"S\"\ngroups_claim = \"realm_access.roles\"").is_ok());
        assert!(parse("client_secret_env = \"S\"\ngroups_claim = \"a..b\"").is_err());
        assert!(parse("client_secret_env = \"S\"\ngroups_claim = \"\"").is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = ClientAuth::PrivateKeyJwt(ClientKey {
            pem: SecretString::from(pem("PRIVATE KEY", "SECRETBYTES")),
            alg: ClientKeyAlg::RS256,
            kid: Some("k1".into()),
            x5t_s256: None,
        });
        let d = format!("{k:?}");
        assert!(!d.contains("SECRETBYTES") && d.contains("k1"), "{d}");
        let s = format!(
            "{:?}",
            ClientAuth::SecretPost(SecretString::from("hunter".to_owned()))
        );
        assert!(!s.contains("hunter"), "{s}");
    }
}
