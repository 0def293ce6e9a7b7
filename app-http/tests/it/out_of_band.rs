//! The auditors' out-of-band page: a password reset done through the portal is accounted for by fctr's audit and
//! not listed; one made "in the console" (straight on the fake's System Log) is, with its admin; agents without
//! `view_audit` are refused (and the refusal audited); a window not offered is a 400; an IdP without a change log
//! is said so.

use crate::helpers::*;
use axum::http::StatusCode;
use fctr_ports::Reason;

const CONSOLE_ADMIN: &str = "console.admin@example.com";
/// The demo's SSWS token acts as this admin in the fake's System Log: fctr's own reset shows under this name.
const TOKEN_ADMIN: &str = "api-token-admin@example.com";

/// The findings table's rows as (severity, action) pairs, in page order.
fn findings(body: &str) -> Vec<(String, String)> {
    body.split("<tr data-severity=\"")
        .skip(1)
        .filter_map(|s| {
            let sev = s.split('"').next()?;
            let action = between(s, "data-action=\"", "\"")?;
            Some((sev.to_owned(), action.to_owned()))
        })
        .collect()
}

/// Through fctr, agent2 verifies Alice by push and resets her password; then, outside fctr, an admin resets Bob's
/// password in the console. Returns Bob's IdP id.
async fn portal_reset_then_console_reset(t: &TestApp) -> String {
    let mut b2 = t.sign_in("agent2").await;
    let (card, _) = t.verified(&mut b2, "alice").await;
    let csrf = b2.csrf.clone();
    let r = t
        .post(
            &mut b2,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bob = t.demo.fake.fixtures().id_of("bob");
    t.demo
        .fake
        .state()
        .console_change(CONSOLE_ADMIN, &bob, "user.account.reset_password");
    bob
}

#[tokio::test]
async fn a_console_reset_is_listed_with_its_admin_and_the_portals_reset_is_not() {
    let t = start().await;
    let bob = portal_reset_then_console_reset(&t).await;
    let fake = t.demo.fake.state();
    let alice = t.demo.fake.fixtures().id_of("alice");
    // The portal's reset is in the fake's log too, attributed to the token's admin.
    assert!(fake.system_log_len() >= 2);
    // The engine's clock catches up with the fake's (real) time.
    t.clock.advance(chrono::TimeDelta::minutes(1));

    let mut b3 = t.sign_in("agent3").await;
    let r = t.get(&mut b3, "/audit/out-of-band?since=1h").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        findings(&r.body),
        vec![("outside_gate".to_owned(), "reset_password".to_owned())],
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("admin: {CONSOLE_ADMIN}")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&bob),
        "the auditor sees the target's IdP id"
    );
    assert!(
        !r.body.contains(TOKEN_ADMIN),
        "fctr's own reset is not listed"
    );
    assert!(!r.body.contains(&alice), "Alice's reset went through fctr");
    assert!(r.body.contains("1 change(s) outside fctr"), "{}", r.body);

    // The audit log has the portal's reset: a console reset of Alice right after it is still listed (one fctr
    // action accounts for one change).
    fake.console_change(CONSOLE_ADMIN, &alice, "user.account.reset_password");
    let r = t.get(&mut b3, "/audit/out-of-band?since=1h").await;
    assert_eq!(findings(&r.body).len(), 2, "{}", r.body);
    assert!(r.body.contains(&alice), "{}", r.body);
    assert!(!r.body.contains(TOKEN_ADMIN));

    // The default window is a day; the selector shows it chosen.
    let r = t.get(&mut b3, "/audit/out-of-band").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("<option value=\"24h\" selected>"),
        "{}",
        r.body
    );
    assert_eq!(findings(&r.body).len(), 2);
}

