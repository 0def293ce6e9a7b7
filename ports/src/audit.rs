//! The audit record, its canonical encoding and the chain hash.
//!
//! Every store (memory, SQLite, PostgreSQL) and every outside verifier computes these identically, so they live
//! here, beside the port, rather than in the engine.
//!
//! # Chain
//! Events form one chain per tenant. Event `seq` (0, 1, 2, …) stores `prev_hash` (the hash of event `seq - 1`,
//! or [`ChainHash::GENESIS`] for the first event) and its own `hash`:
//!
//! ```text
//! hash = SHA-256( "fctr-audit-v1" 0x00 || prev_hash (32 bytes) || seq (u64, big-endian) || canonical(event) )
//! ```
//!
//! `canonical(event)` is the event as JSON with object keys sorted by their UTF-8 bytes, no insignificant
//! whitespace, absent optional fields omitted, and times written as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.

use crate::action::ActionKind;
use crate::directory::FactorKind;
use crate::ids::{RequestId, TenantId};
use crate::pseudo::PseudoId;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;
use uuid::Uuid;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// An agent signed in.
    Login,
    /// An agent signed out.
    Logout,
    /// An agent looked a caller up.
    Lookup,
    /// A challenge was sent to the caller's authenticator.
    ChallengeStarted,
    /// A challenge resolved (approved, rejected, timed out, failed).
    ChallengeResult,
    /// A one-time code the caller read out was checked.
    CodeSubmitted,
    /// A verification grant was issued.
    GrantIssued,
    /// An action is about to run (written, durably, before it runs).
    ActionIntent,
    /// An action ran (or failed) after its intent was written.
    ActionOutcome,
    /// A request was refused.
    Denied,
    /// A policy was loaded.
    PolicyLoaded,
    /// Old audit events or usage records were purged by retention.
    Purge,
    /// The head of the chain was recorded (checkpoint), so truncation is detectable.
    Checkpoint,
}

impl EventKind {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::Lookup => "lookup",
            Self::ChallengeStarted => "challenge_started",
            Self::ChallengeResult => "challenge_result",
            Self::CodeSubmitted => "code_submitted",
            Self::GrantIssued => "grant_issued",
            Self::ActionIntent => "action_intent",
            Self::ActionOutcome => "action_outcome",
            Self::Denied => "denied",
            Self::PolicyLoaded => "policy_loaded",
            Self::Purge => "purge",
            Self::Checkpoint => "checkpoint",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Succeeded, or a state change worth recording (e.g. intent).
    Success,
    /// Still pending (challenge sent).
    Pending,
    /// Refused by fctr (policy, role, grant, rate limit).
    Denied,
    /// The caller or IdP said no (rejected push, wrong code).
    Rejected,
    /// Something failed (IdP error, timeout).
    Failed,
}

impl Outcome {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Denied => "denied",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// Why something was denied, rejected or failed: the machine-readable reason every refusal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The agent has no role in policy.
    NoRole,
    /// The agent's role does not permit this.
    NotPermittedForRole,
    /// The target is in a protected group.
    ProtectedTarget,
    /// No live grant exists for this agent and caller.
    NoLiveGrant,
    /// The grant belongs to another agent.
    GrantOtherAgent,
    /// The grant is for another caller.
    GrantOtherSubject,
    /// The grant expired.
    GrantExpired,
    /// The single-use grant was already used.
    GrantUsed,
    /// The grant does not cover this action.
    GrantDoesNotCoverAction,
    /// Policy does not accept this factor kind for this target.
    FactorNotAccepted,
    /// The factor is not an active factor of this caller.
    FactorNotEnrolled,
    /// The caller has a stronger factor enrolled; policy refuses the weaker one.
    DowngradeRefused,
    /// A rate limit was hit.
    RateLimited,
    /// Too many wrong codes: verification of this caller is locked for a while.
    VerificationLocked,
    /// The verification does not exist or belongs to someone else.
    VerificationNotFound,
    /// The verification window closed.
    VerificationExpired,
    /// The verification is not in a state that allows this step.
    InvalidState,
    /// The caller denied the push (or picked the wrong number).
    ChallengeRejected,
    /// The caller did not answer in time.
    ChallengeTimedOut,
    /// The code was wrong.
    WrongCode,
    /// The code was already used.
    CodeReplayed,
    /// The IdP failed or refused.
    IdpError,
    /// The IdP cannot do this.
    Unsupported,
    /// The caller was not found.
    TargetNotFound,
    /// The audit log could not be written, so nothing ran.
    AuditUnavailable,
    /// The request was malformed.
    InvalidInput,
    /// The client address is not on the allow-list.
    IpNotAllowed,
    /// The request failed a CSRF check.
    CsrfRejected,
    /// Sign-in failed.
    AuthenticationFailed,
}

