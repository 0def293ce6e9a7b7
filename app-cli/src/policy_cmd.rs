//! `fctr policy lint` and `fctr policy explain`.

use crate::Exit;
use crate::term::outln;
use clap::Subcommand;
use fctr_core::policy::{Policy, Role, TargetClass};
use fctr_ports::{ActionKind, GroupRef};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a policy file: errors with line and column (exit 1), warnings for risky settings (SMS or voice
    /// allowed, long verification windows or grants, multi-use grants, downgrades, single-factor privileged
    /// targets).
    ///
    /// Examples:
    ///   fctr policy lint examples/policy.toml
    ///   fctr policy lint --deny-warnings /etc/fctr/policy.toml   # in CI: warnings fail too
    ///   fctr --json policy lint examples/policy.toml
    #[command(verbatim_doc_comment)]
    Lint {
        /// The policy file (TOML).
        file: PathBuf,
        /// Exit 1 when there are warnings, not only errors.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Explain what an action would require, and why, for a role and a target.
    ///
    /// Examples:
    ///   fctr policy explain --role tier2 --action reset_password
    ///   fctr policy explain --role tier3 --action reset_factors --target-group fctr-privileged
    ///   fctr policy explain --policy examples/policy.toml --role tier1 --action unlock
    #[command(verbatim_doc_comment)]
    Explain {
        /// Role name as in the policy (e.g. tier1, tier2, tier3).
        #[arg(long)]
        role: String,
        /// Action: clear_sessions, reset_password, expire_password, unlock, reset_factors, remove_factor,
        /// issue_temporary_access_pass, suspend, unsuspend.
        #[arg(long)]
        action: String,
        /// A group the target belongs to (repeatable), to see privileged and protected rules.
        #[arg(long = "target-group")]
        target_groups: Vec<String>,
        /// The policy file; without it, the built-in default policy.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

fn load(path: &PathBuf) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {}: {e} (check the path and permissions)",
            path.display()
        )
    })?;
    Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn run(cmd: PolicyCommand, json: bool) -> Exit {
    match cmd {
        PolicyCommand::Lint {
            file,
            deny_warnings,
        } => lint(&file, deny_warnings, json),
        PolicyCommand::Explain {
            role,
            action,
            target_groups,
            policy,
        } => explain(&role, &action, &target_groups, policy.as_ref(), json),
    }
}

fn lint(file: &PathBuf, deny_warnings: bool, json: bool) -> Exit {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error: cannot read {}: {e} (check the path and permissions)",
                file.display()
            );
            return Exit::Usage;
        }
    };
    match Policy::parse(&text) {
        Err(e) => {
            if json {
                outln!(
                    "{}",
                    serde_json::json!({ "ok": false, "errors": [e], "warnings": [] })
                );
            } else {
                eprintln!(
                    "{}:{}:{}: error: {}",
                    file.display(),
                    e.line,
                    e.column,
                    e.message
                );
                if let Some(h) = &e.hint {
                    eprintln!("  hint: {h}");
                }
            }
            Exit::CheckFailed
        }
        Ok(p) => {
            let warnings = p.warnings();
            if json {
                outln!(
                    "{}",
                    serde_json::json!({ "ok": true, "errors": [], "warnings": warnings, "digest": p.source_digest() })
                );
            } else {
                for w in &warnings {
                    outln!("{}: warning: {}", file.display(), w);
                }
                outln!("{}: ok ({} warning(s))", file.display(), warnings.len());
            }
            if deny_warnings && !warnings.is_empty() {
                eprintln!("  next: fix the warnings above, or drop --deny-warnings to accept them");
                Exit::CheckFailed
            } else {
                Exit::Ok
            }
        }
    }
}

fn explain(
    role: &str,
    action: &str,
    groups: &[String],
    policy: Option<&PathBuf>,
    json: bool,
) -> Exit {
    let policy = match policy.map(load).transpose() {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    let Some(kind) = ActionKind::parse(action) else {
        let names: Vec<&str> = ActionKind::ALL.iter().map(ActionKind::as_str).collect();
        eprintln!(
            "error: unknown action `{action}`; one of: {}",
            names.join(", ")
        );
        return Exit::Usage;
    };
    let role_ref: Option<&Role> = policy.role(role);
    if role_ref.is_none() {
        let names: Vec<&str> = policy.roles().iter().map(Role::name).collect();
        eprintln!(
            "note: no role `{role}` in this policy (roles: {}); explaining as an agent with no role",
            names.join(", ")
        );
    }
    let refs: Vec<GroupRef> = groups
        .iter()
        .map(|g| GroupRef {
            id: g.clone(),
            name: g.clone(),
        })
        .collect();
    let class: TargetClass = policy.classify(&refs);
    let protected = policy.is_protected(&refs);
    let e = policy.explain(role_ref, kind, class, protected, None);
    if json {
        match serde_json::to_string_pretty(&e) {
            Ok(s) => outln!("{s}"),
            Err(err) => {
                eprintln!("error: {err}");
                return Exit::Usage;
            }
        }
    } else {
        outln!(
            "{} by role {role} on a {class} target{}:",
            kind.describe(),
            if protected { " (protected)" } else { "" }
        );
        for line in &e.lines {
            outln!("  {line}");
        }
        match e.blocked_by {
            Some(r) => outln!("verdict: not allowed ({r})"),
            None => outln!("verdict: allowed after verification"),
        }
    }
    Exit::Ok
}
