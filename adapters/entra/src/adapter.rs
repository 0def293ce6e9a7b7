//! [`EntraAdapter`]: the port implementations.

mod changes;
mod reset;

use crate::config::{
    ConfigError, EntraConfig, NameSearch, TapBounds, base_url, check_client_id, check_tenant,
};
use crate::connector::Connector;
use crate::errors::{
    ENABLE_DISABLE, GROUPS_READ, METHODS_READ, METHODS_WRITE, Needs, PASSWORD, REVOKE, TAP_WRITE,
    USER_READ,
};
use crate::http::{Graph, build_client};
use crate::query::{display_name_search, name_prefix_filter, odata_string, segment, user_path};
use crate::token::{GRAPH_SCOPE, TokenError, TokenSource};
use crate::wire::{
    GraphDirectoryObject, GraphMethod, GraphTap, GraphUser, Page, USER_SELECT, delete_collection,
    parse, short_type,
};
use async_trait::async_trait;
use fctr_ports::{
    AccountStatus, Action, ActionKind, ActionReceipt, Capabilities, ChallengeContext,
    ChallengeHandle, ChallengeState, ChallengeTicket, Challenger, CodeVerdict, Directory,
    FactorInfo, FactorKind, FactorStatus, GroupRef, IdentityProvider, Lifecycle, OneTimeSecret,
    PortError, RiskFacts, SecretKind, SubjectId, UserQuery, UserRecord,
};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use url::Url;
use zeroize::Zeroizing;

/// Most users returned by one search (Graph's `$top` maximum).
const MAX_TOP: usize = 999;
/// Most pages followed for one listing (groups, methods).
const MAX_PAGES: usize = 50;
/// `ConsistencyLevel: eventual`, required by `$search` on directory objects.
const EVENTUAL: (&str, &str) = ("consistencylevel", "eventual");

/// The Microsoft Entra ID adapter: Microsoft Graph (app-only) for the directory and lifecycle, and optionally the
/// unofficial MFA connector for push and code checks. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct EntraAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    graph: Graph,
    name_search: NameSearch,
    tap: TapBounds,
    allow_password_set_on_synced_users: bool,
    connector: Option<Arc<Connector>>,
    /// fctr's app registration (client) id: how the directory audit log names fctr's own changes.
    client_id: String,
}

impl fmt::Debug for EntraAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraAdapter")
            .field("graph_base", &self.inner.graph.base.as_str())
            .field("tokens", &self.inner.graph.tokens)
            .field("name_search", &self.inner.name_search)
            .field("tap", &self.inner.tap)
            .field("connector", &self.inner.connector)
            .finish()
    }
}

