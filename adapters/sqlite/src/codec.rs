//! Row encoding and decoding, the checkpoint MAC, and the mapping of SQL errors to port errors.

use chrono::{DateTime, Utc};
use fctr_ports::{
    AuditEvent, ChainCheckpoint, ChainHash, PortError, RawLink, SealedEvent, TenantId,
    canonical_time,
};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::borrow::Cow;

/// How every `event` text written before the column held the canonical form begins: serde_json writes
/// [`AuditEvent`]'s fields in declaration order, `id` first. A canonical encoding never begins so (`at` sorts
/// before `id` and is always present).
const LEGACY_PREFIX: &str = "{\"id\":";

/// An `audit_events` row as stored, before anything is trusted: `seq prev_hash hash event` packed into one text
/// by [`PACKED_ROW`] (one value per row is much cheaper to stream than four).
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    /// The sequence number, or -1 when the stored one is not an integer.
    pub seq: i64,
    text: String,
}

/// The select expression producing a packed row.
pub(crate) const PACKED_ROW: &str = "seq || ' ' || prev_hash || ' ' || hash || ' ' || event";

impl RawRow {
    /// Reads a packed row (first column).
    pub fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        let text: String = row.try_get(0)?;
        let seq = text
            .split_once(' ')
            .and_then(|(s, _)| s.parse::<i64>().ok())
            .unwrap_or(-1);
        Ok(Self { seq, text })
    }

    fn parts(&self) -> Option<(&str, &str, &str)> {
        let (_, rest) = self.text.split_once(' ')?;
        let (prev, rest) = rest.split_once(' ')?;
        let (hash, event) = rest.split_once(' ')?;
        Some((prev, hash, event))
    }

    /// The stored hash text, if the row has the expected shape.
    pub fn hash(&self) -> Option<ChainHash> {
        self.parts().and_then(|(_, h, _)| hash_hex(h))
    }

    /// The row as a chain link, without decoding the event: `None` when the chain fields are not what we write (a
    /// sign of tampering).
    ///
    /// `event` holds the canonical encoding, the very bytes the hash covers, and is hashed as stored. Rows written
    /// before that (see [`LEGACY_PREFIX`]) hold serde_json's encoding instead: such a row is decoded and
    /// re-encoded, but only when its text is exactly what serde_json writes for the event it decodes to, so an
    /// edit that decodes to the same event is still found ([`fctr_ports::BreakKind::Edited`]).
    pub fn link(&self) -> Option<RawLink<'_>> {
        let (prev, hash, event) = self.parts()?;
        let canonical = if event.starts_with(LEGACY_PREFIX) {
            legacy_canonical(event).map_or(Cow::Borrowed(event.as_bytes()), Cow::Owned)
        } else {
            Cow::Borrowed(event.as_bytes())
        };
        Some(RawLink {
            seq: u64::try_from(self.seq).ok()?,
            prev_hash: hash_hex(prev)?,
            hash: hash_hex(hash)?,
            canonical,
        })
    }

    /// The stored event text, if the row has the expected shape.
    pub fn event_text(&self) -> Option<&str> {
        self.parts().map(|(_, _, e)| e)
    }

    /// Decodes the row; `None` when any part is not what we write (a sign of tampering).
    pub fn decode(&self) -> Option<SealedEvent> {
        let (prev, hash, event) = self.parts()?;
        Some(SealedEvent {
            seq: u64::try_from(self.seq).ok()?,
            prev_hash: ChainHash::from_hex(prev).ok()?,
            hash: ChainHash::from_hex(hash).ok()?,
            event: serde_json::from_str::<AuditEvent>(event).ok()?,
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

/// The canonical encoding of a row written in the legacy layout, when its text is exactly serde_json's encoding of
/// the event it decodes to; `None` otherwise (then the text is hashed as it is, and does not verify).
fn legacy_canonical(text: &str) -> Option<Vec<u8>> {
    let event: AuditEvent = serde_json::from_str(text).ok()?;
    let again = serde_json::to_string(&event).ok()?;
    (again == text).then(|| event.canonical_bytes())
}

/// The columns written for one sealed event.
pub(crate) struct EventColumns {
    pub tenant: String,
    pub seq: i64,
    pub id: String,
    pub at: String,
    pub kind: &'static str,
    pub event: String,
    pub prev_hash: String,
    pub hash: String,
}

impl EventColumns {
    /// Encodes a sealed event whose canonical encoding ([`AuditEvent::canonical_bytes`], the bytes its hash covers)
    /// is `canonical`; that is what the `event` column holds. Fails only if the sequence number does not fit
    /// SQLite's integer or the encoding is not UTF-8 (neither happens in practice).
    pub fn encode(s: &SealedEvent, canonical: Vec<u8>) -> Option<Self> {
        Some(Self {
            tenant: s.event.tenant.as_str().to_owned(),
            seq: i64::try_from(s.seq).ok()?,
            id: s.event.id.hyphenated().to_string(),
            at: canonical_time::format(&s.event.at),
            kind: s.event.kind.as_str(),
            event: String::from_utf8(canonical).ok()?,
            prev_hash: s.prev_hash.to_hex(),
            hash: s.hash.to_hex(),
        })
    }
}

/// Domain separation for the checkpoint MAC.
const CHECKPOINT_MAC_CONTEXT: &[u8] = b"fctr-checkpoint-v1\0";

/// `HMAC-SHA256(key, "fctr-checkpoint-v1" 0x00 || tenant || 0x00 || seq (u64 BE) || hash (32 bytes) || at)`,
/// lowercase hex. `at` is the checkpoint time in canonical form.
pub(crate) fn checkpoint_mac(key: &SecretString, cp: &ChainCheckpoint, at: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()).ok()?;
    mac.update(CHECKPOINT_MAC_CONTEXT);
    mac.update(cp.tenant.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(&cp.seq.to_be_bytes());
    mac.update(&cp.hash.0);
    mac.update(at.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
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
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()) else {
        return false;
    };
    mac.update(CHECKPOINT_MAC_CONTEXT);
    mac.update(cp.tenant.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(&cp.seq.to_be_bytes());
    mac.update(&cp.hash.0);
    mac.update(at.as_bytes());
    mac.verify_slice(&tag).is_ok()
}

/// Parses a tenant column.
pub(crate) fn tenant(s: &str) -> Option<TenantId> {
    TenantId::parse(s).ok()
}

/// Canonical text of a time, as stored in `at` columns.
pub(crate) fn time_text(t: &DateTime<Utc>) -> String {
    canonical_time::format(t)
}

/// Maps a database error to a port error, logging the cause. The log carries SQLite's own message (schema names
/// and error codes, never bound values) and never the SQL text.
pub(crate) fn unavailable(what: &'static str, e: &sqlx::Error) -> PortError {
    let code = match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    };
    tracing::warn!(
        target: "fctr::sqlite",
        operation = what,
        sqlite_code = code.as_deref().unwrap_or("-"),
        kind = error_kind(e),
        "audit/usage store unavailable"
    );
    PortError::Unavailable
}

fn error_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Database(_) => "database",
        sqlx::Error::Io(_) => "io",
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
}
