//! The SIEM export: one JSON object per line, verifiable by a receiver with nothing but SHA-256, and byte for byte
//! what the SQLite store exports for the same events.

use crate::common::*;
use fctr_ports::{
    AuditDetail, AuditEvent, AuditLog, AuditQuery, EventKind, SealedEvent, TruncatedIp, UsageKind,
    UsageLedger, UsageRecord, verify_tenant_chain,
};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use sha2::{Digest, Sha256};

/// Canonical JSON as docs/audit.md describes it, written independently of fctr-ports.
pub fn canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[tokio::test]
async fn exported_lines_carry_stable_fields_and_verify_outside() {
    let db = Db::new();
    let store = db.store().await;
    let mut e = event("acme", 0, EventKind::ActionIntent);
    e.client_ip = Some(TruncatedIp::from_ip("203.0.113.77".parse().unwrap()));
    store.append(e).await.unwrap();
    append_n(&store, "acme", 1, 4).await;
    append_n(&store, "globex", 0, 3).await;

    let mut out: Vec<u8> = Vec::new();
    let n = store
        .export_jsonl(&AuditQuery::default(), &mut out)
        .await
        .unwrap();
    assert_eq!(n, 8);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);

    // A receiver: per tenant, in seq order, recompute each hash from the line alone.
    let mut prev: std::collections::HashMap<String, String> = Default::default();
    for line in &lines {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        for field in [
            "id",
            "at",
            "tenant",
            "kind",
            "outcome",
            "seq",
            "prev_hash",
            "hash",
        ] {
            assert!(obj.contains_key(field), "{field} in {line}");
        }
        let seq = obj.remove("seq").unwrap().as_u64().unwrap();
        let prev_hash = obj
            .remove("prev_hash")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        let hash = obj.remove("hash").unwrap().as_str().unwrap().to_owned();
        let tenant = obj["tenant"].as_str().unwrap().to_owned();
        let expect_prev = prev.get(&tenant).cloned().unwrap_or_else(|| "0".repeat(64));
        assert_eq!(prev_hash, expect_prev, "links");
        let mut c = String::new();
        canonical(&v, &mut c);
        let mut h = Sha256::new();
        h.update(b"fctr-audit-v1\0");
        h.update(hex::decode(&prev_hash).unwrap());
        h.update(seq.to_be_bytes());
        h.update(c.as_bytes());
        assert_eq!(hex::encode(h.finalize()), hash, "hash of {line}");
        prev.insert(tenant, hash);
    }
    assert!(lines[0].contains("\"client_ip\":\"203.0.113.0/24\""));

    // Filters and limit apply.
    let q = AuditQuery {
        tenant: Some(tenant("globex")),
        limit: Some(2),
        ..AuditQuery::default()
    };
    let mut out: Vec<u8> = Vec::new();
    assert_eq!(store.export_jsonl(&q, &mut out).await.unwrap(), 2);
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().all(|l| l.contains("\"tenant\":\"globex\"")));
    assert!(text.lines().next().unwrap().contains("\"seq\":0"));
}

/// A mixed bag of events: every optional field, structured details, several tenants, a vendor's own factor name.
fn varied_events() -> Vec<AuditEvent> {
    let mut out = Vec::new();
    for i in 0..30i64 {
        let t = ["acme", "globex", "initech"][(i % 3) as usize];
        let kind = [
            EventKind::Login,
            EventKind::Lookup,
            EventKind::ChallengeStarted,
            EventKind::ActionIntent,
            EventKind::ActionOutcome,
            EventKind::Denied,
        ][(i % 6) as usize];
        let mut e = event(t, i, kind);
        if i % 4 == 0 {
            e.target = None;
        }
        if i % 5 == 0 {
            e.client_ip = Some(TruncatedIp::from_ip("2001:db8:abcd:12::7".parse().unwrap()));
        }
        if i % 7 == 0 {
            e.factor = Some(fctr_ports::FactorKind::parse("vendor:hw-token.v2").unwrap());
        } else if i % 3 == 0 {
            e.factor = Some(fctr_ports::FactorKind::Push);
        }
        e.detail = match i % 4 {
            0 => Some(AuditDetail::RateLimit {
                rule: "challenges_per_target".to_owned(),
                retry_after_secs: 30,
            }),
            1 => Some(AuditDetail::Upstream {
                code: "timeout".to_owned(),
                status: None,
            }),
            2 => Some(AuditDetail::Purge {
                store: "audit".to_owned(),
                removed: 12,
                before: at(-86_400),
            }),
            _ => None,
        };
        out.push(e);
    }
    out
}

