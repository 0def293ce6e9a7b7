//! The zero-data proof: the whole flow with canary values, then every byte fctr wrote is searched for them.
//!
//! Canaries: the caller's name, login, e-mail, phone and IdP user id, the agent's IdP user id, the Okta API token,
//! the pseudonymization key, and every one-time secret the flow produced (reset link, temporary password). The
//! process writes an SQLite audit log and usage ledger (with its WAL and shared-memory files) and a TRACE-level
//! JSON log of every fctr crate into one data directory; none of those bytes may contain a canary, raw or in a
//! common encoding (lowercase, uppercase, URL-encoded, base64 at any alignment). The work note a ticket system
//! received (ticket write-back) and every alert's webhook body (a "not me" alert, an out-of-band change found by the
//! schedule) are written beside them and scanned the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::Engine as _;
use fctr_core::NoteDelivery;
use fctr_core::policy::Policy;
use fctr_core::{Agent, Engine, Ports, Pseudonymizer, RequestContext};
use fctr_memory::{MemoryApprovalStore, MemoryGrantStore, MemoryRateLimiter};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::{
    Action, ActionKind, AgentId, AuditLog, AuditQuery, ExposeSecret, FactorKind, KeyId,
    SecretString, SubjectId, SystemClock, TenantId, TicketRef, TicketSink, TicketSystem, UserQuery,
    VerificationStatus,
};
use fctr_sqlite::{SqliteOptions, SqliteStore};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions, FixtureUser};
use fctr_tickets::{TicketAdapter, TicketAuth, TicketConfig};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CALLER_ID: &str = "00uzqcanary77x9k2vq0";
const FIRST: &str = "Quillonzeta";
const LAST: &str = "Vranckxbury";
const LOGIN: &str = "quillon.vranckx.canary@example.com";
const PHONE: &str = "+1-555-0199-7734";
const API_TOKEN: &str = "00CanaryApiToken-Zx81Lq0pWm77Rt";
const PSEUDO_KEY: &str = "CanaryPseudonymKey-4b1f9e2a7c3d8e0f1a2b";
const AGENT_ID: &str = "00uagent200000000000";
/// The admin who resets the caller's password straight in the console (out-of-band change detection).
const CONSOLE_ADMIN: &str = "rogue.console.admin.canary@example.com";

/// A log writer into a file under the data directory.
#[derive(Clone)]
struct FileWriter(Arc<Mutex<std::fs::File>>);

impl std::io::Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap().flush()
    }
}

/// The canary and the forms it could hide in.
fn encodings(canary: &str) -> Vec<Vec<u8>> {
    let mut out = vec![
        canary.as_bytes().to_vec(),
        canary.to_lowercase().into_bytes(),
        canary.to_uppercase().into_bytes(),
        percent_encoding::utf8_percent_encode(canary, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .into_bytes(),
    ];
    // Base64 at each of the three alignments: drop the characters that depend on neighbouring bytes.
    for pad in 0..3 {
        let mut bytes = vec![b'x'; pad];
        bytes.extend_from_slice(canary.as_bytes());
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let enc = engine.encode(&bytes);
            let skip = (pad * 4).div_ceil(3) + 1;
            let take = enc.len().saturating_sub(skip + 2);
            if take >= 8 {
                out.push(enc.as_bytes()[skip..skip + take].to_vec());
            }
        }
    }
    out
}

fn scan(dir: &Path, canaries: &[(String, String)]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut files = 0;
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        files += 1;
        for (what, canary) in canaries {
            for form in encodings(canary) {
                if bytes.windows(form.len()).any(|w| w == form.as_slice()) {
                    hits.push(format!("{what} found in {}", entry.display()));
                }
            }
        }
    }
    assert!(
        files >= 2,
        "expected the database and the log, scanned {files} file(s)"
    );
    hits
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

/// An alert sink that writes each alert's webhook body to a file in the data directory (so the scan covers what a
/// webhook would receive).
struct FileSink(std::path::PathBuf);

#[async_trait::async_trait]
impl fctr_ports::AlertSink for FileSink {
    async fn deliver(&self, alert: &fctr_ports::Alert) -> Result<(), fctr_ports::PortError> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .map_err(|_| fctr_ports::PortError::Unavailable)?;
        f.write_all(&alert.payload())
            .and_then(|()| f.write_all(b"\n"))
            .map_err(|_| fctr_ports::PortError::Unavailable)
    }
}

struct Run {
    engine: Engine,
    fake: FakeOkta,
    secrets: Vec<(String, String)>,
}

