//! The adapter contract suite: one list of named checks, generic over `Arc<dyn IdentityProvider>`.
//!
//! It runs in `cargo test` against the fake tenants, and against a real sandbox org through `fctr contract-test`.
//! What a target can do beyond the port (answer a phone, compute a TOTP code, inject upstream faults, observe
//! side effects) is described by optional drivers in [`Target`]; a check whose driver, fixture user or IdP
//! capability is missing is reported as [`Verdict::Skipped`] with the reason, never silently dropped.
//! Mutating checks run only when [`Target::mutating`] is set (against a real org: only with an explicit flag and
//! a designated test user).

mod checks;

use async_trait::async_trait;
use fctr_ports::{
    Action, ActionKind, ChallengeContext, ChallengeState, ChallengeTicket, CodeVerdict, FactorInfo,
    FactorKind, FactorStatus, IdentityProvider, PortError, SecretKind, SecretString, SubjectId,
    UserQuery,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How a simulated (or scripted) phone answers a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneAnswer {
    /// Approve, picking this number (number matching) or none.
    Approve(Option<u16>),
    /// Deny.
    Deny,
    /// Leave it unanswered.
    Ignore,
}

/// Answers pushes on a caller's phone.
#[async_trait]
pub trait Phone: Send + Sync {
    /// Answers the newest pending push to `subject`.
    ///
    /// # Errors
    /// A description when no push arrived or it could not be answered.
    async fn answer(&self, subject: &SubjectId, answer: PhoneAnswer) -> Result<(), String>;
}

/// Computes one-time codes for a caller's software token.
pub trait CodeSource: Send + Sync {
    /// The code valid now, if this source knows the factor's secret.
    fn current_code(&self, subject: &SubjectId, factor: &FactorInfo) -> Option<String>;
}

/// An upstream fault, injected on "get user" requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    /// 429 with a reset this many seconds ahead.
    RateLimited(u64),
    /// This HTTP status.
    Status(u16),
    /// A 200 with an unparsable body.
    MalformedBody,
}

/// Injects faults into the upstream the adapter talks to.
pub trait FaultInjector: Send + Sync {
    /// Makes the next `times` "get user" requests fail this way.
    fn inject_on_get_user(&self, fault: InjectedFault, times: u32);
    /// Removes every fault.
    fn clear(&self);
}

/// Lets a check make time pass upstream (push expiry) and observe effects the port does not show.
pub trait Upstream: Send + Sync {
    /// Advances the upstream's clock.
    fn advance_clock(&self, seconds: i64);
    /// How many times the user's sessions were revoked, if observable.
    fn sessions_revoked(&self, subject: &SubjectId) -> Option<u64>;
}

/// The fixture users a run may use. `None` skips the checks that need that user.
#[derive(Debug, Clone, Default)]
pub struct Fixture {
    /// An active user with an active push factor and a software TOTP factor.
    pub user: Option<SubjectId>,
    /// That user's login (for lookup by login).
    pub login: Option<String>,
    /// An id that does not exist.
    pub missing_user: Option<SubjectId>,
    /// A second active user with push, for push answers (so checks don't collide).
    pub push_user: Option<SubjectId>,
    /// A user whose TOTP codes the [`CodeSource`] can compute, for code checks.
    pub totp_user: Option<SubjectId>,
    /// Users for mutating checks, by action (a real org may use one designated test user for several).
    pub lifecycle: Vec<(ActionKind, SubjectId)>,
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It held.
    Passed,
    /// It did not; why.
    Failed(String),
    /// It was not run; why (capability, driver or fixture missing, or read-only run).
    Skipped(String),
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's stable name.
    pub name: &'static str,
    /// What it concluded.
    pub verdict: Verdict,
}

/// Everything a run needs.
#[derive(Clone)]
pub struct Target {
    /// The adapter under test.
    pub idp: Arc<dyn IdentityProvider>,
    /// Fixture users.
    pub fixture: Fixture,
    /// Answers pushes.
    pub phone: Option<Arc<dyn Phone>>,
    /// Computes TOTP codes.
    pub codes: Option<Arc<dyn CodeSource>>,
    /// Injects upstream faults.
    pub faults: Option<Arc<dyn FaultInjector>>,
    /// Upstream clock and effects.
    pub upstream: Option<Arc<dyn Upstream>>,
    /// The same adapter with credentials the IdP refuses (for the 401 check).
    pub unauthorized: Option<Arc<dyn IdentityProvider>>,
    /// The same adapter with credentials lacking a permission (for the 403 check).
    pub underprivileged: Option<Arc<dyn IdentityProvider>>,
    /// Run mutating checks.
    pub mutating: bool,
    /// Longest a check waits for a push to resolve.
    pub push_wait: Duration,
}

use checks::{
    Answer, Code, error_401, error_403, fault, lifecycle, list_factors, lookup_by_id,
    lookup_by_login, lookup_missing, push, totp,
};

