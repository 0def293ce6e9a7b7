//! Unit tests of the audit record and its chain: the canonical bytes against the generic reference, every kind
//! of break, the raw verifier against the decoded one. One file (a little over 600 lines) because the tamper cases
//! share their fixture chains.

use super::chain::{tenant_claim, tenant_json};
use super::event::write_canonical;
use super::*;

/// `EventKind::ALL` lists every variant exactly once, in order (the match is exhaustive), its names parse
/// back, and each is the serde name stores write.
#[test]
fn event_kind_all_is_complete_and_names_round_trip() {
    fn index(k: EventKind) -> usize {
        match k {
            EventKind::Login => 0,
            EventKind::Logout => 1,
            EventKind::Lookup => 2,
            EventKind::ChallengeStarted => 3,
            EventKind::ChallengeResult => 4,
            EventKind::CodeSubmitted => 5,
            EventKind::GrantIssued => 6,
            EventKind::ActionIntent => 7,
            EventKind::ActionOutcome => 8,
            EventKind::Denied => 9,
            EventKind::PolicyLoaded => 10,
            EventKind::Purge => 11,
            EventKind::Checkpoint => 12,
            EventKind::NotMe => 13,
            EventKind::AlarmResponse => 14,
            EventKind::AlertRaised => 15,
            EventKind::TicketNote => 16,
            EventKind::ApprovalRequested => 17,
            EventKind::ApprovalDecided => 18,
        }
    }
    for (i, k) in EventKind::ALL.into_iter().enumerate() {
        assert_eq!(index(k), i, "{k:?}");
        assert_eq!(EventKind::parse(k.as_str()), Some(k));
        assert_eq!(
            serde_json::to_value(k).unwrap(),
            serde_json::Value::from(k.as_str())
        );
    }
    assert_eq!(EventKind::parse("no_such_kind"), None);
}

/// `Outcome::ALL` lists every variant exactly once, in order (the match is exhaustive), and its names parse back
/// and are the serde names.
#[test]
fn outcome_all_is_complete_and_names_round_trip() {
    fn index(o: Outcome) -> usize {
        match o {
            Outcome::Success => 0,
            Outcome::Pending => 1,
            Outcome::Denied => 2,
            Outcome::Rejected => 3,
            Outcome::Failed => 4,
        }
    }
    for (i, o) in Outcome::ALL.into_iter().enumerate() {
        assert_eq!(index(o), i, "{o:?}");
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
        assert_eq!(
            serde_json::to_value(o).unwrap(),
            serde_json::Value::from(o.as_str())
        );
    }
    assert_eq!(Outcome::parse("no_such_outcome"), None);
}

