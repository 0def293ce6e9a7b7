//! The chain: its hash, the sealed (stored) form of an event, anchors, checkpoints, and verification.

use super::*;

/// A SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev_hash` of the first event of a chain.
    pub const GENESIS: ChainHash = ChainHash([0u8; 32]);

    /// Lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lowercase or uppercase hex.
    ///
    /// # Errors
    /// [`crate::IdError::BadCharacter`] when not 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, crate::IdError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| crate::IdError::BadCharacter { what: "chain hash" })?;
        Ok(Self(out))
    }

    /// The hash of an event at `seq` following `prev`.
    #[must_use]
    pub fn compute(prev: &ChainHash, seq: u64, event: &AuditEvent) -> ChainHash {
        Self::compute_canonical(prev, seq, &event.canonical_bytes())
    }

    /// As [`ChainHash::compute`], over bytes already in canonical form.
    #[must_use]
    pub fn compute_canonical(prev: &ChainHash, seq: u64, canonical: &[u8]) -> ChainHash {
        let mut h = Sha256::new();
        h.update(b"fctr-audit-v1\0");
        h.update(prev.0);
        h.update(seq.to_be_bytes());
        h.update(canonical);
        ChainHash(h.finalize().into())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}
impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl Serialize for ChainHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}
impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// An event as stored: its position in its tenant's chain and the two hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEvent {
    /// Position in the tenant's chain, from 0.
    pub seq: u64,
    /// Hash of the previous event (or genesis, or the purge anchor's hash).
    pub prev_hash: ChainHash,
    /// This event's hash.
    pub hash: ChainHash,
    /// The event.
    pub event: AuditEvent,
}

impl SealedEvent {
    /// Seals `event` at `seq` after `prev`.
    #[must_use]
    pub fn seal(prev: ChainHash, seq: u64, event: AuditEvent) -> Self {
        let hash = ChainHash::compute(&prev, seq, &event);
        Self {
            seq,
            prev_hash: prev,
            hash,
            event,
        }
    }
}

/// Where a retained chain starts after a purge: the first kept `seq` and the hash it must link to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainAnchor {
    /// The tenant.
    pub tenant: TenantId,
    /// The first retained sequence number.
    pub seq: u64,
    /// The `prev_hash` that event must carry (hash of the last purged event).
    pub prev_hash: ChainHash,
}

/// A recorded chain head: the log must still reach at least this far with this hash (detects truncation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheckpoint {
    /// The tenant.
    pub tenant: TenantId,
    /// The head's sequence number.
    pub seq: u64,
    /// The head's hash.
    pub hash: ChainHash,
}

/// What kind of damage a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakKind {
    /// An event's content no longer matches its hash (edited).
    Edited,
    /// An event does not link to the one before it (deleted or reordered).
    Unlinked,
    /// A sequence number is missing or out of order (deleted or reordered).
    SequenceGap,
    /// The chain ends before a recorded checkpoint, or differs from it (truncated or rewritten tail).
    Truncated,
}

impl BreakKind {
    /// Words for a report.
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Edited => "event content does not match its hash (edited)",
            Self::Unlinked => "event does not link to the previous one (deleted or reordered)",
            Self::SequenceGap => "sequence number missing or out of order (deleted or reordered)",
            Self::Truncated => "chain ends before its last checkpoint (truncated)",
        }
    }
}

/// The first broken link found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("audit chain of tenant {tenant} broken at position {position}: {}", .kind.describe())]
pub struct ChainBreak {
    /// The tenant whose chain is broken.
    pub tenant: TenantId,
    /// The sequence number where the break was found.
    pub position: u64,
    /// What was found.
    pub kind: BreakKind,
}

/// What a clean verification saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    /// Events checked.
    pub events: u64,
    /// Sequence number and hash of the last event, per tenant.
    pub heads: Vec<ChainCheckpoint>,
}

/// One link of a tenant's chain as a store holds it: the chain fields and the event's canonical encoding, not
/// decoded. The input of [`verify_tenant_chain_raw`].
///
/// There is deliberately no tenant field: the tenant a link belongs to is read from `canonical` itself (the bytes
/// the hash covers, where it is the last key), never from a claim beside it that nothing authenticates, such as a
/// store's tenant column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLink<'a> {
    /// Position in the tenant's chain, as stored.
    pub seq: u64,
    /// The stored hash of the previous event.
    pub prev_hash: ChainHash,
    /// The stored hash of this event.
    pub hash: ChainHash,
    /// The event exactly as hashed: [`AuditEvent::canonical_bytes`] when the store is intact. Borrowed from a stored
    /// row, or owned when a store had to re-encode (e.g. rows of an older layout).
    pub canonical: Cow<'a, [u8]>,
}

impl RawLink<'_> {
    /// The link of a sealed event (its canonical encoding computed).
    #[must_use]
    pub fn of(sealed: &SealedEvent) -> RawLink<'static> {
        RawLink {
            seq: sealed.seq,
            prev_hash: sealed.prev_hash,
            hash: sealed.hash,
            canonical: Cow::Owned(sealed.event.canonical_bytes()),
        }
    }
}

