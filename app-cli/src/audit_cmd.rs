//! `fctr audit verify | export | tail`.

use crate::config::AuditTarget;
use crate::stack::open_target;
use crate::term::{csv_field, outln, stdout_is_terminal};
use crate::{Exit, Fail, Globals, Outcome, config};
use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use fctr_ports::{
    AuditLog as _, AuditQuery, BreakKind, ChainBreak, PortError, SealedEvent, SecretString,
    TenantId,
};
use fctr_wiring::DurableStore;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk every tenant's hash chain: exit 0 when intact, 1 when broken (with tenant, position and kind).
    ///
    /// Examples:
    ///   fctr audit verify --db /var/lib/fctr/audit.sqlite
    ///   fctr --config /etc/fctr/fctr.toml audit verify      (its audit store: SQLite or PostgreSQL)
    ///   fctr --json audit verify --db audit.sqlite
    #[command(verbatim_doc_comment)]
    Verify {
        /// The audit database, a SQLite file (default: the configuration's `[audit]` store, SQLite or PostgreSQL).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// The portal's checkpoint key, in this file: checks every tenant's latest checkpoint's HMAC and that the
        /// chain still reaches it with the same hash (a cut tail or a re-hashed chain fails). Default: `[audit]
        /// checkpoint_key_env` / `checkpoint_key_file` of --config, when set.
        #[arg(long, value_name = "FILE", conflicts_with = "checkpoint_key_env")]
        checkpoint_key_file: Option<PathBuf>,
        /// The same, from this environment variable.
        #[arg(long, value_name = "VAR")]
        checkpoint_key_env: Option<String>,
    },
    /// Export events for a SIEM or an outside verifier: JSON lines (chain order, with seq and hashes) or CSV.
    ///
    /// Examples:
    ///   fctr audit export --db audit.sqlite --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z
    ///   fctr audit export --db audit.sqlite --format csv --out november.csv
    #[command(verbatim_doc_comment)]
    Export {
        /// The audit database, a SQLite file (default: the configuration's `[audit]` store, SQLite or PostgreSQL).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Events at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long, value_parser = parse_time)]
        since: Option<DateTime<Utc>>,
        /// Events strictly before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        until: Option<DateTime<Utc>>,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Show the latest events (pseudonymous), and optionally keep following new ones until Ctrl-C.
    ///
    /// Examples:
    ///   fctr audit tail --db audit.sqlite -n 50
    ///   fctr audit tail --db audit.sqlite --follow
    ///   fctr --json audit tail --db audit.sqlite --follow | jq .
    #[command(verbatim_doc_comment)]
    Tail {
        /// The audit database, a SQLite file (default: the configuration's `[audit]` store, SQLite or PostgreSQL).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// How many of the latest events to show.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: usize,
        /// Keep running and print new events as they are written.
        #[arg(short, long)]
        follow: bool,
        /// How often to look for new events with --follow, in milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        interval_ms: u64,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// One JSON object per line, in chain order, with `seq`, `prev_hash` and `hash` (docs/audit.md).
    Jsonl,
    /// One row per event: tenant, seq, time, kind, outcome, pseudonyms, factor, action, reason, hashes.
    Csv,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: use RFC 3339, e.g. 2026-11-01T00:00:00Z"))
}

pub(crate) async fn run(cmd: AuditCommand, g: &Globals) -> Outcome {
    match cmd {
        AuditCommand::Verify {
            db,
            checkpoint_key_file,
            checkpoint_key_env,
        } => {
            let key = config::checkpoint_key(
                checkpoint_key_env.as_deref(),
                checkpoint_key_file.as_deref(),
                g,
            )?;
            verify(&config::audit_target(db.as_ref(), g)?, key, g.json).await
        }
        AuditCommand::Export {
            db,
            since,
            until,
            tenant,
            format,
            out,
        } => {
            let target = config::audit_target(db.as_ref(), g)?;
            let tenant = tenant
                .map(|t| {
                    TenantId::parse(t).map_err(|e| {
                        Fail::usage(
                            format!("--tenant: {e}"),
                            "give a tenant label as in the configuration",
                        )
                    })
                })
                .transpose()?;
            if let (Some(s), Some(u)) = (since, until) {
                if s >= u {
                    return Err(Fail::usage(
                        "--since is not before --until",
                        "swap them, or widen the range",
                    ));
                }
            }
            let query = AuditQuery {
                tenant,
                since,
                until,
                ..AuditQuery::default()
            };
            export(&target, &query, format, out.as_ref()).await
        }
        AuditCommand::Tail {
            db,
            lines,
            follow,
            interval_ms,
        } => {
            let target = config::audit_target(db.as_ref(), g)?;
            tail(
                &target,
                lines,
                follow,
                Duration::from_millis(interval_ms.max(50)),
                g.json,
            )
            .await
        }
    }
}

fn store_error(e: &PortError) -> Fail {
    match e {
        PortError::Malformed => Fail::check(
            "a stored audit event cannot be decoded: the store was edited or damaged",
            "keep the store as evidence; restore from backup and compare with the last export",
        ),
        _ => Fail::usage(
            format!("cannot read the audit database ({})", e.code()),
            "check the path and permissions (is another program holding a write lock?), or that PostgreSQL is \
             reachable",
        ),
    }
}

async fn verify(target: &AuditTarget, key: Option<SecretString>, json: bool) -> Outcome {
    let keyed = key.is_some();
    let store = open_target(target, true, key).await?;
    let result = store.verify_chain().await;
    let checkpoints = if keyed {
        Some(store.latest_checkpoints().await)
    } else {
        None
    };
    store.close().await;
    let result = result.map_err(|e| store_error(&e))?;
    // With the key, a tenant chain without any checkpoint is refused: deleting the checkpoints is how someone who
    // can write the file would otherwise hide a cut tail or a re-hashed chain.
    let result = match (result, checkpoints) {
        (Ok(summary), Some(cps)) => {
            let cps = cps.map_err(|e| store_error(&e))?;
            match summary
                .heads
                .iter()
                .find(|h| !cps.iter().any(|c| c.tenant == h.tenant))
            {
                Some(h) => Err(ChainBreak {
                    tenant: h.tenant.clone(),
                    position: 0,
                    kind: BreakKind::Truncated,
                }),
                None => Ok(summary),
            }
            .map_err(|b| {
                (
                    b,
                    "no checkpoint recorded for this tenant: the checkpoints were deleted",
                )
            })
        }
        (Ok(summary), None) => Ok(summary),
        (Err(b), _) => Err((b, "")),
    };
    match result {
        Ok(summary) => {
            if json {
                outln!(
                    "{}",
                    serde_json::json!({ "ok": true, "events": summary.events, "heads": summary.heads })
                );
            } else {
                outln!(
                    "audit chain intact: {} event(s) in {} tenant chain(s)",
                    summary.events,
                    summary.heads.len()
                );
                for h in &summary.heads {
                    outln!("  tenant {}: head at seq {} ({})", h.tenant, h.seq, h.hash);
                }
            }
            Ok(Exit::Ok)
        }
        Err((brk, note)) => {
            let description = if note.is_empty() {
                brk.kind.describe().to_owned()
            } else {
                note.to_owned()
            };
            if json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "ok": false,
                        "break": brk,
                        "description": description,
                    })
                );
            } else {
                outln!(
                    "audit chain BROKEN: tenant {}, position {}: {}",
                    brk.tenant,
                    brk.position,
                    description
                );
            }
            let evidence = match target {
                AuditTarget::Sqlite(_) => {
                    "keep this file as evidence (copy it with its -wal file before anything writes to it)"
                }
                AuditTarget::Postgres { .. } => {
                    "keep the database as evidence (snapshot it, or pg_dump the schema, before anything writes to it)"
                }
            };
            eprintln!(
                "  next: {evidence}, compare with your last export (`fctr audit export`) and your SIEM copy, and \
                 tell security"
            );
            Ok(Exit::CheckFailed)
        }
    }
}

