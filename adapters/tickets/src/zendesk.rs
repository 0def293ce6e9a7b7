//! Zendesk: a private comment (`"public": false`, an internal note the requester does not see) added by updating
//! the ticket.

use crate::http::Http;
use fctr_ports::{PortError, WorkNote};
use reqwest::Method;

/// Posts `note` as a private comment on ticket `id` (already checked: digits only).
pub(crate) async fn post(http: &Http, id: &str, note: &WorkNote) -> Result<(), PortError> {
    http.send(
        http.request(Method::PUT, &format!("/api/v2/tickets/{id}.json"))
            .json(&serde_json::json!({
                "ticket": {"comment": {"body": note.text(), "public": false}}
            })),
    )
    .await
    .map(drop)
}
