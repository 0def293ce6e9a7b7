//! `fctr`: the command line for operators, auditors and adapter developers.
//!
//! A thin shell: it parses arguments, builds the same adapters the portal builds from the same configuration
//! file, calls [`fctr_core::Engine`] or the stores, and renders the result. It decides nothing itself.
//!
//! Exit codes (the same for every command):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | a check failed: broken audit chain, failed contract check, failed doctor check, caller not verified, action refused by policy |
//! | 2 | usage or configuration error (bad flag, missing file, missing configuration section) |
//! | 3 | identity-provider error (unreachable, credentials refused, upstream failure) |
//!
//! `mock-idp` and `contract-test` need the testkit (fake IdPs, the contract suite and their fixture credentials):
//! they exist only with the `demo` feature, on by default. `--no-default-features` builds an operator binary
//! without them.
//!
//! Personal data (a caller's login, name, e-mail, phone) and one-time secrets are printed to the terminal only:
//! never to a log, never in an error message. This binary installs no log subscriber.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod audit_cmd;
mod changes_cmd;
mod config;
#[cfg(feature = "demo")]
mod contract_cmd;
#[cfg(feature = "demo")]
mod contract_guard;
mod doctor;
mod lookup_cmd;
#[cfg(feature = "demo")]
mod mock_idp;
mod policy_cmd;
mod stack;
mod term;
mod usage_cmd;
mod verify_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use term::outln;

/// fctr: helpdesk identity verification, from a terminal.
///
/// Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error, 3 identity-provider error.
#[derive(Debug, Parser)]
#[command(name = "fctr", version, about, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// The deployment configuration file (the portal's TOML file; secrets come from env or files).
    #[arg(long, global = true, env = "FCTR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify, export and follow the hash-chained audit log.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCommand),
    /// Changes to users made outside fctr: the IdP's own log matched against fctr's audit (exit 1 when found).
    ///
    /// Examples:
    ///   fctr --config /etc/fctr/fctr.toml changes --since 24h
    ///   fctr --config /etc/fctr/fctr.toml --json changes --since 2026-12-01T00:00:00Z
    #[command(verbatim_doc_comment)]
    Changes(changes_cmd::ChangesArgs),
    /// Monthly usage reports (pseudonymous, for billing).
    #[command(subcommand)]
    Usage(usage_cmd::UsageCommand),
    /// Check and explain policy files.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Run a fake identity provider on loopback until Ctrl-C.
    #[command(name = "mock-idp", subcommand)]
    #[cfg(feature = "demo")]
    MockIdp(mock_idp::MockIdpCommand),
    /// Run the adapter contract suite against a fake or a real tenant.
    #[command(name = "contract-test")]
    #[cfg(feature = "demo")]
    ContractTest(contract_cmd::ContractArgs),
    /// Show a caller card: account status, factors with assurance and acceptance, risk facts.
    Lookup(lookup_cmd::LookupArgs),
    /// Verify a caller (push with number matching, or TOTP), then optionally run one action.
    Verify(verify_cmd::VerifyArgs),
    /// Run an action on a caller (needs a live grant: use `fctr verify <user> --then <action>`).
    Act(verify_cmd::ActArgs),
    /// Check configuration, IdP reachability, credentials, scopes and the audit store.
    Doctor(doctor::DoctorArgs),
}

/// What a command asks `main` to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: all good.
    Ok,
    /// 1: a check failed.
    CheckFailed,
    /// 2: usage or configuration error.
    Usage,
    /// 3: identity-provider error.
    Idp,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        match e {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::CheckFailed => ExitCode::from(1),
            Exit::Usage => ExitCode::from(2),
            Exit::Idp => ExitCode::from(3),
        }
    }
}

/// A command that could not do its job: the exit code, what happened, and what to do next. Messages never hold
/// personal data or secrets.
#[derive(Debug)]
pub(crate) struct Fail {
    pub exit: Exit,
    pub message: String,
    pub next: Option<String>,
}

impl Fail {
    /// Exit 2: usage or configuration.
    pub fn usage(message: impl Into<String>, next: impl Into<String>) -> Self {
        Self {
            exit: Exit::Usage,
            message: message.into(),
            next: Some(next.into()),
        }
    }

    /// Exit 1: a check failed.
    pub fn check(message: impl Into<String>, next: impl Into<String>) -> Self {
        Self {
            exit: Exit::CheckFailed,
            message: message.into(),
            next: Some(next.into()),
        }
    }

    /// Exit 3: the identity provider.
    pub fn idp(message: impl Into<String>, next: impl Into<String>) -> Self {
        Self {
            exit: Exit::Idp,
            message: message.into(),
            next: Some(next.into()),
        }
    }

    fn report(&self, json: bool) {
        if json {
            let code = match self.exit {
                Exit::Ok => 0,
                Exit::CheckFailed => 1,
                Exit::Usage => 2,
                Exit::Idp => 3,
            };
            outln!(
                "{}",
                serde_json::json!({ "ok": false, "exit": code, "error": self.message, "next": self.next })
            );
        }
        eprintln!("error: {}", self.message);
        if let Some(n) = &self.next {
            eprintln!("  next: {n}");
        }
    }
}

/// What every command returns.
pub(crate) type Outcome = Result<Exit, Fail>;

/// Global options every command sees.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    pub json: bool,
    pub config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = Globals {
        json: cli.json,
        config: cli.config,
    };
    if let Command::Policy(cmd) = cli.command {
        return policy_cmd::run(cmd, g.json).into();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Usage.into();
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Audit(c) => audit_cmd::run(c, &g).await,
            Command::Usage(c) => usage_cmd::run(c, &g).await,
            Command::Changes(a) => changes_cmd::run(a, &g).await,
            #[cfg(feature = "demo")]
            Command::MockIdp(c) => mock_idp::run(c, &g).await,
            #[cfg(feature = "demo")]
            Command::ContractTest(a) => contract_cmd::run(a, &g).await,
            Command::Lookup(a) => lookup_cmd::run(a, &g).await,
            Command::Verify(a) => verify_cmd::run(a, &g).await,
            Command::Act(a) => verify_cmd::act(&a),
            Command::Doctor(a) => doctor::run(a, &g).await,
            Command::Policy(_) => Ok(Exit::Ok),
        }
    });
    // Background tasks (store writers, the fake IdP) must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(exit) => exit.into(),
        Err(f) => {
            f.report(g.json);
            f.exit.into()
        }
    }
}
