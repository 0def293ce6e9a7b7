//! The in-memory session store: tombstones, atomic updates, timeouts.

use chrono::{DateTime, Utc};
use fctr_memory::{ManualClock, MemorySessionStore};
use fctr_ports::{AgentId, Clock, Session, SessionStore, SubjectId, Timeouts};
use std::sync::Arc;

fn store() -> (Arc<ManualClock>, MemorySessionStore) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let s = MemorySessionStore::new(clock.clone(), Timeouts::default());
    (clock, s)
}

fn session(id: &str, now: DateTime<Utc>) -> Session {
    let agent = AgentId::parse("00uagent".to_owned()).unwrap();
    Session::new(id.to_owned(), format!("csrf-{id}"), agent, None, now)
}

#[tokio::test]
async fn a_removed_session_cannot_be_created_touched_or_changed_again() {
    let (clock, st) = store();
    let s = session("s1", clock.now());
    assert!(st.create(&s).await.unwrap());
    assert!(!st.create(&s).await.unwrap(), "an id is created once");
    st.remove("s1").await.unwrap();
    assert!(
        !st.create(&s).await.unwrap(),
        "a tombstone blocks re-creation"
    );
    assert!(st.touch("s1").await.unwrap().is_none());
    assert!(st.get("s1").await.unwrap().is_none());
    let subject = SubjectId::parse("00ucaller".to_owned()).unwrap();
    assert!(st.add_caller("s1", &subject, "h1").await.unwrap().is_none());
    assert!(
        !st.set_role("s1", Some("tier3".into()), clock.now())
            .await
            .unwrap()
    );
    assert!(st.is_empty().await.unwrap());
}

#[tokio::test]
async fn removing_a_made_up_id_leaves_nothing_behind() {
    let (clock, st) = store();
    for i in 0..1000 {
        st.remove(&format!("made-up-{i}")).await.unwrap();
    }
    assert_eq!(st.tombstones(), 0);
    // And a session with such an id (were one ever minted) is not blocked by it.
    assert!(st.create(&session("made-up-7", clock.now())).await.unwrap());
}

#[tokio::test]
async fn handles_from_two_requests_both_stay_and_a_caller_keeps_one_handle() {
    let (clock, st) = store();
    assert!(st.create(&session("s1", clock.now())).await.unwrap());
    let a = SubjectId::parse("00ua".to_owned()).unwrap();
    let b = SubjectId::parse("00ub".to_owned()).unwrap();
    let ha = st.add_caller("s1", &a, "ha").await.unwrap().unwrap();
    let hb = st.add_caller("s1", &b, "hb").await.unwrap().unwrap();
    assert_eq!(st.add_caller("s1", &a, "other").await.unwrap().unwrap(), ha);
    let now = st.get("s1").await.unwrap().unwrap();
    assert_eq!(now.callers.get(&ha), Some(&a));
    assert_eq!(now.callers.get(&hb), Some(&b));
    assert_eq!(now.callers.len(), 2);
}

#[tokio::test]
async fn set_role_never_stores_an_older_check_over_a_newer_one() {
    let (clock, st) = store();
    let early = clock.now();
    assert!(st.create(&session("s1", clock.now())).await.unwrap());
    clock.advance(chrono::Duration::seconds(5));
    assert!(
        st.set_role("s1", Some("tier1".into()), clock.now())
            .await
            .unwrap()
    );
    assert!(
        !st.set_role("s1", Some("tier3".into()), early)
            .await
            .unwrap(),
        "stale"
    );
    let got = st.get("s1").await.unwrap().unwrap();
    assert_eq!(got.role.as_deref(), Some("tier1"));
    assert!(got.version >= 1);
}

#[tokio::test]
async fn a_timed_out_session_is_removed_on_touch() {
    let (clock, st) = store();
    let s = session("s1", clock.now());
    assert!(st.create(&s).await.unwrap());
    clock.advance(chrono::Duration::minutes(16));
    assert!(st.touch("s1").await.unwrap().is_none());
    assert!(!st.create(&s).await.unwrap());
}
