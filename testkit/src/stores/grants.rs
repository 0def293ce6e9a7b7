//! The checks of [`GrantStore`]: verification records (insert-if-new, compare-and-set, TTL) and grants (the one
//! atomic `consume`, `restore`, replacement, TTL).

use super::support::{
    Ctx, LONG, PAST_SHORT, SHORT, all_ok, concurrently, delta, ensure, fail, made, pseudo, tenant,
};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{
    ActionKind, FactorKind, GrantConsumption, GrantId, GrantRecord, GrantStore, SubjectId,
    VerificationId, VerificationRecord, VerificationStatus,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The grant store's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Grants;
    "grant_consumed_once_concurrently" => consumed_once_concurrently,
    "grant_already_used_after_use" => already_used_after_use,
    "grant_missing_when_never_minted" => missing_when_never_minted,
    "grant_expired_not_consumed" => expired_not_consumed,
    "grant_does_not_cover_leaves_live" => does_not_cover_leaves_live,
    "grant_multi_use_stays_live" => multi_use_stays_live,
    "grant_restore_only_same_used" => restore_only_same_used,
    "grant_put_replaces" => put_replaces,
    "grant_find_hides_used" => find_hides_used,
    "grant_ttl_expiry" => grant_ttl_expiry,
    "verification_insert_if_new" => verification_insert_if_new,
    "verification_cas_one_winner" => verification_cas_one_winner,
    "verification_ttl_expiry" => verification_ttl_expiry,
];

async fn store(f: Arc<dyn StoreFixture>) -> Result<Replicas<dyn GrantStore>, Verdict> {
    made(f.grants().await, Port::Grants)
}

/// A single-use grant from agent `agent` for caller `subject`, issued at `now`, live for ten minutes, covering
/// `ResetPassword` only.
fn grant(agent: u8, subject: u8, now: DateTime<Utc>) -> Result<GrantRecord, Verdict> {
    Ok(GrantRecord {
        id: GrantId::random(),
        tenant: tenant("acme")?,
        verification: VerificationId::random(),
        agent: pseudo(agent)?,
        subject: pseudo(subject)?,
        actions: BTreeSet::from([ActionKind::ResetPassword]),
        factors: vec![FactorKind::Push],
        issued_at: now,
        expires_at: now + TimeDelta::minutes(10),
        single_use: true,
    })
}

/// What a consume answered, for messages.
fn name(c: &GrantConsumption) -> &'static str {
    match c {
        GrantConsumption::Consumed(_) => "Consumed",
        GrantConsumption::AlreadyUsed => "AlreadyUsed",
        GrantConsumption::Expired => "Expired",
        GrantConsumption::DoesNotCover => "DoesNotCover",
        GrantConsumption::Missing => "Missing",
        _ => "another answer",
    }
}

async fn consume(
    s: &Arc<dyn GrantStore>,
    g: &GrantRecord,
    action: ActionKind,
    now: DateTime<Utc>,
) -> Result<GrantConsumption, Verdict> {
    s.consume(&g.agent, &g.subject, action, now)
        .await
        .ctx("consume")
}

/// Fails unless `got` is `Consumed` with exactly `want`.
fn consumed(got: &GrantConsumption, want: &GrantRecord, when: &str) -> Check {
    match got {
        GrantConsumption::Consumed(g) if g == want => Ok(()),
        GrantConsumption::Consumed(g) if g.id == want.id => Err(fail(format!(
            "{when}: consume returned the grant changed from what was stored"
        ))),
        GrantConsumption::Consumed(_) => Err(fail(format!(
            "{when}: consume returned another grant than the one stored"
        ))),
        other => Err(fail(format!(
            "{when}: expected Consumed, got {}",
            name(other)
        ))),
    }
}

fn is(got: &GrantConsumption, want: &GrantConsumption, when: &str) -> Check {
    ensure(got == want, || {
        format!("{when}: expected {}, got {}", name(want), name(got))
    })
}

