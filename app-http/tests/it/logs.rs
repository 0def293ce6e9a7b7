//! The portal's logs at TRACE over a whole flow hold no PII, token, cookie, CSRF token, code or one-time secret.

use crate::api::{call, id_token};
use crate::helpers::*;
use axum::http::StatusCode;
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

#[tokio::test]
async fn trace_logs_over_a_full_flow_hold_no_pii_or_secrets() {
    let cap = Capture::default();
    let writer = cap.clone();
    // Everything at TRACE, the portal's dependencies included, except the fake IdP (it is the other side of
    // the wire and plays a real org, which logs what it likes).
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
    let mut b = t.sign_in("agent2").await;
    let tok = id_token(&t, "agent2").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let (s, card_json, _) = call(
        &t,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (card, _) = t.verified(&mut b, "alice").await;
    let csrf = b.csrf.clone();
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = between(&r.body, "id=\"one-time-secret\" class=\"one-time\">", "<")
        .unwrap()
        .to_owned();
    // A TOTP code, and a wrong one, for bob.
    let bob_card = t.find(&mut b, "bob@example.com").await;
    let factor = t.factor_id("bob", "token:software:totp");
    let v = t.send_push(&mut b, &bob_card, &factor).await;
    let code = t.demo.fake.state().totp_now("bob").unwrap();
    let wrong = if code == "987654" { "987655" } else { "987654" };
    let _ = t
        .post(
            &mut b,
            &format!("{v}/code"),
            &[("csrf", &csrf), ("code", wrong)],
        )
        .await;
    let r = t
        .post(
            &mut b,
            &format!("{v}/code"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // A forged request and a bad bearer token: the refusals are logged too.
    let _ = t
        .post_with(
            &mut b,
            "/search",
            &[("csrf", "forged"), ("q", "carol")],
            Some(PUBLIC),
        )
        .await;
    let _ = call(&t, "GET", "/api/v1/users/x", Some("not.a.jwt"), None).await;

    let session = b.session().unwrap();
    let mut canaries: Vec<(String, &str)> = vec![
        (session, "session cookie"),
        (b.csrf.clone(), "CSRF token"),
        (tok.clone(), "bearer token"),
        (secret, "one-time secret"),
        (code, "TOTP code"),
        (wrong.to_owned(), "wrong TOTP code"),
        ("alice@example.com".into(), "caller e-mail"),
        ("bob@example.com".into(), "caller e-mail"),
    ];
    for k in ["display_name", "phone"] {
        if let Some(v) = card_json[k].as_str() {
            canaries.push((v.to_owned(), k));
        }
    }
    drop(_guard);
    let logs = String::from_utf8_lossy(&cap.0.lock().unwrap()).into_owned();
    assert!(logs.len() > 1000, "the capture works: {} bytes", logs.len());
    assert!(logs.contains("CSRF"), "refusals are logged");
    // Six digits also occur inside timestamps and ids: look for a code as a value of its own.
    let mut needles: Vec<(String, &str)> = Vec::new();
    for (value, what) in canaries {
        assert!(!value.is_empty());
        if value.len() <= 8 && value.chars().all(|c| c.is_ascii_digit()) {
            for n in [
                format!("\"{value}\""),
                format!("={value}"),
                format!(" {value} "),
            ] {
                needles.push((n, what));
            }
        } else {
            needles.push((value, what));
        }
    }
    for (value, what) in &needles {
        if let Some(i) = logs.find(value.as_str()) {
            let from = logs[..i].rfind('\n').map_or(0, |n| n + 1);
            let to = logs[i..].find('\n').map_or(logs.len(), |n| i + n);
            panic!("{what} in the logs: {}", &logs[from..to]);
        }
    }
}
