//! The unofficial Azure MFA connector (`StrongAuthenticationService.svc/Connector`), as used by the NPS extension
//! and the AD FS adapter: WCF DataContract XML over HTTPS with a bearer token for the MFA client's service
//! principal. Requests are written and answers read with an XML library, never by string concatenation.

use crate::config::{ConfigError, ConnectorOtpMode, MfaConnectorConfig, check_client_id};
use crate::errors::safe_token;
use crate::http::{Req, Resp, send_authed};
use crate::token::{CONNECTOR_SCOPE, TokenSource};
use chrono::{DateTime, Utc};
use fctr_ports::{ChallengeState, CodeVerdict, Coordinator, FailureReason, PortError};
use quick_xml::Writer;
use quick_xml::events::{BytesText, Event};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use url::Url;
use zeroize::Zeroizing;

const ARRAYS_NS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
const XML: &str = "application/xml";
/// Slack on top of the push timeout for the HTTP call itself.
const CALL_SLACK: Duration = Duration::from_secs(15);
/// How long a finished push result stays readable by `poll`.
const KEEP_RESULT: Duration = Duration::from_secs(600);

/// `AuthenticationMethodId` values used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodId {
    PhoneAppNotification,
    PhoneAppOtp,
}

impl MethodId {
    fn as_str(self) -> &'static str {
        match self {
            Self::PhoneAppNotification => "PhoneAppNotification",
            Self::PhoneAppOtp => "PhoneAppOTP",
        }
    }
}

/// The fields of a `BeginTwoWayAuthenticationRequest`.
pub(crate) struct Begin<'a> {
    pub(crate) upn: &'a str,
    pub(crate) lcid: &'a str,
    pub(crate) method: MethodId,
    pub(crate) override_number_matching_with_otp: bool,
    pub(crate) context_id: &'a str,
    pub(crate) sync_call: bool,
    pub(crate) caller_name: &'a str,
}

fn leaf<W: io::Write>(w: &mut Writer<W>, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))
        .map(|_| ())
}

fn key_value<W: io::Write>(w: &mut Writer<W>, key: &str, value: &str) -> io::Result<()> {
    w.create_element("a:KeyValueOfstringstring")
        .write_inner_content(|w| {
            leaf(w, "a:Key", key)?;
            leaf(w, "a:Value", value)
        })
        .map(|_| ())
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Writes a `BeginTwoWayAuthenticationRequest` (element order as the NPS extension sends it).
pub(crate) fn begin_xml(b: &Begin<'_>) -> Result<Zeroizing<Vec<u8>>, PortError> {
    let mut w = Writer::new(Vec::with_capacity(2048));
    w.create_element("BeginTwoWayAuthenticationRequest")
        .write_inner_content(|w| {
            leaf(w, "Version", "1.0")?;
            leaf(w, "UserPrincipalName", b.upn)?;
            leaf(w, "Lcid", b.lcid)?;
            leaf(w, "AuthenticationMethodId", b.method.as_str())?;
            w.create_element("AuthenticationMethodProperties")
                .with_attribute(("xmlns:a", ARRAYS_NS))
                .write_inner_content(|w| {
                    key_value(w, "OverrideVoiceOtp", "false")?;
                    key_value(
                        w,
                        "OverrideNumberMatchingWithOTP",
                        bool_str(b.override_number_matching_with_otp),
                    )
                })?;
            leaf(w, "ContextId", b.context_id)?;
            leaf(w, "SyncCall", bool_str(b.sync_call))?;
            leaf(w, "RequireUserMatch", "true")?;
            leaf(w, "CallerName", b.caller_name)?;
            leaf(w, "CallerIP", "UNKNOWN:")
        })
        .map_err(|_| PortError::Malformed)?;
    Ok(Zeroizing::new(w.into_inner()))
}

/// Writes an `EndTwoWayAuthenticationRequest` carrying a one-time code.
pub(crate) fn end_xml(
    session_id: &str,
    context_id: &str,
    code: &str,
    upn: &str,
) -> Result<Zeroizing<Vec<u8>>, PortError> {
    let mut w = Writer::new(Vec::with_capacity(1024));
    w.create_element("EndTwoWayAuthenticationRequest")
        .write_inner_content(|w| {
            leaf(w, "Version", "1.0")?;
            leaf(w, "SessionId", session_id)?;
            leaf(w, "ContextId", context_id)?;
            leaf(w, "AdditionalAuthData", code)?;
            leaf(w, "UserPrincipalName", upn)
        })
        .map_err(|_| PortError::Malformed)?;
    Ok(Zeroizing::new(w.into_inner()))
}

/// The parts of a Begin/End answer this adapter reads. Text values are `None` when absent or `i:nil`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    /// `Result/Value` (`Success`, `PhoneAppDenied`, …).
    pub(crate) value: Option<String>,
    /// `AuthenticationResult` (`true`, `false`, `challenge`).
    pub(crate) authentication_result: Option<String>,
    /// `SessionId`.
    pub(crate) session_id: Option<String>,
    /// `AffinityUrl`.
    pub(crate) affinity_url: Option<String>,
}