async fn find(s: &Arc<dyn GrantStore>, g: &GrantRecord) -> Result<Option<GrantRecord>, Verdict> {
    s.find_grant(&g.agent, &g.subject).await.ctx("find_grant")
}

/// Of 32 concurrent consumes of one single-use grant, spread over both replicas, exactly one gets it and every
/// other is told `AlreadyUsed`.
async fn consumed_once_concurrently(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    let outputs = concurrently(32, |i| {
        let s = r.pick(i);
        let g = g.clone();
        async move {
            s.consume(&g.agent, &g.subject, ActionKind::ResetPassword, now)
                .await
        }
    })
    .await?;
    let answers = all_ok(outputs, "consume")?;
    let winners: Vec<&GrantConsumption> = answers
        .iter()
        .filter(|c| matches!(c, GrantConsumption::Consumed(_)))
        .collect();
    let already = answers
        .iter()
        .filter(|c| **c == GrantConsumption::AlreadyUsed)
        .count();
    ensure(winners.len() == 1, || {
        format!(
            "{} of 32 concurrent consumes got the single-use grant (exactly one must)",
            winners.len()
        )
    })?;
    if let Some(w) = winners.first() {
        consumed(w, &g, "the winner")?;
    }
    ensure(already == 31, || {
        let others: Vec<&str> = answers
            .iter()
            .filter(|c| {
                !matches!(
                    c,
                    GrantConsumption::Consumed(_) | GrantConsumption::AlreadyUsed
                )
            })
            .map(name)
            .collect();
        format!("{already} of the 31 losers were told AlreadyUsed; the others got {others:?}")
    })
}

/// A spent single-use grant answers `AlreadyUsed` on either replica, whatever the action.
async fn already_used_after_use(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    consumed(
        &consume(&r.a, &g, ActionKind::ResetPassword, now).await?,
        &g,
        "first use",
    )?;
    is(
        &consume(&r.b, &g, ActionKind::ResetPassword, now).await?,
        &GrantConsumption::AlreadyUsed,
        "second use, on the other replica",
    )?;
    is(
        &consume(&r.a, &g, ActionKind::ResetPassword, now).await?,
        &GrantConsumption::AlreadyUsed,
        "third use",
    )
}

/// No grant for the pair: `Missing`; a grant for another pair does not answer for this one.
async fn missing_when_never_minted(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    is(
        &consume(&r.a, &g, ActionKind::ResetPassword, now).await?,
        &GrantConsumption::Missing,
        "nothing stored",
    )?;
    let other = grant(1, 3, now)?;
    r.a.put_grant(&other, LONG).await.ctx("put_grant")?;
    is(
        &consume(&r.b, &g, ActionKind::ResetPassword, now).await?,
        &GrantConsumption::Missing,
        "a grant stored for another caller only",
    )?;
    ensure(find(&r.b, &g).await?.is_none(), || {
        "find_grant found a grant for a pair that has none".into()
    })
}

/// At a `now` past the grant's own `expires_at`, `consume` answers `Expired` and leaves the grant unspent: the
/// same grant is still consumable at an earlier `now`.
async fn expired_not_consumed(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    let late = g.expires_at + TimeDelta::seconds(1);
    is(
        &consume(&r.b, &g, ActionKind::ResetPassword, late).await?,
        &GrantConsumption::Expired,
        "now one second past expires_at",
    )?;
    ensure(find(&r.a, &g).await? == Some(g.clone()), || {
        "after Expired the grant no longer reads as live (it must not be consumed)".into()
    })?;
    consumed(
        &consume(&r.a, &g, ActionKind::ResetPassword, now).await?,
        &g,
        "the same grant at a now before expires_at",
    )
}

