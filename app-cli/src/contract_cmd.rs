//! `fctr contract-test`: the adapter contract suite (`fctr_testkit::contract`) against a running IdP.
//!
//! Against a URL only the adapter itself is available: the phone, code and fault drivers of the in-process
//! tests are absent, so the checks that need them are reported as skipped, with the reason. Read-only by
//! default; lifecycle checks run only with `--mutating` and `--test-user`, and then only on that user.

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
/// A token no org accepts, for the 401 check.
const WRONG_TOKEN: &str = "00fctr-contract-test-wrong-token";

#[derive(Debug, Args)]
pub(crate) struct ContractArgs {
    /// Which adapter to test.
    #[arg(long, value_enum)]
    provider: Provider,
    /// The org URL (e.g. a `fctr mock-idp okta`); without it, `[okta] org_url` of --config.
    #[arg(long, value_name = "URL")]
    base_url: Option<Url>,
    /// Environment variable holding the SSWS token for --base-url (default FCTR_OKTA_TOKEN; against a local fake,
    /// the fake's documented default token when unset).
    #[arg(long, value_name = "VAR")]
    api_token_env: Option<String>,
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
    /// Microsoft Entra ID (not available yet).
    Entra,
}

/// The fixture users of a fake Okta, when the URL is one (`GET /_fake/fixtures` on loopback).
async fn fake_fixtures(url: &Url) -> Option<serde_json::Value> {
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
        .is_some_and(serde_json::Value::is_array)
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
            "give an IdP user id such as 00u1abcd…",
        )
    })
}

pub(crate) async fn run(a: ContractArgs, g: &Globals) -> Outcome {
    if a.provider == Provider::Entra {
        return Err(Fail::usage(
            "contract-test --provider entra is not available yet",
            "use --provider okta",
        ));
    }
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
    let idp: Arc<dyn IdentityProvider> = Arc::new(okta);
    let missing = subject(MISSING_USER, "missing user")?;

    // Reachability first: a run against an unreachable or refusing org says so once, with exit 3.
    match idp.get_user(&missing).await {
        Ok(_) | Err(PortError::NotFound) => {}
        Err(e) => return Err(port_error(&format!("contract-test against {url}"), &e)),
    }

    let fake = fake_fixtures(&url).await;
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
                .and_then(|f| fixture_field(f, "alice", "login"))
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
    let fixture = Fixture {
        user,
        login,
        missing_user: Some(missing),
        push_user: fake_id("alice"),
        totp_user: fake_id("bob"),
        lifecycle,
    };
    let wrong = config::okta_adapter(
        url.clone(),
        OktaAuth::ApiToken(SecretString::from(WRONG_TOKEN.to_owned())),
    )?;
    let target = Target {
        idp,
        fixture,
        phone: None,
        codes: None,
        faults: None,
        upstream: None,
        unauthorized: Some(Arc::new(wrong)),
        underprivileged: None,
        mutating: a.mutating,
        push_wait: Duration::from_secs(a.push_wait_secs.max(1)),
    };
    let results = contract::run(&target).await;
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
                "provider": "okta",
                "base_url": url.as_str(),
                "fake": fake.is_some(),
                "mutating": a.mutating,
                "results": rows,
            })
        );
    } else {
        outln!(
            "contract suite: okta adapter against {}{} ({})",
            url.as_str().trim_end_matches('/'),
            if fake.is_some() {
                " (fake Okta: fixture users)"
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
