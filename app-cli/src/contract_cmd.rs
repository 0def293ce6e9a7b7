//! `fctr contract-test`: the adapter contract suite (`fctr_testkit::contract`) against a running IdP.
//!
//! Against a URL only the adapter itself is available: the phone, code and fault drivers of the in-process
//! tests are absent, so the checks that need them are reported as skipped, with the reason. Read-only by
//! default; lifecycle checks run only with `--mutating` and `--test-user`, and then only on that user.
//!
//! Okta comes from `--base-url` or the `[okta]` section of `--config`; Entra from `--base-url` and app flags
//! (a client secret, no MFA connector, so its push and code checks are skipped by capability), or from the
//! `[entra]` section of `--config` (its credential, endpoints and connector, read by the portal's own parser).
//! Against a fake (`fctr mock-idp okta|entra`, found through its `GET /_fake/fixtures`), the fixture users fill
//! in the test users.

use crate::stack::{IdpArgs, idp_from, port_error};
use crate::term::{out, outln};
use crate::{Exit, Fail, Globals, Outcome, config};
use clap::{Args, ValueEnum};
use fctr_okta::OktaAuth;
use fctr_ports::{ActionKind, IdentityProvider, PortError, SecretString, SubjectId};
use fctr_testkit::contract::{self, Fixture, Target, Verdict};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// An id no org has, for the not-found checks.
const MISSING_USER: &str = "00unobody00000000000";
/// An object id no Entra tenant has (a well-formed GUID), for the not-found checks.
const MISSING_ENTRA_USER: &str = "00000000-0000-4000-8000-00000000dead";
/// A token no org accepts, for the 401 check.
const WRONG_TOKEN: &str = "00fctr-contract-test-wrong-token";
/// A client secret no app registration has, for the 401 check.
const WRONG_SECRET: &str = "fctr-contract-test-wrong-secret";

#[derive(Debug, Args)]
pub(crate) struct ContractArgs {
    /// Which adapter to test.
    #[arg(long, value_enum)]
    provider: Provider,
    /// The IdP URL. Okta: the org URL (e.g. of `fctr mock-idp okta`); without it, `[okta] org_url` of --config.
    /// Entra: a `fctr mock-idp entra` URL (it serves the token endpoint and Graph), or the Graph origin
    /// `https://graph.microsoft.com` of a real tenant (tokens from login.microsoftonline.com); without it, the
    /// `[entra]` section of --config.
    #[arg(long, value_name = "URL")]
    base_url: Option<Url>,
    /// Okta: environment variable holding the SSWS token for --base-url (default FCTR_OKTA_TOKEN; against a local
    /// fake, the fake's documented default token when unset).
    #[arg(long, value_name = "VAR")]
    api_token_env: Option<String>,
    /// Entra: the directory (tenant) id. Against a local fake, default the fake's tenant.
    #[arg(long, value_name = "ID")]
    tenant_id: Option<String>,
    /// Entra: fctr's app registration (client) id. Against a local fake, default the fake's app.
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    /// Entra: environment variable holding the app's client secret (default FCTR_ENTRA_CLIENT_SECRET; against a
    /// local fake, the fake's documented secret when unset).
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Also run the lifecycle checks (they change the test user: reset password, suspend, …). Needs --test-user.
    #[arg(long, requires = "test_user")]
    mutating: bool,
    /// The designated test user's IdP id: lookups read it, mutating checks change only it.
    #[arg(long, value_name = "ID")]
    test_user: Option<String>,
    /// A user for one lifecycle check (repeatable), `ACTION=ID`: e.g. `suspend=00u…` and `unsuspend=00u…` (an
    /// ACTIVE user), `unlock=00u…` (a LOCKED_OUT user). Without it those three are skipped: they need an account
    /// in a given state, which the other checks change on --test-user.
    #[arg(long = "lifecycle-user", value_name = "ACTION=ID", value_parser = parse_lifecycle_user)]
    lifecycle_users: Vec<(ActionKind, String)>,
    /// The test user's login, for the lookup-by-login check.
    #[arg(long, value_name = "LOGIN")]
    login: Option<String>,
    /// Longest a check waits for a push to resolve, in seconds.
    #[arg(long, default_value_t = 30)]
    push_wait_secs: u64,
}

fn parse_lifecycle_user(s: &str) -> Result<(ActionKind, String), String> {
    let (a, id) = s
        .split_once('=')
        .ok_or("use ACTION=ID, e.g. suspend=00u1abcd")?;
    let kind = ActionKind::parse(a.trim()).ok_or_else(|| format!("unknown action `{a}`"))?;
    Ok((kind, id.trim().to_owned()))
}

