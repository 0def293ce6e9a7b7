//! Alerts: a small PII-free value ([`Alert`]) and the port that delivers it ([`AlertSink`]).
//!
//! Anything may raise an alert (the engine's "not me" and velocity alarms, a detector of changes made outside
//! fctr): build an [`Alert`] and hand it to an [`AlertSink`]. An alert names people by [`PseudoId`] only, so its
//! JSON ([`Alert::payload`]) can leave the process (a webhook, a SIEM) without carrying personal data.

use crate::error::PortError;
use crate::pseudo::PseudoId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use uuid::Uuid;

/// Which rule raised an alert. A closed list of stable machine names (metrics label on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertRule {
    /// The caller denied a push, or told the agent "that was not me".
    NotMe,
    /// The same caller was verified or refused by several agents in a short time.
    DistinctAgentsPerCaller,
    /// One agent looked up many callers in a short time.
    LookupsPerAgent,
    /// Repeated failed verifications (rejected pushes, wrong codes) of one caller.
    FailuresPerCaller,
    /// Repeated failed verifications by one agent.
    FailuresPerAgent,
    /// A change made at the identity provider outside fctr (out-of-band change detection).
    OutOfBandChange,
    /// Someone other than the caller signed in through the caller's one-time sign-in link.
    SignInOtherUser,
}

impl AlertRule {
    /// Every rule, in declaration order.
    pub const ALL: [AlertRule; 7] = [
        AlertRule::NotMe,
        AlertRule::DistinctAgentsPerCaller,
        AlertRule::LookupsPerAgent,
        AlertRule::FailuresPerCaller,
        AlertRule::FailuresPerAgent,
        AlertRule::OutOfBandChange,
        AlertRule::SignInOtherUser,
    ];

    /// Stable machine name (the payload's `rule`, the metric's label).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotMe => "not_me",
            Self::DistinctAgentsPerCaller => "distinct_agents_per_caller",
            Self::LookupsPerAgent => "lookups_per_agent",
            Self::FailuresPerCaller => "failures_per_caller",
            Self::FailuresPerAgent => "failures_per_agent",
            Self::OutOfBandChange => "out_of_band_change",
            Self::SignInOtherUser => "sign_in_other_user",
        }
    }
}

impl fmt::Display for AlertRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Likely an attack in progress (a caller said "not me").
    Critical,
}

/// One alert. Pseudonyms, a rule, a time and a severity: nothing that names a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Stable id: the same alert delivered twice (a retry) carries the same id, so receivers can deduplicate.
    pub id: Uuid,
    /// The rule that fired.
    pub rule: AlertRule,
    /// How urgent.
    pub severity: Severity,
    /// When it fired.
    #[serde(with = "crate::audit::canonical_time")]
    pub at: DateTime<Utc>,
    /// The caller concerned, by pseudonym.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<PseudoId>,
    /// The agent concerned (the one whose request triggered it), by pseudonym.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<PseudoId>,
    /// The count that crossed the threshold, for velocity rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The rule's window in seconds, for velocity rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// For a change made at the IdP outside fctr: what it was and where to find it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeRef>,
}

/// A change the IdP logged that fctr's audit does not account for, as an alert names it: the action, the IdP's
/// own log entry id (to find the entry in the IdP's console), and who made it by pseudonym or client id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRef {
    /// What was done.
    pub action: crate::ActionKind,
    /// `outside_gate` (someone other than fctr) or `own_credential` (fctr's own credential, no audit record).
    pub finding: &'static str,
    /// The IdP's log entry id.
    pub idp_event: String,
    /// The admin who made it, by pseudonym, when a person did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<PseudoId>,
    /// The application that made it, by client id, when an application did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

impl Alert {
    /// A new alert with a fresh time-ordered id and no counts.
    #[must_use]
    pub fn new(rule: AlertRule, severity: Severity, at: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            rule,
            severity,
            at,
            caller: None,
            agent: None,
            count: None,
            window_seconds: None,
            change: None,
        }
    }

    /// The same alert about a change made at the IdP outside fctr.
    #[must_use]
    pub fn change(mut self, change: ChangeRef) -> Self {
        self.change = Some(change);
        self
    }

    /// The same alert about `caller`.
    #[must_use]
    pub fn caller(mut self, caller: PseudoId) -> Self {
        self.caller = Some(caller);
        self
    }

    /// The same alert naming `agent`.
    #[must_use]
    pub fn agent(mut self, agent: PseudoId) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The same alert with the count that crossed a threshold in a window.
    #[must_use]
    pub fn counted(mut self, count: u32, window_seconds: u64) -> Self {
        self.count = Some(count);
        self.window_seconds = Some(window_seconds);
        self
    }

    /// The JSON body a webhook or SIEM receives: `{"type":"fctr.alert","id":…,"rule":…,…}`, keys in a fixed
    /// order, so a signature over these bytes is reproducible.
    #[must_use]
    pub fn payload(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            alert: &'a Alert,
        }
        serde_json::to_vec(&Body {
            kind: "fctr.alert",
            alert: self,
        })
        .unwrap_or_default()
    }
}

/// Delivers alerts somewhere people look (a webhook, a pager).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Delivers one alert, retrying transient failures as the adapter sees fit (bounded).
    ///
    /// # Errors
    /// [`PortError::Unavailable`] or [`PortError::Timeout`] when the receiver could not be reached after the
    /// adapter's retries, [`PortError::Upstream`] when it refused the alert. The alert is then lost to this sink:
    /// the caller records the failure (it is already in the audit log).
    async fn deliver(&self, alert: &Alert) -> Result<(), PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_carries_the_rule_pseudonyms_and_counts_only() {
        let p = PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = Alert::new(AlertRule::LookupsPerAgent, Severity::Warning, at)
            .agent(p.clone())
            .counted(31, 60);
        let v: serde_json::Value = serde_json::from_slice(&a.payload()).unwrap();
        assert_eq!(v["type"], "fctr.alert");
        assert_eq!(v["rule"], "lookups_per_agent");
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["agent"], p.as_str());
        assert_eq!(v["count"], 31);
        assert_eq!(v["window_seconds"], 60);
        assert!(v.get("caller").is_none());
        assert_eq!(v["id"], a.id.to_string());
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 8, "{keys:?}");
    }

    #[test]
    fn rule_names_are_distinct() {
        let names: std::collections::BTreeSet<_> =
            AlertRule::ALL.iter().map(AlertRule::as_str).collect();
        assert_eq!(names.len(), AlertRule::ALL.len());
    }
}
