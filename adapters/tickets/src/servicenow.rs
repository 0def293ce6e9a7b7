//! ServiceNow: the incident's `sys_id` by its number (Table API `GET`), then the note as `work_notes` (`PATCH`).
//! `work_notes` is the journal field agents see and requesters do not (unlike `comments`).

use crate::http::Http;
use fctr_ports::{PortError, WorkNote};
use reqwest::Method;
use serde::Deserialize;

#[derive(Deserialize)]
struct Found {
    result: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    sys_id: String,
}

/// Posts `note` as a work note on incident `number` (already checked: `INC` and digits).
pub(crate) async fn post(http: &Http, number: &str, note: &WorkNote) -> Result<(), PortError> {
    let query = [
        ("sysparm_query", format!("number={number}")),
        ("sysparm_fields", "sys_id".to_owned()),
        ("sysparm_limit", "1".to_owned()),
    ];
    let body = http
        .send(
            http.request(Method::GET, "/api/now/table/incident")
                .query(&query),
        )
        .await?;
    let found: Found = serde_json::from_slice(&body).map_err(|_| PortError::Malformed)?;
    let sys_id = found
        .result
        .into_iter()
        .next()
        .ok_or(PortError::NotFound)?
        .sys_id;
    // A sys_id is 32 hex digits; anything else must not go into a path.
    if sys_id.len() != 32 || !sys_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PortError::Malformed);
    }
    http.send(
        http.request(Method::PATCH, &format!("/api/now/table/incident/{sys_id}"))
            .json(&serde_json::json!({ "work_notes": note.text() })),
    )
    .await
    .map(drop)
}