impl EntraAdapter {
    /// Validates the configuration and builds the adapter (one HTTP client, token sources). Makes no request.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field at fault: a non-https URL (other than loopback http), a bad tenant or
    /// client id, an empty secret, an unusable private key or certificate reference, a zero timeout, bad TAP
    /// bounds, or bad connector settings.
    pub fn new(config: EntraConfig) -> Result<Self, ConfigError> {
        check_tenant(&config.tenant_id)?;
        check_client_id(&config.client_id, "client_id")?;
        let authority = base_url(&config.authority, "authority")?;
        let graph_base = base_url(&config.graph_base, "graph_base")?;
        let TapBounds {
            min_lifetime_minutes: min,
            max_lifetime_minutes: max,
        } = config.tap;
        if !(10..=43_200).contains(&min) || !(10..=43_200).contains(&max) || min > max {
            return Err(ConfigError::BadTapBounds);
        }
        let client = build_client(&config)?;
        let tokens = TokenSource::new(
            &authority,
            &config.tenant_id,
            &config.client_id,
            &config.credential,
            GRAPH_SCOPE,
            "credential",
        )?;
        let connector = match &config.connector {
            Some(c) => Some(Arc::new(Connector::new(
                client.clone(),
                &authority,
                &config.tenant_id,
                c,
            )?)),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                graph: Graph {
                    client,
                    base: graph_base,
                    tokens,
                    max_rate_limit_retries: config.max_rate_limit_retries,
                    max_retry_wait: config.max_retry_wait,
                    throttle: crate::http::Throttle::default(),
                },
                name_search: config.name_search,
                tap: config.tap,
                allow_password_set_on_synced_users: config.allow_password_set_on_synced_users,
                connector,
                client_id: config.client_id.clone(),
            }),
        })
    }

    /// Keeps the MFA connector's pending pushes in `coordinator` (Redis when replicas share state), so a poll on
    /// any replica sees a push another replica started. Without it they live in this process only. Does nothing
    /// without a connector; only the first call has an effect.
    pub fn share_pending_pushes(&self, coordinator: Arc<dyn fctr_ports::Coordinator>) {
        if let Some(c) = &self.inner.connector {
            c.share_pending(coordinator);
        }
    }

    /// Mints a Graph token now (and a connector token when configured), for start-up and `doctor` checks.
    ///
    /// # Errors
    /// The [`TokenError`] whose message says what to fix (wrong secret, unknown app, tenant not found, …).
    pub async fn check_credentials(&self) -> Result<(), TokenError> {
        self.inner
            .graph
            .tokens
            .check(&self.inner.graph.client)
            .await?;
        if let Some(c) = &self.inner.connector {
            c.check_credentials().await?;
        }
        Ok(())
    }

    /// The Graph application permissions the tenant granted, read from the last Graph token minted (call after
    /// [`EntraAdapter::check_credentials`]). `None` when no token is cached or it cannot be read. Compare with
    /// [`crate::USED_GRAPH_PERMISSIONS`] to see whether the app holds more than fctr needs.
    pub async fn granted_graph_permissions(&self) -> Option<Vec<String>> {
        self.inner.graph.tokens.granted_roles().await
    }

    /// The Graph token endpoint in use (also the client-assertion audience).
    #[must_use]
    pub fn token_endpoint(&self) -> &Url {
        self.inner.graph.tokens.token_url()
    }

    fn graph(&self) -> &Graph {
        &self.inner.graph
    }

    fn user_url(&self, id_or_upn: &str, rest: &str) -> Result<Url, PortError> {
        self.graph().url(&format!("{}{rest}", user_path(id_or_upn)))
    }

    async fn read_user(&self, id_or_upn: &str) -> Result<GraphUser, PortError> {
        let mut url = self.user_url(id_or_upn, "")?;
        url.query_pairs_mut().append_pair("$select", USER_SELECT);
        let resp = self.graph().get(url, &[], USER_READ).await?;
        parse(&resp.body)
    }

    /// Lists users from a `/users` query, following `@odata.nextLink` until `limit`.
    async fn list_users(
        &self,
        mut url: Url,
        headers: &[(&'static str, &'static str)],
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.graph().get(url, headers, USER_READ).await?;
            let page: Page<GraphUser> = parse(&resp.body)?;
            for u in page.value {
                if out.len() < limit {
                    out.push(u.into_record()?);
                }
            }
            match page.next_link {
                Some(next) if out.len() < limit => url = self.next_url(&next)?,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Reads every page of a collection, or fails: a partial group list could hide a protected group.
    async fn list_all<T: for<'de> serde::Deserialize<'de>>(
        &self,
        mut url: Url,
        needs: Needs,
    ) -> Result<Vec<T>, PortError> {
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.graph().get(url, &[], needs).await?;
            let page: Page<T> = parse(&resp.body)?;
            out.extend(page.value);
            match page.next_link {
                Some(next) => url = self.next_url(&next)?,
                None => return Ok(out),
            }
        }
        tracing::warn!("entra: too many pages; refusing a partial list");
        Err(PortError::Malformed)
    }

    /// A `@odata.nextLink`, accepted only on the configured Graph base.
    fn next_url(&self, link: &str) -> Result<Url, PortError> {
        let url = Url::parse(link).map_err(|_| PortError::Malformed)?;
        if self.graph().on_base(&url) {
            Ok(url)
        } else {
            tracing::warn!("entra: refused a nextLink outside the Graph base");
            Err(PortError::Malformed)
        }
    }

    fn users_url(&self) -> Result<Url, PortError> {
        self.graph().url("users")
    }

    async fn filter_users(&self, filter: &str, limit: usize) -> Result<Vec<UserRecord>, PortError> {
        let mut url = self.users_url()?;
        url.query_pairs_mut()
            .append_pair("$filter", filter)
            .append_pair("$select", USER_SELECT)
            .append_pair("$top", &limit.min(MAX_TOP).to_string());
        self.list_users(url, &[], limit).await
    }

    async fn methods(&self, id: &SubjectId) -> Result<Vec<GraphMethod>, PortError> {
        let url = self.user_url(id.as_str(), "/authentication/methods")?;
        self.list_all(url, METHODS_READ).await
    }

    async fn upn_for_connector(&self, id: &SubjectId) -> Result<Zeroizing<String>, PortError> {
        let user = self.read_user(id.as_str()).await?;
        if user.status() == AccountStatus::Disabled {
            return Err(PortError::InvalidState);
        }
        let upn = user
            .user_principal_name
            .as_deref()
            .ok_or(PortError::Malformed)?;
        Ok(Zeroizing::new(upn.to_owned()))
    }

    fn connector(&self) -> Result<&Arc<Connector>, PortError> {
        self.inner.connector.as_ref().ok_or(PortError::Unsupported)
    }

    // ---- lifecycle ----

    async fn revoke_sessions(&self, id: &SubjectId) -> Result<ActionReceipt, PortError> {
        let url = self.user_url(id.as_str(), "/revokeSignInSessions")?;
        // Any 2xx: the service answers 200 {"value": true} although 204 was documented.
        self.graph()
            .send_once(Method::POST, url, None, REVOKE)
            .await?;
        Ok(ActionReceipt::done(ActionKind::ClearSessions))
    }

    async fn set_temporary_password(&self, id: &SubjectId) -> Result<ActionReceipt, PortError> {
        if !self.inner.allow_password_set_on_synced_users {
            let user = self.read_user(id.as_str()).await?;
            if user.on_premises_sync_enabled == Some(true) {
                tracing::info!(
                    "entra: refusing a cloud password on a user synced from on-premises AD"
                );
                return Err(PortError::InvalidState);
            }
        }
        let password = crate::password::generate();
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({
                "passwordProfile": {
                    "password": password.expose_secret(),
                    "forceChangePasswordNextSignIn": true,
                    "forceChangePasswordNextSignInWithMfa": false,
                }
            }))
            .map_err(|_| PortError::Malformed)?,
        );
        let url = self.user_url(id.as_str(), "")?;
        self.graph()
            .send_once(Method::PATCH, url, Some(&body), PASSWORD)
            .await?;
        Ok(ActionReceipt {
            kind: ActionKind::ExpirePassword,
            secret: Some(OneTimeSecret {
                kind: SecretKind::TemporaryPassword,
                value: password,
                expires_at: None,
            }),
            emailed: false,
        })
    }

    async fn issue_tap(
        &self,
        id: &SubjectId,
        lifetime_minutes: u32,
        one_time: bool,
    ) -> Result<ActionReceipt, PortError> {
        let TapBounds {
            min_lifetime_minutes: min,
            max_lifetime_minutes: max,
        } = self.inner.tap;
        let lifetime = lifetime_minutes.clamp(min, max);
        let body = serde_json::to_vec(&serde_json::json!({
            "lifetimeInMinutes": lifetime,
            "isUsableOnce": one_time,
        }))
        .map_err(|_| PortError::Malformed)?;
        let url = self.user_url(id.as_str(), "/authentication/temporaryAccessPassMethods")?;
        let resp = self
            .graph()
            .send_once(Method::POST, url, Some(&body), TAP_WRITE)
            .await?;
        let tap: GraphTap = parse(&resp.body)?;
        let pass = tap
            .temporary_access_pass
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or(PortError::Malformed)?;
        let expires_at = tap.expires_at(lifetime);
        Ok(ActionReceipt {
            kind: ActionKind::IssueTemporaryAccessPass,
            secret: Some(OneTimeSecret {
                kind: SecretKind::TemporaryAccessPass,
                value: SecretString::from(pass.to_owned()),
                expires_at,
            }),
            emailed: false,
        })
    }

    async fn remove_factor(
        &self,
        id: &SubjectId,
        factor: &fctr_ports::FactorId,
    ) -> Result<ActionReceipt, PortError> {
        let methods = self.methods(id).await?;
        let method = methods
            .iter()
            .find(|m| m.id == factor.as_str())
            .ok_or(PortError::NotFound)?;
        let short = short_type(method.odata_type.as_deref());
        let collection = delete_collection(short).ok_or(PortError::Unsupported)?;
        let needs = if collection == "temporaryAccessPassMethods" {
            TAP_WRITE
        } else {
            METHODS_WRITE
        };
        let url = self.user_url(
            id.as_str(),
            &format!("/authentication/{collection}/{}", segment(factor.as_str())),
        )?;
        self.graph()
            .send_once(Method::DELETE, url, None, needs)
            .await?;
        Ok(ActionReceipt::done(ActionKind::RemoveFactor))
    }

    async fn set_enabled(
        &self,
        id: &SubjectId,
        enabled: bool,
        kind: ActionKind,
    ) -> Result<ActionReceipt, PortError> {
        let body = serde_json::to_vec(&serde_json::json!({ "accountEnabled": enabled }))
            .map_err(|_| PortError::Malformed)?;
        let url = self.user_url(id.as_str(), "")?;
        self.graph()
            .send_once(Method::PATCH, url, Some(&body), ENABLE_DISABLE)
            .await?;
        Ok(ActionReceipt::done(kind))
    }
}

