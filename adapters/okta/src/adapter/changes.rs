//! [`ChangeFeed`] over the Okta System Log (`GET /api/v1/logs`).
//!
//! A bounded query (`since` and `until`, both set) filtered to the event types below, `sortOrder=ASCENDING`,
//! pages followed through `Link: <…>; rel="next"` until a page comes back empty or without a next link (Okta
//! keeps offering a next link on polling queries; a bounded one ends). Only entries with `outcome.result`
//! `SUCCESS` and a `User` target are reported.
//!
//! | event type | fctr action |
//! |---|---|
//! | `user.account.reset_password` | reset password |
//! | `user.account.expire_password` | expire password |
//! | `user.mfa.factor.reset_all` | reset factors |
//! | `user.mfa.factor.deactivate` | remove factor |
//! | `user.account.unlock_by_admin`, `user.account.unlock` | unlock |
//! | `user.session.clear` | clear sessions |
//! | `user.lifecycle.suspend` / `user.lifecycle.unsuspend` | suspend / unsuspend |
//!
//! The actor of a call made with a service app's token is the app: its `type` is read as an app for
//! `PublicClientApp` (what Okta documents for OAuth service apps) and also for `AppInstance` and
//! `ClientApplication` (seen in other docs; which one a given org shows is UNCERTAIN, so all are accepted). The
//! actor's `id` is then the client id. An actor of type `User` is a person (an admin in the console, or an SSWS
//! token's owner); anything else is [`ChangeActor::Unknown`].

use super::{OktaAdapter, parse};
use crate::errors::{malformed, map_error};
use crate::http::{Op, OpKind, next_link, on_org};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use fctr_ports::{ActionKind, ChangeActor, ChangeFeed, IdpChange, Pii, PortError, SubjectId};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

/// The scope the System Log needs.
pub(crate) const LOGS_SCOPE: &str = "okta.logs.read";

const OP_LOGS: Op = Op {
    name: "changes",
    bucket: "logs",
    scope: LOGS_SCOPE,
    kind: OpKind::Read,
};

/// Pages followed before giving up (fail closed: a partial read could hide a change).
const MAX_PAGES: usize = 200;
/// Entries per page (Okta's maximum is 1000).
const PAGE_SIZE: u32 = 1000;

/// The event types read, and the fctr action each one is.
pub(crate) const EVENT_TYPES: [(&str, ActionKind); 9] = [
    ("user.account.reset_password", ActionKind::ResetPassword),
    ("user.account.expire_password", ActionKind::ExpirePassword),
    ("user.mfa.factor.reset_all", ActionKind::ResetFactors),
    ("user.mfa.factor.deactivate", ActionKind::RemoveFactor),
    ("user.account.unlock_by_admin", ActionKind::Unlock),
    ("user.account.unlock", ActionKind::Unlock),
    ("user.session.clear", ActionKind::ClearSessions),
    ("user.lifecycle.suspend", ActionKind::Suspend),
    ("user.lifecycle.unsuspend", ActionKind::Unsuspend),
];

#[derive(Deserialize)]
struct LogEventDto {
    uuid: Option<String>,
    published: Option<DateTime<Utc>>,
    #[serde(rename = "eventType")]
    event_type: Option<String>,
    actor: Option<ActorDto>,
    #[serde(default)]
    target: Option<Vec<TargetDto>>,
    outcome: Option<OutcomeDto>,
}

#[derive(Deserialize)]
struct ActorDto {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "alternateId")]
    alternate_id: Option<String>,
    #[serde(rename = "displayName")]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct TargetDto {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct OutcomeDto {
    result: Option<String>,
}

/// The filter expression: `eventType eq "…" or …` (constants only, nothing from input).
fn filter() -> String {
    EVENT_TYPES
        .iter()
        .map(|(t, _)| format!("eventType eq \"{t}\""))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn actor(a: Option<ActorDto>) -> ChangeActor {
    let Some(a) = a else {
        return ChangeActor::Unknown;
    };
    match a.kind.as_deref() {
        Some("User") => match a.id.map(SubjectId::parse) {
            Some(Ok(id)) => ChangeActor::Admin {
                id,
                display: Pii::new(a.alternate_id.or(a.display_name).unwrap_or_default()),
            },
            _ => ChangeActor::Unknown,
        },
        Some("PublicClientApp" | "AppInstance" | "ClientApplication") => match a.id {
            Some(id)
                if !id.is_empty()
                    && id.len() <= 128
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                ChangeActor::App { client_id: id }
            }
            _ => ChangeActor::Unknown,
        },
        _ => ChangeActor::Unknown,
    }
}

/// One log entry as a change, or `None` for entries fctr does not report (other types, failures, no user target).
fn to_change(e: LogEventDto) -> Result<Option<IdpChange>, ()> {
    let Some(kind) = e
        .event_type
        .as_deref()
        .and_then(|t| EVENT_TYPES.iter().find(|(n, _)| *n == t).map(|(_, k)| *k))
    else {
        return Ok(None);
    };
    if e.outcome.and_then(|o| o.result).as_deref() != Some("SUCCESS") {
        return Ok(None);
    }
    let Some(target) = e
        .target
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.kind.as_deref() == Some("User"))
        .and_then(|t| t.id)
    else {
        return Ok(None);
    };
    let target = SubjectId::parse(target).map_err(|_| ())?;
    let at = e.published.ok_or(())?;
    let event_id = e
        .uuid
        .filter(|u| !u.is_empty() && u.len() <= 64)
        .ok_or(())?;
    Ok(Some(IdpChange {
        kind,
        target,
        actor: actor(e.actor),
        at,
        event_id,
    }))
}

