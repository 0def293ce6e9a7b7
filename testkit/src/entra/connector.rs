//! The unofficial Azure MFA connector (`StrongAuthenticationService.svc/Connector`), as the NPS extension and the
//! AD FS adapter call it: `BeginTwoWayAuthentication` / `EndTwoWayAuthentication`, WCF DataContract XML, a bearer
//! token for the MFA client's service principal.
//!
//! - Push (`PhoneAppNotification`, `OverrideNumberMatchingWithOTP=false`): with `SyncCall=true` the request
//!   blocks until the simulated phone answers or the push times out (`Success`+`true`, `PhoneAppDenied`,
//!   `PhoneAppNoResponse`); with `SyncCall=false` Begin answers at once with a `SessionId`, an `AffinityUrl` and a
//!   `ValidEntropyNumber` the phone must pick, and `EndTwoWayAuthentication` polls (`AuthenticationPending`,
//!   `Retry=true`) until a final result.
//! - Codes: `PhoneAppNotification` with `OverrideNumberMatchingWithOTP=true` (every Authenticator user in the fake
//!   has number matching, so the NPS extension's override applies) or `PhoneAppOTP` answer
//!   `AuthenticationResult=challenge`; End with `AdditionalAuthData` checks an RFC 6238 code: `Success`,
//!   `OathCodeIncorrect`, `OathCodeDuplicate` (the step was already used), `OathCodeOld` (an earlier step than
//!   one used), `AuthenticationMethodLocked` after too many wrong codes.
//! - `OneWaySMS` sends a code (see [`super::Effects::last_sms_code`]); `TwoWayVoiceMobile` rings the simulated
//!   phone like a push.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rand::Rng as _;

use super::FakeEntraState;
use super::error::uuid_v4;
use super::state::{MethodKind, PushState, Session, SessionKind};
use super::token::{bearer, is_mfa_client};
use crate::common::totp;
use crate::common::util::ct_eq;
use crate::server::phones::Push;

/// The namespace the fake's answers carry (the real one is not documented; clients read local names).
const NS: &str = "http://schemas.datacontract.org/2004/07/Microsoft.StrongAuthentication.Connector";
const NS_I: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A parsed request: leaf texts by local-name path below the root, and the method property pairs.
#[derive(Debug, Default)]
pub(crate) struct XmlRequest {
    pub root: String,
    pub fields: HashMap<String, String>,
    pub properties: Vec<(String, String)>,
}

impl XmlRequest {
    fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn prop(&self, k: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a connector request. No DTDs; local names only.
pub(crate) fn parse_xml(body: &[u8]) -> Result<XmlRequest, ()> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).map_err(|_| ())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut out = XmlRequest::default();
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut pending_key: Option<String> = None;
    loop {
        match reader.read_event().map_err(|_| ())? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() {
                    if !out.root.is_empty() {
                        return Err(());
                    }
                    out.root.clone_from(&name);
                }
                stack.push((name, String::new()));
            }
            Event::Empty(e) => {
                if stack.is_empty() {
                    return Err(());
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut path: Vec<&str> = stack.iter().skip(1).map(|(n, _)| n.as_str()).collect();
                path.push(&name);
                out.fields.insert(path.join("/"), String::new());
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.1.push_str(&t.decode().map_err(|_| ())?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.decode().map_err(|_| ())?;
                    let ch = match name.as_ref() {
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "amp" => "&".to_owned(),
                        "quot" => "\"".to_owned(),
                        "apos" => "'".to_owned(),
                        other => {
                            let code = other
                                .strip_prefix("#x")
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .or_else(|| other.strip_prefix('#').and_then(|d| d.parse().ok()))
                                .and_then(char::from_u32)
                                .ok_or(())?;
                            code.to_string()
                        }
                    };
                    top.1.push_str(&ch);
                }
            }
            Event::End(_) => {
                let (name, text) = stack.pop().ok_or(())?;
                if stack.is_empty() {
                    continue;
                }
                let parent = stack.last().map(|(n, _)| n.as_str()).unwrap_or("");
                if parent == "KeyValueOfstringstring" {
                    if name == "Key" {
                        pending_key = Some(text.clone());
                    } else if name == "Value" {
                        if let Some(k) = pending_key.take() {
                            out.properties.push((k, text.clone()));
                        }
                    }
                }
                let mut path: Vec<&str> = stack.iter().skip(1).map(|(n, _)| n.as_str()).collect();
                path.push(&name);
                out.fields.insert(path.join("/"), text);
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(()),
            _ => {}
        }
    }
    if out.root.is_empty() || !stack.is_empty() {
        return Err(());
    }
    Ok(out)
}

