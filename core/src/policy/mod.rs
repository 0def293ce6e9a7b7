//! Policy as code: who may do what, which factors prove a caller, and the limits around it.
//!
//! A policy is a TOML file (see `examples/policy.toml` and `docs/policy.md`) parsed by [`Policy::parse`] into
//! validated types. Unknown keys and bad values are errors with a line, a column and a hint; settings that are
//! valid but risky are reported by [`Policy::warnings`]. [`Policy::default`] is the safe built-in policy, equal to
//! the documented example file.
//!
//! Rules the policy always keeps, whatever the file says:
//! - e-mail and security questions are never accepted factors (NIST SP 800-63B 5.1.3.1; KBA is no
//!   authenticator), and neither are factors an agent cannot check over the phone (WebAuthn, platform
//!   credentials, Temporary Access Passes, passwords);
//! - SMS and voice are restricted (SP 800-63B 5.1.3.3): off unless the same section opts in;
//! - protected groups are matched exactly (case-sensitive, by group id or name) and no portal action may touch
//!   their members;
//! - an agent without a role may do nothing.

mod choice;
mod error;
mod explain;
mod factors;
mod lint;
mod parse;
mod raw;

pub use choice::{FactorChoice, NoFactor};
pub use error::{PolicyError, PolicyWarning};
pub use explain::Explanation;
pub use factors::FactorRefusal;

use fctr_ports::{ActionKind, FactorKind, GroupRef};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;

/// A parsed, validated policy. Build it with [`Policy::parse`] or take the safe [`Policy::default`].
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Rules,
    digest: String,
}

/// Everything a policy says; two policies with equal rules behave identically.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rules {
    roles: Vec<Role>,
    standard: FactorRule,
    privileged: FactorRule,
    privileged_groups: Vec<String>,
    protected_groups: Vec<String>,
    window_minutes: u32,
    grant_lifetime_minutes: u32,
    reuse_idp_reads_seconds: u32,
    single_use_grants: bool,
    no_downgrade: bool,
    allow_agent_self_actions: bool,
    push_without_number_matching: PushWithoutNumberMatching,
    limits: Limits,
    tap: TapPolicy,
    locked_out: LockedOutPolicy,
    alarms: AlarmPolicy,
    four_eyes: FourEyesPolicy,
}

/// The digest reported by [`Policy::source_digest`] for the built-in default.
pub const BUILTIN_DIGEST: &str = "builtin-default";

impl Default for Rules {
    fn default() -> Self {
        use ActionKind as A;
        use Permission as P;
        let tier1 = vec![P::Lookup, P::Verify];
        let mut tier2 = tier1.clone();
        tier2.extend(
            [
                A::ClearSessions,
                A::Unlock,
                A::ResetPassword,
                A::ExpirePassword,
            ]
            .map(P::Act),
        );
        let mut tier3 = tier2.clone();
        tier3.extend(
            [
                A::ResetFactors,
                A::RemoveFactor,
                A::IssueTemporaryAccessPass,
                A::Suspend,
                A::Unsuspend,
            ]
            .map(P::Act),
        );
        tier3.push(P::ViewAudit);
        let role = |name: &str, perms: Vec<Permission>| Role {
            name: name.to_owned(),
            groups: vec![format!("fctr-{name}")],
            permissions: perms.into_iter().collect(),
        };
        Self {
            roles: vec![
                role("tier1", tier1),
                role("tier2", tier2),
                role("tier3", tier3),
            ],
            standard: FactorRule {
                accepted: vec![
                    FactorKind::Push,
                    FactorKind::Totp,
                    FactorKind::HardwareOtp,
                    FactorKind::Hotp,
                ],
                required: 1,
                allow_restricted_pstn: false,
            },
            privileged: FactorRule {
                accepted: vec![FactorKind::Push, FactorKind::Totp],
                required: 2,
                allow_restricted_pstn: false,
            },
            privileged_groups: vec!["fctr-privileged".to_owned()],
            protected_groups: vec!["fctr-protected".to_owned()],
            window_minutes: 10,
            grant_lifetime_minutes: 10,
            reuse_idp_reads_seconds: 30,
            single_use_grants: true,
            no_downgrade: true,
            allow_agent_self_actions: false,
            push_without_number_matching: PushWithoutNumberMatching::RequireAnotherFactor,
            limits: Limits::default(),
            tap: TapPolicy::default(),
            locked_out: LockedOutPolicy::default(),
            alarms: AlarmPolicy::default(),
            four_eyes: FourEyesPolicy::default(),
        }
    }
}