/// The tenant a canonical encoding names, as the content of the JSON string it ends with.
///
/// `tenant` is the last key in canonical (bytewise) order and never the first (`at`, `id`, `kind` and `outcome` are
/// always present), so [`AuditEvent::canonical_bytes`] always ends with `,"tenant":"<tenant>"}`, and tenant ids
/// hold no quote. `None` when the bytes do not end that way: then they name no tenant and are not an encoding any
/// writer hashed, which the content check reports ([`BreakKind::Edited`]).
pub(super) fn tenant_claim(canonical: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b",\"tenant\":\"";
    let body = canonical.strip_suffix(b"\"}")?;
    // The value runs from the last quote: a JSON string holds no unescaped quote, and a tenant id no quote at all.
    let q = body.iter().rposition(|&b| b == b'"')?;
    let (head, value) = body.split_at(q + 1);
    head.ends_with(KEY).then_some(value)
}

/// The content of `tenant` as a JSON string (without the quotes), as [`AuditEvent::canonical_bytes`] writes it.
pub(super) fn tenant_json(tenant: &TenantId) -> Vec<u8> {
    let mut out = Vec::with_capacity(tenant.as_str().len() + 2);
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, tenant.as_str());
    out.get(1..out.len().saturating_sub(1))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Verifies one tenant's chain, given its events in stored order.
///
/// `anchor` is where the retained chain starts after purges (`None`: it must start at seq 0 from genesis).
/// `checkpoint` is the latest recorded head, if any: the chain must contain it.
///
/// This is [`verify_tenant_chain_raw`] over each event's [`AuditEvent::canonical_bytes`].
///
/// # Errors
/// The first [`ChainBreak`], with its position.
pub fn verify_tenant_chain<'a>(
    tenant: &TenantId,
    events: impl IntoIterator<Item = &'a SealedEvent>,
    anchor: Option<&ChainAnchor>,
    checkpoint: Option<&ChainCheckpoint>,
) -> Result<Option<ChainCheckpoint>, ChainBreak> {
    verify_tenant_chain_raw(
        tenant,
        events.into_iter().map(RawLink::of),
        anchor,
        checkpoint,
    )
}

/// Verifies one tenant's chain from stored canonical encodings, without decoding them: each hash is recomputed over
/// `canonical` exactly as given ([`ChainHash::compute_canonical`]), so any change to those bytes, even one that
/// would decode to the same event, is [`BreakKind::Edited`].
///
/// Same arguments, checks and order as [`verify_tenant_chain`], which calls this: for links whose `canonical` is
/// [`AuditEvent::canonical_bytes`] of an event, both report the same break at the same position. Per link, in
/// order: the `seq`, and the tenant named at the end of `canonical` (see [`RawLink`]) ([`BreakKind::SequenceGap`]);
/// the link to the previous hash ([`BreakKind::Unlinked`]); the content ([`BreakKind::Edited`]; bytes that do not
/// end as a canonical encoding name no tenant and are caught here); the checkpoint ([`BreakKind::Truncated`]).
///
/// # Errors
/// The first [`ChainBreak`], with its position.
pub fn verify_tenant_chain_raw<'a>(
    tenant: &TenantId,
    links: impl IntoIterator<Item = RawLink<'a>>,
    anchor: Option<&ChainAnchor>,
    checkpoint: Option<&ChainCheckpoint>,
) -> Result<Option<ChainCheckpoint>, ChainBreak> {
    let brk = |position, kind| ChainBreak {
        tenant: tenant.clone(),
        position,
        kind,
    };
    let own = tenant_json(tenant);
    let (mut expect_seq, mut prev) =
        anchor.map_or((0, ChainHash::GENESIS), |a| (a.seq, a.prev_hash));
    let mut head: Option<ChainCheckpoint> = None;
    let mut checkpoint_seen = false;
    for link in links {
        let foreign = tenant_claim(&link.canonical).is_some_and(|t| t != own.as_slice());
        if link.seq != expect_seq || foreign {
            return Err(brk(expect_seq, BreakKind::SequenceGap));
        }
        if link.prev_hash != prev {
            return Err(brk(link.seq, BreakKind::Unlinked));
        }
        if ChainHash::compute_canonical(&prev, link.seq, &link.canonical) != link.hash {
            return Err(brk(link.seq, BreakKind::Edited));
        }
        if let Some(cp) = checkpoint {
            if cp.seq == link.seq {
                if cp.hash != link.hash {
                    return Err(brk(link.seq, BreakKind::Truncated));
                }
                checkpoint_seen = true;
            }
        }
        prev = link.hash;
        head = Some(ChainCheckpoint {
            tenant: tenant.clone(),
            seq: link.seq,
            hash: link.hash,
        });
        expect_seq += 1;
    }
    if let Some(cp) = checkpoint {
        // A checkpoint older than the anchor was purged away legitimately.
        let purged = anchor.is_some_and(|a| cp.seq < a.seq);
        if !checkpoint_seen && !purged {
            return Err(brk(expect_seq, BreakKind::Truncated));
        }
    }
    Ok(head)
}