fn esc(s: &str) -> String {
    crate::common::util::html_escape(s).replace("&#39;", "&apos;")
}

/// What a Begin or End answer says.
#[derive(Debug, Default)]
struct Answer<'a> {
    value: &'a str,
    message: Option<&'a str>,
    retry: bool,
    auth_result: Option<&'a str>,
    session_id: Option<String>,
    upn: Option<String>,
    affinity: Option<String>,
    entropy: Option<u8>,
    completed_interactively: Option<bool>,
}

fn nil_or(name: &str, v: Option<&str>) -> String {
    match v {
        Some(v) => format!("<{name}>{}</{name}>", esc(v)),
        None => format!("<{name} i:nil=\"true\"/>"),
    }
}

/// Renders an answer (DataContract: members in alphabetical order).
fn render(root: &str, a: &Answer<'_>) -> Response {
    let mut x = format!("<{root} xmlns=\"{NS}\" xmlns:i=\"{NS_I}\">");
    if root.starts_with("Begin") {
        x.push_str(&nil_or("AffinityUrl", a.affinity.as_deref()));
    }
    x.push_str(&nil_or("AuthenticationResult", a.auth_result));
    if let Some(c) = a.completed_interactively {
        x.push_str(&format!(
            "<CompletedInteractively>{c}</CompletedInteractively>"
        ));
    }
    x.push_str(&format!(
        "<Result><Error i:nil=\"true\"/><Exception i:nil=\"true\"/>{}<RenewCert>false</RenewCert><Retry>{}</Retry><Value>{}</Value></Result>",
        nil_or("Message", a.message),
        a.retry,
        esc(a.value)
    ));
    x.push_str(&nil_or("SessionId", a.session_id.as_deref()));
    x.push_str(&nil_or("UserPrincipalName", a.upn.as_deref()));
    if root.starts_with("Begin") {
        let e = a.entropy.map(|n| n.to_string());
        x.push_str(&nil_or("ValidEntropyNumber", e.as_deref()));
    }
    x.push_str(&format!("<Version>1.0</Version></{root}>"));
    let mut resp = (StatusCode::OK, x).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    resp
}

fn plain(status: StatusCode, msg: &'static str) -> Response {
    let mut resp = (status, msg).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// `POST …/Connector/{op}`.
pub(crate) async fn handle(
    State(st): State<FakeEntraState>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let token = match bearer(&st, &headers, "connector") {
        Ok(t) => t,
        Err(_) => {
            return plain(
                StatusCode::UNAUTHORIZED,
                "The bearer token is missing, expired or not for this service.",
            );
        }
    };
    if !is_mfa_client(&token) {
        return plain(
            StatusCode::FORBIDDEN,
            "Only the Azure Multi-Factor Auth Client service principal may call the connector.",
        );
    }
    let xml_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("xml"));
    if !xml_ct {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/xml.",
        );
    }
    let Ok(req) = parse_xml(&body) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "The request body is not valid XML.",
        );
    };
    match op.as_str() {
        "BeginTwoWayAuthentication" if req.root == "BeginTwoWayAuthenticationRequest" => {
            begin(&st, &req).await
        }
        "EndTwoWayAuthentication" if req.root == "EndTwoWayAuthenticationRequest" => end(&st, &req),
        "BeginTwoWayAuthentication" | "EndTwoWayAuthentication" => plain(
            StatusCode::BAD_REQUEST,
            "The root element does not match the operation.",
        ),
        _ => plain(StatusCode::NOT_FOUND, "Unknown connector operation."),
    }
}