impl Run {
    async fn verify_push(&self, agent: &Agent, subject: &SubjectId) {
        let ctx = RequestContext::default();
        let v = self
            .engine
            .begin_verification(agent, &ctx, subject, None)
            .await
            .unwrap();
        assert_eq!(v.factor, Some(FactorKind::Push));
        let push = self
            .fake
            .phones()
            .wait_for_push(subject.as_str(), Duration::from_secs(5))
            .await
            .unwrap();
        self.fake
            .phones()
            .approve(&push.transaction_id, push.correct_answer.unwrap())
            .unwrap();
        for _ in 0..50 {
            let v = self
                .engine
                .poll_verification(agent, &ctx, v.id)
                .await
                .unwrap();
            if v.status == VerificationStatus::Verified {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("push not verified");
    }

    async fn act(&mut self, agent: &Agent, subject: &SubjectId, action: Action) {
        self.verify_push(agent, subject).await;
        let out = self
            .engine
            .perform_action(agent, &RequestContext::default(), subject, action.clone())
            .await
            .unwrap_or_else(|d| panic!("{action:?}: {d}"));
        if let Some(s) = out.receipt.secret {
            self.secrets
                .push((format!("{:?}", s.kind), s.value.expose_secret().to_owned()));
        }
    }
}

#[tokio::test]
async fn no_canary_reaches_any_byte_fctr_wrote() {
    let data = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(data.path().join("fctr.log")).unwrap();
    let writer = FileWriter(Arc::new(Mutex::new(log)));
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "fctr_core=trace,fctr_okta=trace,fctr_sqlite=trace,fctr_memory=trace,fctr_ports=trace",
        ))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let caller = FixtureUser::caller("zq", CALLER_ID, LOGIN, FIRST, LAST, Some(PHONE));
    let fake = FakeOkta::start(FakeOktaOptions {
        api_token: API_TOKEN.into(),
        extra_users: vec![caller],
        ..FakeOktaOptions::default()
    })
    .await
    .unwrap();
    let store = SqliteStore::open(data.path().join("fctr.db"), SqliteOptions::default())
        .await
        .unwrap();
    let clock: Arc<dyn fctr_ports::Clock> = Arc::new(SystemClock);
    let idp = Arc::new(
        OktaAdapter::new(OktaConfig::new(
            fake.base_url(),
            OktaAuth::ApiToken(SecretString::from(API_TOKEN)),
        ))
        .unwrap(),
    );
    let flow_started = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let ports = Ports {
        idp: idp.clone(),
        audit: Arc::new(store.clone()),
        usage: Arc::new(store.clone()),
        grants: Arc::new(MemoryGrantStore::new(clock.clone())),
        rate: Arc::new(MemoryRateLimiter::new(clock.clone())),
        clock: clock.clone(),
    };
    let pseudo =
        Pseudonymizer::new(KeyId::parse("k1").unwrap(), &SecretString::from(PSEUDO_KEY)).unwrap();
    // Multi-use grants, so one verification can cover suspend and unsuspend.
    let policy = Policy::parse(
        &include_str!("../../examples/policy.toml")
            .replace("single_use_grants = true", "single_use_grants = false")
            .replace(
                "challenges_per_target_per_hour = 5",
                "challenges_per_target_per_hour = 50",
            )
            // Sign-in links accepted (last, so the other flows pick what they picked before).
            .replace(
                "accepted = [\"push\", \"totp\", \"hardware_otp\", \"hotp\"]",
                "accepted = [\"push\", \"totp\", \"hardware_otp\", \"hotp\", \"idp_sign_in\"]",
            )
            // Four-eyes on the factor reset, so the approval flow is scanned too.
            .replace(
                "actions = []\nclasses = []\napprover_roles = []",
                "actions = [\"reset_factors\"]\nclasses = []\napprover_roles = [\"tier3\"]",
            ),
    )
    .unwrap();
    assert!(policy.four_eyes().enabled());
    assert!(!policy.single_use_grants());
    let engine = Engine::new(
        ports,
        Arc::new(policy),
        pseudo,
        TenantId::parse("acme").unwrap(),
    )
    .with_alert_sink(Arc::new(FileSink(data.path().join("alerts.jsonl"))))
    .with_approvals(Arc::new(MemoryApprovalStore::new(clock)))
    .with_sign_in_links(fctr_core::SignInLinks::default());
    let mut run = Run {
        engine,
        fake,
        secrets: Vec::new(),
    };
    let ctx = RequestContext {
        request_id: None,
        client_ip: Some("203.0.113.77".parse().unwrap()),
        ticket: None,
    };
    let subject = SubjectId::parse(CALLER_ID).unwrap();

