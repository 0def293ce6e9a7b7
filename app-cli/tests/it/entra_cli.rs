//! `fctr lookup` and `fctr verify` with a configuration whose identity provider is `[entra]`, against a
//! `fctr mock-idp entra` child (fixtures: testkit/FIXTURES-entra.md): the same engine, policy and audit as on
//! Okta, through `Arc<dyn IdentityProvider>`.

use crate::common::*;
use crate::contract_entra::entra_config;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ALICE: &str = "93e2e008-6093-4412-84d3-214f6379295a";
const BOB: &str = "6aa02773-eff6-4b5c-8d21-22df5f42cc39";
const PSEUDO_KEY: &str = "an entra pseudonymization key of 32+ bytes";

/// A tempdir with an `[entra]` configuration for `mock` (with or without `[entra.connector]`), a pseudonymization
/// key from the environment and an audit file in the same directory.
struct Setup {
    mock: Mock,
    dir: tempfile::TempDir,
    cfg: PathBuf,
}

impl Setup {
    fn new(connector: bool) -> Self {
        Self::with(connector, "")
    }

    fn with(connector: bool, extra: &str) -> Self {
        let mock = Mock::start_entra();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.sqlite");
        let cfg = entra_config(
            dir.path(),
            &mock,
            connector,
            &format!(
                "\n[pseudonymization]\nkey_id = \"k1\"\nkey_env = \"CFG_PSEUDO_KEY\"\n\n\
                 [audit]\nsqlite_path = \"{}\"\n{extra}",
                db.display()
            ),
        );
        Self { mock, dir, cfg }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("audit.sqlite")
    }

