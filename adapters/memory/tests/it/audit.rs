use crate::support::{assert_send_sync, event, event_at, multi_thread, pseudo, t0, tenant};
use chrono::TimeDelta;
use fctr_memory::MemoryAuditLog;
use fctr_ports::{
    AuditLog, AuditQuery, BreakKind, ChainAnchor, ChainBreak, ChainHash, ChainSummary, EventKind,
    Outcome, PortError, SealedEvent,
};
use std::sync::Arc;

/// A log with `n` events for `tenant_name`, one a minute from `t0`.
async fn log_with(n: i64, tenant_name: &str) -> MemoryAuditLog {
    let log = MemoryAuditLog::new();
    for i in 0..n {
        log.append(event_at(tenant_name, i)).await.unwrap();
    }
    log
}

async fn verify(log: &MemoryAuditLog) -> Result<ChainSummary, ChainBreak> {
    log.verify_chain().await.unwrap()
}

async fn broken_at(log: &MemoryAuditLog) -> (String, u64, BreakKind) {
    let b = verify(log).await.expect_err("tampering must be detected");
    (b.tenant.to_string(), b.position, b.kind)
}

async fn all(log: &MemoryAuditLog) -> Vec<SealedEvent> {
    log.read(&AuditQuery::default()).await.unwrap()
}

/// Re-seals `events` in place from `events[0]`'s prev_hash, as a forger with the hash function would.
fn reseal(events: &mut [SealedEvent]) {
    let mut prev = events[0].prev_hash;
    for e in events {
        *e = SealedEvent::seal(prev, e.seq, e.event.clone());
        prev = e.hash;
    }
}

#[tokio::test]
async fn appends_form_one_chain_per_tenant() {
    assert_send_sync::<MemoryAuditLog>();
    let log: Arc<dyn AuditLog> = Arc::new(MemoryAuditLog::new());
    let a0 = log.append(event_at("acme", 0)).await.unwrap();
    let b0 = log.append(event_at("beta", 1)).await.unwrap();
    let a1 = log.append(event_at("acme", 2)).await.unwrap();

    assert_eq!((a0.seq, a0.prev_hash), (0, ChainHash::GENESIS));
    assert_eq!(
        (b0.seq, b0.prev_hash),
        (0, ChainHash::GENESIS),
        "tenants have separate chains"
    );
    assert_eq!((a1.seq, a1.prev_hash), (1, a0.hash));
    assert_eq!(
        a1,
        SealedEvent::seal(a0.hash, 1, a1.event.clone()),
        "the port's own seal"
    );

    let summary = log.verify_chain().await.unwrap().unwrap();
    assert_eq!(summary.events, 3);
    let heads: Vec<_> = summary
        .heads
        .iter()
        .map(|h| (h.tenant.to_string(), h.seq, h.hash))
        .collect();
    assert_eq!(
        heads,
        vec![("acme".into(), 1, a1.hash), ("beta".into(), 0, b0.hash)]
    );
}

#[tokio::test]
async fn empty_log_verifies() {
    let log = MemoryAuditLog::new();
    assert_eq!(verify(&log).await.unwrap(), ChainSummary::default());
    assert!(all(&log).await.is_empty());
    assert_eq!(log.checkpoint(&tenant("acme")), None);
}

