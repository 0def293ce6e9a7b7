//! Agent sign-in with OpenID Connect (authorization code + PKCE S256 + state + nonce) through `openidconnect`,
//! and verification of API bearer tokens from the same issuer. Signature, `iss`, `aud`, `exp` and `nonce` are
//! checked by the crate. This module adds what the crate leaves to the relying party: the signature algorithm
//! allow-list is ours (asymmetric algorithms only, whatever the discovery document advertises, so neither
//! `none` nor an HMAC keyed with the client secret or a public key is ever accepted), and `nbf` is enforced
//! (the crate does not read it) with the same leeway the crate gives `exp` ([`CLOCK_LEEWAY_SECS`]). Then it
//! reads the groups claim out of the verified token, or, when the token has no such claim (providers that follow
//! the spec release `groups` at the userinfo endpoint), from userinfo, whose `sub` must be the token's.
//!
//! The portal authenticates at the token endpoint with the method registered for it (`client_secret_basic`,
//! `client_secret_post` or `private_key_jwt`, the last in the `assertion` module), checked against the provider's
//! discovery document at start.
//!
//! The provider's signing keys (JWKS) are not fixed at discovery: an ID token whose key is not in the cached set
//! (an unknown `kid`, or, without a `kid`, a signature no cached key verifies) makes the portal refetch the JWKS
//! and verify once more, so a key the IdP rotated in is picked up without a restart. Refetches are bounded: at
//! most one a minute ([`JwksRefresh::min_interval`], on the engine's clock), and concurrent misses share the one
//! fetch in flight. Keys are also refreshed on a schedule ([`JwksRefresh::every`], default hourly), checked on
//! use: the first verification after the keys are that old refetches them first. A failed fetch keeps the keys
//! the portal has (only the token that needed a new key is refused).

use base64::Engine as _;
use chrono::{DateTime, Utc};
use fctr_ports::Clock;
use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use secrecy::ExposeSecret;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use url::Url;

mod assertion;
mod caller;
mod jwks;
use assertion::Assertions;
pub use caller::{CallerAuth, CallerSignIn};
pub use fctr_wiring::config::{ClientAuth, ClientKey, ClientKeyAlg, TokenEndpointAuthMethod};
use jwks::KeySet;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Clock leeway for `nbf`, in seconds: the same as `openidconnect` allows for `exp` (none; a token is expired
/// from the second its `exp` names).
pub const CLOCK_LEEWAY_SECS: i64 = 0;

/// The ID-token signature algorithms the portal accepts: asymmetric only. The discovery document's list is not
/// trusted for this (an IdP advertising `HS256` would otherwise make a token MACed with the client secret valid).
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Default for `[sign_in] jwks_refresh_minutes`: the signing keys are refetched when they are an hour old.
pub const DEFAULT_JWKS_REFRESH_MINUTES: u32 = 60;

/// When the portal refetches the provider's signing keys (JWKS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksRefresh {
    /// Scheduled refresh: keys fetched this long ago are refetched by the next verification (default an hour).
    pub every: Duration,
    /// The least time between two refetches, whatever triggers them (default a minute): a flood of tokens with
    /// unknown key ids costs at most one JWKS request per interval.
    pub min_interval: Duration,
}

impl Default for JwksRefresh {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(u64::from(DEFAULT_JWKS_REFRESH_MINUTES) * 60),
            min_interval: Duration::from_secs(60),
        }
    }
}

