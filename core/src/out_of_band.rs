//! Out-of-band change detection: which of the IdP's recorded changes did fctr not make?
//!
//! Pure: the caller reads the IdP's log ([`ChangeFeed`](fctr_ports::ChangeFeed)) and fctr's own audit
//! ([`audit_query`] says which events), and [`find_out_of_band`] matches them. A change is *inside the gate* when
//! fctr's audit holds an action (its `action_outcome`, or its `action_intent` when no outcome followed) of the same
//! or a neighbouring kind ([`covers`]) on the same person (by keyed pseudonym, under every key so a rotation does
//! not break the match) within the tolerance; one action accounts for one change of its own kind.
//! Everything else is a [`Finding`]: done in the console, by another tool, or with fctr's own credential without
//! fctr (the most serious: [`Severity::OwnCredential`]).

use crate::pseudonym::Pseudonymizer;
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{
    ActionKind, AuditDetail, AuditEvent, AuditQuery, ChangeActor, EventKind, IdpChange, Outcome,
    PseudoId, SubjectId,
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

/// Whether fctr's audited `action` may appear in the IdP's log as one entry of kind `change` (itself, or a
/// neighbouring name: whether Okta logs an expiry with a temporary password as a reset or as an expiry is not
/// certain, so each stands for the other). Such a match uses the action up.
#[must_use]
pub fn same_change(action: ActionKind, change: ActionKind) -> bool {
    use ActionKind as A;
    action == change
        || matches!(
            (action, change),
            (A::ResetPassword, A::ExpirePassword) | (A::ExpirePassword, A::ResetPassword)
        )
}

/// Whether fctr's audited `action` has `change` as a side effect the IdP logs separately: a password reset or
/// expiry, or a suspension, that revoked sessions; a factor reset logged one factor at a time (Entra deletes
/// methods one by one). Such a match does not use the action up.
#[must_use]
pub fn side_effect(action: ActionKind, change: ActionKind) -> bool {
    use ActionKind as A;
    matches!(
        (action, change),
        (
            A::ResetPassword | A::ExpirePassword | A::Suspend,
            A::ClearSessions
        ) | (A::ResetFactors, A::RemoveFactor)
    )
}

/// Whether fctr's audited `action` accounts for an IdP change of kind `change` at all ([`same_change`] or
/// [`side_effect`]).
#[must_use]
pub fn covers(action: ActionKind, change: ActionKind) -> bool {
    same_change(action, change) || side_effect(action, change)
}

/// The audit events to read for changes between `since` and `until`: action intents and outcomes, widened by
/// the tolerance on both sides.
#[must_use]
pub fn audit_query(since: DateTime<Utc>, until: DateTime<Utc>, tolerance: TimeDelta) -> AuditQuery {
    AuditQuery {
        since: Some(since - tolerance),
        until: Some(until + tolerance),
        kinds: vec![
            EventKind::ActionIntent,
            EventKind::ActionOutcome,
            EventKind::AlarmResponse,
        ],
        ..AuditQuery::default()
    }
}

/// One fctr action as the audit records it: its outcome, or its intent when no outcome followed (a crash between
/// the two: the IdP's log then shows whether it ran).
struct Record<'a> {
    at: DateTime<Utc>,
    target: &'a PseudoId,
    action: ActionKind,
    used: bool,
}

/// An action's outcome as the audit records it: a gated action's, or the session clear a "not me" alarm ran on
/// its own (`alarm_response` naming `clear_sessions`, the only action an alarm runs; its block event names none).
fn is_outcome(e: &AuditEvent) -> bool {
    match e.kind {
        EventKind::ActionOutcome => true,
        EventKind::AlarmResponse => {
            e.action == Some(ActionKind::ClearSessions) && e.outcome != Outcome::Pending
        }
        _ => false,
    }
}

/// An action's intent: recorded before the IdP call.
fn is_intent(e: &AuditEvent) -> bool {
    match e.kind {
        EventKind::ActionIntent => true,
        EventKind::AlarmResponse => {
            e.action == Some(ActionKind::ClearSessions) && e.outcome == Outcome::Pending
        }
        _ => false,
    }
}

/// Whether an action whose outcome is recorded may have changed the user at the IdP: it succeeded, or it failed
/// in a way that leaves that open (a timeout, a lost connection, an unreadable answer, a 5xx). A failure the IdP
/// answered plainly (refused, not found, rate limited, a 4xx, unsupported, an invalid state) changed nothing, so it
/// accounts for nothing: a console change right after it is still reported.
fn may_have_run(e: &AuditEvent) -> bool {
    match e.outcome {
        Outcome::Success => true,
        Outcome::Failed => match &e.detail {
            Some(AuditDetail::Upstream { code, status }) => match status {
                Some(s) => *s >= 500,
                None => matches!(
                    code.as_str(),
                    "timeout" | "unavailable" | "malformed" | "unexpected"
                ),
            },
            _ => false,
        },
        _ => false,
    }
}

