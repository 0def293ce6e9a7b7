//! Ticket write-back: the helpdesk ticket systems fctr can post a work note to, the note itself, and which
//! ticket references each system takes.
//!
//! A [`WorkNote`] carries what happened (outcome, factor kinds, action, time) and who did it (the agent's display
//! name as the IdP gives it), and nothing about the caller: the ticket's own reference is the only link to them.

use crate::action::ActionKind;
use crate::directory::FactorKind;
use crate::ids::TicketRef;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// A ticket system with a [`crate::TicketSink`] adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TicketSystem {
    /// ServiceNow incidents (Table API, `work_notes`).
    ServiceNow,
    /// Jira issues (REST v3 comment).
    Jira,
    /// Zendesk tickets (private comment).
    Zendesk,
}

/// A ticket reference that the configured system cannot name. Carries no part of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a {} ticket reference: expected {}", .0.label(), .0.shape())]
pub struct WrongTicketShape(pub TicketSystem);

impl TicketSystem {
    /// Every system, in configuration order.
    pub const ALL: [TicketSystem; 3] = [Self::ServiceNow, Self::Jira, Self::Zendesk];

    /// Stable machine name (configuration, metrics, audit detail).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceNow => "servicenow",
            Self::Jira => "jira",
            Self::Zendesk => "zendesk",
        }
    }

    /// Parses a machine name ([`TicketSystem::as_str`]).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The product name, for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::ServiceNow => "ServiceNow",
            Self::Jira => "Jira",
            Self::Zendesk => "Zendesk",
        }
    }

    /// The shape of a reference this system takes, in words.
    #[must_use]
    pub fn shape(self) -> &'static str {
        match self {
            Self::ServiceNow => "an incident number such as INC0012345",
            Self::Jira => "an issue key such as HELP-123",
            Self::Zendesk => "a ticket number such as 12345 or #12345",
        }
    }

    /// Checks that `t` names a ticket of this system, and returns the form its API takes (a Zendesk `#12345` is
    /// `12345`). Narrower than [`TicketRef::parse`]: ServiceNow takes `INC` and 4 to 12 digits; Jira a project key
    /// (an upper-case letter, then 1 to 9 upper-case letters, digits or `_`), `-` and a number; Zendesk 1 to 12
    /// digits with an optional `#`. Nothing else reaches an API path.
    ///
    /// # Errors
    /// [`WrongTicketShape`] otherwise.
    pub fn accept(self, t: &TicketRef) -> Result<String, WrongTicketShape> {
        let s = t.as_str();
        let digits = |d: &str, max: usize| {
            !d.is_empty() && d.len() <= max && d.bytes().all(|b| b.is_ascii_digit())
        };
        let ok = match self {
            Self::ServiceNow => s
                .strip_prefix("INC")
                .is_some_and(|d| d.len() >= 4 && digits(d, 12)),
            Self::Jira => s.split_once('-').is_some_and(|(key, n)| {
                let mut k = key.bytes();
                k.next().is_some_and(|b| b.is_ascii_uppercase())
                    && (2..=10).contains(&key.len())
                    && k.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                    && digits(n, 12)
                    && !n.starts_with('0')
            }),
            Self::Zendesk => {
                let n = s.strip_prefix('#').unwrap_or(s);
                digits(n, 12) && !n.starts_with('0')
            }
        };
        if !ok {
            return Err(WrongTicketShape(self));
        }
        Ok(match self {
            Self::Zendesk => s.trim_start_matches('#').to_owned(),
            _ => s.to_owned(),
        })
    }
}

impl fmt::Display for TicketSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the step the note reports ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteOutcome {
    /// The action ran.
    Done,
    /// The identity provider failed the action (it may or may not have happened; the audit log has the detail).
    Failed,
    /// fctr refused the action (the reason's machine name).
    Refused(&'static str),
}

/// A work note: what fctr did on a ticket's behalf, in plain text. Holds no data about the caller.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkNote {
    outcome: NoteOutcome,
    action: Option<ActionKind>,
    factors: Vec<FactorKind>,
    at: DateTime<Utc>,
    agent: String,
}

impl WorkNote {
    /// The longest agent name kept (longer names are cut).
    pub const MAX_AGENT: usize = 80;

