//! [`OktaAdapter`]: the port implementations.

use crate::ConfigError;
use crate::config::{
    OktaAuth, OktaConfig, is_loopback, validate_client_field, validate_key, validate_limits,
    validate_org_url,
};
use crate::dpop::DpopKey;
use crate::errors::{OktaError, log_error, malformed, map_error};
use crate::http::{Credential, Limits, Op, RateBudget, Resp, Transport, next_link, on_org};
use crate::search::{encode_query_value, expression};
use crate::token::{TokenError, TokenSource};
use crate::wire::{FactorDto, GroupDto, UserDto, VerifyDto};
use async_trait::async_trait;
use chrono::Utc;
use fctr_ports::{
    ActionKind, Capabilities, ChallengeContext, ChallengeHandle, ChallengeState, ChallengeTicket,
    Challenger, CodeVerdict, Directory, FactorInfo, FactorKind, FactorStatus, FailureReason,
    GroupRef, IdentityProvider, PortError, RiskFacts, SubjectId, UserQuery, UserRecord,
};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use url::Url;
use zeroize::Zeroizing;

mod changes;
mod lifecycle;
mod single_flight;
use single_flight::{Flight, InFlight, SharedBody};

/// The largest page Okta serves for user search.
const MAX_SEARCH_LIMIT: usize = 200;
/// Group pages followed before giving up (fail closed: a partial group list could hide a protected group).
const MAX_GROUP_PAGES: usize = 50;
/// Push lifetime when Okta does not say (`expiresAt` missing).
const DEFAULT_PUSH_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// No push is trusted longer than this, whatever `expiresAt` says (NIST SP 800-63B caps OOB at 10 min).
const MAX_PUSH_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Prefix every user-scoped URL (poll hrefs, `Link` pages) must have.
const USERS_PREFIX: &str = "/api/v1/users/";

const OP_GET_USER: Op = Op::read("get_user", "users.get");
const OP_RISK: Op = Op::read("risk_facts", "users.get");
const OP_SEARCH: Op = Op::read("find_users", "users.search");
const OP_FACTORS: Op = Op::read("list_factors", "factors");
const OP_GROUPS: Op = Op::read("groups", "groups");
/// The push poll has a bucket of its own: what the poller paces itself by ([`Challenger::poll_budget`]) must be
/// what the poll endpoint's own answers say. Okta counts limits per endpoint, and the transaction URL is not the
/// factor list or the verify call: an answer from either could show a full bucket while the polls' is nearly empty.
const OP_POLL: Op = Op::read("poll", "factors.poll");
const OP_PUSH: Op = Op::verify("push");
const OP_CODE: Op = Op::verify("verify_code");

/// The Okta identity provider: [`Directory`], [`Challenger`], [`Lifecycle`](fctr_ports::Lifecycle) and [`IdentityProvider`] over the
/// Okta management API. Cheap to clone (one shared HTTP client, token cache and rate budget).
#[derive(Clone)]
pub struct OktaAdapter {
    inner: Arc<Transport>,
    /// The System Log reader: the same client and credential, with a token of its own asking for
    /// `okta.logs.read` only, so the management token never depends on that optional grant.
    logs: Arc<Transport>,
    /// The service app's client id (the System Log's actor for fctr's own calls); `None` with an SSWS token.
    client_id: Option<String>,
    users_in_flight: Arc<InFlight>,
}

impl fmt::Debug for OktaAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaAdapter")
            .field("org", &self.inner.org.as_str())
            .field("credential", &self.inner.credential)
            .finish_non_exhaustive()
    }
}

