//! The audit event and its canonical encoding (the bytes the chain hash covers).

use super::*;

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
    /// An alert: which rule, and the alert's id (the same id the webhook receives).
    Alert {
        /// The rule's machine name (e.g. `not_me`).
        rule: String,
        /// The alert's id.
        alert_id: Uuid,
    },
    /// A four-eyes approval request: its id, and (on a decision) the agent who requested it.
    Approval {
        /// The approval request's id.
        approval_id: Uuid,
        /// The requesting agent, pseudonymized (on `approval_decided`; the event's agent is the approver).
        requested_by: Option<PseudoId>,
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
    /// The helpdesk ticket the agent named for this request (a reference of a narrow shape that holds no personal
    /// data, see [`TicketRef`]). Encoded as `helpdesk_ticket`: `tenant` stays the last key of the canonical form.
    #[serde(
        default,
        rename = "helpdesk_ticket",
        skip_serializing_if = "Option::is_none"
    )]
    pub ticket: Option<TicketRef>,
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
            ticket: None,
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
        // Keys in bytewise order: action, agent, at, client_ip, detail, factor, helpdesk_ticket, id, kind, outcome,
        // reason, request_id, target, tenant.
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
        if let Some(t) = &self.ticket {
            key(&mut out, &mut first, "helpdesk_ticket");
            string(&mut out, t.as_str());
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
pub(super) fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
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
