//! Verification by IdP sign-in (`idp_sign_in`): the agent gives the caller a one-time link; the caller opens it
//! on their own device and signs in to the company IdP, forced to authenticate again with MFA; the shell checks
//! the IdP's ID token (signature, issuer, audience, expiry, nonce) and hands the engine what it proves. The engine
//! decides: the right person (`sub`/`oid` is the caller the agent looked up), a fresh sign-in (after the link
//! was opened, and recent), with MFA. Anything else ends the challenge with a reason the agent sees; someone else
//! signing in is a red flag, audited and alerted.
//!
//! The link carries no personal data: `{verification id}.{244 random bits}`. It opens once (a compare-and-set on
//! the stored verification, so two browsers, or two replicas, opening it at the same moment open it once), and
//! only until it expires. The sign-in it leads to completes the challenge once: the callback moves the record
//! from "opened" to "signed in", and the agent's own next poll approves the factor and mints the grant under the
//! agent's role, exactly as a push approval does.

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use crate::verification::{AnyVerification, Challenged, Verification};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use fctr_ports::{
    AgentId, Alert, AlertRule, EventKind, FactorId, FactorInfo, FactorKind, FactorStatus, Outcome,
    Reason, Severity, SignInLink, VerificationId, VerificationRecord,
};
use subtle::ConstantTimeEq as _;

/// Default lifetime of a sign-in link, in minutes (never beyond the verification window).
pub const DEFAULT_LINK_MINUTES: u32 = 10;
/// Default for how long after the caller authenticated a sign-in still counts as fresh, in seconds.
pub const DEFAULT_MAX_AUTH_AGE_SECONDS: u32 = 300;
/// Clock skew allowed between the IdP's `auth_time` and the moment the link was opened.
const AUTH_TIME_LEEWAY_SECS: i64 = 30;
/// The id of the caller's sign-in in a caller's factor list (it is not an enrolled factor).
const SIGN_IN_FACTOR_ID: &str = "idp_sign_in";

/// How sign-in links work, when the deployment offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLinks {
    /// How long a link works after it is made (never beyond the verification window).
    pub lifetime: Duration,
    /// How long after the caller authenticated at the IdP the sign-in still counts (the ID token's
    /// `auth_time`); it must also be no earlier than the moment the link was opened.
    pub max_auth_age: Duration,
}

impl Default for SignInLinks {
    fn default() -> Self {
        Self {
            lifetime: Duration::minutes(i64::from(DEFAULT_LINK_MINUTES)),
            max_auth_age: Duration::seconds(i64::from(DEFAULT_MAX_AUTH_AGE_SECONDS)),
        }
    }
}

/// A link the caller opened: what the shell keeps (server-side, beside its OIDC state) until the IdP sends the
/// caller back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedLink {
    /// The verification the link belongs to.
    pub verification: VerificationId,
    /// When it was opened (the sign-in must be later).
    pub opened_at: DateTime<Utc>,
}

/// What the caller's IdP sign-in proved, as the shell verified it.
#[derive(Clone, PartialEq, Eq)]
pub enum SignInEvidence {
    /// An ID token that passed the shell's checks (signature, issuer, audience, expiry, nonce).
    Token {
        /// The user's directory id: Entra's `oid`, else `sub`.
        subject: String,
        /// The token's `auth_time`: when the user last authenticated (`None` when absent: not fresh).
        auth_time: Option<DateTime<Utc>>,
        /// Whether the token shows multi-factor authentication (`amr`, or the `acr`/`acrs` the portal asked for).
        mfa: bool,
    },
    /// The IdP refused the sign-in, or its token failed the shell's checks.
    Failed,
}

impl std::fmt::Debug for SignInEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token { auth_time, mfa, .. } => f
                .debug_struct("Token")
                .field("subject", &"[redacted]")
                .field("auth_time", auth_time)
                .field("mfa", mfa)
                .finish(),
            Self::Failed => f.write_str("Failed"),
        }
    }
}