impl Default for Policy {
    /// The safe built-in policy: tier1 (lookup, verify), tier2 (+ sessions, unlock, password), tier3 (+ factors,
    /// TAP, suspend, audit); push/TOTP/hardware OTP/HOTP for standard targets, two of push/TOTP for members of
    /// `fctr-privileged`; `fctr-protected` untouchable; 10-minute window and single-use 10-minute grants; no
    /// downgrades. Semantically equal to `examples/policy.toml`.
    fn default() -> Self {
        Self {
            rules: Rules::default(),
            digest: BUILTIN_DIGEST.to_owned(),
        }
    }
}

impl Policy {
    /// Parses and validates a policy file. Keys left out take their documented defaults (an empty file is the
    /// default policy); a `[[roles]]` list, when present, replaces the default roles entirely.
    ///
    /// Never panics, whatever the input.
    ///
    /// # Errors
    /// [`PolicyError`] with the 1-based line and column of the first problem: TOML syntax, an unknown key, a value
    /// of the wrong type or out of range, a duplicate role, an unknown permission or factor kind, a factor that
    /// can never be accepted, and so on.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: raw::RawPolicy = toml::from_str(text).map_err(|e| error::from_toml(text, &e))?;
        let rules = Rules::try_from(raw).map_err(|e| e.locate(text))?;
        Ok(Policy {
            rules,
            digest: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// Hex SHA-256 of the source text, for audit events ("which policy decided this"); [`BUILTIN_DIGEST`] for
    /// the built-in default.
    #[must_use]
    pub fn source_digest(&self) -> &str {
        &self.digest
    }

    /// Whether two policies have the same rules, whatever their source text (comments, order, spacing).
    #[must_use]
    pub fn same_rules(&self, other: &Policy) -> bool {
        self.rules == other.rules
    }

    /// Risky but valid settings, in a stable order. The default policy has none.
    #[must_use]
    pub fn warnings(&self) -> Vec<PolicyWarning> {
        lint::warnings(&self.rules)
    }

    /// The roles, in file order.
    #[must_use]
    pub fn roles(&self) -> &[Role] {
        &self.rules.roles
    }

    /// The role with this name.
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.rules.roles.iter().find(|r| r.name == name)
    }

    /// The role an agent gets from their IdP groups (names or ids, exactly as the sign-in token carries them;
    /// matched case-sensitively). `None`: no role, so the agent may do nothing.
    ///
    /// When several roles match, the agent gets the one with the most permissions (roles are not merged, so
    /// the result is always a role someone wrote down); on a tie, the one written first in the file.
    #[must_use]
    pub fn role_for_groups(&self, groups: &[String]) -> Option<&Role> {
        let mut best: Option<&Role> = None;
        for role in &self.rules.roles {
            if !role.groups.iter().any(|g| groups.contains(g)) {
                continue;
            }
            match best {
                Some(b) if b.permissions.len() >= role.permissions.len() => {}
                _ => best = Some(role),
            }
        }
        best
    }

    /// The target's class: [`TargetClass::Privileged`] if any of its groups' id or name is a privileged group.
    #[must_use]
    pub fn classify(&self, groups: &[GroupRef]) -> TargetClass {
        if matches_any(groups, &self.rules.privileged_groups) {
            TargetClass::Privileged
        } else {
            TargetClass::Standard
        }
    }

    /// Whether the target is in a protected group (matched by group id or name, case-sensitive, exact): no
    /// portal action may touch them.
    #[must_use]
    pub fn is_protected(&self, groups: &[GroupRef]) -> bool {
        matches_any(groups, &self.rules.protected_groups)
    }

    /// The groups that make a target privileged.
    #[must_use]
    pub fn privileged_groups(&self) -> &[String] {
        &self.rules.privileged_groups
    }

    /// The protected groups.
    #[must_use]
    pub fn protected_groups(&self) -> &[String] {
        &self.rules.protected_groups
    }

    /// The factor rule for a target class.
    #[must_use]
    pub fn factor_rule(&self, class: TargetClass) -> &FactorRule {
        match class {
            TargetClass::Standard => &self.rules.standard,
            TargetClass::Privileged => &self.rules.privileged,
        }
    }

    /// How long an agent has to finish a verification once started (default 10 minutes).
    #[must_use]
    pub fn verification_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.rules.window_minutes))
    }

    /// How long a verification grant lives (default 10 minutes).
    #[must_use]
    pub fn grant_lifetime(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.rules.grant_lifetime_minutes))
    }

    /// How long what the IdP said about a caller (account, factors, groups, risk facts) is reused by the next
    /// step of the same flow, in the engine's memory only (default 30 s; zero: every step reads the IdP).
    #[must_use]
    pub fn reuse_idp_reads(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.rules.reuse_idp_reads_seconds))
    }

    /// Whether one action consumes a grant (default true).
    #[must_use]
    pub fn single_use_grants(&self) -> bool {
        self.rules.single_use_grants
    }

    /// Whether a weaker factor is refused when the caller has a stronger one enrolled (default true).
    #[must_use]
    pub fn no_downgrade(&self) -> bool {
        self.rules.no_downgrade
    }

    /// Whether an agent may verify and act on their own account through fctr (default false: another agent must).
    #[must_use]
    pub fn allow_agent_self_actions(&self) -> bool {
        self.rules.allow_agent_self_actions
    }

    /// What to do with pushes that carry no number to match (Entra, or an Okta push that came back without one).
    #[must_use]
    pub fn push_without_number_matching(&self) -> PushWithoutNumberMatching {
        self.rules.push_without_number_matching
    }

    /// Attempt limits.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.rules.limits
    }

    /// How Temporary Access Passes are issued.
    #[must_use]
    pub fn temporary_access_pass(&self) -> &TapPolicy {
        &self.rules.tap
    }

    /// The "not me" response and velocity alarms (`[alarms]`).
    #[must_use]
    pub fn alarms(&self) -> &AlarmPolicy {
        &self.rules.alarms
    }

    /// Four-eyes approval (`[four_eyes]`): which actions wait for a second agent, and who may approve.
    #[must_use]
    pub fn four_eyes(&self) -> &FourEyesPolicy {
        &self.rules.four_eyes
    }

    /// The locked-out procedure (`[locked_out]`).
    #[must_use]
    pub fn locked_out(&self) -> &LockedOutPolicy {
        &self.rules.locked_out
    }

    /// Whether the role has the permission.
    #[must_use]
    pub fn permits(&self, role: &Role, permission: Permission) -> bool {
        role.permissions.contains(&permission)
    }

    /// The actions the role may run (given a grant).
    #[must_use]
    pub fn permitted_actions(&self, role: &Role) -> BTreeSet<ActionKind> {
        role.permissions
            .iter()
            .filter_map(|p| match p {
                Permission::Act(a) => Some(*a),
                _ => None,
            })
            .collect()
    }
}

