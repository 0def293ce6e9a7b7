//! The checks of [`AuditLog`]: one contiguous chain per tenant under concurrent appends, read order and filters,
//! purge.

use super::support::{Ctx, all_ok, concurrently, ensure, fail, made, pseudo, tenant};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use fctr_ports::{
    AuditEvent, AuditLog, AuditQuery, ChainHash, EventKind, Outcome, SealedEvent, TenantId,
};
use std::sync::Arc;

/// The audit log's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Audit;
    "audit_concurrent_appends_one_chain" => concurrent_appends_one_chain,
    "audit_read_oldest_first" => read_oldest_first,
    "audit_purge_keeps_chain_verifying" => purge_keeps_chain_verifying,
];

async fn store(f: Arc<dyn StoreFixture>) -> Result<Replicas<dyn AuditLog>, Verdict> {
    made(f.audit().await, Port::Audit)
}

/// A day before the store's now, in whole seconds: the checks' events are in the past, and their times (which
/// [`AuditEvent::new`] cuts to microseconds) compare exactly with the query bounds built from the same base.
fn base(r: &Replicas<dyn AuditLog>) -> DateTime<Utc> {
    (r.time.now() - TimeDelta::days(1)).trunc_subsecs(0)
}

fn event(
    t: &TenantId,
    at: DateTime<Utc>,
    kind: EventKind,
    agent: u8,
) -> Result<AuditEvent, Verdict> {
    let mut e = AuditEvent::new(t.clone(), at, kind, Outcome::Success);
    e.agent = Some(pseudo(agent)?);
    e.target = Some(pseudo(100)?);
    Ok(e)
}

async fn read(s: &Arc<dyn AuditLog>, q: &AuditQuery) -> Result<Vec<SealedEvent>, Verdict> {
    s.read(q).await.ctx("read")
}

/// Checks that `events` (one tenant's, sorted by `seq`) are a contiguous chain from `start` linked to `prev`, each
/// hash recomputed.
fn contiguous(
    who: &str,
    events: &[SealedEvent],
    start: u64,
    mut prev: ChainHash,
) -> Result<(), Verdict> {
    for (i, e) in events.iter().enumerate() {
        let want_seq = start + u64::try_from(i).unwrap_or(u64::MAX);
        ensure(e.seq == want_seq, || {
            format!(
                "{who}: sequence numbers are not contiguous: found {} where {want_seq} belongs",
                e.seq
            )
        })?;
        ensure(e.prev_hash == prev, || {
            format!(
                "{who}: event {} does not link to the hash of the event before it (the chain forked)",
                e.seq
            )
        })?;
        ensure(e.hash == ChainHash::compute(&prev, e.seq, &e.event), || {
            format!(
                "{who}: event {}'s hash is not the chain hash of its content",
                e.seq
            )
        })?;
        prev = e.hash;
    }
    Ok(())
}