/// The lifecycle checks `--test-user` covers on its own: their order in the suite leaves the account usable for
/// the next (suspend, unsuspend and unlock need an account in a given state, so they take `--lifecycle-user`).
const TEST_USER_ACTIONS: [ActionKind; 5] = [
    ActionKind::ClearSessions,
    ActionKind::ResetPassword,
    ActionKind::ExpirePassword,
    ActionKind::ResetFactors,
    ActionKind::RemoveFactor,
];

/// Providers with a contract run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Provider {
    /// Okta (`fctr-okta`).
    Okta,
    /// Microsoft Entra ID (`fctr-entra`; client secret, no MFA connector).
    Entra,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Self::Okta => "okta",
            Self::Entra => "entra",
        }
    }

    /// What the header says after the URL when the URL is this provider's fake.
    fn fake_label(self) -> &'static str {
        match self {
            Self::Okta => " (fake Okta: fixture users)",
            Self::Entra => " (fake Entra ID: fixture users)",
        }
    }

    /// The fixture field holding a user's login (`GET /_fake/fixtures`).
    fn login_field(self) -> &'static str {
        match self {
            Self::Okta => "login",
            Self::Entra => "upn",
        }
    }

    /// An id no tenant has, for the not-found checks.
    fn missing_user(self) -> &'static str {
        match self {
            Self::Okta => MISSING_USER,
            Self::Entra => MISSING_ENTRA_USER,
        }
    }
}

