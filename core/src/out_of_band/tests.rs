use super::*;
use fctr_ports::{KeyId, Outcome, Pii, SecretString, TenantId};

fn pseudo() -> Pseudonymizer {
    Pseudonymizer::new(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("an-out-of-band-test-key-of-32-bytes!".to_owned()),
    )
    .unwrap()
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn change(kind: ActionKind, target: &str, at: DateTime<Utc>, actor: ChangeActor) -> IdpChange {
    IdpChange {
        kind,
        target: SubjectId::parse(target).unwrap(),
        actor,
        at,
        event_id: format!("evt-{target}-{}", at.timestamp()),
    }
}

fn admin() -> ChangeActor {
    ChangeActor::Admin {
        id: SubjectId::parse("00uADMIN1").unwrap(),
        display: Pii::new("admin@example.com"),
    }
}

fn app(id: &str) -> ChangeActor {
    ChangeActor::App {
        client_id: id.into(),
    }
}

fn audited(
    p: &Pseudonymizer,
    kind: EventKind,
    action: ActionKind,
    target: &str,
    at: DateTime<Utc>,
) -> AuditEvent {
    let mut e = AuditEvent::new(TenantId::parse("t").unwrap(), at, kind, Outcome::Success);
    e.action = Some(action);
    e.target = Some(p.subject(&SubjectId::parse(target).unwrap()));
    e
}

#[test]
fn an_audited_change_within_the_window_is_not_reported() {
    let p = pseudo();
    let c = [change(
        ActionKind::ResetPassword,
        "00uALICE",
        t0(),
        app("0oafctr"),
    )];
    for delta in [-299, 0, 120, 300] {
        let a = [audited(
            &p,
            EventKind::ActionOutcome,
            ActionKind::ResetPassword,
            "00uALICE",
            t0() + TimeDelta::seconds(delta),
        )];
        let f = find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE);
        assert!(f.is_empty(), "delta {delta}: {f:?}");
    }
    // An intent alone also accounts for it (the outcome may not have been written after a crash).
    let a = [audited(
        &p,
        EventKind::ActionIntent,
        ActionKind::ResetPassword,
        "00uALICE",
        t0(),
    )];
    assert!(find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE).is_empty());
}

#[test]
fn outside_the_window_is_reported() {
    let p = pseudo();
    let c = [change(ActionKind::ResetPassword, "00uALICE", t0(), admin())];
    for delta in [-301, 301, 3600] {
        let a = [audited(
            &p,
            EventKind::ActionOutcome,
            ActionKind::ResetPassword,
            "00uALICE",
            t0() + TimeDelta::seconds(delta),
        )];
        let f = find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE);
        assert_eq!(f.len(), 1, "delta {delta}");
        assert_eq!(f[0].severity, Severity::OutsideGate);
    }
    // A wider tolerance (a setting) accepts it.
    let a = [audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ResetPassword,
        "00uALICE",
        t0() + TimeDelta::seconds(400),
    )];
    assert!(find_out_of_band(&c, &a, &p, None, TimeDelta::minutes(10)).is_empty());
}

#[test]
fn another_action_kind_or_person_or_event_kind_does_not_match() {
    let p = pseudo();
    let c = [change(ActionKind::ResetFactors, "00uALICE", t0(), admin())];
    let other_kind = audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ResetPassword,
        "00uALICE",
        t0(),
    );
    let other_person = audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ResetFactors,
        "00uBOB",
        t0(),
    );
    let not_an_action = audited(
        &p,
        EventKind::Lookup,
        ActionKind::ResetFactors,
        "00uALICE",
        t0(),
    );
    for a in [other_kind, other_person, not_an_action] {
        let f = find_out_of_band(&c, std::slice::from_ref(&a), &p, None, DEFAULT_TOLERANCE);
        assert_eq!(f.len(), 1, "{a:?}");
        let f = &f[0];
        assert_eq!(f.kind, ActionKind::ResetFactors);
        assert_eq!(f.at, t0());
        assert_eq!(
            f.target,
            p.subject(&SubjectId::parse("00uALICE").unwrap()),
            "the target is pseudonymized with the audit's key"
        );
        assert_eq!(
            f.actor_pseudonym,
            Some(p.subject(&SubjectId::parse("00uADMIN1").unwrap()))
        );
        assert_eq!(f.actor, admin());
    }
}

