//! `fctr lookup <user>`: the caller card, in the terminal.
//!
//! Personal data (login, name, e-mail, phone, device labels) is printed to the terminal only: when standard
//! output is not a terminal it is replaced by `[redacted]` unless `--show-pii` is given. It never goes to a log.

use crate::stack::{self, AgentArgs, IdpArgs, Stack, denial};
use crate::term::{outln, stdout_is_terminal, when};
use crate::{Exit, Fail, Globals, Outcome};
use clap::Args;
use fctr_core::CallerCard;
use fctr_ports::{FactorStatus, Pii, SubjectId, UserQuery};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  fctr --config /etc/fctr/fctr.toml lookup alice@example.com --agent-id agent2@example.com
  fctr --config /etc/fctr/fctr-entra.toml lookup 93e2e008-6093-4412-84d3-214f6379295a --agent-id agent2@example.com
  fctr lookup 00ualice000000000000 --okta-url http://127.0.0.1:8081 --agent-id agent2@example.com
  fctr --json lookup alice@example.com --okta-url http://127.0.0.1:8081 --agent-id agent2@example.com --show-pii")]
pub(crate) struct LookupArgs {
    /// The caller: IdP user id, or login / e-mail (contains @).
    pub user: String,
    #[command(flatten)]
    pub idp: IdpArgs,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Print personal data even when standard output is not a terminal (a pipe or a file).
    #[arg(long)]
    pub show_pii: bool,
}

/// Finds the caller's IdP id: a login or e-mail is searched (exactly one match), anything else is taken as an id.
pub(crate) async fn resolve_subject(s: &Stack, text: &str) -> Result<SubjectId, Fail> {
    if !text.contains('@') {
        return SubjectId::parse(text.trim().to_owned()).map_err(|e| {
            Fail::usage(
                format!("user: {e}"),
                "give an IdP user id, or a login or e-mail address",
            )
        });
    }
    let q = UserQuery::login(text).map_err(|e| {
        Fail::usage(
            format!("user: {e}"),
            "give an IdP user id, or a login or e-mail",
        )
    })?;
    let found = s
        .engine
        .search(&s.agent, &s.ctx, &q)
        .await
        .map_err(|d| denial(&d))?;
    match found.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Fail::check(
            "no user has that login or e-mail",
            "check the spelling with the caller, or give the IdP user id",
        )),
        many => Err(Fail::check(
            format!("{} users match that login or e-mail", many.len()),
            "give the IdP user id instead",
        )),
    }
}

fn show(p: &Pii, reveal: bool) -> String {
    if reveal {
        p.expose_pii().to_owned()
    } else {
        "[redacted]".to_owned()
    }
}

fn show_opt(p: Option<&Pii>, reveal: bool) -> String {
    p.map_or_else(|| "-".to_owned(), |p| show(p, reveal))
}

fn card_json(card: &CallerCard, reveal: bool) -> serde_json::Value {
    let u = &card.user;
    let factors: Vec<_> = card
        .factors
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.info.id.to_string(),
                "kind": f.info.kind.as_str(),
                "status": f.info.status,
                "vendor": f.info.vendor,
                "label": f.info.label.as_ref().map(|l| show(l, reveal)),
                "assurance": f.assurance,
                "accepted": f.accepted,
                "refusal": f.refusal.map(|r| r.as_str()),
                "recommended": card.recommended_factor.as_ref() == Some(&f.info.id),
            })
        })
        .collect();
    let actions: Vec<_> = card
        .actions
        .iter()
        .map(|a| {
            serde_json::json!({
                "action": a.kind.as_str(),
                "permitted_for_role": a.permitted_for_role,
                "supported": a.supported,
                "available_now": a.available_now,
                "blocked_by": a.explanation.blocked_by.map(|r| r.as_str()),
                "required_factors": a.explanation.required_factors,
                "explanation": a.explanation.lines,
            })
        })
        .collect();
    let r = &card.risk;
    serde_json::json!({
        "id": if reveal { u.id.as_str().to_owned() } else { "[redacted]".to_owned() },
        "login": show(&u.login, reveal),
        "email": u.email.as_ref().map(|p| show(p, reveal)),
        "name": u.display_name.as_ref().map(|p| show(p, reveal)),
        "phone": u.phone.as_ref().map(|p| show(p, reveal)),
        "status": u.status.as_str(),
        "class": card.class.as_str(),
        "protected": card.protected,
        "factors": factors,
        "risk": {
            "locked_out": r.locked_out,
            "created": r.created,
            "status_changed": r.status_changed,
            "password_changed": r.password_changed,
            "last_login": r.last_login,
            "last_factor_change": r.last_factor_change,
            "directory_synced": r.directory_synced,
        },
        "actions": actions,
    })
}