    /// A note. The agent's display name is cut to [`WorkNote::MAX_AGENT`] characters with control characters
    /// dropped; an empty one reads `(no name given by the IdP)`.
    #[must_use]
    pub fn new(
        outcome: NoteOutcome,
        action: Option<ActionKind>,
        factors: Vec<FactorKind>,
        at: DateTime<Utc>,
        agent_display_name: &str,
    ) -> Self {
        let agent: String = agent_display_name
            .chars()
            .filter(|c| !c.is_control())
            .take(Self::MAX_AGENT)
            .collect();
        let agent = agent.trim().to_owned();
        Self {
            outcome,
            action,
            factors,
            at,
            agent,
        }
    }

    /// How it ended.
    #[must_use]
    pub fn outcome(&self) -> NoteOutcome {
        self.outcome
    }

    /// The action, if the note is about one.
    #[must_use]
    pub fn action(&self) -> Option<ActionKind> {
        self.action
    }

    /// The factor kinds the caller was verified with (empty when none was).
    #[must_use]
    pub fn factors(&self) -> &[FactorKind] {
        &self.factors
    }

    /// When it happened.
    #[must_use]
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The agent's display name.
    #[must_use]
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The note's text, the same for every system: five lines, each `Label: value`.
    ///
    /// ```text
    /// fctr identity verification
    /// Outcome: done
    /// Action: reset_password
    /// Verified with: push
    /// Time: 2024-05-01T10:00:00Z
    /// Agent: Ada Agent
    /// ```
    #[must_use]
    pub fn text(&self) -> String {
        let outcome = match self.outcome {
            NoteOutcome::Done => "done".to_owned(),
            NoteOutcome::Failed => "failed at the identity provider".to_owned(),
            NoteOutcome::Refused(r) => format!("refused ({r})"),
        };
        let action = self.action.map_or("none", |a| a.as_str());
        let factors = if self.factors.is_empty() {
            "no verification".to_owned()
        } else {
            self.factors
                .iter()
                .map(FactorKind::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let agent = if self.agent.is_empty() {
            "(no name given by the IdP)"
        } else {
            &self.agent
        };
        format!(
            "fctr identity verification\nOutcome: {outcome}\nAction: {action}\nVerified with: {factors}\nTime: {}\nAgent: {agent}",
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

impl fmt::Debug for WorkNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkNote")
            .field("outcome", &self.outcome)
            .field("action", &self.action)
            .field("factors", &self.factors)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TicketRef {
        TicketRef::parse(s).unwrap()
    }

    #[test]
    fn each_system_takes_its_own_shapes_only() {
        let sn = TicketSystem::ServiceNow;
        assert_eq!(sn.accept(&t("INC0012345")).unwrap(), "INC0012345");
        for bad in ["HELP-123", "12345", "INC12", "CHG0012345", "#12345"] {
            assert_eq!(sn.accept(&t(bad)), Err(WrongTicketShape(sn)), "{bad}");
        }
        let j = TicketSystem::Jira;
        assert_eq!(j.accept(&t("HELP-123")).unwrap(), "HELP-123");
        assert_eq!(j.accept(&t("IT_2-9")).unwrap(), "IT_2-9");
        for bad in [
            "help-123",
            "H-1",
            "HELP-0123",
            "HELP123",
            "12345",
            "INC0012345",
            "HELP-1-2",
        ] {
            assert!(j.accept(&t(bad)).is_err(), "{bad}");
        }
        let z = TicketSystem::Zendesk;
        assert_eq!(z.accept(&t("#12345")).unwrap(), "12345");
        assert_eq!(z.accept(&t("777")).unwrap(), "777");
        for bad in ["INC0012345", "HELP-1", "0123", "1234567890123"] {
            assert!(z.accept(&t(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refusal_names_the_shape_and_not_the_input() {
        let e = TicketSystem::Jira.accept(&t("INC0099887")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("HELP-123") && !m.contains("0099887"), "{m}");
    }

    #[test]
    fn the_text_has_every_part_and_a_cleaned_name() {
        let at = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let n = WorkNote::new(
            NoteOutcome::Done,
            Some(ActionKind::ResetPassword),
            vec![FactorKind::Push],
            at,
            "Ada\nAgent",
        );
        assert_eq!(
            n.text(),
            "fctr identity verification\nOutcome: done\nAction: reset_password\nVerified with: push\nTime: 2024-05-01T10:00:00Z\nAgent: AdaAgent"
        );
        let n = WorkNote::new(NoteOutcome::Refused("no_live_grant"), None, vec![], at, "");
        assert!(n.text().contains("refused (no_live_grant)"));
        assert!(n.text().contains("(no name given by the IdP)"));
        assert!(!format!("{n:?}").contains("AdaAgent"));
    }
}
