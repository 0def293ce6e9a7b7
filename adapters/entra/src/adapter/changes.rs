//! [`ChangeFeed`] over Microsoft Graph's directory audit log (`GET /auditLogs/directoryAudits`): the changes to
//! users that Entra recorded, whoever made them, for out-of-band change detection.
//!
//! Microsoft documents the application permissions **`AuditLog.Read.All` and `Directory.Read.All`** for listing
//! directory audits. Entries are read with `$filter=activityDateTime ge … and activityDateTime le …`, every
//! `@odata.nextLink` followed (on the Graph base only), and kept when `result` is `success`, the activity is one
//! of [`activity_kind`]'s and a target is a `User`. Which activity names Entra logs for some changes is not
//! certain (see [`activity_kind`]), so each reading is accepted.

use super::EntraAdapter;
use crate::errors::AUDIT_READ;
use crate::wire::{Page, parse};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use fctr_ports::{ActionKind, ChangeActor, ChangeFeed, IdpChange, Pii, PortError, SubjectId};
use serde::Deserialize;
use url::Url;

/// Most pages followed for one window (999 entries each); more is an error, never a shorter report.
const MAX_AUDIT_PAGES: usize = 200;

/// One directory audit entry, as far as fctr reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphAudit {
    #[serde(default)]
    id: String,
    #[serde(default)]
    activity_display_name: String,
    #[serde(default)]
    activity_date_time: String,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    initiated_by: Option<InitiatedBy>,
    #[serde(default)]
    target_resources: Vec<TargetResource>,
}

#[derive(Deserialize)]
struct InitiatedBy {
    #[serde(default)]
    user: Option<AuditUser>,
    #[serde(default)]
    app: Option<AuditApp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditUser {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditApp {
    #[serde(default)]
    app_id: Option<String>,
}

#[derive(Deserialize)]
struct TargetResource {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// The fctr action an Entra audit activity is, or `None` for activities fctr does not gate. Both readings are
/// accepted where the name Entra logs is not certain:
///
/// - password reset: `Reset user password`, `Reset password (by admin)`;
/// - an authentication method removed (fctr's factor reset removes them one by one): `Admin deleted security
///   info`, `Delete authentication method`, `Delete user authentication method`;
/// - a Temporary Access Pass (or another method) registered by an admin: `Admin registered security info`,
///   `Create Temporary Access Pass`, `Create Temporary Access Pass authentication method`;
/// - sessions revoked: `Update StsRefreshTokenValidFrom Timestamp`, `Revoke user sessions`, `Invalidate all
///   refresh tokens for a user`;
/// - sign-in blocked / allowed: `Disable account` / `Enable account`.
#[must_use]
pub(crate) fn activity_kind(name: &str) -> Option<ActionKind> {
    let n = name.trim().to_ascii_lowercase();
    Some(match n.as_str() {
        "reset user password" | "reset password (by admin)" => ActionKind::ResetPassword,
        "admin deleted security info"
        | "delete authentication method"
        | "delete user authentication method" => ActionKind::RemoveFactor,
        "admin registered security info"
        | "create temporary access pass"
        | "create temporary access pass authentication method" => {
            ActionKind::IssueTemporaryAccessPass
        }
        "update stsrefreshtokenvalidfrom timestamp"
        | "revoke user sessions"
        | "invalidate all refresh tokens for a user" => ActionKind::ClearSessions,
        "disable account" => ActionKind::Suspend,
        "enable account" => ActionKind::Unsuspend,
        _ => return None,
    })
}

/// The change an audit entry records, or `None` when fctr does not read it (another activity, not a success,
/// no user target). `Err` when a kept entry is malformed (its time or its target id).
pub(crate) fn change(a: GraphAudit) -> Result<Option<IdpChange>, PortError> {
    let Some(kind) = activity_kind(&a.activity_display_name) else {
        return Ok(None);
    };
    if !a
        .result
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("success"))
    {
        return Ok(None);
    }
    let Some(target) = a
        .target_resources
        .iter()
        .find(|t| {
            t.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("user"))
        })
        .and_then(|t| t.id.as_deref())
        .filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    let target = SubjectId::parse(target.to_owned()).map_err(|_| PortError::Malformed)?;
    // The entry's id is how a finding is raised once: a change entry without one (or with an implausible one) is
    // a malformed answer, never a silently merged finding.
    if a.id.is_empty() || a.id.len() > 128 || !a.id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(PortError::Malformed);
    }
    let at = DateTime::parse_from_rfc3339(&a.activity_date_time)
        .map_err(|_| PortError::Malformed)?
        .with_timezone(&Utc);
    let by = a.initiated_by.unwrap_or(InitiatedBy {
        user: None,
        app: None,
    });
    let person = by.user.and_then(|u| {
        let id = u.id.filter(|s| !s.is_empty())?;
        let id = SubjectId::parse(id).ok()?;
        let shown = u
            .user_principal_name
            .filter(|s| !s.is_empty())
            .or(u.display_name)
            .unwrap_or_default();
        Some(ChangeActor::Admin {
            id,
            display: Pii::new(shown),
        })
    });
    let actor = match person {
        Some(p) => p,
        None => match by.app.and_then(|a| a.app_id).filter(|s| !s.is_empty()) {
            Some(client_id) => ChangeActor::App { client_id },
            None => ChangeActor::Unknown,
        },
    };
    Ok(Some(IdpChange {
        kind,
        target,
        actor,
        at,
        event_id: a.id,
    }))
}

