//! The SIEM export: one JSON object per line, verifiable by a receiver with nothing but SHA-256.

use crate::common::*;
use fctr_ports::{AuditLog, AuditQuery, EventKind, TruncatedIp};
use sha2::{Digest, Sha256};

/// Canonical JSON as docs/audit.md describes it, written independently of fctr-ports.
fn canonical(v: &serde_json::Value, out: &mut String) {
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
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
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
