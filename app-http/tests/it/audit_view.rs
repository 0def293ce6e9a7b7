//! The audit view for auditors: "events about a caller" pseudonymized on the server and leaking the typed login
//! nowhere, "you", paging and sorting, exports that match the view, the `view_audit` permission on every route,
//! and bad filter input answered with words, not a 500.

use crate::helpers::*;
use axum::http::StatusCode;
use chrono::Duration;
use fctr_ports::{AgentId, AuditEvent, EventKind, Outcome, PseudoId, Reason, SubjectId, TicketRef};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn subject_pseudo(t: &TestApp, handle: &str) -> PseudoId {
    let id = SubjectId::parse(t.demo.fake.fixtures().id_of(handle)).unwrap();
    t.demo.state.engine().pseudonymizer().subject(&id)
}

/// Every `href="…"` of a page.
fn hrefs(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| s.replace("&#38;", "&"))
        .collect()
}

/// The rows' times, in page order.
fn times(body: &str) -> Vec<String> {
    body.split("<tr>\n<td>")
        .skip(1)
        .filter_map(|s| s.split("</td>").next())
        .map(str::to_owned)
        .collect()
}

fn rel(body: &str, rel: &str) -> Option<String> {
    between(body, "href=\"", &format!("\" rel=\"{rel}\"")).map(|s| {
        s.rsplit("href=\"")
            .next()
            .unwrap_or(s)
            .replace("&#38;", "&")
    })
}

/// `n` synthetic events a minute apart (newest one minute ago), all naming ticket `ticket`, every third one
/// denied, by one synthetic agent.
async fn seed(t: &TestApp, n: usize, ticket: &str) {
    let engine = t.demo.state.engine();
    let agent = engine
        .pseudonymizer()
        .agent(&AgentId::parse("synthetic-agent").unwrap());
    let now = t.clock.get();
    for i in 0..n {
        let at = now - Duration::minutes(i64::try_from(i).unwrap() + 1);
        let outcome = if i % 3 == 0 {
            Outcome::Denied
        } else {
            Outcome::Success
        };
        let mut e = AuditEvent::new(engine.tenant().clone(), at, EventKind::Lookup, outcome);
        e.agent = Some(agent.clone());
        e.ticket = Some(TicketRef::parse(ticket).unwrap());
        if outcome == Outcome::Denied {
            e.reason = Some(Reason::NotPermittedForRole);
        }
        t.demo.state.audit().append(e).await.unwrap();
    }
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[tokio::test]
async fn events_about_a_caller_by_login_leak_the_login_nowhere() {
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
    let _guard = tracing::subscriber::set_default(subscriber);

    let t = start().await;
    let mut b2 = t.sign_in("agent2").await;
    // Two caller cards for alice, one for bob: lookups about them.
    for who in ["alice", "bob", "alice"] {
        let card = t.find(&mut b2, &format!("{who}@example.com")).await;
        assert_eq!(t.get(&mut b2, &card).await.status, StatusCode::OK);
    }
    let alice = subject_pseudo(&t, "alice");
    let bob = subject_pseudo(&t, "bob");
    // Everything logged and audited before the auditor types the login is not what this test checks.
    let logged_before = cap.0.lock().unwrap().len();

    let mut b3 = t.sign_in("agent3").await;
    let csrf = b3.csrf.clone();
    let r = t
        .post(
            &mut b3,
            "/audit/find",
            &[
                ("csrf", csrf.as_str()),
                ("q", "Alice@Example.com"),
                ("kind", "lookup"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to = r.location();
    let want: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("kind", "lookup")
        .append_pair("target", alice.as_str())
        .finish();
    assert_eq!(
        to,
        format!("/audit?{want}"),
        "other filters kept, pseudonym only"
    );

    let page = t.get(&mut b3, &to).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(alice.as_str()), "{}", page.body);
    assert!(
        !page.body.contains(bob.as_str()),
        "bob's events are filtered out"
    );
    // agent2's two lookups of alice and agent3's own lookup for the audit.
    assert!(page.body.contains("Events 1&ndash;3 of 3"), "{}", page.body);
    assert!(page.body.contains("<td>Caller looked up</td>"));

    // The export of the same filter holds exactly alice's lookups, as the log has them.
    let csv_link = between(&page.body, "href=\"/audit/export.json", "\"").unwrap();
    let export = t
        .get(
            &mut b3,
            &format!("/audit/export.json{}", csv_link.replace("&#38;", "&")),
        )
        .await;
    assert_eq!(export.status, StatusCode::OK);
    let doc = json(&export);
    let events = doc["events"].as_array().unwrap();
    let in_log = t
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.target.as_ref() == Some(&alice) && e.kind == EventKind::Lookup)
        .count();
    assert_eq!(events.len(), in_log);
    assert_eq!(events.len(), 3);
    for e in events {
        assert_eq!(e["target"], alice.as_str());
        assert_eq!(e["kind"], "lookup");
    }
    assert_eq!(doc["filter"]["target"], alice.as_str());

    // The lookup for the audit is itself audited, as a lookup by the auditor about alice.
    let events = t.audit_events().await;
    let auditor_lookup = events
        .iter()
        .filter(|e| e.kind == EventKind::Lookup && e.target.as_ref() == Some(&alice))
        .count();
    assert_eq!(auditor_lookup, 3);

    // The login typed is in no audit event, no URL, no page and no log line.
    let all = serde_json::to_string(&events).unwrap().to_lowercase();
    assert!(!all.contains("alice@example.com"), "in the audit log");
    for u in hrefs(&page.body).iter().chain([&to]) {
        assert!(!u.to_lowercase().contains("alice"), "in a URL: {u}");
    }
    assert!(!page.body.to_lowercase().contains("alice@example.com"));
    assert!(!export.body.to_lowercase().contains("alice"));
    let logs = String::from_utf8(cap.0.lock().unwrap()[logged_before..].to_vec()).unwrap();
    assert!(!logs.is_empty(), "the capture saw the requests");
    assert!(!logs.to_lowercase().contains("alice"), "in the logs");
}

#[tokio::test]
async fn you_and_agent_me() {
    let t = start().await;
    let mut b2 = t.sign_in("agent2").await;
    let card = t.find(&mut b2, "carol@example.com").await;
    assert_eq!(t.get(&mut b2, &card).await.status, StatusCode::OK);
    let mut b3 = t.sign_in("agent3").await;
    let r = t.get(&mut b3, "/audit?agent=me").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("<strong>you</strong>"), "{}", r.body);
    let j = t.get(&mut b3, "/audit/export.json?agent=me").await;
    let doc = json(&j);
    let events = doc["events"].as_array().unwrap();
    assert!(!events.is_empty());
    let me = events[0]["agent"].as_str().unwrap().to_owned();
    assert!(events.iter().all(|e| e["agent"] == me.as_str()));
    assert_eq!(
        doc["filter"]["agent"],
        me.as_str(),
        "the export names the pseudonym, not 'me'"
    );
    // agent2's events are not agent3's: the unfiltered view shows agent2 by pseudonym, not as "you".
    let all = t.get(&mut b3, "/audit/export.json").await;
    let agent2 = json(&all)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["agent"].as_str())
        .find(|a| *a != me)
        .unwrap()
        .to_owned();
    assert!(!r.body.contains(&agent2));
    let r = t.get(&mut b3, &format!("/audit?agent={agent2}")).await;
    assert!(r.body.contains("<td>Caller looked up</td>"), "{}", r.body);
    assert!(!r.body.contains("<strong>you</strong>"), "{}", r.body);
}