impl Answer {
    fn approved(&self) -> bool {
        self.value.as_deref() == Some("Success")
            && self.authentication_result.as_deref() == Some("true")
    }
}

/// Reads a connector answer whose root element has local name `root`. Namespaces are ignored (local names
/// only); entities are limited to XML's predefined and character references (no DTD processing).
pub(crate) fn parse_answer(body: &[u8], root: &str) -> Result<Answer, PortError> {
    let text = std::str::from_utf8(body).map_err(|_| PortError::Malformed)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<(String, String, bool)> = Vec::new(); // (local name, raw text, nil)
    let mut seen_root = false;
    let mut fields: HashMap<String, Option<String>> = HashMap::new();
    loop {
        match reader.read_event().map_err(|_| PortError::Malformed)? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() {
                    if seen_root || name != root {
                        return Err(PortError::Malformed);
                    }
                    seen_root = true;
                }
                stack.push((name, String::new(), is_nil(&e)));
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() {
                    return Err(PortError::Malformed);
                }
                let path = path_of(&stack, &name);
                fields.insert(
                    path,
                    if is_nil(&e) {
                        None
                    } else {
                        Some(String::new())
                    },
                );
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.1
                        .push_str(&t.decode().map_err(|_| PortError::Malformed)?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    top.1.push('&');
                    top.1
                        .push_str(&r.decode().map_err(|_| PortError::Malformed)?);
                    top.1.push(';');
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    let raw = c.decode().map_err(|_| PortError::Malformed)?;
                    top.1.push_str(&quick_xml::escape::escape(raw.as_ref()));
                }
            }
            Event::End(_) => {
                let Some((name, raw, nil)) = stack.pop() else {
                    return Err(PortError::Malformed);
                };
                if !stack.is_empty() {
                    let path = path_of(&stack, &name);
                    let value = if nil {
                        None
                    } else {
                        Some(
                            quick_xml::escape::unescape(&raw)
                                .map_err(|_| PortError::Malformed)?
                                .into_owned(),
                        )
                    };
                    fields.insert(path, value);
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(PortError::Malformed),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !seen_root || !stack.is_empty() {
        return Err(PortError::Malformed);
    }
    let mut take = |k: &str| fields.remove(k).flatten().filter(|v| !v.is_empty());
    Ok(Answer {
        value: take("Result/Value"),
        authentication_result: take("AuthenticationResult"),
        session_id: take("SessionId"),
        affinity_url: take("AffinityUrl"),
    })
}

/// The path below the root: the names of the open elements after the root, then `name`.
fn path_of(stack: &[(String, String, bool)], name: &str) -> String {
    let mut parts: Vec<&str> = stack.iter().skip(1).map(|(n, _, _)| n.as_str()).collect();
    parts.push(name);
    parts.join("/")
}

fn is_nil(e: &quick_xml::events::BytesStart<'_>) -> bool {
    e.attributes()
        .flatten()
        .any(|a| a.key.local_name().as_ref() == b"nil" && a.value.as_ref() == b"true")
}

/// Maps a push (`SyncCall=true`) answer to a challenge state.
pub(crate) fn push_state(a: &Answer) -> ChallengeState {
    if a.approved() {
        return ChallengeState::Approved;
    }
    match a.value.as_deref() {
        Some("PhoneAppDenied" | "PhoneAppFraud") => ChallengeState::Rejected,
        Some("PhoneAppNoResponse") => ChallengeState::TimedOut,
        _ => ChallengeState::Failed(FailureReason::UnknownResult),
    }
}

/// Maps an `EndTwoWayAuthentication` answer to a code verdict; unknown outcomes are errors (never `Accepted`).
pub(crate) fn end_verdict(a: &Answer) -> Result<CodeVerdict, PortError> {
    if a.approved() {
        return Ok(CodeVerdict::Accepted);
    }
    match a.value.as_deref() {
        Some("OathCodeIncorrect") => Ok(CodeVerdict::Wrong),
        // Result codes 139 and 140 of the connector's MFA result table.
        Some("OathCodeDuplicate") => Ok(CodeVerdict::Replayed),
        Some("OathCodeOld") => Ok(CodeVerdict::OutsideWindow),
        Some("AuthenticationMethodLocked") => Ok(CodeVerdict::Locked),
        other => Err(unexpected(other)),
    }
}

fn unexpected(value: Option<&str>) -> PortError {
    PortError::Upstream {
        status: 200,
        code: Some(format!(
            "connector:{}",
            value
                .and_then(safe_token)
                .unwrap_or_else(|| "unknown".to_owned())
        )),
    }
}

/// Maps a non-2xx connector answer by status only (its body is not read).
fn http_error(resp: &Resp) -> PortError {
    match resp.status.as_u16() {
        401 => PortError::Unauthorized,
        403 => PortError::Forbidden {
            missing: Some(
                "a valid credential on the Azure Multi-Factor Auth Client service principal"
                    .to_owned(),
            ),
        },
        429 => PortError::RateLimited {
            retry_after: crate::errors::retry_after(&resp.headers),
        },
        s => PortError::Upstream {
            status: s,
            code: None,
        },
    }
}

struct PendingPush {
    expires_at: DateTime<Utc>,
    state: ChallengeState,
    forget_at: Instant,
}

/// A pending push as the other replicas read it from the [`Coordinator`]: no UPN, no caller data, keyed by the
/// random context id.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedPush {
    expires_at: DateTime<Utc>,
    state: ChallengeState,
}

/// The coordinator key of a pending push (the context id is a random UUID).
fn shared_key(handle: &str) -> String {
    format!("entra:push:{handle}")
}

/// What "waiting" means once the push should have ended: timed out.
fn settle(expires_at: DateTime<Utc>, state: ChallengeState) -> ChallengeState {
    let grace = chrono::Duration::from_std(CALL_SLACK).unwrap_or_default();
    if state == ChallengeState::Waiting && Utc::now() > expires_at + grace {
        ChallengeState::TimedOut
    } else {
        state
    }
}

/// A configured connector.
pub(crate) struct Connector {
    client: reqwest::Client,
    tokens: TokenSource,
    endpoint: Url,
    begin_url: Url,
    end_url: Url,
    lcid: String,
    caller_name: String,
    push_timeout: Duration,
    otp_mode: ConnectorOtpMode,
    max_pending: usize,
    pending: Mutex<HashMap<String, PendingPush>>,
    /// Where the other replicas read pending pushes (set once when the portal runs on shared state).
    shared: OnceLock<Arc<dyn Coordinator>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("tokens", &self.tokens)
            .field("endpoint", &self.endpoint.as_str())
            .field("otp_mode", &self.otp_mode)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub(crate) fn new(
        client: reqwest::Client,
        authority: &Url,
        tenant: &str,
        cfg: &MfaConnectorConfig,
    ) -> Result<Self, ConfigError> {
        check_client_id(&cfg.client_id, "connector.client_id")?;
        crate::config::check_connector_text(&cfg.lcid, "connector.lcid")?;
        crate::config::check_connector_text(&cfg.caller_name, "connector.caller_name")?;
        if cfg.push_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout {
                field: "connector.push_timeout",
            });
        }
        let endpoint = crate::config::base_url(&cfg.endpoint, "connector.endpoint")?;
        let begin_url =
            endpoint
                .join("BeginTwoWayAuthentication")
                .map_err(|_| ConfigError::BadUrl {
                    field: "connector.endpoint",
                })?;
        let end_url =
            endpoint
                .join("EndTwoWayAuthentication")
                .map_err(|_| ConfigError::BadUrl {
                    field: "connector.endpoint",
                })?;
        let tokens = TokenSource::new(
            authority,
            tenant,
            &cfg.client_id,
            &cfg.credential,
            CONNECTOR_SCOPE,
            "connector.credential",
        )?;
        Ok(Self {
            client,
            tokens,
            endpoint,
            begin_url,
            end_url,
            lcid: cfg.lcid.clone(),
            caller_name: cfg.caller_name.clone(),
            push_timeout: cfg.push_timeout,
            otp_mode: cfg.otp_mode,
            max_pending: cfg.max_pending_pushes.max(1),
            pending: Mutex::new(HashMap::new()),
            shared: OnceLock::new(),
        })
    }

    /// Keeps pending pushes where every replica can read them, so a poll that lands on another replica than the
    /// one that started the push sees its outcome. Only the first call has an effect.
    pub(crate) fn share_pending(&self, coordinator: Arc<dyn Coordinator>) {
        if self.shared.set(coordinator).is_err() {
            tracing::debug!("entra: pending pushes already shared");
        }
    }

    /// Writes a push's state for the other replicas.
    async fn put_shared(&self, handle: &str, push: &SharedPush) -> Result<(), PortError> {
        let Some(c) = self.shared.get() else {
            return Ok(());
        };
        let value = serde_json::to_vec(push).map_err(|_| PortError::Malformed)?;
        c.put(
            &shared_key(handle),
            value,
            self.push_timeout + CALL_SLACK + KEEP_RESULT,
        )
        .await
    }

    pub(crate) async fn check_credentials(&self) -> Result<(), crate::TokenError> {
        self.tokens.check(&self.client).await
    }

    async fn post(&self, url: Url, body: &[u8], timeout: Duration) -> Result<Resp, PortError> {
        let req = Req {
            method: Method::POST,
            url,
            headers: &[("accept", XML)],
            body: Some((body, XML)),
            timeout: Some(timeout),
        };
        send_authed(&self.client, &self.tokens, &req).await
    }

    /// Starts a push: checks the credential now (so configuration errors surface here), then runs the blocking
    /// `SyncCall=true` request in a background task whose outcome [`Connector::poll`] reads.
    pub(crate) async fn start_push(
        self: &Arc<Self>,
        upn: &str,
    ) -> Result<(String, DateTime<Utc>), PortError> {
        self.tokens
            .token(&self.client)
            .await
            .map_err(PortError::from)?;
        let context_id = uuid::Uuid::new_v4().to_string();
        let body = begin_xml(&Begin {
            upn,
            lcid: &self.lcid,
            method: MethodId::PhoneAppNotification,
            override_number_matching_with_otp: false,
            context_id: &context_id,
            sync_call: true,
            caller_name: &self.caller_name,
        })?;
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.push_timeout).map_err(|_| PortError::Malformed)?;
        // Recorded where every replica can read it BEFORE the push goes out: a push nobody could follow is not sent.
        let waiting = SharedPush {
            expires_at,
            state: ChallengeState::Waiting,
        };
        self.put_shared(&context_id, &waiting).await?;
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            pending.retain(|_, p| p.forget_at > now);
            let waiting = pending
                .values()
                .filter(|p| p.state == ChallengeState::Waiting)
                .count();
            if waiting >= self.max_pending {
                return Err(PortError::RateLimited { retry_after: None });
            }
            pending.insert(
                context_id.clone(),
                PendingPush {
                    expires_at,
                    state: ChallengeState::Waiting,
                    forget_at: now + self.push_timeout + CALL_SLACK + KEEP_RESULT,
                },
            );
        }
        let this = Arc::clone(self);
        let handle = context_id.clone();
        tokio::spawn(async move {
            let state = this.run_push(&body).await;
            tracing::info!(outcome = ?state, "entra: connector push finished");
            let done = SharedPush {
                expires_at,
                state: state.clone(),
            };
            {
                let mut pending = this.pending.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(p) = pending.get_mut(&handle) {
                    p.state = state;
                }
            }
            if let Err(e) = this.put_shared(&handle, &done).await {
                // The other replicas see the push wait, then time out: never a false approval.
                tracing::warn!(error = e.code(), "entra: push outcome not shared");
            }
        });
        Ok((context_id, expires_at))
    }

    async fn run_push(&self, body: &[u8]) -> ChallengeState {
        let resp = match self
            .post(self.begin_url.clone(), body, self.push_timeout + CALL_SLACK)
            .await
        {
            Ok(r) => r,
            Err(PortError::Timeout) => return ChallengeState::TimedOut,
            Err(e) => {
                tracing::warn!(error = e.code(), "entra: connector push request failed");
                return ChallengeState::Failed(FailureReason::IdpError);
            }
        };
        if !resp.status.is_success() {
            tracing::warn!(
                status = resp.status.as_u16(),
                "entra: connector refused the push"
            );
            return ChallengeState::Failed(FailureReason::IdpError);
        }
        match parse_answer(&resp.body, "BeginTwoWayAuthenticationResponse") {
            Ok(a) => {
                tracing::debug!(result = ?a.value.as_deref().and_then(safe_token), "entra: connector push answer");
                push_state(&a)
            }
            Err(_) => ChallengeState::Failed(FailureReason::UnknownResult),
        }
    }

    /// The state of a push started by this process or, with shared pending pushes, by another replica.
    ///
    /// # Errors
    /// [`PortError::Unavailable`] when the shared store cannot be read.
    pub(crate) async fn poll(&self, handle: &str) -> Result<ChallengeState, PortError> {
        let local = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            pending.retain(|_, p| p.forget_at > now);
            pending
                .get(handle)
                .map(|p| settle(p.expires_at, p.state.clone()))
        };
        if let Some(state) = local {
            return Ok(state);
        }
        let Some(c) = self.shared.get() else {
            return Ok(ChallengeState::Failed(FailureReason::UnknownResult));
        };
        Ok(match c.get(&shared_key(handle)).await? {
            Some(v) => match serde_json::from_slice::<SharedPush>(&v) {
                Ok(p) => settle(p.expires_at, p.state),
                Err(_) => ChallengeState::Failed(FailureReason::UnknownResult),
            },
            None => ChallengeState::Failed(FailureReason::UnknownResult),
        })
    }

    /// Checks a one-time code: Begin (OTP mode) must answer with a challenge, then End carries the code.
    pub(crate) async fn verify_code(
        &self,
        upn: &str,
        code: &SecretString,
    ) -> Result<CodeVerdict, PortError> {
        let context_id = uuid::Uuid::new_v4().to_string();
        let (method, sync_call) = match self.otp_mode {
            ConnectorOtpMode::NumberMatchingOverride => (MethodId::PhoneAppNotification, true),
            ConnectorOtpMode::PhoneAppOtp => (MethodId::PhoneAppOtp, false),
        };
        let body = begin_xml(&Begin {
            upn,
            lcid: &self.lcid,
            method,
            override_number_matching_with_otp: true,
            context_id: &context_id,
            sync_call,
            caller_name: &self.caller_name,
        })?;
        let timeout = if sync_call {
            self.push_timeout + CALL_SLACK
        } else {
            Duration::from_secs(30)
        };
        let resp = self.post(self.begin_url.clone(), &body, timeout).await?;
        if !resp.status.is_success() {
            return Err(http_error(&resp));
        }
        let begin = parse_answer(&resp.body, "BeginTwoWayAuthenticationResponse")?;
        let challenged = match begin.authentication_result.as_deref() {
            Some("challenge") => true,
            None => self.otp_mode == ConnectorOtpMode::PhoneAppOtp,
            _ => false,
        };
        if !challenged {
            if begin.value.as_deref() == Some("AuthenticationMethodLocked") {
                return Ok(CodeVerdict::Locked);
            }
            tracing::warn!(
                result = ?begin.value.as_deref().and_then(safe_token),
                authentication_result = ?begin.authentication_result.as_deref().and_then(safe_token),
                "entra: connector did not ask for a code; refusing to treat this as a code check"
            );
            return Err(unexpected(begin.value.as_deref()));
        }
        let session_id = begin
            .session_id
            .as_deref()
            .filter(|s| s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .ok_or(PortError::Malformed)?;
        let end_url = self.end_url_for(begin.affinity_url.as_deref());
        let body = end_xml(session_id, &context_id, code.expose_secret(), upn)?;
        let resp = self.post(end_url, &body, Duration::from_secs(30)).await?;
        if !resp.status.is_success() {
            return Err(http_error(&resp));
        }
        let end = parse_answer(&resp.body, "EndTwoWayAuthenticationResponse")?;
        let verdict = end_verdict(&end);
        tracing::info!(verdict = ?verdict.as_ref().map(|v| v.as_str()).map_err(|e| e.code()), "entra: connector code check finished");
        verdict
    }

    /// The End URL: always the configured endpoint (a bearer token is never sent to a host taken from an
    /// answer); only the affinity `dc` parameter is copied, when it is a short alphanumeric value.
    pub(crate) fn end_url_for(&self, affinity: Option<&str>) -> Url {
        let mut url = self.end_url.clone();
        let dc = affinity
            .and_then(|a| Url::parse(a).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "dc")
                    .map(|(_, v)| v.into_owned())
            })
            .filter(|v| {
                !v.is_empty() && v.len() <= 16 && v.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if let Some(dc) = dc {
            url.query_pairs_mut().append_pair("dc", &dc);
        }
        url
    }
}

#[cfg(test)]
mod tests;
