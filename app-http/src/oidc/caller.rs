//! A caller's sign-in through a one-time link (`idp_sign_in`): the same relying party as the agents' sign-in
//! (issuer, client, keys, algorithm allow-list), with its own redirect URI, and a request that forces a fresh,
//! multi-factor authentication: `prompt=login` and `max_age=0` always, plus the IdP's own way to demand MFA when
//! configured (Okta `acr_values`, such as `urn:okta:loa:2fa:any`; an Entra authentication context through the
//! `claims` parameter, answered in the token's `acrs`). What the token proves goes to the engine, which decides.
//! No session is made, no group is read: a caller's sign-in never signs anyone in to the portal.

use super::{Begin, Oidc, OidcError, payload_of};
use chrono::{DateTime, TimeZone as _, Utc};
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
};
use std::borrow::Cow;

/// What a caller's sign-in asks of the IdP beyond an agent's (`[caller_sign_in]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerAuth {
    /// The redirect URI (`{public_url}/link/callback`), registered on the IdP app.
    pub redirect_uri: Option<url::Url>,
    /// `acr_values` to send (Okta: `urn:okta:loa:2fa:any` or `phr`); a token whose `acr` is one of them shows
    /// MFA even without an `amr` saying so.
    pub acr_values: Option<String>,
    /// An Entra authentication context id (`c1` to `c99`, bound by Conditional Access to an MFA grant) to demand
    /// through the `claims` parameter; a token whose `acrs` holds it shows MFA (Entra v2 ID tokens may carry no
    /// `amr`).
    pub auth_context: Option<String>,
    /// The IdP is Entra: the caller is named by `oid` (required; Entra's `sub` is pairwise per app and names no
    /// directory user). Otherwise by `sub` alone (Okta's user id), whatever other claims the token has.
    pub entra: bool,
}

/// What a caller's verified ID token says.
#[derive(Clone)]
pub struct CallerSignIn {
    /// The directory id: Entra's `oid` when present, else `sub`.
    pub subject: String,
    /// `auth_time`, when the token has one.
    pub auth_time: Option<DateTime<Utc>>,
    /// Whether the token shows MFA: an `amr` naming a second factor, an `acr` the portal asked for, or the
    /// authentication context in `acrs`.
    pub mfa: bool,
}

impl std::fmt::Debug for CallerSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerSignIn")
            .field("auth_time", &self.auth_time)
            .field("mfa", &self.mfa)
            .finish_non_exhaustive()
    }
}

/// The `claims` request parameter demanding an Entra authentication context in the ID token.
fn claims_param(context: &str) -> String {
    serde_json::json!({"id_token": {"acrs": {"essential": true, "value": context}}}).to_string()
}

/// Whether a verified payload shows MFA, by `amr`, or by the `acr`/`acrs` the portal asked for.
fn shows_mfa(payload: &serde_json::Value, auth: &CallerAuth) -> bool {
    let amr = payload
        .get("amr")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|a| {
            a.iter().filter_map(serde_json::Value::as_str).any(|m| {
                // The agents' rule: a method that is a second factor, never one alone such as `sms`.
                matches!(m, "mfa" | "otp" | "hwk" | "swk")
            })
        });
    let acr = match (
        payload.get("acr").and_then(serde_json::Value::as_str),
        &auth.acr_values,
    ) {
        (Some(acr), Some(asked)) => asked.split_whitespace().any(|v| v == acr),
        _ => false,
    };
    let acrs = match (
        payload.get("acrs").and_then(serde_json::Value::as_array),
        &auth.auth_context,
    ) {
        (Some(list), Some(ctx)) => list.iter().any(|v| v.as_str() == Some(ctx.as_str())),
        _ => false,
    };
    amr || acr || acrs
}

/// `auth_time` as a time (a number of seconds; anything else reads as absent).
fn auth_time(payload: &serde_json::Value) -> Option<DateTime<Utc>> {
    let secs = payload.get("auth_time")?.as_f64()?;
    #[allow(clippy::cast_possible_truncation)]
    Utc.timestamp_opt(secs.floor() as i64, 0).single()
}

