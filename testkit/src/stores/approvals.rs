//! The checks of [`ApprovalStore`]: four-eyes approval requests (insert-only put, the slot, the tenant's pending
//! list, the one compare-and-set `decide`, the single-use `take`, expiry by the record's own time and by TTL).

use super::support::{
    Ctx, LONG, PAST_SHORT, SHORT, all_ok, concurrently, ensure, fail, made, pseudo, tenant,
};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{
    ActionKind, ApprovalDecision, ApprovalId, ApprovalRecord, ApprovalStatus, ApprovalStore,
    DecideOutcome, FactorKind, GrantId, SubjectId, TakeOutcome, VerificationId,
};
use std::sync::Arc;

/// The approval store's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Approvals;
    "approval_decided_once_concurrently" => decided_once_concurrently,
    "approval_taken_once_concurrently" => taken_once_concurrently,
    "approval_refused_never_taken" => refused_never_taken,
    "approval_expired_not_decided_or_taken" => expired_not_decided_or_taken,
    "approval_put_insert_only_and_slot" => put_insert_only_and_slot,
    "approval_pending_lists_only_pending_of_tenant" => pending_lists_only_pending_of_tenant,
    "approval_ttl_expiry" => ttl_expiry,
];

async fn store(f: Arc<dyn StoreFixture>) -> Result<Replicas<dyn ApprovalStore>, Verdict> {
    made(f.approvals().await, Port::Approvals)
}

/// A pending request of tenant `t` by agent `agent` about caller `subject`, made at `now`, live ten minutes.
fn request(t: &str, agent: u8, subject: u8, now: DateTime<Utc>) -> Result<ApprovalRecord, Verdict> {
    Ok(ApprovalRecord {
        id: ApprovalId::random(),
        tenant: tenant(t)?,
        agent: pseudo(agent)?,
        agent_name: "Agent Example".to_owned(),
        subject: SubjectId::parse(format!("00usubject{subject}"))
            .map_err(|e| fail(format!("test data: subject id: {e}")))?,
        subject_pseudo: pseudo(subject)?,
        action: ActionKind::RemoveFactor,
        // Stored and read back with the rest: an approval covers this factor only.
        factor: Some(
            fctr_ports::FactorId::parse("opf-approval-contract-1")
                .map_err(|e| fail(format!("test data: factor id: {e}")))?,
        ),
        privileged: false,
        grant: GrantId::random(),
        verification: VerificationId::random(),
        factors: vec![FactorKind::Push],
        verified_at: now,
        created_at: now,
        expires_at: now + TimeDelta::minutes(10),
        status: ApprovalStatus::Pending,
        decided_by: None,
        decided_at: None,
    })
}

fn decision(approve: bool, by: u8, now: DateTime<Utc>) -> Result<ApprovalDecision, Verdict> {
    Ok(ApprovalDecision {
        approve,
        by: pseudo(by)?,
        at: now,
    })
}

/// Of 16 concurrent decisions (half approving, half refusing) over both replicas, exactly one is taken; every
/// other is told `AlreadyDecided`, and the stored request carries the one decision.
async fn decided_once_concurrently(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let req = request("acme", 1, 2, now)?;
    ensure(r.a.put(&req, LONG).await.ctx("put")?, || {
        "put of a new request answered false".into()
    })?;
    let tenant = req.tenant.clone();
    let outputs = concurrently(16, |i| {
        let s = r.pick(i);
        let (tenant, id) = (tenant.clone(), req.id);
        let d = decision(i % 2 == 0, 10 + u8::try_from(i).unwrap_or(0), now);
        async move {
            match d {
                Ok(d) => s.decide(&tenant, id, &d, now).await,
                Err(_) => Err(fctr_ports::PortError::Malformed),
            }
        }
    })
    .await?;
    let answers = all_ok(outputs, "decide")?;
    let winners: Vec<&ApprovalRecord> = answers
        .iter()
        .filter_map(|a| match a {
            DecideOutcome::Decided(rec) => Some(rec.as_ref()),
            _ => None,
        })
        .collect();
    ensure(winners.len() == 1, || {
        format!(
            "{} of 16 concurrent decisions were taken (exactly one must be)",
            winners.len()
        )
    })?;
    let already = answers
        .iter()
        .filter(|a| matches!(a, DecideOutcome::AlreadyDecided(_)))
        .count();
    ensure(already == 15, || {
        format!("{already} of the 15 others were told AlreadyDecided")
    })?;
    let stored = r.b.get(&tenant, req.id).await.ctx("get")?;
    let winner = winners.first().ok_or_else(|| fail("no winner"))?;
    ensure(
        stored.as_ref().map(|s| (s.status, s.decided_by.clone()))
            == Some((winner.status, winner.decided_by.clone())),
        || "the stored request does not carry the decision that was taken".into(),
    )
}