/// Sign-in settings.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer.
    pub issuer: Url,
    /// The portal's client id.
    pub client_id: String,
    /// How the portal authenticates at the token endpoint, with its secret or key.
    pub client_auth: ClientAuth,
    /// The portal's callback URL (`{public_url}/auth/callback`).
    pub redirect_uri: Url,
    /// The claim holding group names: a claim name, or a dotted path into nested objects
    /// (`realm_access.roles`) when no claim has that exact name.
    pub groups_claim: String,
    /// Refuse tokens without MFA in `amr`.
    pub require_mfa: bool,
    /// The path requests to the issuer take (`[network] egress_proxy`, `egress_bind`): discovery, token
    /// exchange, signing keys and userinfo alike.
    pub egress: fctr_ports::Egress,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth.method())
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in or bearer token was refused. Never shown to the agent beyond "sign-in failed"; logged by kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// Discovery failed.
    #[error("OIDC discovery failed")]
    Discovery,
    /// A URL in the settings is not usable.
    #[error("OIDC configuration: {0}")]
    Config(&'static str),
    /// The code exchange failed.
    #[error("token exchange failed")]
    Exchange,
    /// The token response had no ID token.
    #[error("no ID token")]
    NoIdToken,
    /// The ID token failed verification (signature, iss, aud, exp, nonce).
    #[error("ID token rejected: {0}")]
    Token(&'static str),
    /// MFA was required and the token does not show it.
    #[error("MFA required")]
    MfaRequired,
    /// The configured token-endpoint authentication method is not one the provider's discovery document lists.
    #[error(
        "sign_in.token_endpoint_auth_method = \"{configured}\" is not supported by the provider (its discovery \
         document lists: {advertised}); use one of those, or register the app for this method"
    )]
    AuthMethodUnsupported {
        /// The configured method.
        configured: &'static str,
        /// What the provider lists.
        advertised: String,
    },
    /// The `private_key_jwt` key cannot sign (not a key of the configured algorithm's type).
    #[error(
        "sign_in.client_key is not a private key for client_key_alg = \"{0}\" (RS256/PS256: RSA, ES256: EC \
         P-256, EdDSA: Ed25519; PKCS#8 PEM)"
    )]
    ClientKey(&'static str),
    /// Neither the ID token nor the userinfo endpoint carries the groups claim.
    #[error("the groups claim is in neither the ID token nor the userinfo response")]
    GroupsClaimMissing,
    /// The userinfo endpoint could not be read (or named another subject).
    #[error("userinfo request failed")]
    UserInfo,
}

/// Who signed in, as the verified token says.
#[derive(Clone)]
pub struct Identity {
    /// The agent's directory id: Entra's `oid` when the token has one, else `sub`.
    pub subject: String,
    /// Group (or role) names from the configured claim; `None` when the token has no such claim (a bearer token
    /// from a provider that releases groups only at userinfo: the caller reads them from the directory).
    pub groups: Option<Vec<String>>,
    /// The agent's display name from the token's `name` claim, for the page header only (held in memory and in
    /// the agent's own browser; never logged, stored or audited).
    pub name: Option<String>,
}

