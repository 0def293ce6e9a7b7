//! The checks of [`SessionStore`]: create-once, tombstones, atomic updates from two replicas, the role's
//! compare-and-set on time, timeouts, pre-login state taken once.

use super::support::{Ctx, LONGEST, PAST_SHORT, SHORT, all_ok, concurrently, ensure, fail, made};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{AgentId, PreLogin, Session, SessionStore, SubjectId, Timeouts, VerificationId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The session store's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Sessions;
    "session_create_once" => create_once,
    "session_tombstone_blocks_writes" => tombstone_blocks_writes,
    "session_made_up_remove_leaves_nothing" => made_up_remove_leaves_nothing,
    "session_add_caller_keeps_both_handles" => add_caller_keeps_both_handles,
    "session_add_caller_one_handle_per_caller" => add_caller_one_handle_per_caller,
    "session_add_verification_keeps_all" => add_verification_keeps_all,
    "session_set_role_newer_wins" => set_role_newer_wins,
    "session_idle_timeout_on_touch" => idle_timeout_on_touch,
    "session_absolute_timeout" => absolute_timeout,
    "pre_login_taken_once" => pre_login_taken_once,
    "pre_login_expiry" => pre_login_expiry,
];

/// Timeouts no check waits out.
const LASTING: Timeouts = Timeouts {
    idle: Duration::from_secs(600),
    absolute: Duration::from_secs(3600),
    pre_login: Duration::from_secs(600),
};

async fn store(
    f: Arc<dyn StoreFixture>,
    timeouts: Timeouts,
) -> Result<Replicas<dyn SessionStore>, Verdict> {
    made(f.sessions(timeouts).await, Port::Sessions)
}

