//! The policy file as written: serde DTOs that mirror the TOML exactly, with spans on every value that is checked
//! after deserialization. Nothing here is trusted; [`super::parse`] turns it into validated domain types.
//!
//! Numbers are read as `i64` (TOML's integer type) so that a negative or huge value reaches our own range check
//! and its friendly message, instead of a serde "expected u32".

use serde::Deserialize;
use toml::Spanned;

/// A list of strings with a span for the list and for each entry.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub version: Option<Spanned<i64>>,
    pub verification: Option<RawVerification>,
    pub limits: Option<RawLimits>,
    pub temporary_access_pass: Option<RawTap>,
    pub locked_out: Option<RawLockedOut>,
    pub protected: Option<RawProtected>,
    pub factors: Option<RawFactors>,
    pub roles: Option<Vec<RawRole>>,
    pub alarms: Option<RawAlarms>,
    pub four_eyes: Option<RawFourEyes>,
}

/// `[four_eyes]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFourEyes {
    pub actions: Option<SpannedList>,
    pub classes: Option<SpannedList>,
    pub approver_roles: Option<SpannedList>,
    pub request_ttl_seconds: Option<Spanned<i64>>,
}

/// `[alarms]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarms {
    pub not_me: Option<RawNotMe>,
    pub velocity: Option<RawVelocity>,
}

/// `[alarms.not_me]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotMe {
    pub on_push_denied: Option<bool>,
    pub clear_sessions: Option<bool>,
    pub alert: Option<bool>,
    pub block_actions_seconds: Option<Spanned<i64>>,
}

/// `[alarms.velocity]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVelocity {
    pub distinct_agents_per_caller: Option<RawVelocityRule>,
    pub lookups_per_agent: Option<RawVelocityRule>,
    pub failures_per_caller: Option<RawVelocityRule>,
    pub failures_per_agent: Option<RawVelocityRule>,
}

/// One velocity rule: `{ count = 3, window_seconds = 3600 }`, or `{ enabled = false }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVelocityRule {
    pub enabled: Option<bool>,
    pub count: Option<Spanned<i64>>,
    pub window_seconds: Option<Spanned<i64>>,
}

/// `[verification]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVerification {
    pub window_minutes: Option<Spanned<i64>>,
    pub grant_lifetime_minutes: Option<Spanned<i64>>,
    pub reuse_idp_reads_seconds: Option<Spanned<i64>>,
    pub single_use_grants: Option<bool>,
    pub no_downgrade: Option<bool>,
    pub allow_agent_self_actions: Option<bool>,
    pub push_without_number_matching: Option<Spanned<String>>,
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub challenges_per_target_per_hour: Option<Spanned<i64>>,
    pub challenges_per_agent_per_hour: Option<Spanned<i64>>,
    pub wrong_codes_before_lockout: Option<Spanned<i64>>,
    pub lockout_minutes: Option<Spanned<i64>>,
    pub lookups_per_agent_per_hour: Option<Spanned<i64>>,
}

/// `[temporary_access_pass]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTap {
    pub lifetime_minutes: Option<Spanned<i64>>,
    pub one_time: Option<bool>,
}

/// `[locked_out]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLockedOut {
    pub procedure: Option<Spanned<String>>,
    pub unlocks_per_caller_per_day: Option<Spanned<i64>>,
    pub escalation: Option<Spanned<String>>,
}

/// `[protected]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtected {
    pub groups: SpannedList,
}

/// `[factors]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFactors {
    pub default: Option<RawFactorClass>,
    pub privileged: Option<RawPrivileged>,
}

/// `[factors.default]`: every target that is not privileged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFactorClass {
    pub accepted: Option<SpannedList>,
    pub required: Option<Spanned<i64>>,
    pub allow_restricted_pstn: Option<bool>,
}

/// `[factors.privileged]`: like `[factors.default]`, plus the groups that make a target privileged.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivileged {
    pub groups: Option<SpannedList>,
    pub accepted: Option<SpannedList>,
    pub required: Option<Spanned<i64>>,
    pub allow_restricted_pstn: Option<bool>,
}

/// One `[[roles]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub name: Spanned<String>,
    pub groups: SpannedList,
    pub permissions: SpannedList,
}