impl OktaAdapter {
    /// Validates the configuration eagerly and builds the adapter (no network call is made).
    ///
    /// # Errors
    /// [`ConfigError`] for a bad org URL (not https outside loopback, has a path, an admin-console domain, …), an
    /// empty client id or key id, a private key that cannot be read or does not sign with the chosen algorithm,
    /// out-of-range limits, or a TLS backend that cannot be initialised. Messages never contain the key or token.
    pub fn new(config: OktaConfig) -> Result<Self, ConfigError> {
        let org = validate_org_url(&config.org_url)?;
        validate_limits(&config)?;
        let client = crate::http::build_client(
            &config.user_agent,
            config.connect_timeout,
            config.request_timeout,
            is_loopback(&org),
            &config.egress,
        )?;
        let mut client_id_seen = None;
        let (credential, logs_credential) = match config.auth {
            OktaAuth::ApiToken(token) => {
                let t = token.expose_secret();
                if t.trim().is_empty() {
                    return Err(ConfigError::Field {
                        field: "api_token",
                        problem: "is empty",
                    });
                }
                if !t.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(ConfigError::Field {
                        field: "api_token",
                        problem: "contains characters that cannot appear in a header",
                    });
                }
                (Credential::Ssws(token.clone()), Credential::Ssws(token))
            }
            OktaAuth::PrivateKeyJwt {
                client_id,
                key_id,
                private_key_pem,
                algorithm,
                dpop,
            } => {
                validate_client_field("client_id", &client_id)?;
                validate_client_field("key_id", &key_id)?;
                validate_key(&private_key_pem, algorithm)?;
                let token_url = org
                    .join("oauth2/v1/token")
                    .map_err(|_| ConfigError::OrgUrl("cannot derive the token URL"))?;
                let dpop_key = || -> Result<Option<DpopKey>, ConfigError> {
                    if dpop {
                        Ok(Some(DpopKey::generate().map_err(|_| ConfigError::DpopKey)?))
                    } else {
                        Ok(None)
                    }
                };
                client_id_seen = Some(client_id.clone());
                let logs = Credential::OAuth(Box::new(TokenSource::with_scopes(
                    client_id.clone(),
                    key_id.clone(),
                    private_key_pem.clone(),
                    algorithm,
                    token_url.clone(),
                    changes::LOGS_SCOPE,
                    dpop_key()?,
                    config.request_timeout,
                )));
                let main = Credential::OAuth(Box::new(TokenSource::new(
                    client_id,
                    key_id,
                    private_key_pem,
                    algorithm,
                    token_url,
                    dpop_key()?,
                    config.request_timeout,
                )));
                (main, logs)
            }
        };
        let limits = Limits {
            max_rate_limit_retries: config.max_rate_limit_retries,
            max_retry_wait: config.max_retry_wait,
            max_reported_retry_after: config.max_reported_retry_after,
            max_slow_down: config.max_slow_down,
            slow_down_below: config.slow_down_below,
        };
        let in_flight = Arc::new(tokio::sync::Semaphore::new(config.max_in_flight));
        Ok(Self {
            logs: Arc::new(Transport::new(
                client.clone(),
                org.clone(),
                logs_credential,
                limits.clone(),
                &config.egress,
                Arc::clone(&in_flight),
            )),
            client_id: client_id_seen,
            inner: Arc::new(Transport::new(
                client,
                org,
                credential,
                limits,
                &config.egress,
                in_flight,
            )),
            users_in_flight: Arc::new(InFlight::default()),
        })
    }

    /// The org base URL in use.
    #[must_use]
    pub fn org_url(&self) -> &Url {
        &self.inner.org
    }

    /// The most recently observed rate-limit budget (`X-Rate-Limit-*` of the last response that carried them),
    /// or `None` before any.
    #[must_use]
    pub fn rate_budget(&self) -> Option<RateBudget> {
        self.inner.rate_budget()
    }

    /// Every observed rate-limit budget, one per endpoint bucket, sorted by bucket.
    #[must_use]
    pub fn rate_budgets(&self) -> Vec<RateBudget> {
        self.inner.rate_budgets()
    }

    /// Mints a fresh access token now, to check the service app's setup (client id, key, granted scopes, DPoP).
    /// With an SSWS token there is nothing to check offline and this returns `Ok(())`.
    ///
    /// # Errors
    /// [`TokenError`], whose message says what to fix (e.g. "the service app was not granted scope
    /// okta.users.manage").
    pub async fn check_credentials(&self) -> Result<(), TokenError> {
        match &self.inner.credential {
            Credential::Ssws(_) => Ok(()),
            Credential::OAuth(ts) => ts.fresh(&self.inner.client).await,
        }
    }

    /// `{org}/api/v1/users/{id}/{rest…}` with every segment percent-encoded.
    fn user_url(&self, id: &str, rest: &[&str]) -> Result<Url, PortError> {
        // `.` and `..` (even percent-encoded) are dot segments that URL parsing resolves, which would move the
        // request to another endpoint. No Okta id is made of dots only, so such an id names no one.
        if std::iter::once(&id)
            .chain(rest)
            .any(|s| s.is_empty() || s.chars().all(|c| c == '.'))
        {
            return Err(PortError::NotFound);
        }
        let mut u = self.inner.org.clone();
        {
            let mut segs = u.path_segments_mut().map_err(|()| PortError::Malformed)?;
            segs.clear().extend(["api", "v1", "users"]).push(id);
            for r in rest {
                segs.push(r);
            }
        }
        Ok(u)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        op: &Op,
        url: &Url,
    ) -> Result<(T, Resp), PortError> {
        let resp = self.inner.send(op, Method::GET, url, None).await?;
        if resp.status != StatusCode::OK {
            return Err(map_error(&resp, op));
        }
        let v = parse(op, &resp)?;
        Ok((v, resp))
    }

    /// `GET /api/v1/users/{id}`, shared with any read of the same user already in flight ([`InFlight`]).
    async fn fetch_user(&self, op: &Op, id: &SubjectId) -> Result<UserDto, PortError> {
        let url = self.user_url(id.as_str(), &[])?;
        match self.users_in_flight.join(url.as_str()) {
            Flight::Follower(rx) => match rx.await {
                Ok(body) => parse_body(op, &body),
                Err(_) => Ok(self.get_json::<UserDto>(op, &url).await?.0),
            },
            Flight::Leader(leader) => {
                let resp = self.inner.send(op, Method::GET, &url, None).await?;
                if resp.status != StatusCode::OK {
                    return Err(map_error(&resp, op));
                }
                let body: SharedBody = Arc::new(resp.body);
                leader.finish(&body);
                parse_body(op, &body)
            }
        }
    }

    async fn lifecycle_post(
        &self,
        op: &Op,
        id: &SubjectId,
        action: &str,
        query: Option<String>,
    ) -> Result<Resp, PortError> {
        let mut url = self.user_url(id.as_str(), &["lifecycle", action])?;
        url.set_query(query.as_deref());
        let resp = self.inner.send(op, Method::POST, &url, None).await?;
        if !resp.status.is_success() {
            return Err(map_error(&resp, op));
        }
        Ok(resp)
    }

    async fn delete(&self, op: &Op, url: &Url) -> Result<(), PortError> {
        let resp = self.inner.send(op, Method::DELETE, url, None).await?;
        if !resp.status.is_success() {
            return Err(map_error(&resp, op));
        }
        Ok(())
    }
}

