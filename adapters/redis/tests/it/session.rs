//! Sessions: tombstones, atomic changes across replicas (with exact interleavings through the pause hook),
//! timeouts, pre-login state.

use crate::support::{Fixture, TestClock, agent, random_hex, subject};
use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{Clock, PreLogin, Session, SessionStore, SystemClock, Timeouts, VerificationId};
use fctr_redis::{PauseHook, PausePoint};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

fn session(id: &str, now: DateTime<Utc>) -> Session {
    Session::new(
        id.to_owned(),
        format!("csrf-{id}"),
        agent("00uagent"),
        Some("tier1".into()),
        now,
    )
}

fn sid() -> String {
    random_hex(16)
}

/// Pauses the first attempt of one operation until released, and records every pause point passed.
#[derive(Clone, Default)]
struct Gate {
    reached: Arc<Notify>,
    release: Arc<Notify>,
    seen: Arc<Mutex<Vec<PausePoint>>>,
}

impl Gate {
    fn hook(&self, op: &'static str) -> PauseHook {
        let gate = self.clone();
        Arc::new(move |p: PausePoint| {
            let gate = gate.clone();
            Box::pin(async move {
                gate.seen.lock().unwrap().push(p);
                if p.op == op && p.attempt == 0 {
                    gate.reached.notify_one();
                    gate.release.notified().await;
                }
            })
        })
    }

    fn attempts(&self) -> Vec<u32> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.attempt)
            .collect()
    }
}

async fn stores(
    fx: &Fixture,
    clock: Arc<dyn Clock>,
) -> (Arc<dyn SessionStore>, Arc<dyn SessionStore>) {
    let a = fx
        .replica()
        .await
        .session_store(clock.clone(), Timeouts::default());
    let b = fx.replica().await.session_store(clock, Timeouts::default());
    (a, b)
}