#[tokio::test]
async fn read_filters_orders_oldest_first_and_limits() {
    let log = MemoryAuditLog::new();
    let mut e = event_at("beta", 3);
    e.target = Some(pseudo(9));
    log.append(e).await.unwrap();
    log.append(event_at("acme", 1)).await.unwrap();
    let mut e = event(
        "acme",
        t0() + TimeDelta::minutes(2),
        EventKind::ActionIntent,
    );
    e.agent = Some(pseudo(9));
    log.append(e).await.unwrap();
    log.append(event_at("acme", 4)).await.unwrap();
    log.append(event_at("beta", 0)).await.unwrap();

    let minutes = |evs: Vec<SealedEvent>| -> Vec<(String, i64)> {
        evs.iter()
            .map(|e| {
                (
                    e.event.tenant.to_string(),
                    (e.event.at - t0()).num_minutes(),
                )
            })
            .collect()
    };
    let s = |t: &str, m: i64| (t.to_string(), m);

    assert_eq!(
        minutes(all(&log).await),
        vec![
            s("beta", 0),
            s("acme", 1),
            s("acme", 2),
            s("beta", 3),
            s("acme", 4)
        ],
        "oldest first across tenants"
    );
    let q = AuditQuery {
        tenant: Some(tenant("acme")),
        ..AuditQuery::default()
    };
    assert_eq!(
        minutes(log.read(&q).await.unwrap()),
        vec![s("acme", 1), s("acme", 2), s("acme", 4)]
    );
    let q = AuditQuery {
        since: Some(t0() + TimeDelta::minutes(1)),
        until: Some(t0() + TimeDelta::minutes(4)),
        ..AuditQuery::default()
    };
    assert_eq!(
        minutes(log.read(&q).await.unwrap()),
        vec![s("acme", 1), s("acme", 2), s("beta", 3)],
        "since inclusive, until exclusive"
    );
    let q = AuditQuery {
        kinds: vec![EventKind::ActionIntent],
        ..AuditQuery::default()
    };
    assert_eq!(minutes(log.read(&q).await.unwrap()), vec![s("acme", 2)]);
    let q = AuditQuery {
        pseudonym: Some(pseudo(9)),
        ..AuditQuery::default()
    };
    assert_eq!(
        minutes(log.read(&q).await.unwrap()),
        vec![s("acme", 2), s("beta", 3)],
        "as agent or as target"
    );
    let q = AuditQuery {
        limit: Some(2),
        ..AuditQuery::default()
    };
    assert_eq!(
        minutes(log.read(&q).await.unwrap()),
        vec![s("beta", 0), s("acme", 1)],
        "the oldest ones"
    );
    let q = AuditQuery {
        limit: Some(0),
        ..AuditQuery::default()
    };
    assert!(log.read(&q).await.unwrap().is_empty());
    let q = AuditQuery {
        tenant: Some(tenant("nobody")),
        ..AuditQuery::default()
    };
    assert!(log.read(&q).await.unwrap().is_empty());
}

#[tokio::test]
async fn failing_appends_store_nothing_and_change_nothing() {
    let log = log_with(2, "acme").await;
    let before = all(&log).await;
    log.fail_appends(true);
    let err = log.append(event_at("acme", 5)).await.unwrap_err();
    assert!(matches!(err, PortError::Unavailable), "{err:?}");
    let err = log.append(event_at("newco", 5)).await.unwrap_err();
    assert!(matches!(err, PortError::Unavailable), "{err:?}");
    assert_eq!(all(&log).await, before);
    assert_eq!(verify(&log).await.unwrap().events, 2);

    log.fail_appends(false);
    let next = log.append(event_at("acme", 6)).await.unwrap();
    assert_eq!(
        (next.seq, next.prev_hash),
        (2, before[1].hash),
        "no gap left behind"
    );
    assert!(verify(&log).await.is_ok());
}

#[tokio::test]
async fn edited_event_is_found_at_its_position() {
    let log = log_with(5, "acme").await;
    log.dangerous_tamper(&tenant("acme"), |evs| {
        evs[2].event.outcome = Outcome::Denied
    });
    assert_eq!(broken_at(&log).await, ("acme".into(), 2, BreakKind::Edited));
}

#[tokio::test]
async fn edited_hash_breaks_the_next_link() {
    let log = log_with(5, "acme").await;
    // Rewriting an event and its own hash leaves the next event pointing at the old hash.
    log.dangerous_tamper(&tenant("acme"), |evs| {
        evs[2].event.outcome = Outcome::Denied;
        evs[2] = SealedEvent::seal(evs[2].prev_hash, 2, evs[2].event.clone());
    });
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 3, BreakKind::Unlinked)
    );
}

#[tokio::test]
async fn deleted_event_is_a_sequence_gap() {
    let log = log_with(5, "acme").await;
    log.dangerous_tamper(&tenant("acme"), |evs| evs.remove(2));
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 2, BreakKind::SequenceGap)
    );
}

#[tokio::test]
async fn deleted_and_renumbered_event_breaks_the_link() {
    let log = log_with(5, "acme").await;
    log.dangerous_tamper(&tenant("acme"), |evs| {
        evs.remove(2);
        for (i, e) in evs.iter_mut().enumerate() {
            e.seq = i as u64;
        }
    });
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 2, BreakKind::Unlinked)
    );
}

#[tokio::test]
async fn deleted_first_event_is_found() {
    let log = log_with(3, "acme").await;
    log.dangerous_tamper(&tenant("acme"), |evs| evs.remove(0));
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 0, BreakKind::SequenceGap)
    );
}

#[tokio::test]
async fn swapped_events_are_found() {
    let log = log_with(5, "acme").await;
    log.dangerous_tamper(&tenant("acme"), |evs| evs.swap(1, 3));
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 1, BreakKind::SequenceGap)
    );
}

#[tokio::test]
async fn event_moved_to_another_tenant_is_found() {
    let log = log_with(3, "acme").await;
    for i in 0..3 {
        log.append(event_at("beta", i)).await.unwrap();
    }
    let stolen = log.dangerous_tamper(&tenant("beta"), |evs| evs.pop().unwrap());
    log.dangerous_tamper(&tenant("acme"), |evs| {
        let mut forged = stolen;
        forged.seq = 3;
        evs.push(forged);
    });
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 3, BreakKind::SequenceGap)
    );
}