const CSV_COLUMNS: &str = "tenant,seq,at,kind,outcome,agent,target,factor,action,reason,request_id,client_ip,detail,prev_hash,hash";

fn csv_row(e: &SealedEvent) -> String {
    let ev = &e.event;
    let opt = |s: Option<&str>| s.map(str::to_owned).unwrap_or_default();
    let detail = ev
        .detail
        .as_ref()
        .and_then(|d| serde_json::to_string(d).ok())
        .unwrap_or_default();
    let fields = [
        ev.tenant.to_string(),
        e.seq.to_string(),
        fctr_ports::canonical_time::format(&ev.at),
        ev.kind.as_str().to_owned(),
        ev.outcome.as_str().to_owned(),
        opt(ev.agent.as_ref().map(|p| p.as_str())),
        opt(ev.target.as_ref().map(|p| p.as_str())),
        opt(ev.factor.as_ref().map(|f| f.as_str())),
        opt(ev.action.as_ref().map(|a| a.as_str())),
        opt(ev.reason.as_ref().map(|r| r.as_str())),
        opt(ev.request_id.as_ref().map(|r| r.as_str())),
        opt(ev.client_ip.as_ref().map(|c| c.as_str())),
        detail,
        e.prev_hash.to_hex(),
        e.hash.to_hex(),
    ];
    let cols: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    cols.join(",")
}

