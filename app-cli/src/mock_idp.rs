//! `fctr mock-idp okta | entra`: run a fake identity provider from the testkit on loopback until Ctrl-C.

use crate::term::outln;
use crate::{Exit, Fail, Globals, Outcome};
use clap::Subcommand;
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions, Fault};
use secrecy::ExposeSecret as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum MockIdpCommand {
    /// A fake Okta org (management API, org authorization server, OIDC sign-in, simulated phone page), seeded
    /// with the documented fixture users (testkit/FIXTURES.md). Prints its URL, credentials and users.
    ///
    /// Examples:
    ///   fctr mock-idp okta
    ///   fctr mock-idp okta --listen 127.0.0.1:8081 --push-timeout-secs 120
    ///   fctr mock-idp okta --fault 'GET /api/v1/users/{id}=server_error:503@2'
    ///   fctr mock-idp okta --fault '*=latency:300'
    ///
    /// Then, in another terminal:
    ///   fctr contract-test --provider okta --base-url http://127.0.0.1:8081
    ///   fctr lookup alice@example.com --okta-url http://127.0.0.1:8081 --agent-id agent2@example.com
    #[command(verbatim_doc_comment)]
    Okta {
        /// Address to listen on; loopback only (the fake's control API is unauthenticated). Port 0 picks one.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Seconds a push waits for an answer before it times out.
        #[arg(long, default_value_t = 60)]
        push_timeout_secs: u64,
        /// Requests per minute per route before 429.
        #[arg(long, default_value_t = 600)]
        rate_limit: u32,
        /// Inject a fault (repeatable): `[ROUTE=]KIND[:ARG][@TIMES]`. ROUTE is `*` (default), a route template
        /// (`/api/v1/users/{id}`) or method and template (`GET /api/v1/users/{id}`). KIND: `latency:MS`,
        /// `rate_limited:SECS`, `server_error:STATUS`, `malformed_json`, `drop_connection`. Without @TIMES it
        /// stays until the fake stops (or `DELETE /_fake/faults`).
        #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
        faults: Vec<FaultSpec>,
        /// Scopes granted to the fake's service app (space-separated; default `okta.users.read
        /// okta.users.manage okta.logs.read`), e.g. to see `fctr doctor` name a missing scope.
        #[arg(long, value_name = "SCOPES")]
        service_app_scopes: Option<String>,
        /// Write the service app's private key (PEM) to this file, for a `[okta] private_key_file` setup.
        #[arg(long, value_name = "FILE")]
        key_out: Option<PathBuf>,
    },
    /// A fake Microsoft Entra ID tenant (token endpoint, Microsoft Graph subset, the MFA connector, OIDC
    /// sign-in, simulated phones), seeded with the documented fixture users (testkit/FIXTURES-entra.md).
    /// Prints its authority, Graph base, connector endpoint, app credentials and users.
    ///
    /// Examples:
    ///   fctr mock-idp entra
    ///   fctr mock-idp entra --listen 127.0.0.1:8082 --fault 'GET /v1.0/users/{id}=server_error:503@1'
    ///
    /// Then, in another terminal:
    ///   fctr contract-test --provider entra --base-url http://127.0.0.1:8082
    ///   fctr --config fctr-entra-demo.toml lookup alice@example.com --agent-id agent2@example.com
    ///     (an [entra] file pointing here, with [entra.connector] for verify: see docs/cli.md)
    #[command(verbatim_doc_comment)]
    Entra {
        /// Address to listen on; loopback only (the fake's control API is unauthenticated). Port 0 picks one.
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: SocketAddr,
        /// Seconds a push waits for an answer before it times out.
        #[arg(long, default_value_t = 60)]
        push_timeout_secs: u64,
        /// Inject a fault (repeatable), as for `mock-idp okta` (routes are the fake's Graph templates).
        #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
        faults: Vec<FaultSpec>,
        /// Graph application permissions granted to the fake's app (comma- or space-separated; default: the
        /// least-privilege set of docs/entra-setup.md), e.g. to see `fctr doctor` warn about a broad one or name
        /// a missing one.
        #[arg(long, value_name = "PERMISSIONS")]
        app_permissions: Option<String>,
    },
}

/// One `--fault`.
#[derive(Debug, Clone)]
pub(crate) struct FaultSpec {
    route: String,
    fault: Fault,
    times: Option<u32>,
}