fn records(audit: &[AuditEvent], tolerance: TimeDelta) -> Vec<Record<'_>> {
    // Any outcome (whatever its result) settles its intent; only one that may have run accounts for a change.
    let outcomes: Vec<&AuditEvent> = audit.iter().filter(|e| is_outcome(e)).collect();
    let has_outcome = |i: &AuditEvent| {
        outcomes.iter().any(|o| {
            o.target == i.target && o.action == i.action && o.at >= i.at && o.at - i.at <= tolerance
        })
    };
    audit
        .iter()
        .filter(|e| (is_outcome(e) && may_have_run(e)) || (is_intent(e) && !has_outcome(e)))
        .filter_map(|e| {
            Some(Record {
                at: e.at,
                target: e.target.as_ref()?,
                action: e.action?,
                used: false,
            })
        })
        .collect()
}

/// Whether one fctr action may show up as several IdP log entries of its own kind (removing Okta Verify push
/// removes its TOTP too, each logged), so a match does not use it up.
fn repeats(kind: ActionKind) -> bool {
    kind == ActionKind::RemoveFactor
}

/// The changes fctr's audit does not account for, oldest first.
///
/// `own_client_id` is the client id fctr's credential acts as in the IdP's log (see
/// [`ChangeFeed::own_client_id`](fctr_ports::ChangeFeed::own_client_id)).
///
/// Each fctr action (its outcome, or its intent when no outcome followed) accounts for **one** change of its own
/// kind ([`same_change`]), the nearest in time within the tolerance, so a console reset minutes after fctr reset
/// the same person is still reported. It also accounts for any number of its side effects ([`side_effect`]: the
/// sessions a reset revoked), and a factor removal for any number of removals (one action can remove several
/// factors).
#[must_use]
pub fn find_out_of_band(
    changes: &[IdpChange],
    audit: &[AuditEvent],
    pseudonymizer: &Pseudonymizer,
    own_client_id: Option<&str>,
    tolerance: TimeDelta,
) -> Vec<Finding> {
    let mut recs = records(audit, tolerance);
    let mut order: Vec<&IdpChange> = changes.iter().filter(|c| !self_service(c)).collect();
    order.sort_by_key(|c| c.at);
    let names: Vec<Vec<PseudoId>> = order
        .iter()
        .map(|c| pseudonymizer.all_for_subject(&c.target))
        .collect();
    let near = |i: usize, r: &Record<'_>| {
        names[i].contains(r.target) && (r.at - order[i].at).abs() <= tolerance
    };
    // Every (change, record) pair that could be the same change, best first (exact kind, then nearest in time),
    // assigned once each: the pairing does not depend on which change happens to be looked at first.
    let mut pairs: Vec<(bool, TimeDelta, usize, usize)> = Vec::new();
    for (i, c) in order.iter().enumerate() {
        if !may_be_fctrs(&c.actor, own_client_id) {
            continue;
        }
        for (j, r) in recs.iter().enumerate() {
            if same_change(r.action, c.kind) && near(i, r) {
                pairs.push((r.action != c.kind, (r.at - c.at).abs(), i, j));
            }
        }
    }
    pairs.sort();
    let mut accounted = vec![false; order.len()];
    for (_, _, i, j) in pairs {
        if accounted[i] || recs[j].used {
            continue;
        }
        accounted[i] = true;
        recs[j].used = !repeats(order[i].kind);
    }
    let mut out = Vec::new();
    for (i, c) in order.iter().enumerate() {
        if accounted[i] {
            continue;
        }
        let fctrs = may_be_fctrs(&c.actor, own_client_id);
        if fctrs
            && recs
                .iter()
                .any(|r| side_effect(r.action, c.kind) && near(i, r))
        {
            continue;
        }
        out.push(finding(c, pseudonymizer, own_client_id));
    }
    out
}

/// A person changing their own account (a self-service password change or unlock, which the IdP may log as done
/// by the user to the user): not a helpdesk change, so not a finding.
fn self_service(c: &IdpChange) -> bool {
    matches!(&c.actor, ChangeActor::Admin { id, .. } if *id == c.target)
}

/// Whether fctr's audit may account for a change made by `actor`. When fctr's credential acts as an application
/// of its own (`own_client_id`: an Okta service app, an Entra app registration), only that application's entries,
/// and entries that name no actor (an IdP's own side effects), can be fctr's: a person or another application made
/// the rest, whatever fctr did to the same user at the same time. Without it (an Okta API token acts as its admin)
/// any actor may be fctr.
fn may_be_fctrs(actor: &ChangeActor, own_client_id: Option<&str>) -> bool {
    let Some(own) = own_client_id else {
        return true;
    };
    match actor {
        ChangeActor::App { client_id } => client_id == own,
        ChangeActor::Admin { .. } => false,
        _ => true,
    }
}

fn finding(c: &IdpChange, pseudonymizer: &Pseudonymizer, own_client_id: Option<&str>) -> Finding {
    let severity = match (&c.actor, own_client_id) {
        (ChangeActor::App { client_id }, Some(own)) if client_id == own => Severity::OwnCredential,
        _ => Severity::OutsideGate,
    };
    let actor_pseudonym = match &c.actor {
        // Subjects and agents share one pseudonym namespace, so this matches the admin's own events.
        ChangeActor::Admin { id, .. } => Some(pseudonymizer.subject(id)),
        _ => None,
    };
    Finding {
        severity,
        kind: c.kind,
        at: c.at,
        target: pseudonymizer.subject(&c.target),
        target_id: c.target.clone(),
        actor: c.actor.clone(),
        actor_pseudonym,
        event_id: c.event_id.clone(),
    }
}

#[cfg(test)]
mod tests;