/// The names of every check, in run order.
pub const CHECKS: &[&str] = &[
    "lookup_by_id",
    "lookup_by_login",
    "lookup_missing_user",
    "list_factors",
    "push_approved_with_right_number",
    "push_wrong_number_rejected",
    "push_denied",
    "push_timed_out",
    "totp_right",
    "totp_wrong",
    "totp_replayed",
    "error_401_unauthorized",
    "error_403_forbidden",
    "error_404_not_found",
    "error_429_retry_after",
    "error_5xx_upstream",
    "error_malformed_body",
    "lifecycle_clear_sessions",
    "lifecycle_reset_password",
    "lifecycle_expire_password",
    "lifecycle_unlock",
    "lifecycle_reset_factors",
    "lifecycle_remove_factor",
    "lifecycle_suspend",
    "lifecycle_unsuspend",
    "lifecycle_issue_temporary_access_pass",
];

type Check = Result<(), Verdict>;

fn fail(msg: impl Into<String>) -> Verdict {
    Verdict::Failed(msg.into())
}

fn skip(msg: impl Into<String>) -> Verdict {
    Verdict::Skipped(msg.into())
}

fn need<T: Clone>(v: &Option<T>, what: &str) -> Result<T, Verdict> {
    v.clone()
        .ok_or_else(|| skip(format!("no {what} in this target")))
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(fail(msg())) }
}

async fn run_one<F: Future<Output = Check>>(name: &'static str, f: F) -> CheckResult {
    let verdict = match f.await {
        Ok(()) => Verdict::Passed,
        Err(v) => v,
    };
    CheckResult { name, verdict }
}

/// Runs every check, in [`CHECKS`] order.
pub async fn run(t: &Target) -> Vec<CheckResult> {
    let mut out = Vec::with_capacity(CHECKS.len());
    out.push(run_one("lookup_by_id", lookup_by_id(t)).await);
    out.push(run_one("lookup_by_login", lookup_by_login(t)).await);
    out.push(run_one("lookup_missing_user", lookup_missing(t)).await);
    out.push(run_one("list_factors", list_factors(t)).await);
    out.push(run_one("push_approved_with_right_number", push(t, Answer::Right)).await);
    out.push(run_one("push_wrong_number_rejected", push(t, Answer::Wrong)).await);
    out.push(run_one("push_denied", push(t, Answer::Deny)).await);
    out.push(run_one("push_timed_out", push(t, Answer::Ignore)).await);
    out.push(run_one("totp_right", totp(t, Code::Right)).await);
    out.push(run_one("totp_wrong", totp(t, Code::Wrong)).await);
    out.push(run_one("totp_replayed", totp(t, Code::Replayed)).await);
    out.push(run_one("error_401_unauthorized", error_401(t)).await);
    out.push(run_one("error_403_forbidden", error_403(t)).await);
    out.push(run_one("error_404_not_found", lookup_missing(t)).await);
    out.push(
        run_one(
            "error_429_retry_after",
            fault(t, InjectedFault::RateLimited(30)),
        )
        .await,
    );
    out.push(run_one("error_5xx_upstream", fault(t, InjectedFault::Status(503))).await);
    out.push(
        run_one(
            "error_malformed_body",
            fault(t, InjectedFault::MalformedBody),
        )
        .await,
    );
    for (name, kind) in [
        ("lifecycle_clear_sessions", ActionKind::ClearSessions),
        ("lifecycle_reset_password", ActionKind::ResetPassword),
        ("lifecycle_expire_password", ActionKind::ExpirePassword),
        ("lifecycle_unlock", ActionKind::Unlock),
        ("lifecycle_reset_factors", ActionKind::ResetFactors),
        ("lifecycle_remove_factor", ActionKind::RemoveFactor),
        ("lifecycle_suspend", ActionKind::Suspend),
        ("lifecycle_unsuspend", ActionKind::Unsuspend),
        (
            "lifecycle_issue_temporary_access_pass",
            ActionKind::IssueTemporaryAccessPass,
        ),
    ] {
        out.push(run_one(name, lifecycle(t, kind)).await);
    }
    out
}

/// Prints results as a table (for the CLI and test logs).
#[must_use]
pub fn table(results: &[CheckResult]) -> String {
    let mut s = String::new();
    for r in results {
        let (tag, why) = match &r.verdict {
            Verdict::Passed => ("pass", String::new()),
            Verdict::Failed(m) => ("FAIL", format!("  {m}")),
            Verdict::Skipped(m) => ("skip", format!("  {m}")),
        };
        s.push_str(&format!("{tag:<5} {:<40}{why}\n", r.name));
    }
    let count = |f: fn(&Verdict) -> bool| results.iter().filter(|r| f(&r.verdict)).count();
    s.push_str(&format!(
        "{} passed, {} failed, {} skipped\n",
        count(|v| matches!(v, Verdict::Passed)),
        count(|v| matches!(v, Verdict::Failed(_))),
        count(|v| matches!(v, Verdict::Skipped(_)))
    ));
    s
}