impl Oidc {
    /// Starts a caller's sign-in: fresh state, nonce and PKCE verifier, `prompt=login`, `max_age=0`, and the
    /// configured MFA demand.
    ///
    /// # Errors
    /// [`OidcError::Config`] when no usable redirect URI is configured.
    pub fn begin_caller(&self, auth: &CallerAuth) -> Result<Begin, OidcError> {
        let redirect = caller_redirect(auth)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let keys = self.key_set();
        let mut req = keys
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_redirect_uri(Cow::Owned(redirect))
            // `profile`: Entra releases `oid` only with it.
            .add_scope(openidconnect::Scope::new("profile".into()))
            .add_prompt(CoreAuthPrompt::Login)
            .set_max_age(std::time::Duration::ZERO)
            .set_pkce_challenge(challenge);
        if let Some(acr) = &auth.acr_values {
            req = req.add_extra_param("acr_values", acr.clone());
        }
        if let Some(ctx) = &auth.auth_context {
            req = req.add_extra_param("claims", claims_param(ctx));
        }
        let (url, state, nonce) = req.url();
        Ok(Begin {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges a caller's code and verifies the ID token (signature with the portal's algorithm allow-list,
    /// `iss`, `aud`, `exp`, `nbf`, `nonce`), then reads who signed in, when, and whether with MFA. Judging those
    /// is the engine's.
    ///
    /// # Errors
    /// [`OidcError`] for every failure (the engine records it as a failed sign-in).
    pub async fn finish_caller(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        auth: &CallerAuth,
    ) -> Result<CallerSignIn, OidcError> {
        let redirect = caller_redirect(auth)?;
        let keys = self.key_set();
        let req = keys
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| OidcError::Config("token endpoint"))?
            .set_redirect_uri(Cow::Owned(redirect))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let token = self.send_exchange(req).await?;
        let (claims, jwt) = self.verified_id_token(&token, nonce).await?;
        let payload = payload_of(&jwt).ok_or(OidcError::Token("malformed"))?;
        let subject = if auth.entra {
            payload
                .get("oid")
                .and_then(serde_json::Value::as_str)
                .filter(|oid| !oid.is_empty() && oid.len() <= 128)
                .ok_or(OidcError::Token("oid"))?
                .to_owned()
        } else {
            claims.subject().as_str().to_owned()
        };
        Ok(CallerSignIn {
            subject,
            auth_time: auth_time(&payload),
            mfa: shows_mfa(&payload, auth),
        })
    }
}

fn caller_redirect(auth: &CallerAuth) -> Result<RedirectUrl, OidcError> {
    let uri = auth
        .redirect_uri
        .as_ref()
        .ok_or(OidcError::Config("caller sign-in redirect URI"))?;
    RedirectUrl::new(uri.to_string()).map_err(|_| OidcError::Config("caller sign-in redirect URI"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mfa_shows_in_amr_or_in_the_acr_or_context_the_portal_asked_for() {
        let none = CallerAuth::default();
        assert!(shows_mfa(&json!({"amr": ["pwd", "mfa"]}), &none));
        assert!(!shows_mfa(&json!({"amr": ["pwd"]}), &none));
        assert!(!shows_mfa(&json!({}), &none));
        // An acr is proof only when it is one the portal asked for.
        assert!(!shows_mfa(&json!({"acr": "urn:okta:loa:2fa:any"}), &none));
        let okta = CallerAuth {
            acr_values: Some("urn:okta:loa:2fa:any".into()),
            ..CallerAuth::default()
        };
        assert!(shows_mfa(&json!({"acr": "urn:okta:loa:2fa:any"}), &okta));
        assert!(!shows_mfa(&json!({"acr": "urn:okta:loa:1fa:any"}), &okta));
        // Entra: no amr at all, the context in acrs.
        let entra = CallerAuth {
            auth_context: Some("c1".into()),
            ..CallerAuth::default()
        };
        assert!(shows_mfa(&json!({"acrs": ["c1"]}), &entra));
        assert!(!shows_mfa(&json!({"acrs": ["c2"]}), &entra));
        assert!(!shows_mfa(&json!({"acrs": ["c1"]}), &none));
    }

    #[test]
    fn the_claims_parameter_demands_the_context_as_essential() {
        let v: serde_json::Value = serde_json::from_str(&claims_param("c1")).unwrap();
        assert_eq!(v["id_token"]["acrs"]["essential"], true);
        assert_eq!(v["id_token"]["acrs"]["value"], "c1");
    }

    #[test]
    fn auth_time_reads_seconds_and_nothing_else() {
        assert_eq!(
            auth_time(&json!({"auth_time": 1_800_000_000})).map(|t| t.timestamp()),
            Some(1_800_000_000)
        );
        assert_eq!(auth_time(&json!({"auth_time": "yesterday"})), None);
        assert_eq!(auth_time(&json!({})), None);
    }
}