    // Sign-in (and a refused one), lookup by login and by id.
    let agent = run
        .engine
        .sign_in(
            AgentId::parse(AGENT_ID).unwrap(),
            &["fctr-tier3".into()],
            &ctx,
        )
        .await
        .unwrap();
    let tier1 = run
        .engine
        .sign_in(
            AgentId::parse("00uagent100000000000").unwrap(),
            &["fctr-tier1".into()],
            &ctx,
        )
        .await
        .unwrap();
    assert!(
        run.engine
            .sign_in(AgentId::parse("00uagent000000000000").unwrap(), &[], &ctx)
            .await
            .is_err()
    );
    let found = run
        .engine
        .search(&agent, &ctx, &UserQuery::login(LOGIN).unwrap())
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let card = run.engine.lookup(&agent, &ctx, &subject).await.unwrap();
    assert_eq!(
        card.user.login.expose_pii(),
        LOGIN,
        "the caller card shows the login to the agent"
    );

    // Denials: no grant yet; a tier 1 agent; a TAP Okta cannot issue.
    assert!(
        run.engine
            .perform_action(&agent, &ctx, &subject, Action::Unlock)
            .await
            .is_err()
    );
    assert!(
        run.engine
            .perform_action(&tier1, &ctx, &subject, Action::Unlock)
            .await
            .is_err()
    );

    // TOTP: a wrong code, then the right one.
    let totp = card
        .factors
        .iter()
        .find(|f| f.info.kind == FactorKind::Totp)
        .unwrap()
        .info
        .id
        .clone();
    let v = run
        .engine
        .begin_verification(&agent, &ctx, &subject, Some(&totp))
        .await
        .unwrap();
    assert!(
        run.engine
            .submit_code(&agent, &ctx, v.id, SecretString::from("000000"))
            .await
            .is_err()
    );
    let code = run.fake.state().totp_now(CALLER_ID).unwrap();
    let v = run
        .engine
        .submit_code(&agent, &ctx, v.id, SecretString::from(code))
        .await
        .unwrap();
    assert_eq!(v.status, VerificationStatus::Verified);
    run.engine
        .perform_action(
            &agent,
            &ctx,
            &subject,
            Action::ClearSessions {
                revoke_oauth_tokens: true,
            },
        )
        .await
        .unwrap();

    // Verification by IdP sign-in: a link (its secret is a canary too), opened, someone else signing in (refused,
    // audited, alerted), then a second link and the caller's own sign-in.
    let sign_in = fctr_ports::FactorId::parse("idp_sign_in").unwrap();
    // The other person's IdP id is personal data too.
    run.secrets
        .push(("OtherSubject".into(), "00uzsomeoneelse00077".into()));
    for (who, ok) in [("00uzsomeoneelse00077", false), (CALLER_ID, true)] {
        let v = run
            .engine
            .begin_verification(&agent, &ctx, &subject, Some(&sign_in))
            .await
            .unwrap();
        let token = v.link.as_ref().and_then(|l| l.token.clone()).unwrap();
        run.secrets.push(("SignInLink".into(), token.clone()));
        let opened = run.engine.open_sign_in_link(&ctx, &token).await.unwrap();
        let evidence = fctr_core::SignInEvidence::Token {
            subject: who.to_owned(),
            auth_time: Some(chrono::Utc::now()),
            mfa: true,
        };
        let judged = run
            .engine
            .finish_sign_in_link(&ctx, &opened, &evidence)
            .await;
        assert_eq!(judged.is_ok(), ok, "{judged:?}");
        let v = run
            .engine
            .poll_verification(&agent, &ctx, v.id)
            .await
            .unwrap();
        let want = if ok {
            VerificationStatus::Verified
        } else {
            VerificationStatus::Rejected
        };
        assert_eq!(v.status, want);
    }

