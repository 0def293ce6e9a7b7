//! [`TokenError`]: why a token could not be had, and the port error each reason becomes.

use fctr_ports::PortError;
use std::time::Duration;

/// Why a token could not be had. Every message says what to fix; none carries a secret or the endpoint's
/// `error_description` (which can echo input). `AADSTS` numbers are Entra's own error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The client secret was refused (`AADSTS7000215` wrong, `AADSTS7000222` expired).
    #[error(
        "the client secret was refused (AADSTS{code}): it is wrong or expired; create a new secret under the app \
         registration's Certificates & secrets and update the configured credential"
    )]
    InvalidClientSecret {
        /// The AADSTS number.
        code: u32,
    },
    /// No application with this client id in the tenant (`AADSTS700016`).
    #[error(
        "the application (client) id is not known in this tenant (AADSTS700016): check client_id and tenant_id, \
         and that the app is registered in (or consented to by) this tenant"
    )]
    UnknownApplication,
    /// The tenant does not exist (`AADSTS90002`, `AADSTS900023`).
    #[error(
        "the tenant was not found (AADSTS{code}): check tenant_id (use the directory (tenant) id GUID from the \
         Entra admin center overview)"
    )]
    TenantNotFound {
        /// The AADSTS number.
        code: u32,
    },
    /// The certificate assertion was refused (unknown key, bad signature, expired certificate).
    #[error(
        "the certificate assertion was refused (AADSTS{code}): upload this certificate (public part) to the app \
         registration's Certificates & secrets, and check that the thumbprint and the private key belong to it"
    )]
    CertificateRejected {
        /// The AADSTS number.
        code: u32,
    },
    /// The assertion's time window was refused (`AADSTS700024`): the clock is off.
    #[error(
        "the assertion's time window was refused (AADSTS700024): synchronise this machine's clock"
    )]
    ClockSkew,
    /// The application is disabled (`AADSTS7000112`).
    #[error(
        "the application is disabled in this tenant (AADSTS7000112): enable its service principal"
    )]
    ApplicationDisabled,
    /// The requested scope was refused.
    #[error(
        "the scope was refused (AADSTS{code}): grant the app's API permissions and give admin consent"
    )]
    InvalidScope {
        /// The AADSTS number.
        code: u32,
    },
    /// Another refusal from the token endpoint.
    #[error(
        "the token endpoint refused the request (HTTP {status}{}{})",
        .error.as_deref().map(|e| format!(", {e}")).unwrap_or_default(),
        .code.map(|c| format!(", AADSTS{c}")).unwrap_or_default()
    )]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The OAuth `error` value (e.g. `invalid_client`), when well formed.
        error: Option<String>,
        /// The AADSTS number, when given.
        code: Option<u32>,
    },
    /// The token endpoint is throttling.
    #[error("the token endpoint is throttling requests")]
    RateLimited {
        /// How long to wait, when said.
        retry_after: Option<Duration>,
    },
    /// The token endpoint did not answer in time.
    #[error("the token endpoint did not answer in time")]
    Timeout,
    /// The token endpoint could not be reached.
    #[error("the token endpoint could not be reached (check network, proxy and the authority URL)")]
    Unavailable,
    /// The token endpoint's answer could not be understood.
    #[error("the token endpoint's answer could not be understood")]
    Malformed,
    /// The client assertion could not be signed.
    #[error("the client assertion could not be signed: check the configured private key")]
    Signing,
}

impl From<&TokenError> for PortError {
    fn from(e: &TokenError) -> Self {
        match e {
            TokenError::InvalidClientSecret { .. }
            | TokenError::UnknownApplication
            | TokenError::TenantNotFound { .. }
            | TokenError::CertificateRejected { .. }
            | TokenError::ClockSkew
            | TokenError::ApplicationDisabled
            | TokenError::Signing => PortError::Unauthorized,
            TokenError::InvalidScope { .. } => PortError::Forbidden {
                missing: Some("admin consent for the app's API permissions".to_owned()),
            },
            TokenError::Rejected { status, code, .. } => {
                if *status >= 500 {
                    PortError::Upstream {
                        status: *status,
                        code: code.map(|c| format!("AADSTS{c}")),
                    }
                } else {
                    PortError::Unauthorized
                }
            }
            TokenError::RateLimited { retry_after } => PortError::RateLimited {
                retry_after: *retry_after,
            },
            TokenError::Timeout => PortError::Timeout,
            TokenError::Unavailable => PortError::Unavailable,
            TokenError::Malformed => PortError::Malformed,
        }
    }
}

impl From<TokenError> for PortError {
    fn from(e: TokenError) -> Self {
        Self::from(&e)
    }
}
