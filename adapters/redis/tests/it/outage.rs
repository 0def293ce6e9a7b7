//! Fail closed and recover: with Redis cut off or silent, every operation is `Unavailable` within the command
//! timeout; once it is back the same store instance works again, pub/sub included.

use crate::forwarder::{Forwarder, Mode, host_port};
use crate::support::{Fixture, captured_logs, grant, pseudo, random_hex, redis_url};
use chrono::Utc;
use fctr_ports::ExposeSecret;
use fctr_ports::{
    ActionKind, GrantConsumption, PortError, RateKey, RateRule, SecretString, Session, SystemClock,
    Timeouts,
};
use fctr_redis::RedisState;
use futures::StreamExt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded two-core machine (the bound shown is "about the command timeout", not "whenever
/// TCP gives up", which is minutes).
const SLACK: Duration = Duration::from_millis(1000);
/// How long the store may take to find Redis again after it is back (reconnect back-off included).
const RECOVERY: Duration = Duration::from_secs(15);

/// Asserts `op` fails as unavailable within the command timeout (plus scheduling slack).
async fn unavailable_in_time<T: std::fmt::Debug>(
    what: &str,
    op: impl Future<Output = Result<T, PortError>>,
) {
    let start = Instant::now();
    let r = op.await;
    let took = start.elapsed();
    assert!(matches!(r, Err(PortError::Unavailable)), "{what}: {r:?}");
    assert!(took < TIMEOUT + SLACK, "{what} took {took:?}");
}

/// Waits (bounded) until the store answers again: the store reconnects by itself; the test only watches.
async fn until_back(state: &RedisState) {
    let start = Instant::now();
    while state.ping().await.is_err() {
        assert!(start.elapsed() < RECOVERY, "the store did not recover");
    }
}

async fn outage_and_recovery(mode: Mode) {
    captured_logs();
    let fx = Fixture::new().await;
    let fwd = Forwarder::start(host_port(&redis_url())).await;
    let direct = fx.replica().await;
    // With a password (Redis's default user takes any password when it has none): it must never show.
    let password = format!("pw{}", random_hex(8));
    let url = fwd
        .url()
        .replacen("redis://", &format!("redis://default:{password}@"), 1);
    let state = RedisState::connect(
        SecretString::from(url),
        fx.options().with_command_timeout(TIMEOUT),
    )
    .await
    .unwrap();
    assert!(!format!("{state:?}").contains(&password));
    let grants = state.grant_store();
    let limiter = state.rate_limiter();
    let sessions = state.session_store(Arc::new(SystemClock), Timeouts::default());
    let coord = state.coordinator();
    let (ag, su) = (pseudo("agent"), pseudo("caller"));
    let g = grant(&ag, &su, true, Utc::now());
    direct
        .grant_store()
        .put_grant(&g, Duration::from_secs(60))
        .await
        .unwrap();
    let rk = RateKey::parse("k").unwrap();
    let rule = RateRule {
        limit: 5,
        window: Duration::from_secs(60),
    };
    let mut sub = coord.subscribe("events").await.unwrap();
    assert!(
        state
            .wait_pubsub(|live, generation| live && generation == 1, TIMEOUT)
            .await
    );

    fwd.set(mode);
    unavailable_in_time("ping", state.ping()).await;
    unavailable_in_time(
        "consume",
        grants.consume(&ag, &su, ActionKind::Unlock, Utc::now()),
    )
    .await;
    unavailable_in_time("find_grant", grants.find_grant(&ag, &su)).await;
    unavailable_in_time("hit", limiter.hit(&rk, rule)).await;
    unavailable_in_time("session get", sessions.get("some-session")).await;
    unavailable_in_time("touch", sessions.touch("some-session")).await;
    unavailable_in_time("take_pre_login", sessions.take_pre_login("k")).await;
    unavailable_in_time(
        "acquire",
        coord.acquire("lease", "me", Duration::from_secs(5)),
    )
    .await;
    unavailable_in_time("publish", coord.publish("events", b"lost".to_vec())).await;
    assert!(
        state
            .wait_pubsub(|live, _| !live, Duration::from_secs(5))
            .await,
        "the pub/sub task noticed the loss (a silent one by its pings)"
    );
    unavailable_in_time("subscribe", async {
        coord.subscribe("other").await.map(|_| ())
    })
    .await;
    // Nothing was half-done: the grant is still there for when Redis is back.
    assert!(
        direct
            .grant_store()
            .find_grant(&ag, &su)
            .await
            .unwrap()
            .is_some()
    );

    fwd.set(Mode::Open);
    until_back(&state).await;
    // A consume that timed out was a denial. Through a silent partition its request may still reach Redis once the
    // network heals and spend the grant then: the caller had already refused, so the grant is simply gone.
    let late = grants
        .consume(&ag, &su, ActionKind::Unlock, Utc::now())
        .await
        .unwrap();
    match mode {
        Mode::Cut => assert!(matches!(late, GrantConsumption::Consumed(_)), "{late:?}"),
        _ => assert!(
            matches!(
                late,
                GrantConsumption::Consumed(_) | GrantConsumption::AlreadyUsed
            ),
            "{late:?}"
        ),
    }
    let fresh = grant(&ag, &su, true, Utc::now());
    grants
        .put_grant(&fresh, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        grants
            .consume(&ag, &su, ActionKind::Unlock, Utc::now())
            .await
            .unwrap(),
        GrantConsumption::Consumed(fresh)
    );
    assert!(limiter.hit(&rk, rule).await.unwrap().is_allowed());
    let s = Session::new(
        "sid-after".into(),
        "c".into(),
        crate::support::agent("00ua"),
        None,
        Utc::now(),
    );
    assert!(sessions.create(&s).await.unwrap());
    assert!(
        coord
            .acquire("lease", "me", Duration::from_secs(5))
            .await
            .unwrap()
    );

    // The pub/sub connection is reopened and re-subscribed by itself; the old subscription hears again.
    assert!(
        state
            .wait_pubsub(|live, generation| live && generation >= 2, RECOVERY)
            .await,
        "re-subscribed"
    );
    direct
        .coordinator()
        .publish("events", b"after".to_vec())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"after"[..]));

    // The outage was logged (operation and error kind), with no secret in it.
    let logs = captured_logs();
    assert!(logs.contains("redis command"), "the failures were logged");
    assert!(
        logs.contains("pub/sub connection"),
        "the reconnect was logged"
    );
    assert!(!logs.contains(&password), "the password is in the logs");
    assert!(
        !logs.contains(fx.seal.expose_secret()),
        "the seal key is in the logs"
    );
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_fails_closed_in_time_and_recovers_by_itself() {
    outage_and_recovery(Mode::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_fails_closed_in_time_and_recovers_by_itself() {
    outage_and_recovery(Mode::Paused).await;
}

#[tokio::test]
async fn connecting_to_nothing_fails_without_naming_the_url() {
    let fwd = Forwarder::start(host_port(&redis_url())).await;
    fwd.set(Mode::Cut);
    let password = format!("pw{}", crate::support::random_hex(8));
    let url = format!("redis://:{password}@{}", fwd.addr);
    let fx = Fixture::new().await;
    let start = Instant::now();
    let err = RedisState::connect(
        SecretString::from(url),
        fx.options().with_command_timeout(TIMEOUT),
    )
    .await
    .unwrap_err();
    assert!(start.elapsed() < TIMEOUT + SLACK);
    assert!(
        matches!(err, fctr_redis::ConnectError::Unavailable),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(&password));
}