fn parse_fault(s: &str) -> Result<FaultSpec, String> {
    let (route, rest) = match s.split_once('=') {
        Some((r, k)) => (r.trim().to_owned(), k.trim()),
        None => ("*".to_owned(), s.trim()),
    };
    let (kind, times) = match rest.split_once('@') {
        Some((k, t)) => (
            k,
            Some(
                t.parse::<u32>()
                    .map_err(|_| format!("@{t}: TIMES must be a whole number"))?,
            ),
        ),
        None => (rest, None),
    };
    let (name, arg) = match kind.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (kind, None),
    };
    let num = |what: &str| -> Result<u64, String> {
        arg.ok_or_else(|| format!("{name} needs :{what}"))?
            .parse::<u64>()
            .map_err(|_| format!("{name}: {what} must be a whole number"))
    };
    let fault = match name {
        "latency" => Fault::Latency { ms: num("MS")? },
        "rate_limited" => Fault::RateLimited {
            reset_after_secs: num("SECS")?,
        },
        "server_error" => Fault::ServerError {
            status: u16::try_from(num("STATUS")?)
                .ok()
                .filter(|s| (100..=599).contains(s))
                .ok_or("server_error: STATUS must be an HTTP status")?,
        },
        "malformed_json" => Fault::MalformedJson,
        "drop_connection" => Fault::DropConnection,
        other => {
            return Err(format!(
                "unknown fault `{other}`: latency, rate_limited, server_error, malformed_json or drop_connection"
            ));
        }
    };
    Ok(FaultSpec {
        route,
        fault,
        times,
    })
}

fn write_key(path: &PathBuf, pem: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(pem.as_bytes())
}

async fn until_stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

pub(crate) async fn run(cmd: MockIdpCommand, g: &Globals) -> Outcome {
    match cmd {
        MockIdpCommand::Entra {
            listen,
            push_timeout_secs,
            faults,
            app_permissions,
        } => {
            entra(
                listen,
                push_timeout_secs,
                &faults,
                app_permissions.as_deref(),
                g,
            )
            .await
        }
        MockIdpCommand::Okta {
            listen,
            push_timeout_secs,
            rate_limit,
            faults,
            service_app_scopes,
            key_out,
        } => {
            loopback_only(listen)?;
            let options = FakeOktaOptions {
                listen,
                push_timeout: Duration::from_secs(push_timeout_secs.max(1)),
                rate_limit_per_minute: rate_limit.max(1),
                ..FakeOktaOptions::default()
            };
            let options = match service_app_scopes {
                Some(s) => FakeOktaOptions {
                    service_app_scopes: s.split_whitespace().map(str::to_owned).collect(),
                    ..options
                },
                None => options,
            };
            let okta = FakeOkta::start(options).await.map_err(|e| {
                Fail::usage(
                    format!("cannot start the fake Okta: {e}"),
                    "pick another port with --listen 127.0.0.1:PORT (0 picks a free one)",
                )
            })?;
            for f in &faults {
                okta.faults().set(f.route.clone(), f.fault.clone(), f.times);
            }
            let app = okta.service_app();
            let key_file = match &key_out {
                Some(p) => {
                    write_key(p, app.private_key_pem.expose_secret()).map_err(|e| {
                        Fail::usage(
                            format!("cannot write {}: {e}", p.display()),
                            "check the path",
                        )
                    })?;
                    Some(p.display().to_string())
                }
                None => None,
            };
            let base = okta.base_url();
            let base = base.as_str().trim_end_matches('/').to_owned();
            let users = &okta.fixtures().users;
            if g.json {
                let users: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "handle": u.handle, "id": u.id, "login": u.login, "status": u.status,
                            "groups": u.groups,
                            "factors": u.factors.iter().map(|f| &f.factor_type).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                outln!(
                    "{}",
                    serde_json::json!({
                        "base_url": base,
                        "api_token": okta.api_token(),
                        "service_app": {
                            "client_id": app.client_id, "key_id": app.key_id, "alg": app.alg,
                            "scopes": app.scopes, "private_key_file": key_file,
                        },
                        "phone_page": format!("{base}/_fake/phone"),
                        "faults": okta.faults().list(),
                        "users": users,
                    })
                );
            } else {
                outln!("FAKE OKTA (fctr testkit): a test double, not a real identity provider");
                outln!("url:          {base}");
                outln!(
                    "ssws token:   {}   (export FCTR_OKTA_TOKEN=...; not a secret)",
                    okta.api_token()
                );
                outln!(
                    "service app:  client id {}, key id {} ({}), scopes {}",
                    app.client_id,
                    app.key_id,
                    app.alg,
                    app.scopes.join(" ")
                );
                match &key_file {
                    Some(k) => outln!("service key:  {k}"),
                    None => outln!("service key:  (pass --key-out FILE to write it)"),
                }
                outln!("phone page:   {base}/_fake/phone");
                outln!(
                    "control API:  {base}/_fake/pushes, /_fake/pushes/{{tx}}/answer, /_fake/totp/{{user}}, /_fake/faults"
                );
                if !faults.is_empty() {
                    outln!("faults:       {}", okta.faults().list());
                }
                outln!("users:");
                for u in users {
                    let factors: Vec<&str> =
                        u.factors.iter().map(|f| f.factor_type.as_str()).collect();
                    outln!(
                        "  {:<7} {} {:<20} {:<16} groups=[{}] factors=[{}]",
                        u.handle,
                        u.id,
                        u.login,
                        u.status,
                        u.groups.join(","),
                        factors.join(",")
                    );
                }
                outln!("try:");
                outln!("  fctr contract-test --provider okta --base-url {base}");
                outln!(
                    "  fctr lookup alice@example.com --okta-url {base} --agent-id agent2@example.com"
                );
                outln!(
                    "  fctr verify alice@example.com --okta-url {base} --agent-id agent2@example.com"
                );
                outln!("Ctrl-C to stop.");
            }
            let _ = std::io::stdout().flush();
            until_stopped().await;
            okta.shutdown().await;
            Ok(Exit::Ok)
        }
    }
}

