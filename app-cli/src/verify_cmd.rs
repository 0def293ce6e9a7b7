//! `fctr verify <user> [--factor push|totp] [--then <action>]` and `fctr act`.
//!
//! A grant lives in the process that verified the caller (the in-memory grant store), so an action must run in
//! the same process: `verify --then`. A separate `fctr act` has no grant and says so.

use crate::lookup_cmd::resolve_subject;
use crate::stack::{self, AgentArgs, IdpArgs, Stack, denial};
use crate::term::{big_number, outln, read_code, spinner, stdout_is_terminal};
use crate::{Exit, Fail, Globals, Outcome};
use clap::{Args, ValueEnum};
use fctr_core::{ActionRequest, CallerCard, VerificationView};
use fctr_ports::{
    ActionKind, ExposeSecret as _, FactorId, FactorKind, FactorStatus, OtpCode, Reason, SecretKind,
    SubjectId, VerificationStatus,
};
use std::io::Write as _;
use std::time::Duration;

/// How often a pending push is polled.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// Wrong codes accepted before the CLI stops asking (the engine's lockout applies across runs).
const CODE_ATTEMPTS: u32 = 3;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  fctr --config /etc/fctr/fctr.toml verify alice@example.com --agent-id agent2@example.com
  fctr verify alice@example.com --factor totp --agent-id agent2@example.com --okta-url http://127.0.0.1:8081
  fctr verify alice@example.com --then reset_password --agent-id agent2@example.com --okta-url http://127.0.0.1:8081
  fctr --config /etc/fctr/fctr-entra.toml verify bob@example.com --agent-id agent2@example.com --then clear_sessions

With --config the identity provider is the file's [okta] or [entra] section. An Entra push (through the MFA
connector, [entra.connector]) has no number to match: the engine then asks for a second, different factor, as
policy says (docs/policy.md).

The number to read to the caller is printed in large type; a spinner shows the elapsed time while the caller
answers (hidden when standard output is not a terminal). A TOTP code is read without echo, or one line per
attempt from standard input when it is not a terminal. A one-time secret from --then (reset link, temporary
password) is printed once, to standard output only; when that is not a terminal, --show-secret is required.")]
pub(crate) struct VerifyArgs {
    /// The caller: IdP user id, or login / e-mail (contains @).
    pub user: String,
    /// Which factor to challenge (default: the one policy prefers for this caller).
    #[arg(long, value_enum)]
    pub factor: Option<FactorChoice>,
    /// Once verified, run this action under the fresh grant, in this run: clear_sessions, reset_password,
    /// expire_password, unlock, reset_factors, remove_factor, issue_temporary_access_pass, suspend, unsuspend.
    #[arg(long, value_name = "ACTION", value_parser = parse_action)]
    pub then: Option<ActionKind>,
    /// The factor to remove with `--then remove_factor` (its id, as `fctr lookup` shows with --json).
    #[arg(long, value_name = "FACTOR_ID")]
    pub remove_factor_id: Option<String>,
    /// Print a one-time secret even when standard output is not a terminal.
    #[arg(long)]
    pub show_secret: bool,
    #[command(flatten)]
    pub idp: IdpArgs,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Factors the CLI can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FactorChoice {
    /// A push: with number matching on Okta; an Entra push (through the MFA connector) has none, so the default
    /// policy counts it only together with a second, different factor.
    Push,
    /// A TOTP code the caller reads out.
    Totp,
}

fn parse_action(s: &str) -> Result<ActionKind, String> {
    ActionKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = ActionKind::ALL.iter().map(ActionKind::as_str).collect();
        format!("unknown action; one of: {}", names.join(", "))
    })
}

#[derive(Debug, Args)]
#[command(
    after_help = "A high-risk action needs a live grant from a verification by the same agent, and grants live only in