/// A random id, as the portal draws one.
fn random_id(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

fn subject(n: usize) -> Result<SubjectId, Verdict> {
    SubjectId::parse(format!("00u-suite-{n}"))
        .map_err(|e| fail(format!("test data: subject id: {e}")))
}

/// A new session for a test agent, started at `now`.
fn session(now: DateTime<Utc>) -> Result<Session, Verdict> {
    let agent = AgentId::parse("agent-suite@example.com")
        .map_err(|e| fail(format!("test data: agent id: {e}")))?;
    Ok(Session::new(
        random_id("sess"),
        random_id("csrf"),
        agent,
        Some("tier1".into()),
        now,
    ))
}

/// Stores a new session (it must be accepted).
async fn created(r: &Replicas<dyn SessionStore>) -> Result<Session, Verdict> {
    let s = session(r.time.now())?;
    ensure(r.a.create(&s).await.ctx("create")?, || {
        "create of a new id returned false".into()
    })?;
    Ok(s)
}

async fn get(s: &Arc<dyn SessionStore>, id: &str) -> Result<Option<Session>, Verdict> {
    s.get(id).await.ctx("get")
}

/// `s` as stored, its version aside (the store may bump it).
fn same_but_version(stored: &Session, want: &Session) -> bool {
    *stored
        == Session {
            version: stored.version,
            ..want.clone()
        }
}

/// Of 16 concurrent creates of one id (both replicas), exactly one succeeds and its session is what is stored.
async fn create_once(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let first = session(r.time.now())?;
    let candidates: Vec<Session> = (0..16)
        .map(|i| Session {
            csrf: format!("csrf-{i}"),
            ..first.clone()
        })
        .collect();
    let outputs = concurrently(candidates.len(), |i| {
        let s = r.pick(i);
        let c = candidates.get(i).cloned();
        async move {
            match c {
                Some(c) => s.create(&c).await,
                None => Ok(false),
            }
        }
    })
    .await?;
    let won: Vec<usize> = all_ok(outputs, "create")?
        .iter()
        .enumerate()
        .filter(|(_, ok)| **ok)
        .map(|(i, _)| i)
        .collect();
    ensure(won.len() == 1, || {
        format!(
            "{} of 16 concurrent creates of one id succeeded (exactly one must)",
            won.len()
        )
    })?;
    let stored = get(&r.b, &first.id).await?;
    let winner = won.first().and_then(|i| candidates.get(*i));
    match (stored, winner) {
        (Some(s), Some(w)) => ensure(same_but_version(&s, w), || {
            "the stored session is not the one whose create succeeded".into()
        }),
        (None, _) => Err(fail("the created session does not read back")),
        (Some(_), None) => Ok(()),
    }
}

/// After `remove` (on the other replica), the id is a tombstone: it reads as absent, cannot be created again, and
/// no update brings it back.
async fn tombstone_blocks_writes(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let s = created(&r).await?;
    r.b.remove(&s.id).await.ctx("remove")?;
    ensure(get(&r.a, &s.id).await?.is_none(), || {
        "a removed session still reads".into()
    })?;
    ensure(!r.a.create(&s).await.ctx("create")?, || {
        "a removed session's id was created again".into()
    })?;
    ensure(r.b.touch(&s.id).await.ctx("touch")?.is_none(), || {
        "touch of a removed session returned a session".into()
    })?;
    let handle =
        r.a.add_caller(&s.id, &subject(1)?, "h-late")
            .await
            .ctx("add_caller")?;
    ensure(handle.is_none(), || {
        "add_caller on a removed session returned a handle".into()
    })?;
    ensure(
        !r.b.add_verification(&s.id, VerificationId::random(), "h-late")
            .await
            .ctx("add_verification")?,
        || "add_verification on a removed session returned true".into(),
    )?;
    let later = s.role_checked + TimeDelta::seconds(5);
    ensure(
        !r.a.set_role(&s.id, Some("tier3".into()), later)
            .await
            .ctx("set_role")?,
        || "set_role on a removed session returned true".into(),
    )?;
    ensure(get(&r.b, &s.id).await?.is_none(), || {
        "an update brought a removed session back".into()
    })
}

/// Removing ids that are no session (a cookie value a client made up) leaves nothing behind: the same id can then
/// be created.
async fn made_up_remove_leaves_nothing(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let s = session(r.time.now())?;
    for i in 0..4 {
        r.pick(i).remove(&s.id).await.ctx("remove")?;
    }
    ensure(get(&r.a, &s.id).await?.is_none(), || {
        "removing a made-up id made a session".into()
    })?;
    ensure(r.b.create(&s).await.ctx("create")?, || {
        "after removes of an id that was never a session, creating it failed (a tombstone was left)"
            .into()
    })?;
    ensure(get(&r.a, &s.id).await?.is_some(), || {
        "the session created after made-up removes does not read".into()
    })
}

/// 16 concurrent `add_caller`s of different callers over both replicas, with touches in between: every caller
/// keeps its own handle.
async fn add_caller_keeps_both_handles(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let s = created(&r).await?;
    let subjects: Vec<SubjectId> = (0..16).map(subject).collect::<Result<_, _>>()?;
    let outputs = concurrently(24, |i| {
        let st = r.pick(i);
        let id = s.id.clone();
        let who = subjects.get(i).cloned();
        async move {
            match who {
                Some(who) => st.add_caller(&id, &who, &format!("h-{i}")).await,
                None => st.touch(&id).await.map(|t| t.map(|_| String::new())),
            }
        }
    })
    .await?;
    let answers = all_ok(outputs, "add_caller or touch")?;
    for (i, h) in answers.iter().enumerate().take(subjects.len()) {
        let want = format!("h-{i}");
        ensure(h.as_deref() == Some(want.as_str()), || {
            format!("add_caller of a new caller answered {h:?}, not its new handle {want:?}")
        })?;
    }
    let stored = get(&r.b, &s.id)
        .await?
        .ok_or_else(|| fail("the session is gone after concurrent updates"))?;
    let want: HashMap<String, SubjectId> = subjects
        .iter()
        .enumerate()
        .map(|(i, who)| (format!("h-{i}"), who.clone()))
        .collect();
    ensure(stored.callers == want, || {
        format!(
            "after 16 concurrent add_callers the session holds {} of the 16 handles (an update overwrote another)",
            want.keys()
                .filter(|h| stored.callers.get(*h) == want.get(*h))
                .count()
        )
    })
}

/// 16 concurrent `add_caller`s of the same caller with different new handles all answer one handle, and the
/// session holds that one only.
async fn add_caller_one_handle_per_caller(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let s = created(&r).await?;
    let who = subject(7)?;
    let outputs = concurrently(16, |i| {
        let st = r.pick(i);
        let id = s.id.clone();
        let who = who.clone();
        async move { st.add_caller(&id, &who, &format!("h-{i}")).await }
    })
    .await?;
    let answers: HashSet<Option<String>> = all_ok(outputs, "add_caller")?.into_iter().collect();
    ensure(answers.len() == 1, || {
        format!(
            "16 concurrent add_callers of one caller answered {} different handles (one must)",
            answers.len()
        )
    })?;
    let handle = answers
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| fail("add_caller on a live session answered None"))?;
    let again =
        r.b.add_caller(&s.id, &who, "h-later")
            .await
            .ctx("add_caller")?;
    ensure(again.as_deref() == Some(handle.as_str()), || {
        format!("a later add_caller of the same caller answered {again:?}, not {handle:?}")
    })?;
    let stored = get(&r.a, &s.id)
        .await?
        .ok_or_else(|| fail("the session is gone"))?;
    let held: Vec<&String> = stored
        .callers
        .iter()
        .filter(|(_, s)| **s == who)
        .map(|(h, _)| h)
        .collect();
    ensure(held == vec![&handle], || {
        format!(
            "the session holds {} handles for one caller (exactly one must)",
            held.len()
        )
    })
}