#[async_trait]
impl Directory for EntraAdapter {
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let text = query.text().expose_pii();
        match query {
            UserQuery::Login(_) => {
                // UPNs and mail addresses always hold '@'; anything else cannot match.
                if !text.contains('@') {
                    return Ok(Vec::new());
                }
                match self.read_user(text).await {
                    Ok(u) => Ok(vec![u.into_record()?]),
                    // Not a UPN: the port asks logins to match e-mail addresses too.
                    Err(PortError::NotFound) => {
                        self.filter_users(&format!("mail eq {}", odata_string(text)), limit)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            UserQuery::Email(_) => {
                if !text.contains('@') {
                    return Ok(Vec::new());
                }
                self.filter_users(&format!("mail eq {}", odata_string(text)), limit)
                    .await
            }
            UserQuery::NamePrefix(_) => match self.inner.name_search {
                NameSearch::StartsWith => self.filter_users(&name_prefix_filter(text), limit).await,
                NameSearch::Search => {
                    let Some(search) = display_name_search(text) else {
                        return Ok(Vec::new());
                    };
                    let mut url = self.users_url()?;
                    url.query_pairs_mut()
                        .append_pair("$search", &search)
                        .append_pair("$select", USER_SELECT)
                        .append_pair("$top", &limit.min(MAX_TOP).to_string());
                    self.list_users(url, &[EVENTUAL], limit).await
                }
            },
            // UserQuery is non_exhaustive: a kind this adapter does not know finds nothing.
            _ => Ok(Vec::new()),
        }
    }

    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.read_user(id.as_str()).await?.into_record()
    }

    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        Ok(self
            .methods(id)
            .await?
            .into_iter()
            .filter_map(GraphMethod::into_factor)
            .collect())
    }

    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        let mut url = self.user_url(id.as_str(), "/memberOf")?;
        url.query_pairs_mut()
            .append_pair("$select", "id,displayName");
        let objects: Vec<GraphDirectoryObject> = self.list_all(url, GROUPS_READ).await?;
        Ok(objects
            .into_iter()
            .filter_map(GraphDirectoryObject::into_group)
            .collect())
    }

    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        Ok(self.read_user(id.as_str()).await?.risk_facts())
    }
}

