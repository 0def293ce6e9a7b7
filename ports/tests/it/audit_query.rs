//! `AuditQuery::matches`: every filter refuses on its own, and the time bounds are `since <= at < until`.

use chrono::{Duration, TimeZone, Utc};
use fctr_ports::{AuditEvent, AuditQuery, EventKind, KeyId, Outcome, PseudoId, TenantId};

fn pseudo(n: u8) -> PseudoId {
    PseudoId::from_mac(&KeyId::parse("k1").unwrap(), &[n; 16]).unwrap()
}

fn event() -> AuditEvent {
    let at = Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap();
    let mut e = AuditEvent::new(
        TenantId::parse("acme").unwrap(),
        at,
        EventKind::Lookup,
        Outcome::Success,
    );
    e.agent = Some(pseudo(1));
    e.target = Some(pseudo(2));
    e
}

#[test]
fn an_empty_query_matches_every_event() {
    assert!(AuditQuery::default().matches(&event()));
}

#[test]
fn the_tenant_filter() {
    let e = event();
    let mut q = AuditQuery {
        tenant: Some(TenantId::parse("acme").unwrap()),
        ..AuditQuery::default()
    };
    assert!(q.matches(&e));
    q.tenant = Some(TenantId::parse("globex").unwrap());
    assert!(!q.matches(&e));
}

#[test]
fn since_is_inclusive_and_until_exclusive() {
    let e = event();
    let micro = Duration::microseconds(1);
    let since = |t| AuditQuery {
        since: Some(t),
        ..AuditQuery::default()
    };
    let until = |t| AuditQuery {
        until: Some(t),
        ..AuditQuery::default()
    };
    assert!(since(e.at).matches(&e));
    assert!(since(e.at - micro).matches(&e));
    assert!(!since(e.at + micro).matches(&e));
    assert!(!until(e.at).matches(&e));
    assert!(until(e.at + micro).matches(&e));
    assert!(!until(e.at - micro).matches(&e));
}

#[test]
fn the_kind_filter() {
    let e = event();
    let kinds = |k: Vec<EventKind>| AuditQuery {
        kinds: k,
        ..AuditQuery::default()
    };
    assert!(kinds(vec![]).matches(&e));
    assert!(kinds(vec![EventKind::Denied, EventKind::Lookup]).matches(&e));
    assert!(!kinds(vec![EventKind::Denied]).matches(&e));
}

#[test]
fn the_pseudonym_filter_finds_the_agent_or_the_caller() {
    let mut e = event();
    let by = |p| AuditQuery {
        pseudonym: Some(p),
        ..AuditQuery::default()
    };
    assert!(by(pseudo(1)).matches(&e), "as agent");
    assert!(by(pseudo(2)).matches(&e), "as caller");
    assert!(!by(pseudo(3)).matches(&e), "neither");
    e.target = None;
    assert!(by(pseudo(1)).matches(&e), "agent only");
    e.agent = None;
    e.target = Some(pseudo(2));
    assert!(by(pseudo(2)).matches(&e), "caller only");
}

#[test]
fn one_failing_filter_refuses_whatever_the_others_say() {
    let e = event();
    let all_pass = AuditQuery {
        tenant: Some(e.tenant.clone()),
        since: Some(e.at),
        until: Some(e.at + Duration::seconds(1)),
        kinds: vec![e.kind],
        pseudonym: Some(pseudo(1)),
        limit: None,
    };
    assert!(all_pass.matches(&e));
    let failing: [fn(&mut AuditQuery); 5] = [
        |q| q.tenant = Some(TenantId::parse("globex").unwrap()),
        |q| q.since = q.since.map(|t| t + Duration::seconds(5)),
        |q| q.until = q.since,
        |q| q.kinds = vec![EventKind::Denied],
        |q| q.pseudonym = Some(pseudo(9)),
    ];
    for (i, break_one) in failing.iter().enumerate() {
        let mut q = all_pass.clone();
        break_one(&mut q);
        assert!(!q.matches(&e), "filter {i} alone should refuse");
    }
}
