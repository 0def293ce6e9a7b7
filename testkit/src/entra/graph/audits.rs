//! The directory audit log: `GET /v1.0/auditLogs/directoryAudits` with `$filter=activityDateTime ge X and
//! activityDateTime le Y`, `$top` and `$skiptoken` paging. Needs `AuditLog.Read.All` and `Directory.Read.All` (as
//! Microsoft documents the list call; 403 otherwise). Every change the fake serves to a user is recorded, attributed
//! to the calling app; [`FakeEntraState::console_change`] records one "made in the Entra admin center" by a named
//! admin.

use super::{GResult, json_resp, need};
use crate::common::oidc::query_map;
use crate::common::util::random_id;
use crate::entra::FakeEntraState;
use crate::entra::error::GraphError;
use crate::entra::permissions as p;
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// Who made a recorded change.
#[derive(Debug, Clone)]
pub(crate) enum AuditActor {
    App(String),
    User { id: String, upn: String },
}

/// One directory audit entry.
#[derive(Debug, Clone)]
pub(crate) struct AuditEntry {
    id: String,
    activity: String,
    at: DateTime<Utc>,
    actor: AuditActor,
    target_id: String,
}

impl AuditEntry {
    fn json(&self) -> Value {
        let by = match &self.actor {
            AuditActor::App(app_id) => {
                json!({"user": null, "app": {"appId": app_id, "displayName": "app", "servicePrincipalId": null, "servicePrincipalName": null}})
            }
            AuditActor::User { id, upn } => {
                json!({"user": {"id": id, "displayName": null, "userPrincipalName": upn, "ipAddress": null}, "app": null})
            }
        };
        json!({
            "id": self.id,
            "category": "UserManagement",
            "correlationId": random_id(16),
            "result": "success",
            "resultReason": "",
            "activityDisplayName": self.activity,
            "activityDateTime": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "loggedByService": "Core Directory",
            "operationType": "Update",
            "initiatedBy": by,
            "targetResources": [{"id": self.target_id, "displayName": null, "type": "User", "userPrincipalName": "redacted", "modifiedProperties": []}],
            "additionalDetails": []
        })
    }
}

/// Records a change to the user `key` (object id or UPN; unknown users are not recorded).
pub(crate) fn record(st: &FakeEntraState, actor: AuditActor, activity: &str, key: &str) {
    let now = st.shared.now();
    let mut inner = st.shared.lock();
    let Some(i) = inner.user_idx(key) else {
        return;
    };
    let target_id = inner.users[i].id.clone();
    inner.directory_audits.push(AuditEntry {
        id: format!("Directory_{}", random_id(20)),
        activity: activity.to_owned(),
        at: now,
        actor,
        target_id,
    });
}

/// Parses exactly `activityDateTime ge <t> and activityDateTime le <t>` (what fctr sends).
fn window(filter: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), GraphError> {
    let bad = || GraphError::bad_request("Invalid filter clause");
    let rest = filter
        .strip_prefix("activityDateTime ge ")
        .ok_or_else(bad)?;
    let (since, until) = rest
        .split_once(" and activityDateTime le ")
        .ok_or_else(bad)?;
    let t = |s: &str| {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| bad())
    };
    Ok((t(since)?, t(until)?))
}

pub(crate) fn list_audits(st: &FakeEntraState, roles: &[String], query: Option<&str>) -> GResult {
    need(roles, &[p::AUDIT_LOG_READ_ALL])?;
    need(roles, &[p::DIRECTORY_READ_ALL, p::DIRECTORY_READWRITE_ALL])?;
    let q = query_map(query);
    let range = q.get("$filter").map(|f| window(f)).transpose()?;
    let top: usize = match q.get("$top") {
        None => 100,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=999).contains(n))
            .ok_or_else(|| GraphError::bad_request("Invalid $top value."))?,
    };
    let offset: usize = match q.get("$skiptoken") {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| GraphError::bad_request("Invalid $skiptoken."))?,
    };
    let matching: Vec<AuditEntry> = st
        .shared
        .lock()
        .directory_audits
        .iter()
        .filter(|e| range.is_none_or(|(s, u)| e.at >= s && e.at <= u))
        .cloned()
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(top)
        .map(AuditEntry::json)
        .collect();
    let graph = st.shared.cfg.graph();
    let mut body = json!({
        "@odata.context": format!("{graph}/$metadata#auditLogs/directoryAudits"),
        "value": page,
    });
    if offset + top < matching.len() {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        let mut keys: Vec<&String> = q.keys().filter(|k| *k != "$skiptoken").collect();
        keys.sort();
        for k in keys {
            ser.append_pair(k, &q[k]);
        }
        ser.append_pair("$skiptoken", &(offset + top).to_string());
        body["@odata.nextLink"] = json!(format!(
            "{graph}/auditLogs/directoryAudits?{}",
            ser.finish()
        ));
    }
    Ok(json_resp(StatusCode::OK, &body))
}

impl FakeEntraState {
    /// Records a change "made in the Entra admin center" by the admin `admin_upn` (a seeded user's UPN, or any:
    /// the admin's object id is then made up) to the user `user` (object id or UPN), as directory audit
    /// `activity` (e.g. `Reset user password`). It does not change the user: it is what the log would show.
    pub fn console_change(&self, admin_upn: &str, user: &str, activity: &str) {
        let admin_id = {
            let inner = self.shared.lock();
            inner
                .user_idx(admin_upn)
                .map(|i| inner.users[i].id.clone())
                .unwrap_or_else(|| "00000000-0000-4000-8000-00000000ad01".to_owned())
        };
        record(
            self,
            AuditActor::User {
                id: admin_id,
                upn: admin_upn.to_owned(),
            },
            activity,
            user,
        );
    }

    /// How many directory audit entries are recorded.
    #[must_use]
    pub fn directory_audit_len(&self) -> usize {
        self.shared.lock().directory_audits.len()
    }
}