/// `Reason::ALL` lists every variant exactly once, in order (the match is exhaustive: a new variant fails to
/// compile here until it is added to `ALL`).
#[test]
fn reason_all_is_complete_and_names_are_unique() {
    fn index(r: Reason) -> usize {
        match r {
            Reason::NoRole => 0,
            Reason::NotPermittedForRole => 1,
            Reason::ProtectedTarget => 2,
            Reason::NoLiveGrant => 3,
            Reason::GrantOtherAgent => 4,
            Reason::GrantOtherSubject => 5,
            Reason::GrantExpired => 6,
            Reason::GrantUsed => 7,
            Reason::GrantDoesNotCoverAction => 8,
            Reason::FactorNotAccepted => 9,
            Reason::FactorNotEnrolled => 10,
            Reason::DowngradeRefused => 11,
            Reason::RateLimited => 12,
            Reason::VerificationLocked => 13,
            Reason::VerificationNotFound => 14,
            Reason::VerificationExpired => 15,
            Reason::InvalidState => 16,
            Reason::ChallengeRejected => 17,
            Reason::ChallengeTimedOut => 18,
            Reason::WrongCode => 19,
            Reason::CodeReplayed => 20,
            Reason::IdpError => 21,
            Reason::Unsupported => 22,
            Reason::TargetNotFound => 23,
            Reason::AuditUnavailable => 24,
            Reason::InvalidInput => 25,
            Reason::IpNotAllowed => 26,
            Reason::CsrfRejected => 27,
            Reason::AuthenticationFailed => 28,
            Reason::NotEnoughFactors => 29,
            Reason::SelfAction => 30,
            Reason::AgentRoleRevoked => 31,
            Reason::StateUnavailable => 32,
            Reason::CallerLockedOut => 33,
            Reason::CallerBlocked => 34,
            Reason::ApprovalPending => 35,
            Reason::ApprovalRefused => 36,
            Reason::ApprovalExpired => 37,
            Reason::ApprovalNotFound => 38,
            Reason::ApprovalAlreadyDecided => 39,
            Reason::SelfApproval => 40,
            Reason::SignInLinkInvalid => 41,
            Reason::SignInOtherUser => 42,
            Reason::SignInStale => 43,
            Reason::SignInNoMfa => 44,
            Reason::SignInFailed => 45,
        }
    }
    for (i, r) in Reason::ALL.iter().enumerate() {
        assert_eq!(index(*r), i, "{r:?}");
    }
    let names: std::collections::BTreeSet<&str> = Reason::ALL.iter().map(Reason::as_str).collect();
    assert_eq!(names.len(), Reason::ALL.len());
}
use chrono::TimeZone;

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn ev(i: u32) -> AuditEvent {
    let at =
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(i.into());
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
    let kinds = [
        EventKind::Lookup,
        EventKind::ActionIntent,
        EventKind::Denied,
        EventKind::Purge,
    ];
    let outcomes = [
        Outcome::Success,
        Outcome::Pending,
        Outcome::Denied,
        Outcome::Rejected,
        Outcome::Failed,
    ];
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
                e.ticket = Some(crate::TicketRef::parse(format!("INC{secs}")).unwrap());
            }
            e.factor = factor.and_then(|f| FactorKind::parse(&f).ok());
            e.request_id = req.and_then(|r| RequestId::parse(r).ok());
            e.detail = match detail {
                0 => None,
                1 => Some(AuditDetail::Purge {
                    store: "audit\"q".into(),
                    removed: 3,
                    before: at,
                }),
                2 => Some(AuditDetail::Upstream {
                    code: "timeout".into(),
                    status: None,
                }),
                3 => Some(AuditDetail::Checkpoint {
                    seq: 9,
                    hash: ChainHash([7; 32]),
                }),
                _ => Some(AuditDetail::Factors {
                    approved: 1,
                    required: 2,
                }),
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

/// The verifier as it was before it was split into [`verify_tenant_chain_raw`], verbatim: the reference the
/// shared implementation must agree with.
fn reference_verify(
    tenant: &TenantId,
    events: &[SealedEvent],
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
        let purged = anchor.is_some_and(|a| cp.seq < a.seq);
        if !checkpoint_seen && !purged {
            return Err(brk(expect_seq, BreakKind::Truncated));
        }
    }
    Ok(head)
}

fn links(events: &[SealedEvent]) -> Vec<RawLink<'static>> {
    events.iter().map(RawLink::of).collect()
}

fn raw(
    links: &[RawLink<'_>],
    anchor: Option<&ChainAnchor>,
    checkpoint: Option<&ChainCheckpoint>,
) -> Result<Option<ChainCheckpoint>, ChainBreak> {
    verify_tenant_chain_raw(&tenant(), links.iter().cloned(), anchor, checkpoint)
}

/// Replaces the first occurrence of `from` in a link's bytes.
fn patch(link: &mut RawLink<'_>, from: &str, to: &str) {
    let s = String::from_utf8(link.canonical.to_vec()).unwrap();
    assert!(s.contains(from), "{from} not in {s}");
    link.canonical = Cow::Owned(s.replacen(from, to, 1).into_bytes());
}

#[test]
fn intact_raw_chain_verifies() {
    let c = chain(5);
    let l = links(&c);
    assert!(matches!(l[0].canonical, Cow::Owned(_)));
    let borrowed: Vec<RawLink<'_>> = l
        .iter()
        .map(|x| RawLink {
            canonical: Cow::Borrowed(&x.canonical),
            ..x.clone()
        })
        .collect();
    let head = raw(&borrowed, None, None).unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (4, c[4].hash));
    let cp = ChainCheckpoint {
        tenant: tenant(),
        seq: 3,
        hash: c[3].hash,
    };
    assert_eq!(
        raw(&l, None, Some(&cp)),
        verify_tenant_chain(&tenant(), &c, None, Some(&cp))
    );
    assert!(raw(&[], None, None).unwrap().is_none());
}