const BEGIN: &str = "BeginTwoWayAuthenticationResponse";
const END: &str = "EndTwoWayAuthenticationResponse";

fn fail(root: &str, value: &'static str, upn: Option<&str>) -> Response {
    render(
        root,
        &Answer {
            value,
            auth_result: Some("false"),
            upn: upn.map(str::to_owned),
            ..Answer::default()
        },
    )
}

fn affinity(st: &FakeEntraState) -> String {
    format!(
        "{}/EndTwoWayAuthentication?dc=FAKE1",
        st.shared.cfg.connector()
    )
}

async fn begin(st: &FakeEntraState, req: &XmlRequest) -> Response {
    let Some(upn) = req.get("UserPrincipalName") else {
        return fail(BEGIN, "InvalidParameter", None);
    };
    let override_otp = req
        .prop("OverrideNumberMatchingWithOTP")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let sync = !req
        .get("SyncCall")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let now = st.shared.now();
    let threshold = st.shared.cfg.lockout_threshold;
    let (user_id, upn, kind, number, sms_code) = {
        let mut inner = st.shared.lock();
        let Some(i) = inner.user_idx(upn) else {
            return fail(BEGIN, "UserNotFound", Some(upn));
        };
        let u = &mut inner.users[i];
        let has = |k: MethodKind| u.methods.iter().any(|m| m.kind == k);
        let authenticator = has(MethodKind::Authenticator);
        let oath = authenticator || has(MethodKind::SoftwareOath);
        let phone = has(MethodKind::Phone);
        let method = req
            .get("AuthenticationMethodId")
            .unwrap_or(if authenticator {
                "PhoneAppNotification"
            } else if phone {
                "OneWaySMS"
            } else {
                "None"
            });
        let locked = threshold > 0 && u.effects.consecutive_otp_failures >= threshold;
        let kind = match method {
            "PhoneAppNotification" if !authenticator => {
                return fail(BEGIN, "PhoneAppNotificationFailed", Some(&u.upn));
            }
            "PhoneAppNotification" if override_otp => SessionKind::Otp,
            "PhoneAppNotification" => SessionKind::Push,
            "PhoneAppOTP" if !oath => {
                return fail(BEGIN, "PhoneAppNotificationFailed", Some(&u.upn));
            }
            "PhoneAppOTP" => SessionKind::Otp,
            "OneWaySMS" | "TwoWayVoiceMobile" if !phone => {
                return fail(BEGIN, "UserVoiceAuthFailedPhoneUnreachable", Some(&u.upn));
            }
            "OneWaySMS" => SessionKind::Sms,
            "TwoWayVoiceMobile" => SessionKind::Voice,
            _ => return fail(BEGIN, "InvalidParameter", Some(&u.upn)),
        };
        if kind == SessionKind::Otp && locked {
            return fail(BEGIN, "AuthenticationMethodLocked", Some(&u.upn));
        }
        let mut rng = rand::thread_rng();
        let number = (kind == SessionKind::Push && !sync).then(|| rng.gen_range(10..=99u8));
        let sms_code =
            (kind == SessionKind::Sms).then(|| format!("{:06}", rng.gen_range(0..1_000_000u32)));
        match kind {
            SessionKind::Push | SessionKind::Voice => u.effects.pushes_sent += 1,
            SessionKind::Sms => {
                u.effects.sms_sent += 1;
                u.effects.last_sms_code.clone_from(&sms_code);
            }
            SessionKind::Otp => {}
        }
        (u.id.clone(), u.upn.clone(), kind, number, sms_code)
    };
    let session_id = uuid_v4();
    let choices = number
        .map(|n| {
            let mut c = vec![n];
            let mut rng = rand::thread_rng();
            while c.len() < 3 {
                let x = rng.gen_range(10..=99u8);
                if !c.contains(&x) {
                    c.push(x);
                }
            }
            c.sort_unstable();
            c
        })
        .unwrap_or_default();
    let timeout = chrono::Duration::from_std(st.shared.cfg.push_timeout).unwrap_or_default();
    let session = Session {
        id: session_id.clone(),
        context_id: req.get("ContextId").unwrap_or("").to_owned(),
        user_id,
        kind,
        push: Push::new(number, choices, now, timeout),
        sync_call: sync,
        caller_name: req.get("CallerName").map(str::to_owned),
        sms_code,
        finished: false,
    };
    {
        let mut inner = st.shared.lock();
        let horizon = now - chrono::Duration::hours(1);
        inner.sessions.retain(|_, s| s.push.expires_at > horizon);
        inner.sessions.insert(session_id.clone(), session);
    }
    match kind {
        SessionKind::Otp | SessionKind::Sms => render(
            BEGIN,
            &Answer {
                value: "Success",
                auth_result: Some("challenge"),
                session_id: Some(session_id),
                upn: Some(upn),
                affinity: Some(affinity(st)),
                ..Answer::default()
            },
        ),
        SessionKind::Push | SessionKind::Voice if !sync => render(
            BEGIN,
            &Answer {
                value: "Success",
                auth_result: None,
                session_id: Some(session_id),
                upn: Some(upn),
                affinity: Some(affinity(st)),
                entropy: number,
                ..Answer::default()
            },
        ),
        SessionKind::Push | SessionKind::Voice => {
            let state = wait_final(st, &session_id).await;
            let (value, result) = final_result(kind, state);
            if let Some(s) = st.shared.lock().sessions.get_mut(&session_id) {
                s.finished = true;
            }
            render(
                BEGIN,
                &Answer {
                    value,
                    auth_result: Some(result),
                    session_id: Some(session_id),
                    upn: Some(upn),
                    affinity: Some(affinity(st)),
                    ..Answer::default()
                },
            )
        }
    }
}