/// A `name` claim fit for a page header: trimmed, no control characters, at most 80 characters.
fn display_name(v: Option<&serde_json::Value>) -> Option<String> {
    let s = v?.as_str()?.trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    Some(s.chars().take(80).collect())
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// The start of a sign-in: where to send the browser and what to remember.
pub struct Begin {
    /// The authorize URL.
    pub url: Url,
    /// The `state` sent.
    pub state: String,
    /// The nonce sent.
    pub nonce: String,
    /// The PKCE verifier.
    pub pkce_verifier: String,
}

/// An OIDC relying party for one issuer.
pub struct Oidc {
    /// The discovery document (its JWKS replaced on each refresh).
    meta: CoreProviderMetadata,
    redirect: RedirectUrl,
    /// The client built from the latest key set; swapped whole on refresh.
    keys: RwLock<Arc<KeySet>>,
    /// Held for the whole of a refetch, so concurrent misses wait for it and reuse its result. Holds the time of
    /// the last refetch attempt (success or failure); `None` until the first one after discovery.
    refresh: tokio::sync::Mutex<Option<DateTime<Utc>>>,
    /// Verifications waiting for the refetch in flight.
    waiting: AtomicUsize,
    timing: JwksRefresh,
    clock: Arc<dyn Clock>,
    http: openidconnect::reqwest::Client,
    /// The `private_key_jwt` signer, with that method.
    assertions: Option<Assertions>,
    settings: OidcSettings,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Runs discovery against the issuer and builds the client.
    ///
    /// # Errors
    /// [`OidcError::Discovery`] when the issuer cannot be reached or its metadata is invalid (including an
    /// issuer that does not match exactly), [`OidcError::Config`] for unusable URLs.
    pub async fn discover(settings: OidcSettings) -> Result<Self, OidcError> {
        Self::discover_with(
            settings,
            Arc::new(fctr_ports::SystemClock),
            JwksRefresh::default(),
        )
        .await
    }

    /// [`Oidc::discover`] with the clock that times JWKS refreshes (the engine's) and their schedule.
    ///
    /// # Errors
    /// As [`Oidc::discover`].
    pub async fn discover_with(
        settings: OidcSettings,
        clock: Arc<dyn Clock>,
        timing: JwksRefresh,
    ) -> Result<Self, OidcError> {
        // No redirects: an IdP endpoint must not bounce our credentials elsewhere (SSRF).
        // Every request to the issuer (discovery, token, JWKS, userinfo) uses this one client, on the configured
        // egress path.
        let http = crate::egress::apply(
            openidconnect::reqwest::ClientBuilder::new()
                .redirect(openidconnect::reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(10)),
            &settings.egress,
            settings.issuer.scheme() == "http",
        )
        .map_err(OidcError::Config)?
        .build()
        .map_err(|_| OidcError::Config("HTTP client"))?;
        let issuer = IssuerUrl::new(settings.issuer.as_str().trim_end_matches('/').to_owned())
            .map_err(|_| OidcError::Config("issuer"))?;
        let meta = match CoreProviderMetadata::discover_async(issuer.clone(), &http).await {
            Ok(m) => m,
            Err(_) => {
                // Okta's org issuer has no trailing slash, others do: try the form as written.
                let as_written = IssuerUrl::new(settings.issuer.as_str().to_owned())
                    .map_err(|_| OidcError::Config("issuer"))?;
                CoreProviderMetadata::discover_async(as_written, &http)
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, egress = %settings.egress, "OIDC discovery failed");
                        OidcError::Discovery
                    })?
            }
        };
        let assertions = check_client_auth(&meta, &settings)?;
        let redirect = RedirectUrl::new(settings.redirect_uri.to_string())
            .map_err(|_| OidcError::Config("redirect URI"))?;
        let client = build_client(&meta, &redirect, &settings, meta.jwks().clone());
        let keys = KeySet {
            client,
            generation: 0,
            fetched_at: clock.now(),
        };
        Ok(Self {
            meta,
            redirect,
            keys: RwLock::new(Arc::new(keys)),
            refresh: tokio::sync::Mutex::new(None),
            waiting: AtomicUsize::new(0),
            timing,
            clock,
            http,
            assertions,
            settings,
        })
    }

    /// How many verifications are waiting for a JWKS refetch in flight (they reuse its result rather than
    /// fetching themselves). For tests and diagnostics.
    #[must_use]
    pub fn jwks_refresh_waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// Starts a sign-in: a fresh state, nonce and PKCE verifier (S256).
    #[must_use]
    pub fn begin(&self) -> Begin {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let keys = self.key_set();
        let mut req = keys
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if self.settings.groups_claim == "groups" {
            req = req.add_scope(Scope::new("groups".into()));
        }
        let (url, state, nonce) = req.url();
        Begin {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token against `nonce`.
    ///
    /// # Errors
    /// [`OidcError`] for every failure; the agent sees only "sign-in failed".
    pub async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Identity, OidcError> {
        let keys = self.key_set();
        let req = keys
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| OidcError::Config("token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let token = self.send_exchange(req).await?;
        let (claims, jwt) = self.verified_id_token(&token, nonce).await?;
        self.mfa_shown(claims)?;
        let mut identity = self.identity_of(&jwt, claims.subject().as_str());
        if identity.groups.is_none() {
            let from_userinfo = self
                .userinfo_groups(&keys.client, token.access_token(), claims.subject())
                .await?;
            identity.groups = Some(from_userinfo.ok_or(OidcError::GroupsClaimMissing)?);
        }
        Ok(identity)
    }

    /// The ID token of a code exchange's answer, verified: signature (the portal's algorithm allow-list, a JWKS
    /// refetch for an unknown key), `iss`, `aud`, `exp` and `nonce` by the crate, `nbf` here. Its claims and its
    /// compact form. The one check for the agents' sign-in and the callers' sign-in links.
    async fn verified_id_token<'t>(
        &self,
        token: &'t openidconnect::core::CoreTokenResponse,
        nonce: &str,
    ) -> Result<(&'t openidconnect::core::CoreIdTokenClaims, String), OidcError> {
        let id_token = token.id_token().ok_or(OidcError::NoIdToken)?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = self
            .verified(|verifier| id_token.claims(verifier, &nonce))
            .await?;
        let jwt = id_token.to_string();
        not_before_passed(&jwt, chrono::Utc::now().timestamp())?;
        Ok((claims, jwt))
    }

    /// Sends a code exchange with the portal's client authentication (a fresh `private_key_jwt` assertion when
    /// configured; the secret methods are set on the client).
    async fn send_exchange(
        &self,
        mut req: openidconnect::CodeTokenRequest<
            '_,
            openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
            openidconnect::core::CoreTokenResponse,
        >,
    ) -> Result<openidconnect::core::CoreTokenResponse, OidcError> {
        // Held until the request is sent; dropped (zeroized) after.
        let assertion = match &self.assertions {
            Some(a) => {
                let audience = self
                    .meta
                    .token_endpoint()
                    .ok_or(OidcError::Config("token endpoint"))?;
                Some(
                    a.sign(audience.as_str(), self.clock.now().timestamp())
                        .map_err(|()| OidcError::ClientKey(a.alg_name()))?,
                )
            }
            None => None,
        };
        if let Some(jwt) = &assertion {
            req = req
                .add_extra_param("client_assertion_type", assertion::ASSERTION_TYPE)
                .add_extra_param("client_assertion", jwt.expose_secret().to_owned());
        }
        req.request_async(&self.http).await.map_err(|e| {
            tracing::warn!(
                error = kind_of_request_error(&e),
                "OIDC code exchange failed"
            );
            OidcError::Exchange
        })
    }

    /// The groups claim at the userinfo endpoint, for an ID token without it. `Ok(None)`: the provider has no
    /// userinfo endpoint or its answer has no such claim. The answer must name the token's subject (a userinfo
    /// response for someone else is refused, whatever its groups).
    async fn userinfo_groups(
        &self,
        client: &Client,
        access_token: &openidconnect::AccessToken,
        subject: &openidconnect::SubjectIdentifier,
    ) -> Result<Option<Vec<String>>, OidcError> {
        let Ok(req) = client.user_info(access_token.clone(), Some(subject.clone())) else {
            return Ok(None);
        };
        let info: openidconnect::UserInfoClaims<AllClaims, openidconnect::core::CoreGenderClaim> =
            req.request_async(&self.http).await.map_err(|e| {
                tracing::warn!(error = kind_of_userinfo_error(&e), "OIDC userinfo failed");
                OidcError::UserInfo
            })?;
        Ok(claim_at(&info.additional_claims().all, &self.settings.groups_claim).map(group_names))
    }

    /// Verifies a bearer JWT for the API: an ID token from the configured issuer for this client (signature,
    /// `iss`, `aud`, `exp`; no nonce, as there was no browser round trip), and, with `require_mfa`, MFA in `amr`
    /// exactly as at the browser sign-in.
    ///
    /// A token signed by a key the portal does not have yet triggers a (bounded) JWKS refetch; see the module
    /// documentation.
    ///
    /// # Errors
    /// [`OidcError::Token`], [`OidcError::MfaRequired`].
    pub async fn verify_bearer(&self, token: &str) -> Result<Identity, OidcError> {
        let id_token = CoreIdToken::from_str(token).map_err(|_| OidcError::Token("malformed"))?;
        let claims = self
            .verified(|verifier| id_token.claims(verifier, |_: Option<&Nonce>| Ok(())))
            .await?;
        not_before_passed(token, chrono::Utc::now().timestamp())?;
        self.mfa_shown(claims)?;
        Ok(self.identity_of(token, claims.subject().as_str()))
    }

    /// With `require_mfa`, refuses verified claims whose `amr` shows no MFA method (the one rule for the browser
    /// sign-in and the API's bearer tokens).
    fn mfa_shown(&self, claims: &openidconnect::core::CoreIdTokenClaims) -> Result<(), OidcError> {
        if !self.settings.require_mfa {
            return Ok(());
        }
        let mfa = claims.auth_method_refs().is_some_and(|amr| {
            amr.iter()
                .any(|m| matches!(m.as_str(), "mfa" | "otp" | "hwk" | "swk"))
        });
        if mfa {
            Ok(())
        } else {
            Err(OidcError::MfaRequired)
        }
    }

    /// The identity a verified token names (directory id and groups), from one read of its payload.
    fn identity_of(&self, jwt: &str, sub: &str) -> Identity {
        let payload = payload_of(jwt);
        Identity {
            subject: directory_id(payload.as_ref(), sub),
            groups: payload
                .as_ref()
                .and_then(serde_json::Value::as_object)
                .and_then(|v| claim_at(v, &self.settings.groups_claim))
                .map(group_names),
            name: display_name(payload.as_ref().and_then(|p| p.get("name"))),
        }
    }
}

/// Every claim of a userinfo response, kept as JSON (the groups claim is configurable). Its `Debug` names the
/// claims, never their values.
#[derive(serde::Deserialize, serde::Serialize)]
struct AllClaims {
    #[serde(flatten)]
    all: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for AllClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.all.keys()).finish()
    }
}

