//! ASVS at the portal: generic errors when the IdP fails or hangs.

use super::*;

/// The secure headers every portal answer carries (the full check is `routes::check`).
fn assert_secure_headers(r: &Resp, what: &str) {
    assert_eq!(
        r.header("content-security-policy"),
        Some(fctr_portal::CSP),
        "{what}"
    );
    assert!(r.header("strict-transport-security").is_some(), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
}

/// A generic refusal: an upstream failure status, the reason code, and nothing of the IdP's answer.
fn assert_generic(r: &Resp, marker: &str, what: &str) {
    assert!(
        [502, 503, 504].contains(&r.status.as_u16()),
        "{what}: {} {}",
        r.status,
        r.body
    );
    assert!(r.body.contains("idp_error"), "{what}: {}", r.body);
    for leak in [marker, "E0000009", "errorCauses", "errorSummary", "errorId"] {
        assert!(!r.body.contains(leak), "{what}: {leak} leaked: {}", r.body);
    }
    assert_secure_headers(r, what);
}

/// 16.5.1-16.5.3: the IdP answers 5xx (its body carrying a unique marker) on lookup, on the push and on the
/// action, and drops the connection on a push. Each time: a generic page or JSON error with the secure headers,
/// the marker nowhere in the response or the logs, nothing changed at the IdP, and the denial audited.
#[tokio::test]
async fn idp_failures_give_a_generic_error_change_nothing_and_are_audited() {
    let (cap, guard) = capture_logs();
    let t = start().await;
    let marker = format!("UPSTREAM-{}", uuid::Uuid::new_v4().simple());
    let faults = t.demo.fake.faults();
    faults.set_server_error_marker(Some(&marker));
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let idp_errors = || async { t.denials(Reason::IdpError).await.len() };
    let alice = t.demo.fake.fixtures().id_of("alice");

    // Lookup, on the page and on the API.
    let before = idp_errors().await;
    faults.set(
        "GET /api/v1/users",
        Fault::ServerError { status: 503 },
        None,
    );
    let r = t
        .post(
            &mut b,
            "/search",
            &[("csrf", &csrf), ("q", "alice@example.com")],
        )
        .await;
    assert_generic(&r, &marker, "search");
    assert!(!r.body.contains("/callers/"), "no result shown");
    faults.clear();
    faults.set(
        "GET /api/v1/users/{id}",
        Fault::ServerError { status: 500 },
        None,
    );
    let tok = id_token(&t, "agent2").await;
    let (s, v, r) = call(
        &t,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&tok),
        None,
    )
    .await;
    assert_generic(&r, &marker, "API lookup");
    assert_eq!(v["error"]["code"], "idp_error", "{s}");
    faults.clear();
    assert!(idp_errors().await >= before + 2, "both lookups audited");

    // The push: a 5xx, then a dropped connection. No push reaches the phone.
    let card = t.find(&mut b, "alice@example.com").await;
    let push = t.factor_id("alice", "push");
    for fault in [Fault::ServerError { status: 502 }, Fault::DropConnection] {
        let before = idp_errors().await;
        faults.set(
            "POST /api/v1/users/{id}/factors/{factor_id}/verify",
            fault.clone(),
            None,
        );
        let r = t
            .post(
                &mut b,
                &format!("{card}/verify"),
                &[("csrf", &csrf), ("factor_id", &push)],
            )
            .await;
        let r = if r.status == StatusCode::SEE_OTHER {
            // The verification page tells the outcome.
            let loc = r.location();
            t.wait_page(&mut b, &loc, "idp_error").await
        } else {
            r
        };
        assert!(!r.body.contains(&marker), "{fault:?}");
        assert!(r.body.contains("idp_error"), "{fault:?}: {}", r.body);
        assert_secure_headers(&r, "push");
        assert!(
            t.demo.fake.phones().pending().is_empty(),
            "{fault:?}: no push sent"
        );
        assert!(idp_errors().await > before, "{fault:?} audited");
        faults.clear();
    }

    // The action: verified, then the IdP fails the reset. Nothing changes at the IdP; the outcome is audited.
    let (card, _) = t.verified(&mut b, "alice").await;
    let effects = t.demo.fake.effects("alice").unwrap();
    let outcomes = t
        .audit_events()
        .await
        .iter()
        .filter(|e| e.kind == EventKind::ActionOutcome)
        .count();
    faults.set(
        "POST /api/v1/users/{id}/lifecycle/{action}",
        Fault::ServerError { status: 500 },
        None,
    );
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_generic(&r, &marker, "action");
    assert!(!r.body.contains("one-time-secret"), "no secret shown");
    assert_eq!(
        t.demo.fake.effects("alice").unwrap(),
        effects,
        "nothing changed at the IdP"
    );
    let events = t.audit_events().await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::ActionOutcome)
        .collect();
    assert_eq!(failed.len(), outcomes + 1, "the outcome is audited");
    assert_eq!(failed.last().unwrap().reason, Some(Reason::IdpError));
    faults.clear();
    drop(guard);

    let logs = String::from_utf8_lossy(&cap.0.lock().unwrap()).into_owned();
    assert!(logs.len() > 1000, "the capture works");
    assert!(
        !logs.contains(&marker),
        "the upstream body reached the logs"
    );
}

/// 16.5.3 with a dependency that hangs: the IdP answers a lookup only after the adapter's request timeout
/// (15 s). The agent gets the generic error, not a hang and not detail; the denial is audited.
#[tokio::test]
async fn an_idp_that_hangs_gives_a_generic_error_after_the_client_timeout() {
    let t = start().await;
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    let before = t.denials(Reason::IdpError).await.len();
    t.demo
        .fake
        .faults()
        .set("GET /api/v1/users", Fault::Latency { ms: 20_000 }, Some(1));
    let started = std::time::Instant::now();
    let r = t
        .post(
            &mut b,
            "/search",
            &[("csrf", &csrf), ("q", "alice@example.com")],
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(19),
        "the client gave up first"
    );
    assert_generic(&r, "no-marker-for-a-timeout", "timeout");
    assert_eq!(t.denials(Reason::IdpError).await.len(), before + 1);
}