the process that verified the caller. Use:
  fctr verify <user> --then <action>"
)]
pub(crate) struct ActArgs {
    /// The caller.
    pub user: String,
    /// The action.
    #[arg(value_parser = parse_action)]
    pub action: ActionKind,
    /// Accepted for symmetry with `verify`; ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// `fctr act`: explains why it cannot run on its own.
pub(crate) fn act(a: &ActArgs) -> Outcome {
    Err(Fail::usage(
        format!(
            "`fctr act` cannot {}: it needs a live grant, and grants live only in the process that verified \
             the caller (a separate CLI run has none)",
            a.action.describe()
        ),
        format!(
            "run `fctr verify <user> --then {}` to verify the caller and act in one run",
            a.action
        ),
    ))
}

fn returns_secret(kind: ActionKind) -> bool {
    matches!(
        kind,
        ActionKind::ResetPassword
            | ActionKind::ExpirePassword
            | ActionKind::IssueTemporaryAccessPass
    )
}

/// What the agent asked for; the engine decides the terms (a Temporary Access Pass's come from policy).
fn build_action(kind: ActionKind, remove: Option<&str>) -> Result<ActionRequest, Fail> {
    let factor = if kind == ActionKind::RemoveFactor {
        let id = remove.ok_or_else(|| {
            Fail::usage(
                "--then remove_factor needs --remove-factor-id",
                "find the factor id with `fctr --json lookup <user>`",
            )
        })?;
        Some(FactorId::parse(id.to_owned()).map_err(|e| {
            Fail::usage(
                format!("--remove-factor-id: {e}"),
                "copy the id from `fctr --json lookup`",
            )
        })?)
    } else {
        None
    };
    ActionRequest::new(kind, factor).map_err(|d| denial(&d))
}

fn emit(json: bool, value: serde_json::Value, text: &str) {
    if json {
        outln!("{value}");
    } else {
        outln!("{text}");
    }
    let _ = std::io::stdout().flush();
}

pub(crate) async fn run(a: VerifyArgs, g: &Globals) -> Outcome {
    // Everything that can be refused is refused before the caller gets a push.
    let action = a
        .then
        .map(|k| build_action(k, a.remove_factor_id.as_deref()))
        .transpose()?;
    if let Some(kind) = a.then {
        if returns_secret(kind) && !stdout_is_terminal() && !a.show_secret {
            return Err(Fail::usage(
                format!("{kind} returns a one-time secret, and standard output is not a terminal"),
                "run it in a terminal, or pass --show-secret to print the secret to this output",
            ));
        }
    }
    let s = stack::build(&a.idp, &a.agent, g).await?;
    let result = verify(&s, &a, action, g.json).await;
    s.close().await;
    result
}

fn pick_factor(card: &CallerCard, choice: FactorChoice) -> Result<FactorId, Fail> {
    let want = match choice {
        FactorChoice::Push => FactorKind::Push,
        FactorChoice::Totp => FactorKind::Totp,
    };
    let accepted: Vec<&str> = card
        .factors
        .iter()
        .filter(|f| f.accepted)
        .map(|f| f.info.kind.as_str())
        .collect();
    let candidates: Vec<_> = card
        .factors
        .iter()
        .filter(|f| f.info.kind == want && f.info.status == FactorStatus::Active)
        .collect();
    if let Some(f) = candidates.iter().find(|f| f.accepted) {
        return Ok(f.info.id.clone());
    }
    let why = candidates
        .first()
        .and_then(|f| f.refusal)
        .map_or_else(|| "not enrolled".to_owned(), |r| r.as_str().to_owned());
    Err(Fail::check(
        format!("the caller's {want} factor cannot be used ({why})"),
        if accepted.is_empty() {
            "this caller has no factor policy accepts; escalate per your runbook".to_owned()
        } else {
            format!("use an accepted factor: {}", accepted.join(", "))
        },
    ))
}

async fn verify(s: &Stack, a: &VerifyArgs, action: Option<ActionRequest>, json: bool) -> Outcome {
    let subject = resolve_subject(s, &a.user).await?;
    let mut factor = None;
    if a.factor.is_some() || a.then.is_some() {
        let card = s
            .engine
            .lookup(&s.agent, &s.ctx, &subject)
            .await
            .map_err(|d| denial(&d))?;
        // An action policy refuses is refused before the caller gets a push.
        if let Some(kind) = a.then {
            let blocked = card
                .actions
                .iter()
                .find(|v| v.kind == kind)
                .and_then(|v| v.explanation.blocked_by);
            if let Some(reason) = blocked {
                let mut f = denial(&fctr_core::Denial::new(reason));
                f.message = format!(
                    "--then {kind}: {} (nothing was sent to the caller)",
                    f.message
                );
                return Err(f);
            }
        }
        if let Some(c) = a.factor {
            factor = Some(pick_factor(&card, c)?);
        }
    }
    let mut view = s
        .engine
        .begin_verification(&s.agent, &s.ctx, &subject, factor.as_ref())
        .await
        .map_err(|d| denial(&d))?;
    // Hard stop a little after the verification window, whatever the IdP says.
    let deadline = view.expires_at + chrono::Duration::seconds(30);
    loop {
        if chrono::Utc::now() > deadline {
            return Err(Fail::check(
                "the verification window closed",
                "start a new verification",
            ));
        }
        match view.status {
            VerificationStatus::Verified => break,
            VerificationStatus::Challenged => {
                view = match &view.factor {
                    Some(FactorKind::Push) => wait_push(s, view, json).await?,
                    _ => ask_code(s, view, json).await?,
                };
            }
            VerificationStatus::Pending => {
                emit(
                    json,
                    serde_json::json!({"event": "factor_approved", "approved": view.approved, "required": view.required}),
                    &format!(
                        "factor approved ({} of {}); challenging the next factor",
                        view.approved, view.required
                    ),
                );
                // The engine says how many factors are needed (more than policy's count when, e.g., an approved
                // push had no number matching) and refuses when no enrolled factor can follow.
                let (approved, required) = (view.approved, view.required);
                view = s
                    .engine
                    .continue_verification(&s.agent, &s.ctx, view.id, None)
                    .await
                    .map_err(|d| {
                        let mut f = denial(&d);
                        f.message = format!(
                            "NOT VERIFIED ({approved} of {required} factors approved; no further factor \
                             could be challenged): {}",
                            f.message
                        );
                        f
                    })?;
            }
            other => return Err(ended(other, view.reason)),
        }
    }
    let grant = view.grant.as_ref();
    emit(
        json,
        serde_json::json!({
            "event": "verified",
            "factors": grant.map(|g| g.factors.iter().map(|f| f.as_str().to_owned()).collect::<Vec<_>>()),
            "assurance": grant.map(|g| g.assurance),
            "grant_expires_at": grant.map(|g| g.expires_at),
            "single_use": grant.map(|g| g.single_use),
            "actions": grant.map(|g| g.actions.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
        }),
        &match grant {
            Some(g) => format!(
                "VERIFIED: {}. Grant valid until {}{}; covers: {}",
                g.assurance,
                g.expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                if g.single_use { " for one action" } else { "" },
                g.actions
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "VERIFIED".to_owned(),
        },
    );
    match action {
        None => Ok(Exit::Ok),
        Some(act) => perform(s, &subject, act, json).await,
    }
}

fn ended(status: VerificationStatus, reason: Option<Reason>) -> Fail {
    let d = fctr_core::Denial::new(reason.unwrap_or(match status {
        VerificationStatus::Expired => Reason::ChallengeTimedOut,
        VerificationStatus::Failed => Reason::IdpError,
        _ => Reason::ChallengeRejected,
    }));
    let mut f = denial(&d);
    f.message = format!("NOT VERIFIED ({}): {}", status.as_str(), f.message);
    f
}

async fn wait_push(
    s: &Stack,
    mut view: VerificationView,
    json: bool,
) -> Result<VerificationView, Fail> {
    match view.number {
        Some(n) => emit(
            json,
            serde_json::json!({"event": "push_sent", "number": n, "expires_at": view.challenge_expires_at}),
            &format!(
                "Push sent. Ask the caller to pick this number in their authenticator app:\n\n{}\nnumber: {n}\n",
                big_number(n)
            ),
        ),
        None => emit(
            json,
            serde_json::json!({"event": "push_sent", "number": null, "expires_at": view.challenge_expires_at}),
            "Push sent (no number matching). Ask the caller to approve it.",
        ),
    }
    let pb = spinner("waiting for the caller to answer");
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let out = loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                break Err(Fail::check("cancelled: the caller was not verified", "start again when ready"));
            }
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
        match s.engine.poll_verification(&s.agent, &s.ctx, view.id).await {
            Ok(v)
                if v.status == VerificationStatus::Challenged
                    && v.factor == Some(FactorKind::Push) =>
            {
                view = v
            }
            Ok(v) => break Ok(v),
            Err(d) => break Err(denial(&d)),
        }
    };
    pb.finish_and_clear();
    out
}

async fn ask_code(s: &Stack, view: VerificationView, json: bool) -> Result<VerificationView, Fail> {
    let kind = view
        .factor
        .as_ref()
        .map_or("code", FactorKind::as_str)
        .to_owned();
    emit(
        json,
        serde_json::json!({"event": "code_requested", "factor": kind}),
        &format!("Ask the caller to read out the current {kind} code from their authenticator."),
    );
    for attempt in 1..=CODE_ATTEMPTS {
        let code = tokio::task::spawn_blocking(|| read_code("code: "))
            .await
            .map_err(|_| Fail::usage("cannot read the code", "retry"))?
            .map_err(|e| {
                Fail::usage(
                    format!("cannot read the code: {e}"),
                    "type the code, then Enter",
                )
            })?
            .ok_or_else(|| {
                Fail::usage(
                    "no code entered",
                    "type the code the caller reads out, then Enter",
                )
            })?;
        let code = match OtpCode::parse(&code) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}; try again");
                continue;
            }
        };
        match s
            .engine
            .submit_code(&s.agent, &s.ctx, view.id, code.into_secret())
            .await
        {
            Ok(v) => return Ok(v),
            Err(d)
                if matches!(d.reason, Reason::WrongCode | Reason::CodeReplayed)
                    && attempt < CODE_ATTEMPTS =>
            {
                eprintln!("{} {}", d.message(), d.remedy());
            }
            Err(d) => return Err(denial(&d)),
        }
    }
    Err(Fail::check(
        "NOT VERIFIED: too many wrong codes",
        "do not proceed; verify again later or escalate",
    ))
}

