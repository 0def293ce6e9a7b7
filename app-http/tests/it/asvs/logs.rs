//! ASVS at the portal: log injection: planted CR/LF, ANSI and forged JSON never break a log line or the audit log.

use super::*;

#[derive(Clone, Default)]
pub(super) struct Capture(pub(super) Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The production log format (JSON, current span) at TRACE for everything but the fake IdP, into a buffer.
pub(super) fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
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
    (cap, tracing::subscriber::set_default(subscriber))
}

/// CR, LF, an ANSI colour sequence (ESC and the one-byte C1 CSI), and text that would close a JSON string and
/// open a forged log record, behind a marker naming where it was planted.
fn evil(marker: &str) -> String {
    format!(
        "{marker}\r\n{{\"level\":\"ERROR\",\"fields\":{{\"message\":\"forged\"}}}}\u{1b}[31mred\u{9b}0m\"}}"
    )
}

/// Every line one JSON object with a real level, no raw control character anywhere, no forged record.
fn assert_log_lines_are_whole(logs: &str) {
    assert!(logs.len() > 1000, "the capture works: {} bytes", logs.len());
    for (i, c) in logs.char_indices() {
        assert!(
            c == '\n' || !c.is_control(),
            "raw control character U+{:04X} in the logs: {}",
            u32::from(c),
            &logs[logs[..i].rfind('\n').map_or(0, |n| n + 1)..]
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not one JSON object ({e}): {line}"));
        let level = v["level"].as_str().unwrap_or_default();
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "{line}"
        );
        assert_ne!(v["fields"]["message"], "forged", "a forged record: {line}");
    }
}

/// 16.4.1: CR/LF, ANSI escapes and forged JSON planted in every agent-controlled input that could reach a log
/// (search query on the page and the API, request path, User-Agent, X-Request-Id, form fields, the sign-in
/// `return_to`, a bearer token) and in the caller's name at the IdP. Over the whole flow every log line stays one
/// JSON object with the text escaped, the PII-bearing inputs (query, name) never appear, and the audit events
/// hold no raw control character and none of it either.
#[tokio::test]
async fn planted_cr_lf_ansi_and_forged_json_never_break_a_log_line_or_the_audit_log() {
    let (cap, guard) = capture_logs();
    let t = start().await;
    assert!(
        t.demo
            .fake
            .state()
            .set_user_name("alice", &evil("NAMEFIRST"), &evil("NAMELAST"))
    );
    let mut b = t.sign_in("agent2").await;
    let csrf = b.csrf.clone();
    // Search query, as a form field and as API JSON.
    let r = t
        .post(
            &mut b,
            "/search",
            &[("csrf", &csrf), ("q", &evil("QUERYMARK"))],
        )
        .await;
    assert!(
        r.status == StatusCode::OK || r.body.contains("invalid_input"),
        "{}",
        r.body
    );
    let tok = id_token(&t, "agent2").await;
    let (s, _, _) = call(
        &t,
        "POST",
        "/api/v1/users/search",
        Some(&tok),
        Some(serde_json::json!({"query": evil("QUERYMARK")})),
    )
    .await;
    assert!(s.is_success() || s.is_client_error(), "{s}");
    // The caller whose name carries the payload: card, verification, action.
    let (card, v) = t.verified(&mut b, "alice").await;
    let page = t.get(&mut b, &card).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("\"level\":\"ERROR\""),
        "the page escapes quotes"
    );
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/clear_sessions"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Form fields: a forged CSRF token, a code, a factor id.
    let _ = t
        .post(
            &mut b,
            "/search",
            &[("csrf", &evil("CSRFMARK")), ("q", "x")],
        )
        .await;
    let _ = t
        .post(
            &mut b,
            &format!("{v}/code"),
            &[("csrf", &csrf), ("code", &evil("CODEMARK"))],
        )
        .await;
    let _ = t
        .post(
            &mut b,
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", &evil("FACTORMARK"))],
        )
        .await;
    // Request paths and the sign-in return_to (percent-encoded: a raw CR cannot be in a URI).
    let enc =
        |m: &str| url::form_urlencoded::byte_serialize(evil(m).as_bytes()).collect::<String>();
    for path in [
        format!("/callers/{}", enc("PATHMARK")),
        format!("/verifications/{}", enc("PATHMARK")),
        format!("/no/such/{}", enc("PATHMARK")),
        format!("/api/v1/users/{}", enc("PATHMARK")),
        format!("/auth/login?return_to={}", enc("RETURNMARK")),
    ] {
        let _ = t.get(&mut b, &path).await;
    }
    // Headers: what a header may carry (no CR, LF or ESC; a C1 CSI in UTF-8 and quotes are possible).
    let ua = axum::http::HeaderValue::from_bytes(
        "UAMARK\"}{\"level\":\"ERROR\",\"fields\":{\"message\":\"forged\"}} \u{9b}31m".as_bytes(),
    )
    .unwrap();
    let rid =
        axum::http::HeaderValue::from_bytes("RIDMARK\"}{\"level\":\"ERROR\"}\u{9b}31m".as_bytes())
            .unwrap();
    for (ua, rid) in [
        (ua.clone(), rid.clone()),
        (
            ua.clone(),
            axum::http::HeaderValue::from_static("RIDMARK\"}{\"level\":\"ERROR\"}"),
        ),
        // Finding 7 of issue 11: a client-chosen request id that is PII.
        (
            ua,
            axum::http::HeaderValue::from_static("alice@example.com"),
        ),
    ] {
        let req = Request::post("/search")
            .header("cookie", b.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", PUBLIC)
            .header("user-agent", ua)
            .header("x-request-id", rid)
            .body(Body::from(format!("csrf={}&q=bob%40example.com", b.csrf)))
            .unwrap();
        assert_eq!(t.send(req).await.status, StatusCode::OK);
    }
    let _ = call(
        &t,
        "GET",
        "/api/v1/users/x",
        Some("BEARERMARK\"}{\"level\":\"ERROR\"}"),
        None,
    )
    .await;
    let (s, _, _) = call(&t, "GET", "/api/v1/users/x", Some(ASVS_CANARY), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    drop(guard);

    let logs = String::from_utf8_lossy(&cap.0.lock().unwrap()).into_owned();
    assert_log_lines_are_whole(&logs);
    // The request id is the server's: a client-sent X-Request-Id reaches no log line at all.
    assert!(!logs.contains("RIDMARK"), "a client request id was logged");
    for pii in [
        "QUERYMARK",
        "NAMEFIRST",
        "NAMELAST",
        "CODEMARK",
        "alice@example.com",
        ASVS_CANARY,
    ] {
        assert!(!logs.contains(pii), "{pii} reached the logs");
    }
    let events = t.audit_events().await;
    assert!(events.len() > 5, "the flow was audited");
    for e in events {
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.chars().any(char::is_control), "{json}");
        for pii in [
            "QUERYMARK",
            "NAMEFIRST",
            "NAMELAST",
            "CODEMARK",
            "CSRFMARK",
            "RIDMARK",
            "alice@example.com",
            "\u{9b}",
        ] {
            assert!(!json.contains(pii), "{pii} in an audit event: {json}");
        }
    }
}