/// A grant that does not cover the action answers `DoesNotCover` and stays live.
async fn does_not_cover_leaves_live(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    is(
        &consume(&r.b, &g, ActionKind::Unlock, now).await?,
        &GrantConsumption::DoesNotCover,
        "an action the grant does not cover",
    )?;
    ensure(find(&r.b, &g).await? == Some(g.clone()), || {
        "after DoesNotCover the grant no longer reads as live".into()
    })?;
    consumed(
        &consume(&r.a, &g, ActionKind::ResetPassword, now).await?,
        &g,
        "the covered action afterwards",
    )
}

/// A grant that is not single-use is consumed again and again (until it expires) and stays readable.
async fn multi_use_stays_live(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let mut g = grant(1, 2, now)?;
    g.single_use = false;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    for i in 0..4 {
        consumed(
            &consume(&r.pick(i), &g, ActionKind::ResetPassword, now).await?,
            &g,
            &format!("multi-use grant, use {}", i + 1),
        )?;
    }
    ensure(find(&r.b, &g).await? == Some(g.clone()), || {
        "a multi-use grant no longer reads as live after use".into()
    })
}

/// `restore` turns only the "used" marker of the same grant back into the live grant: not another grant's id,
/// not a live grant, not an empty slot, not after a newer grant replaced it; of concurrent restores, one wins.
async fn restore_only_same_used(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    ensure(!r.b.restore(&g, LONG).await.ctx("restore")?, || {
        "restore of a live (unspent) grant returned true".into()
    })?;
    consumed(
        &consume(&r.a, &g, ActionKind::ResetPassword, now).await?,
        &g,
        "first use",
    )?;
    let impostor = GrantRecord {
        id: GrantId::random(),
        ..g.clone()
    };
    ensure(!r.b.restore(&impostor, LONG).await.ctx("restore")?, || {
        "restore with another grant id (same agent and caller) returned true".into()
    })?;
    ensure(find(&r.a, &g).await?.is_none(), || {
        "a restore with another grant id brought a grant back".into()
    })?;
    let outputs = concurrently(8, |i| {
        let s = r.pick(i);
        let g = g.clone();
        async move { s.restore(&g, LONG).await }
    })
    .await?;
    let restored = all_ok(outputs, "restore")?
        .into_iter()
        .filter(|b| *b)
        .count();
    ensure(restored == 1, || {
        format!(
            "{restored} of 8 concurrent restores of the spent grant returned true (exactly one must)"
        )
    })?;
    ensure(find(&r.b, &g).await? == Some(g.clone()), || {
        "after restore the grant does not read as live".into()
    })?;
    consumed(
        &consume(&r.b, &g, ActionKind::ResetPassword, now).await?,
        &g,
        "use after restore",
    )?;
    let newer = grant(1, 2, now)?;
    r.a.put_grant(&newer, LONG).await.ctx("put_grant (newer)")?;
    ensure(!r.b.restore(&g, LONG).await.ctx("restore")?, || {
        "restore of a spent grant replaced by a newer one returned true".into()
    })?;
    ensure(find(&r.a, &g).await? == Some(newer.clone()), || {
        "a restore of the older grant changed the newer grant's slot".into()
    })?;
    let stranger = grant(5, 6, now)?;
    ensure(!r.a.restore(&stranger, LONG).await.ctx("restore")?, || {
        "restore into an empty slot returned true".into()
    })?;
    ensure(find(&r.b, &stranger).await?.is_none(), || {
        "restore into an empty slot created a grant".into()
    })
}

/// `put_grant` replaces the pair's earlier grant, live or spent.
async fn put_replaces(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g1 = grant(1, 2, now)?;
    let g2 = grant(1, 2, now)?;
    r.a.put_grant(&g1, LONG).await.ctx("put_grant")?;
    r.b.put_grant(&g2, LONG).await.ctx("put_grant")?;
    ensure(find(&r.a, &g1).await? == Some(g2.clone()), || {
        "after a second put_grant for the same pair, find_grant does not return the second".into()
    })?;
    consumed(
        &consume(&r.a, &g1, ActionKind::ResetPassword, now).await?,
        &g2,
        "consume after a replacing put",
    )?;
    let g3 = grant(1, 2, now)?;
    r.b.put_grant(&g3, LONG).await.ctx("put_grant")?;
    ensure(find(&r.a, &g3).await? == Some(g3.clone()), || {
        "a put_grant over a spent grant does not read as live".into()
    })?;
    consumed(
        &consume(&r.b, &g3, ActionKind::ResetPassword, now).await?,
        &g3,
        "consume of a grant put over a spent one",
    )
}

