//! The adapter contract suite: one list of named checks, generic over `Arc<dyn IdentityProvider>`.
//!
//! It runs in `cargo test` against the fake tenants, and against a real sandbox org through `fctr contract-test`.
//! What a target can do beyond the port (answer a phone, compute a TOTP code, inject upstream faults, observe
//! side effects) is described by optional drivers in [`Target`]; a check whose driver, fixture user or IdP
//! capability is missing is reported as [`Verdict::Skipped`] with the reason, never silently dropped.
//! Mutating checks run only when [`Target::mutating`] is set (against a real org: only with an explicit flag and
//! a designated test user).

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

async fn lookup_by_id(t: &Target) -> Check {
    let id = need(&t.fixture.user, "fixture user")?;
    let u = t
        .idp
        .get_user(&id)
        .await
        .map_err(|e| fail(format!("get_user: {e}")))?;
    ensure(u.id == id, || "get_user returned another user".into())?;
    ensure(!u.login.is_empty(), || "login is empty".into())
}

async fn lookup_by_login(t: &Target) -> Check {
    let id = need(&t.fixture.user, "fixture user")?;
    let login = need(&t.fixture.login, "fixture login")?;
    let q = UserQuery::login(&login).map_err(|e| fail(format!("query: {e}")))?;
    let found = t
        .idp
        .find_users(&q, 10)
        .await
        .map_err(|e| fail(format!("find_users: {e}")))?;
    ensure(found.iter().any(|u| u.id == id), || {
        format!("{} result(s), none is the fixture user", found.len())
    })?;
    // Input that tries to break out of the search expression finds nothing rather than everything.
    let evil =
        UserQuery::login("x\" or profile.login sw \"").map_err(|e| fail(format!("query: {e}")))?;
    match t.idp.find_users(&evil, 10).await {
        Ok(v) => ensure(v.is_empty(), || {
            format!("an injection attempt matched {} user(s)", v.len())
        }),
        Err(PortError::Upstream { status: 400, .. }) => Ok(()),
        Err(e) => Err(fail(format!("injection attempt: unexpected error {e}"))),
    }
}

async fn lookup_missing(t: &Target) -> Check {
    let id = need(&t.fixture.missing_user, "missing-user id")?;
    match t.idp.get_user(&id).await {
        Err(PortError::NotFound) => Ok(()),
        Ok(_) => Err(fail("a missing user was found")),
        Err(e) => Err(fail(format!("expected NotFound, got {e}"))),
    }
}