#[tokio::test]
async fn roles_without_view_audit_are_refused_and_the_refusal_audited() {
    let t = start().await;
    let bob = t.demo.fake.fixtures().id_of("bob");
    t.demo
        .fake
        .state()
        .console_change(CONSOLE_ADMIN, &bob, "user.account.reset_password");
    t.clock.advance(chrono::TimeDelta::minutes(1));
    let before = t.denials(Reason::NotPermittedForRole).await.len();
    for agent in ["agent1", "agent2"] {
        let mut b = t.sign_in(agent).await;
        for path in ["/audit/out-of-band", "/audit/out-of-band?since=bogus"] {
            let r = t.get(&mut b, path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{agent} {path}");
            assert!(r.body.contains("Your role does not allow this."));
            assert!(!r.body.contains(CONSOLE_ADMIN));
            assert!(!r.body.contains(&bob));
        }
    }
    assert_eq!(
        t.denials(Reason::NotPermittedForRole).await.len(),
        before + 4
    );
}

#[tokio::test]
async fn a_window_not_offered_is_refused_with_words() {
    let t = start().await;
    let mut b3 = t.sign_in("agent3").await;
    for bad in ["30d", "8d", "0h", "all", "-1h"] {
        let r = t
            .get(&mut b3, &format!("/audit/out-of-band?since={bad}"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.body.contains("Check the time range"), "{bad}");
        assert!(
            !r.body.contains("id=\"oob-summary\""),
            "{bad}: nothing read"
        );
    }
    let r = t.get(&mut b3, "/audit/out-of-band?since=7d").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No changes outside fctr"), "{}", r.body);
}

#[tokio::test]
async fn without_a_change_log_the_page_says_so() {
    let t = start_with(|o| o.change_feed = false).await;
    let bob = t.demo.fake.fixtures().id_of("bob");
    t.demo
        .fake
        .state()
        .console_change(CONSOLE_ADMIN, &bob, "user.account.reset_password");
    let mut b3 = t.sign_in("agent3").await;
    let r = t.get(&mut b3, "/audit/out-of-band").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("id=\"no-feed\""), "{}", r.body);
    assert!(r.body.contains("Not available for this identity provider"));
    assert!(!r.body.contains(CONSOLE_ADMIN));
    // Still refused for a role without view_audit.
    let mut b1 = t.sign_in("agent1").await;
    let r = t.get(&mut b1, "/audit/out-of-band").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Zero data: the admin's login and the target's id are shown to the auditor and nowhere else: not in a log line
/// (the production JSON format, at TRACE) and not in an audit event.
#[tokio::test]
async fn the_admin_and_the_target_reach_the_auditor_only() {
    const CANARY_ADMIN: &str = "canary.oob.admin.Q8v3@example.com";
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,fctr_testkit=off"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let t = start().await;
    let bob = t.demo.fake.fixtures().id_of("bob");
    t.demo
        .fake
        .state()
        .console_change(CANARY_ADMIN, &bob, "user.mfa.factor.reset_all");
    t.clock.advance(chrono::TimeDelta::minutes(1));
    let mut b3 = t.sign_in("agent3").await;
    let r = t.get(&mut b3, "/audit/out-of-band?since=6h").await;
    assert_eq!(
        findings(&r.body),
        vec![("outside_gate".to_owned(), "reset_factors".to_owned())]
    );
    assert!(r.body.contains(CANARY_ADMIN));
    tracing::info!("oob-capture-marker");
    drop(guard);
    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("oob-capture-marker"), "the capture works");
    for pii in [CANARY_ADMIN, bob.as_str()] {
        assert!(!logs.contains(pii), "{pii} in the logs");
    }
    for e in t.audit_events().await {
        let json = serde_json::to_string(&e).unwrap();
        for pii in [CANARY_ADMIN, bob.as_str()] {
            assert!(!json.contains(pii), "{pii} in an audit event: {json}");
        }
    }
}

/// The JSON route: the same report, pseudonymous (the admin and the target by keyed pseudonym only), for roles with
/// `view_audit`; a window not offered is `invalid_input`; an IdP without a change log is `unsupported`.
#[tokio::test]
async fn the_json_route_reports_pseudonyms_only() {
    use crate::api::{call, id_token};
    let t = start().await;
    let bob = portal_reset_then_console_reset(&t).await;
    t.clock.advance(chrono::TimeDelta::minutes(1));

    let auditor = id_token(&t, "agent3").await;
    let (s, v, r) = call(
        &t,
        "GET",
        "/api/v1/audit/out-of-band?since=1h",
        Some(&auditor),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v}");
    let f = &findings[0];
    assert_eq!(f["severity"], "outside_gate");
    assert_eq!(f["action"], "reset_password");
    assert_eq!(f["actor_kind"], "admin");
    let engine = t.demo.state.engine();
    let bob_pseudo = engine
        .pseudonymizer()
        .subject(&fctr_ports::SubjectId::parse(bob.clone()).unwrap());
    assert_eq!(f["target"], bob_pseudo.as_str());
    assert!(f["actor_pseudonym"].as_str().is_some_and(|p| !p.is_empty()));
    assert!(
        !r.body.contains(CONSOLE_ADMIN),
        "no admin login: {}",
        r.body
    );
    assert!(!r.body.contains(&bob), "no IdP user id: {}", r.body);
    assert_eq!(v["tolerance_secs"], 300);

    // Only the documented windows: not a longer one, and not an empty one (found by the API fuzzer).
    for bad in ["30d", "", "%20"] {
        let (s, v, _) = call(
            &t,
            "GET",
            &format!("/api/v1/audit/out-of-band?since={bad}"),
            Some(&auditor),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "since={bad}");
        assert_eq!(v["error"]["code"], "invalid_input");
    }

    let tier2 = id_token(&t, "agent2").await;
    let (s, v, _) = call(&t, "GET", "/api/v1/audit/out-of-band", Some(&tier2), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "not_permitted_for_role");
}

#[tokio::test]
async fn the_json_route_says_unsupported_without_a_change_log() {
    use crate::api::{call, id_token};
    let t = start_with(|o| o.change_feed = false).await;
    let auditor = id_token(&t, "agent3").await;
    let (s, v, _) = call(&t, "GET", "/api/v1/audit/out-of-band", Some(&auditor), None).await;
    assert_eq!(v["error"]["code"], "unsupported", "{v}");
    assert!(s.is_client_error(), "{s}");
    let tier1 = id_token(&t, "agent1").await;
    let (s, v, _) = call(&t, "GET", "/api/v1/audit/out-of-band", Some(&tier1), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "not_permitted_for_role");
}

/// The schedule: a console reset raises one signed, pseudonymous alert (however many scans read it), and a reset
/// through the portal raises none.
#[tokio::test]
async fn the_schedule_alerts_a_console_reset_once_and_not_the_portals_reset() {
    use crate::alarms::{alerts, receiver, webhook};
    let hook = receiver().await;
    let sink = webhook(&hook);
    let t = start_with(move |o| {
        o.alerts = Some(sink);
        o.out_of_band = Some(fctr_wiring::OutOfBandSchedule {
            every: std::time::Duration::from_millis(150),
            lookback: std::time::Duration::from_secs(3600),
            tolerance: std::time::Duration::from_secs(300),
        });
    })
    .await;
    portal_reset_then_console_reset(&t).await;
    let got = alerts(&hook, 1).await;
    assert_eq!(got[0]["rule"], "out_of_band_change", "{:?}", got[0]);
    assert_eq!(got[0]["change"]["action"], "reset_password");
    assert_eq!(got[0]["change"]["finding"], "outside_gate");
    assert!(
        got[0]["change"]["admin"].is_string(),
        "the admin by pseudonym"
    );
    // Several more scans read the same log: nothing more is sent.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let all = hook.received_requests().await.unwrap();
    assert_eq!(all.len(), 1, "one alert, for Bob's console reset only");
    let raised = t
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == fctr_ports::EventKind::AlertRaised)
        .count();
    assert_eq!(raised, 1, "audited once");
}

