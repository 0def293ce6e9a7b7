//! Building audit events. Constructors take pseudonyms only.

use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, AuditDetail, AuditEvent, EventKind, FactorKind, Outcome, PseudoId, Reason,
    RequestId, TenantId, TicketRef, TruncatedIp,
};
use std::net::IpAddr;

/// Builds an [`AuditEvent`]. Every person in it is a [`PseudoId`]; client addresses are truncated on the way in.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuditBuilder(AuditEvent);

impl AuditBuilder {
    /// Starts an event.
    pub fn new(tenant: TenantId, at: DateTime<Utc>, kind: EventKind, outcome: Outcome) -> Self {
        Self(AuditEvent::new(tenant, at, kind, outcome))
    }

    /// The agent.
    pub fn agent(mut self, agent: &PseudoId) -> Self {
        self.0.agent = Some(agent.clone());
        self
    }

    /// The caller.
    pub fn target(mut self, target: &PseudoId) -> Self {
        self.0.target = Some(target.clone());
        self
    }

    /// The factor kind.
    pub fn factor(mut self, kind: &FactorKind) -> Self {
        self.0.factor = Some(kind.clone());
        self
    }

    /// The action.
    pub fn action(mut self, kind: ActionKind) -> Self {
        self.0.action = Some(kind);
        self
    }

    /// The reason.
    pub fn reason(mut self, reason: Reason) -> Self {
        self.0.reason = Some(reason);
        self
    }

    /// The request id.
    pub fn request(mut self, id: Option<&RequestId>) -> Self {
        self.0.request_id = id.cloned();
        self
    }

    /// The client address, truncated to /24 or /48.
    pub fn client_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.0.client_ip = ip.map(TruncatedIp::from_ip);
        self
    }

    /// The helpdesk ticket the request named.
    pub fn ticket(mut self, ticket: Option<&TicketRef>) -> Self {
        self.0.ticket = ticket.cloned();
        self
    }

    /// Structured detail.
    pub fn detail(mut self, detail: AuditDetail) -> Self {
        self.0.detail = Some(detail);
        self
    }

    /// The event.
    #[must_use]
    pub fn build(self) -> AuditEvent {
        self.0
    }
}