#[test]
fn each_kind_of_tampering_is_found_at_its_position_in_raw_links() {
    let mut edited = links(&chain(5));
    patch(&mut edited[2], "\"success\"", "\"denied\"");
    let b = raw(&edited, None, None).unwrap_err();
    assert_eq!((b.position, b.kind), (2, BreakKind::Edited));

    let mut deleted = links(&chain(5));
    deleted.remove(2);
    let b = raw(&deleted, None, None).unwrap_err();
    assert_eq!((b.position, b.kind), (2, BreakKind::SequenceGap));

    let mut renumbered = links(&chain(5));
    renumbered.remove(2);
    for (i, e) in renumbered.iter_mut().enumerate() {
        e.seq = i as u64;
    }
    let b = raw(&renumbered, None, None).unwrap_err();
    assert_eq!((b.position, b.kind), (2, BreakKind::Unlinked));

    let mut swapped = links(&chain(5));
    swapped.swap(1, 3);
    let b = raw(&swapped, None, None).unwrap_err();
    assert_eq!((b.position, b.kind), (1, BreakKind::SequenceGap));

    let c = chain(5);
    let cp = ChainCheckpoint {
        tenant: tenant(),
        seq: 4,
        hash: c[4].hash,
    };
    let b = raw(&links(&c)[..3], None, Some(&cp)).unwrap_err();
    assert_eq!((b.position, b.kind), (3, BreakKind::Truncated));
    let forged = ChainCheckpoint {
        hash: c[3].hash,
        ..cp
    };
    let b = raw(&links(&c), None, Some(&forged)).unwrap_err();
    assert_eq!((b.position, b.kind), (4, BreakKind::Truncated));
}

#[test]
fn a_byte_edit_that_decodes_to_the_same_event_is_edited_in_raw_links() {
    let c = chain(4);
    for (from, to) in [
        ("{", "{ "),
        (",\"id\"", ", \"id\""),
        ("}", "}\n"),
        ("\"kind\":\"lookup\"", "\"kind\":\"\\u006cookup\""),
    ] {
        let mut l = links(&c);
        patch(&mut l[1], from, to);
        // Still the same event once decoded ...
        let back: AuditEvent = serde_json::from_slice(&l[1].canonical).unwrap();
        assert_eq!(back, c[1].event);
        // ... but not the bytes that were hashed.
        let b = raw(&l, None, None).unwrap_err();
        assert_eq!(
            (b.position, b.kind),
            (1, BreakKind::Edited),
            "{from:?} -> {to:?}"
        );
    }
    // Same fields, serde's declaration order: not canonical, so not what was hashed.
    let mut l = links(&c);
    l[2].canonical = Cow::Owned(serde_json::to_vec(&c[2].event).unwrap());
    assert!(raw(&l, None, None).is_err());
}

#[test]
fn an_event_of_another_tenant_is_a_sequence_gap_in_both_forms() {
    // A whole, intact chain of another tenant presented as this tenant's.
    let other = TenantId::parse("acme-evil").unwrap();
    let mut prev = ChainHash::GENESIS;
    let foreign: Vec<SealedEvent> = (0..3)
        .map(|i| {
            let mut e = ev(i);
            e.tenant = other.clone();
            let s = SealedEvent::seal(prev, u64::from(i), e);
            prev = s.hash;
            s
        })
        .collect();
    let b = raw(&links(&foreign), None, None).unwrap_err();
    assert_eq!((b.position, b.kind), (0, BreakKind::SequenceGap));
    assert_eq!(verify_tenant_chain(&tenant(), &foreign, None, None), Err(b));
    assert!(verify_tenant_chain_raw(&other, links(&foreign), None, None).is_ok());
}

