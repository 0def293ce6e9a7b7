//! Row encoding and decoding, the checkpoint MAC, the schema name, and the mapping of SQL errors to port errors.

use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, ChainCheckpoint, ChainHash, PortError, RawLink, SealedEvent, TenantId,
    canonical_time,
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::borrow::Cow;

/// The columns of an `audit_events` row as [`RawRow::from_row`] reads them, in order.
pub(crate) const ROW_COLUMNS: &str = "seq, prev_hash, hash, event";

/// An `audit_events` row as stored, before anything is trusted.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// The sequence number as stored.
    pub seq: i64,
    prev_hash: String,
    hash: String,
    event: String,
}

impl RawRow {
    /// Reads a row selected with [`ROW_COLUMNS`].
    pub fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            seq: row.try_get(0)?,
            prev_hash: row.try_get(1)?,
            hash: row.try_get(2)?,
            event: row.try_get(3)?,
        })
    }

    /// The stored hash, if it is one.
    pub fn hash(&self) -> Option<ChainHash> {
        hash_hex(&self.hash)
    }

    /// The row as a chain link, without decoding the event: `None` when the chain fields are not what we write (a
    /// sign of tampering). `event` holds the canonical encoding, the very bytes the hash covers, and is hashed as
    /// stored, so any changed byte is found ([`fctr_ports::BreakKind::Edited`]).
    pub fn link(&self) -> Option<RawLink<'_>> {
        Some(RawLink {
            seq: u64::try_from(self.seq).ok()?,
            prev_hash: hash_hex(&self.prev_hash)?,
            hash: hash_hex(&self.hash)?,
            canonical: Cow::Borrowed(self.event.as_bytes()),
        })
    }

    /// The stored event text.
    pub fn event_text(&self) -> &str {
        &self.event
    }

    /// Decodes the row; `None` when any part is not what we write (a sign of tampering).
    pub fn decode(&self) -> Option<SealedEvent> {
        Some(SealedEvent {
            seq: u64::try_from(self.seq).ok()?,
            prev_hash: ChainHash::from_hex(&self.prev_hash).ok()?,
            hash: ChainHash::from_hex(&self.hash).ok()?,
            event: serde_json::from_str::<AuditEvent>(&self.event).ok()?,
        })
    }
}

/// [`ChainHash::from_hex`] (64 hex digits, either case), without its per-digit overhead: two per row on the
/// verification path.
fn hash_hex(s: &str) -> Option<ChainHash> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(ChainHash(out))
}

/// The columns written for a batch of sealed events, one array per column (bound as PostgreSQL arrays and
/// inserted with `UNNEST`, one statement per batch whatever its size).
#[derive(Default)]
pub(crate) struct EventColumns {
    pub tenant: Vec<String>,
    pub seq: Vec<i64>,
    pub id: Vec<String>,
    pub at: Vec<String>,
    pub kind: Vec<&'static str>,
    pub event: Vec<String>,
    pub prev_hash: Vec<String>,
    pub hash: Vec<String>,
}

impl EventColumns {
    /// Adds a sealed event whose canonical encoding ([`AuditEvent::canonical_bytes`], the bytes its hash covers)
    /// is `canonical`; that is what the `event` column holds. Fails only if the sequence number does not fit
    /// PostgreSQL's `BIGINT` or the encoding is not UTF-8 (neither happens in practice).
    pub fn push(&mut self, s: &SealedEvent, canonical: Vec<u8>) -> Option<()> {
        let seq = i64::try_from(s.seq).ok()?;
        let event = String::from_utf8(canonical).ok()?;
        self.tenant.push(s.event.tenant.as_str().to_owned());
        self.seq.push(seq);
        self.id.push(s.event.id.hyphenated().to_string());
        self.at.push(canonical_time::format(&s.event.at));
        self.kind.push(s.event.kind.as_str());
        self.event.push(event);
        self.prev_hash.push(s.prev_hash.to_hex());
        self.hash.push(s.hash.to_hex());
        Some(())
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }
}

/// Domain separation for the checkpoint MAC.
const CHECKPOINT_MAC_CONTEXT: &[u8] = b"fctr-checkpoint-v1\0";

fn checkpoint_hmac(key: &SecretString, cp: &ChainCheckpoint, at: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()).ok()?;
    mac.update(CHECKPOINT_MAC_CONTEXT);
    mac.update(cp.tenant.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(&cp.seq.to_be_bytes());
    mac.update(&cp.hash.0);
    mac.update(at.as_bytes());
    Some(mac)
}

/// `HMAC-SHA256(key, "fctr-checkpoint-v1" 0x00 || tenant || 0x00 || seq (u64 BE) || hash (32 bytes) || at)`,
/// lowercase hex: the same MAC the SQLite store writes. `at` is the checkpoint time in canonical form.
pub(crate) fn checkpoint_mac(key: &SecretString, cp: &ChainCheckpoint, at: &str) -> Option<String> {
    checkpoint_hmac(key, cp, at).map(|m| hex::encode(m.finalize().into_bytes()))
}

/// Checks a stored checkpoint MAC in constant time.
pub(crate) fn checkpoint_mac_ok(
    key: &SecretString,
    cp: &ChainCheckpoint,
    at: &str,
    stored: Option<&str>,
) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    let Ok(tag) = hex::decode(stored) else {
        return false;
    };
    checkpoint_hmac(key, cp, at).is_some_and(|m| m.verify_slice(&tag).is_ok())
}

/// Parses a tenant column.
pub(crate) fn tenant(s: &str) -> Option<TenantId> {
    TenantId::parse(s).ok()
}

/// Canonical text of a time, as stored in `at` columns.
pub(crate) fn time_text(t: &DateTime<Utc>) -> String {
    canonical_time::format(t)
}

/// Whether `name` may be used as the store's schema: it is written into SQL and into the connection's
/// `search_path`, so only a plain lowercase identifier is accepted (a letter or `_`, then letters, digits and
/// `_`; at most 63 bytes, PostgreSQL's limit; no `pg_` prefix, which PostgreSQL reserves).
pub(crate) fn valid_schema(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !name.starts_with("pg_")
}

/// Maps a database error to a port error, logging the cause. The log carries PostgreSQL's SQLSTATE and the kind
/// of failure, never the message text (which can quote values), the SQL or the connection URL.
pub(crate) fn unavailable(what: &'static str, e: &sqlx::Error) -> PortError {
    let code = match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    };
    tracing::warn!(
        target: "fctr::postgres",
        operation = what,
        sqlstate = code.as_deref().unwrap_or("-"),
        kind = error_kind(e),
        "audit/usage store unavailable"
    );
    PortError::Unavailable
}

fn error_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Database(_) => "database",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::WorkerCrashed => "worker_crashed",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_hex_accepts_exactly_what_from_hex_accepts() {
        let h = ChainHash([0xa5; 32]).to_hex();
        for s in [
            h.clone(),
            h.to_uppercase(),
            "0123456789abcdefABCDEF".repeat(3)[..64].to_owned(),
            h[..62].to_owned(),
            format!("{h}00"),
            h.replacen('a', "g", 1),
            h.replacen('a', " ", 1),
            h.replacen("a5", "é", 1),
            String::new(),
        ] {
            assert_eq!(hash_hex(&s), ChainHash::from_hex(&s).ok(), "{s}");
        }
    }

    #[test]
    fn only_plain_lowercase_identifiers_are_schemas() {
        for ok in ["public", "fctr", "_x", "fctr_test_0a9f", &"a".repeat(63)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in [
            "",
            "Public",
            "9lives",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "pg_catalog",
            "ä",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
