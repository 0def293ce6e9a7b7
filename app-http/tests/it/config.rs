//! Configuration parsing and validation.

use fctr_portal::config::{Config, ConfigError, PortalConfig as _};
use std::path::Path;

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let text = "[server]\nlisten = \"127.0.0.1:9000\"\nlistne = 1\n";
    let e = Config::parse(text, Path::new("x.toml")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("column"), "{msg}");
    assert!(msg.contains("listne"), "{msg}");
}

#[test]
fn a_secret_in_the_toml_is_refused() {
    let text = "[sign_in]\nissuer = \"https://x.okta.com\"\nclient_id = \"0oa1\"\nclient_secret = \"hunter2\"\n";
    let e = Config::parse(text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_secret"), "{e}");
    assert!(!e.contains("hunter2"), "the value is not echoed: {e}");
}

#[test]
fn a_full_config_validates_and_env_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "00abc").unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:9000"
public_url = "https://fctr.example.com"
tenant = "acme"
[okta]
org_url = "https://acme.okta.com"
api_token_file = "{}"
[sign_in]
issuer = "https://acme.okta.com"
client_id = "0oa1"
client_secret_file = "{}"
[pseudonymization]
key_id = "k1"
key_file = "{}"
[audit]
sqlite_path = "/tmp/a.sqlite"
checkpoint_key_file = "{}"
[session]
idle_minutes = 10
"#,
        token.display(),
        secret.display(),
        key.display(),
        key.display()
    );
    let mut c = Config::parse(&text, Path::new("x.toml")).unwrap();
    c.validate().unwrap();
    c.apply_env(|k| (k == "FCTR_SERVER_LISTEN").then(|| "127.0.0.1:9100".to_owned()))
        .unwrap();
    assert_eq!(c.server.listen.unwrap().port(), 9100);
    // Short key refused.
    std::fs::write(&key, "short").unwrap();
    let e = c.validate().unwrap_err();
    assert!(
        matches!(e, ConfigError::Invalid { ref key, .. } if key == "pseudonymization.key"),
        "{e}"
    );
}

#[test]
fn plain_http_is_only_for_loopback() {
    let text = "[server]\npublic_url = \"http://fctr.example.com\"\n";
    let c = Config::parse(text, Path::new("x.toml")).unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("https"), "{e}");
}

#[test]
fn check_config_exits_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "[server]\nbogus = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fctr-portal"))
        .arg("--check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("line 2"), "{err}");
}

#[test]
fn log_files_and_their_retention_are_configurable() {
    let text = "[logging]\ndir = \"/var/log/fctr\"\n\n[retention]\nruntime_log_days = 2\n";
    let c = Config::parse(text, Path::new("x.toml")).unwrap();
    assert_eq!(c.logging.dir.as_deref(), Some(Path::new("/var/log/fctr")));
    assert_eq!(c.retention.runtime_log_days, Some(2));
    let e = Config::parse("[logging]\nfile = \"x\"\n", Path::new("x.toml")).unwrap_err();
    assert!(e.to_string().contains("file"), "{e}");
}