/// 64 appends from concurrent tasks over both replicas, for two tenants: each tenant gets one contiguous chain
/// (no gap, no fork), every append's answer is what was stored, and `verify_chain` passes and counts them all.
async fn concurrent_appends_one_chain(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let (acme, globex) = (tenant("acme")?, tenant("globex")?);
    let tenants = [&acme, &globex];
    let at = base(&r);
    let events: Vec<AuditEvent> = (0..64usize)
        .map(|i| {
            let t = if i % 2 == 0 { &acme } else { &globex };
            event(
                t,
                at + TimeDelta::milliseconds(i64::try_from(i).unwrap_or(0)),
                EventKind::Lookup,
                1,
            )
        })
        .collect::<Result<_, _>>()?;
    let outputs = concurrently(events.len(), |i| {
        let s = r.pick(i / 2);
        let e = events.get(i).cloned();
        async move {
            match e {
                Some(e) => s.append(e).await.map(Some),
                None => Ok(None),
            }
        }
    })
    .await?;
    let sealed: Vec<SealedEvent> = all_ok(outputs, "append")?.into_iter().flatten().collect();
    ensure(sealed.len() == 64, || {
        format!("{} of 64 appends answered", sealed.len())
    })?;
    for t in tenants {
        let mut stored = read(
            &r.b,
            &AuditQuery {
                tenant: Some(t.clone()),
                ..AuditQuery::default()
            },
        )
        .await?;
        ensure(stored.len() == 32, || {
            format!(
                "tenant {t}: {} of 32 appended events read back",
                stored.len()
            )
        })?;
        stored.sort_by_key(|e| e.seq);
        contiguous(&format!("tenant {t}"), &stored, 0, ChainHash::GENESIS)?;
        for s in sealed.iter().filter(|s| &s.event.tenant == t) {
            let found = stored.iter().find(|e| e.seq == s.seq);
            ensure(found == Some(s), || {
                format!(
                    "tenant {t}: append answered seq {} but the store holds something else there",
                    s.seq
                )
            })?;
        }
    }
    let summary =
        r.a.verify_chain()
            .await
            .ctx("verify_chain")?
            .map_err(|b| fail(format!("verify_chain after concurrent appends: {b:?}")))?;
    ensure(summary.events == 64, || {
        format!("verify_chain checked {} events, not 64", summary.events)
    })?;
    ensure(
        tenants
            .iter()
            .all(|t| summary.heads.iter().any(|h| &h.tenant == *t && h.seq == 31)),
        || {
            format!(
                "verify_chain's heads are not both tenants at seq 31: {:?}",
                summary.heads
            )
        },
    )
}

/// `read` answers oldest first, and its filters (tenant, time range, kinds, pseudonym) and limit hold.
async fn read_oldest_first(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let (acme, globex) = (tenant("acme")?, tenant("globex")?);
    let start = base(&r);
    let at = |i: usize| start + TimeDelta::seconds(i64::try_from(i).unwrap_or(0));
    let mut appended = Vec::new();
    for i in 0..10usize {
        // Two tenants, unevenly interleaved (acme, globex, acme, acme, globex, …).
        let t = if i % 3 == 1 { &globex } else { &acme };
        let kind = if i % 4 == 0 {
            EventKind::Denied
        } else {
            EventKind::Lookup
        };
        let agent = u8::try_from(1 + i % 2).unwrap_or(1);
        let sealed = r
            .pick(i)
            .append(event(t, at(i), kind, agent)?)
            .await
            .ctx("append")?;
        appended.push(sealed);
    }
    let ids = |v: &[SealedEvent]| v.iter().map(|e| e.event.id).collect::<Vec<_>>();
    let reads = |what: &str, q: AuditQuery, want: Vec<&SealedEvent>| {
        let s = Arc::clone(&r.b);
        let what = what.to_owned();
        let want: Vec<_> = want.into_iter().map(|e| e.event.id).collect();
        async move {
            let got = read(&s, &q).await?;
            ensure(ids(&got) == want, || {
                format!(
                    "{what}: read answered {} event(s) not matching the {} expected, oldest first",
                    got.len(),
                    want.len()
                )
            })
        }
    };
    reads(
        "everything",
        AuditQuery::default(),
        appended.iter().collect(),
    )
    .await?;
    reads(
        "one tenant",
        AuditQuery {
            tenant: Some(acme.clone()),
            ..AuditQuery::default()
        },
        appended.iter().filter(|e| e.event.tenant == acme).collect(),
    )
    .await?;
    reads(
        "a time range [2 s, 6 s)",
        AuditQuery {
            since: Some(at(2)),
            until: Some(at(6)),
            ..AuditQuery::default()
        },
        appended.get(2..6).unwrap_or_default().iter().collect(),
    )
    .await?;
    reads(
        "the first three",
        AuditQuery {
            limit: Some(3),
            ..AuditQuery::default()
        },
        appended.get(..3).unwrap_or_default().iter().collect(),
    )
    .await?;
    reads(
        "one kind",
        AuditQuery {
            kinds: vec![EventKind::Denied],
            ..AuditQuery::default()
        },
        appended
            .iter()
            .filter(|e| e.event.kind == EventKind::Denied)
            .collect(),
    )
    .await?;
    let agent2 = pseudo(2)?;
    reads(
        "one agent's pseudonym",
        AuditQuery {
            pseudonym: Some(agent2.clone()),
            ..AuditQuery::default()
        },
        appended
            .iter()
            .filter(|e| e.event.agent.as_ref() == Some(&agent2))
            .collect(),
    )
    .await
}