impl openidconnect::AdditionalClaims for AllClaims {}

/// The claim `path` names in verified claims: the claim with exactly that name, else, for a dotted path, the
/// value reached through nested objects (`realm_access.roles`).
fn claim_at<'a>(
    claims: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    rest.split('.')
        .try_fold(claims.get(first)?, |v, part| v.get(part))
}

/// Group names from a claim's value: an array of strings (at most 200 kept) or one string; anything else names
/// no group.
fn group_names(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .take(200)
            .collect(),
        serde_json::Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Checks the configured token-endpoint authentication method against the discovery document (absent list: the
/// spec's default, `client_secret_basic` only) and, for `private_key_jwt`, loads the key and checks its algorithm
/// against `token_endpoint_auth_signing_alg_values_supported` when the provider lists them.
fn check_client_auth(
    meta: &CoreProviderMetadata,
    settings: &OidcSettings,
) -> Result<Option<Assertions>, OidcError> {
    let configured = settings.client_auth.method().as_str();
    let advertised: Vec<String> = meta.token_endpoint_auth_methods_supported().map_or_else(
        || vec!["client_secret_basic".to_owned()],
        |l| l.iter().map(|m| m.as_ref().to_owned()).collect(),
    );
    if !advertised.iter().any(|m| m == configured) {
        return Err(OidcError::AuthMethodUnsupported {
            configured,
            advertised: advertised.join(", "),
        });
    }
    let ClientAuth::PrivateKeyJwt(key) = &settings.client_auth else {
        return Ok(None);
    };
    let assertions =
        Assertions::new(key, &settings.client_id).ok_or(OidcError::ClientKey(key.alg.as_str()))?;
    if let Some(algs) = meta.token_endpoint_auth_signing_alg_values_supported() {
        let name = assertions.alg_name();
        let names: Vec<String> = algs
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok()?.as_str().map(str::to_owned))
            .collect();
        if !names.iter().any(|a| a == name) {
            return Err(OidcError::AuthMethodUnsupported {
                configured: name,
                advertised: format!("signing algorithms {}", names.join(", ")),
            });
        }
    }
    Ok(Some(assertions))
}

/// The client for `meta` with `jwks` as its signing keys.
fn build_client(
    meta: &CoreProviderMetadata,
    redirect: &RedirectUrl,
    settings: &OidcSettings,
    jwks: CoreJsonWebKeySet,
) -> Client {
    let (secret, auth_type) = match &settings.client_auth {
        ClientAuth::SecretBasic(s) => (Some(s), AuthType::BasicAuth),
        ClientAuth::SecretPost(s) => (Some(s), AuthType::RequestBody),
        // No secret: `client_id` goes in the body beside the assertion.
        ClientAuth::PrivateKeyJwt(_) => (None, AuthType::RequestBody),
    };
    CoreClient::from_provider_metadata(
        meta.clone().set_jwks(jwks),
        ClientId::new(settings.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.expose_secret().to_owned())),
    )
    .set_auth_type(auth_type)
    .set_redirect_uri(redirect.clone())
}