/// A complete portal configuration around `idp` (the `[okta]` and/or `[entra]` text), with its secrets in files
/// under `dir`.
fn with_idp(dir: &Path, idp: &str) -> String {
    let key = dir.join("key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
    let secret = dir.join("oidc-secret");
    std::fs::write(&secret, "s3cret").unwrap();
    format!(
        r#"
[server]
public_url = "https://fctr.example.com"
{idp}
[sign_in]
issuer = "https://login.microsoftonline.com/00000000-0000-4000-8000-000000000001/v2.0"
client_id = "00000000-0000-4000-8000-000000000003"
client_secret_file = "{}"
groups_claim = "roles"
[pseudonymization]
key_id = "k1"
key_file = "{}"
[audit]
sqlite_path = "/tmp/a.sqlite"
checkpoint_key_file = "{}"
"#,
        secret.display(),
        key.display(),
        key.display()
    )
}

const TENANT: &str = "00000000-0000-4000-8000-000000000001";
const CLIENT: &str = "00000000-0000-4000-8000-000000000002";

fn invalid_key(e: &ConfigError) -> &str {
    match e {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("not Invalid: {other}"),
    }
}

#[test]
fn an_entra_section_with_a_client_secret_validates_and_builds_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("entra-secret");
    std::fs::write(&secret, "entra~secret\n").unwrap();
    let text = with_idp(
        dir.path(),
        &format!(
            "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{}\"\n\
             tap_min_minutes = 30\n[entra.connector]\nclient_secret_env = \"FCTR_TEST_UNSET_MFA_SECRET\"\n",
            secret.display()
        ),
    );
    let mut c = Config::parse(&text, Path::new("x.toml")).unwrap();
    // The connector's secret is not in the environment: named, with the key.
    let e = c.validate().unwrap_err();
    assert_eq!(invalid_key(&e), "entra.connector.client_secret", "{e}");
    assert!(
        e.to_string()
            .contains("FCTR_TEST_UNSET_MFA_SECRET is not set"),
        "{e}"
    );
    c.entra.as_mut().unwrap().connector = None;
    c.validate().unwrap();
    let entra = c.entra.as_ref().unwrap();
    assert_eq!(entra.credential_kind(), "client secret");
    let ac = entra.adapter_config().unwrap();
    assert_eq!(ac.tenant_id, TENANT);
    assert_eq!(ac.authority.as_str(), fctr_entra::DEFAULT_AUTHORITY);
    assert_eq!(ac.graph_base.as_str(), fctr_entra::DEFAULT_GRAPH_BASE);
    assert_eq!(ac.tap.min_lifetime_minutes, 30);
    assert!(matches!(
        ac.credential,
        fctr_entra::EntraCredential::ClientSecret(_)
    ));
    assert!(
        !format!("{ac:?}").contains("entra~secret"),
        "secret in Debug"
    );
    // Environment overrides, as for [okta]: a sovereign cloud's endpoints, another app.
    c.apply_env(|k| match k {
        "FCTR_ENTRA_AUTHORITY" => Some("https://login.microsoftonline.us/".into()),
        "FCTR_ENTRA_GRAPH_BASE" => Some("https://graph.microsoft.us/v1.0/".into()),
        "FCTR_ENTRA_CLIENT_ID" => Some("00000000-0000-4000-8000-0000000000ff".into()),
        _ => None,
    })
    .unwrap();
    let ac = c.entra.as_ref().unwrap().adapter_config().unwrap();
    assert_eq!(ac.authority.as_str(), "https://login.microsoftonline.us/");
    assert_eq!(ac.graph_base.as_str(), "https://graph.microsoft.us/v1.0/");
    assert_eq!(ac.client_id, "00000000-0000-4000-8000-0000000000ff");
    // An override for a section that is not there is an error, not silently ignored.
    let mut okta_only = Config::parse(
        "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_env = \"X\"\n",
        Path::new("x.toml"),
    )
    .unwrap();
    let e = okta_only
        .apply_env(|k| (k == "FCTR_ENTRA_TENANT_ID").then(|| TENANT.to_owned()))
        .unwrap_err();
    assert!(e.to_string().contains("no [entra] section"), "{e}");
    // The adapter's own rules are checked by validate: a client id that is not a GUID, http off loopback.
    let mut bad = c.clone();
    bad.entra.as_mut().unwrap().client_id = "fctr-app".into();
    let e = bad.validate().unwrap_err().to_string();
    assert!(
        e.contains("client_id must be the application (client) id GUID"),
        "{e}"
    );
    let mut bad = c.clone();
    bad.entra.as_mut().unwrap().graph_base =
        Some(url::Url::parse("http://graph.example.com/").unwrap());
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("graph_base must use https"), "{e}");
}