async fn export(
    target: &AuditTarget,
    query: &AuditQuery,
    format: ExportFormat,
    out: Option<&PathBuf>,
) -> Outcome {
    let store = open_target(target, true, None).await?;
    let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match out {
        Some(p) => Box::new(tokio::fs::File::create(p).await.map_err(|e| {
            Fail::usage(
                format!("cannot create {}: {e}", p.display()),
                "check the directory exists and is writable",
            )
        })?),
        None => Box::new(tokio::io::stdout()),
    };
    let written = match format {
        ExportFormat::Jsonl => store.export_jsonl(query, &mut sink).await,
        ExportFormat::Csv => match store.read(query).await {
            Ok(events) => {
                let mut text = String::with_capacity(events.len() * 200 + 128);
                text.push_str(CSV_COLUMNS);
                text.push('\n');
                for e in &events {
                    text.push_str(&csv_row(e));
                    text.push('\n');
                }
                sink.write_all(text.as_bytes())
                    .await
                    .map(|()| events.len() as u64)
                    .map_err(PortError::unexpected)
            }
            Err(e) => Err(e),
        },
    };
    let flushed = sink.flush().await;
    store.close().await;
    let n = written.map_err(|e| match e {
        PortError::Unexpected(_) => Fail::usage(
            "cannot write the export",
            "check the output file or pipe (disk full? closed early?)",
        ),
        other => store_error(&other),
    })?;
    flushed
        .map_err(|e| Fail::usage(format!("cannot write the export: {e}"), "check the output"))?;
    if let Some(p) = out {
        eprintln!("wrote {n} event(s) to {}", p.display());
    } else if stdout_is_terminal() {
        eprintln!("{n} event(s)");
    }
    Ok(Exit::Ok)
}

fn human_line(e: &SealedEvent) -> String {
    let ev = &e.event;
    let mut s = format!(
        "{}  {}#{}  {} {}",
        ev.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ev.tenant,
        e.seq,
        ev.kind.as_str(),
        ev.outcome.as_str()
    );
    if let Some(a) = &ev.agent {
        s.push_str(&format!(" agent={}", a.as_str()));
    }
    if let Some(t) = &ev.target {
        s.push_str(&format!(" target={}", t.as_str()));
    }
    if let Some(f) = &ev.factor {
        s.push_str(&format!(" factor={f}"));
    }
    if let Some(a) = &ev.action {
        s.push_str(&format!(" action={a}"));
    }
    if let Some(r) = &ev.reason {
        s.push_str(&format!(" reason={r}"));
    }
    s
}

fn print_event(e: &SealedEvent, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(e) {
            outln!("{line}");
        }
    } else {
        outln!("{}", human_line(e));
    }
    let _ = std::io::stdout().flush();
}

/// The latest `n` events: look back an hour, a day, a week, then everything, until there are enough.
async fn latest(store: &DurableStore, n: usize) -> Result<Vec<SealedEvent>, PortError> {
    let now = Utc::now();
    for back in [
        Some(chrono::Duration::hours(1)),
        Some(chrono::Duration::days(1)),
        Some(chrono::Duration::days(7)),
        None,
    ] {
        let q = AuditQuery {
            since: back.map(|b| now - b),
            ..AuditQuery::default()
        };
        let events = store.read(&q).await?;
        if events.len() >= n || back.is_none() {
            let skip = events.len().saturating_sub(n);
            return Ok(events.into_iter().skip(skip).collect());
        }
    }
    Ok(Vec::new())
}

/// What `tail --follow` has printed: the highest seq per tenant, and the newest time (re-read from there, as
/// `since` is inclusive).
#[derive(Default)]
struct Seen {
    seq: HashMap<TenantId, u64>,
    newest: Option<DateTime<Utc>>,
}

impl Seen {
    fn note(&mut self, e: &SealedEvent) {
        let s = self.seq.entry(e.event.tenant.clone()).or_insert(e.seq);
        *s = (*s).max(e.seq);
        self.newest = Some(self.newest.map_or(e.event.at, |t| t.max(e.event.at)));
    }

    fn is_fresh(&self, e: &SealedEvent) -> bool {
        self.seq.get(&e.event.tenant).is_none_or(|s| e.seq > *s)
    }
}

async fn tail(
    target: &AuditTarget,
    n: usize,
    follow: bool,
    interval: Duration,
    json: bool,
) -> Outcome {
    let store = open_target(target, true, None).await?;
    let first = latest(&store, n).await.map_err(|e| store_error(&e))?;
    let mut seen = Seen::default();
    for e in &first {
        print_event(e, json);
        seen.note(e);
    }
    if !follow {
        store.close().await;
        return Ok(Exit::Ok);
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            () = tokio::time::sleep(interval) => {}
        }
        let q = AuditQuery {
            since: seen.newest,
            ..AuditQuery::default()
        };
        let events = store.read(&q).await.map_err(|e| store_error(&e))?;
        for e in events {
            if seen.is_fresh(&e) {
                print_event(&e, json);
                seen.note(&e);
            }
        }
    }
    store.close().await;
    Ok(Exit::Ok)
}
