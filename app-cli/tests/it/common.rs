//! Running the real `fctr` binary, a `fctr mock-idp okta|entra` child, the fake's control API, and audit files.

use fctr_core::Pseudonymizer;
use fctr_ports::{
    AgentId, AuditEvent, AuditLog, EventKind, KeyId, Month, Outcome, SecretString, TenantId,
    UsageKind, UsageLedger, UsageRecord,
};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a run printed and returned.
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.out, self.err
        )
    }
}

/// A command for the binary with a clean environment (no configuration, token or agent from the caller's shell).
pub fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fctr"));
    c.args(args);
    for v in [
        "FCTR_CONFIG",
        "FCTR_OKTA_TOKEN",
        "FCTR_ENTRA_CLIENT_SECRET",
        "FCTR_AGENT_ID",
        "FCTR_ROLE",
        "FCTR_AUDIT_SQLITE_PATH",
    ] {
        c.env_remove(v);
    }
    c
}

/// Runs to completion, with no standard input, killing it after `limit`.
pub fn run_with(mut c: Command, stdin: Option<&str>, limit: Duration) -> Run {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn fctr");
    if let Some(text) = stdin {
        let mut i = child.stdin.take().expect("stdin");
        i.write_all(text.as_bytes()).expect("write stdin");
    }
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let code = wait_for(&mut child, limit);
    Run {
        code,
        out: t_out.join().unwrap_or_default(),
        err: t_err.join().unwrap_or_default(),
    }
}

/// Waits for a child to exit, killing it (and failing the test) after `limit`.
pub fn wait_for(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fctr did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `fctr ARGS` (60 s at most).
pub fn fctr(args: &[&str]) -> Run {
    run_with(cmd(args), None, Duration::from_secs(60))
}

/// A `fctr mock-idp okta` (or `entra`) child on a random loopback port, killed on drop.
pub struct Mock {
    child: Child,
    pub url: String,
    /// What `mock-idp --json` printed (credentials, users).
    pub info: serde_json::Value,
}

impl Mock {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_provider("okta", extra)
    }

    /// A `fctr mock-idp entra` child.
    pub fn start_entra() -> Self {
        Self::start_provider("entra", &[])
    }

    pub fn start_provider(provider: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--json", "mock-idp", provider, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mock-idp");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the child never blocks on a full pipe.
            let mut rest = String::new();
            let _ = r.read_to_string(&mut rest);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("mock-idp printed nothing within 60 s");
            }
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("mock-idp JSON line");
        let url = v["base_url"].as_str().expect("base_url").to_owned();
        Self {
            child,
            url,
            info: v,
        }
    }

    /// `GET` or `POST` on the fake's control API; returns status and JSON body.
    pub fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        http(method, &format!("{}{path}", self.url), body)
    }

    /// The current TOTP code of a fixture user.
    pub fn totp(&self, user_id: &str) -> String {
        let (st, v) = self.control("GET", &format!("/_fake/totp/{user_id}"), None);
        assert_eq!(st, 200, "{v}");
        v["passCode"].as_str().expect("passCode").to_owned()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client for loopback (the fake's control API), with a 10 s timeout.
pub fn http(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status: u16 = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let (head, payload) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    (
        status,
        serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
    )
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

/// The pseudonym of an agent under a fixed test key.
pub fn agent_pseudo(id: &str) -> fctr_ports::PseudoId {
    let p = Pseudonymizer::new(
        KeyId::parse("k1").unwrap(),
        &SecretString::from("test pseudonymization key, 32+ bytes long".to_owned()),
    )
    .unwrap();
    p.agent(&AgentId::parse(id).unwrap())
}

/// An audit file with `n` `acme` events (one per minute from 2026-11-01T12:00Z, kinds cycling) and two usage
/// rows in 2026-11.
pub async fn audit_file(dir: &Path, n: u32) -> PathBuf {
    let path = dir.join("audit.sqlite");
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    fill(&store, n).await;
    store.close().await;
    path
}

/// Appends the events and usage rows [`audit_file`] holds to any store.
pub async fn fill<S: AuditLog + UsageLedger>(store: &S, n: u32) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let kinds = [
        EventKind::Lookup,
        EventKind::ChallengeStarted,
        EventKind::GrantIssued,
    ];
    for i in 0..n {
        let at = start + chrono::Duration::minutes(i.into());
        let mut e = AuditEvent::new(
            tenant("acme"),
            at,
            kinds[(i % 3) as usize],
            Outcome::Success,
        );
        e.agent = Some(agent_pseudo("agent2"));
        store.append(e).await.unwrap();
    }
    for kind in [UsageKind::Verification, UsageKind::Action] {
        store
            .record(UsageRecord {
                month: Month::parse("2026-11").unwrap(),
                tenant: tenant("acme"),
                agent: agent_pseudo("agent2"),
                kind,
                count: 3,
            })
            .await
            .unwrap();
    }
}

/// Edits one stored event behind the store's back, as an attacker with file access would.
pub async fn tamper(path: &Path, seq: u32) {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let n = sqlx::query(
        "UPDATE audit_events SET event = json_set(event, '$.outcome', 'denied') WHERE tenant = 'acme' AND seq = ?1",
    )
    .bind(i64::from(seq))
    .execute(&mut c)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(n, 1);
    c.close().await.unwrap();
}