/// The crate's verifier with the portal's algorithm allow-list.
fn verifier_of(client: &Client) -> CoreIdTokenVerifier<'_> {
    client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS)
}

/// The agent's id in the directory, from a verified token: Entra's `oid` (the user's object id; Entra's `sub` is
/// pairwise per application and names no directory user) when present, else `sub` (Okta's `sub` is the user id).
/// The portal reads the agent's current groups by this id, and the engine refuses an agent acting on the caller
/// with the same id, so it must be the id the directory knows.
fn directory_id(payload: Option<&serde_json::Value>, sub: &str) -> String {
    payload
        .and_then(|v| v.get("oid").and_then(|o| o.as_str()).map(str::to_owned))
        .filter(|oid| !oid.is_empty() && oid.len() <= 128)
        .unwrap_or_else(|| sub.to_owned())
}

/// The payload of a compact JWS as JSON (no verification).
pub(crate) fn payload_of(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Refuses a verified token whose `nbf` lies ahead of `now` (Unix seconds) by more than [`CLOCK_LEEWAY_SECS`].
/// A token without `nbf` passes (the claim is optional); an `nbf` that is not a number is refused.
fn not_before_passed(jwt: &str, now: i64) -> Result<(), OidcError> {
    let v = payload_of(jwt).ok_or(OidcError::Token("malformed"))?;
    match v.get("nbf") {
        None => Ok(()),
        Some(nbf) => {
            // NumericDate may carry a fraction; round it up so a token is never accepted early.
            let nbf = nbf.as_f64().ok_or(OidcError::Token("not_before"))?;
            #[allow(clippy::cast_precision_loss)]
            let limit = (now + CLOCK_LEEWAY_SECS) as f64;
            if nbf.ceil() > limit {
                Err(OidcError::Token("not_yet_valid"))
            } else {
                Ok(())
            }
        }
    }
}

fn classify(e: &openidconnect::ClaimsVerificationError) -> &'static str {
    use openidconnect::ClaimsVerificationError as E;
    match e {
        E::Expired(_) => "expired",
        E::InvalidAudience(_) => "audience",
        E::InvalidIssuer(_) => "issuer",
        E::InvalidNonce(_) => "nonce",
        E::SignatureVerification(_) => "signature",
        _ => "claims",
    }
}