#[test]
fn anchored_raw_chain_verifies_after_purge() {
    let c = chain(6);
    let anchor = ChainAnchor {
        tenant: tenant(),
        seq: 3,
        prev_hash: c[2].hash,
    };
    let l = links(&c);
    assert!(raw(&l[3..], Some(&anchor), None).is_ok());
    let b = raw(&l[4..], Some(&anchor), None).unwrap_err();
    assert_eq!((b.position, b.kind), (3, BreakKind::SequenceGap));
    // A checkpoint purged away is not required.
    let old = ChainCheckpoint {
        tenant: tenant(),
        seq: 1,
        hash: c[1].hash,
    };
    assert!(raw(&l[3..], Some(&anchor), Some(&old)).is_ok());
}

#[test]
fn tenant_is_the_last_canonical_key() {
    // The raw verifier reads the tenant from the end of the canonical bytes: no field may sort after it.
    let mut e = ev(0);
    e.agent = Some(PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAA").unwrap());
    e.target = Some(PseudoId::parse("k2:BBBBBBBBBBBBBBBBBBBBBA").unwrap());
    e.action = Some(ActionKind::IssueTemporaryAccessPass);
    e.client_ip = Some(TruncatedIp::from_ip("10.1.2.3".parse().unwrap()));
    e.request_id = Some(RequestId::parse("req-1").unwrap());
    e.factor = FactorKind::parse("push").ok();
    e.detail = Some(AuditDetail::Factors {
        approved: 1,
        required: 2,
    });
    let v = serde_json::to_value(&e).unwrap();
    let last = v
        .as_object()
        .unwrap()
        .keys()
        .max_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(last.map(String::as_str), Some("tenant"));
    assert!(e.canonical_bytes().ends_with(b",\"tenant\":\"acme\"}"));
    assert_eq!(tenant_claim(&e.canonical_bytes()), Some(&b"acme"[..]));
    assert_eq!(tenant_json(&tenant()), b"acme");
    for not_canonical in [
        &b"{\"tenant\":\"acme\"} "[..],
        b"{\"x\":\",\\\"tenant\\\":\\\"acme\"}",
        b"\"}",
        b"",
    ] {
        assert_eq!(
            tenant_claim(not_canonical),
            None,
            "{}",
            String::from_utf8_lossy(not_canonical)
        );
    }
}

/// A tampering of a sealed chain, applied by [`tamper`].
#[derive(Debug, Clone)]
enum Tamper {
    None,
    Outcome(usize),
    Time(usize),
    Tenant(usize),
    Delete(usize),
    Swap(usize, usize),
    Renumber(usize),
    Seq(usize, u64),
    PrevHash(usize, u8),
    Hash(usize, u8),
    Resealed(usize),
    Truncate(usize),
}

fn arb_tamper() -> impl proptest::strategy::Strategy<Value = Tamper> {
    use proptest::prelude::*;
    prop_oneof![
        Just(Tamper::None),
        any::<usize>().prop_map(Tamper::Outcome),
        any::<usize>().prop_map(Tamper::Time),
        any::<usize>().prop_map(Tamper::Tenant),
        any::<usize>().prop_map(Tamper::Delete),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::Swap(a, b)),
        any::<usize>().prop_map(Tamper::Renumber),
        (any::<usize>(), 0u64..20).prop_map(|(a, s)| Tamper::Seq(a, s)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Tamper::PrevHash(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Tamper::Hash(a, b)),
        any::<usize>().prop_map(Tamper::Resealed),
        any::<usize>().prop_map(Tamper::Truncate),
    ]
}

fn tamper(c: &mut Vec<SealedEvent>, t: &Tamper) {
    if c.is_empty() {
        return;
    }
    let n = c.len();
    match *t {
        Tamper::None => {}
        Tamper::Outcome(i) => {
            let e = &mut c[i % n].event;
            e.outcome = if e.outcome == Outcome::Failed {
                Outcome::Success
            } else {
                Outcome::Failed
            };
        }
        Tamper::Time(i) => c[i % n].event.at += chrono::Duration::microseconds(1),
        Tamper::Tenant(i) => c[i % n].event.tenant = TenantId::parse("globex").unwrap(),
        Tamper::Delete(i) => {
            c.remove(i % n);
        }
        Tamper::Swap(a, b) => c.swap(a % n, b % n),
        Tamper::Renumber(i) => {
            c.remove(i % n);
            let start = c.first().map_or(0, |e| e.seq.min(i as u64 % 3));
            for (k, e) in c.iter_mut().enumerate() {
                e.seq = start + k as u64;
            }
        }
        Tamper::Seq(i, s) => c[i % n].seq = s,
        Tamper::PrevHash(i, b) => c[i % n].prev_hash.0[usize::from(b) % 32] ^= b | 1,
        Tamper::Hash(i, b) => c[i % n].hash.0[usize::from(b) % 32] ^= b | 1,
        Tamper::Resealed(i) => {
            // Edited and re-hashed: only the link to the next event (or a checkpoint) can tell.
            let s = &mut c[i % n];
            s.event.reason = Some(Reason::WrongCode);
            s.hash = ChainHash::compute(&s.prev_hash, s.seq, &s.event);
        }
        Tamper::Truncate(i) => c.truncate(i % n),
    }
}

proptest::proptest! {
    #[test]
    fn raw_and_decoded_verification_agree_on_any_tampering(
        events in proptest::collection::vec(arb_event(), 0..8),
        start in 0u64..3,
        cp_at in proptest::option::of(0usize..10),
        cp_wrong in proptest::prelude::any::<bool>(),
        tampering in arb_tamper(),
    ) {
        // A chain starting at `start` (anchored when > 0), an optional checkpoint, then one tampering.
        let anchor_prev = ChainHash([start as u8; 32]);
        let anchor = (start > 0).then(|| ChainAnchor { tenant: tenant(), seq: start, prev_hash: anchor_prev });
        let mut prev = if start > 0 { anchor_prev } else { ChainHash::GENESIS };
        let mut c: Vec<SealedEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let s = SealedEvent::seal(prev, start + i as u64, e);
                prev = s.hash;
                s
            })
            .collect();
        let checkpoint = cp_at.map(|i| ChainCheckpoint {
            tenant: tenant(),
            seq: start + i as u64,
            hash: c.get(i).filter(|_| !cp_wrong).map_or(ChainHash([9; 32]), |s| s.hash),
        });
        tamper(&mut c, &tampering);
        let want = reference_verify(&tenant(), &c, anchor.as_ref(), checkpoint.as_ref());
        let decoded = verify_tenant_chain(&tenant(), &c, anchor.as_ref(), checkpoint.as_ref());
        let l = links(&c);
        let raw_links = verify_tenant_chain_raw(&tenant(), l.iter().cloned(), anchor.as_ref(), checkpoint.as_ref());
        proptest::prop_assert_eq!(&decoded, &want);
        proptest::prop_assert_eq!(&raw_links, &want);
    }

    #[test]
    fn any_byte_change_to_a_raw_link_is_found(
        events in proptest::collection::vec(arb_event(), 1..6),
        which in proptest::prelude::any::<usize>(),
        at in proptest::prelude::any::<usize>(),
        byte in 1u8..=255,
    ) {
        let mut prev = ChainHash::GENESIS;
        let c: Vec<SealedEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let s = SealedEvent::seal(prev, i as u64, e);
                prev = s.hash;
                s
            })
            .collect();
        let mut l = links(&c);
        let i = which % l.len();
        let bytes = l[i].canonical.to_mut();
        let k = at % bytes.len();
        bytes[k] ^= byte;
        let b = verify_tenant_chain_raw(&tenant(), l, None, None).unwrap_err();
        proptest::prop_assert_eq!(b.position, i as u64);
        proptest::prop_assert!(matches!(b.kind, BreakKind::Edited | BreakKind::SequenceGap), "{:?}", b.kind);
    }
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

/// No audit field holds an array today; the canonical form of one is still fixed, so a future detail with a
/// list hashes the same in every store: elements in order, comma-separated, objects inside sorted.
#[test]
fn canonical_arrays_keep_order_and_separate_elements() {
    let mut out = Vec::new();
    write_canonical(
        &serde_json::json!([3, "x", {"b": 1, "a": [true, null]}]),
        &mut out,
    );
    assert_eq!(out, br#"[3,"x",{"a":[true,null],"b":1}]"#);
}
