//! `fctr doctor`: checks a deployment configuration end to end, and says what to fix.

use crate::config::AuditTarget;
use crate::stack::{open_store, open_target};
use crate::term::outln;
use crate::{Exit, Fail, Globals, Outcome, config};
use clap::Args;
use fctr_okta::{OktaAdapter, TokenError};
use fctr_ports::{AuditLog as _, ChangeFeed as _, Directory as _, Egress, PortError, UserQuery};
use fctr_wiring::DurableStore;
use fctr_wiring::config::{Config, EntraSection, IdpSection};
use secrecy::{ExposeSecret as _, SecretString};
use std::path::Path;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  fctr doctor --config /etc/fctr/fctr.toml
  FCTR_CONFIG=/etc/fctr/fctr.toml fctr --json doctor

Checks, in order: the configuration file; the egress path to the identity provider ([network] egress_proxy,
egress_bind: direct, via the proxy, bound to an address; whether the proxy answers); the identity provider
([okta] or [entra], exactly one): its settings, reaching it and getting a token (check_credentials), for Okta
the granted scopes and whether the credential is broader than fctr needs, for Entra the kind of credential
and the MFA connector (token and risks), then a read through the users API (Okta) or Microsoft Graph (Entra);
the pseudonymization key; the policy (and its warnings); the audit store (writable, chain intact). Exit 1 when any check fails; warnings do
not fail.")]
pub(crate) struct DoctorArgs {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Check {
    name: &'static str,
    level: Level,
    detail: String,
    next: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.0.push(Check {
            name,
            level: Level::Ok,
            detail: detail.into(),
            next: None,
        });
    }
    fn warn(&mut self, name: &'static str, detail: impl Into<String>, next: impl Into<String>) {
        self.0.push(Check {
            name,
            level: Level::Warn,
            detail: detail.into(),
            next: Some(next.into()),
        });
    }
    fn fail(&mut self, name: &'static str, detail: impl Into<String>, next: impl Into<String>) {
        self.0.push(Check {
            name,
            level: Level::Fail,
            detail: detail.into(),
            next: Some(next.into()),
        });
    }
    fn failed(&mut self, name: &'static str, f: Fail) {
        self.fail(name, f.message, f.next.unwrap_or_default());
    }
}

pub(crate) async fn run(_: DoctorArgs, g: &Globals) -> Outcome {
    let Some(path) = g.config.clone() else {
        return Err(Fail::usage(
            "doctor checks a deployment configuration, and none was given",
            "pass --config FILE (or set FCTR_CONFIG)",
        ));
    };
    let mut r = Report::default();
    match config::load(&path) {
        Err(f) => r.failed("config", f),
        Ok(cfg) => {
            r.ok("config", format!("{} parsed", path.display()));
            match config::egress(Some(&cfg)) {
                // Never fall back to a direct path the deployment did not choose: skip the IdP checks.
                Err(f) => r.failed("network.egress", f),
                Ok(egress) => {
                    check_egress(&mut r, &cfg, &egress).await;
                    match config::idp_section(&path, &cfg) {
                        Ok(IdpSection::Entra(e)) => check_entra(&mut r, e, &egress).await,
                        Ok(_) => check_okta(&mut r, &path, &cfg, &egress).await,
                        Err(f) => r.failed("idp", f),
                    }
                }
            }
            check_pseudonymization(&mut r, &path, &cfg);
            check_policy(&mut r, &cfg);
            check_audit(&mut r, &path, &cfg).await;
        }
    }
    print(&r, g.json);
    let failed = r.0.iter().any(|c| c.level == Level::Fail);
    Ok(if failed { Exit::CheckFailed } else { Exit::Ok })
}