/// Blocks (polling the fake clock) until the session is no longer waiting.
async fn wait_final(st: &FakeEntraState, id: &str) -> PushState {
    let deadline =
        tokio::time::Instant::now() + st.shared.cfg.push_timeout + Duration::from_secs(5);
    loop {
        let now = st.shared.now();
        let state = st
            .shared
            .lock()
            .sessions
            .get(id)
            .map_or(PushState::TimedOut, |s| s.push.state_at(now));
        if state != PushState::Waiting {
            return state;
        }
        if tokio::time::Instant::now() >= deadline {
            return PushState::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn final_result(kind: SessionKind, state: PushState) -> (&'static str, &'static str) {
    match (kind, state) {
        (_, PushState::Approved) => ("Success", "true"),
        (SessionKind::Voice, PushState::Denied) => ("UserVoiceAuthFailedPhoneHungUp", "false"),
        (SessionKind::Voice, _) => ("UserVoiceAuthFailedCallWentToVoicemail", "false"),
        (_, PushState::Denied) => ("PhoneAppDenied", "false"),
        (_, _) => ("PhoneAppNoResponse", "false"),
    }
}

fn end(st: &FakeEntraState, req: &XmlRequest) -> Response {
    let now = st.shared.now();
    let threshold = st.shared.cfg.lockout_threshold;
    let mut inner = st.shared.lock();
    let Some(session) = req
        .get("SessionId")
        .and_then(|id| inner.sessions.get(id))
        .filter(|s| !s.finished)
        .cloned()
    else {
        return fail(END, "InvalidSessionId", req.get("UserPrincipalName"));
    };
    let Some(ui) = inner.user_idx_by_id(&session.user_id) else {
        return fail(END, "InvalidSessionId", None);
    };
    let upn = inner.users[ui].upn.clone();
    if req
        .get("UserPrincipalName")
        .is_some_and(|u| !u.eq_ignore_ascii_case(&upn))
    {
        return fail(END, "InvalidSessionId", req.get("UserPrincipalName"));
    }
    let answer = |value: &'static str, result: Option<&'static str>, retry: bool| {
        render(
            END,
            &Answer {
                value,
                retry,
                message: retry
                    .then_some("The authentication has not been completed yet, please try again."),
                auth_result: result,
                session_id: Some(session.id.clone()),
                upn: Some(upn.clone()),
                completed_interactively: result.map(|r| r == "true"),
                ..Answer::default()
            },
        )
    };
    let finish = |inner: &mut super::state::Inner| {
        if let Some(s) = inner.sessions.get_mut(&session.id) {
            s.finished = true;
        }
    };
    match session.kind {
        SessionKind::Push | SessionKind::Voice => {
            let state = session.push.state_at(now);
            if state == PushState::Waiting {
                return answer("AuthenticationPending", None, true);
            }
            finish(&mut inner);
            let (value, result) = final_result(session.kind, state);
            answer(value, Some(result), false)
        }
        SessionKind::Sms => {
            let code = req.get("AdditionalAuthData").unwrap_or("");
            finish(&mut inner);
            let ok = session
                .sms_code
                .as_deref()
                .is_some_and(|c| ct_eq(c, code.trim()))
                && now < session.push.expires_at;
            if ok {
                inner.users[ui].effects.otp_successes += 1;
                answer("Success", Some("true"), false)
            } else {
                inner.users[ui].effects.otp_failures += 1;
                answer("SMSAuthFailedWrongCodeEntered", Some("false"), false)
            }
        }
        SessionKind::Otp => {
            let code = req
                .get("AdditionalAuthData")
                .unwrap_or("")
                .trim()
                .to_owned();
            finish(&mut inner);
            let u = &mut inner.users[ui];
            if threshold > 0 && u.effects.consecutive_otp_failures >= threshold {
                return answer("AuthenticationMethodLocked", Some("false"), false);
            }
            let current = totp::step_at(now.timestamp());
            let step = u
                .totp_secret
                .as_ref()
                .filter(|_| code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()))
                .and_then(|s| totp::find_step(s, &code, current, 1))
                .map(|off| current + off);
            match (step, u.last_otp_step) {
                (Some(s), Some(last)) if s <= last => {
                    u.effects.otp_failures += 1;
                    let value = if s == last {
                        "OathCodeDuplicate"
                    } else {
                        "OathCodeOld"
                    };
                    answer(value, Some("false"), false)
                }
                (Some(s), _) => {
                    u.last_otp_step = Some(s);
                    u.effects.otp_successes += 1;
                    u.effects.consecutive_otp_failures = 0;
                    u.last_sign_in = Some(Utc::now());
                    answer("Success", Some("true"), false)
                }
                (None, _) => {
                    u.effects.otp_failures += 1;
                    u.effects.consecutive_otp_failures += 1;
                    if threshold > 0 && u.effects.consecutive_otp_failures >= threshold {
                        answer("AuthenticationMethodLocked", Some("false"), false)
                    } else {
                        answer("OathCodeIncorrect", Some("false"), false)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_with_namespaces_and_properties() {
        let body = br#"<?xml version="1.0"?><BeginTwoWayAuthenticationRequest xmlns="x"><Version>1.0</Version><UserPrincipalName>a&amp;b@x.com</UserPrincipalName><AuthenticationMethodProperties xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays"><a:KeyValueOfstringstring><a:Key>OverrideVoiceOtp</a:Key><a:Value>false</a:Value></a:KeyValueOfstringstring><a:KeyValueOfstringstring><a:Key>OverrideNumberMatchingWithOTP</a:Key><a:Value>true</a:Value></a:KeyValueOfstringstring></AuthenticationMethodProperties><SyncCall>true</SyncCall><TenantId i:nil="true" xmlns:i="y"/></BeginTwoWayAuthenticationRequest>"#;
        let r = parse_xml(body).unwrap();
        assert_eq!(r.root, "BeginTwoWayAuthenticationRequest");
        assert_eq!(r.get("UserPrincipalName"), Some("a&b@x.com"));
        assert_eq!(r.prop("OverrideNumberMatchingWithOTP"), Some("true"));
        assert_eq!(r.get("SyncCall"), Some("true"));
        assert!(parse_xml(b"<!DOCTYPE x [<!ENTITY e \"x\">]><A>&e;</A>").is_err());
        assert!(parse_xml(b"<A><B></A>").is_err());
        assert!(parse_xml(b"not xml").is_err());
    }
}