#[tokio::test]
async fn a_removed_session_cannot_be_created_touched_or_changed_again() {
    let fx = Fixture::new().await;
    let clock = TestClock::new();
    let (a, b) = stores(&fx, Arc::new(clock.clone())).await;
    let id = sid();
    let s = session(&id, clock.now());
    assert!(a.create(&s).await.unwrap());
    assert!(
        !b.create(&s).await.unwrap(),
        "an id is created once, on any replica"
    );
    assert_eq!(
        b.get(&id).await.unwrap(),
        Some(s.clone()),
        "the other replica reads it, id and all"
    );
    assert_eq!(a.len().await.unwrap(), 1);
    b.remove(&id).await.unwrap();
    assert!(
        !a.create(&s).await.unwrap(),
        "a tombstone blocks re-creation"
    );
    assert!(a.touch(&id).await.unwrap().is_none());
    assert!(a.get(&id).await.unwrap().is_none());
    assert!(
        a.add_caller(&id, &subject("00ucaller"), "h1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !a.add_verification(&id, VerificationId::random(), "h1")
            .await
            .unwrap()
    );
    assert!(
        !a.set_role(&id, Some("tier3".into()), clock.now())
            .await
            .unwrap()
    );
    assert!(a.is_empty().await.unwrap());
    fx.cleanup().await;
}

#[tokio::test]
async fn removing_a_made_up_id_leaves_nothing_behind() {
    let fx = Fixture::new().await;
    let clock = TestClock::new();
    let (a, _) = stores(&fx, Arc::new(clock.clone())).await;
    for i in 0..200 {
        a.remove(&format!("made-up-{i}")).await.unwrap();
    }
    assert_eq!(fx.keys().await, Vec::<String>::new());
    assert!(a.create(&session("made-up-7", clock.now())).await.unwrap());
    fx.cleanup().await;
}

#[tokio::test]
async fn touch_changes_and_set_role_follow_the_memory_rules() {
    let fx = Fixture::new().await;
    let clock = TestClock::new();
    let (a, b) = stores(&fx, Arc::new(clock.clone())).await;
    let id = sid();
    let early = clock.now();
    assert!(a.create(&session(&id, early)).await.unwrap());
    clock.advance(TimeDelta::seconds(5));
    let touched = b.touch(&id).await.unwrap().unwrap();
    assert_eq!((touched.last_seen, touched.version), (clock.now(), 1));
    assert_eq!(touched.id, id);

    let (x, y) = (subject("00ux"), subject("00uy"));
    let hx = a.add_caller(&id, &x, "hx").await.unwrap().unwrap();
    let hy = b.add_caller(&id, &y, "hy").await.unwrap().unwrap();
    assert_eq!(
        a.add_caller(&id, &x, "other").await.unwrap().unwrap(),
        hx,
        "one handle per caller"
    );
    let vid = VerificationId::random();
    assert!(b.add_verification(&id, vid, &hx).await.unwrap());

    assert!(
        a.set_role(&id, Some("tier2".into()), clock.now())
            .await
            .unwrap()
    );
    assert!(
        !b.set_role(&id, Some("tier3".into()), early).await.unwrap(),
        "an older check never wins"
    );
    let got = a.get(&id).await.unwrap().unwrap();
    assert_eq!(got.role.as_deref(), Some("tier2"));
    assert_eq!(got.callers.get(&hx), Some(&x));
    assert_eq!(got.callers.get(&hy), Some(&y));
    assert_eq!(got.verifications.get(&vid), Some(&hx));
    assert_eq!(got.version, 6);
    fx.cleanup().await;
}

#[tokio::test]
async fn a_timed_out_session_is_removed_on_touch_and_stays_a_tombstone() {
    let fx = Fixture::new().await;
    let clock = TestClock::new();
    let (a, b) = stores(&fx, Arc::new(clock.clone())).await;
    let id = sid();
    let s = session(&id, clock.now());
    assert!(a.create(&s).await.unwrap());
    clock.advance(TimeDelta::minutes(14));
    assert!(
        b.get(&id).await.unwrap().is_some(),
        "14 minutes idle is still live"
    );
    clock.advance(TimeDelta::minutes(2));
    assert!(
        b.get(&id).await.unwrap().is_none(),
        "16 minutes idle is not"
    );
    assert_eq!(a.len().await.unwrap(), 0);
    assert!(b.touch(&id).await.unwrap().is_none());
    assert!(!a.create(&s).await.unwrap());
    fx.cleanup().await;
}

/// A request paused between its read and its write while another replica signs the session out: the paused write
/// fails, the session stays removed, nothing brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_paused_across_a_sign_out_does_not_bring_the_session_back() {
    let fx = Fixture::new().await;
    let gate = Gate::default();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let paused = fx
        .replica_with(fx.options().with_pause_hook(gate.hook("add_caller")))
        .await
        .session_store(clock.clone(), Timeouts::default());
    let other = fx
        .replica()
        .await
        .session_store(clock.clone(), Timeouts::default());
    let id = sid();
    assert!(other.create(&session(&id, clock.now())).await.unwrap());

    let task = {
        let (paused, id) = (paused.clone(), id.clone());
        tokio::spawn(async move { paused.add_caller(&id, &subject("00ucaller"), "h1").await })
    };
    gate.reached.notified().await;
    other.remove(&id).await.unwrap();
    gate.release.notify_one();
    assert_eq!(
        task.await.unwrap().unwrap(),
        None,
        "the paused write found no session"
    );
    assert_eq!(
        gate.attempts(),
        vec![0],
        "the write was refused and not retried on a tombstone"
    );
    assert!(other.get(&id).await.unwrap().is_none());
    let session_keys: Vec<_> = fx
        .keys()
        .await
        .into_iter()
        .filter(|k| k.contains(":s:"))
        .collect();
    assert!(
        session_keys.is_empty(),
        "no session key re-created: {session_keys:?}"
    );
    assert!(
        !other.create(&session(&id, clock.now())).await.unwrap(),
        "still a tombstone"
    );
    fx.cleanup().await;
}

