//! # fctr-entra: the Microsoft Entra ID adapter
//!
//! [`EntraAdapter`] implements fctr's [`IdentityProvider`](fctr_ports::IdentityProvider) port over Microsoft
//! Graph v1.0 with application (client-credentials) permissions, plus, only when configured, the unofficial Azure
//! MFA connector for Authenticator pushes and code checks.
//!
//! ## What it promises
//! - **Directory.** A user by object id (`GET /users/{id}?$select=…`); a login by UPN through the same path
//!   (percent-encoded, so `#` in guest UPNs goes as `%23`; a UPN starting with `$` uses the key form
//!   `/users('$…')` with quotes doubled), falling back to `$filter=mail eq '…'` so logins also match e-mail as the
//!   port asks; e-mail by `$filter=mail eq '…'`; name prefixes by `$search="displayName:…"` with
//!   `ConsistencyLevel: eventual` ([`NameSearch::Search`], default) or by
//!   `$filter=startsWith(displayName,'…') or startsWith(givenName,'…') or startsWith(surname,'…')`
//!   ([`NameSearch::StartsWith`]). OData literals double single quotes; `"` and `\` are removed from `$search`
//!   terms (Graph tokenises on them anyway), so no input can leave its literal (property-tested).
//!   `$select` reads id, userPrincipalName, displayName, mail, mobilePhone, accountEnabled,
//!   onPremisesSyncEnabled, lastPasswordChangeDateTime and createdDateTime; `signInActivity` is not read (it needs
//!   AuditLog.Read.All and a P1/P2 licence), so [`RiskFacts::last_login`](fctr_ports::RiskFacts) is `None`, and
//!   Graph exposes no lockout state, so `locked_out` is always `false`. `accountEnabled: false` is
//!   [`AccountStatus::Disabled`](fctr_ports::AccountStatus), anything else `Active`.
//! - **Methods** from `/users/{id}/authentication/methods` by `@odata.type`: Microsoft Authenticator → `Push`;
//!   phone → `Sms` for `phoneType: mobile`, `Voice` for `alternateMobile`/`office` (those take calls only);
//!   FIDO2 → `WebAuthn`; software OATH → `Totp`; Windows Hello for Business and platform credentials →
//!   `PlatformCredential`; TAP → `TemporaryAccessPass` (`Inactive` when `isUsable` is false); e-mail → `Email`;
//!   password → `Password`; anything else → `Other("entra:<type>")`.
//! - **Groups** from `/users/{id}/memberOf?$select=id,displayName`: groups and directory roles, every page or
//!   an error (a partial list could hide a protected group). `@odata.nextLink` is followed only on the configured
//!   Graph base.
//! - **Lifecycle** (app-only): [`ActionKind::ClearSessions`](fctr_ports::ActionKind) →
//!   `POST /users/{id}/revokeSignInSessions` (any 2xx; it kills refresh tokens and session cookies, not access
//!   tokens already issued, which live about an hour); `ExpirePassword` → `PATCH /users/{id}` with a generated
//!   20-character password (CSPRNG, all four classes) and `forceChangePasswordNextSignIn: true`, returned once
//!   as a `TemporaryPassword` (refused with `InvalidState` for users synced from on-premises AD unless
//!   [`EntraConfig::allow_password_set_on_synced_users`]); `IssueTemporaryAccessPass` →
//!   `POST …/authentication/temporaryAccessPassMethods` (`lifetimeInMinutes` clamped into [`TapBounds`],
//!   `isUsableOnce`), the pass returned once with its expiry; `RemoveFactor` → the method is looked up and
//!   deleted at its type's collection (`temporaryAccessPassMethods`, `softwareOathMethods`,
//!   `microsoftAuthenticatorMethods`, `phoneMethods`, `fido2Methods`, `windowsHelloForBusinessMethods`,
//!   `emailMethods`, `platformCredentialMethods`; passwords and other types are `Unsupported`); `Suspend` /
//!   `Unsuspend` → `PATCH {"accountEnabled": false|true}`. `ResetPassword` is `Unsupported`: Graph's
//!   `resetPassword` is delegated-only, and this adapter does not fake it. `Unlock` is `Unsupported`: Graph has no
//!   call for it.
//! - **Factor reset** ([`ActionKind::ResetFactors`](fctr_ports::ActionKind), needs
//!   `UserAuthenticationMethod.ReadWrite.All`): Graph has no "reset all" call, so the methods are listed and every
//!   one but the password is deleted, one `DELETE …/authentication/{type}Methods/{id}` (204) each, at the same
//!   collections as `RemoveFactor`. A user holding a method of any other type (e.g. `qrCodePin`, external) is
//!   refused with `Unsupported` before anything is deleted. Graph refuses to delete the user's **default** MFA
//!   method while others remain (400 `badRequest`), so it goes last. Which one it is comes from the beta
//!   `GET /beta/users/{id}/authentication/signInPreferences` (`userPreferredMethodForSecondaryAuthentication`:
//!   `push`, `oath`, `sms`/`voiceMobile`, `voiceAlternateMobile`, `voiceOffice`), read beside a Graph base ending in
//!   `v1.0/` and only when there are two or more methods. It is beta, so it may be missing or refused: then (403,
//!   404, any error, `none`, an unknown value) the order ends with the likeliest default: e-mail, FIDO2, Windows
//!   Hello and platform credentials first (never a default), then TAP, software OATH, the phones (office,
//!   `alternateMobile`, then `mobile`, which Graph keeps while an `alternateMobile` exists), the Authenticator
//!   last. Either way, a DELETE answered 400 is set aside and sent again once the others are done (nothing was
//!   deleted, so this is not a retry of a change); a round in which every remaining method is refused ends the
//!   reset. A 404 on a DELETE counts as already gone. The receipt is plain
//!   ([`ActionReceipt`](fctr_ports::ActionReceipt) has no count); the number removed is logged. If the reset stops after deleting some methods, the error is
//!   `PortError::Unexpected` wrapping a [`PartialFactorReset`] (removed, total, and the cause, codes only): the
//!   engine audits a failed action, and nothing is retried. Stopped before any deletion, it is Graph's own error
//!   (e.g. `Forbidden` naming the permission). Uncertain: whether Graph counts the password or a TAP among the
//!   "other methods", and whether it honours the preference when system-preferred MFA is on; the 400 rule covers
//!   both readings.
//! - **Nothing leaks.** Secrets, keys, tokens, passwords, TAPs and codes live in
//!   [`SecretString`](secrecy::SecretString) or [`zeroize::Zeroizing`] buffers; response bodies are zeroized
//!   after parsing; personal data goes only into [`Pii`](fctr_ports::Pii). Graph's `error.message` and the token
//!   endpoint's `error_description` (both can echo input) are never read into an error or a log: only
//!   `error.code`, AADSTS numbers, statuses and request ids. Transport errors are classified, never formatted
//!   (their text holds the URL, which can hold a UPN). Limits: buffers inside reqwest/hyper and jsonwebtoken's
//!   parsed key are freed without zeroizing.
//!
//! ## Retries
//! | situation | GET (lookups, methods, groups) | POST / PATCH / DELETE (lifecycle, connector) |
//! |---|---|---|
//! | 429 | re-sent after `Retry-After`, at most [`EntraConfig::max_rate_limit_retries`] times, each wait at most [`EntraConfig::max_retry_wait`]; otherwise `RateLimited` | **never**: `RateLimited { retry_after }` |
//! | connection failure | re-sent once | **never** (`Unavailable`) |
//! | timeout | not re-sent (`Timeout`) | **never** (outcome unknown) |
//! | 5xx | not re-sent (`Upstream`) | **never** |
//! | 401 | once, with a fresh token | once, with a fresh token: a 401 means Entra refused the token before running anything |
//! | 400 | not re-sent | not re-sent; only a factor reset sends a refused method's DELETE again, after the others |
//!
//! Graph sends no rate-limit budget headers, so
//! [`Challenger::poll_budget`](fctr_ports::Challenger::poll_budget) is `None` until Graph answers 429 with
//! `Retry-After`, and then "nothing left" until that time has passed (the portal's poller waits it out: the
//! approval that follows a poll reads the caller's groups from Graph).
//!
//! ## Error mapping
//! Graph `error.code` and status: 404 (`Request_ResourceNotFound`, `itemNotFound`) → `NotFound`; 403
//! (`Authorization_RequestDenied`, …) → `Forbidden { missing }` naming the Graph application permission (and
//! admin role) the call needs; 403 `insufficient_claims` → `Forbidden` naming Conditional Access; 429 →
//! `RateLimited` with `Retry-After`; 401 after one refresh → `Unauthorized`; other statuses → `Upstream { status,
//! code }`; unparseable JSON → `Malformed`; connect failure → `Unavailable`; timeout → `Timeout`. Token-endpoint
//! refusals become `Unauthorized` (or `Forbidden` for a refused scope); [`EntraAdapter::check_credentials`]
//! returns the full [`TokenError`], e.g. "the client secret was refused (AADSTS7000215): it is wrong or expired;
//! create a new secret …", "the tenant was not found (AADSTS90002): check tenant_id …". The same message is
//! logged (without any secret) when a token request fails during a port call.
//!
//! ## Authentication
//! Client credentials at `{authority}/{tenant}/oauth2/v2.0/token` with scope
//! `https://graph.microsoft.com/.default`, by client secret or by certificate
//! ([`EntraCredential::Certificate`]): a client assertion signed PS256 with header `x5t#S256` (base64url SHA-256
//! of the certificate DER; the current documented form, the default) or RS256 with `x5t` (SHA-1; the older form),
//! claims `aud` = the token URL, `iss` = `sub` = client id, a fresh `jti`, `nbf` = `iat` = now, `exp` = now + 5
//! min. Tokens are cached until five minutes (at most half the lifetime) before expiry. See
//! `docs/entra-setup.md` for the app registration and the least-privilege permission table.
//!
//! ## The MFA connector (unofficial, off by default)
//! Graph has no API to send an Authenticator push or to check a TOTP code. The only known route is the
//! "StrongAuthenticationService" connector the NPS extension and AD FS adapter call: undocumented, outside
//! Microsoft support, and liable to change without notice. It needs a credential added to the service principal
//! of Microsoft's first-party "Azure Multi-Factor Auth Client" app (`981f26a1-…`), and whoever holds that
//! credential can prompt any user in the tenant. Without [`EntraConfig::connector`], capabilities say
//! `push: false, code_verification: false` and `start`, `poll` and `verify_code` return `Unsupported`.
//!
//! When configured:
//! - **Push** (`Challenger::start`, factor kind `Push` only): `BeginTwoWayAuthentication` with
//!   `AuthenticationMethodId=PhoneAppNotification` always (never the user's default method, which may be SMS or a
//!   voice call), `OverrideNumberMatchingWithOTP=false`, `SyncCall=true`, `RequireUserMatch=true`. The connector
//!   pushes to the user's Authenticator devices, not to one chosen device. Results: `Success` with
//!   `AuthenticationResult=true` → `Approved`; `PhoneAppDenied` (and `PhoneAppFraud`, a deny that also reports
//!   fraud) → `Rejected`; `PhoneAppNoResponse` → `TimedOut`; anything else → `Failed(UnknownResult)`.
//!   **Why a background task:** with `SyncCall=true` the connector's answer arrives only when the user answers or
//!   the service gives up (the form every public implementation uses; polling with `SyncCall=false` is seen in
//!   AD FS traces but untested). So `start` checks the connector credential, reads the UPN, registers the
//!   challenge under a fresh `ContextId` (the ticket handle), spawns the blocking call on the Tokio runtime and
//!   returns at once; `poll` reads the outcome (`Waiting` until then; `TimedOut` once the ticket's expiry plus
//!   15 s has passed without an answer; `Failed(UnknownResult)` for a handle this process does not know). The
//!   state lives in this process: a ticket must be polled on the replica that started it, and a restart loses
//!   it (the poll then fails closed). Finished results stay readable for ten minutes.
//! - **No number matching.** The connector's push is plain approve/deny (`push_number_matching: false`):
//!   nothing binds the approving person to the caller on the phone, and approve/deny invites MFA fatigue. fctr
//!   policy should therefore require more than an Entra push alone (a code check, a second factor, or a
//!   call-back), and the portal's per-target push rate limits matter more here.
//! - **Codes** (`verify_code`, factor kinds `Totp` and `Push`, i.e. software OATH apps and Authenticator codes):
//!   a code that is not 6–8 digits is `Wrong` without any request. Otherwise `BeginTwoWayAuthentication` in OTP
//!   mode ([`ConnectorOtpMode`]: by default `PhoneAppNotification` with `OverrideNumberMatchingWithOTP=true`, as
//!   the NPS extension does; or `PhoneAppOTP` with `SyncCall=false`, as AD FS does) must answer
//!   `AuthenticationResult=challenge` (or, in `PhoneAppOTP` mode, nil) with a `SessionId`; anything else, such as
//!   a push that was sent anyway, is an error and never a verified code. Then `EndTwoWayAuthentication` with
//!   `AdditionalAuthData` = the code: `Success`+`true` → `Accepted`, `OathCodeIncorrect` → `Wrong`, `OathCodeDuplicate` → `Replayed`, `OathCodeOld` → `OutsideWindow`,
//!   `AuthenticationMethodLocked` → `Locked`, anything else → `Upstream { status: 200, code: "connector:<Value>" }`.
//!   The End request always goes to the configured endpoint; only the `dc` affinity parameter is copied from the
//!   answer's `AffinityUrl`, so a bearer token never goes to a host named in an answer.
//! - XML is written with `quick-xml` (every value escaped) and read by local element names; DTDs are refused.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fctr_entra::{CertificateRef, EntraAdapter, EntraConfig, EntraCredential};
//! use secrecy::SecretString;
//! let pem = std::fs::read_to_string("/run/secrets/fctr-entra.key.pem")?;
//! let der = std::fs::read("/run/secrets/fctr-entra.cer")?;
//! let config = EntraConfig::new(
//!     "00000000-0000-0000-0000-000000000001",
//!     "00000000-0000-0000-0000-000000000002",
//!     EntraCredential::certificate(SecretString::from(pem), CertificateRef::Der(der)),
//! )?;
//! let adapter = EntraAdapter::new(config)?;
//! # let _ = adapter;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod adapter;
mod config;
mod connector;
mod errors;
/// Fuzzing entry points (feature `fuzzing`, off by default): not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod password;
mod query;
mod token;
mod wire;