fn matches_any(groups: &[GroupRef], wanted: &[String]) -> bool {
    groups
        .iter()
        .any(|g| wanted.iter().any(|w| *w == g.id || *w == g.name))
}

/// A role: a name, the IdP groups that grant it, and what it permits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    name: String,
    groups: Vec<String>,
    permissions: BTreeSet<Permission>,
}

impl Role {
    /// The role's name (`[a-z0-9_-]{1,32}`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IdP groups (names or ids) that grant it.
    #[must_use]
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// What it permits.
    #[must_use]
    pub fn permissions(&self) -> &BTreeSet<Permission> {
        &self.permissions
    }
}

/// Something a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// Look callers up.
    Lookup,
    /// Verify callers (send challenges, check codes).
    Verify,
    /// Run one kind of high-risk action (with a live grant).
    Act(ActionKind),
    /// Read the audit log.
    ViewAudit,
}

impl Permission {
    /// Every permission, in a stable order.
    #[must_use]
    pub fn all() -> Vec<Permission> {
        let mut v = vec![Permission::Lookup, Permission::Verify];
        v.extend(ActionKind::ALL.map(Permission::Act));
        v.push(Permission::ViewAudit);
        v
    }

    /// The policy-file name: `lookup`, `verify`, `view_audit`, or an action kind's name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::Verify => "verify",
            Self::Act(a) => a.as_str(),
            Self::ViewAudit => "view_audit",
        }
    }

    /// Parses a policy-file name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Permission> {
        match s {
            "lookup" => Some(Self::Lookup),
            "verify" => Some(Self::Verify),
            "view_audit" => Some(Self::ViewAudit),
            other => ActionKind::parse(other).map(Self::Act),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Which factor rule applies to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetClass {
    /// Everyone not in a privileged group (`[factors.default]`).
    Standard,
    /// Members of a privileged group (`[factors.privileged]`).
    Privileged,
}

impl TargetClass {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Privileged => "privileged",
        }
    }
}