impl Reason {
    /// Stable machine name.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoRole => "no_role",
            Self::NotPermittedForRole => "not_permitted_for_role",
            Self::ProtectedTarget => "protected_target",
            Self::NoLiveGrant => "no_live_grant",
            Self::GrantOtherAgent => "grant_other_agent",
            Self::GrantOtherSubject => "grant_other_subject",
            Self::GrantExpired => "grant_expired",
            Self::GrantUsed => "grant_used",
            Self::GrantDoesNotCoverAction => "grant_does_not_cover_action",
            Self::FactorNotAccepted => "factor_not_accepted",
            Self::FactorNotEnrolled => "factor_not_enrolled",
            Self::DowngradeRefused => "downgrade_refused",
            Self::RateLimited => "rate_limited",
            Self::VerificationLocked => "verification_locked",
            Self::VerificationNotFound => "verification_not_found",
            Self::VerificationExpired => "verification_expired",
            Self::InvalidState => "invalid_state",
            Self::ChallengeRejected => "challenge_rejected",
            Self::ChallengeTimedOut => "challenge_timed_out",
            Self::WrongCode => "wrong_code",
            Self::CodeReplayed => "code_replayed",
            Self::IdpError => "idp_error",
            Self::Unsupported => "unsupported",
            Self::TargetNotFound => "target_not_found",
            Self::AuditUnavailable => "audit_unavailable",
            Self::InvalidInput => "invalid_input",
            Self::IpNotAllowed => "ip_not_allowed",
            Self::CsrfRejected => "csrf_rejected",
            Self::AuthenticationFailed => "authentication_failed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client address truncated to its network (/24 for IPv4, /48 for IPv6), as the data rules require.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TruncatedIp(String);

impl TruncatedIp {
    /// Truncates an address.
    #[must_use]
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Self(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
            }
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return Self::from_ip(IpAddr::V4(v4));
                }
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                Self(format!("{net}/48"))
            }
        }
    }

    /// The text form, e.g. `203.0.113.0/24`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TruncatedIp {
    type Error = crate::IdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let (ip, len) = s.split_once('/').ok_or(crate::IdError::BadCharacter {
            what: "truncated ip",
        })?;
        let ip: IpAddr = ip.parse().map_err(|_| crate::IdError::BadCharacter {
            what: "truncated ip",
        })?;
        let t = Self::from_ip(ip);
        if t.0 == s && (len == "24" || len == "48") {
            Ok(t)
        } else {
            Err(crate::IdError::BadCharacter {
                what: "truncated ip",
            })
        }
    }
}
impl From<TruncatedIp> for String {
    fn from(t: TruncatedIp) -> String {
        t.0
    }
}

/// Structured detail for some event kinds. Numbers and codes only: no free text, so no personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum AuditDetail {
    /// A retention purge.
    Purge {
        /// Which store: `audit` or `usage`.
        store: String,
        /// How many records were removed.
        removed: u64,
        /// Everything strictly before this time was removed.
        #[serde(with = "canonical_time")]
        before: DateTime<Utc>,
    },
    /// A policy was loaded.
    Policy {
        /// Hex SHA-256 of the policy file.
        digest: String,
    },
    /// A rate limit was hit.
    RateLimit {
        /// Which limit (e.g. `challenges_per_target`).
        rule: String,
        /// Seconds until retry.
        retry_after_secs: u64,
    },
    /// The chain head at a checkpoint.
    Checkpoint {
        /// Sequence number of the head.
        seq: u64,
        /// Hash of the head.
        hash: ChainHash,
    },
    /// An IdP error, by code.
    Upstream {
        /// The port error code (`timeout`, `upstream`, …).
        code: String,
        /// HTTP status where there was one.
        status: Option<u16>,
    },
    /// How many factors a verification has and needs.
    Factors {
        /// Approved so far.
        approved: u8,
        /// Required by policy.
        required: u8,
    },
}

/// One audit event. Every identifier of a person is a [`PseudoId`]; the type has no field that could hold a raw
/// identifier, name, login or secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id (UUID v7, time-ordered).
    pub id: Uuid,
    /// When it happened (microsecond precision, UTC).
    #[serde(with = "canonical_time")]
    pub at: DateTime<Utc>,
    /// Which tenant's chain it belongs to.
    pub tenant: TenantId,
    /// What happened.
    pub kind: EventKind,
    /// How it ended.
    pub outcome: Outcome,
    /// The agent, pseudonymized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<PseudoId>,
    /// The caller, pseudonymized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PseudoId>,
    /// The factor kind involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<FactorKind>,
    /// The action involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionKind>,
    /// Why, for anything but plain success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The request that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// The client's network, truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<TruncatedIp>,
    /// Structured detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<AuditDetail>,
}