pub use adapter::{EntraAdapter, supported_actions};
pub use config::{
    AssertionAlgorithm, CertificateRef, ConfigError, ConnectorOtpMode, DEFAULT_AUTHORITY,
    DEFAULT_GRAPH_BASE, DEFAULT_MFA_CONNECTOR_ENDPOINT, DEFAULT_USER_AGENT, EntraConfig,
    EntraCredential, MFA_CONNECTOR_CLIENT_ID, MfaConnectorConfig, NameSearch, TapBounds,
};
pub use errors::PartialFactorReset;
pub use token::{CONNECTOR_SCOPE, GRAPH_SCOPE, TokenError};

/// Every Microsoft Graph application permission fctr can use (docs/entra-setup.md, section 2): reading users, their
/// methods and group memberships; revoking sessions; setting a temporary password; Temporary Access Passes (the
/// granular permission, or the methods one that also covers removing and resetting factors); enabling and
/// disabling accounts; and, for out-of-band change detection only (optional), reading the directory audit log,
/// for which Microsoft documents `AuditLog.Read.All` **and** `Directory.Read.All`.
/// A permission outside this list is broader than fctr needs (for example `Directory.ReadWrite.All` or
/// `User.ReadWrite.All`; `Directory.Read.All` is needed only for the audit log: `GroupMember.Read.All` suffices
/// for groups).
pub const USED_GRAPH_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-TAP.ReadWrite.All",
    "GroupMember.Read.All",
    "User.RevokeSessions.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.EnableDisableAccount.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
];