/// The same events appended to SQLite and to PostgreSQL: the same seqs and hashes, byte-identical exports (all, and
/// filtered), each verifying with the one verifier of `fctr-ports` and with the outside receiver above.
#[tokio::test]
async fn the_same_events_give_the_same_hashes_and_exports_in_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("fctr.db"), SqliteOptions::default())
        .await
        .unwrap();
    let db = Db::new();
    let pg = db.store().await;
    let mut from_sqlite: Vec<SealedEvent> = Vec::new();
    let mut from_pg: Vec<SealedEvent> = Vec::new();
    for e in varied_events() {
        from_sqlite.push(sqlite.append(e.clone()).await.unwrap());
        from_pg.push(pg.append(e).await.unwrap());
    }
    assert_eq!(from_pg, from_sqlite);
    for t in ["acme", "globex", "initech"] {
        let chain: Vec<&SealedEvent> = from_pg
            .iter()
            .filter(|s| s.event.tenant.as_str() == t)
            .collect();
        verify_tenant_chain(&tenant(t), chain, None, None).unwrap();
    }
    assert_eq!(
        pg.verify_chain().await.unwrap().unwrap(),
        sqlite.verify_chain().await.unwrap().unwrap()
    );

    let queries = [
        AuditQuery::default(),
        AuditQuery {
            tenant: Some(tenant("globex")),
            since: Some(at(4)),
            limit: Some(5),
            ..AuditQuery::default()
        },
        AuditQuery {
            kinds: vec![EventKind::Denied, EventKind::Login],
            pseudonym: Some(pseudo(2)),
            ..AuditQuery::default()
        },
    ];
    for q in &queries {
        let mut a: Vec<u8> = Vec::new();
        let mut b: Vec<u8> = Vec::new();
        let na = sqlite.export_jsonl(q, &mut a).await.unwrap();
        let nb = pg.export_jsonl(q, &mut b).await.unwrap();
        assert_eq!(na, nb);
        assert!(na > 0);
        assert_eq!(String::from_utf8(b).unwrap(), String::from_utf8(a).unwrap());
        assert_eq!(sqlite.read(q).await.unwrap(), pg.read(q).await.unwrap());
    }

    // The whole PostgreSQL export verifies outside, line by line, as docs/audit.md describes.
    let mut out: Vec<u8> = Vec::new();
    pg.export_jsonl(&AuditQuery::default(), &mut out)
        .await
        .unwrap();
    let mut prev: std::collections::HashMap<String, String> = Default::default();
    for line in String::from_utf8(out).unwrap().lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = v.as_object_mut().unwrap();
        let seq = obj.remove("seq").unwrap().as_u64().unwrap();
        let prev_hash = obj["prev_hash"].as_str().unwrap().to_owned();
        obj.remove("prev_hash");
        let hash = obj.remove("hash").unwrap().as_str().unwrap().to_owned();
        let t = obj["tenant"].as_str().unwrap().to_owned();
        assert_eq!(
            prev_hash,
            prev.get(&t).cloned().unwrap_or_else(|| "0".repeat(64))
        );
        let mut c = String::new();
        canonical(&v, &mut c);
        let mut h = Sha256::new();
        h.update(b"fctr-audit-v1\0");
        h.update(hex::decode(&prev_hash).unwrap());
        h.update(seq.to_be_bytes());
        h.update(c.as_bytes());
        assert_eq!(hex::encode(h.finalize()), hash);
        prev.insert(t, hash);
    }

    // The usage reports too.
    let month = fctr_ports::Month::parse("2026-11").unwrap();
    for (agent, kind, n) in [(3, UsageKind::Action, 2), (1, UsageKind::Verification, 5)] {
        let r = UsageRecord {
            month,
            tenant: tenant("acme"),
            agent: pseudo(agent),
            kind,
            count: n,
        };
        sqlite.record(r.clone()).await.unwrap();
        pg.record(r).await.unwrap();
    }
    assert_eq!(
        pg.report_csv(month).await.unwrap(),
        sqlite.report_csv(month).await.unwrap()
    );
    assert_eq!(
        pg.report_json(month).await.unwrap(),
        sqlite.report_json(month).await.unwrap()
    );
    sqlite.close().await;
}
