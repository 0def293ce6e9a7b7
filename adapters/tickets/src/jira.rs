//! Jira Cloud: one comment on the issue (REST v3), its body in Atlassian Document Format, one paragraph per
//! line of the note.

use crate::http::Http;
use fctr_ports::{PortError, WorkNote};
use reqwest::Method;
use serde_json::{Value, json};

/// The comment body: `{"body":{"type":"doc","version":1,"content":[paragraphs]}}`.
pub(crate) fn body(note: &WorkNote) -> Value {
    let paragraphs: Vec<Value> = note
        .text()
        .lines()
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    json!({"body": {"type": "doc", "version": 1, "content": paragraphs}})
}

/// Posts `note` as a comment on issue `key` (already checked: `KEY-123`).
pub(crate) async fn post(http: &Http, key: &str, note: &WorkNote) -> Result<(), PortError> {
    http.send(
        http.request(Method::POST, &format!("/rest/api/3/issue/{key}/comment"))
            .json(&body(note)),
    )
    .await
    .map(drop)
}