fn loopback_only(listen: SocketAddr) -> Result<(), Fail> {
    if listen.ip().is_loopback() {
        return Ok(());
    }
    Err(Fail::usage(
        format!(
            "--listen {listen}: the fake binds loopback only (its control API is unauthenticated)"
        ),
        "use --listen 127.0.0.1:PORT",
    ))
}

async fn entra(
    listen: SocketAddr,
    push_timeout_secs: u64,
    faults: &[FaultSpec],
    app_permissions: Option<&str>,
    g: &Globals,
) -> Outcome {
    use fctr_testkit::entra::{FakeEntra, FakeEntraOptions};
    loopback_only(listen)?;
    let mut options = FakeEntraOptions {
        listen,
        push_timeout: Duration::from_secs(push_timeout_secs.max(1)),
        ..FakeEntraOptions::default()
    };
    if let Some(list) = app_permissions {
        options.app_permissions = list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let fake = FakeEntra::start(options).await.map_err(|e| {
        Fail::usage(
            format!("cannot start the fake Entra tenant: {e}"),
            "pick another port with --listen 127.0.0.1:PORT (0 picks a free one)",
        )
    })?;
    for f in faults {
        fake.faults().set(f.route.clone(), f.fault.clone(), f.times);
    }
    let base = fake.base_url().as_str().trim_end_matches('/').to_owned();
    let app = fake.app();
    let users = &fake.fixtures().users;
    let method_names = |u: &fctr_testkit::entra::FixtureUser| -> Vec<&'static str> {
        u.methods.iter().map(|m| m.method.odata_type()).collect()
    };
    if g.json {
        let users: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "handle": u.handle, "id": u.id, "upn": u.upn, "account_enabled": u.account_enabled,
                    "groups": u.groups, "directory_roles": u.directory_roles, "methods": method_names(u),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "base_url": base,
                "tenant_id": fake.tenant_id(),
                "authority": fake.authority().as_str(),
                "graph_base": fake.graph_base().as_str(),
                "connector_endpoint": fake.connector_endpoint().as_str(),
                "app": {
                    "client_id": app.client_id,
                    "client_secret": app.client_secret.expose_secret(),
                    "permissions": app.permissions,
                },
                "phone_page": format!("{base}/_fake/phone"),
                "faults": fake.faults().list(),
                "users": users,
            })
        );
    } else {
        outln!("FAKE ENTRA ID (fctr testkit): a test double, not a real identity provider");
        outln!("url:          {base}");
        outln!("tenant id:    {}", fake.tenant_id());
        outln!("authority:    {}", fake.authority());
        outln!("graph base:   {}", fake.graph_base());
        outln!("connector:    {}", fake.connector_endpoint());
        outln!(
            "app:          client id {}, secret {} (not a secret), permissions {}",
            app.client_id,
            app.client_secret.expose_secret(),
            app.permissions.join(" ")
        );
        outln!("phone page:   {base}/_fake/phone");
        if !faults.is_empty() {
            outln!("faults:       {}", fake.faults().list());
        }
        outln!("users:");
        for u in users {
            outln!(
                "  {:<7} {} {:<22} {:<8} groups=[{}] roles=[{}] methods=[{}]",
                u.handle,
                u.id,
                u.upn,
                if u.account_enabled {
                    "enabled"
                } else {
                    "disabled"
                },
                u.groups.join(","),
                u.directory_roles.join(","),
                method_names(u).join(",")
            );
        }
        outln!("try:");
        outln!("  fctr contract-test --provider entra --base-url {base}");
        outln!(
            "  fctr --config FILE lookup alice@example.com --agent-id agent2@example.com   (FILE: an [entra] section for this tenant, see docs/cli.md)"
        );
        outln!("Ctrl-C to stop.");
    }
    let _ = std::io::stdout().flush();
    until_stopped().await;
    fake.shutdown().await;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse() {
        let f = parse_fault("GET /api/v1/users/{id}=server_error:503@2")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.route, "GET /api/v1/users/{id}");
        assert_eq!(f.fault, Fault::ServerError { status: 503 });
        assert_eq!(f.times, Some(2));
        let f = parse_fault("latency:250").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.route, "*");
        assert_eq!(f.fault, Fault::Latency { ms: 250 });
        assert_eq!(f.times, None);
        assert!(parse_fault("server_error").is_err());
        assert!(parse_fault("server_error:42").is_err());
        assert!(parse_fault("explode").is_err());
        assert!(parse_fault("malformed_json@x").is_err());
    }
}