/// An approved request: of 16 concurrent takes exactly one gets it; the others are told it is used.
async fn taken_once_concurrently(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let req = request("acme", 1, 2, now)?;
    r.a.put(&req, LONG).await.ctx("put")?;
    let d =
        r.b.decide(&req.tenant, req.id, &decision(true, 3, now)?, now)
            .await
            .ctx("decide")?;
    ensure(matches!(d, DecideOutcome::Decided(_)), || {
        "a pending request was not decided".into()
    })?;
    let tenant = req.tenant.clone();
    let outputs = concurrently(16, |i| {
        let s = r.pick(i);
        let (tenant, id) = (tenant.clone(), req.id);
        async move { s.take(&tenant, id, now).await }
    })
    .await?;
    let answers = all_ok(outputs, "take")?;
    let taken = answers
        .iter()
        .filter(|a| matches!(a, TakeOutcome::Taken(_)))
        .count();
    let used = answers
        .iter()
        .filter(|a| **a == TakeOutcome::NotApproved(ApprovalStatus::Used))
        .count();
    ensure(taken == 1 && used == 15, || {
        format!(
            "{taken} takes got the approval and {used} were told it is used (1 and 15 expected)"
        )
    })
}

/// A refused request can never be taken, nor decided again.
async fn refused_never_taken(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let req = request("acme", 1, 2, now)?;
    r.a.put(&req, LONG).await.ctx("put")?;
    r.a.decide(&req.tenant, req.id, &decision(false, 3, now)?, now)
        .await
        .ctx("decide")?;
    let t = r.b.take(&req.tenant, req.id, now).await.ctx("take")?;
    ensure(
        t == TakeOutcome::NotApproved(ApprovalStatus::Refused),
        || format!("take of a refused request answered {t:?}"),
    )?;
    let d =
        r.b.decide(&req.tenant, req.id, &decision(true, 4, now)?, now)
            .await
            .ctx("decide again")?;
    ensure(
        d == DecideOutcome::AlreadyDecided(ApprovalStatus::Refused),
        || format!("a second decision answered {d:?}"),
    )
}

/// Past its own `expires_at` (judged by the `now` passed), a pending request cannot be decided and an approved
/// one cannot be taken; both stay as they were.
async fn expired_not_decided_or_taken(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let later = now + TimeDelta::minutes(11);
    let req = request("acme", 1, 2, now)?;
    r.a.put(&req, LONG).await.ctx("put")?;
    let d =
        r.b.decide(&req.tenant, req.id, &decision(true, 3, later)?, later)
            .await
            .ctx("decide")?;
    ensure(d == DecideOutcome::Expired, || {
        format!("deciding an expired request answered {d:?}")
    })?;
    let approved = request("acme", 1, 5, now)?;
    r.a.put(&approved, LONG).await.ctx("put")?;
    r.a.decide(&approved.tenant, approved.id, &decision(true, 3, now)?, now)
        .await
        .ctx("decide")?;
    let t =
        r.b.take(&approved.tenant, approved.id, later)
            .await
            .ctx("take")?;
    ensure(t == TakeOutcome::Expired, || {
        format!("taking an expired approval answered {t:?}")
    })?;
    let stored = r.a.get(&approved.tenant, approved.id).await.ctx("get")?;
    ensure(
        stored.map(|s| s.status) == Some(ApprovalStatus::Approved),
        || "an expired take changed the request".into(),
    )
}