/// The fixture users of a fake IdP of this provider (`fctr mock-idp okta|entra`), when the URL is one: `GET
/// /_fake/fixtures` on loopback, whose users carry `login_field` (`login` for Okta, `upn` for Entra).
async fn fake_fixtures(url: &Url, login_field: &str) -> Option<serde_json::Value> {
    if !config::is_loopback(url) {
        return None;
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    let resp = client
        .get(url.join("/_fake/fixtures").ok()?)
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: serde_json::Value = resp.json().await.ok()?;
    v.get("users")
        .and_then(serde_json::Value::as_array)
        .and_then(|u| u.first())
        .is_some_and(|u| u.get(login_field).is_some_and(serde_json::Value::is_string))
        .then_some(v)
}

fn fixture_field(f: &serde_json::Value, handle: &str, field: &str) -> Option<String> {
    f.get("users")?
        .as_array()?
        .iter()
        .find(|u| u.get("handle").and_then(|h| h.as_str()) == Some(handle))?
        .get(field)?
        .as_str()
        .map(str::to_owned)
}

fn subject(s: &str, what: &str) -> Result<SubjectId, Fail> {
    SubjectId::parse(s.to_owned()).map_err(|e| {
        Fail::usage(
            format!("{what}: {e}"),
            "give an IdP user id: 00u1abcd… (Okta) or an object id GUID (Entra)",
        )
    })
}

/// The adapter under test, the same adapter with refused credentials, and where it points.
struct Adapters {
    idp: Arc<dyn IdentityProvider>,
    unauthorized: Arc<dyn IdentityProvider>,
    url: Url,
}

/// The Okta adapter: from `--base-url` (token from the environment) or the `[okta]` section of `--config`.
fn okta_adapters(a: &ContractArgs, g: &Globals) -> Result<Adapters, Fail> {
    let cfg = if a.base_url.is_some() {
        None
    } else {
        config::load_opt(g)?
    };
    let idp_args = IdpArgs {
        okta_url: a.base_url.clone(),
        api_token_env: a.api_token_env.clone(),
    };
    let (okta, _) = idp_from(&idp_args, cfg.as_ref()).map_err(|mut f| {
        f.next = Some("pass --base-url URL (e.g. of `fctr mock-idp okta`) or --config FILE".into());
        f
    })?;
    let url = okta.org_url().clone();
    let egress = config::egress(cfg.as_ref().map(|(_, c)| c))?;
    let wrong = config::okta_adapter(
        url.clone(),
        OktaAuth::ApiToken(SecretString::from(WRONG_TOKEN.to_owned())),
        &egress,
    )?;
    Ok(Adapters {
        idp: Arc::new(okta),
        unauthorized: Arc::new(wrong),
        url,
    })
}

/// The Entra adapter, from `--base-url` and the app flags, or from the `[entra]` section of `--config`. Against
/// a loopback URL (a `fctr mock-idp entra`), unset app flags default to the fake's documented app; a URL run
/// has no MFA connector, so push and code checks are skipped by capability.
fn entra_adapters(a: &ContractArgs, g: &Globals) -> Result<Adapters, Fail> {
    let Some(url) = a.base_url.clone() else {
        return entra_adapters_from_config(a, g);
    };
    let fake = config::is_loopback(&url);
    let app_flag = |flag: &Option<String>, name: &str, default: &str| -> Result<String, Fail> {
        match flag {
            Some(v) => Ok(v.trim().to_owned()),
            None if fake => Ok(default.to_owned()),
            None => Err(Fail::usage(
                format!("{name} is required for a tenant that is not a local fake"),
                format!("pass {name} (the app registration's, from the Entra admin center)"),
            )),
        }
    };
    let tenant = app_flag(
        &a.tenant_id,
        "--tenant-id",
        fctr_testkit::entra::DEFAULT_TENANT_ID,
    )?;
    let client = app_flag(
        &a.client_id,
        "--client-id",
        fctr_testkit::entra::DEFAULT_CLIENT_ID,
    )?;
    if fake && (a.tenant_id.is_none() || a.client_id.is_none()) {
        eprintln!(
            "note: using the fake Entra's documented tenant and app ids where not given (for `fctr mock-idp entra` only)"
        );
    }
    let secret = config::entra_secret(a.client_secret_env.as_deref(), &url)?;
    eprintln!(
        "note: the MFA connector is not configured for a URL run: the push and code checks skip by capability"
    );
    let (authority, graph) = config::entra_endpoints(&url)?;
    let idp = config::entra_adapter(&tenant, &client, secret, authority.clone(), graph.clone())?;
    let wrong = config::entra_adapter(
        &tenant,
        &client,
        SecretString::from(WRONG_SECRET.to_owned()),
        authority,
        graph,
    )?;
    Ok(Adapters {
        idp: Arc::new(idp),
        unauthorized: Arc::new(wrong),
        url,
    })
}

/// The Entra adapter from the `[entra]` section: its credential (secret or certificate), endpoints and, when
/// configured, the MFA connector. The header and the fake detection use the Graph base.
fn entra_adapters_from_config(a: &ContractArgs, g: &Globals) -> Result<Adapters, Fail> {
    let Some((path, cfg)) = config::load_opt(g)? else {
        return Err(Fail::usage(
            "no Entra tenant given",
            "pass --config FILE with an [entra] section, or --base-url URL (e.g. of `fctr mock-idp entra`), \
             with --tenant-id, --client-id and --client-secret-env for a real tenant",
        ));
    };
    if let Some(flag) = [
        ("--tenant-id", a.tenant_id.is_some()),
        ("--client-id", a.client_id.is_some()),
        ("--client-secret-env", a.client_secret_env.is_some()),
    ]
    .iter()
    .find(|(_, set)| *set)
    .map(|(f, _)| *f)
    {
        return Err(Fail::usage(
            format!("{flag} goes with --base-url; with --config the [entra] section is used"),
            "drop the flag, or pass --base-url URL to test another tenant",
        ));
    }
    let section = config::entra_section(&path, &cfg)?;
    let egress = config::egress(Some(&cfg))?;
    let idp = config::entra_from_section(section, &egress)?;
    let wrong = config::entra_with_secret(
        section,
        SecretString::from(WRONG_SECRET.to_owned()),
        &egress,
    )?;
    if section.connector.is_none() {
        eprintln!(
            "note: [entra.connector] is not configured: the push and code checks skip by capability"
        );
    }
    let url = section
        .adapter_config()
        .map(|c| c.graph_base)
        .map_err(|e| Fail::usage(format!("configuration: {e}"), "fix the [entra] section"))?;
    Ok(Adapters {
        idp: Arc::new(idp),
        unauthorized: Arc::new(wrong),
        url,
    })
}

/// Flags that belong to the other provider are a usage error rather than silently ignored.
fn check_provider_flags(a: &ContractArgs) -> Result<(), Fail> {
    let (wrong, name) = match a.provider {
        Provider::Okta => (
            [
                ("--tenant-id", a.tenant_id.is_some()),
                ("--client-id", a.client_id.is_some()),
                ("--client-secret-env", a.client_secret_env.is_some()),
            ]
            .iter()
            .find(|(_, set)| *set)
            .map(|(f, _)| *f),
            "okta",
        ),
        Provider::Entra => (
            a.api_token_env.is_some().then_some("--api-token-env"),
            "entra",
        ),
    };
    match wrong {
        Some(flag) => Err(Fail::usage(
            format!("{flag} does not apply to --provider {name}"),
            "see `fctr contract-test --help`: --api-token-env is for okta; --tenant-id, --client-id and \
             --client-secret-env are for entra",
        )),
        None => Ok(()),
    }
}

pub(crate) async fn run(a: ContractArgs, g: &Globals) -> Outcome {
    check_provider_flags(&a)?;
    let Adapters {
        idp,
        unauthorized,
        url,
    } = match a.provider {
        Provider::Okta => okta_adapters(&a, g)?,
        Provider::Entra => entra_adapters(&a, g)?,
    };
    let missing = subject(a.provider.missing_user(), "missing user")?;

    // Reachability first: a run against an unreachable or refusing org says so once, with exit 3.
    match idp.get_user(&missing).await {
        Ok(_) | Err(PortError::NotFound) => {}
        Err(e) => return Err(port_error(&format!("contract-test against {url}"), &e)),
    }

    let fake = fake_fixtures(&url, a.provider.login_field()).await;
    let test_user = a
        .test_user
        .as_deref()
        .map(|t| subject(t, "--test-user"))
        .transpose()?;
    let fake_id = |h: &str| {
        fake.as_ref()
            .and_then(|f| fixture_field(f, h, "id"))
            .and_then(|id| SubjectId::parse(id).ok())
    };
    let user = test_user.clone().or_else(|| fake_id("alice"));
    let login = a.login.clone().or_else(|| {
        if test_user.is_none() {
            fake.as_ref()
                .and_then(|f| fixture_field(f, "alice", a.provider.login_field()))
        } else {
            None
        }
    });
    let mut lifecycle: Vec<(ActionKind, SubjectId)> = Vec::new();
    if let (Some(u), true) = (&test_user, a.mutating) {
        for k in TEST_USER_ACTIONS {
            lifecycle.push((k, u.clone()));
        }
        for (k, id) in &a.lifecycle_users {
            lifecycle.retain(|(x, _)| x != k);
            lifecycle.push((*k, subject(id, "--lifecycle-user")?));
        }
    }
    // A fake is only a loopback URL given with --base-url that serves the fake's fixtures; a target from --config is
    // a deployment, whatever it points at. Mutating a deployment needs the allowed group and leaves an audit trail.
    let trusted_fake = a.base_url.is_some() && fake.is_some();
    let mut audit_store = None;
    let idp: Arc<dyn IdentityProvider> = if a.mutating && !trusted_fake {
        let Some((path, cfg)) = config::load_opt(g)? else {
            return Err(Fail::usage(
                "--mutating against a target that is not a local fake needs --config",
                "pass --config FILE with [contract_test] allowed_group and [audit]; nothing was changed",
            ));
        };
        let mut subjects: Vec<SubjectId> = Vec::new();
        for (_, s) in &lifecycle {
            if !subjects.contains(s) {
                subjects.push(s.clone());
            }
        }
        crate::contract_guard::check_members(&path, &cfg, idp.as_ref(), &subjects).await?;
        let (store, pseudo, tenant) = crate::contract_guard::audit_parts(&path, &cfg).await?;
        let audited = crate::contract_guard::Audited::new(idp, store, pseudo, tenant)?;
        audit_store = Some(audited.store().clone());
        Arc::new(audited)
    } else {
        idp
    };
    let fixture = Fixture {
        user,
        login,
        missing_user: Some(missing),
        push_user: fake_id("alice"),
        totp_user: fake_id("bob"),
        lifecycle,
    };
    let target = Target {
        idp,
        fixture,
        phone: None,
        codes: None,
        faults: None,
        upstream: None,
        unauthorized: Some(unauthorized),
        underprivileged: None,
        mutating: a.mutating,
        push_wait: Duration::from_secs(a.push_wait_secs.max(1)),
    };
    let results = contract::run(&target).await;
    if let Some(store) = audit_store {
        store.close().await;
    }
    let failed = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed(_)))
        .count();
    if g.json {
        let rows: Vec<_> = results
            .iter()
            .map(|r| {
                let (verdict, reason) = match &r.verdict {
                    Verdict::Passed => ("pass", None),
                    Verdict::Failed(m) => ("fail", Some(m.as_str())),
                    Verdict::Skipped(m) => ("skip", Some(m.as_str())),
                };
                serde_json::json!({ "check": r.name, "verdict": verdict, "reason": reason })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "ok": failed == 0,
                "provider": a.provider.name(),
                "base_url": url.as_str(),
                "fake": fake.is_some(),
                "mutating": a.mutating,
                "results": rows,
            })
        );
    } else {
        outln!(
            "contract suite: {} adapter against {}{} ({})",
            a.provider.name(),
            url.as_str().trim_end_matches('/'),
            if fake.is_some() {
                a.provider.fake_label()
            } else {
                ""
            },
            if a.mutating {
                "mutating: the test user is changed"
            } else {
                "read-only"
            }
        );
        out!("{}", contract::table(&results));
        if failed > 0 {
            eprintln!(
                "  next: read the FAIL lines; each names what the adapter returned and what the contract expects"
            );
        }
    }
    Ok(if failed == 0 {
        Exit::Ok
    } else {
        Exit::CheckFailed
    })
}