/// A change log reader that parks every read until released, reporting each entry.
struct ParkedFeed {
    inner: std::sync::Arc<dyn fctr_ports::ChangeFeed>,
    entered: tokio::sync::mpsc::UnboundedSender<()>,
    release: std::sync::Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl fctr_ports::ChangeFeed for ParkedFeed {
    async fn changes(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<fctr_ports::IdpChange>, fctr_ports::PortError> {
        let _ = self.entered.send(());
        self.release.acquire().await.unwrap().forget();
        self.inner.changes(since, until).await
    }
    fn own_client_id(&self) -> Option<String> {
        self.inner.own_client_id()
    }
}

/// Reports are expensive (up to a week of both logs): three auditors asking at the same moment, two reach the
/// IdP's log while the third waits its turn; all three are answered once the first ones finish.
#[tokio::test]
async fn at_most_two_reports_read_the_logs_at_once() {
    let (tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let r = release.clone();
    let t = std::sync::Arc::new(
        start_with(move |o| {
            o.wrap_feed = Some(Box::new(move |inner| {
                std::sync::Arc::new(ParkedFeed {
                    inner,
                    entered: tx,
                    release: r,
                }) as std::sync::Arc<dyn fctr_ports::ChangeFeed>
            }));
        })
        .await,
    );
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let t = t.clone();
        let mut b = t.sign_in("agent3").await;
        tasks.push(tokio::spawn(async move {
            t.get(&mut b, "/audit/out-of-band?since=1h").await.status
        }));
    }
    for _ in 0..2 {
        tokio::time::timeout(std::time::Duration::from_secs(10), entered.recv())
            .await
            .expect("a report reached the log")
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(entered.try_recv().is_err(), "the third waits for a turn");
    release.add_permits(3);
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert!(
        entered.try_recv().is_ok(),
        "the third read the log after a turn freed"
    );
}