#[async_trait]
impl ChangeFeed for OktaAdapter {
    #[tracing::instrument(name = "okta.changes", skip_all)]
    async fn changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<IdpChange>, PortError> {
        if until <= since {
            return Ok(Vec::new());
        }
        let mut url = self
            .logs
            .org
            .join("api/v1/logs")
            .map_err(|_| PortError::Malformed)?;
        url.query_pairs_mut()
            .append_pair("since", &since.to_rfc3339_opts(SecondsFormat::Millis, true))
            .append_pair("until", &until.to_rfc3339_opts(SecondsFormat::Millis, true))
            .append_pair("filter", &filter())
            .append_pair("sortOrder", "ASCENDING")
            .append_pair("limit", &PAGE_SIZE.to_string());
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self.logs.send(&OP_LOGS, Method::GET, &url, None).await?;
            if resp.status == StatusCode::FORBIDDEN {
                // Whatever Okta's reason (the scope, or an SSWS token whose admin may not read the log), the fix
                // is the same grant.
                let _ = map_error(&resp, &OP_LOGS);
                return Err(PortError::Forbidden {
                    missing: Some(format!("scope {LOGS_SCOPE}")),
                });
            }
            if resp.status != StatusCode::OK {
                return Err(map_error(&resp, &OP_LOGS));
            }
            let page: Vec<LogEventDto> = parse(&OP_LOGS, &resp)?;
            let empty = page.is_empty();
            for e in page {
                if let Some(c) = to_change(e).map_err(|()| malformed(&OP_LOGS, None))? {
                    out.push(c);
                }
            }
            let next = next_link(&resp.headers);
            let (true, Some(next)) = (!empty, next) else {
                out.sort_by_key(|c: &IdpChange| c.at);
                return Ok(out);
            };
            let next = Url::parse(&next).map_err(|_| malformed(&OP_LOGS, None))?;
            if !on_org(&self.logs.org, &next, "/api/v1/logs") || next.path() != "/api/v1/logs" {
                tracing::warn!(
                    op = OP_LOGS.name,
                    "refused a next-page link that is not the org's System Log"
                );
                return Err(PortError::Malformed);
            }
            url = next;
        }
        tracing::warn!(op = OP_LOGS.name, pages = MAX_PAGES, "too many log pages");
        Err(PortError::Malformed)
    }

    fn own_client_id(&self) -> Option<String> {
        self.client_id.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(json: serde_json::Value) -> Result<Option<IdpChange>, ()> {
        to_change(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn reads_a_console_reset_and_an_app_reset() {
        let c = ev(serde_json::json!({
            "uuid": "e1", "published": "2026-12-03T10:00:00.000Z",
            "eventType": "user.account.reset_password",
            "actor": {"id": "00uADMIN", "type": "User", "alternateId": "admin@example.com", "displayName": "Ada"},
            "target": [{"id": "00uTARGET", "type": "User", "alternateId": "t@example.com"}],
            "outcome": {"result": "SUCCESS"}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(c.kind, ActionKind::ResetPassword);
        assert_eq!(c.target.as_str(), "00uTARGET");
        let ChangeActor::Admin { id, display } = &c.actor else {
            panic!("{:?}", c.actor)
        };
        assert_eq!(id.as_str(), "00uADMIN");
        assert_eq!(display.expose_pii(), "admin@example.com");
        for app_type in ["PublicClientApp", "AppInstance", "ClientApplication"] {
            let c = ev(serde_json::json!({
                "uuid": "e2", "published": "2026-12-03T10:00:00.000Z",
                "eventType": "user.account.unlock_by_admin",
                "actor": {"id": "0oaSERVICE", "type": app_type},
                "target": [{"id": "00uTARGET", "type": "User"}],
                "outcome": {"result": "SUCCESS"}
            }))
            .unwrap()
            .unwrap();
            assert_eq!(
                c.actor,
                ChangeActor::App {
                    client_id: "0oaSERVICE".into()
                }
            );
        }
    }

    #[test]
    fn skips_failures_other_types_and_non_user_targets() {
        for j in [
            serde_json::json!({"uuid": "e", "published": "2026-12-03T10:00:00Z", "eventType": "user.session.clear",
                "target": [{"id": "00u1", "type": "User"}], "outcome": {"result": "FAILURE"}}),
            serde_json::json!({"uuid": "e", "published": "2026-12-03T10:00:00Z", "eventType": "user.session.start",
                "target": [{"id": "00u1", "type": "User"}], "outcome": {"result": "SUCCESS"}}),
            serde_json::json!({"uuid": "e", "published": "2026-12-03T10:00:00Z", "eventType": "user.session.clear",
                "target": [{"id": "0oa1", "type": "AppInstance"}], "outcome": {"result": "SUCCESS"}}),
        ] {
            assert_eq!(ev(j).unwrap(), None);
        }
        // A reported type with a broken target is malformed, not skipped.
        assert!(
            ev(
                serde_json::json!({"uuid": "e", "published": "2026-12-03T10:00:00Z",
                "eventType": "user.session.clear", "target": [{"id": "a/b", "type": "User"}],
                "outcome": {"result": "SUCCESS"}})
            )
            .is_err()
        );
    }

    #[test]
    fn the_filter_names_every_type() {
        let f = filter();
        for (t, _) in EVENT_TYPES {
            assert!(f.contains(&format!("eventType eq \"{t}\"")), "{t}");
        }
        assert_eq!(f.matches(" or ").count(), EVENT_TYPES.len() - 1);
    }
}