#[test]
fn an_entra_section_with_a_certificate_reads_the_key_and_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    // A PEM certificate file is decoded to DER; the key must be a usable RSA key (checked when validating).
    let cert = dir.path().join("fctr.cer.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAECAwQF\nBgc=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let key = dir.path().join("fctr.key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let text = with_idp(
        dir.path(),
        &format!(
            "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nprivate_key_file = \"{}\"\n\
             certificate_file = \"{}\"\nalgorithm = \"RS256\"\n",
            key.display(),
            cert.display()
        ),
    );
    let c = Config::parse(&text, Path::new("x.toml")).unwrap();
    let entra = c.entra.as_ref().unwrap();
    assert_eq!(entra.credential_kind(), "certificate");
    match entra.adapter_config().unwrap().credential {
        fctr_entra::EntraCredential::Certificate {
            certificate: fctr_entra::CertificateRef::Der(der),
            algorithm,
            ..
        } => {
            assert_eq!(der, vec![0, 1, 2, 3, 4, 5, 6, 7]);
            assert_eq!(algorithm, fctr_entra::AssertionAlgorithm::Rs256);
        }
        other => panic!("{other:?}"),
    }
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("private key is not a usable RSA key"), "{e}");
    assert!(!e.contains("not a key"), "key material echoed: {e}");
    // A key without its certificate, and two certificate references, are refused by name.
    let text = with_idp(
        dir.path(),
        &format!(
            "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nprivate_key_file = \"{}\"\n",
            key.display()
        ),
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(invalid_key(&e), "entra.certificate_file", "{e}");
    let text = with_idp(
        dir.path(),
        &format!(
            "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nprivate_key_file = \"{}\"\n\
             certificate_file = \"{}\"\ncertificate_sha1 = \"AB\"\n",
            key.display(),
            cert.display()
        ),
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(
        e.to_string().contains("give one of certificate_file"),
        "{e}"
    );
}

#[test]
fn an_entra_section_without_a_credential_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = with_idp(
        dir.path(),
        &format!("[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\n"),
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(invalid_key(&e), "entra.credential", "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("missing") && msg.contains("client_secret_env"),
        "{msg}"
    );
    assert!(msg.contains("private_key_file"), "{msg}");
    // An environment variable that is not set, and a secret and a certificate at once.
    let text = with_idp(
        dir.path(),
        &format!(
            "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret_env = \"FCTR_TEST_UNSET_ENTRA\"\n"
        ),
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(invalid_key(&e), "entra.client_secret", "{e}");
    assert!(
        e.to_string().contains("FCTR_TEST_UNSET_ENTRA is not set"),
        "{e}"
    );
    let text = with_idp(
        dir.path(),
        &format!(
            "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret_env = \"X\"\n\
             private_key_file = \"/k.pem\"\n"
        ),
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
}

#[test]
fn okta_and_entra_together_or_neither_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "00abc").unwrap();
    let okta = format!(
        "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_file = \"{}\"\n",
        token.display()
    );
    let entra = format!(
        "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret_file = \"{}\"\n",
        token.display()
    );
    // Each alone is fine.
    for idp in [&okta, &entra] {
        Config::parse(&with_idp(dir.path(), idp), Path::new("x.toml"))
            .unwrap()
            .validate()
            .unwrap();
    }
    let both = Config::parse(
        &with_idp(dir.path(), &format!("{okta}{entra}")),
        Path::new("x.toml"),
    )
    .unwrap();
    let e = both.validate().unwrap_err();
    assert_eq!(invalid_key(&e), "okta, entra", "{e}");
    assert!(e.to_string().contains("keep [okta] or [entra]"), "{e}");
    let neither = Config::parse(&with_idp(dir.path(), ""), Path::new("x.toml")).unwrap();
    let e = neither.validate().unwrap_err().to_string();
    assert!(
        e.contains("add an [okta] section") && e.contains("[entra] section"),
        "{e}"
    );

    // `--check-config` says the same and exits 2.
    let p = dir.path().join("both.toml");
    std::fs::write(&p, with_idp(dir.path(), &format!("{okta}{entra}"))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fctr-portal"))
        .arg("--check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("okta, entra: both sections are present"),
        "{err}"
    );
    let p = dir.path().join("entra.toml");
    std::fs::write(&p, with_idp(dir.path(), &entra)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fctr-portal"))
        .arg("--check-config")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_entra_keys_and_inline_secrets_are_errors_with_line_and_column() {
    let text =
        format!("[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\ngraph_url = \"x\"\n");
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 4") && e.contains("column 1"), "{e}");
    assert!(e.contains("graph_url"), "{e}");
    let text = "[entra.connector]\npush_timeout = 30\n";
    let e = Config::parse(text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("push_timeout"), "{e}");
    let text = format!(
        "[entra]\ntenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT}\"\nclient_secret = \"hunter2~x\"\n"
    );
    let e = Config::parse(&text, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_secret"), "{e}");
    assert!(!e.contains("hunter2"), "the value is not echoed: {e}");
}

#[test]
fn jwks_refresh_minutes_defaults_to_an_hour_and_is_bounded() {
    let with = |extra: &str| {
        let text =
            format!("[sign_in]\nissuer = \"https://acme.okta.com\"\nclient_id = \"0oa1\"\n{extra}");
        Config::parse(&text, Path::new("x.toml"))
            .unwrap()
            .jwks_refresh()
    };
    let d = with("").unwrap();
    assert_eq!(d.every, std::time::Duration::from_secs(3600));
    assert_eq!(d.min_interval, std::time::Duration::from_secs(60));
    assert_eq!(
        with("jwks_refresh_minutes = 5\n").unwrap().every,
        std::time::Duration::from_secs(300)
    );
    for bad in ["0", "1441"] {
        let e = with(&format!("jwks_refresh_minutes = {bad}\n")).unwrap_err();
        assert!(
            matches!(e, ConfigError::Invalid { ref key, .. } if key == "sign_in.jwks_refresh_minutes"),
            "{e}"
        );
    }
}

#[test]
fn the_poll_schedule_has_defaults_is_configurable_and_bad_values_name_the_key() {
    use fctr_portal::poller::{PollSchedule, PollSettings};
    use std::time::Duration;
    let with = |poll: &str| {
        Config::parse(&format!("[poll]\n{poll}"), Path::new("x.toml"))
            .unwrap()
            .poll_settings()
    };
    assert_eq!(with("").unwrap(), PollSettings::default());
    let s = with(
        "fast_interval_ms = 500\nfast_for_secs = 90\ninterval_ms = 2000\nbackoff_after_secs = 300\n\
         max_interval_ms = 10000\n",
    )
    .unwrap();
    assert_eq!(
        s.schedule,
        PollSchedule {
            fast: Duration::from_millis(500),
            fast_for: Duration::from_secs(90),
            interval: Duration::from_secs(2),
            backoff_after: Duration::from_secs(300),
            max: Duration::from_secs(10),
        }
    );
    for (bad, key) in [
        ("fast_interval_ms = 50", "poll.fast_interval_ms"),
        ("fast_interval_ms = 1500", "poll.fast_interval_ms"),
        ("interval_ms = 0", "poll.interval_ms"),
        ("max_interval_ms = 600000", "poll.max_interval_ms"),
        ("max_interval_ms = 900", "poll.max_interval_ms"),
        ("fast_for_secs = 200", "poll.backoff_after_secs"),
        ("backoff_after_secs = 7200", "poll.backoff_after_secs"),
    ] {
        let e = with(&format!("{bad}\n")).unwrap_err();
        assert!(
            matches!(e, ConfigError::Invalid { key: ref k, .. } if k == key),
            "{bad}: {e}"
        );
        assert!(e.to_string().contains(key), "{e}");
    }
    // Misspelled keys are refused with line and column, like every section's.
    let e = Config::parse("[poll]\nfast_interval = 500\n", Path::new("x.toml")).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    // The portal refuses to start on a bad schedule (validate_portal checks it), and starts on a good one.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "00abc").unwrap();
    let okta = format!(
        "[okta]\norg_url = \"https://acme.okta.com\"\napi_token_file = \"{}\"\n",
        token.display()
    );
    let full = with_idp(dir.path(), &okta);
    let good = format!("{full}[poll]\nfast_interval_ms = 500\n");
    Config::parse(&good, Path::new("x.toml"))
        .unwrap()
        .validate_portal()
        .unwrap();
    let bad = format!("{full}[poll]\ninterval_ms = 0\n");
    let e = Config::parse(&bad, Path::new("x.toml"))
        .unwrap()
        .validate_portal()
        .unwrap_err();
    assert_eq!(invalid_key(&e), "poll.interval_ms", "{e}");
}
