//! Grants and verifications: one winner across replicas, the consume rules, restore, version compare-and-set.

use crate::support::{Fixture, grant, pseudo, subject};
use chrono::{TimeDelta, Utc};
use fctr_ports::{
    ActionKind, GrantConsumption, GrantStore, TenantId, VerificationId, VerificationRecord,
    VerificationStatus,
};
use std::sync::Arc;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(60);

fn verification(version: u64) -> VerificationRecord {
    let now = Utc::now();
    VerificationRecord {
        id: VerificationId::random(),
        tenant: TenantId::parse("acme".to_owned()).unwrap(),
        agent: pseudo("agent"),
        subject: subject("00ucaller"),
        subject_pseudo: pseudo("caller"),
        status: VerificationStatus::Pending,
        challenge: None,
        approved: vec![],
        required_factors: 1,
        privileged: Some(false),
        created_at: now,
        expires_at: now + TimeDelta::minutes(5),
        grant: None,
        ended_by: None,
        version,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_single_use_grant_32_consumers_on_two_replicas_exactly_one_wins() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.grant_store();
    let b = fx.replica().await.grant_store();
    let (ag, su) = (pseudo("agent"), pseudo("caller"));
    let g = grant(&ag, &su, true, Utc::now());
    a.put_grant(&g, TTL).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..32 {
        let store: Arc<dyn GrantStore> = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (ag, su) = (ag.clone(), su.clone());
        tasks.push(tokio::spawn(async move {
            store
                .consume(&ag, &su, ActionKind::ResetPassword, Utc::now())
                .await
                .unwrap()
        }));
    }
    let mut consumed = 0;
    let mut already_used = 0;
    for t in tasks {
        match t.await.unwrap() {
            GrantConsumption::Consumed(got) => {
                assert_eq!(got, g);
                consumed += 1;
            }
            GrantConsumption::AlreadyUsed => already_used += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((consumed, already_used), (1, 31));
    assert_eq!(
        b.find_grant(&ag, &su).await.unwrap(),
        None,
        "a used grant reads as none"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn consume_checks_presence_use_expiry_and_cover_in_that_order() {
    let fx = Fixture::new().await;
    let s = fx.replica().await.grant_store();
    let (ag, su) = (pseudo("agent"), pseudo("caller"));
    let now = Utc::now();
    assert_eq!(
        s.consume(&ag, &su, ActionKind::Unlock, now).await.unwrap(),
        GrantConsumption::Missing
    );

    let g = grant(&ag, &su, true, now);
    s.put_grant(&g, TTL).await.unwrap();
    assert_eq!(s.find_grant(&ag, &su).await.unwrap(), Some(g.clone()));
    assert_eq!(
        s.consume(&ag, &su, ActionKind::Suspend, now).await.unwrap(),
        GrantConsumption::DoesNotCover,
        "not covered: untouched"
    );
    assert_eq!(
        s.consume(&ag, &su, ActionKind::Unlock, g.expires_at)
            .await
            .unwrap(),
        GrantConsumption::Expired,
        "expired at exactly expires_at"
    );
    assert_eq!(
        s.find_grant(&ag, &su).await.unwrap(),
        Some(g.clone()),
        "still live"
    );
    assert_eq!(
        s.consume(
            &ag,
            &su,
            ActionKind::Unlock,
            g.expires_at - TimeDelta::nanoseconds(1)
        )
        .await
        .unwrap(),
        GrantConsumption::Consumed(g.clone()),
        "one nanosecond before expiry still counts"
    );
    assert_eq!(
        s.consume(&ag, &su, ActionKind::Unlock, now).await.unwrap(),
        GrantConsumption::AlreadyUsed
    );
    assert_eq!(
        s.consume(&ag, &su, ActionKind::Unlock, g.expires_at)
            .await
            .unwrap(),
        GrantConsumption::AlreadyUsed,
        "used is reported before expired"
    );

    // A multi-use grant stays live.
    let m = grant(&ag, &su, false, now);
    s.put_grant(&m, TTL).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            s.consume(&ag, &su, ActionKind::ResetPassword, now)
                .await
                .unwrap(),
            GrantConsumption::Consumed(m.clone())
        );
    }
    assert_eq!(s.find_grant(&ag, &su).await.unwrap(), Some(m));
    fx.cleanup().await;
}

#[tokio::test]
async fn restore_gives_back_only_the_used_grant_it_names() {
    let fx = Fixture::new().await;
    let s = fx.replica().await.grant_store();
    let (ag, su) = (pseudo("agent"), pseudo("caller"));
    let now = Utc::now();
    let g = grant(&ag, &su, true, now);
    assert!(!s.restore(&g, TTL).await.unwrap(), "nothing in the slot");
    s.put_grant(&g, TTL).await.unwrap();
    assert!(
        !s.restore(&g, TTL).await.unwrap(),
        "live, not used: nothing to restore"
    );
    assert!(matches!(
        s.consume(&ag, &su, ActionKind::Unlock, now).await.unwrap(),
        GrantConsumption::Consumed(_)
    ));
    let other = grant(&ag, &su, true, now);
    assert!(!s.restore(&other, TTL).await.unwrap(), "another grant's id");
    assert!(s.restore(&g, TTL).await.unwrap());
    assert_eq!(s.find_grant(&ag, &su).await.unwrap(), Some(g.clone()));
    assert!(matches!(
        s.consume(&ag, &su, ActionKind::Unlock, now).await.unwrap(),
        GrantConsumption::Consumed(_)
    ));

    // A newer grant in the slot is never replaced by a restore.
    let newer = grant(&ag, &su, true, now);
    s.put_grant(&newer, TTL).await.unwrap();
    assert!(!s.restore(&g, TTL).await.unwrap());
    assert_eq!(s.find_grant(&ag, &su).await.unwrap(), Some(newer));
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_compare_and_set_with_two_writers_has_one_winner() {
    let fx = Fixture::new().await;
    let a = fx.replica().await.grant_store();
    let b = fx.replica().await.grant_store();
    let v0 = verification(0);
    assert!(a.put_verification(&v0, None, TTL).await.unwrap());
    assert!(
        !b.put_verification(&v0, None, TTL).await.unwrap(),
        "insert only if new"
    );
    assert_eq!(b.get_verification(v0.id).await.unwrap(), Some(v0.clone()));

    for round in 0..20u64 {
        let mut va = v0.clone();
        va.version = round + 1;
        va.status = VerificationStatus::Challenged;
        let mut vb = va.clone();
        vb.status = VerificationStatus::Rejected;
        let (a2, b2) = (a.clone(), b.clone());
        let ta =
            tokio::spawn(async move { a2.put_verification(&va, Some(round), TTL).await.unwrap() });
        let tb =
            tokio::spawn(async move { b2.put_verification(&vb, Some(round), TTL).await.unwrap() });
        let (wa, wb) = (ta.await.unwrap(), tb.await.unwrap());
        assert!(
            wa ^ wb,
            "round {round}: exactly one writer wins ({wa}, {wb})"
        );
        let stored = a.get_verification(v0.id).await.unwrap().unwrap();
        assert_eq!(stored.version, round + 1);
        let want = if wa {
            VerificationStatus::Challenged
        } else {
            VerificationStatus::Rejected
        };
        assert_eq!(stored.status, want);
    }
    let mut stale = v0.clone();
    stale.version = 99;
    assert!(
        !a.put_verification(&stale, Some(3), TTL).await.unwrap(),
        "a stale version loses"
    );
    assert!(
        !a.put_verification(&verification(1), Some(0), TTL)
            .await
            .unwrap(),
        "no record: a CAS fails"
    );
    assert_eq!(
        a.get_verification(VerificationId::random()).await.unwrap(),
        None
    );
    fx.cleanup().await;
}
