//! `fctr changes`: changes to users the IdP recorded that fctr's audit does not account for (out-of-band change
//! detection, docs/out-of-band.md).

use crate::term::outln;
use crate::{Exit, Fail, Globals, Outcome, config};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Args;
use fctr_core::ChangeReportError;
use fctr_core::out_of_band::{Finding, Severity};
use fctr_ports::{ChangeActor, PortError};

#[derive(Debug, Args)]
pub(crate) struct ChangesArgs {
    /// How far back to look: a duration (`90m`, `24h`, `7d`) or a time (`2026-12-01T00:00:00Z`).
    #[arg(long, default_value = "24h", value_parser = parse_since)]
    since: Since,
    /// How far apart the IdP's time and fctr's audit time may be for a change to count as fctr's (`5m`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    tolerance: TimeDelta,
    /// With --json, also print the target's IdP user id and the admin's login (by default JSON carries
    /// pseudonyms only, so a report saved to disk holds no identifiers; the text view always shows them).
    #[arg(long)]
    reveal: bool,
    /// Exit 0 even when changes outside the gate are found (by default they exit 1, for cron and CI).
    #[arg(long)]
    no_fail: bool,
}

/// `--since`: a duration back from now, or a time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Since {
    Ago(TimeDelta),
    At(DateTime<Utc>),
}

fn parse_duration(s: &str) -> Result<TimeDelta, String> {
    let bad = || "use a number and a unit: 90s, 15m, 24h or 7d".to_owned();
    let s = s.trim();
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let d = match unit {
        's' => TimeDelta::try_seconds(n),
        'm' => TimeDelta::try_minutes(n),
        'h' => TimeDelta::try_hours(n),
        'd' => TimeDelta::try_days(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    if d > TimeDelta::days(400) {
        return Err("at most 400d".into());
    }
    Ok(d)
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Since::At(t.with_timezone(&Utc)));
    }
    parse_duration(s).map(Since::Ago)
}

fn actor_text(a: &ChangeActor) -> (String, &'static str) {
    match a {
        ChangeActor::Admin { display, .. } => (display.expose_pii().to_owned(), "admin"),
        ChangeActor::App { client_id } => (client_id.clone(), "app"),
        _ => ("unknown".to_owned(), "unknown"),
    }
}

fn json(f: &Finding, reveal: bool) -> serde_json::Value {
    let (actor, actor_kind) = actor_text(&f.actor);
    let mut v = serde_json::json!({
        "severity": f.severity.as_str(),
        "action": f.kind.as_str(),
        "at": f.at.to_rfc3339(),
        "target": f.target.as_str(),
        "actor_kind": actor_kind,
        "actor_pseudonym": f.actor_pseudonym.as_ref().map(|p| p.as_str()),
        "idp_event_id": f.event_id,
    });
    if let ChangeActor::App { client_id } = &f.actor {
        v["actor_client_id"] = client_id.clone().into();
    }
    if reveal {
        v["target_id"] = f.target_id.as_str().into();
        v["actor"] = actor.into();
    }
    v
}

pub(crate) async fn run(args: ChangesArgs, g: &Globals) -> Outcome {
    let Some((_path, cfg)) = config::load_opt(g)? else {
        return Err(Fail::usage(
            "fctr changes needs the deployment configuration",
            "pass --config FILE (or set FCTR_CONFIG): it names the IdP, the audit store and the pseudonymization key",
        ));
    };
    let feed = cfg
        .change_feed()
        .map_err(|e| Fail::usage(format!("{e}"), "check the [okta] or [entra] section"))?
        .ok_or_else(|| {
            Fail::usage(
                "this identity provider's change log is not supported yet",
                "see docs/out-of-band.md for what each IdP offers",
            )
        })?;
    let stack = fctr_wiring::Stack::from_config(&cfg)
        .await
        .map_err(|e| Fail::usage(format!("{e}"), "check the configuration (fctr doctor)"))?;
    let until = Utc::now();
    let since = match args.since {
        Since::Ago(d) => until - d,
        Since::At(t) => t,
    };
    let result = stack
        .engine
        .out_of_band_changes(feed.as_ref(), since, until, args.tolerance)
        .await;
    stack.close().await;
    let findings = match result {
        Ok(f) => f,
        Err(ChangeReportError::Feed(PortError::Forbidden { missing })) => {
            return Err(Fail::idp(
                format!(
                    "the IdP refused to show its change log (missing {})",
                    missing.as_deref().unwrap_or("permission")
                ),
                "grant okta.logs.read to the service app (Okta) or AuditLog.Read.All (Entra); see docs/out-of-band.md",
            ));
        }
        Err(ChangeReportError::Feed(e)) => {
            return Err(Fail::idp(
                format!("the IdP's change log could not be read: {e}"),
                "run fctr doctor, then try again",
            ));
        }
        Err(ChangeReportError::EmptyWindow) => {
            return Err(Fail::usage(
                "--since is not in the past",
                "give a duration (24h) or a past time",
            ));
        }
        Err(e) => {
            return Err(Fail::usage(
                format!("{e}"),
                "check the [audit] store (fctr doctor)",
            ));
        }
    };
    let serious = findings
        .iter()
        .filter(|f| f.severity == Severity::OwnCredential)
        .count();
    if g.json {
        let rows: Vec<serde_json::Value> = findings.iter().map(|f| json(f, args.reveal)).collect();
        outln!(
            "{}",
            serde_json::json!({
                "ok": findings.is_empty(),
                "since": since.to_rfc3339(),
                "until": until.to_rfc3339(),
                "tolerance_secs": args.tolerance.num_seconds(),
                "findings": rows,
            })
        );
    } else if findings.is_empty() {
        outln!(
            "no changes outside the gate between {} and {}",
            since.to_rfc3339(),
            until.to_rfc3339()
        );
    } else {
        outln!(
            "{} change(s) outside the gate between {} and {}{}",
            findings.len(),
            since.to_rfc3339(),
            until.to_rfc3339(),
            if serious > 0 {
                format!(" ({serious} made with fctr's own credential!)")
            } else {
                String::new()
            }
        );
        outln!(
            "{:<15} {:<28} {:<22} {:<24} {:<30} {}",
            "severity",
            "action",
            "at",
            "target",
            "by",
            "idp event"
        );
        for f in &findings {
            let (actor, kind) = actor_text(&f.actor);
            outln!(
                "{:<15} {:<28} {:<22} {:<24} {:<30} {}",
                f.severity.as_str(),
                f.kind.as_str(),
                f.at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
                f.target_id.as_str(),
                format!("{kind}: {actor}"),
                f.event_id
            );
        }
    }
    if findings.is_empty() || args.no_fail {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::CheckFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_duration("90m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_duration("24h").unwrap(), TimeDelta::hours(24));
        assert_eq!(parse_duration("7d").unwrap(), TimeDelta::days(7));
        for bad in ["", "h", "0h", "-1h", "5w", "1000d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_since("2026-12-01T00:00:00Z").unwrap(),
            Since::At(_)
        ));
    }
}