/// `find_grant` reads the live grant without spending it, and hides a spent one.
async fn find_hides_used(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let g = grant(1, 2, now)?;
    r.a.put_grant(&g, LONG).await.ctx("put_grant")?;
    for i in 0..3 {
        ensure(find(&r.pick(i), &g).await? == Some(g.clone()), || {
            format!("find_grant number {} did not return the live grant", i + 1)
        })?;
    }
    consumed(
        &consume(&r.b, &g, ActionKind::ResetPassword, now).await?,
        &g,
        "use after three reads",
    )?;
    ensure(find(&r.a, &g).await?.is_none(), || {
        "find_grant still returns a spent single-use grant".into()
    })
}

/// A grant's TTL ends it: then `find_grant` reads nothing and `consume` answers `Missing`; a spent grant's "used"
/// marker ends with its TTL too.
async fn grant_ttl_expiry(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let live = grant(1, 2, now)?;
    let spent = grant(1, 3, now)?;
    r.a.put_grant(&live, SHORT).await.ctx("put_grant")?;
    r.a.put_grant(&spent, SHORT).await.ctx("put_grant")?;
    consumed(
        &consume(&r.b, &spent, ActionKind::ResetPassword, now).await?,
        &spent,
        "use before the TTL",
    )?;
    ensure(find(&r.b, &live).await?.is_some(), || {
        "a grant is gone before its TTL".into()
    })?;
    r.time.advance(PAST_SHORT).await;
    let later = r.time.now();
    ensure(find(&r.a, &live).await?.is_none(), || {
        "find_grant still returns a grant after its TTL".into()
    })?;
    is(
        &consume(&r.b, &live, ActionKind::ResetPassword, later).await?,
        &GrantConsumption::Missing,
        "a grant after its TTL",
    )?;
    is(
        &consume(&r.a, &spent, ActionKind::ResetPassword, later).await?,
        &GrantConsumption::Missing,
        "a spent grant's marker after its TTL",
    )
}

/// A pending verification about caller 2 by agent 1, started at `now`, at `version`.
fn verification(now: DateTime<Utc>, version: u64) -> Result<VerificationRecord, Verdict> {
    Ok(VerificationRecord {
        id: VerificationId::random(),
        tenant: tenant("acme")?,
        agent: pseudo(1)?,
        subject: SubjectId::parse("00u-suite-caller")
            .map_err(|e| fail(format!("test data: subject id: {e}")))?,
        subject_pseudo: pseudo(2)?,
        status: VerificationStatus::Pending,
        challenge: None,
        approved: Vec::new(),
        required_factors: 1,
        privileged: None,
        created_at: now,
        expires_at: now + TimeDelta::minutes(10),
        grant: None,
        ended_by: None,
        version,
    })
}

/// With no expected version, `put_verification` inserts only a new id; a compare-and-set against a missing record
/// writes nothing.
async fn verification_insert_if_new(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let v = verification(now, 0)?;
    ensure(
        r.a.put_verification(&v, None, LONG)
            .await
            .ctx("put_verification (insert)")?,
        || "inserting a new id returned false".into(),
    )?;
    let clash = VerificationRecord {
        status: VerificationStatus::Challenged,
        ..v.clone()
    };
    ensure(
        !r.b.put_verification(&clash, None, LONG)
            .await
            .ctx("put_verification (insert again)")?,
        || "inserting an id that exists returned true".into(),
    )?;
    let got = r.b.get_verification(v.id).await.ctx("get_verification")?;
    ensure(got.as_ref() == Some(&v), || {
        "after a refused second insert the stored record is not the first one".into()
    })?;
    let unknown = verification(now, 3)?;
    ensure(
        !r.a.put_verification(&unknown, Some(2), LONG)
            .await
            .ctx("put_verification (compare-and-set on a missing id)")?,
        || "a compare-and-set against a missing record returned true".into(),
    )?;
    ensure(
        r.b.get_verification(unknown.id)
            .await
            .ctx("get_verification")?
            .is_none(),
        || "a compare-and-set against a missing record stored it".into(),
    )
}