#[test]
fn neighbouring_kinds_are_covered() {
    let p = pseudo();
    // A reset that also revoked sessions appears as two log entries; fctr audited one action.
    let c = [
        change(ActionKind::ResetPassword, "00uALICE", t0(), app("0oafctr")),
        change(ActionKind::ClearSessions, "00uALICE", t0(), app("0oafctr")),
    ];
    let a = [audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ResetPassword,
        "00uALICE",
        t0(),
    )];
    assert!(find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE).is_empty());
    // The other way round is not: clearing sessions does not reset a password.
    let a = [audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ClearSessions,
        "00uALICE",
        t0(),
    )];
    let f = find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, ActionKind::ResetPassword);
    assert!(covers(ActionKind::ResetFactors, ActionKind::RemoveFactor));
    assert!(!covers(ActionKind::RemoveFactor, ActionKind::ResetFactors));
}

#[test]
fn fctrs_own_client_without_an_audit_event_is_the_most_serious() {
    let p = pseudo();
    let c = [
        change(ActionKind::Unlock, "00uALICE", t0(), app("0oafctr")),
        change(
            ActionKind::Unlock,
            "00uBOB",
            t0() + TimeDelta::seconds(1),
            app("0oaother"),
        ),
        change(
            ActionKind::Unlock,
            "00uCAROL",
            t0() + TimeDelta::seconds(2),
            ChangeActor::Unknown,
        ),
    ];
    let f = find_out_of_band(&c, &[], &p, Some("0oafctr"), DEFAULT_TOLERANCE);
    let sev: Vec<Severity> = f.iter().map(|f| f.severity).collect();
    assert_eq!(
        sev,
        [
            Severity::OwnCredential,
            Severity::OutsideGate,
            Severity::OutsideGate
        ]
    );
    assert_eq!(f[0].actor_pseudonym, None, "an app is not a person");
    // Without a known own client id (an SSWS token), nothing is marked as fctr's credential.
    let f = find_out_of_band(&c, &[], &p, None, DEFAULT_TOLERANCE);
    assert!(f.iter().all(|f| f.severity == Severity::OutsideGate));
}

#[test]
fn a_rotated_key_still_matches_and_findings_are_sorted() {
    let old = pseudo();
    let new = Pseudonymizer::new(
        KeyId::parse("k2").unwrap(),
        &SecretString::from("a-rotated-out-of-band-test-key-32-bytes".to_owned()),
    )
    .unwrap()
    .with_retired(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("an-out-of-band-test-key-of-32-bytes!".to_owned()),
    )
    .unwrap();
    let c = [
        change(
            ActionKind::ClearSessions,
            "00uBOB",
            t0() + TimeDelta::hours(1),
            admin(),
        ),
        change(ActionKind::ClearSessions, "00uALICE", t0(), admin()),
        change(ActionKind::ClearSessions, "00uCAROL", t0(), admin()),
    ];
    // Alice's event was written under the old key.
    let a = [audited(
        &old,
        EventKind::ActionOutcome,
        ActionKind::ClearSessions,
        "00uALICE",
        t0(),
    )];
    let f = find_out_of_band(&c, &a, &new, None, DEFAULT_TOLERANCE);
    assert_eq!(f.len(), 2);
    assert!(f[0].at <= f[1].at);
    assert_eq!(f[1].target_id.as_str(), "00uBOB");
}

#[test]
fn the_audit_query_widens_the_window_and_reads_actions_only() {
    let q = audit_query(t0(), t0() + TimeDelta::hours(1), DEFAULT_TOLERANCE);
    assert_eq!(q.since, Some(t0() - DEFAULT_TOLERANCE));
    assert_eq!(
        q.until,
        Some(t0() + TimeDelta::hours(1) + DEFAULT_TOLERANCE)
    );
    assert_eq!(
        q.kinds,
        vec![
            EventKind::ActionIntent,
            EventKind::ActionOutcome,
            EventKind::AlarmResponse
        ]
    );
}