impl EntraAdapter {
    /// `auditLogs/directoryAudits` for the window, 999 entries a page.
    fn audits_url(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Url, PortError> {
        let mut url = self.graph().url("auditLogs/directoryAudits")?;
        let t = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Secs, true);
        // Whole seconds on the wire: `since` rounded down, `until` rounded up, so no entry of the window is left
        // out; the exact window is applied to what comes back.
        let until = until + chrono::TimeDelta::milliseconds(999);
        url.query_pairs_mut()
            .append_pair(
                "$filter",
                &format!(
                    "activityDateTime ge {} and activityDateTime le {}",
                    t(since),
                    t(until)
                ),
            )
            .append_pair("$top", "999");
        Ok(url)
    }
}

#[async_trait]
impl ChangeFeed for EntraAdapter {
    async fn changes(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<IdpChange>, PortError> {
        let mut url = self.audits_url(since, until)?;
        let mut out = Vec::new();
        for _ in 0..MAX_AUDIT_PAGES {
            let resp = self.graph().get(url, &[], AUDIT_READ).await?;
            let page: Page<GraphAudit> = parse(&resp.body)?;
            for a in page.value {
                if let Some(c) = change(a)? {
                    // `le until` on the wire; the port's window ends before `until`.
                    if c.at >= since && c.at < until {
                        out.push(c);
                    }
                }
            }
            match page.next_link {
                Some(next) => url = self.next_url(&next)?,
                None => {
                    out.sort_by_key(|c| c.at);
                    return Ok(out);
                }
            }
        }
        tracing::warn!("entra: too many directory audit pages; refusing a partial report");
        Err(PortError::Malformed)
    }

    fn own_client_id(&self) -> Option<String> {
        Some(self.inner.client_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn audit(v: serde_json::Value) -> GraphAudit {
        serde_json::from_value(v).unwrap()
    }

    fn entry(activity: &str, result: &str, by: serde_json::Value) -> serde_json::Value {
        json!({
            "id": "Directory_ABC_123",
            "category": "UserManagement",
            "activityDisplayName": activity,
            "activityDateTime": "2026-12-03T09:12:44.7215374Z",
            "result": result,
            "initiatedBy": by,
            "targetResources": [
                {"id": "11111111-2222-3333-4444-555555555555", "type": "User", "userPrincipalName": "bob@example.com"}
            ]
        })
    }

    #[test]
    fn both_readings_of_each_activity_are_read() {
        for (name, kind) in [
            ("Reset user password", ActionKind::ResetPassword),
            ("Reset password (by admin)", ActionKind::ResetPassword),
            ("Admin deleted security info", ActionKind::RemoveFactor),
            ("Delete authentication method", ActionKind::RemoveFactor),
            (
                "Admin registered security info",
                ActionKind::IssueTemporaryAccessPass,
            ),
            (
                "Create Temporary Access Pass",
                ActionKind::IssueTemporaryAccessPass,
            ),
            (
                "Update StsRefreshTokenValidFrom Timestamp",
                ActionKind::ClearSessions,
            ),
            ("Revoke user sessions", ActionKind::ClearSessions),
            ("Disable account", ActionKind::Suspend),
            ("Enable account", ActionKind::Unsuspend),
        ] {
            assert_eq!(activity_kind(name), Some(kind), "{name}");
        }
        for other in [
            "Add member to group",
            "Update user",
            "Change user password",
            "",
        ] {
            assert_eq!(activity_kind(other), None, "{other}");
        }
    }

    #[test]
    fn an_admin_in_the_portal_is_a_person_with_their_login() {
        let c = change(audit(entry(
            "Reset user password",
            "success",
            json!({"user": {"id": "99999999-0000-0000-0000-000000000001", "userPrincipalName": "rogue.admin@example.com", "displayName": "Rogue"}, "app": null}),
        )))
        .unwrap()
        .unwrap();
        assert_eq!(c.kind, ActionKind::ResetPassword);
        assert_eq!(c.target.as_str(), "11111111-2222-3333-4444-555555555555");
        assert_eq!(c.event_id, "Directory_ABC_123");
        assert_eq!(c.at.to_rfc3339(), "2026-12-03T09:12:44.721537400+00:00");
        match c.actor {
            ChangeActor::Admin { id, display } => {
                assert_eq!(id.as_str(), "99999999-0000-0000-0000-000000000001");
                assert_eq!(display.expose_pii(), "rogue.admin@example.com");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_app_is_named_by_its_app_id() {
        let c = change(audit(entry(
            "Update StsRefreshTokenValidFrom Timestamp",
            "success",
            json!({"user": null, "app": {"appId": "0f0f0f0f-1111-2222-3333-444444444444", "displayName": "fctr"}}),
        )))
        .unwrap()
        .unwrap();
        assert_eq!(
            c.actor,
            ChangeActor::App {
                client_id: "0f0f0f0f-1111-2222-3333-444444444444".into()
            }
        );
        let unknown = change(audit(entry("Disable account", "success", json!(null))))
            .unwrap()
            .unwrap();
        assert_eq!(unknown.actor, ChangeActor::Unknown);
    }

    #[test]
    fn failures_other_activities_and_non_user_targets_are_skipped() {
        let by = json!({"user": {"id": "99999999-0000-0000-0000-000000000001", "userPrincipalName": "a@example.com"}});
        assert!(
            change(audit(entry("Reset user password", "failure", by.clone())))
                .unwrap()
                .is_none()
        );
        assert!(
            change(audit(entry("Add member to group", "success", by.clone())))
                .unwrap()
                .is_none()
        );
        let mut group = entry("Reset user password", "success", by.clone());
        group["targetResources"][0]["type"] = json!("Group");
        assert!(change(audit(group)).unwrap().is_none());
        let mut bad_time = entry("Reset user password", "success", by.clone());
        bad_time["activityDateTime"] = json!("yesterday");
        assert!(matches!(change(audit(bad_time)), Err(PortError::Malformed)));
        // A change without an id (or with one that is no id) would merge with every other such change when
        // findings are raised once per entry: malformed.
        let mut no_id = entry("Reset user password", "success", by.clone());
        no_id.as_object_mut().unwrap().remove("id");
        assert!(matches!(change(audit(no_id)), Err(PortError::Malformed)));
        for id in [json!(""), json!("a b"), json!("x".repeat(129))] {
            let mut e = entry("Reset user password", "success", by.clone());
            e["id"] = id.clone();
            let got = change(audit(e));
            assert!(matches!(got, Err(PortError::Malformed)), "{id}: {got:?}");
        }
    }
}
