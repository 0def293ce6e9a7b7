//! Issue 11, operations: tamper evidence on by default, `[sign_in] issuer` https off loopback, DPoP from the
//! configuration. Through the real `fctr-portal` binary where the start-up path is what is tested.

use fctr_portal::config::{Config, ConfigError};
use fctr_ports::{AuditLog as _, Directory as _, PortError, SecretString, SubjectId};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use secrecy::ExposeSecret as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHECKPOINT_KEY: &str = "a checkpoint key for the portal test, 32+ bytes";

/// A complete configuration against `fake` (Okta and agent sign-in), secrets in files under `dir`; `audit` and
/// `sign_in` extra lines replace the defaults' tails.
fn config_text(dir: &Path, fake: &FakeOkta, issuer: &str, audit_extra: &str) -> String {
    let write = |name: &str, v: &str| {
        let p = dir.join(name);
        std::fs::write(&p, v).unwrap();
        p.display().to_string()
    };
    let client = fake.oidc_client();
    let token = write("okta-token", fake.api_token());
    let secret = write("oidc-secret", client.client_secret.expose_secret());
    let pseudo = write("pseudo-key", &"7".repeat(64));
    let audit = dir.join("audit.sqlite").display().to_string();
    format!(
        "[server]\npublic_url = \"http://127.0.0.1:9\"\nlisten = \"127.0.0.1:0\"\ntenant = \"ops\"\n\n\
         [okta]\norg_url = \"{org}\"\napi_token_file = \"{token}\"\n\n\
         [sign_in]\nissuer = \"{issuer}\"\nclient_id = \"{cid}\"\nclient_secret_file = \"{secret}\"\n\n\
         [pseudonymization]\nkey_id = \"k1\"\nkey_file = \"{pseudo}\"\n\n\
         [audit]\nsqlite_path = \"{audit}\"\n{audit_extra}",
        org = fake.base_url(),
        cid = client.client_id,
    )
}

fn key_file(dir: &Path) -> PathBuf {
    let p = dir.join("checkpoint-key");
    std::fs::write(&p, format!("{CHECKPOINT_KEY}\n")).unwrap();
    p
}

fn portal(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fctr-portal"));
    c.args(args).env_remove("FCTR_CONFIG");
    c
}

