//! Words for the audit vocabulary, in one place: what the audit view, its filters and its exports call each event
//! kind, outcome, reason, factor kind and action. Machine names stay in exports beside the words.

use fctr_ports::{ActionKind, EventKind, FactorKind, Outcome, Reason};

/// The label of an event kind (`None` only for a kind added to the vocabulary after this list; a test checks
/// that every kind in [`EventKind::ALL`] has one).
pub(crate) fn event_kind(k: EventKind) -> Option<&'static str> {
    Some(match k {
        EventKind::Login => "Agent signed in",
        EventKind::Logout => "Agent signed out",
        EventKind::Lookup => "Caller looked up",
        EventKind::ChallengeStarted => "Verification started",
        EventKind::ChallengeResult => "Verification answered",
        EventKind::CodeSubmitted => "Code checked",
        EventKind::GrantIssued => "Caller verified",
        EventKind::ActionIntent => "Action requested",
        EventKind::ActionOutcome => "Action performed",
        EventKind::Denied => "Refused",
        EventKind::PolicyLoaded => "Policy loaded",
        EventKind::Purge => "Old records purged",
        EventKind::Checkpoint => "Chain checkpoint",
        EventKind::NotMe => "Caller said \"not me\"",
        EventKind::AlarmResponse => "Alarm response",
        EventKind::AlertRaised => "Alert raised",
        EventKind::TicketNote => "Ticket note",
        EventKind::ApprovalRequested => "Approval requested",
        EventKind::ApprovalDecided => "Approval decided",
        _ => return None,
    })
}

/// The label of an event kind, falling back to its words.
pub(crate) fn event_kind_words(k: EventKind) -> String {
    event_kind(k).map_or_else(|| words(k.as_str()), str::to_owned)
}

/// The label of an outcome (`None` only for one added after this list; a test checks [`Outcome::ALL`]).
pub(crate) fn outcome(o: Outcome) -> Option<&'static str> {
    Some(match o {
        Outcome::Success => "Succeeded",
        Outcome::Pending => "Pending",
        Outcome::Denied => "Refused by fctr",
        Outcome::Rejected => "Rejected",
        Outcome::Failed => "Failed",
        _ => return None,
    })
}

/// The label of an outcome, falling back to its words.
pub(crate) fn outcome_words(o: Outcome) -> String {
    outcome(o).map_or_else(|| words(o.as_str()), str::to_owned)
}

/// A reason in words (`not_permitted_for_role` → "Not permitted for role").
pub(crate) fn reason(r: Reason) -> String {
    words(r.as_str())
}

/// A factor kind in words.
pub(crate) fn factor(f: &FactorKind) -> String {
    match f {
        FactorKind::Totp => "TOTP code".to_owned(),
        FactorKind::Hotp => "HOTP code".to_owned(),
        FactorKind::Sms => "SMS".to_owned(),
        FactorKind::WebAuthn => "WebAuthn / FIDO2".to_owned(),
        other => words(other.as_str()),
    }
}

/// An action in words ("Reset the password").
pub(crate) fn action(a: ActionKind) -> String {
    super::label(a)
}

/// A machine name as words: underscores to spaces, the first letter upper case.
pub(crate) fn words(code: &str) -> String {
    let spaced = code.replace('_', " ");
    let mut c = spaced.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_event_kind_has_its_own_label() {
        let mut seen = HashSet::new();
        for k in EventKind::ALL {
            let l = event_kind(k).unwrap_or_else(|| panic!("{k:?} has no label"));
            assert!(seen.insert(l), "{l} labels two kinds");
            assert_ne!(l, k.as_str(), "{k:?}: a label, not the machine name");
        }
        assert_eq!(
            event_kind(EventKind::ChallengeStarted),
            Some("Verification started")
        );
        assert_eq!(
            event_kind(EventKind::ActionOutcome),
            Some("Action performed")
        );
    }

    #[test]
    fn every_outcome_has_its_own_label() {
        let mut seen = HashSet::new();
        for o in Outcome::ALL {
            let l = outcome(o).unwrap_or_else(|| panic!("{o:?} has no label"));
            assert!(seen.insert(l), "{l} labels two outcomes");
        }
    }

    #[test]
    fn words_read_as_words() {
        assert_eq!(
            reason(Reason::NotPermittedForRole),
            "Not permitted for role"
        );
        assert_eq!(factor(&FactorKind::Push), "Push");
        assert_eq!(factor(&FactorKind::Totp), "TOTP code");
        assert_eq!(action(ActionKind::ResetPassword), "Reset the password");
        assert_eq!(words(""), "");
    }
}