impl fmt::Display for TargetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The factors that may verify a class of target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorRule {
    accepted: Vec<FactorKind>,
    required: u8,
    allow_restricted_pstn: bool,
}

impl FactorRule {
    /// Accepted kinds, most preferred first. Never empty, never holds a kind that is not an authenticator.
    #[must_use]
    pub fn accepted(&self) -> &[FactorKind] {
        &self.accepted
    }

    /// How many distinct factor kinds a caller must prove (1..=3).
    #[must_use]
    pub fn required(&self) -> u8 {
        self.required
    }

    /// Whether the section opted in to SMS and voice.
    #[must_use]
    pub fn allows_restricted_pstn(&self) -> bool {
        self.allow_restricted_pstn
    }

    /// Whether the kind is accepted.
    #[must_use]
    pub fn accepts(&self, kind: &FactorKind) -> bool {
        self.accepted.contains(kind)
    }
}

/// What to do with a push that carries no number to match (Microsoft Entra through the MFA connector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushWithoutNumberMatching {
    /// Allow it, but only together with a second, different factor (the default).
    RequireAnotherFactor,
    /// Refuse it: such a push can never verify a caller.
    Refuse,
}

impl PushWithoutNumberMatching {
    /// The policy-file name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RequireAnotherFactor => "require_another_factor",
            Self::Refuse => "refuse",
        }
    }
}

/// What agents may do for a caller whose account the IdP reports locked out (`[locked_out]`). Okta does not
/// challenge a locked-out account (docs/idp-behaviour.md), so verifying first cannot work there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockedOutPolicy {
    /// The procedure (default [`LockedOutProcedure::UnlockThenVerify`]).
    pub procedure: LockedOutProcedure,
    /// Unlocks before verification per caller per 24 hours, by all agents (1..=5, default 1). Unlocking gives
    /// back password attempts; more than this per day is escalated.
    pub unlocks_per_caller_per_day: u32,
    /// What the agent is told to do when the procedure is escalation, or unlocking is refused (plain words from the
    /// policy file; at most 300 characters).
    pub escalation: String,
}

impl Default for LockedOutPolicy {
    fn default() -> Self {
        Self {
            procedure: LockedOutProcedure::UnlockThenVerify,
            unlocks_per_caller_per_day: 1,
            escalation: "Escalate to the identity team with the ticket reference; do not verify or change the \
                         account here."
                .to_owned(),
        }
    }
}

/// The locked-out procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockedOutProcedure {
    /// The agent may unlock a locked-out caller before verifying them (role permitting, audited, rate-limited):
    /// unlocking restores only the ability to try the current password and hands out no credential. Every other
    /// action still needs a verification.
    UnlockThenVerify,
    /// No action and no challenge: the card shows the escalation text.
    Escalate,
}

impl LockedOutProcedure {
    /// The policy-file name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UnlockThenVerify => "unlock_then_verify",
            Self::Escalate => "escalate",
        }
    }
}

/// Attempt limits. Every value is at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Challenges sent to one caller per hour, by all agents (stops push bombing). Default 5.
    pub challenges_per_target_per_hour: u32,
    /// Challenges one agent may send per hour. Default 60.
    pub challenges_per_agent_per_hour: u32,
    /// Wrong codes for one caller before their verification is locked. Default 3: below the 5 failed API factor checks after which Okta locks the account itself.
    pub wrong_codes_before_lockout: u32,
    /// How long that lock lasts. Default 30.
    pub lockout_minutes: u32,
    /// Lookups one agent may run per hour. Default 300.
    pub lookups_per_agent_per_hour: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            challenges_per_target_per_hour: 5,
            challenges_per_agent_per_hour: 60,
            wrong_codes_before_lockout: 3,
            lockout_minutes: 30,
            lookups_per_agent_per_hour: 300,
        }
    }
}

/// How Temporary Access Passes are issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TapPolicy {
    /// Lifetime of a pass in minutes (10..=480, default 60).
    pub lifetime_minutes: u32,
    /// Whether a pass works for one sign-in only (default true).
    pub one_time: bool,
}

