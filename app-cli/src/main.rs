//! `fctr`: the command line for operators, auditors and adapter developers.
//!
//! Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error, 3 identity-provider error.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod policy_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// fctr: helpdesk identity verification, from a terminal.
#[derive(Debug, Parser)]
#[command(name = "fctr", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check and explain policy files.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
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
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        match e {
            Exit::Ok => ExitCode::SUCCESS,
            Exit::CheckFailed => ExitCode::from(1),
            Exit::Usage => ExitCode::from(2),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd, cli.json),
    };
    exit.into()
}