#[async_trait]
impl Challenger for EntraAdapter {
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        _context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        let connector = self.connector()?;
        if factor.kind != FactorKind::Push {
            return Err(PortError::Unsupported);
        }
        if factor.status != FactorStatus::Active {
            return Err(PortError::InvalidState);
        }
        let upn = self.upn_for_connector(subject).await?;
        let (handle, expires_at) = connector.start_push(&upn).await?;
        Ok(ChallengeTicket {
            factor: factor.id.clone(),
            handle: ChallengeHandle::new(handle),
            number: None,
            expires_at,
        })
    }

    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        self.connector()?.poll(ticket.handle.as_str()).await
    }

    /// Graph sends no budget headers: `None`, except after a 429 with `Retry-After`, when nothing is left until
    /// then (the approval that follows a poll reads the caller's groups from Graph).
    fn poll_budget(&self) -> Option<fctr_ports::UpstreamBudget> {
        self.graph().throttle.budget()
    }

    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        let connector = self.connector()?;
        if !matches!(factor.kind, FactorKind::Totp | FactorKind::Push) {
            return Err(PortError::Unsupported);
        }
        if factor.status != FactorStatus::Active {
            return Err(PortError::InvalidState);
        }
        let digits = code.expose_secret().trim();
        if !(6..=8).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            // Not a code any authenticator shows: wrong, without asking the connector.
            return Ok(CodeVerdict::Wrong);
        }
        let code = SecretString::from(digits.to_owned());
        let upn = self.upn_for_connector(subject).await?;
        connector.verify_code(&upn, &code).await
    }
}