/// 16 concurrent `add_verification`s over both replicas, with role re-checks in between: every verification is
/// kept.
async fn add_verification_keeps_all(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let s = created(&r).await?;
    let vids: Vec<VerificationId> = (0..16).map(|_| VerificationId::random()).collect();
    let outputs = concurrently(24, |i| {
        let st = r.pick(i);
        let id = s.id.clone();
        let vid = vids.get(i).copied();
        let at = s.role_checked + TimeDelta::seconds(i64::try_from(i).unwrap_or(0));
        async move {
            match vid {
                Some(vid) => st.add_verification(&id, vid, &format!("h-{i}")).await,
                None => st
                    .set_role(&id, Some("tier2".into()), at)
                    .await
                    .map(|_| true),
            }
        }
    })
    .await?;
    let answers = all_ok(outputs, "add_verification or set_role")?;
    ensure(answers.iter().all(|ok| *ok), || {
        "add_verification on a live session returned false".into()
    })?;
    let stored = get(&r.b, &s.id)
        .await?
        .ok_or_else(|| fail("the session is gone after concurrent updates"))?;
    let kept = vids
        .iter()
        .enumerate()
        .filter(|(i, v)| stored.verifications.get(*v) == Some(&format!("h-{i}")))
        .count();
    ensure(kept == 16 && stored.verifications.len() == 16, || {
        format!(
            "after 16 concurrent add_verifications the session holds {kept} of them (an update overwrote another)"
        )
    })
}

/// `set_role` stores only a check at least as new as the stored one, from either replica; of concurrent re-checks
/// the newest wins whatever the order they land in.
async fn set_role_newer_wins(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let s = created(&r).await?;
    let t = s.role_checked;
    let at = |secs: i64| t + TimeDelta::seconds(secs);
    ensure(
        r.a.set_role(&s.id, Some("tier2".into()), at(2))
            .await
            .ctx("set_role")?,
        || "set_role with a newer check time returned false".into(),
    )?;
    ensure(
        !r.b.set_role(&s.id, Some("tier1".into()), at(1))
            .await
            .ctx("set_role")?,
        || "set_role with an older check time returned true".into(),
    )?;
    let stored = get(&r.a, &s.id)
        .await?
        .ok_or_else(|| fail("the session is gone"))?;
    ensure(
        stored.role.as_deref() == Some("tier2") && stored.role_checked == at(2),
        || {
            format!(
                "after a newer and then an older re-check the role is {:?} (the newer one's must stay)",
                stored.role
            )
        },
    )?;
    ensure(
        r.b.set_role(&s.id, None, at(2)).await.ctx("set_role")?,
        || {
            "set_role with the same check time as stored returned false (only an older one is refused)".into()
        },
    )?;
    // Sixteen re-checks at once, their times in a scrambled order: the newest (15) must be what is left.
    let outputs = concurrently(16, |i| {
        let st = r.pick(i);
        let id = s.id.clone();
        let n = (i * 7) % 16;
        let when = at(10 + i64::try_from(n).unwrap_or(0));
        async move { st.set_role(&id, Some(format!("role-{n}")), when).await }
    })
    .await?;
    all_ok(outputs, "set_role")?;
    let stored = get(&r.b, &s.id)
        .await?
        .ok_or_else(|| fail("the session is gone"))?;
    ensure(
        stored.role.as_deref() == Some("role-15") && stored.role_checked == at(25),
        || {
            format!(
                "after 16 concurrent re-checks the role is {:?} (the newest, role-15, must win)",
                stored.role
            )
        },
    )
}