/// A link's text: the verification id and the secret.
#[must_use]
pub fn link_token(verification: VerificationId, link: &SignInLink) -> String {
    format!("{verification}.{}", link.secret)
}

/// 244 random bits from the operating system's generator (two v4 UUIDs), base64url (43 characters).
fn link_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The parts of a link's text, if it has the right shape.
fn parse_token(token: &str) -> Option<(VerificationId, &str)> {
    let (id, secret) = token.split_once('.')?;
    let ok = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(())?;
    Some((VerificationId::parse(id).ok()?, secret))
}

impl Engine {
    /// The same engine, offering verification by IdP sign-in (the shell serves the link and checks the IdP's
    /// token). Without it `idp_sign_in` is never offered, whatever policy accepts.
    #[must_use]
    pub fn with_sign_in_links(mut self, links: SignInLinks) -> Self {
        self.sign_in_links = Some(links);
        self
    }

    /// The sign-in link settings, when the engine offers them.
    #[must_use]
    pub fn sign_in_links(&self) -> Option<SignInLinks> {
        self.sign_in_links
    }

    /// The caller's enrolled factors, plus the caller's own IdP sign-in when links are offered (every active
    /// user can sign in; policy decides whether it counts).
    pub(crate) fn with_sign_in_factor(&self, mut factors: Vec<FactorInfo>) -> Vec<FactorInfo> {
        if self.sign_in_links.is_some() {
            if let Ok(id) = FactorId::parse(SIGN_IN_FACTOR_ID) {
                factors.push(FactorInfo {
                    id,
                    kind: FactorKind::IdpSignIn,
                    status: FactorStatus::Active,
                    vendor: None,
                    label: None,
                });
            }
        }
        factors
    }

    /// A fresh link for a challenge sent now, ending no later than the verification window.
    pub(crate) fn new_link(&self, window_end: DateTime<Utc>) -> SignInLink {
        let lifetime = self.sign_in_links.unwrap_or_default().lifetime;
        SignInLink {
            secret: link_secret(),
            expires_at: (self.now() + lifetime).min(window_end),
            opened_at: None,
            verified_at: None,
        }
    }

    /// The call a link's request makes: on behalf of the agent who made the link (by pseudonym; no role, so it
    /// can authorize nothing), about the caller.
    fn link_agent(rec: &VerificationRecord) -> Option<Agent> {
        Some(Agent {
            id: AgentId::parse("sign-in-link").ok()?,
            pseudo: rec.agent.clone(),
            role: None,
        })
    }

    /// The verification a link names, challenged by sign-in, with its link: `None` for anything else.
    async fn linked(&self, id: VerificationId) -> Result<Option<Verification<Challenged>>, Denial> {
        let rec = match self.ports.grants.get_verification(id).await {
            Ok(Some(r)) if r.tenant == self.tenant => r,
            Ok(_) => return Ok(None),
            Err(_) => return Err(Denial::new(Reason::StateUnavailable)),
        };
        match Verification::from_record(rec) {
            AnyVerification::Challenged(v)
                if v.outstanding()
                    .is_some_and(|o| o.kind == FactorKind::IdpSignIn && o.link.is_some()) =>
            {
                Ok(Some(v))
            }
            _ => Ok(None),
        }
    }

    /// The caller opened a link: it opens once, before it expires, while its verification waits for it.
    ///
    /// A link that names no verification is refused without an audit event (anyone can send garbage; the
    /// portal rate-limits the route); one that names a real verification but is wrong, used or expired is
    /// refused and audited against that verification's agent and caller.
    ///
    /// # Errors
    /// [`Reason::SignInLinkInvalid`], [`Reason::StateUnavailable`].
    pub async fn open_sign_in_link(
        &self,
        ctx: &RequestContext,
        token: &str,
    ) -> Result<OpenedLink, Denial> {
        let (v, agent, id) = self.unopened_link(ctx, token).await?;
        let mut c = Call::new(&agent, ctx).about(v.record().subject_pseudo.clone());
        c.set_factor(Some(FactorKind::IdpSignIn));
        let now = self.now();
        let prev = v.record().version;
        let v = v.update_link(|l| l.opened_at = Some(now));
        match self.store_link(v.record(), prev).await {
            Ok(true) => Ok(OpenedLink {
                verification: id,
                opened_at: now,
            }),
            // Another request opened it (or the agent moved on) first: a link opens once.
            Ok(false) => Err(self.deny(&c, Reason::SignInLinkInvalid).await),
            Err(_) => Err(Denial::new(Reason::StateUnavailable)),
        }
    }