impl Default for TapPolicy {
    fn default() -> Self {
        Self {
            lifetime_minutes: 60,
            one_time: true,
        }
    }
}

/// Four-eyes approval (`[four_eyes]`): see docs/four-eyes.md. Off by default (nothing listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FourEyesPolicy {
    /// Actions that always need a second agent's approval.
    pub actions: BTreeSet<ActionKind>,
    /// Target classes for which every action needs a second agent's approval.
    pub classes: Vec<TargetClass>,
    /// Roles whose agents may approve or refuse (never their own request, never about themselves).
    pub approver_roles: Vec<String>,
    /// How long a request waits for a decision, and an approval for its use, in seconds (60..=3600, default 600).
    pub request_ttl_seconds: u32,
}

impl Default for FourEyesPolicy {
    fn default() -> Self {
        Self {
            actions: BTreeSet::new(),
            classes: Vec::new(),
            approver_roles: Vec::new(),
            request_ttl_seconds: 600,
        }
    }
}

impl FourEyesPolicy {
    /// Whether anything is held back for approval.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.actions.is_empty() || !self.classes.is_empty()
    }

    /// Whether `action` on a caller of `class` needs a second agent's approval.
    #[must_use]
    pub fn applies(&self, action: ActionKind, class: TargetClass) -> bool {
        self.actions.contains(&action) || self.classes.contains(&class)
    }

    /// Whether agents with the role named `role` may decide approval requests.
    #[must_use]
    pub fn may_approve(&self, role: &str) -> bool {
        self.approver_roles.iter().any(|r| r == role)
    }

    /// How long a request waits for a decision, and an approval for its use.
    #[must_use]
    pub fn request_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.request_ttl_seconds))
    }
}

/// "Not me" and velocity alarms (`[alarms]`): see docs/alarms.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct AlarmPolicy {
    /// The response when a caller says a request was not theirs (`[alarms.not_me]`).
    pub not_me: NotMePolicy,
    /// Velocity rules (`[alarms.velocity]`).
    pub velocity: VelocityPolicy,
}

/// What fctr does when a caller denies a push, or the agent records that the caller said "that was not me".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NotMePolicy {
    /// Whether a push the caller denies triggers the response (default true). A "not me" the agent records always
    /// does.
    pub on_push_denied: bool,
    /// Clear the caller's sessions at the IdP (default true). A protective action: it needs no grant.
    pub clear_sessions: bool,
    /// Raise a `not_me` alert (default true).
    pub alert: bool,
    /// Refuse new verifications of and actions on the caller for this long, in seconds (0..=86400, default 1800;
    /// 0 = no block).
    pub block_actions_seconds: u32,
}

impl Default for NotMePolicy {
    fn default() -> Self {
        Self {
            on_push_denied: true,
            clear_sessions: true,
            alert: true,
            block_actions_seconds: 1800,
        }
    }
}

/// A velocity threshold: an alert when `count` events happen within `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VelocityRule {
    /// Events in the window that raise the alert (2..=10000).
    pub count: u32,
    /// The window in seconds (60..=86400); the alert fires at most once per window per subject.
    pub window_seconds: u32,
}

/// The velocity rules; `None` is a rule switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VelocityPolicy {
    /// Distinct agents that verified or failed to verify the same caller (default 3 in 1 hour).
    pub distinct_agents_per_caller: Option<VelocityRule>,
    /// Lookups by one agent (default 100 in 15 minutes; `[limits]` refuses at 300 an hour).
    pub lookups_per_agent: Option<VelocityRule>,
    /// Failed verifications of one caller: denied pushes, wrong codes (default 3 in 1 hour).
    pub failures_per_caller: Option<VelocityRule>,
    /// Failed verifications by one agent (default 10 in 1 hour).
    pub failures_per_agent: Option<VelocityRule>,
}

impl Default for VelocityPolicy {
    fn default() -> Self {
        let rule = |count, window_seconds| {
            Some(VelocityRule {
                count,
                window_seconds,
            })
        };
        Self {
            distinct_agents_per_caller: rule(3, 3600),
            lookups_per_agent: rule(100, 900),
            failures_per_caller: rule(3, 3600),
            failures_per_agent: rule(10, 3600),
        }
    }
}