/// Prints the card for people.
pub(crate) fn print_card(card: &CallerCard, reveal: bool, role: Option<&str>) {
    let u = &card.user;
    let id = if reveal { u.id.as_str() } else { "[redacted]" };
    outln!("{}  ({id})", show(&u.login, reveal));
    outln!("  name:      {}", show_opt(u.display_name.as_ref(), reveal));
    outln!("  email:     {}", show_opt(u.email.as_ref(), reveal));
    outln!("  phone:     {}", show_opt(u.phone.as_ref(), reveal));
    outln!(
        "  status:    {}   target: {}{}",
        u.status,
        card.class.as_str(),
        if card.protected {
            "   PROTECTED: no helpdesk action may touch this account"
        } else {
            ""
        }
    );
    outln!("factors:");
    if card.factors.is_empty() {
        outln!("  (none enrolled)");
    }
    // Vendors differ in length (Okta `OKTA`, Entra `microsoftAuthenticatorAuthenticationMethod`).
    let vendor_width = card
        .factors
        .iter()
        .filter_map(|f| f.info.vendor.as_deref())
        .map(str::len)
        .max()
        .unwrap_or(1)
        .max(8);
    for f in &card.factors {
        let status = match f.info.status {
            FactorStatus::Active => "active",
            FactorStatus::PendingActivation => "pending",
            _ => "inactive",
        };
        let verdict = if f.accepted {
            "accepted".to_owned()
        } else {
            format!(
                "not accepted ({})",
                f.refusal.map_or("policy", |r| r.as_str())
            )
        };
        let rec = if card.recommended_factor.as_ref() == Some(&f.info.id) {
            "  <- recommended"
        } else {
            ""
        };
        outln!(
            "  {:<20} {:<vendor_width$} {:<9} {:<46} {verdict}{rec}",
            f.info.kind.as_str(),
            f.info.vendor.as_deref().unwrap_or("-"),
            status,
            f.assurance,
        );
    }
    let r = &card.risk;
    outln!("risk:");
    outln!(
        "  locked out:        {}",
        if r.locked_out { "YES" } else { "no" }
    );
    outln!("  created:           {}", when(r.created));
    outln!("  status changed:    {}", when(r.status_changed));
    outln!("  password changed:  {}", when(r.password_changed));
    outln!("  last sign-in:      {}", when(r.last_login));
    outln!("  factors changed:   {}", when(r.last_factor_change));
    if let Some(s) = r.directory_synced {
        outln!(
            "  directory synced:  {}",
            if s {
                "yes (some changes must be made on premises)"
            } else {
                "no"
            }
        );
    }
    outln!("actions (role {}):", role.unwrap_or("-"));
    for a in &card.actions {
        let line = match a.explanation.blocked_by {
            Some(reason) => format!("not allowed ({})", reason.as_str()),
            None if a.available_now => "available now (live grant)".to_owned(),
            None => format!(
                "allowed after verification ({} factor(s))",
                a.explanation.required_factors
            ),
        };
        outln!("  {:<29} {line}", a.kind.as_str());
    }
    // What verification takes here, in the engine's own words (the first action the agent could run; its
    // first line is about the role, already shown above).
    if let Some(a) = card
        .actions
        .iter()
        .find(|a| a.explanation.blocked_by.is_none())
    {
        outln!("verification (policy, for {}):", a.kind.as_str());
        for line in a.explanation.lines.iter().skip(1) {
            outln!("  {line}");
        }
    }
}

pub(crate) async fn run(a: LookupArgs, g: &Globals) -> Outcome {
    let s = stack::build(&a.idp, &a.agent, g).await?;
    let result = lookup(&s, &a, g).await;
    s.close().await;
    result
}

async fn lookup(s: &Stack, a: &LookupArgs, g: &Globals) -> Outcome {
    let subject = resolve_subject(s, &a.user).await?;
    let card = s
        .engine
        .lookup(&s.agent, &s.ctx, &subject)
        .await
        .map_err(|d| {
            let mut f = denial(&d);
            if d.reason == fctr_ports::Reason::TargetNotFound && !a.user.contains('@') {
                f.next = Some("check the id, or look the caller up by login or e-mail".into());
            }
            f
        })?;
    let reveal = a.show_pii || stdout_is_terminal();
    if g.json {
        outln!("{}", card_json(&card, reveal));
    } else {
        print_card(&card, reveal, s.agent.role());
        if !reveal {
            eprintln!(
                "note: personal data redacted (standard output is not a terminal); --show-pii prints it"
            );
        }
    }
    Ok(Exit::Ok)
}