impl AuditEvent {
    /// A new event with a fresh v7 id; `at` is cut to microseconds so every store keeps it exactly.
    #[must_use]
    pub fn new(tenant: TenantId, at: DateTime<Utc>, kind: EventKind, outcome: Outcome) -> Self {
        let at = at.trunc_subsecs(6);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            u64::try_from(at.timestamp()).unwrap_or(0),
            at.timestamp_subsec_nanos(),
        );
        Self {
            id: Uuid::new_v7(ts),
            at,
            tenant,
            kind,
            outcome,
            agent: None,
            target: None,
            factor: None,
            action: None,
            reason: None,
            request_id: None,
            client_ip: None,
            detail: None,
        }
    }

    /// The canonical encoding the chain hash covers (see the module docs).
    ///
    /// Written field by field in sorted key order (this is on the hot path of every append and every chain
    /// verification); [`AuditEvent::canonical_bytes_generic`] is the reference it must equal byte for byte.
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
            if !*first {
                out.push(b',');
            }
            *first = false;
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        }
        fn string(out: &mut Vec<u8>, s: &str) {
            // Writing a &str to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, s);
        }
        let mut out = Vec::with_capacity(320);
        let mut first = true;
        out.push(b'{');
        // Keys in bytewise order: action, agent, at, client_ip, detail, factor, id, kind, outcome, reason,
        // request_id, target, tenant.
        if let Some(a) = &self.action {
            key(&mut out, &mut first, "action");
            string(&mut out, a.as_str());
        }
        if let Some(a) = &self.agent {
            key(&mut out, &mut first, "agent");
            string(&mut out, a.as_str());
        }
        key(&mut out, &mut first, "at");
        string(&mut out, &canonical_time::format(&self.at));
        if let Some(ip) = &self.client_ip {
            key(&mut out, &mut first, "client_ip");
            string(&mut out, ip.as_str());
        }
        if let Some(d) = &self.detail {
            key(&mut out, &mut first, "detail");
            let value = serde_json::to_value(d).unwrap_or(serde_json::Value::Null);
            write_canonical(&value, &mut out);
        }
        if let Some(f) = &self.factor {
            key(&mut out, &mut first, "factor");
            string(&mut out, f.as_str());
        }
        key(&mut out, &mut first, "id");
        let mut buf = uuid::Uuid::encode_buffer();
        string(&mut out, self.id.hyphenated().encode_lower(&mut buf));
        key(&mut out, &mut first, "kind");
        string(&mut out, self.kind.as_str());
        key(&mut out, &mut first, "outcome");
        string(&mut out, self.outcome.as_str());
        if let Some(r) = &self.reason {
            key(&mut out, &mut first, "reason");
            string(&mut out, r.as_str());
        }
        if let Some(r) = &self.request_id {
            key(&mut out, &mut first, "request_id");
            string(&mut out, r.as_str());
        }
        if let Some(t) = &self.target {
            key(&mut out, &mut first, "target");
            string(&mut out, t.as_str());
        }
        key(&mut out, &mut first, "tenant");
        string(&mut out, self.tenant.as_str());
        out.push(b'}');
        out
    }

    /// The canonical encoding computed the generic way (serialize, then sort keys). The reference for
    /// [`AuditEvent::canonical_bytes`]; slower.
    #[must_use]
    pub fn canonical_bytes_generic(&self) -> Vec<u8> {
        // Serialising a derived struct cannot fail; fall back to null rather than panic.
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let mut out = Vec::with_capacity(256);
        write_canonical(&value, &mut out);
        out
    }
}

/// Writes JSON with object keys sorted bytewise, whatever serde_json's map type is in this build.
fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String((*k).clone()), out);
                out.push(b':');
                if let Some(child) = map.get(*k) {
                    write_canonical(child, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// Serde for times in the one canonical form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub mod canonical_time {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

    /// Formats a time canonically.
    #[must_use]
    pub fn format(t: &DateTime<Utc>) -> String {
        t.format(FORMAT).to_string()
    }

    /// Serializes.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Deserializes; only the canonical form is accepted.
    ///
    /// # Errors
    /// When the text is not in the canonical form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDateTime::parse_from_str(&s, FORMAT)
            .map(|n| n.and_utc())
            .map_err(|_| serde::de::Error::custom("time not in canonical form"))
    }
}

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