async fn list_factors(t: &Target) -> Check {
    let id = need(&t.fixture.user, "fixture user")?;
    let f = t
        .idp
        .list_factors(&id)
        .await
        .map_err(|e| fail(format!("list_factors: {e}")))?;
    let caps = t.idp.capabilities();
    if caps.push {
        ensure(
            f.iter()
                .any(|x| x.kind == FactorKind::Push && x.status == FactorStatus::Active),
            || "no active push factor on the fixture user".into(),
        )?;
    }
    ensure(!f.is_empty(), || "no factors listed".into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Right,
    Wrong,
    Deny,
    Ignore,
}

async fn push_factor(t: &Target, id: &SubjectId) -> Result<FactorInfo, Verdict> {
    let factors = t
        .idp
        .list_factors(id)
        .await
        .map_err(|e| fail(format!("list_factors: {e}")))?;
    factors
        .into_iter()
        .find(|f| f.kind == FactorKind::Push && f.status == FactorStatus::Active)
        .ok_or_else(|| skip("the push user has no active push factor"))
}

async fn wait_final(t: &Target, ticket: &ChallengeTicket) -> Result<ChallengeState, Verdict> {
    let deadline = tokio::time::Instant::now() + t.push_wait;
    loop {
        let st = t
            .idp
            .poll(ticket)
            .await
            .map_err(|e| fail(format!("poll: {e}")))?;
        if st.is_final() || tokio::time::Instant::now() >= deadline {
            return Ok(st);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn push(t: &Target, answer: Answer) -> Check {
    let caps = t.idp.capabilities();
    if !caps.push {
        return Err(skip("capability: this IdP offers no push challenge"));
    }
    if answer == Answer::Wrong && !caps.push_number_matching {
        return Err(skip("capability: this IdP's push has no number matching"));
    }
    let phone = need(&t.phone, "phone driver")?;
    let id = need(
        &t.fixture
            .push_user
            .clone()
            .or_else(|| t.fixture.user.clone()),
        "push user",
    )?;
    if answer == Answer::Ignore && t.upstream.is_none() {
        return Err(skip(
            "no upstream clock: waiting out a real push lifetime is too slow",
        ));
    }
    let factor = push_factor(t, &id).await?;
    let ticket = t
        .idp
        .start(&id, &factor, &ChallengeContext::default())
        .await
        .map_err(|e| fail(format!("start: {e}")))?;
    if caps.push_number_matching {
        ensure(ticket.number.is_some(), || {
            "number matching is on but the ticket has no number".into()
        })?;
    }
    let st = t
        .idp
        .poll(&ticket)
        .await
        .map_err(|e| fail(format!("first poll: {e}")))?;
    ensure(st == ChallengeState::Waiting, || {
        format!("a fresh push is {st:?}, not waiting")
    })?;
    let reply = match answer {
        Answer::Right => PhoneAnswer::Approve(ticket.number),
        Answer::Wrong => {
            PhoneAnswer::Approve(ticket.number.map(|n| if n == 99 { 10 } else { n + 1 }))
        }
        Answer::Deny => PhoneAnswer::Deny,
        Answer::Ignore => PhoneAnswer::Ignore,
    };
    phone
        .answer(&id, reply)
        .await
        .map_err(|e| fail(format!("phone: {e}")))?;
    if answer == Answer::Ignore {
        if let Some(u) = &t.upstream {
            u.advance_clock(11 * 60);
        }
    }
    let st = wait_final(t, &ticket).await?;
    let want = match answer {
        Answer::Right => ChallengeState::Approved,
        Answer::Wrong | Answer::Deny => ChallengeState::Rejected,
        Answer::Ignore => ChallengeState::TimedOut,
    };
    ensure(st == want, || format!("expected {want:?}, got {st:?}"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Code {
    Right,
    Wrong,
    Replayed,
}

async fn totp(t: &Target, which: Code) -> Check {
    if !t.idp.capabilities().code_verification {
        return Err(skip("capability: this IdP cannot check one-time codes"));
    }
    let codes = need(&t.codes, "code source")?;
    let id = need(
        &t.fixture
            .totp_user
            .clone()
            .or_else(|| t.fixture.user.clone()),
        "TOTP user",
    )?;
    let factors = t
        .idp
        .list_factors(&id)
        .await
        .map_err(|e| fail(format!("list_factors: {e}")))?;
    let factor = factors
        .into_iter()
        .find(|f| f.kind == FactorKind::Totp && f.status == FactorStatus::Active)
        .ok_or_else(|| skip("the TOTP user has no active TOTP factor"))?;
    let good = codes
        .current_code(&id, &factor)
        .ok_or_else(|| skip("the code source does not know this factor"))?;
    let verify = |code: String| {
        let idp = t.idp.clone();
        let id = id.clone();
        let factor = factor.clone();
        async move {
            idp.verify_code(&id, &factor, SecretString::from(code))
                .await
        }
    };
    match which {
        Code::Right => {
            let v = verify(good)
                .await
                .map_err(|e| fail(format!("verify_code: {e}")))?;
            ensure(v == CodeVerdict::Accepted, || format!("right code: {v:?}"))
        }
        Code::Wrong => {
            let wrong = format!(
                "{:06}",
                (good.parse::<u32>().unwrap_or(0) + 500_000) % 1_000_000
            );
            let v = verify(wrong)
                .await
                .map_err(|e| fail(format!("verify_code: {e}")))?;
            ensure(v == CodeVerdict::Wrong, || format!("wrong code: {v:?}"))
        }
        Code::Replayed => {
            // Use the code once (it may already have been used by `totp_right` in this window: either way the
            // second use must be refused as a replay).
            let _ = verify(good.clone()).await;
            let v = verify(good)
                .await
                .map_err(|e| fail(format!("verify_code: {e}")))?;
            ensure(v == CodeVerdict::Replayed, || {
                format!("replayed code: {v:?}")
            })
        }
    }
}

async fn error_401(t: &Target) -> Check {
    let idp = need(&t.unauthorized, "adapter with refused credentials")?;
    let id = need(&t.fixture.user, "fixture user")?;
    match idp.get_user(&id).await {
        Err(PortError::Unauthorized) => Ok(()),
        Ok(_) => Err(fail("refused credentials were accepted")),
        Err(e) => Err(fail(format!("expected Unauthorized, got {e}"))),
    }
}

async fn error_403(t: &Target) -> Check {
    let idp = need(&t.underprivileged, "adapter lacking a permission")?;
    let id = need(&t.fixture.user, "fixture user")?;
    match idp.execute(&id, &Action::Suspend).await {
        Err(PortError::Forbidden { missing }) => ensure(missing.is_some(), || {
            "Forbidden does not say what is missing".into()
        }),
        Ok(_) => Err(fail("an underprivileged adapter ran a lifecycle action")),
        Err(e) => Err(fail(format!("expected Forbidden, got {e}"))),
    }
}

async fn fault(t: &Target, f: InjectedFault) -> Check {
    let faults = need(&t.faults, "fault injector")?;
    let id = need(&t.fixture.user, "fixture user")?;
    // Enough faults to outlast the adapter's bounded retries of a GET.
    faults.inject_on_get_user(f, 10);
    let got = t.idp.get_user(&id).await;
    faults.clear();
    match (f, got) {
        (InjectedFault::RateLimited(secs), Err(PortError::RateLimited { retry_after })) => {
            let ra = retry_after.ok_or_else(|| fail("429 without a retry-after"))?;
            ensure(ra.as_secs() >= 1 && ra.as_secs() <= secs + 2, || {
                format!("retry_after {ra:?} for a {secs}s reset")
            })
        }
        (InjectedFault::Status(s), Err(PortError::Upstream { status, .. })) => {
            ensure(status == s, || format!("status {status}, injected {s}"))
        }
        (InjectedFault::Status(_), Err(PortError::Unavailable)) => Ok(()),
        (InjectedFault::MalformedBody, Err(PortError::Malformed)) => Ok(()),
        (_, Ok(_)) => Err(fail("the fault was not reported")),
        (_, Err(e)) => Err(fail(format!("unexpected mapping: {e}"))),
    }
}

fn action_for(kind: ActionKind, factor: Option<&FactorInfo>) -> Option<Action> {
    Some(match kind {
        ActionKind::ClearSessions => Action::ClearSessions {
            revoke_oauth_tokens: true,
        },
        ActionKind::ResetPassword => Action::ResetPassword { send_email: false },
        ActionKind::ExpirePassword => Action::ExpirePassword,
        ActionKind::Unlock => Action::Unlock,
        ActionKind::ResetFactors => Action::ResetFactors,
        ActionKind::RemoveFactor => Action::RemoveFactor(factor?.id.clone()),
        ActionKind::IssueTemporaryAccessPass => Action::IssueTemporaryAccessPass {
            lifetime_minutes: 60,
            one_time: true,
        },
        ActionKind::Suspend => Action::Suspend,
        ActionKind::Unsuspend => Action::Unsuspend,
        _ => return None,
    })
}

async fn lifecycle(t: &Target, kind: ActionKind) -> Check {
    let caps = t.idp.capabilities();
    let user = t
        .fixture
        .lifecycle
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, u)| u.clone());
    if !caps.actions.contains(&kind) {
        // The skip must be honest: the adapter refuses the action rather than faking it.
        if let Some(u) = &user {
            if t.mutating {
                let factors = t.idp.list_factors(u).await.unwrap_or_default();
                if let Some(a) = action_for(kind, factors.first()) {
                    match t.idp.execute(u, &a).await {
                        Err(PortError::Unsupported) => {}
                        Ok(_) => {
                            return Err(fail("capabilities say unsupported, but the action ran"));
                        }
                        Err(e) => {
                            return Err(fail(format!(
                                "capabilities say unsupported; expected Unsupported, got {e}"
                            )));
                        }
                    }
                }
            }
        }
        return Err(skip(format!(
            "capability: this IdP cannot {}",
            kind.describe()
        )));
    }
    if !t.mutating {
        return Err(skip(
            "read-only run (mutating checks need --mutating and a test user)",
        ));
    }
    let id = user.ok_or_else(|| skip("no fixture user for this action"))?;
    let before = t
        .idp
        .get_user(&id)
        .await
        .map_err(|e| fail(format!("get_user: {e}")))?;
    let factors = t
        .idp
        .list_factors(&id)
        .await
        .map_err(|e| fail(format!("list_factors: {e}")))?;
    // A password is listed as a method by some IdPs (Entra) but is never "a factor to remove".
    let removable = factors
        .iter()
        .find(|f| f.status == FactorStatus::Active && f.kind != FactorKind::Password)
        .cloned();
    let action = action_for(kind, removable.as_ref()).ok_or_else(|| skip("no factor to remove"))?;
    let sessions_before = t.upstream.as_ref().and_then(|u| u.sessions_revoked(&id));
    let receipt = t
        .idp
        .execute(&id, &action)
        .await
        .map_err(|e| fail(format!("execute: {e}")))?;
    ensure(receipt.kind == kind, || {
        format!("receipt for {:?}", receipt.kind)
    })?;
    let after = t
        .idp
        .get_user(&id)
        .await
        .map_err(|e| fail(format!("get_user after: {e}")))?;
    use fctr_ports::AccountStatus as S;
    match kind {
        ActionKind::ClearSessions => {
            if let (Some(b), Some(u)) = (sessions_before, &t.upstream) {
                let a = u.sessions_revoked(&id).unwrap_or(b);
                ensure(a == b + 1, || format!("sessions revoked {b} -> {a}"))?;
            }
            Ok(())
        }
        ActionKind::ResetPassword => ensure(
            receipt.emailed
                || receipt
                    .secret
                    .as_ref()
                    .is_some_and(|s| s.kind == SecretKind::ResetLink),
            || "no reset link returned and nothing e-mailed".into(),
        ),
        ActionKind::ExpirePassword => ensure(
            receipt
                .secret
                .as_ref()
                .is_some_and(|s| s.kind == SecretKind::TemporaryPassword),
            || "no temporary password returned".into(),
        ),
        ActionKind::Unlock => ensure(after.status == S::Active, || {
            format!("status after unlock: {}", after.status)
        }),
        ActionKind::ResetFactors => {
            let left = t
                .idp
                .list_factors(&id)
                .await
                .map_err(|e| fail(format!("list_factors after: {e}")))?;
            ensure(
                left.iter()
                    .all(|f| f.kind == FactorKind::Password || f.kind == FactorKind::Email),
                || format!("{} factor(s) left after reset", left.len()),
            )
        }
        ActionKind::RemoveFactor => {
            let gone = removable.map(|f| f.id);
            let left = t
                .idp
                .list_factors(&id)
                .await
                .map_err(|e| fail(format!("list_factors after: {e}")))?;
            ensure(!left.iter().any(|f| Some(&f.id) == gone.as_ref()), || {
                "the factor is still listed".into()
            })
        }
        ActionKind::Suspend => ensure(matches!(after.status, S::Suspended | S::Disabled), || {
            format!(
                "status after suspend: {} (was {})",
                after.status, before.status
            )
        }),
        ActionKind::Unsuspend => ensure(after.status == S::Active, || {
            format!("status after unsuspend: {}", after.status)
        }),
        ActionKind::IssueTemporaryAccessPass => ensure(
            receipt
                .secret
                .as_ref()
                .is_some_and(|s| s.kind == SecretKind::TemporaryAccessPass),
            || "no temporary access pass returned".into(),
        ),
        _ => Ok(()),
    }
}