#[tokio::test]
async fn pages_are_disjoint_cover_everything_and_follow_the_order() {
    let t = start().await;
    seed(&t, 120, "HELP-7").await;
    let mut b3 = t.sign_in("agent3").await;

    for (sort, newest_first) in [("", true), ("&sort=oldest", false)] {
        let mut link = Some(format!("/audit?ticket=HELP-7{sort}"));
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(l) = link {
            let r = t.get(&mut b3, &l).await;
            assert_eq!(r.status, StatusCode::OK, "{l}: {}", r.body);
            assert!(r.body.contains("of 120"), "{}", r.body);
            let ts = times(&r.body);
            assert!(ts.len() <= 50);
            seen.extend(ts);
            pages += 1;
            link = rel(&r.body, "next");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen.len(), 120);
        let mut sorted = seen.clone();
        sorted.sort();
        if newest_first {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "in order across pages");
        sorted.dedup();
        assert_eq!(sorted.len(), 120, "disjoint pages");
    }
    // Page 3 links back to page 2.
    let r = t.get(&mut b3, "/audit?ticket=HELP-7&page=3").await;
    assert_eq!(times(&r.body).len(), 20);
    assert_eq!(rel(&r.body, "prev").unwrap(), "/audit?ticket=HELP-7&page=2");
    assert!(rel(&r.body, "next").is_none());
}