/// Of 16 concurrent writers with the same expected version (both replicas), exactly one wins and the stored
/// record is the winner's; a stale expected version then loses.
async fn verification_cas_one_winner(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let v0 = verification(now, 0)?;
    ensure(
        r.a.put_verification(&v0, None, LONG)
            .await
            .ctx("put_verification (insert)")?,
        || "inserting a new id returned false".into(),
    )?;
    let writers: Vec<VerificationRecord> = (0..16u8)
        .map(|i| VerificationRecord {
            version: 1,
            required_factors: i + 1,
            privileged: Some(false),
            status: VerificationStatus::Challenged,
            ..v0.clone()
        })
        .collect();
    let outputs = concurrently(writers.len(), |i| {
        let s = r.pick(i);
        let rec = writers.get(i).cloned();
        async move {
            match rec {
                Some(rec) => s.put_verification(&rec, Some(0), LONG).await,
                None => Ok(false),
            }
        }
    })
    .await?;
    let wrote = all_ok(outputs, "put_verification (compare-and-set)")?;
    let winners: Vec<usize> = wrote
        .iter()
        .enumerate()
        .filter(|(_, w)| **w)
        .map(|(i, _)| i)
        .collect();
    ensure(winners.len() == 1, || {
        format!(
            "{} of 16 concurrent writers expecting version 0 wrote (exactly one must)",
            winners.len()
        )
    })?;
    let stored = r.b.get_verification(v0.id).await.ctx("get_verification")?;
    let winner = winners.first().and_then(|i| writers.get(*i));
    ensure(stored.as_ref() == winner, || {
        "the stored record is not the one whose write was reported as done".into()
    })?;
    let stale = VerificationRecord {
        version: 2,
        status: VerificationStatus::Verified,
        ..v0.clone()
    };
    ensure(
        !r.a.put_verification(&stale, Some(0), LONG)
            .await
            .ctx("put_verification (stale)")?,
        || "a write expecting a version that is no longer stored returned true".into(),
    )?;
    ensure(
        r.b.put_verification(&stale, Some(1), LONG)
            .await
            .ctx("put_verification (current)")?,
        || "a write expecting the stored version returned false".into(),
    )?;
    ensure(
        r.a.get_verification(v0.id)
            .await
            .ctx("get_verification")?
            .as_ref()
            == Some(&stale),
        || "after a successful compare-and-set the stored record is not the new one".into(),
    )
}

/// A verification's TTL ends it: then it reads as absent and a compare-and-set against it fails.
async fn verification_ttl_expiry(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let v = verification(now, 0)?;
    ensure(
        r.a.put_verification(&v, None, SHORT)
            .await
            .ctx("put_verification")?,
        || "inserting a new id returned false".into(),
    )?;
    ensure(
        r.b.get_verification(v.id)
            .await
            .ctx("get_verification")?
            .is_some(),
        || "a verification is gone before its TTL".into(),
    )?;
    r.time.advance(PAST_SHORT).await;
    ensure(
        r.a.get_verification(v.id)
            .await
            .ctx("get_verification")?
            .is_none(),
        || "a verification still reads after its TTL".into(),
    )?;
    let next = VerificationRecord {
        version: 1,
        expires_at: now + delta(LONG),
        ..v.clone()
    };
    ensure(
        !r.b.put_verification(&next, Some(0), LONG)
            .await
            .ctx("put_verification (compare-and-set)")?,
        || "a compare-and-set against an expired record returned true".into(),
    )
}