    /// The person who opened the link says they did not ask the helpdesk for anything ("I did not call"): someone
    /// may be calling in their name and have forwarded them the link. The link is spent, the challenge ends
    /// (`caller_blocked`), "not me" is audited, and policy's "not me" response runs (block, clear sessions, alert),
    /// as when the agent records it.
    ///
    /// # Errors
    /// As [`Engine::open_sign_in_link`].
    pub async fn decline_sign_in_link(
        &self,
        ctx: &RequestContext,
        token: &str,
    ) -> Result<(), Denial> {
        let (v, agent, _) = self.unopened_link(ctx, token).await?;
        let rec = v.record().clone();
        let mut c = Call::new(&agent, ctx).about(rec.subject_pseudo.clone());
        c.set_factor(Some(FactorKind::IdpSignIn));
        match self
            .store_link(&v.refuse(Reason::CallerBlocked), rec.version)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(self.deny(&c, Reason::SignInLinkInvalid).await),
            Err(_) => return Err(Denial::new(Reason::StateUnavailable)),
        }
        self.record(
            self.event(&c, EventKind::NotMe, Outcome::Rejected)
                .reason(Reason::CallerBlocked),
        )
        .await;
        self.not_me_response(&c, &rec.subject, &rec.subject_pseudo)
            .await;
        Ok(())
    }

    /// A link that may still be opened: the right secret (constant time), not opened, not expired, its
    /// verification still waiting on it. Anything else is `sign_in_link_invalid`, audited when the link names a
    /// real verification (anyone can send garbage; the portal rate-limits the route).
    async fn unopened_link(
        &self,
        ctx: &RequestContext,
        token: &str,
    ) -> Result<(Verification<Challenged>, Agent, VerificationId), Denial> {
        let invalid = || Denial::new(Reason::SignInLinkInvalid);
        if self.sign_in_links.is_none() {
            return Err(invalid());
        }
        let Some((id, secret)) = parse_token(token) else {
            return Err(invalid());
        };
        let Some(v) = self.linked(id).await? else {
            return Err(invalid());
        };
        let Some(agent) = Self::link_agent(v.record()) else {
            return Err(invalid());
        };
        let now = self.now();
        let usable = v
            .outstanding()
            .and_then(|o| o.link.as_ref())
            .is_some_and(|l| {
                bool::from(l.secret.as_bytes().ct_eq(secret.as_bytes()))
                    && l.opened_at.is_none()
                    && now < l.expires_at
            })
            && !v.is_expired(now);
        if !usable {
            let mut c = Call::new(&agent, ctx).about(v.record().subject_pseudo.clone());
            c.set_factor(Some(FactorKind::IdpSignIn));
            return Err(self.deny(&c, Reason::SignInLinkInvalid).await);
        }
        Ok((v, agent, id))
    }

    /// The caller came back from the IdP: judges what the sign-in proved. The right person, signed in after the
    /// link was opened and recently, with MFA: the challenge is marked signed in, and the agent's next poll
    /// approves it. Anything else ends the challenge with its reason (audited; someone else signing in also
    /// raises an alert).
    ///
    /// # Errors
    /// [`Reason::SignInLinkInvalid`] (not the link's open sign-in: a replayed callback, or the challenge moved
    /// on), [`Reason::SignInOtherUser`], [`Reason::SignInStale`], [`Reason::SignInNoMfa`],
    /// [`Reason::SignInFailed`], [`Reason::StateUnavailable`].
    pub async fn finish_sign_in_link(
        &self,
        ctx: &RequestContext,
        opened: &OpenedLink,
        evidence: &SignInEvidence,
    ) -> Result<(), Denial> {
        let Some(v) = self.linked(opened.verification).await? else {
            return Err(Denial::new(Reason::SignInLinkInvalid));
        };
        let rec = v.record().clone();
        let Some(agent) = Self::link_agent(&rec) else {
            return Err(Denial::new(Reason::SignInLinkInvalid));
        };
        let mut c = Call::new(&agent, ctx).about(rec.subject_pseudo.clone());
        c.set_factor(Some(FactorKind::IdpSignIn));
        let link = v.outstanding().and_then(|o| o.link.clone());
        let ours = link
            .as_ref()
            .is_some_and(|l| l.opened_at == Some(opened.opened_at) && l.verified_at.is_none());
        if !ours {
            return Err(self.deny(&c, Reason::SignInLinkInvalid).await);
        }
        let now = self.now();
        // Too late to count: the verification window closed, or the link's deadline passed.
        let late = v.is_expired(now) || link.as_ref().is_none_or(|l| now >= self.link_deadline(l));
        let verdict = match evidence {
            SignInEvidence::Failed => Err(Reason::SignInFailed),
            SignInEvidence::Token { subject, .. } if subject != rec.subject.as_str() => {
                Err(Reason::SignInOtherUser)
            }
            SignInEvidence::Token { auth_time, mfa, .. } => {
                let max_age = self.sign_in_links.unwrap_or_default().max_auth_age;
                let fresh = auth_time.is_some_and(|t| {
                    t >= opened.opened_at - Duration::seconds(AUTH_TIME_LEEWAY_SECS)
                        && now - t <= max_age
                        && t <= now + Duration::seconds(AUTH_TIME_LEEWAY_SECS)
                });
                if !fresh {
                    Err(Reason::SignInStale)
                } else if !mfa {
                    Err(Reason::SignInNoMfa)
                } else {
                    Ok(())
                }
            }
        };
        let prev = rec.version;
        match verdict {
            Ok(()) if late => Err(self.deny(&c, Reason::SignInLinkInvalid).await),
            Ok(()) => {
                let v = v.update_link(|l| l.verified_at = Some(now));
                match self.store_link(v.record(), prev).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(self.deny(&c, Reason::SignInLinkInvalid).await),
                    Err(_) => Err(Denial::new(Reason::StateUnavailable)),
                }
            }
            Err(reason) => {
                // The refusal ends the challenge when it still can; it is audited (and someone else signing in
                // alerted) whatever the write does: a red flag is never lost to a race or a store error.
                if !late {
                    let ended = v.refuse(reason);
                    let _ = self.store_link(&ended, prev).await;
                }
                self.record(
                    self.event(&c, EventKind::ChallengeResult, Outcome::Rejected)
                        .reason(reason),
                )
                .await;
                self.count_failure(&c, &rec.subject_pseudo).await;
                if reason == Reason::SignInOtherUser {
                    let alert = Alert::new(AlertRule::SignInOtherUser, Severity::Critical, now)
                        .caller(rec.subject_pseudo.clone())
                        .agent(rec.agent.clone());
                    self.raise(&c, alert).await;
                }
                Err(Denial::new(reason))
            }
        }
    }

    /// When a link stops counting: its expiry while unopened; once opened, the expiry plus the time a sign-in may
    /// take (the caller may be signing in when the link expires), after which the agent's page times it out and
    /// a new link can be sent.
    pub(crate) fn link_deadline(&self, link: &SignInLink) -> DateTime<Utc> {
        if link.opened_at.is_some() {
            link.expires_at + self.sign_in_links.unwrap_or_default().max_auth_age
        } else {
            link.expires_at
        }
    }

    /// Writes a link's verification if it is still at version `expected`.
    async fn store_link(
        &self,
        rec: &VerificationRecord,
        expected: u64,
    ) -> Result<bool, fctr_ports::PortError> {
        let ttl = super::store_ttl(rec.expires_at - self.now());
        self.ports
            .grants
            .put_verification(rec, Some(expected), ttl)
            .await
    }
}