/// Runs `fctr-portal --check-config FILE` and `fctr-portal --config FILE`: both must refuse with exit 2 naming
/// `key` (start-up before anything listens or is written).
fn refused_by_check_and_start(cfg: &Path, key: &str) {
    let out = portal(&["--check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "--check-config: {err}");
    assert!(err.contains(key), "--check-config names {key}: {err}");
    let mut child = portal(&["--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the portal started with an invalid configuration ({key})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "start-up: {err}");
    assert!(err.contains(key), "start-up names {key}: {err}");
}

#[tokio::test]
async fn without_a_checkpoint_key_check_config_and_start_up_refuse() {
    let fake = FakeOkta::start(FakeOktaOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portal.toml");
    let issuer = fake.oidc_client().issuer.to_string();
    std::fs::write(&cfg, config_text(dir.path(), &fake, &issuer, "")).unwrap();
    refused_by_check_and_start(&cfg, "audit.checkpoint_key");
    assert!(
        !dir.path().join("audit.sqlite").exists(),
        "nothing written before the refusal"
    );
    // A short key is refused by name too, never echoed.
    let short = dir.path().join("short-key");
    std::fs::write(&short, "tooshort-secret").unwrap();
    let text = config_text(
        dir.path(),
        &fake,
        &issuer,
        &format!("checkpoint_key_file = \"{}\"\n", short.display()),
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(
        matches!(&e, ConfigError::Invalid { key, .. } if key == "audit.checkpoint_key"),
        "{e}"
    );
    assert!(!e.to_string().contains("tooshort-secret"), "{e}");
}

#[tokio::test]
async fn an_http_issuer_off_loopback_is_refused_by_check_config_and_start_up() {
    let fake = FakeOkta::start(FakeOktaOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let cfg = dir.path().join("portal.toml");
    let audit = format!("checkpoint_key_file = \"{}\"\n", key.display());
    std::fs::write(
        &cfg,
        config_text(
            dir.path(),
            &fake,
            "http://idp.example.com/oauth2/default",
            &audit,
        ),
    )
    .unwrap();
    refused_by_check_and_start(&cfg, "sign_in.issuer");
    // https off loopback, and http on loopback, pass this rule.
    for ok in [
        "https://idp.example.com",
        "http://127.0.0.1:8081",
        "http://localhost:1",
    ] {
        let text = config_text(dir.path(), &fake, ok, &audit);
        Config::parse(&text, Path::new("x.toml"))
            .unwrap()
            .validate()
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

/// The real binary with a configuration records HMAC'd checkpoints: one at start, then on its schedule; the
/// file verifies with the configured key and not with another.
#[tokio::test]
async fn the_portal_binary_checkpoints_the_audit_chain_with_the_configured_key() {
    let fake = FakeOkta::start(FakeOktaOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    let cfg = dir.path().join("portal.toml");
    let issuer = fake.oidc_client().issuer.to_string();
    let audit = format!(
        "checkpoint_key_file = \"{}\"\ncheckpoint_interval_secs = 1\n",
        key.display()
    );
    std::fs::write(&cfg, config_text(dir.path(), &fake, &issuer, &audit)).unwrap();
    let check = portal(&["--check-config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let mut child = portal(&["--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = dir.path().join("audit.sqlite");
    let start = Instant::now();
    let found = loop {
        if start.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !db.exists() {
            continue;
        }
        let Ok(store) =
            fctr_sqlite::SqliteStore::open(&db, fctr_sqlite::SqliteOptions::default()).await
        else {
            continue;
        };
        let cps = store.latest_checkpoints().await.unwrap_or_default();
        store.close().await;
        if !cps.is_empty() {
            break Some(cps);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let cps = found.expect("the portal recorded no checkpoint within 30 s");
    assert_eq!(cps[0].tenant.to_string(), "ops");

    let open = |k: &str| {
        fctr_sqlite::SqliteStore::open(
            &db,
            fctr_sqlite::SqliteOptions::default()
                .with_checkpoint_key(SecretString::from(k.to_owned())),
        )
    };
    let store = open(CHECKPOINT_KEY).await.unwrap();
    let ok = store.verify_chain().await.unwrap();
    store.close().await;
    assert!(ok.is_ok(), "the configured key verifies: {ok:?}");
    let store = open("another key of at least thirty-two bytes")
        .await
        .unwrap();
    let forged = store.verify_chain().await.unwrap();
    store.close().await;
    assert!(forged.is_err(), "another key must not verify the MAC");
}

/// `[okta] dpop = true` builds an adapter that binds its tokens with DPoP: it works against a fake Okta whose
/// service app requires DPoP, and the same configuration with `dpop = false` is refused there.
#[tokio::test]
async fn okta_dpop_from_the_configuration_talks_dpop_to_an_org_that_requires_it() {
    let fake = FakeOkta::start(FakeOktaOptions {
        require_dpop: true,
        ..FakeOktaOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = fake.service_app();
    let pem = dir.path().join("service.pem");
    std::fs::write(&pem, app.private_key_pem.expose_secret()).unwrap();
    let section = |dpop: bool| {
        let text = format!(
            "[okta]\norg_url = \"{}\"\nclient_id = \"{}\"\nkey_id = \"{}\"\nprivate_key_file = \"{}\"\ndpop = {dpop}\n",
            fake.base_url(),
            app.client_id,
            app.key_id,
            pem.display()
        );
        Config::parse(&text, Path::new("x.toml"))
            .unwrap()
            .okta
            .unwrap()
    };
    let user = SubjectId::parse(fake.fixtures().id_of("alice")).unwrap();
    let with = section(true)
        .adapter(&fctr_ports::Egress::direct())
        .unwrap();
    with.get_user(&user)
        .await
        .expect("DPoP-bound token accepted");
    let without = section(false)
        .adapter(&fctr_ports::Egress::direct())
        .unwrap();
    let e = without.get_user(&user).await.unwrap_err();
    assert!(
        matches!(
            e,
            PortError::Unauthorized | PortError::Forbidden { .. } | PortError::Upstream { .. }
        ),
        "{e:?}"
    );
    // DPoP without the service app is a configuration error, by name.
    let text = format!(
        "[okta]\norg_url = \"{}\"\napi_token_env = \"X\"\ndpop = true\n",
        fake.base_url()
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .okta
        .unwrap()
        .auth()
        .unwrap_err();
    assert!(
        matches!(&e, ConfigError::Invalid { key, .. } if key == "okta.dpop"),
        "{e}"
    );
}