/// Two requests adding callers, interleaved so that both read the same version: both handles are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_interleaved_add_callers_keep_both_handles() {
    let fx = Fixture::new().await;
    let gate = Gate::default();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let paused = fx
        .replica_with(fx.options().with_pause_hook(gate.hook("add_caller")))
        .await
        .session_store(clock.clone(), Timeouts::default());
    let other = fx
        .replica()
        .await
        .session_store(clock.clone(), Timeouts::default());
    let id = sid();
    assert!(other.create(&session(&id, clock.now())).await.unwrap());

    let (x, y) = (subject("00ux"), subject("00uy"));
    let task = {
        let (paused, id, x) = (paused.clone(), id.clone(), x.clone());
        tokio::spawn(async move { paused.add_caller(&id, &x, "hx").await })
    };
    gate.reached.notified().await;
    assert_eq!(
        other.add_caller(&id, &y, "hy").await.unwrap().as_deref(),
        Some("hy")
    );
    gate.release.notify_one();
    assert_eq!(task.await.unwrap().unwrap().as_deref(), Some("hx"));
    assert_eq!(
        gate.attempts(),
        vec![0, 1],
        "the first write lost its compare-and-set and was redone"
    );
    let got = other.get(&id).await.unwrap().unwrap();
    assert_eq!(got.callers.len(), 2);
    assert_eq!(got.callers.get("hx"), Some(&x));
    assert_eq!(got.callers.get("hy"), Some(&y));
    fx.cleanup().await;
}

/// A slow role re-check paused while a newer one lands: once it resumes it sees the newer check time and stores
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_role_check_never_overwrites_a_newer_one() {
    let fx = Fixture::new().await;
    let gate = Gate::default();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let paused = fx
        .replica_with(fx.options().with_pause_hook(gate.hook("set_role")))
        .await
        .session_store(clock.clone(), Timeouts::default());
    let other = fx
        .replica()
        .await
        .session_store(clock.clone(), Timeouts::default());
    let id = sid();
    let start = clock.now();
    assert!(other.create(&session(&id, start)).await.unwrap());
    let slow_at = start + TimeDelta::seconds(1);
    let task = {
        let (paused, id) = (paused.clone(), id.clone());
        tokio::spawn(async move { paused.set_role(&id, Some("tier3".into()), slow_at).await })
    };
    gate.reached.notified().await;
    assert!(
        other
            .set_role(&id, None, start + TimeDelta::seconds(2))
            .await
            .unwrap()
    );
    gate.release.notify_one();
    assert!(!task.await.unwrap().unwrap());
    assert_eq!(other.get(&id).await.unwrap().unwrap().role, None);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_login_is_taken_once_however_many_callbacks_race() {
    let fx = Fixture::new().await;
    let clock = TestClock::new();
    let (a, b) = stores(&fx, Arc::new(clock.clone())).await;
    for round in 0..10 {
        let key = random_hex(16);
        let pre = PreLogin {
            state: format!("state-{round}"),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            created: clock.now(),
        };
        a.put_pre_login(&key, &pre).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                let key = key.clone();
                tokio::spawn(async move { s.take_pre_login(&key).await.unwrap() })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.extend(t.await.unwrap());
        }
        assert_eq!(
            got,
            vec![pre],
            "round {round}: exactly one callback gets it"
        );
    }
    let key = random_hex(16);
    let pre = PreLogin {
        state: "s".into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        return_to: "/".into(),
        created: clock.now(),
    };
    a.put_pre_login(&key, &pre).await.unwrap();
    clock.advance(TimeDelta::minutes(10));
    assert_eq!(
        b.take_pre_login(&key).await.unwrap(),
        None,
        "expired by the store's clock"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn redis_drops_timed_out_sessions_and_pre_login_by_itself() {
    let fx = Fixture::new().await;
    let t = Timeouts {
        idle: Duration::from_millis(800),
        absolute: Duration::from_secs(30),
        pre_login: Duration::from_millis(800),
    };
    let s = fx.replica().await.session_store(Arc::new(SystemClock), t);
    let id = sid();
    assert!(s.create(&session(&id, Utc::now())).await.unwrap());
    s.put_pre_login(
        "pre",
        &PreLogin {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            created: Utc::now(),
        },
    )
    .await
    .unwrap();
    let before = fx.keys().await;
    assert!(before.iter().any(|k| k.contains(":s:")) && before.iter().any(|k| k.contains(":pl:")));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = fx.keys().await;
    assert!(
        !after.iter().any(|k| k.contains(":s:")),
        "session data dropped: {after:?}"
    );
    assert!(
        !after.iter().any(|k| k.contains(":pl:")),
        "pre-login dropped: {after:?}"
    );
    assert!(
        after.iter().any(|k| k.contains(":sx:")),
        "the tombstone stays"
    );
    assert!(s.get(&id).await.unwrap().is_none());
    assert!(
        !s.create(&session(&id, Utc::now())).await.unwrap(),
        "and blocks the id"
    );
    fx.cleanup().await;
}