#[tokio::test]
async fn break_names_the_right_tenant() {
    let log = log_with(3, "acme").await;
    for i in 0..4 {
        log.append(event_at("beta", i)).await.unwrap();
    }
    log.dangerous_tamper(&tenant("beta"), |evs| evs[3].event.kind = EventKind::Login);
    assert_eq!(broken_at(&log).await, ("beta".into(), 3, BreakKind::Edited));
}

#[tokio::test]
async fn truncation_is_found_only_with_a_checkpoint() {
    let log = log_with(5, "acme").await;
    log.dangerous_tamper(&tenant("acme"), |evs| evs.truncate(3));
    // Without a recorded head, a shorter chain is a valid chain: that is what checkpoints are for.
    assert_eq!(verify(&log).await.unwrap().events, 3);

    let log = log_with(5, "acme").await;
    let cp = log.checkpoint(&tenant("acme")).unwrap();
    assert_eq!(cp.seq, 4);
    assert_eq!(log.latest_checkpoint(&tenant("acme")), Some(cp));
    assert!(verify(&log).await.is_ok());
    log.dangerous_tamper(&tenant("acme"), |evs| evs.truncate(3));
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 3, BreakKind::Truncated)
    );
}

#[tokio::test]
async fn truncation_then_new_appends_is_found() {
    let log = log_with(5, "acme").await;
    log.checkpoint(&tenant("acme")).unwrap();
    log.dangerous_tamper(&tenant("acme"), |evs| evs.truncate(3));
    // Appends continue from what is stored, so the forged tail reaches seq 4 with a different hash.
    log.append(event_at("acme", 10)).await.unwrap();
    log.append(event_at("acme", 11)).await.unwrap();
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 4, BreakKind::Truncated)
    );
}

#[tokio::test]
async fn resealed_rewrite_is_found_by_the_checkpoint() {
    let log = log_with(5, "acme").await;
    log.checkpoint(&tenant("acme")).unwrap();
    log.dangerous_tamper(&tenant("acme"), |evs| {
        evs[1].event.outcome = Outcome::Failed;
        reseal(evs);
    });
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 4, BreakKind::Truncated)
    );
}

#[tokio::test]
async fn events_after_the_checkpoint_still_verify() {
    let log = log_with(3, "acme").await;
    log.checkpoint(&tenant("acme")).unwrap();
    for i in 3..6 {
        log.append(event_at("acme", i)).await.unwrap();
    }
    let summary = verify(&log).await.unwrap();
    assert_eq!(summary.heads[0].seq, 5);
}