/// `purge_before` removes the older events, records where each chain now starts, and the retained chains still
/// verify, also after further appends (which continue the chains).
async fn purge_keeps_chain_verifying(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let (acme, globex) = (tenant("acme")?, tenant("globex")?);
    let start = base(&r);
    let at = |m: i64| start + TimeDelta::minutes(m);
    let mut acme_events = Vec::new();
    for m in 0..10 {
        acme_events.push(
            r.pick(usize::try_from(m).unwrap_or(0))
                .append(event(&acme, at(m), EventKind::Lookup, 1)?)
                .await
                .ctx("append")?,
        );
    }
    let mut globex_events = Vec::new();
    for m in 0..4 {
        globex_events.push(
            r.b.append(event(&globex, at(m), EventKind::Lookup, 2)?)
                .await
                .ctx("append")?,
        );
    }
    let report = r.a.purge_before(at(5)).await.ctx("purge_before")?;
    ensure(report.removed == 9, || {
        format!(
            "purge_before removed {} events (5 of one tenant and all 4 of another are older)",
            report.removed
        )
    })?;
    let hash_at = |v: &[SealedEvent], seq: usize| v.get(seq).map(|e| e.hash);
    for (t, seq, prev) in [
        (&acme, 5u64, hash_at(&acme_events, 4)),
        (&globex, 4u64, hash_at(&globex_events, 3)),
    ] {
        ensure(
            report
                .anchors
                .iter()
                .any(|a| &a.tenant == t && a.seq == seq && Some(a.prev_hash) == prev),
            || {
                format!(
                    "the purge reported no anchor for tenant {t} at seq {seq} linking to the last purged event"
                )
            },
        )?;
    }
    let kept = read(&r.b, &AuditQuery::default()).await?;
    let kept_seqs: Vec<u64> = kept.iter().map(|e| e.seq).collect();
    ensure(kept_seqs == vec![5, 6, 7, 8, 9], || {
        format!(
            "after the purge the log holds seqs {kept_seqs:?} (only 5 to 9 of one tenant must remain)"
        )
    })?;
    r.b.verify_chain()
        .await
        .ctx("verify_chain")?
        .map_err(|b| fail(format!("verify_chain after a purge: {b:?}")))?;
    let next_acme =
        r.a.append(event(&acme, at(10), EventKind::Lookup, 1)?)
            .await
            .ctx("append after purge")?;
    ensure(
        next_acme.seq == 10 && Some(next_acme.prev_hash) == hash_at(&acme_events, 9),
        || {
            format!(
                "an append after the purge got seq {} not linked to the last kept event",
                next_acme.seq
            )
        },
    )?;
    let next_globex =
        r.b.append(event(&globex, at(10), EventKind::Lookup, 2)?)
            .await
            .ctx("append after purge")?;
    ensure(
        next_globex.seq == 4 && Some(next_globex.prev_hash) == hash_at(&globex_events, 3),
        || {
            format!(
                "an append to a chain purged empty got seq {}, not 4 linked to the last purged event",
                next_globex.seq
            )
        },
    )?;
    let summary =
        r.a.verify_chain()
            .await
            .ctx("verify_chain")?
            .map_err(|b| fail(format!("verify_chain after appending past a purge: {b:?}")))?;
    ensure(summary.events == 7, || {
        format!(
            "verify_chain checked {} events, not the 7 retained",
            summary.events
        )
    })
}
