//! The checks themselves, one function a check; [`super::run`] calls them in [`super::CHECKS`] order.

use super::*;

pub(super) async fn lookup_by_id(t: &Target) -> Check {
    let id = need(&t.fixture.user, "fixture user")?;
    let u = t
        .idp
        .get_user(&id)
        .await
        .map_err(|e| fail(format!("get_user: {e}")))?;
    ensure(u.id == id, || "get_user returned another user".into())?;
    ensure(!u.login.is_empty(), || "login is empty".into())
}

pub(super) async fn lookup_by_login(t: &Target) -> Check {
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

pub(super) async fn lookup_missing(t: &Target) -> Check {
    let id = need(&t.fixture.missing_user, "missing-user id")?;
    match t.idp.get_user(&id).await {
        Err(PortError::NotFound) => Ok(()),
        Ok(_) => Err(fail("a missing user was found")),
        Err(e) => Err(fail(format!("expected NotFound, got {e}"))),
    }
}

pub(super) async fn list_factors(t: &Target) -> Check {
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
pub(super) enum Answer {
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

pub(super) async fn push(t: &Target, answer: Answer) -> Check {
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
pub(super) enum Code {
    Right,
    Wrong,
    Replayed,
}

pub(super) async fn totp(t: &Target, which: Code) -> Check {
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

pub(super) async fn error_401(t: &Target) -> Check {
    let idp = need(&t.unauthorized, "adapter with refused credentials")?;
    let id = need(&t.fixture.user, "fixture user")?;
    match idp.get_user(&id).await {
        Err(PortError::Unauthorized) => Ok(()),
        Ok(_) => Err(fail("refused credentials were accepted")),
        Err(e) => Err(fail(format!("expected Unauthorized, got {e}"))),
    }
}

pub(super) async fn error_403(t: &Target) -> Check {
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

pub(super) async fn fault(t: &Target, f: InjectedFault) -> Check {
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

pub(super) async fn lifecycle(t: &Target, kind: ActionKind) -> Check {
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
