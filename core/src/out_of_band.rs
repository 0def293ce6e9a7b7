//! Out-of-band change detection: which of the IdP's recorded changes did fctr not make?
//!
//! Pure: the caller reads the IdP's log ([`ChangeFeed`](fctr_ports::ChangeFeed)) and fctr's own audit
//! ([`audit_query`] says which events), and [`find_out_of_band`] matches them. A change is *inside the gate* when
//! fctr's audit holds an `action_intent` or `action_outcome` event for a compatible action ([`covers`]) on the same
//! person (by keyed pseudonym, under every key so a rotation does not break the match) within the tolerance.
//! Everything else is a [`Finding`]: done in the console, by another tool, or with fctr's own credential without
//! fctr (the most serious: [`Severity::OwnCredential`]).

use crate::pseudonym::Pseudonymizer;
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{
    ActionKind, AuditEvent, AuditQuery, ChangeActor, EventKind, IdpChange, PseudoId,
    SubjectId,
};

/// The default tolerance between the IdP's time and fctr's audit time (clocks and the IdP's log latency).
pub const DEFAULT_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Made by someone other than fctr (an admin in the console, another app): the gate was bypassed.
    OutsideGate,
    /// Made with fctr's own credential, yet fctr's audit has no record of it: the credential is used outside
    /// fctr.
    OwnCredential,
}

impl Severity {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OutsideGate => "outside_gate",
            Self::OwnCredential => "own_credential",
        }
    }
}

/// One change the IdP recorded that fctr's audit does not account for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// What was done.
    pub kind: ActionKind,
    /// When the IdP recorded it.
    pub at: DateTime<Utc>,
    /// The person it was done to, pseudonymized (current key): what may be stored or exported.
    pub target: PseudoId,
    /// The person it was done to, for the auditor's in-memory view only (redacts itself).
    pub target_id: SubjectId,
    /// Who did it (an admin's display name is [`Pii`](fctr_ports::Pii), for the auditor's view only).
    pub actor: ChangeActor,
    /// The admin who did it, pseudonymized, when a person did it: what may be stored or exported.
    pub actor_pseudonym: Option<PseudoId>,
    /// The IdP's log entry id, to find it in the IdP's console.
    pub event_id: String,
}

/// Whether fctr's audited `action` accounts for an IdP change of kind `change`. Some fctr actions show up in the
/// IdP's log under a neighbouring kind: a password reset or expiry may also revoke sessions, a factor reset may be
/// logged one factor at a time (Entra deletes methods one by one; removing Okta Verify push removes its TOTP too).
#[must_use]
pub fn covers(action: ActionKind, change: ActionKind) -> bool {
    use ActionKind as A;
    action == change
        || matches!(
            (action, change),
            (A::ResetPassword, A::ExpirePassword | A::ClearSessions)
                | (A::ExpirePassword, A::ResetPassword | A::ClearSessions)
                | (A::ResetFactors, A::RemoveFactor)
                | (A::Suspend, A::ClearSessions)
        )
}

/// The audit events to read for changes between `since` and `until`: action intents and outcomes, widened by
/// the tolerance on both sides.
#[must_use]
pub fn audit_query(since: DateTime<Utc>, until: DateTime<Utc>, tolerance: TimeDelta) -> AuditQuery {
    AuditQuery {
        since: Some(since - tolerance),
        until: Some(until + tolerance),
        kinds: vec![EventKind::ActionIntent, EventKind::ActionOutcome],
        ..AuditQuery::default()
    }
}

/// The changes fctr's audit does not account for, oldest first.
///
/// `own_client_id` is the client id fctr's credential acts as in the IdP's log (see
/// [`ChangeFeed::own_client_id`](fctr_ports::ChangeFeed::own_client_id)). An audit event accounts for any number
/// of changes within the tolerance: one fctr action can appear as several log entries (a reset that also revokes
/// sessions), and a second console change of the same kind to the same person minutes after fctr's changes
/// nothing fctr did not already do.
#[must_use]
pub fn find_out_of_band(
    changes: &[IdpChange],
    audit: &[AuditEvent],
    pseudonymizer: &Pseudonymizer,
    own_client_id: Option<&str>,
    tolerance: TimeDelta,
) -> Vec<Finding> {
    let actions: Vec<&AuditEvent> = audit
        .iter()
        .filter(|e| matches!(e.kind, EventKind::ActionIntent | EventKind::ActionOutcome))
        .collect();
    let mut out: Vec<Finding> = changes
        .iter()
        .filter_map(|c| {
            let names = pseudonymizer.all_for_subject(&c.target);
            let matched = actions.iter().any(|e| {
                e.action.is_some_and(|a| covers(a, c.kind))
                    && e.target.as_ref().is_some_and(|t| names.contains(t))
                    && (e.at - c.at).abs() <= tolerance
            });
            if matched {
                return None;
            }
            let severity = match (&c.actor, own_client_id) {
                (ChangeActor::App { client_id }, Some(own)) if client_id == own => {
                    Severity::OwnCredential
                }
                _ => Severity::OutsideGate,
            };
            let actor_pseudonym = match &c.actor {
                // Subjects and agents share one pseudonym namespace, so this matches the admin's own events.
                ChangeActor::Admin { id, .. } => Some(pseudonymizer.subject(id)),
                _ => None,
            };
            Some(Finding {
                severity,
                kind: c.kind,
                at: c.at,
                target: pseudonymizer.subject(&c.target),
                target_id: c.target.clone(),
                actor: c.actor.clone(),
                actor_pseudonym,
                event_id: c.event_id.clone(),
            })
        })
        .collect();
    out.sort_by_key(|f| f.at);
    out
}

#[cfg(test)]
mod tests;
