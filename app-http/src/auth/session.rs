//! The session loader (one for the pages and the API) and the portal's cookies.

use super::role::{ROLE_RECHECK_EVERY, current, rechecks};
use crate::session::Session;
use crate::state::{AppState, Settings};
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use fctr_core::{Agent, RequestContext};
use fctr_ports::{PortError, Reason};

/// Longest cookie value taken for a session id (ours are 43 characters): anything longer is no session and is
/// not looked up, so made-up cookies cost nothing.
pub(crate) const MAX_ID_LEN: usize = 100;

/// The session id the request's cookie names, if it could be one (at most [`MAX_ID_LEN`] characters).
pub(crate) fn session_id(st: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, st.settings().session_cookie()).filter(|id| id.len() <= MAX_ID_LEN)
}

/// A cookie's value, from every `Cookie` header of the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_owned())
}

/// The session the cookie names, for the pages and the API alike: the id capped at [`MAX_ID_LEN`]; touched (the
/// idle timeout restarts; a timed-out session is removed by the store); and its role re-checked when the last
/// check is older than [`ROLE_RECHECK_EVERY`]. A revoked agent's session is removed here and `None` returned.
///
/// # Errors
/// The session store cannot be reached: the caller refuses the request (503) rather than guess.
pub(crate) async fn load(
    st: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> Result<Option<Session>, PortError> {
    let Some(id) = session_id(st, headers) else {
        return Ok(None);
    };
    let Some(mut s) = st.sessions().touch(&id).await? else {
        return Ok(None);
    };
    let now = st.0.clock.now();
    if rechecks(st) && now - s.role_checked >= ROLE_RECHECK_EVERY {
        let agent = agent_of(st, &s);
        match current(st, &agent, ctx).await {
            Ok(a) => {
                let role = a.role().map(str::to_owned);
                // Not stored (the store failed meanwhile): this request still uses the fresh role, and the
                // next one checks again.
                if st
                    .sessions()
                    .set_role(&s.id, role.clone(), now)
                    .await
                    .is_err()
                {
                    tracing::warn!("session store: re-checked role not stored");
                }
                s.role = role;
                s.role_checked = now;
            }
            Err(d) if d.reason == Reason::AgentRoleRevoked => {
                st.sessions().remove(&s.id).await?;
                return Ok(None);
            }
            // The IdP cannot be read: a view keeps the previous role; the next request tries again.
            Err(_) => {}
        }
    }
    Ok(Some(s))
}

/// The agent a session stands for, with its stored role.
pub(crate) fn agent_of(st: &AppState, s: &Session) -> Agent {
    st.engine()
        .restore_agent(s.agent.clone(), s.role.as_deref())
}

/// A portal cookie: `Path=/`, `HttpOnly`, the given `SameSite`, `Secure` unless the portal is plain-HTTP
/// loopback, and `Max-Age` when given (0 clears it).
pub(crate) fn set_cookie(
    settings: &Settings,
    name: &'static str,
    value: String,
    same_site: SameSite,
    max_age_secs: Option<i64>,
) -> Cookie<'static> {
    let mut c = Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(settings.secure_cookies());
    if let Some(a) = max_age_secs {
        c = c.max_age(cookie::time::Duration::seconds(a));
    }
    c.build()
}

/// The display-name cookie: the name base64url-encoded (cookie-safe), `SameSite=Strict`, `HttpOnly`, for the
/// browser's session. Display only: an agent who edits it changes only what their own header says.
pub(crate) fn name_cookie(settings: &Settings, name: &str) -> Cookie<'static> {
    use base64::Engine as _;
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name.as_bytes());
    set_cookie(
        settings,
        settings.name_cookie(),
        value,
        SameSite::Strict,
        None,
    )
}

/// Clears the display-name cookie.
pub(crate) fn clear_name_cookie(settings: &Settings) -> Cookie<'static> {
    set_cookie(
        settings,
        settings.name_cookie(),
        String::new(),
        SameSite::Strict,
        Some(0),
    )
}

/// The agent's display name from their name cookie: valid UTF-8, no control characters, at most 80 characters;
/// empty otherwise.
pub(crate) fn agent_name(st: &AppState, headers: &HeaderMap) -> String {
    use base64::Engine as _;
    cookie(headers, st.settings().name_cookie())
        .filter(|v| v.len() <= 440)
        .and_then(|v| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.chars().any(char::is_control) && s.chars().count() <= 80)
        .unwrap_or_default()
}

/// The session cookie, `SameSite=Strict`, for the browser's session.
pub(crate) fn session_cookie(settings: &Settings, id: String) -> Cookie<'static> {
    set_cookie(
        settings,
        settings.session_cookie(),
        id,
        SameSite::Strict,
        None,
    )
}

/// Clears the session cookie (the session itself is removed from the store by the caller).
pub(crate) fn clear_session_cookie(settings: &Settings) -> Cookie<'static> {
    set_cookie(
        settings,
        settings.session_cookie(),
        String::new(),
        SameSite::Strict,
        Some(0),
    )
}