#[tokio::test]
async fn purge_removes_a_prefix_and_anchors_the_rest() {
    let log = log_with(10, "acme").await;
    log.append(event_at("beta", 7)).await.unwrap();
    let before = all(&log).await;
    let acme: Vec<_> = before
        .iter()
        .filter(|e| e.event.tenant == tenant("acme"))
        .collect();

    let report = log
        .purge_before(t0() + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(report.removed, 5);
    let anchor = ChainAnchor {
        tenant: tenant("acme"),
        seq: 5,
        prev_hash: acme[4].hash,
    };
    assert_eq!(
        report.anchors,
        vec![anchor.clone()],
        "beta's start did not move"
    );
    assert_eq!(log.anchor(&tenant("acme")), Some(anchor));
    assert_eq!(log.anchor(&tenant("beta")), None);

    let q = AuditQuery {
        tenant: Some(tenant("acme")),
        ..AuditQuery::default()
    };
    let kept: Vec<u64> = log.read(&q).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(kept, vec![5, 6, 7, 8, 9]);
    assert_eq!(verify(&log).await.unwrap().events, 6);

    let next = log.append(event_at("acme", 20)).await.unwrap();
    assert_eq!((next.seq, next.prev_hash), (10, acme[9].hash));
    assert!(verify(&log).await.is_ok());

    // Again at the same cut: nothing more to remove, no anchor moves.
    let again = log
        .purge_before(t0() + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!((again.removed, again.anchors.len()), (0, 0));
}

#[tokio::test]
async fn purge_keeps_the_event_at_the_cutoff() {
    let log = log_with(4, "acme").await;
    let report = log
        .purge_before(t0() + TimeDelta::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        report.removed, 2,
        "minutes 0 and 1 are strictly before; 2 is not"
    );
    assert_eq!(all(&log).await[0].seq, 2);
}

#[tokio::test]
async fn purge_of_everything_still_continues_the_chain() {
    let log = log_with(3, "acme").await;
    let last = all(&log).await[2].hash;
    let report = log.purge_before(t0() + TimeDelta::days(1)).await.unwrap();
    assert_eq!(report.removed, 3);
    assert_eq!(report.anchors[0].seq, 3);
    assert!(all(&log).await.is_empty());
    assert_eq!(verify(&log).await.unwrap().events, 0);

    let next = log.append(event_at("acme", 60 * 25)).await.unwrap();
    assert_eq!((next.seq, next.prev_hash), (3, last));
    assert!(verify(&log).await.is_ok());
}

#[tokio::test]
async fn purge_stops_at_the_first_event_not_before_the_cutoff() {
    let log = MemoryAuditLog::new();
    for m in [1, 2, 5, 3, 6] {
        log.append(event_at("acme", m)).await.unwrap();
    }
    let report = log
        .purge_before(t0() + TimeDelta::minutes(4))
        .await
        .unwrap();
    assert_eq!(
        report.removed, 2,
        "the event at minute 3 sits after minute 5 in the chain"
    );
    let stored: Vec<u64> =
        log.dangerous_tamper(&tenant("acme"), |evs| evs.iter().map(|e| e.seq).collect());
    assert_eq!(stored, vec![2, 3, 4], "a contiguous suffix");
    let read: Vec<u64> = all(&log).await.iter().map(|e| e.seq).collect();
    assert_eq!(read, vec![3, 2, 4], "read is oldest first by time");
    assert!(verify(&log).await.is_ok());
}

#[tokio::test]
async fn purge_past_a_checkpoint_is_not_truncation() {
    let log = log_with(3, "acme").await;
    log.checkpoint(&tenant("acme")).unwrap();
    for i in 3..6 {
        log.append(event_at("acme", i)).await.unwrap();
    }
    log.purge_before(t0() + TimeDelta::minutes(4))
        .await
        .unwrap();
    assert!(
        verify(&log).await.is_ok(),
        "the checkpoint (seq 2) was purged legitimately"
    );
}

#[tokio::test]
async fn tampering_after_a_purge_is_found() {
    let log = log_with(6, "acme").await;
    log.purge_before(t0() + TimeDelta::minutes(3))
        .await
        .unwrap();
    log.dangerous_tamper(&tenant("acme"), |evs| evs.remove(0));
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 3, BreakKind::SequenceGap)
    );

    let log = log_with(6, "acme").await;
    log.purge_before(t0() + TimeDelta::minutes(3))
        .await
        .unwrap();
    log.checkpoint(&tenant("acme")).unwrap();
    log.dangerous_tamper(&tenant("acme"), Vec::clear);
    assert_eq!(
        broken_at(&log).await,
        ("acme".into(), 3, BreakKind::Truncated)
    );
}

#[test]
fn concurrent_appends_never_fork_the_chain() {
    let log = Arc::new(MemoryAuditLog::new());
    let dyn_log: Arc<dyn AuditLog> = log.clone();
    let seqs = multi_thread().block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let log = dyn_log.clone();
                tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for i in 0..200 {
                        let sealed = log.append(event_at("acme", task * 1000 + i)).await.unwrap();
                        seqs.push(sealed.seq);
                        if i % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    seqs
                })
            })
            .collect();
        let mut all_seqs = Vec::new();
        for t in tasks {
            all_seqs.extend(t.await.unwrap());
        }
        all_seqs
    });
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..1600).collect::<Vec<u64>>(),
        "every seq handed out exactly once"
    );

    let stored: Vec<u64> =
        log.dangerous_tamper(&tenant("acme"), |evs| evs.iter().map(|e| e.seq).collect());
    assert_eq!(
        stored,
        (0..1600).collect::<Vec<u64>>(),
        "stored contiguously in order"
    );
    let summary = multi_thread()
        .block_on(log.verify_chain())
        .unwrap()
        .unwrap();
    assert_eq!(summary.events, 1600);
}

#[test]
fn concurrent_appends_across_tenants_keep_each_chain_whole() {
    let log = Arc::new(MemoryAuditLog::new());
    multi_thread().block_on(async {
        let tasks: Vec<_> = (0..8i64)
            .map(|task| {
                let log = log.clone();
                tokio::spawn(async move {
                    for i in 0..200 {
                        let name = ["acme", "beta", "gamma"][((task + i) % 3) as usize];
                        log.append(event_at(name, i)).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let summary = log.verify_chain().await.unwrap().unwrap();
        assert_eq!(summary.events, 1600);
        let total_heads: u64 = summary.heads.iter().map(|h| h.seq + 1).sum();
        assert_eq!(
            total_heads, 1600,
            "each tenant's head is its event count minus one"
        );
    });
}