fn kind_of_userinfo_error<E: std::error::Error>(
    e: &openidconnect::UserInfoError<E>,
) -> &'static str {
    match e {
        openidconnect::UserInfoError::ClaimsVerification(_) => "claims",
        openidconnect::UserInfoError::Response(..) => "status",
        openidconnect::UserInfoError::Request(_) => "request",
        _ => "other",
    }
}

fn kind_of_request_error<E: std::error::Error>(
    e: &openidconnect::RequestTokenError<
        E,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> &'static str {
    match e {
        openidconnect::RequestTokenError::ServerResponse(_) => "server_response",
        openidconnect::RequestTokenError::Request(_) => "request",
        openidconnect::RequestTokenError::Parse(_, _) => "parse",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &serde_json::Value) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b.encode(br#"{"alg":"RS256"}"#),
            b.encode(payload.to_string())
        )
    }

    #[test]
    fn the_directory_id_is_entras_oid_when_present_else_sub() {
        let entra = jwt(
            &serde_json::json!({"sub": "pairwise-abc", "oid": "6e7b768e-07e2-4810-8459-485f84f8f204"}),
        );
        assert_eq!(
            directory_id(payload_of(&entra).as_ref(), "pairwise-abc"),
            "6e7b768e-07e2-4810-8459-485f84f8f204"
        );
        let okta = jwt(&serde_json::json!({"sub": "00u1abc"}));
        assert_eq!(
            directory_id(payload_of(&okta).as_ref(), "00u1abc"),
            "00u1abc"
        );
        let empty = jwt(&serde_json::json!({"sub": "00u1abc", "oid": ""}));
        assert_eq!(
            directory_id(payload_of(&empty).as_ref(), "00u1abc"),
            "00u1abc"
        );
    }

    #[test]
    fn the_groups_claim_is_a_name_or_a_dotted_path_into_nested_objects() {
        let v = serde_json::json!({
            "groups": ["a", "b", 7],
            "realm_access": {"roles": ["tier2"]},
            "https://example.com/roles": "tier3",
            "flat": {"x": 1}
        });
        let m = v.as_object().unwrap();
        let at = |p: &str| claim_at(m, p).map(group_names);
        assert_eq!(at("groups"), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(at("realm_access.roles"), Some(vec!["tier2".to_owned()]));
        // A claim named with dots is read whole before any path is tried.
        assert_eq!(
            at("https://example.com/roles"),
            Some(vec!["tier3".to_owned()])
        );
        assert_eq!(at("realm_access.missing"), None);
        assert_eq!(at("roles"), None);
        // Present but not names: no group (and not "absent", which would send the portal to userinfo).
        assert_eq!(at("flat"), Some(Vec::new()));
    }

    #[test]
    fn nbf_in_the_future_is_refused_and_past_or_absent_passes() {
        let now = 1_800_000_000;
        let at =
            |nbf: serde_json::Value| not_before_passed(&jwt(&serde_json::json!({"nbf": nbf})), now);
        assert!(at(serde_json::json!(now + 1)).is_err());
        assert!(at(serde_json::json!(now as f64 + 0.5)).is_err());
        assert!(at(serde_json::json!("soon")).is_err());
        assert!(at(serde_json::json!(now)).is_ok());
        assert!(at(serde_json::json!(now - 60)).is_ok());
        assert!(not_before_passed(&jwt(&serde_json::json!({"sub": "x"})), now).is_ok());
    }
}