fn parse<T: DeserializeOwned>(op: &Op, resp: &Resp) -> Result<T, PortError> {
    parse_body(op, &resp.body)
}

fn parse_body<T: DeserializeOwned>(op: &Op, body: &[u8]) -> Result<T, PortError> {
    serde_json::from_slice(body).map_err(|e| malformed(op, Some(&e)))
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[async_trait]
impl Directory for OktaAdapter {
    #[tracing::instrument(name = "okta.find_users", skip_all, fields(limit))]
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let expr = match expression(query) {
            None => return Err(PortError::Unsupported),
            Some(Err(_)) => return Err(PortError::Unsupported),
            Some(Ok(e)) => Zeroizing::new(e),
        };
        let limit = limit.min(MAX_SEARCH_LIMIT);
        let mut url = self
            .inner
            .org
            .join("api/v1/users")
            .map_err(|_| PortError::Malformed)?;
        let q = Zeroizing::new(format!(
            "search={}&limit={limit}",
            encode_query_value(&expr)
        ));
        url.set_query(Some(&q));
        let (users, _) = self.get_json::<Vec<UserDto>>(&OP_SEARCH, &url).await?;
        let mut out = Vec::with_capacity(users.len().min(limit));
        for u in users.into_iter().take(limit) {
            out.push(u.into_record().map_err(|_| malformed(&OP_SEARCH, None))?);
        }
        Ok(out)
    }

    #[tracing::instrument(name = "okta.get_user", skip_all)]
    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.fetch_user(&OP_GET_USER, id)
            .await?
            .into_record()
            .map_err(|_| malformed(&OP_GET_USER, None))
    }

    #[tracing::instrument(name = "okta.list_factors", skip_all)]
    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        let url = self.user_url(id.as_str(), &["factors"])?;
        let (factors, _) = self.get_json::<Vec<FactorDto>>(&OP_FACTORS, &url).await?;
        factors
            .into_iter()
            .map(|f| f.into_info().map_err(|_| malformed(&OP_FACTORS, None)))
            .collect()
    }

    #[tracing::instrument(name = "okta.groups", skip_all)]
    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        let mut url = self.user_url(id.as_str(), &["groups"])?;
        let mut out = Vec::new();
        for _ in 0..MAX_GROUP_PAGES {
            let (page, resp) = self.get_json::<Vec<GroupDto>>(&OP_GROUPS, &url).await?;
            for g in page {
                out.push(g.into_ref().map_err(|_| malformed(&OP_GROUPS, None))?);
            }
            let Some(next) = next_link(&resp.headers) else {
                return Ok(out);
            };
            let next = Url::parse(&next).map_err(|_| malformed(&OP_GROUPS, None))?;
            if !on_org(&self.inner.org, &next, USERS_PREFIX) {
                tracing::warn!(
                    op = OP_GROUPS.name,
                    "refused a next-page link that is not on the org"
                );
                return Err(PortError::Malformed);
            }
            url = next;
        }
        tracing::warn!(
            op = OP_GROUPS.name,
            pages = MAX_GROUP_PAGES,
            "too many group pages"
        );
        Err(PortError::Malformed)
    }

    #[tracing::instrument(name = "okta.risk_facts", skip_all)]
    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        let u = self.fetch_user(&OP_RISK, id).await?;
        u.subject().map_err(|_| malformed(&OP_RISK, None))?;
        Ok(u.risk_facts())
    }
}