fn print(r: &Report, json: bool) {
    let count = |l: Level| r.0.iter().filter(|c| c.level == l).count();
    if json {
        let checks: Vec<_> = r
            .0
            .iter()
            .map(|c| {
                serde_json::json!({
                    "check": c.name,
                    "status": match c.level { Level::Ok => "ok", Level::Warn => "warn", Level::Fail => "fail" },
                    "detail": c.detail,
                    "next": c.next,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({ "ok": count(Level::Fail) == 0, "checks": checks })
        );
        return;
    }
    for c in &r.0 {
        let tag = match c.level {
            Level::Ok => "ok",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        outln!("{tag:<5} {:<18} {}", c.name, c.detail);
        if let Some(n) = &c.next {
            outln!("      {:<18} next: {n}", "");
        }
    }
    outln!(
        "{} ok, {} warning(s), {} failed",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    );
}

fn token_next(e: &TokenError) -> String {
    match e {
        TokenError::InvalidScope { scope } => format!(
            "Admin Console > Applications > the fctr service app > Okta API Scopes: grant {scope}"
        ),
        TokenError::InvalidClient => {
            "check [okta] client_id and key_id, and that the app's registered public key matches private_key_file"
                .into()
        }
        TokenError::UnauthorizedClient => {
            "create an API Services app (client credentials) and use its client id".into()
        }
        TokenError::Unavailable | TokenError::Timeout => {
            "check [okta] org_url, DNS and the network path (proxy, firewall) to the org".into()
        }
        _ => "check the service app's settings in the Okta Admin Console".into(),
    }
}

async fn check_okta(r: &mut Report, path: &Path, cfg: &Config, egress: &Egress) {
    let section = match config::okta_section(path, cfg) {
        Ok(s) => s,
        Err(f) => return r.failed("okta.settings", f),
    };
    let auth = match config::okta_auth(section) {
        Ok(a) => a,
        Err(f) => return r.failed("okta.credential", f),
    };
    let mode = auth.mode();
    let okta: OktaAdapter = match config::okta_adapter(section.org_url.clone(), auth, egress) {
        Ok(o) => o,
        Err(f) => return r.failed("okta.settings", f),
    };
    let org = okta.org_url().as_str().trim_end_matches('/').to_owned();
    r.ok("okta.settings", format!("{org} ({mode})"));

    // Token acquisition (service app) and granted scopes.
    if mode == "ssws" {
        r.ok("okta.token", "SSWS API token read (nothing to acquire)");
        r.warn(
            "okta.privilege",
            "an SSWS API token carries every privilege of the admin who created it: far broader than fctr needs",
            "use an OAuth API Services app with private_key_jwt and exactly the scopes okta.users.read \
             okta.users.manage, with an admin role limited to the users agents serve ([okta] client_id, key_id, \
             private_key_file)",
        );
    } else {
        match okta.check_credentials().await {
            Ok(()) => {
                r.ok(
                    "okta.token",
                    "access token acquired from the org authorization server",
                );
                r.ok(
                    "okta.scopes",
                    format!("granted exactly what fctr asks for: {}", fctr_okta::SCOPES),
                );
            }
            Err(e @ TokenError::InvalidScope { .. }) => {
                r.ok("okta.token", "the token endpoint answered");
                r.fail("okta.scopes", e.to_string(), token_next(&e));
            }
            Err(e) => r.fail("okta.token", e.to_string(), token_next(&e)),
        }
    }

    // Reachability and read permission: a search that matches no one.
    let probe = UserQuery::login("fctr-doctor-probe@invalid.example");
    let Ok(q) = probe else {
        return r.fail("okta.read", "internal: probe query", "report a bug");
    };
    match okta.find_users(&q, 1).await {
        Ok(_) => {
            let budget = okta
                .rate_budget()
                .map(|b| format!("; rate limit {} of {} left for {}", b.remaining, b.limit, b.bucket))
                .unwrap_or_default();
            r.ok("okta.read", format!("users API answered{budget}"));
        }
        Err(PortError::Unauthorized) => r.fail(
            "okta.read",
            "the org refused the credential (401)",
            if mode == "ssws" {
                "the API token is wrong, expired or revoked: create a new one (or better, a service app)"
            } else {
                "check the service app's client id, key id and registered key"
            },
        ),
        Err(PortError::Forbidden { missing }) => r.fail(
            "okta.read",
            format!(
                "the org refused a read (403){}",
                missing.map(|m| format!(": missing {m}")).unwrap_or_default()
            ),
            "assign the service app an admin role covering the users agents serve (e.g. Help Desk Administrator)",
        ),
        Err(e @ (PortError::Unavailable | PortError::Timeout)) => r.fail(
            "okta.read",
            format!("cannot reach {org} ({}, {egress})", e.code()),
            "check [okta] org_url (https://<org>.okta.com), DNS and the network path to the org ([network] \
             egress_proxy / egress_bind, and the network.egress check above)",
        ),
        Err(e) => r.fail(
            "okta.read",
            format!("the users API failed ({})", e.code()),
            "retry; if it persists, check Okta's status page",
        ),
    }
    check_okta_logs(r, &okta).await;
}

/// The System Log (out-of-band change detection, `fctr changes`): optional, so a missing grant is a warning.
async fn check_okta_logs(r: &mut Report, okta: &OktaAdapter) {
    let now = chrono::Utc::now();
    match okta.changes(now - chrono::TimeDelta::minutes(1), now).await {
        Ok(_) => r.ok(
            "okta.logs",
            "System Log readable (okta.logs.read): out-of-band change detection can run",
        ),
        Err(PortError::Forbidden { .. }) => r.warn(
            "okta.logs",
            "the System Log is not readable (okta.logs.read not granted): out-of-band change detection \
             (fctr changes) cannot run",
            "optional: Admin Console > Applications > the fctr service app > Okta API Scopes: grant \
             okta.logs.read (see docs/out-of-band.md)",
        ),
        Err(e) => r.warn(
            "okta.logs",
            format!("the System Log could not be read ({})", e.code()),
            "retry; out-of-band change detection needs it (docs/out-of-band.md)",
        ),
    }
}

/// The directory audit log (out-of-band change detection, `fctr changes`): optional, so a missing permission is a
/// warning.
async fn check_entra_audit(r: &mut Report, entra: &fctr_entra::EntraAdapter) {
    let now = chrono::Utc::now();
    match entra.changes(now - chrono::TimeDelta::minutes(1), now).await {
        Ok(_) => r.ok(
            "entra.audit",
            "directory audit log readable (AuditLog.Read.All): out-of-band change detection can run",
        ),
        Err(PortError::Forbidden { .. }) => r.warn(
            "entra.audit",
            "the directory audit log is not readable (AuditLog.Read.All and Directory.Read.All not granted): \
             out-of-band change detection (fctr changes) cannot run",
            "optional: app registration > API permissions > Microsoft Graph > Application: AuditLog.Read.All \
             and Directory.Read.All, then grant admin consent (docs/entra-setup.md, docs/out-of-band.md)",
        ),
        Err(e) => r.warn(
            "entra.audit",
            format!("the directory audit log could not be read ({})", e.code()),
            "retry; out-of-band change detection needs it (docs/out-of-band.md)",
        ),
    }
}

fn entra_token_next(e: &fctr_entra::TokenError) -> String {
    use fctr_entra::TokenError as T;
    match e {
        T::Unavailable | T::Timeout => {
            "check [entra] authority (default https://login.microsoftonline.com/), DNS and the network path \
             (proxy, firewall)"
                .into()
        }
        T::RateLimited { .. } => "wait a minute and run doctor again".into(),
        // Every other message already says what to fix in the tenant.
        _ => "fix what the message names in the Entra admin center or in [entra], then run doctor again \
              (docs/entra-setup.md)"
            .into(),
    }
}

async fn check_entra(r: &mut Report, section: &EntraSection, egress: &Egress) {
    let entra = match config::entra_from_section(section, egress) {
        Ok(a) => a,
        Err(f) => return r.failed("entra.settings", f),
    };
    let graph = section
        .graph_base
        .as_ref()
        .map_or(fctr_entra::DEFAULT_GRAPH_BASE, url::Url::as_str)
        .trim_end_matches('/')
        .to_owned();
    let kind = section.credential_kind();
    r.ok(
        "entra.settings",
        format!(
            "tenant {}, Graph {graph} ({kind})",
            section.tenant_id.trim()
        ),
    );
    if section.private_key_file.is_none() {
        r.warn(
            "entra.credential",
            "a client secret is a bearer secret (up to two years' life): whoever copies it is fctr",
            "prefer a certificate: private_key_file and certificate_file in [entra] (docs/entra-setup.md, \
             section 3)",
        );
    }

    // Tokens: Graph, and the connector's when configured.
    let connector = section.connector.is_some();
    match entra.check_credentials().await {
        Ok(()) => r.ok(
            "entra.token",
            format!(
                "{} acquired from {}",
                if connector {
                    "Graph and MFA connector tokens"
                } else {
                    "Graph token"
                },
                entra.token_endpoint()
            ),
        ),
        Err(e) => r.fail("entra.token", e.to_string(), entra_token_next(&e)),
    }
    if let Some(granted) = entra.granted_graph_permissions().await {
        let broader: Vec<&str> = granted
            .iter()
            .map(String::as_str)
            .filter(|p| !fctr_entra::USED_GRAPH_PERMISSIONS.contains(p))
            .collect();
        if broader.is_empty() {
            r.ok(
                "entra.permissions",
                format!("granted only permissions fctr uses: {}", granted.join(" ")),
            );
        } else {
            r.warn(
                "entra.permissions",
                format!(
                    "the app holds Graph permissions fctr never uses: {}",
                    broader.join(" ")
                ),
                "remove them from the app registration's API permissions and revoke their admin consent \
                 (docs/entra-setup.md, section 2)",
            );
        }
    }
    check_entra_audit(r, &entra).await;
    if connector {
        r.warn(
            "entra.connector",
            "the unofficial MFA connector is configured: its credential can prompt any user in the tenant, and \
             its pushes carry no number to match",
            "keep that credential short-lived in a secret store, watch the MFA client service principal's \
             sign-ins, and make policy require a second factor with an Entra push (docs/entra-setup.md, section 4)",
        );
    }

    // Reachability and read permission: a search that matches no one.
    let Ok(probe) = UserQuery::login("fctr-doctor-probe@invalid.example") else {
        return r.fail("entra.read", "internal: probe query", "report a bug");
    };
    match entra.find_users(&probe, 1).await {
        Ok(_) => r.ok("entra.read", "Microsoft Graph answered a user search"),
        Err(PortError::Unauthorized) => r.fail(
            "entra.read",
            "Microsoft Graph refused the token (401)",
            "check the [entra] credential and that the app registration is in this tenant",
        ),
        Err(PortError::Forbidden { missing }) => r.fail(
            "entra.read",
            format!(
                "Microsoft Graph refused a read (403){}",
                missing.map(|m| format!(": missing {m}")).unwrap_or_default()
            ),
            "grant the application permission User.Read.All and give admin consent (docs/entra-setup.md, \
             section 2)",
        ),
        Err(e @ (PortError::Unavailable | PortError::Timeout)) => r.fail(
            "entra.read",
            format!("cannot reach {graph} ({}, {egress})", e.code()),
            "check [entra] graph_base (default https://graph.microsoft.com/v1.0/), DNS and the network path \
             ([network] egress_proxy / egress_bind, and the network.egress check above)",
        ),
        Err(e) => r.fail(
            "entra.read",
            format!("Microsoft Graph failed ({})", e.code()),
            "retry; if it persists, check the Microsoft 365 service health page",
        ),
    }
}

/// Where IdP traffic goes first: the identity provider's own URL (the Okta org, the Entra authority).
fn idp_target(cfg: &Config) -> Option<url::Url> {
    match cfg.identity_provider().ok()? {
        IdpSection::Okta(o) => Some(o.org_url.clone()),
        IdpSection::Entra(e) => Some(
            e.authority
                .clone()
                .or_else(|| url::Url::parse(fctr_entra::DEFAULT_AUTHORITY).ok())?,
        ),
        _ => None,
    }
}

/// The egress path, said in words, and whether it works: the source address is one of this host's, and the
/// proxy accepts a connection and answers a request for the identity provider (`CONNECT host:443` for https,
/// a forwarded `HEAD` for plain http) with its credentials. Nothing is ever tried directly when a proxy is set.
async fn check_egress(r: &mut Report, cfg: &Config, egress: &Egress) {
    const NAME: &str = "network.egress";
    let Some(proxy) = egress.proxy() else {
        if let Some(ip) = egress.bind() {
            match std::net::TcpListener::bind((ip, 0)) {
                Ok(_) => r.ok(NAME, egress.to_string()),
                Err(e) => r.fail(
                    NAME,
                    format!("{egress}: cannot use {ip} as the source address ({e})"),
                    "set [network] egress_bind to an address this host has (ip -brief address), or remove it",
                ),
            }
        } else {
            r.ok(
                NAME,
                "direct (no egress_proxy, no egress_bind; HTTP_PROXY and HTTPS_PROXY are not used)",
            );
        }
        return;
    };
    let Some(target) = idp_target(cfg) else {
        return r.ok(NAME, egress.to_string());
    };
    match probe_proxy(egress, proxy, &target).await {
        // 407, or 401 as tinyproxy answers a forwarded (plain http) request without valid credentials.
        Ok(status @ (401 | 407)) => r.fail(
            NAME,
            format!("{egress}: the proxy refused the credentials ({status})"),
            "check [network] egress_proxy_username and the password in egress_proxy_password_env / _file",
        ),
        Ok(status) if (200..300).contains(&status) || (target.scheme() != "https" && status < 500) => r.ok(
            NAME,
            format!(
                "{egress}: the proxy answers ({status} for {})",
                target.host_str().unwrap_or_default()
            ),
        ),
        Ok(status) => r.fail(
            NAME,
            format!(
                "{egress}: the proxy answers but refused a tunnel to {} ({status})",
                target.host_str().unwrap_or_default()
            ),
            "allow CONNECT from this host to the identity provider's host and port 443 in the proxy's rules",
        ),
        Err(why) => r.fail(
            NAME,
            format!("{egress}: the proxy does not answer: {why}"),
            "check [network] egress_proxy (http://host:port), that the proxy runs, and the firewall between \
             this host and the proxy; fctr never falls back to a direct connection",
        ),
    }
}

/// Opens a connection to the proxy (from `egress_bind` when set) and asks it for `target`; returns the status
/// code of its answer, or why there was none. The credentials go in `Proxy-Authorization` and nowhere else.
async fn probe_proxy(
    egress: &Egress,
    proxy: &fctr_ports::EgressProxy,
    target: &url::Url,
) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let limit = std::time::Duration::from_secs(5);
    let host = proxy.host().trim_start_matches('[').trim_end_matches(']');
    let addr = tokio::time::timeout(limit, tokio::net::lookup_host((host, proxy.port())))
        .await
        .map_err(|_| "name lookup timed out".to_owned())?
        .map_err(|e| format!("cannot resolve {}: {e}", proxy.host()))?
        .next()
        .ok_or_else(|| format!("{} has no address", proxy.host()))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    if let Some(ip) = egress.bind() {
        socket
            .bind(std::net::SocketAddr::new(ip, 0))
            .map_err(|e| format!("cannot bind {ip}: {e}"))?;
    }
    let mut stream = tokio::time::timeout(limit, socket.connect(addr))
        .await
        .map_err(|_| format!("connecting to {} timed out", proxy.authority()))?
        .map_err(|e| format!("cannot connect to {}: {e}", proxy.authority()))?;
    let authority = format!(
        "{}:{}",
        target.host_str().unwrap_or_default(),
        target.port_or_known_default().unwrap_or(443)
    );
    let mut request = if target.scheme() == "https" {
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n")
    } else {
        format!(
            "HEAD {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
            target.as_str()
        )
    };
    let auth = proxy.authorization();
    if let Some(a) = &auth {
        request.push_str("Proxy-Authorization: ");
        request.push_str(a.expose_secret());
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    // Zeroized when dropped: it holds the proxy credentials.
    let request = SecretString::from(request);
    let exchange = async {
        stream.write_all(request.expose_secret().as_bytes()).await?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).await?;
        Ok::<_, std::io::Error>(buf[..n].to_vec())
    };
    let head = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| {
            format!(
                "{} accepted the connection but did not answer",
                proxy.authority()
            )
        })?
        .map_err(|e| format!("{} closed the connection: {e}", proxy.authority()))?;
    let line = String::from_utf8_lossy(&head);
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{} did not answer in HTTP", proxy.authority()))
}

fn check_pseudonymization(r: &mut Report, path: &Path, cfg: &Config) {
    match config::pseudonymizer(path, cfg) {
        Ok(p) => r.ok(
            "pseudonymization",
            format!("key {} loaded (at least 32 bytes)", p.key_id().as_str()),
        ),
        Err(f) => r.failed("pseudonymization", f),
    }
}

fn check_policy(r: &mut Report, cfg: &Config) {
    match cfg.load_policy() {
        Ok(p) => {
            let source = cfg.policy.file.as_ref().map_or_else(
                || "built-in default policy".to_owned(),
                |f| f.display().to_string(),
            );
            r.ok(
                "policy",
                format!("{source} loaded ({} role(s))", p.roles().len()),
            );
            for w in p.warnings() {
                r.warn(
                    "policy.warning",
                    w.to_string(),
                    "tighten the policy, or accept the risk knowingly",
                );
            }
        }
        Err(e) => r.fail(
            "policy",
            e.to_string(),
            "run `fctr policy lint FILE` and fix the line it names",
        ),
    }
}

async fn check_audit(r: &mut Report, path: &Path, cfg: &Config) {
    let Some(audit) = &cfg.audit else {
        return r.fail(
            "audit.store",
            format!(
                "{} has no [audit] sqlite_path or postgres_url_env / postgres_url_file",
                path.display()
            ),
            "add an [audit] store: fctr does nothing it cannot audit",
        );
    };
    let target = match config::audit_section_target(path, audit) {
        Ok(t) => t,
        Err(f) => return r.failed("audit.store", f),
    };
    let store = match &target {
        AuditTarget::Sqlite(db) => match check_sqlite_file(r, db).await {
            Some(s) => DurableStore::Sqlite(s),
            None => return,
        },
        AuditTarget::Postgres { .. } => match open_target(&target, false, None).await {
            Ok(s) => {
                r.ok(
                    "audit.store",
                    format!(
                        "{} reachable; its tables are in place (created if they were missing)",
                        target.describe()
                    ),
                );
                s
            }
            Err(f) => return r.failed("audit.store", f),
        },
    };
    match store.verify_chain().await {
        Ok(Ok(s)) => r.ok(
            "audit.chain",
            format!(
                "intact: {} event(s) in {} tenant chain(s)",
                s.events,
                s.heads.len()
            ),
        ),
        Ok(Err(b)) => r.fail(
            "audit.chain",
            format!(
                "BROKEN: tenant {}, position {}: {}",
                b.tenant,
                b.position,
                b.kind.describe()
            ),
            "keep the store as evidence and run `fctr audit verify`; compare with your last export",
        ),
        Err(e) => r.fail(
            "audit.chain",
            format!("cannot read the audit store ({})", e.code()),
            "check it is an fctr audit store and not locked by another program, or that PostgreSQL is reachable",
        ),
    }
    store.close().await;
}

/// The SQLite file's directory and permissions; the store, opened, when the file exists.
async fn check_sqlite_file(r: &mut Report, db: &Path) -> Option<fctr_sqlite::SqliteStore> {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.is_dir() {
        r.fail(
            "audit.store",
            format!("directory {} does not exist", dir.display()),
            "create it, owned by the user the portal runs as",
        );
        return None;
    }
    // Writable: the file itself when it exists, else the directory (the portal creates the file).
    let writable = if db.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(db)
            .map(|_| ())
    } else {
        let probe = dir.join(format!(".fctr-doctor-{}", std::process::id()));
        std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe))
    };
    if let Err(e) = writable {
        r.fail(
            "audit.store",
            format!("{} is not writable: {e}", db.display()),
            "give the portal's user write access to the file and its directory (WAL files are created beside it)",
        );
        return None;
    }
    if !db.exists() {
        r.ok(
            "audit.store",
            format!(
                "{} does not exist yet; its directory is writable (the portal creates it)",
                db.display()
            ),
        );
        return None;
    }
    r.ok("audit.store", format!("{} is writable", db.display()));
    match open_store(db, true).await {
        Ok(s) => Some(s),
        Err(f) => {
            r.failed("audit.chain", f);
            None
        }
    }
}