#[async_trait]
impl Lifecycle for EntraAdapter {
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        tracing::info!(action = action.kind().as_str(), "entra: running action");
        match action {
            Action::ClearSessions { .. } => self.revoke_sessions(subject).await,
            Action::ExpirePassword => self.set_temporary_password(subject).await,
            Action::IssueTemporaryAccessPass {
                lifetime_minutes,
                one_time,
            } => self.issue_tap(subject, *lifetime_minutes, *one_time).await,
            Action::RemoveFactor(factor) => self.remove_factor(subject, factor).await,
            Action::ResetFactors => self.reset_factors(subject).await,
            Action::Suspend => self.set_enabled(subject, false, ActionKind::Suspend).await,
            Action::Unsuspend => self.set_enabled(subject, true, ActionKind::Unsuspend).await,
            // resetPassword is delegated-only; Entra has no admin unlock call.
            _ => Err(PortError::Unsupported),
        }
    }
}

impl IdentityProvider for EntraAdapter {
    fn capabilities(&self) -> Capabilities {
        let connector = self.inner.connector.is_some();
        Capabilities {
            provider: "entra".to_owned(),
            push: connector,
            push_number_matching: false,
            code_verification: connector,
            name_search: true,
            actions: supported_actions(),
        }
    }
}

/// The actions this adapter runs.
#[must_use]
pub fn supported_actions() -> BTreeSet<ActionKind> {
    [
        ActionKind::ClearSessions,
        ActionKind::ExpirePassword,
        ActionKind::IssueTemporaryAccessPass,
        ActionKind::ResetFactors,
        ActionKind::RemoveFactor,
        ActionKind::Suspend,
        ActionKind::Unsuspend,
    ]
    .into_iter()
    .collect()
}
