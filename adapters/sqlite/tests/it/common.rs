//! Shared helpers.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fctr_ports::{
    AuditEvent, AuditLog, EventKind, KeyId, Outcome, PseudoId, Reason, SealedEvent, TenantId,
};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use std::path::{Path, PathBuf};

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

/// A pseudonym under key `k1` with a MAC of `n` repeated.
pub fn pseudo(n: u8) -> PseudoId {
    PseudoId::from_mac(&KeyId::parse("k1").unwrap(), &[n; 32]).unwrap()
}

pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

/// `base() + secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    base() + Duration::seconds(secs)
}

pub fn event(t: &str, secs: i64, kind: EventKind) -> AuditEvent {
    let mut e = AuditEvent::new(tenant(t), at(secs), kind, Outcome::Success);
    e.agent = Some(pseudo(1));
    e.target = Some(pseudo(2));
    e.reason = Some(Reason::NoLiveGrant);
    e
}

pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("fctr.db")
}

pub async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(db_path(dir), SqliteOptions::default())
        .await
        .unwrap()
}

pub async fn open_with(dir: &tempfile::TempDir, o: SqliteOptions) -> SqliteStore {
    SqliteStore::open(db_path(dir), o).await.unwrap()
}

/// A separate, writable connection to the same file, as an attacker (or an operator) would have.
pub async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

/// Appends `n` events to tenant `t`, one second apart from `start`.
pub async fn append_n(store: &SqliteStore, t: &str, start: i64, n: i64) -> Vec<SealedEvent> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            store
                .append(event(t, start + i, EventKind::Lookup))
                .await
                .unwrap(),
        );
    }
    out
}