#[test]
fn one_fctr_action_accounts_for_one_change_of_its_kind() {
    let p = pseudo();
    // fctr reset Alice's password (intent and outcome: one action); an admin reset it again two minutes later.
    let a = [
        audited(
            &p,
            EventKind::ActionIntent,
            ActionKind::ResetPassword,
            "00uALICE",
            t0(),
        ),
        audited(
            &p,
            EventKind::ActionOutcome,
            ActionKind::ResetPassword,
            "00uALICE",
            t0() + TimeDelta::seconds(1),
        ),
    ];
    let c = [
        change(ActionKind::ResetPassword, "00uALICE", t0(), app("0oafctr")),
        change(
            ActionKind::ResetPassword,
            "00uALICE",
            t0() + TimeDelta::minutes(2),
            admin(),
        ),
    ];
    let f = find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].actor,
        admin(),
        "the admin's reset is the one left over"
    );
    // An intent with no outcome (a crash between them) still accounts for one change.
    let f = find_out_of_band(&c[..1], &a[..1], &p, None, DEFAULT_TOLERANCE);
    assert!(f.is_empty(), "{f:?}");
    // One factor removal may be logged several times (Okta Verify push takes its TOTP along).
    let a = [audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::RemoveFactor,
        "00uALICE",
        t0(),
    )];
    let c = [
        change(ActionKind::RemoveFactor, "00uALICE", t0(), app("0oafctr")),
        change(ActionKind::RemoveFactor, "00uALICE", t0(), app("0oafctr")),
    ];
    assert!(find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE).is_empty());
}

#[test]
fn an_alias_uses_the_action_up_a_side_effect_does_not() {
    let p = pseudo();
    let expire = audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ExpirePassword,
        "00uALICE",
        t0(),
    );
    // fctr's expiry logged as a reset: accounted for.
    let fctr_entry = change(ActionKind::ResetPassword, "00uALICE", t0(), app("0oafctr"));
    assert!(
        find_out_of_band(
            std::slice::from_ref(&fctr_entry),
            std::slice::from_ref(&expire),
            &p,
            Some("0oafctr"),
            DEFAULT_TOLERANCE
        )
        .is_empty()
    );
    // Logged as an expiry, plus a console reset a minute later: the console reset is reported.
    let c = [
        change(ActionKind::ExpirePassword, "00uALICE", t0(), app("0oafctr")),
        change(
            ActionKind::ResetPassword,
            "00uALICE",
            t0() + TimeDelta::minutes(1),
            admin(),
        ),
        change(ActionKind::ClearSessions, "00uALICE", t0(), app("0oafctr")),
    ];
    let f = find_out_of_band(
        &c,
        std::slice::from_ref(&expire),
        &p,
        Some("0oafctr"),
        DEFAULT_TOLERANCE,
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].kind, ActionKind::ResetPassword);
    assert_eq!(f[0].actor, admin());
    assert!(same_change(
        ActionKind::ExpirePassword,
        ActionKind::ResetPassword
    ));
    assert!(!side_effect(
        ActionKind::ClearSessions,
        ActionKind::ResetPassword
    ));
}

#[test]
fn a_not_me_alarms_own_session_clear_is_fctrs_not_out_of_band() {
    let p = pseudo();
    let c = [change(
        ActionKind::ClearSessions,
        "00uALICE",
        t0(),
        app("0oafctr"),
    )];
    // The alarm's response: its intent (pending) and outcome carry the action.
    let mut intent = audited(
        &p,
        EventKind::AlarmResponse,
        ActionKind::ClearSessions,
        "00uALICE",
        t0(),
    );
    intent.outcome = Outcome::Pending;
    let outcome = audited(
        &p,
        EventKind::AlarmResponse,
        ActionKind::ClearSessions,
        "00uALICE",
        t0() + TimeDelta::seconds(1),
    );
    assert!(
        find_out_of_band(
            &c,
            &[intent.clone(), outcome],
            &p,
            Some("0oafctr"),
            DEFAULT_TOLERANCE
        )
        .is_empty()
    );
    assert!(find_out_of_band(&c, &[intent], &p, Some("0oafctr"), DEFAULT_TOLERANCE).is_empty());
    // The block event of the same alarm names no action: it accounts for nothing.
    let mut block = audited(
        &p,
        EventKind::AlarmResponse,
        ActionKind::ClearSessions,
        "00uALICE",
        t0(),
    );
    block.action = None;
    let f = find_out_of_band(&c, &[block], &p, Some("0oafctr"), DEFAULT_TOLERANCE);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::OwnCredential);
}

