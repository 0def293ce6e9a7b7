//! Ticket write-back, the engine's part: the work note for an action's result (a pure function of what happened)
//! and the audit event for each delivery attempt. Delivery itself (retries, backoff) is the shell's, which owns
//! the runtime: the engine does no I/O but through its ports.

use super::views::ActionOutcome;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use fctr_ports::{
    ActionKind, AuditDetail, EventKind, NoteOutcome, Outcome, PortError, Reason, TicketSystem,
    WorkNote,
};

/// How one delivery attempt of a work note ended, for its audit event.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum NoteDelivery<'a> {
    /// The ticket system took the note.
    Delivered,
    /// This attempt failed; another follows.
    WillRetry(&'a PortError),
    /// This attempt failed and was the last: the note is given up.
    GaveUp(&'a PortError),
}

impl Engine {
    /// The work note for an action's result: outcome, action, the verified factor kinds, the time, and the
    /// agent's display name as the IdP gives it. Nothing about the caller goes in.
    #[must_use]
    pub fn action_note(
        &self,
        kind: ActionKind,
        result: Result<&ActionOutcome, &Denial>,
        agent_display_name: &str,
    ) -> WorkNote {
        let (outcome, factors) = match result {
            Ok(o) => (NoteOutcome::Done, o.factors.clone()),
            Err(d) if d.reason == Reason::IdpError => (NoteOutcome::Failed, Vec::new()),
            Err(d) => (NoteOutcome::Refused(d.reason.as_str()), Vec::new()),
        };
        WorkNote::new(outcome, Some(kind), factors, self.now(), agent_display_name)
    }

    /// Audits one delivery attempt of a work note to the ticket `ctx` names (event `ticket_note`: `success`,
    /// `pending` while it will be retried, `failed` when given up, with the port error's code and HTTP status as
    /// detail). After the fact: a refused append is counted ([`Engine::unrecorded_events`]), never an error.
    pub async fn record_ticket_note(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        action: Option<ActionKind>,
        system: TicketSystem,
        delivery: NoteDelivery<'_>,
    ) {
        let (outcome, err) = match delivery {
            NoteDelivery::Delivered => (Outcome::Success, None),
            NoteDelivery::WillRetry(e) => (Outcome::Pending, Some(e)),
            NoteDelivery::GaveUp(e) => (Outcome::Failed, Some(e)),
        };
        let mut b = self
            .system_event(EventKind::TicketNote, outcome, Some(ctx))
            .agent(&agent.pseudo);
        if let Some(a) = action {
            b = b.action(a);
        }
        b = b.detail(match err {
            Some(e) => {
                let status = match e {
                    PortError::Upstream { status, .. } => Some(*status),
                    PortError::RateLimited { .. } => Some(429),
                    _ => None,
                };
                AuditDetail::Upstream {
                    code: format!("{}:{}", system.as_str(), e.code()),
                    status,
                }
            }
            None => AuditDetail::Upstream {
                code: format!("{}:delivered", system.as_str()),
                status: None,
            },
        });
        self.record(b).await;
    }
}