    /// `fctr --config CFG ARGS --agent-id agent2@example.com`, with the fake tenant's secrets in the environment
    /// the configuration names.
    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_as("agent2@example.com", args)
    }

    /// As [`Setup::cmd`], for another agent.
    fn cmd_as(&self, agent: &str, args: &[&str]) -> Command {
        let mut all = vec!["--config", self.cfg.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--agent-id", agent]);
        let mut c = cmd(&all);
        c.env(
            "CFG_ENTRA_SECRET",
            self.mock.info["app"]["client_secret"].as_str().unwrap(),
        )
        .env(
            "CFG_MFA_SECRET",
            fctr_testkit::entra::DEFAULT_MFA_CLIENT_SECRET,
        )
        .env("CFG_PSEUDO_KEY", PSEUDO_KEY);
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        run_with(self.cmd(args), stdin, Duration::from_secs(90))
    }

    /// The fake's current TOTP code of a user (the secret behind their Authenticator and OATH app).
    fn totp(&self, user: &str) -> String {
        let (st, v) = self
            .mock
            .control("GET", &format!("/_fake/totp/{user}"), None);
        assert_eq!(st, 200, "{v}");
        v["code"].as_str().expect("code").to_owned()
    }

    fn effects(&self, user: &str) -> serde_json::Value {
        let (st, v) = self
            .mock
            .control("GET", &format!("/_fake/users/{user}/effects"), None);
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Waits for a push to `upn` on the fake's phones; returns its session id and the pending push.
    fn wait_push(&self, upn: &str) -> (String, serde_json::Value) {
        let start = Instant::now();
        loop {
            let (_, pushes) = self.mock.control("GET", "/_fake/pushes", None);
            if let Some(p) = pushes
                .as_array()
                .and_then(|a| a.iter().find(|p| p["upn"] == upn))
            {
                return (p["sessionId"].as_str().unwrap().to_owned(), p.clone());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no push to {upn}: {pushes}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `verify ARGS` with `stdin` (codes, one per line), waits for "Push sent", answers the push to `upn` on
    /// the fake phone (`body`), and returns the whole run.
    fn verify_answering_push(&self, args: &[&str], stdin: &str, upn: &str, body: &str) -> Run {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let t_err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut text = String::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no `Push sent` line; so far:\n{text}"));
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("Push sent") {
                break;
            }
        }
        let (session, push) = self.wait_push(upn);
        assert!(
            push["number"].is_null(),
            "an Entra push has no number: {push}"
        );
        let (st, v) = self.mock.control(
            "POST",
            &format!("/_fake/pushes/{session}/answer"),
            Some(body),
        );
        assert_eq!(st, 200, "{v}");
        let code = wait_for(&mut child, Duration::from_secs(60));
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
            text.push_str(&line);
            text.push('\n');
        }
        Run {
            code,
            out: text,
            err: t_err.join().unwrap_or_default(),
        }
    }
}

/// The audit trail of a run: intact, and naming neither the caller nor the code.
fn audit_is_clean(db: &Path, secrets: &[&str]) -> String {
    let v = fctr(&["audit", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(v.code, 0, "{v:?}");
    let export = fctr(&["audit", "export", "--db", db.to_str().unwrap()]);
    assert_eq!(export.code, 0, "{export:?}");
    for s in secrets {
        assert!(!export.out.contains(s), "{s} in the audit log");
    }
    export.out
}

#[test]
fn entra_lookup_of_a_known_caller_prints_the_card() {
    let s = Setup::new(true);
    let r = s.run(&["lookup", "alice@example.com", "--show-pii"], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out.starts_with(&format!("alice@example.com  ({ALICE})")),
        "{r:?}"
    );
    assert!(r.out.contains("name:      Alice Anderson"), "{r:?}");
    assert!(
        r.out.contains("status:    active   target: standard"),
        "{r:?}"
    );
    let push = r
        .out
        .lines()
        .find(|l| l.trim_start().starts_with("push "))
        .expect("push factor");
    assert!(
        push.contains("microsoftAuthenticatorAuthenticationMethod") && push.ends_with("accepted"),
        "{push}"
    );
    // ...but a plain push alone can never verify her under the default policy, so nothing is recommended.
    assert!(!r.out.contains("<- recommended"), "{r:?}");
    assert!(
        r.out.contains("not accepted (factor_not_accepted)"),
        "sms: {r:?}"
    );
    // The role comes from agent2's Entra groups through the policy, as at portal sign-in.
    assert!(r.out.contains("actions (role tier2):"), "{r:?}");
    // What Entra cannot do is the engine's verdict from the adapter's capabilities.
    assert!(
        r.out
            .contains("reset_password                not allowed (unsupported)"),
        "{r:?}"
    );
    assert!(
        r.out
            .contains("unlock                        not allowed (unsupported)"),
        "{r:?}"
    );
    // The policy's own words about a push without number matching.
    assert!(
        r.out.contains(
            "Pushes from this identity provider carry no number to match, so a push counts only together with \
             a second, different factor."
        ),
        "{r:?}"
    );
    assert!(!r.err.contains("is not configured"), "{r:?}");

    // By object id, as JSON: bob's TOTP app is recommended, and his plain push would be a downgrade.
    let r = s.run(&["--json", "lookup", BOB, "--show-pii"], None);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["login"], "bob@example.com", "{v}");
    let factors = v["factors"].as_array().unwrap();
    let kind = |k: &str| factors.iter().find(|f| f["kind"] == k).unwrap().clone();
    assert_eq!(kind("totp")["recommended"], true, "{v}");
    assert_eq!(kind("push")["refusal"], "downgrade_refused", "{v}");
    let clear = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "clear_sessions")
        .unwrap()
        .clone();
    assert!(
        clear["explanation"].as_array().unwrap().len() > 1,
        "{clear}"
    );

    // Not a terminal, no --show-pii: nothing personal printed.
    let r = s.run(&["lookup", "alice@example.com"], None);
    assert_eq!(r.code, 0, "{r:?}");
    for pii in ["alice@example.com", "Alice", "5555550100", ALICE] {
        assert!(
            !r.out.contains(pii) && !r.err.contains(pii),
            "{pii} leaked: {r:?}"
        );
    }
}

#[test]
fn entra_unknown_callers_and_agents_say_what_to_do() {
    let s = Setup::new(true);
    let r = s.run(&["lookup", "nobody@example.com"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("no user has that login or e-mail"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
    let r = s.run(&["lookup", "00000000-0000-4000-8000-000000000000"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("No such user. (target_not_found)"), "{r:?}");
    assert!(
        r.err
            .contains("next: check the id, or look the caller up by login or e-mail"),
        "{r:?}"
    );
    let r = s.run(&["--json", "lookup", "nobody@example.com"], None);
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(v["exit"], 1, "{v}");
    // agent0 is in no fctr group: no role.
    let r = run_with(
        s.cmd_as("agent0@example.com", &["lookup", "alice@example.com"]),
        None,
        Duration::from_secs(90),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("map to no role"), "{r:?}");
    // An Okta-only flag is refused, not ignored.
    let r = s.run(
        &["lookup", "alice@example.com", "--api-token-env", "X"],
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("--api-token-env does not apply"), "{r:?}");
    // A wrong client secret: the tenant refuses it, exit 3, and the secret is not echoed.
    let mut c = s.cmd(&["lookup", "alice@example.com"]);
    c.env("CFG_ENTRA_SECRET", "not-the-secret~x");
    let r = run_with(c, None, Duration::from_secs(90));
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.err.contains("refused the credentials"), "{r:?}");
    assert!(r.err.contains("Entra client secret"), "{r:?}");
    assert!(!r.err.contains("not-the-secret"), "{r:?}");
}

#[test]
fn entra_verify_with_totp_then_clear_sessions() {
    let s = Setup::new(true);
    let code = s.totp(BOB);
    let r = s.run(
        &["verify", "bob@example.com", "--then", "clear_sessions"],
        Some(&format!("{code}\n")),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.out
            .contains("Ask the caller to read out the current totp code"),
        "{r:?}"
    );
    assert!(
        r.out
            .contains("VERIFIED: AAL2-capable authenticator verified"),
        "{r:?}"
    );
    assert!(
        r.out.contains("DONE: sign the user out everywhere."),
        "{r:?}"
    );
    assert!(!r.out.contains(&code) && !r.err.contains(&code), "{r:?}");
    let e = s.effects(BOB);
    assert_eq!(e["sessionsRevoked"], 1, "{e}");
    assert_eq!(e["otpSuccesses"], 1, "{e}");
    assert_eq!(e["pushesSent"], 0, "{e}");
    let export = audit_is_clean(&s.db(), &["bob", BOB, &code]);
    assert!(export.contains("\"kind\":\"grant_issued\""), "{export}");
    assert!(export.contains("\"kind\":\"action_outcome\""), "{export}");
}

#[test]
fn entra_wrong_codes_are_not_verified() {
    let s = Setup::new(true);
    let good: u32 = s.totp(BOB).parse().unwrap();
    let bad = format!("{:06}", (good + 500_000) % 1_000_000);
    let r = s.run(
        &[
            "verify",
            "bob@example.com",
            "--factor",
            "totp",
            "--then",
            "clear_sessions",
        ],
        Some(&format!("{bad}\n{bad}\n{bad}\n")),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("The code is wrong."), "{r:?}");
    assert!(
        !r.out.contains("VERIFIED:") && !r.out.contains("DONE"),
        "{r:?}"
    );
    assert_eq!(s.effects(BOB)["sessionsRevoked"], 0);
}

#[test]
fn entra_push_alone_is_not_enough_under_the_default_policy() {
    let s = Setup::new(true);
    // alice has only the Authenticator (plain push) and SMS: an approved push would be one factor of two and she
    // has no second factor that policy accepts, so the engine refuses before anything reaches her phone.
    let r = s.run(
        &["verify", "alice@example.com", "--then", "clear_sessions"],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("(not_enough_factors)"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
    assert!(
        !r.out.contains("Push sent") && !r.out.contains("VERIFIED:") && !r.out.contains("DONE"),
        "{r:?}"
    );
    let e = s.effects(ALICE);
    assert_eq!(e["pushesSent"], 0, "{e}");
    assert_eq!(e["sessionsRevoked"], 0, "{e}");
    audit_is_clean(&s.db(), &["alice", ALICE]);
}

/// A policy that wants two distinct factors of everyone (bob: TOTP first, then his plain push).
fn two_factor_policy(s: &Setup) -> std::path::PathBuf {
    let policy = s.dir.path().join("two.toml");
    std::fs::write(
        &policy,
        "version = 1\n[factors.default]\naccepted = [\"push\", \"totp\"]\nrequired = 2\n",
    )
    .unwrap();
    policy
}

#[test]
fn entra_push_denied_is_not_verified() {
    let s = Setup::new(true);
    let policy = two_factor_policy(&s);
    let code = s.totp(BOB);
    let r = s.verify_answering_push(
        &[
            "verify",
            "bob@example.com",
            "--policy",
            policy.to_str().unwrap(),
        ],
        &format!("{code}\n"),
        "bob@example.com",
        r#"{"action":"deny"}"#,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.err.contains(
            "NOT VERIFIED (rejected): The caller denied the push, or picked the wrong number."
        ),
        "{r:?}"
    );
    assert!(r.err.contains("next:"), "{r:?}");
    assert!(!r.out.contains("VERIFIED:"), "{r:?}");
}

#[test]
fn entra_totp_then_an_approved_push_as_the_second_factor() {
    let s = Setup::new(true);
    // bob proves his TOTP code first (a plain push ranks below it), then approves the push on his phone.
    let policy = two_factor_policy(&s);
    let code = s.totp(BOB);
    let r = s.verify_answering_push(
        &[
            "verify",
            "bob@example.com",
            "--policy",
            policy.to_str().unwrap(),
            "--then",
            "clear_sessions",
        ],
        &format!("{code}\n"),
        "bob@example.com",
        r#"{"action":"approve"}"#,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let order: Vec<usize> = [
        "Ask the caller to read out the current totp code",
        "factor approved (1 of 2); challenging the next factor",
        "Push sent (no number matching)",
        "VERIFIED: AAL2-capable authenticator verified",
        "DONE: sign the user out everywhere.",
    ]
    .iter()
    .map(|m| r.out.find(m).unwrap_or_else(|| panic!("{m}: {r:?}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{r:?}");
    let e = s.effects(BOB);
    assert_eq!(e["otpSuccesses"], 1, "{e}");
    assert_eq!(e["pushesSent"], 1, "{e}");
    assert_eq!(e["sessionsRevoked"], 1, "{e}");
    audit_is_clean(&s.db(), &["bob", BOB, &code]);
}

#[test]
fn entra_without_the_connector_looks_up_but_cannot_verify() {
    let s = Setup::new(false);
    let r = s.run(&["lookup", "alice@example.com"], None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.err.contains("note: [entra.connector] is not configured"),
        "{r:?}"
    );
    let r = s.run(&["verify", "alice@example.com"], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.err.contains("(factor_not_accepted)"), "{r:?}");
    assert!(r.err.contains("next:"), "{r:?}");
    assert_eq!(s.effects(ALICE)["pushesSent"], 0);
    // A file with both [okta] and [entra] is refused, as the portal refuses it.
    let both = Setup::with(
        true,
        "\n[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"X\"\n",
    );
    let r = both.run(&["lookup", "alice@example.com"], None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.err.contains("both sections are present"), "{r:?}");
}