/// `put` inserts only; `find` reads the latest request of the slot (agent, caller, action); `get` still reads an
/// older one by id; another tenant reads nothing.
async fn put_insert_only_and_slot(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let first = request("acme", 1, 2, now)?;
    ensure(r.a.put(&first, LONG).await.ctx("put")?, || {
        "put of a new request answered false".into()
    })?;
    ensure(!r.b.put(&first, LONG).await.ctx("put again")?, || {
        "a second put of the same id answered true".into()
    })?;
    let found =
        r.b.find(
            &first.tenant,
            &first.agent,
            &first.subject_pseudo,
            first.action,
        )
        .await
        .ctx("find")?;
    ensure(found.as_ref() == Some(&first), || {
        "find did not return the request as stored".into()
    })?;
    let second = request("acme", 1, 2, now)?;
    r.b.put(&second, LONG).await.ctx("put")?;
    let found =
        r.a.find(
            &first.tenant,
            &first.agent,
            &first.subject_pseudo,
            first.action,
        )
        .await
        .ctx("find")?;
    ensure(found.map(|x| x.id) == Some(second.id), || {
        "find did not return the newer request of the slot".into()
    })?;
    ensure(
        r.a.get(&first.tenant, first.id).await.ctx("get")?.is_some(),
        || "the older request could no longer be read by id".into(),
    )?;
    let other = tenant("other")?;
    ensure(
        r.a.get(&other, first.id).await.ctx("get")?.is_none()
            && r.a
                .find(&other, &first.agent, &first.subject_pseudo, first.action)
                .await
                .ctx("find")?
                .is_none(),
        || "another tenant read the request".into(),
    )?;
    let d =
        r.a.decide(&other, first.id, &decision(true, 3, now)?, now)
            .await
            .ctx("decide")?;
    ensure(d == DecideOutcome::Missing, || {
        format!("another tenant's decision answered {d:?}")
    })
}

/// `pending` lists the tenant's pending requests only, oldest first.
async fn pending_lists_only_pending_of_tenant(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let a = request("acme", 1, 2, now)?;
    let b = request("acme", 1, 3, now + TimeDelta::seconds(1))?;
    let c = request("acme", 4, 2, now + TimeDelta::seconds(2))?;
    let other = request("other", 1, 2, now)?;
    for x in [&a, &b, &c, &other] {
        r.a.put(x, LONG).await.ctx("put")?;
    }
    r.b.decide(&b.tenant, b.id, &decision(true, 5, now)?, now)
        .await
        .ctx("decide")?;
    let listed: Vec<ApprovalId> =
        r.b.pending(&a.tenant)
            .await
            .ctx("pending")?
            .into_iter()
            .map(|x| x.id)
            .collect();
    ensure(listed == vec![a.id, c.id], || {
        format!(
            "pending listed {} requests, not the two pending ones in order",
            listed.len()
        )
    })?;
    let theirs = r.a.pending(&other.tenant).await.ctx("pending")?;
    ensure(theirs.len() == 1 && theirs[0].id == other.id, || {
        "the other tenant's pending list is wrong".into()
    })
}

/// A request lives until its TTL runs out: then `get`, `find` and `pending` no longer see it.
async fn ttl_expiry(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let now = r.time.now();
    let req = request("acme", 1, 2, now)?;
    r.a.put(&req, SHORT).await.ctx("put")?;
    ensure(
        r.b.get(&req.tenant, req.id).await.ctx("get")?.is_some(),
        || "a fresh request could not be read".into(),
    )?;
    r.time.advance(PAST_SHORT).await;
    ensure(
        r.b.get(&req.tenant, req.id).await.ctx("get")?.is_none(),
        || "a request outlived its TTL".into(),
    )?;
    ensure(
        r.a.find(&req.tenant, &req.agent, &req.subject_pseudo, req.action)
            .await
            .ctx("find")?
            .is_none(),
        || "the slot outlived the TTL".into(),
    )?;
    ensure(
        r.a.pending(&req.tenant).await.ctx("pending")?.is_empty(),
        || "pending listed a request past its TTL".into(),
    )
}
