//! Shared test support: the Redis URL, random prefixes and seal keys, a manual clock, a raw client to inspect
//! what the store wrote, and fixtures.

use chrono::{DateTime, TimeDelta, Utc};
use fctr_ports::{
    ActionKind, AgentId, Clock, GrantId, GrantRecord, KeyId, PseudoId, SecretString, SubjectId,
    TenantId, VerificationId,
};
use fctr_redis::{RedisOptions, RedisState};
use redis::aio::MultiplexedConnection;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("FCTR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    SystemRandom::new().fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A seal key drawn at run time (no literal secret in the source).
pub fn seal_key() -> SecretString {
    SecretString::from(random_hex(32))
}

/// A clock tests move by hand.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc::now())))
    }
    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// One test's world: a random prefix and seal key shared by its "replicas".
pub struct Fixture {
    pub prefix: String,
    pub seal: SecretString,
    pub raw: MultiplexedConnection,
}

impl Fixture {
    pub async fn new() -> Self {
        let client = redis::Client::open(redis_url()).unwrap();
        let raw = client.get_multiplexed_async_connection().await.unwrap();
        Self {
            prefix: format!("fctr-test-{}", random_hex(8)),
            seal: seal_key(),
            raw,
        }
    }

    pub fn options(&self) -> RedisOptions {
        RedisOptions::new(self.seal.clone())
            .with_prefix(self.prefix.clone())
            .with_command_timeout(Duration::from_millis(1500))
    }

    /// A replica connected straight to Redis.
    pub async fn replica(&self) -> RedisState {
        self.replica_with(self.options()).await
    }

    pub async fn replica_with(&self, options: RedisOptions) -> RedisState {
        RedisState::connect(SecretString::from(redis_url()), options)
            .await
            .unwrap()
    }

    /// Every key under this fixture's prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut c = self.raw.clone();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .unwrap();
            out.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out.dedup();
        out
    }

    pub async fn pttl(&self, key: &str) -> i64 {
        let mut c = self.raw.clone();
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap()
    }

    /// Deletes every key under the prefix (keys expire anyway; this keeps the test Redis tidy).
    pub async fn cleanup(&self) {
        let keys = self.keys().await;
        if keys.is_empty() {
            return;
        }
        let mut c = self.raw.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .unwrap();
    }
}

pub fn pseudo(tag: &str) -> PseudoId {
    let key = KeyId::parse("k1").unwrap();
    let mac = <sha2::Sha256 as sha2::Digest>::digest(tag.as_bytes());
    PseudoId::from_mac(&key, &mac[..16]).unwrap()
}

pub fn subject(s: &str) -> SubjectId {
    SubjectId::parse(s.to_owned()).unwrap()
}

pub fn agent(s: &str) -> AgentId {
    AgentId::parse(s.to_owned()).unwrap()
}

pub fn grant(
    agent: &PseudoId,
    subject: &PseudoId,
    single_use: bool,
    now: DateTime<Utc>,
) -> GrantRecord {
    GrantRecord {
        id: GrantId::random(),
        tenant: TenantId::parse("acme".to_owned()).unwrap(),
        verification: VerificationId::random(),
        agent: agent.clone(),
        subject: subject.clone(),
        actions: BTreeSet::from([ActionKind::ResetPassword, ActionKind::Unlock]),
        factors: vec![],
        issued_at: now,
        expires_at: now + TimeDelta::minutes(10),
        single_use,
    }
}

/// Every log line the stores in this test binary wrote (a global subscriber, installed on first use).
pub fn captured_logs() -> String {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buf = LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    });
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
