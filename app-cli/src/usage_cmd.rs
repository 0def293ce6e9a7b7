//! `fctr usage report`.

use crate::stack::open_target;
use crate::term::{out, outln};
use crate::{Exit, Fail, Globals, Outcome, config};
use clap::{Subcommand, ValueEnum};
use fctr_ports::{Month, UsageLedger as _};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum UsageCommand {
    /// One month's usage: verifications and actions per tenant and (pseudonymous) agent.
    ///
    /// Examples:
    ///   fctr usage report --db audit.sqlite --month 2026-11
    ///   fctr usage report --db audit.sqlite --month 2026-11 --format csv > 2026-11.csv
    ///   fctr --config /etc/fctr/fctr.toml usage report --month 2026-11 --format json   (SQLite or PostgreSQL)
    #[command(verbatim_doc_comment)]
    Report {
        /// The month, YYYY-MM.
        #[arg(long, value_parser = parse_month)]
        month: Month,
        /// Output format (default: a table; `--json` means json).
        #[arg(long, value_enum)]
        format: Option<UsageFormat>,
        /// The database, a SQLite file (default: the configuration's `[audit]` store, SQLite or PostgreSQL).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
    },
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UsageFormat {
    /// A table for people.
    Text,
    /// A JSON array of rows (month, tenant, agent, kind, count).
    Json,
    /// CSV with the header `month,tenant,agent,kind,count`.
    Csv,
}

fn parse_month(s: &str) -> Result<Month, String> {
    Month::parse(s).map_err(|_| "use YYYY-MM, e.g. 2026-11".to_owned())
}

pub(crate) async fn run(cmd: UsageCommand, g: &Globals) -> Outcome {
    let UsageCommand::Report { month, format, db } = cmd;
    let target = config::audit_target(db.as_ref(), g)?;
    let format = format.unwrap_or(if g.json {
        UsageFormat::Json
    } else {
        UsageFormat::Text
    });
    let store = open_target(&target, true, None).await?;
    let result = match format {
        UsageFormat::Json => store.report_json(month).await.map(|s| outln!("{s}")),
        UsageFormat::Csv => store.report_csv(month).await.map(|s| out!("{s}")),
        UsageFormat::Text => store.report(month).await.map(|rows| {
            if rows.is_empty() {
                outln!("no usage recorded in {month}");
                return;
            }
            outln!(
                "{:<8} {:<16} {:<52} {:<13} {:>7}",
                "month",
                "tenant",
                "agent",
                "kind",
                "count"
            );
            let mut total = 0u64;
            for r in &rows {
                outln!(
                    "{:<8} {:<16} {:<52} {:<13} {:>7}",
                    r.month.to_string(),
                    r.tenant.to_string(),
                    r.agent.as_str(),
                    r.kind.as_str(),
                    r.count
                );
                total += r.count;
            }
            outln!("{} row(s), {total} in total", rows.len());
        }),
    };
    store.close().await;
    result.map_err(|e| {
        Fail::usage(
            format!(
                "cannot read usage from {} ({})",
                target.describe(),
                e.code()
            ),
            "check the path and permissions, or that PostgreSQL is reachable",
        )
    })?;
    Ok(Exit::Ok)
}