fn secret_words(k: SecretKind) -> &'static str {
    match k {
        SecretKind::ResetLink => "password reset link",
        SecretKind::TemporaryPassword => "temporary password",
        SecretKind::TemporaryAccessPass => "Temporary Access Pass",
        _ => "one-time secret",
    }
}

async fn perform(s: &Stack, subject: &SubjectId, action: ActionRequest, json: bool) -> Outcome {
    let kind = action.kind();
    let outcome = s
        .engine
        .perform_action(&s.agent, &s.ctx, subject, action)
        .await
        .map_err(|d| denial(&d))?;
    let r = outcome.receipt;
    match &r.secret {
        Some(secret) => {
            // Shown once, to standard output only; the value is zeroized when `r` is dropped.
            let words = secret_words(secret.kind);
            let expires = secret
                .expires_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            emit(
                json,
                serde_json::json!({
                    "event": "action_done", "action": kind.as_str(), "emailed": r.emailed,
                    "secret": { "kind": words, "value": secret.value.expose_secret(), "expires_at": expires },
                }),
                &format!(
                    "DONE: {}.\n{words} (shown once, not stored or logged; give it to the caller now):\n\n    {}\n{}",
                    kind.describe(),
                    secret.value.expose_secret(),
                    expires
                        .map(|e| format!("\nexpires {e}"))
                        .unwrap_or_default()
                ),
            );
        }
        None => emit(
            json,
            serde_json::json!({"event": "action_done", "action": kind.as_str(), "emailed": r.emailed}),
            &format!(
                "DONE: {}{}.",
                kind.describe(),
                if r.emailed {
                    " (the IdP e-mailed the user)"
                } else {
                    ""
                }
            ),
        ),
    }
    Ok(Exit::Ok)
}