/// Verifies one tenant's chain, given its events in stored order.
///
/// `anchor` is where the retained chain starts after purges (`None`: it must start at seq 0 from genesis).
/// `checkpoint` is the latest recorded head, if any: the chain must contain it.
///
/// # Errors
/// The first [`ChainBreak`], with its position.
pub fn verify_tenant_chain<'a>(
    tenant: &TenantId,
    events: impl IntoIterator<Item = &'a SealedEvent>,
    anchor: Option<&ChainAnchor>,
    checkpoint: Option<&ChainCheckpoint>,
) -> Result<Option<ChainCheckpoint>, ChainBreak> {
    let brk = |position, kind| ChainBreak {
        tenant: tenant.clone(),
        position,
        kind,
    };
    let (mut expect_seq, mut prev) =
        anchor.map_or((0, ChainHash::GENESIS), |a| (a.seq, a.prev_hash));
    let mut head: Option<ChainCheckpoint> = None;
    let mut checkpoint_seen = false;
    for ev in events {
        if ev.seq != expect_seq || &ev.event.tenant != tenant {
            return Err(brk(expect_seq, BreakKind::SequenceGap));
        }
        if ev.prev_hash != prev {
            return Err(brk(ev.seq, BreakKind::Unlinked));
        }
        if ChainHash::compute(&prev, ev.seq, &ev.event) != ev.hash {
            return Err(brk(ev.seq, BreakKind::Edited));
        }
        if let Some(cp) = checkpoint {
            if cp.seq == ev.seq {
                if cp.hash != ev.hash {
                    return Err(brk(ev.seq, BreakKind::Truncated));
                }
                checkpoint_seen = true;
            }
        }
        prev = ev.hash;
        head = Some(ChainCheckpoint {
            tenant: tenant.clone(),
            seq: ev.seq,
            hash: ev.hash,
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

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this tenant (all tenants when `None`).
    pub tenant: Option<TenantId>,
    /// At or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<EventKind>,
    /// Only events about this caller or by this agent.
    pub pseudonym: Option<PseudoId>,
    /// At most this many events, oldest first (all when `None`).
    pub limit: Option<usize>,
}

impl AuditQuery {
    /// Whether an event matches the filters (time, tenant, kinds, pseudonym; not the limit).
    #[must_use]
    pub fn matches(&self, e: &AuditEvent) -> bool {
        self.tenant.as_ref().is_none_or(|t| t == &e.tenant)
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at < u)
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self
                .pseudonym
                .as_ref()
                .is_none_or(|p| e.agent.as_ref() == Some(p) || e.target.as_ref() == Some(p))
    }
}

/// What a purge removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// Records removed.
    pub removed: u64,
    /// New chain anchors (audit only), one per tenant whose chain start moved.
    pub anchors: Vec<ChainAnchor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn ev(i: u32) -> AuditEvent {
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
            + chrono::Duration::seconds(i.into());
        let mut e = AuditEvent::new(tenant(), at, EventKind::Lookup, Outcome::Success);
        e.reason = Some(Reason::NoLiveGrant);
        e
    }

    fn chain(n: u32) -> Vec<SealedEvent> {
        let mut prev = ChainHash::GENESIS;
        (0..n)
            .map(|i| {
                let s = SealedEvent::seal(prev, u64::from(i), ev(i));
                prev = s.hash;
                s
            })
            .collect()
    }

    #[test]
    fn canonical_is_sorted_and_stable() {
        let e = ev(0);
        let s = String::from_utf8(e.canonical_bytes()).unwrap();
        assert!(
            s.starts_with("{\"at\":\"2026-11-01T12:00:00.000000Z\",\"id\":"),
            "{s}"
        );
        assert!(!s.contains("agent"), "absent options are omitted: {s}");
        let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back.canonical_bytes(), e.canonical_bytes());
    }

    fn arb_event() -> impl proptest::strategy::Strategy<Value = AuditEvent> {
        use proptest::prelude::*;
        let kinds = [EventKind::Lookup, EventKind::ActionIntent, EventKind::Denied, EventKind::Purge];
        let outcomes = [Outcome::Success, Outcome::Pending, Outcome::Denied, Outcome::Rejected, Outcome::Failed];
        (
            0usize..4,
            0usize..5,
            any::<bool>(),
            any::<bool>(),
            proptest::option::of("[a-z0-9_:.-]{1,20}"),
            proptest::option::of("[ -~]{1,40}"),
            any::<u32>(),
            0u8..5,
        )
            .prop_map(move |(k, o, agent, action, factor, req, secs, detail)| {
                let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::microseconds(i64::from(secs) * 7919);
                let mut e = AuditEvent::new(tenant(), at, kinds[k], outcomes[o]);
                if agent {
                    e.agent = Some(PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap());
                    e.target = Some(PseudoId::parse("k2:BBBBBBBBBBBBBBBBBBBBBA").unwrap());
                    e.client_ip = Some(TruncatedIp::from_ip("10.1.2.3".parse().unwrap()));
                    e.reason = Some(Reason::GrantUsed);
                }
                if action {
                    e.action = Some(ActionKind::IssueTemporaryAccessPass);
                }
                e.factor = factor.and_then(|f| FactorKind::parse(&f).ok());
                e.request_id = req.and_then(|r| RequestId::parse(r).ok());
                e.detail = match detail {
                    0 => None,
                    1 => Some(AuditDetail::Purge { store: "audit\"q".into(), removed: 3, before: at }),
                    2 => Some(AuditDetail::Upstream { code: "timeout".into(), status: None }),
                    3 => Some(AuditDetail::Checkpoint { seq: 9, hash: ChainHash([7; 32]) }),
                    _ => Some(AuditDetail::Factors { approved: 1, required: 2 }),
                };
                e
            })
    }

    proptest::proptest! {
        #[test]
        fn fast_canonical_equals_the_generic_reference(e in arb_event()) {
            proptest::prop_assert_eq!(
                String::from_utf8(e.canonical_bytes()).unwrap(),
                String::from_utf8(e.canonical_bytes_generic()).unwrap()
            );
        }
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let head = verify_tenant_chain(&tenant(), &c, None, None)
            .unwrap()
            .unwrap();
        assert_eq!(head.seq, 4);
        let cp = ChainCheckpoint {
            tenant: tenant(),
            seq: 3,
            hash: c[3].hash,
        };
        assert!(verify_tenant_chain(&tenant(), &c, None, Some(&cp)).is_ok());
    }

    #[test]
    fn each_kind_of_tampering_is_found_at_its_position() {
        let mut edited = chain(5);
        edited[2].event.outcome = Outcome::Denied;
        let b = verify_tenant_chain(&tenant(), &edited, None, None).unwrap_err();
        assert_eq!((b.position, b.kind), (2, BreakKind::Edited));

        let mut deleted = chain(5);
        deleted.remove(2);
        let b = verify_tenant_chain(&tenant(), &deleted, None, None).unwrap_err();
        assert_eq!((b.position, b.kind), (2, BreakKind::SequenceGap));

        // Deleted and renumbered: the link breaks.
        let mut renumbered = chain(5);
        renumbered.remove(2);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as u64;
        }
        let b = verify_tenant_chain(&tenant(), &renumbered, None, None).unwrap_err();
        assert_eq!((b.position, b.kind), (2, BreakKind::Unlinked));

        let mut swapped = chain(5);
        swapped.swap(1, 3);
        let b = verify_tenant_chain(&tenant(), &swapped, None, None).unwrap_err();
        assert_eq!((b.position, b.kind), (1, BreakKind::SequenceGap));

        let c = chain(5);
        let cp = ChainCheckpoint {
            tenant: tenant(),
            seq: 4,
            hash: c[4].hash,
        };
        let b = verify_tenant_chain(&tenant(), &c[..3], None, Some(&cp)).unwrap_err();
        assert_eq!((b.position, b.kind), (3, BreakKind::Truncated));
    }

    #[test]
    fn anchored_chain_verifies_after_purge() {
        let c = chain(6);
        let anchor = ChainAnchor {
            tenant: tenant(),
            seq: 3,
            prev_hash: c[2].hash,
        };
        assert!(verify_tenant_chain(&tenant(), &c[3..], Some(&anchor), None).is_ok());
        assert!(verify_tenant_chain(&tenant(), &c[4..], Some(&anchor), None).is_err());
    }

    #[test]
    fn ip_truncation() {
        assert_eq!(
            TruncatedIp::from_ip("203.0.113.77".parse().unwrap()).as_str(),
            "203.0.113.0/24"
        );
        assert_eq!(
            TruncatedIp::from_ip("2001:db8:abcd:12::1".parse().unwrap()).as_str(),
            "2001:db8:abcd::/48"
        );
        assert_eq!(
            TruncatedIp::from_ip("::ffff:10.1.2.3".parse().unwrap()).as_str(),
            "10.1.2.0/24"
        );
        assert!(TruncatedIp::try_from("10.1.2.3/24".to_owned()).is_err());
        assert!(TruncatedIp::try_from("10.1.2.0/24".to_owned()).is_ok());
    }
}