#[tokio::test]
async fn exports_match_the_filtered_view_and_are_attachments() {
    let t = start().await;
    seed(&t, 75, "HELP-7").await;
    seed(&t, 4, "-123").await;
    let mut b3 = t.sign_in("agent3").await;
    let r = t.get(&mut b3, "/audit?ticket=HELP-7&outcome=denied").await;
    assert!(r.body.contains("of 25"), "{}", r.body);
    let view = times(&r.body);
    assert_eq!(view.len(), 25);

    let csv = t
        .get(&mut b3, "/audit/export.csv?ticket=HELP-7&outcome=denied")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"fctr-audit-")
    );
    assert_eq!(csv.header("cache-control"), Some("no-store"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "at,kind,kind_label,outcome,outcome_label,agent,target,factor,action,reason,helpdesk_ticket"
    );
    assert_eq!(lines.len(), 26);
    for l in &lines[1..] {
        assert!(
            l.contains(",denied,") && l.ends_with(",not_permitted_for_role,HELP-7"),
            "{l}"
        );
    }

    let j = t
        .get(&mut b3, "/audit/export.json?ticket=HELP-7&outcome=denied")
        .await;
    assert_eq!(j.status, StatusCode::OK);
    assert!(j.header("content-disposition").unwrap().contains(".json\""));
    assert_eq!(j.header("cache-control"), Some("no-store"));
    let doc = json(&j);
    assert_eq!(doc["count"], 25);
    assert_eq!(doc["truncated"], false);
    let events = doc["events"].as_array().unwrap();
    // The same events as the view, newest first: times match the page's, to the second.
    let json_times: Vec<String> = events
        .iter()
        .map(|e| {
            let at = e["at"].as_str().unwrap();
            format!("{} {} UTC", &at[..10], &at[11..19])
        })
        .collect();
    assert_eq!(json_times, view);
    assert!(
        events
            .iter()
            .all(|e| e["outcome"] == "denied" && e["helpdesk_ticket"] == "HELP-7")
    );

    // A ticket starting with a dash is escaped for spreadsheets.
    let csv = t.get(&mut b3, "/audit/export.csv?ticket=-123").await;
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 5, "{}", csv.body);
    assert!(
        lines[1..].iter().all(|l| l.ends_with(",'-123")),
        "{}",
        csv.body
    );

    // The page links to both exports with its filter.
    assert!(
        r.body
            .contains("href=\"/audit/export.csv?outcome=denied&#38;ticket=HELP-7\"")
    );
    assert!(
        r.body
            .contains("href=\"/audit/export.json?outcome=denied&#38;ticket=HELP-7\"")
    );
}

#[tokio::test]
async fn view_find_and_exports_need_view_audit() {
    let t = start().await;
    let mut b2 = t.sign_in("agent2").await;
    let before = t.denials(Reason::NotPermittedForRole).await.len();
    for path in [
        "/audit",
        "/audit/export.csv",
        "/audit/export.json",
        "/audit?kind=bogus",
    ] {
        let r = t.get(&mut b2, path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.body.contains("Your role does not allow this."), "{path}");
        assert!(r.header("content-disposition").is_none(), "{path}");
    }
    let csrf = b2.csrf.clone();
    let r = t
        .post(
            &mut b2,
            "/audit/find",
            &[("csrf", csrf.as_str()), ("q", "alice@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.denials(Reason::NotPermittedForRole).await.len(),
        before + 5
    );
    // The refused find did not look anybody up.
    let alice = subject_pseudo(&t, "alice");
    assert!(
        !t.audit_events()
            .await
            .iter()
            .any(|e| e.target.as_ref() == Some(&alice))
    );
}

#[tokio::test]
async fn bad_filter_input_is_a_clear_400_never_a_500() {
    let t = start().await;
    let mut b3 = t.sign_in("agent3").await;
    let long = "k".repeat(300);
    for (q, words) in [
        ("since=yesterday", "The start time is not a time"),
        ("until=2024-13-45T99:00", "The end time is not a time"),
        ("kind=nope", "Unknown event kind"),
        ("outcome=maybe", "Unknown outcome"),
        ("agent=alice%40example.com", "must be a pseudonym"),
        ("target=k1:short", "must be a pseudonym"),
        (
            "ticket=%3Cscript%3Ealert(1)%3C/script%3E",
            "not of a ticket",
        ),
        ("sort=sideways", "Unknown sort order"),
        ("page=99999", "out of range"),
        (
            "since=2024-05-02T00:00&until=2024-05-01T00:00",
            "before the end time",
        ),
        (&format!("agent={long}"), "too long"),
    ] {
        for path in ["/audit", "/audit/export.csv", "/audit/export.json"] {
            let r = t.get(&mut b3, &format!("{path}?{q}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}?{q}: {}", r.body);
            assert!(r.body.contains(words), "{path}?{q}: {}", r.body);
            assert!(!r.body.contains("<script>"), "escaped");
            assert!(
                !r.body.contains(&long),
                "an over-long value is not shown back"
            );
        }
    }
    // Malformed percent-encoding and repeated keys do not reach a 500 either.
    let r = t
        .get(&mut b3, "/audit?kind=%ZZ&kind=login&kind=lookup")
        .await;
    assert!(
        r.status.is_client_error() || r.status == StatusCode::OK,
        "{}",
        r.status
    );

    // Find: not a login nor an id, and a login nobody has; the text is not shown back.
    let csrf = b3.csrf.clone();
    let r = t
        .post(
            &mut b3,
            "/audit/find",
            &[("csrf", csrf.as_str()), ("q", "Alice Anderson")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("Enter the caller&#39;s login")
            || r.body.contains("Enter the caller's login"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("Anderson"));
    let r = t
        .post(
            &mut b3,
            "/audit/find",
            &[("csrf", csrf.as_str()), ("q", "nobody.canary@example.com")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.body.contains("No single user has that login"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("canary"));
    assert!(
        !serde_json::to_string(&t.audit_events().await)
            .unwrap()
            .contains("canary")
    );
}