/// A `factorResult` value, kept only if enum-shaped, for logs.
fn result_word(s: Option<&str>) -> &str {
    match s {
        Some(v)
            if !v.is_empty()
                && v.len() <= 32
                && v.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
        {
            v
        }
        Some(_) => "unrecognised",
        None => "missing",
    }
}

#[async_trait]
impl Challenger for OktaAdapter {
    #[tracing::instrument(name = "okta.push", skip_all, fields(request_id = context.request_id.as_ref().map(|r| r.as_str())))]
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        if factor.kind != FactorKind::Push {
            return Err(PortError::Unsupported);
        }
        if factor.status != FactorStatus::Active {
            return Err(PortError::InvalidState);
        }
        let url = self.user_url(subject.as_str(), &["factors", factor.id.as_str(), "verify"])?;
        let body = br#"{"useNumberMatchingChallenge":true}"#;
        let resp = self
            .inner
            .send(&OP_PUSH, Method::POST, &url, Some(body))
            .await?;
        if !resp.status.is_success() {
            return Err(map_error(&resp, &OP_PUSH));
        }
        let v: VerifyDto = parse(&OP_PUSH, &resp)?;
        if v.factor_result.as_deref() != Some("WAITING") {
            tracing::warn!(
                factor_result = result_word(v.factor_result.as_deref()),
                "push was not left waiting"
            );
            return Err(PortError::Malformed);
        }
        let number = v.correct_answer().map_err(|_| malformed(&OP_PUSH, None))?;
        if number.is_none() {
            // Not an error: the ticket says so (`number: None`), and the engine judges the push as a plain
            // approve/deny push under the policy's `push_without_number_matching` (it never verifies alone by
            // default). Logged so operators learn that Okta Verify number matching is off.
            tracing::warn!(
                "push has no number-matching challenge (is number matching enabled for Okta Verify?)"
            );
        }
        let href = v.poll_href().ok_or_else(|| malformed(&OP_PUSH, None))?;
        let poll = Url::parse(href).map_err(|_| malformed(&OP_PUSH, None))?;
        if !on_org(&self.inner.org, &poll, USERS_PREFIX) {
            tracing::warn!("refused a poll link that is not on the org");
            return Err(PortError::Malformed);
        }
        let now = Utc::now();
        let expires_at = v
            .expires()
            .unwrap_or(now + DEFAULT_PUSH_LIFETIME)
            .min(now + MAX_PUSH_LIFETIME);
        Ok(ChallengeTicket {
            factor: factor.id.clone(),
            handle: ChallengeHandle::new(href),
            number,
            expires_at,
        })
    }

    #[tracing::instrument(name = "okta.poll", skip_all)]
    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        let url = match Url::parse(ticket.handle.as_str()) {
            Ok(u) if on_org(&self.inner.org, &u, USERS_PREFIX) => u,
            _ => {
                tracing::warn!("refused to poll a handle that is not an org transaction URL");
                return Err(PortError::Malformed);
            }
        };
        let resp = self.inner.send(&OP_POLL, Method::GET, &url, None).await?;
        if resp.status != StatusCode::OK {
            let err = OktaError::parse(&resp.body);
            return match resp.status.as_u16() {
                404 => {
                    log_error(&OP_POLL, resp.status, &err);
                    Ok(ChallengeState::TimedOut)
                }
                410 | 423 => {
                    log_error(&OP_POLL, resp.status, &err);
                    Ok(ChallengeState::Failed(FailureReason::FactorInactive))
                }
                403 if err.is("E0000073") => {
                    log_error(&OP_POLL, resp.status, &err);
                    Ok(ChallengeState::Rejected)
                }
                _ => Err(map_error(&resp, &OP_POLL)),
            };
        }
        let v: VerifyDto = parse(&OP_POLL, &resp)?;
        let state = match v.factor_result.as_deref() {
            Some("WAITING") if Utc::now() > ticket.expires_at => ChallengeState::TimedOut,
            Some("WAITING") => ChallengeState::Waiting,
            Some("SUCCESS") => ChallengeState::Approved,
            Some("REJECTED") => ChallengeState::Rejected,
            Some("TIMEOUT") => ChallengeState::TimedOut,
            Some("CANCELED" | "CANCELLED") => ChallengeState::Failed(FailureReason::Cancelled),
            other => {
                tracing::warn!(factor_result = result_word(other), "unknown push result");
                ChallengeState::Failed(FailureReason::UnknownResult)
            }
        };
        Ok(state)
    }

    fn poll_budget(&self) -> Option<fctr_ports::UpstreamBudget> {
        self.inner.upstream_budget(OP_POLL.bucket)
    }

    #[tracing::instrument(name = "okta.verify_code", skip_all)]
    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        if !matches!(
            factor.kind,
            FactorKind::Totp | FactorKind::Hotp | FactorKind::HardwareOtp
        ) {
            return Err(PortError::Unsupported);
        }
        let cleaned: Zeroizing<String> = Zeroizing::new(
            code.expose_secret()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        );
        if cleaned.is_empty()
            || cleaned.len() > 64
            || !cleaned.chars().all(|c| c.is_ascii_graphic())
        {
            // Not a code any token shows; refused here without spending one of Okta's attempts.
            return Ok(CodeVerdict::Wrong);
        }
        let quoted = Zeroizing::new(
            serde_json::to_string(cleaned.as_str()).map_err(|_| PortError::Malformed)?,
        );
        let body = Zeroizing::new(format!("{{\"passCode\":{}}}", quoted.as_str()));
        let url = self.user_url(subject.as_str(), &["factors", factor.id.as_str(), "verify"])?;
        let resp = self
            .inner
            .send(&OP_CODE, Method::POST, &url, Some(body.as_bytes()))
            .await?;
        if resp.status.is_success() {
            let v: VerifyDto = parse(&OP_CODE, &resp)?;
            return match v.factor_result.as_deref() {
                Some("SUCCESS") => Ok(CodeVerdict::Accepted),
                Some("PASSCODE_REPLAYED") => Ok(CodeVerdict::Replayed),
                Some("TIME_WINDOW_EXCEEDED") => Ok(CodeVerdict::OutsideWindow),
                Some("REJECTED" | "FAILED") => Ok(CodeVerdict::Wrong),
                other => {
                    tracing::warn!(factor_result = result_word(other), "unknown code result");
                    Err(PortError::Malformed)
                }
            };
        }
        let err = OktaError::parse(&resp.body);
        let verdict = match err.code.as_deref() {
            Some("E0000068" | "E0000087") => Some(CodeVerdict::Wrong),
            Some("E0000082") => Some(CodeVerdict::Replayed),
            Some("E0000083") => Some(CodeVerdict::OutsideWindow),
            Some("E0000069") => Some(CodeVerdict::Locked),
            _ => None,
        };
        match verdict {
            Some(v) => {
                tracing::info!(
                    verdict = v.as_str(),
                    okta_error_code = err.code.as_deref().unwrap_or("-"),
                    "code refused"
                );
                Ok(v)
            }
            None => Err(map_error(&resp, &OP_CODE)),
        }
    }
}

#[async_trait]
impl IdentityProvider for OktaAdapter {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            provider: "okta".to_owned(),
            push: true,
            push_number_matching: true,
            code_verification: true,
            name_search: true,
            actions: ActionKind::ALL
                .into_iter()
                .filter(|k| *k != ActionKind::IssueTemporaryAccessPass)
                .collect::<BTreeSet<_>>(),
        }
    }
}