    // Ticket write-back: the work note of an action under the canary caller's verification, posted by the real
    // ServiceNow adapter to a fake that records what it got, the delivery audited into the same database. What
    // went out is kept beside the database, so the scan below covers the outbound payload too.
    let tickets = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"result": [{"sys_id": "0123456789abcdef0123456789abcdef"}]}),
        ))
        .mount(&tickets)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("PATCH"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .expect(1)
        .mount(&tickets)
        .await;
    let sink = TicketAdapter::new(TicketConfig::new(
        TicketSystem::ServiceNow,
        url::Url::parse(&tickets.uri()).unwrap(),
        TicketAuth::Basic {
            user: "svc-fctr".into(),
            secret: SecretString::from("ticket-token"),
        },
    ))
    .unwrap();
    let tctx = ctx
        .clone()
        .with_ticket(Some(TicketRef::parse("INC0012345").unwrap()));
    run.verify_push(&agent, &subject).await;
    let done = run
        .engine
        .perform_action(
            &agent,
            &tctx,
            &subject,
            Action::ClearSessions {
                revoke_oauth_tokens: false,
            },
        )
        .await;
    assert!(done.is_ok(), "{done:?}");
    let note = run
        .engine
        .action_note(ActionKind::ClearSessions, done.as_ref(), "Agent Two");
    sink.post_note(tctx.ticket.as_ref().unwrap(), &note)
        .await
        .unwrap();
    run.engine
        .record_ticket_note(
            &agent,
            &tctx,
            Some(ActionKind::ClearSessions),
            TicketSystem::ServiceNow,
            NoteDelivery::Delivered,
        )
        .await;
    let mut outbound = Vec::new();
    for r in tickets.received_requests().await.unwrap() {
        outbound.extend(format!("{} {}\n", r.method, r.url).into_bytes());
        outbound.extend(&r.body);
        outbound.push(b'\n');
    }
    assert!(
        outbound.windows(10).any(|w| w == b"work_notes")
            && outbound.windows(9).any(|w| w == b"Agent Two"),
        "the note went out"
    );
    std::fs::write(data.path().join("ticket-notes.out"), outbound).unwrap();
    tickets.verify().await;

    // Every lifecycle action, each under its own push verification.
    // Suspend first: Okta only suspends ACTIVE users, and a reset moves the user to RECOVERY.
    // A suspended user cannot answer a push, so unsuspend runs under the same (multi-use) grant.
    run.act(&agent, &subject, Action::Suspend).await;
    run.engine
        .perform_action(&agent, &ctx, &subject, Action::Unsuspend)
        .await
        .unwrap();
    run.act(
        &agent,
        &subject,
        Action::ResetPassword { send_email: false },
    )
    .await;
    run.act(&agent, &subject, Action::ExpirePassword).await;
    run.verify_push(&agent, &subject).await;
    assert!(
        run.engine
            .perform_action(
                &agent,
                &ctx,
                &subject,
                Action::IssueTemporaryAccessPass {
                    lifetime_minutes: 60,
                    one_time: true
                }
            )
            .await
            .is_err()
    );
    let push = card
        .factors
        .iter()
        .find(|f| f.info.kind == FactorKind::Push)
        .unwrap()
        .info
        .id
        .clone();
    run.act(&agent, &subject, Action::RemoveFactor(totp.clone()))
        .await;
    // Four-eyes: the factor reset waits for a second tier 3 agent, who reviews it (the caller's name, read from the
    // IdP, is shown in the queue) and approves it; then it runs.
    let approver = run
        .engine
        .sign_in(
            AgentId::parse("00uagent300000000000").unwrap(),
            &["fctr-tier3".into()],
            &ctx,
        )
        .await
        .unwrap();
    run.verify_push(&agent, &subject).await;
    let pending = run
        .engine
        .perform_action(
            &agent,
            &ctx,
            &subject,
            fctr_core::ActionRequest::from(Action::ResetFactors),
        )
        .await
        .unwrap_err();
    assert_eq!(pending.reason, fctr_ports::Reason::ApprovalPending);
    let queue = run.engine.pending_approvals(&approver, &ctx).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert!(
        queue[0]
            .caller
            .as_ref()
            .is_some_and(|p| p.expose_pii().contains(FIRST)),
        "the approver is shown the caller"
    );
    run.engine
        .decide_approval(&approver, &ctx, queue[0].id, true)
        .await
        .unwrap();
    run.engine
        .perform_action(&agent, &ctx, &subject, Action::ResetFactors)
        .await
        .unwrap();
    let _ = push;
    assert!(
        run.secrets.iter().any(|(k, _)| k == "ResetLink"),
        "the flow produced a reset link"
    );
    assert!(
        run.secrets.iter().any(|(k, _)| k == "TemporaryPassword"),
        "the flow produced a temporary password"
    );

    // Pseudonyms: the same caller matches across events; another key gives another pseudonym.
    let events = store.read(&AuditQuery::default()).await.unwrap();
    let mine = run.engine.pseudonymizer().subject(&subject);
    let about: Vec<_> = events
        .iter()
        .filter(|e| e.event.target.as_ref() == Some(&mine))
        .collect();
    let kinds: std::collections::BTreeSet<&str> =
        about.iter().map(|e| e.event.kind.as_str()).collect();
    assert!(
        kinds.len() >= 5,
        "the caller's pseudonym links lookup, challenges and actions: {kinds:?}"
    );
    let other = Pseudonymizer::new(
        KeyId::parse("k2").unwrap(),
        &SecretString::from("another-key-0123456789-0123456789"),
    )
    .unwrap();
    assert_ne!(other.subject(&subject), mine);
    assert!(store.verify_chain().await.unwrap().is_ok());

    // Out-of-band change detection: every change above went through fctr and is accounted for; a reset made
    // straight in the console is found, with its admin, and the report (read through the System Log) leaves
    // nothing at rest either.
    run.fake
        .state()
        .console_change(CONSOLE_ADMIN, CALLER_ID, "user.account.reset_password");
    let findings = run
        .engine
        .out_of_band_changes(
            idp.as_ref(),
            flow_started,
            chrono::Utc::now() + chrono::TimeDelta::seconds(1),
            fctr_core::out_of_band::DEFAULT_TOLERANCE,
        )
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].target, mine);
    match &findings[0].actor {
        fctr_ports::ChangeActor::Admin { display, .. } => {
            assert_eq!(display.expose_pii(), CONSOLE_ADMIN)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        run.fake.state().system_log_len() > 5,
        "fctr's own changes are in the log"
    );
    // The schedule raises the same finding: an audit event in SQLite and an alert body in the data directory.
    let scheduled = run
        .engine
        .scan_out_of_band(
            idp.as_ref(),
            flow_started,
            chrono::Utc::now() + chrono::TimeDelta::seconds(1),
            fctr_core::out_of_band::DEFAULT_TOLERANCE,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert_eq!((scheduled.findings, scheduled.raised), (1, 1));
    // An alert about the caller (its factors are reset by now, so no push can be denied here; the "not me" flow
    // itself is covered end to end in app-http/tests/it/alarms.rs): its webhook body goes to the data directory.
    run.engine
        .raise_alert(
            fctr_ports::Alert::new(
                fctr_ports::AlertRule::NotMe,
                fctr_ports::Severity::Critical,
                chrono::Utc::now(),
            )
            .caller(mine.clone())
            .agent(agent.pseudonym().clone()),
        )
        .await;
    let delivered = run.engine.deliver_alerts().await;
    assert!(delivered.delivered >= 1, "{delivered:?}");
    let alerts = std::fs::read_to_string(data.path().join("alerts.jsonl")).unwrap();
    assert!(alerts.contains("\"rule\":\"not_me\""), "{alerts}");
    assert!(
        alerts.contains("\"rule\":\"out_of_band_change\""),
        "{alerts}"
    );

    drop(run.engine);
    store.close().await;
    drop(_guard);

    let mut canaries: Vec<(String, String)> = [
        ("caller id", CALLER_ID),
        ("first name", FIRST),
        ("last name", LAST),
        ("login", LOGIN),
        ("phone", PHONE),
        ("phone digits", "0199-7734"),
        ("api token", API_TOKEN),
        ("pseudonymization key", PSEUDO_KEY),
        ("agent id", AGENT_ID),
        ("client ip", "203.0.113.77"),
        ("console admin", CONSOLE_ADMIN),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    canaries.extend(run.secrets.iter().cloned());
    // The files hold real content (so a clean scan means something): log lines and pseudonymous audit rows.
    let log_bytes = std::fs::read(data.path().join("fctr.log")).unwrap();
    assert!(
        log_bytes.len() > 2_000,
        "the TRACE log has {} bytes",
        log_bytes.len()
    );
    let mut db_bytes = std::fs::read(data.path().join("fctr.db")).unwrap();
    if let Ok(wal) = std::fs::read(data.path().join("fctr.db-wal")) {
        db_bytes.extend(wal);
    }
    assert!(
        db_bytes.windows(3).any(|w| w == b"k1:"),
        "audit rows with pseudonyms are on disk"
    );
    let hits = scan(data.path(), &canaries);
    assert!(hits.is_empty(), "canaries at rest:\n{}", hits.join("\n"));
    // The scan itself must be able to see a canary: write one and look again.
    std::fs::write(
        data.path().join("planted.txt"),
        format!("x{}y", LOGIN.to_uppercase()),
    )
    .unwrap();
    assert!(
        !scan(data.path(), &canaries).is_empty(),
        "the scan found a planted canary"
    );
}

/// Out-of-band detection on Entra: a console password reset by a canary admin, read from the fake tenant's
/// directory audit log through the Entra adapter, reported and raised by the schedule (SQLite audit, an alert body
/// in the data directory, every fctr crate logging at TRACE): neither the admin's UPN, the target's object id nor
/// the app's client secret reaches any byte written.
#[tokio::test]
async fn no_canary_from_the_entra_directory_audit_reaches_any_byte() {
    use fctr_entra::{EntraAdapter, EntraConfig, EntraCredential};
    use fctr_testkit::entra::{DEFAULT_APP_PERMISSIONS, FakeEntra, FakeEntraOptions};
    const ENTRA_ADMIN: &str = "zeta.console.canary@contoso.example";
    const ENTRA_SECRET: &str = "EntraCanarySecret~Qv81zLmW0pRt77";
    let data = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(data.path().join("fctr.log")).unwrap();
    let writer = FileWriter(Arc::new(Mutex::new(log)));
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "fctr_core=trace,fctr_entra=trace,fctr_sqlite=trace,fctr_memory=trace,fctr_ports=trace",
        ))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut permissions: Vec<String> = DEFAULT_APP_PERMISSIONS
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    permissions.extend([
        "AuditLog.Read.All".to_owned(),
        "Directory.Read.All".to_owned(),
    ]);
    let fake = FakeEntra::start(FakeEntraOptions {
        client_secret: ENTRA_SECRET.into(),
        app_permissions: permissions,
        ..FakeEntraOptions::default()
    })
    .await
    .unwrap();
    let target = fake.fixtures().id_of("bob");
    let mut cfg = EntraConfig::new(
        fake.tenant_id(),
        &fake.app().client_id,
        EntraCredential::client_secret(SecretString::from(ENTRA_SECRET)),
    )
    .unwrap();
    cfg.authority = fake.authority();
    cfg.graph_base = fake.graph_base();
    let idp = Arc::new(EntraAdapter::new(cfg).unwrap());
    let store = SqliteStore::open(data.path().join("fctr.db"), SqliteOptions::default())
        .await
        .unwrap();
    let clock: Arc<dyn fctr_ports::Clock> = Arc::new(SystemClock);
    let engine = Engine::new(
        Ports {
            idp: idp.clone(),
            audit: Arc::new(store.clone()),
            usage: Arc::new(store.clone()),
            grants: Arc::new(MemoryGrantStore::new(clock.clone())),
            rate: Arc::new(MemoryRateLimiter::new(clock.clone())),
            clock,
        },
        Arc::new(Policy::default()),
        Pseudonymizer::new(KeyId::parse("k1").unwrap(), &SecretString::from(PSEUDO_KEY)).unwrap(),
        TenantId::parse("acme").unwrap(),
    )
    .with_alert_sink(Arc::new(FileSink(data.path().join("alerts.jsonl"))));
    let started = chrono::Utc::now() - chrono::TimeDelta::seconds(2);
    fake.state()
        .console_change(ENTRA_ADMIN, &target, "Reset user password");
    let scheduled = engine
        .scan_out_of_band(
            idp.as_ref(),
            started,
            chrono::Utc::now() + chrono::TimeDelta::seconds(2),
            fctr_core::out_of_band::DEFAULT_TOLERANCE,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert_eq!((scheduled.findings, scheduled.raised), (1, 1));
    assert!(engine.deliver_alerts().await.delivered >= 1);
    let alerts = std::fs::read_to_string(data.path().join("alerts.jsonl")).unwrap();
    assert!(alerts.contains("\"out_of_band_change\""), "{alerts}");
    drop(engine);
    store.close().await;
    drop(_guard);

    let canaries: Vec<(String, String)> = [
        ("target object id", target.as_str()),
        ("console admin", ENTRA_ADMIN),
        ("client secret", ENTRA_SECRET),
        ("pseudonymization key", PSEUDO_KEY),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .collect();
    let hits = scan(data.path(), &canaries);
    assert!(hits.is_empty(), "canaries at rest: {hits:?}");
    assert!(
        std::fs::metadata(data.path().join("fctr.log"))
            .unwrap()
            .len()
            > 0,
        "the TRACE log was written (the scan read something)"
    );
}