/// An admin resets Alice in the console three minutes before fctr does: with fctr's own client id known, the
/// admin's entry can never be fctr's, so it is reported, and fctr's own entry is accounted for by its record
/// (nothing is blamed on fctr's credential).
#[test]
fn a_console_change_just_before_fctrs_own_is_reported_and_fctrs_is_not() {
    let p = pseudo();
    let c = [
        change(ActionKind::ResetPassword, "00uALICE", t0(), admin()),
        change(
            ActionKind::ResetPassword,
            "00uALICE",
            t0() + TimeDelta::minutes(3),
            app("0oafctr"),
        ),
        // Another application's change near fctr's is not fctr's either.
        change(
            ActionKind::ClearSessions,
            "00uALICE",
            t0() + TimeDelta::minutes(3),
            app("0oaother"),
        ),
    ];
    let a = [audited(
        &p,
        EventKind::ActionOutcome,
        ActionKind::ResetPassword,
        "00uALICE",
        t0() + TimeDelta::minutes(3),
    )];
    let f = find_out_of_band(&c, &a, &p, Some("0oafctr"), DEFAULT_TOLERANCE);
    let got: Vec<_> = f.iter().map(|f| (f.severity, f.kind, f.at)).collect();
    assert_eq!(
        got,
        [
            (Severity::OutsideGate, ActionKind::ResetPassword, t0()),
            (
                Severity::OutsideGate,
                ActionKind::ClearSessions,
                t0() + TimeDelta::minutes(3)
            ),
        ]
    );
    // With an API token fctr acts as an admin, so any actor may be fctr: the entry nearest in time to fctr's
    // record is taken as fctr's, whichever comes first, and the admin's earlier reset is still reported.
    let f = find_out_of_band(&c[..2], &a, &p, None, DEFAULT_TOLERANCE);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].at, t0(), "{f:?}");
}

fn failed(p: &Pseudonymizer, code: &str, status: Option<u16>) -> [AuditEvent; 2] {
    let intent = audited(
        p,
        EventKind::ActionIntent,
        ActionKind::ResetPassword,
        "00uALICE",
        t0(),
    );
    let mut outcome = audited(
        p,
        EventKind::ActionOutcome,
        ActionKind::ResetPassword,
        "00uALICE",
        t0() + TimeDelta::seconds(1),
    );
    outcome.outcome = Outcome::Failed;
    outcome.detail = Some(AuditDetail::Upstream {
        code: code.into(),
        status,
    });
    [intent, outcome]
}

/// fctr's reset was refused by the IdP (a 4xx, a plain refusal): it changed nothing, so it accounts for nothing,
/// and an admin's console reset two minutes later is reported. One that timed out or met a 5xx may have run, so it
/// still accounts for one change.
#[test]
fn a_refused_fctr_action_hides_nothing_and_an_uncertain_one_accounts_for_one_change() {
    let p = pseudo();
    let c = [change(
        ActionKind::ResetPassword,
        "00uALICE",
        t0() + TimeDelta::minutes(2),
        admin(),
    )];
    for (code, status) in [
        ("forbidden", None),
        ("invalid_state", None),
        ("rate_limited", None),
        ("upstream", Some(400)),
    ] {
        let f = find_out_of_band(&c, &failed(&p, code, status), &p, None, DEFAULT_TOLERANCE);
        assert_eq!(f.len(), 1, "{code} {status:?}: {f:?}");
    }
    for (code, status) in [
        ("timeout", None),
        ("unavailable", None),
        ("upstream", Some(503)),
    ] {
        let f = find_out_of_band(&c, &failed(&p, code, status), &p, None, DEFAULT_TOLERANCE);
        assert!(f.is_empty(), "{code} {status:?}: {f:?}");
    }
}

/// A person changing their own account (self-service password change or unlock) is not a helpdesk change.
#[test]
fn self_service_is_not_reported() {
    let p = pseudo();
    let me = ChangeActor::Admin {
        id: SubjectId::parse("00uALICE").unwrap(),
        display: Pii::new("alice@example.com"),
    };
    let c = [change(ActionKind::Unlock, "00uALICE", t0(), me)];
    assert!(find_out_of_band(&c, &[], &p, Some("0oafctr"), DEFAULT_TOLERANCE).is_empty());
}