/// With a 1.5 s idle timeout: a touch keeps the session (newer `last_seen`, bumped version) past the idle timeout
/// counted from its start, and a touch after the idle timeout removes it and answers `None`.
async fn idle_timeout_on_touch(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(
        f,
        Timeouts {
            idle: LONGEST,
            ..LASTING
        },
    )
    .await?;
    let s = created(&r).await?;
    let before = get(&r.a, &s.id)
        .await?
        .ok_or_else(|| fail("a new session does not read"))?;
    r.time.advance(Duration::from_millis(800)).await;
    let touched =
        r.b.touch(&s.id)
            .await
            .ctx("touch")?
            .ok_or_else(|| fail("touch of a live session answered None"))?;
    ensure(touched.last_seen > before.last_seen, || {
        "touch did not move last_seen forward".into()
    })?;
    ensure(touched.version > before.version, || {
        "touch did not bump the version".into()
    })?;
    r.time.advance(Duration::from_millis(800)).await;
    ensure(get(&r.a, &s.id).await?.is_some(), || {
        "1.6 s after creation but 0.8 s after a touch, a session with a 1.5 s idle timeout is gone (touch must extend it)".into()
    })?;
    r.time.advance(Duration::from_millis(1000)).await;
    ensure(r.a.touch(&s.id).await.ctx("touch")?.is_none(), || {
        "touch 1.8 s after the last one, past a 1.5 s idle timeout, returned a session".into()
    })?;
    ensure(get(&r.b, &s.id).await?.is_none(), || {
        "a session still reads after its idle timeout".into()
    })?;
    let handle =
        r.b.add_caller(&s.id, &subject(1)?, "h-late")
            .await
            .ctx("add_caller")?;
    ensure(handle.is_none(), || {
        "add_caller on a timed-out session returned a handle".into()
    })
}

/// With a 1.5 s absolute and a 1.2 s idle timeout, a session touched 0.75 s in is gone at 1.6 s, though it has not
/// been idle that long.
async fn absolute_timeout(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(
        f,
        Timeouts {
            idle: Duration::from_millis(1200),
            absolute: LONGEST,
            ..LASTING
        },
    )
    .await?;
    let s = created(&r).await?;
    r.time.advance(Duration::from_millis(750)).await;
    ensure(r.b.touch(&s.id).await.ctx("touch")?.is_some(), || {
        "touch 0.75 s after creation, within both timeouts, answered None".into()
    })?;
    r.time.advance(Duration::from_millis(850)).await;
    ensure(r.a.touch(&s.id).await.ctx("touch")?.is_none(), || {
        "1.6 s after creation, past a 1.5 s absolute timeout, touch returned the session".into()
    })?;
    ensure(get(&r.b, &s.id).await?.is_none(), || {
        "a session still reads after its absolute timeout".into()
    })
}

fn pre_login(now: DateTime<Utc>) -> PreLogin {
    PreLogin {
        state: random_id("state"),
        nonce: random_id("nonce"),
        pkce_verifier: random_id("pkce"),
        return_to: "/callers".into(),
        created: now,
    }
}

/// Of 16 concurrent takes of one pre-login state (both replicas), exactly one gets it.
async fn pre_login_taken_once(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f, LASTING).await?;
    let key = random_id("pre");
    let pre = pre_login(r.time.now());
    r.a.put_pre_login(&key, &pre).await.ctx("put_pre_login")?;
    let outputs = concurrently(16, |i| {
        let st = r.pick(i);
        let key = key.clone();
        async move { st.take_pre_login(&key).await }
    })
    .await?;
    let taken: Vec<PreLogin> = all_ok(outputs, "take_pre_login")?
        .into_iter()
        .flatten()
        .collect();
    ensure(taken.len() == 1, || {
        format!(
            "{} of 16 concurrent takes got the pre-login state (exactly one must)",
            taken.len()
        )
    })?;
    ensure(taken.first() == Some(&pre), || {
        "the pre-login state taken is not the one stored".into()
    })?;
    ensure(
        r.b.take_pre_login(&key)
            .await
            .ctx("take_pre_login")?
            .is_none(),
        || "pre-login state was taken twice".into(),
    )
}

/// Pre-login state past the pre-login timeout reads as `None`.
async fn pre_login_expiry(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(
        f,
        Timeouts {
            pre_login: SHORT,
            ..LASTING
        },
    )
    .await?;
    let now = r.time.now();
    let (fresh, stale) = (random_id("pre"), random_id("pre"));
    r.a.put_pre_login(&fresh, &pre_login(now))
        .await
        .ctx("put_pre_login")?;
    r.a.put_pre_login(&stale, &pre_login(now))
        .await
        .ctx("put_pre_login")?;
    ensure(
        r.b.take_pre_login(&fresh)
            .await
            .ctx("take_pre_login")?
            .is_some(),
        || "pre-login state within its timeout could not be taken".into(),
    )?;
    r.time.advance(PAST_SHORT).await;
    ensure(
        r.b.take_pre_login(&stale)
            .await
            .ctx("take_pre_login")?
            .is_none(),
        || {
            format!(
                "pre-login state {PAST_SHORT:?} after it was stored, past a 1 s timeout, was still taken"
            )
        },
    )
}
