//! The caller card.

use super::{
    GrantLine, Moment, factor_words, grant_line, label, moment, role_permits, severity,
    status_tone, status_words,
};
use crate::auth::SignedIn;
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fctr_core::policy::{LockedOutProcedure, Permission, TargetClass};
use fctr_core::{ActionView, Denial};
use fctr_ports::{AccountStatus, ActionKind, Reason};

/// A factor the agent may choose, in plain words.
struct FactorChoice {
    id: String,
    words: String,
    recommended: bool,
    why_not: String,
}

/// A status badge.
struct Badge {
    tone: &'static str,
    text: String,
}

/// One action the card offers (only actions that apply to the account as it is).
struct ActionRow {
    kind: &'static str,
    label: String,
    enabled: bool,
    why: String,
    severity: &'static str,
}

/// A dated fact.
struct Fact {
    label: &'static str,
    at: Option<Moment>,
}

#[derive(Template)]
#[template(path = "caller.html")]
struct CallerPage {
    c: Chrome,
    handle: String,
    name: String,
    login: String,
    email: String,
    phone: String,
    status_text: String,
    status_tone: &'static str,
    badges: Vec<Badge>,
    grant: Option<GrantLine>,
    choices: Vec<FactorChoice>,
    unusable: Vec<FactorChoice>,
    required: u8,
    can_verify: bool,
    verify_blocked: String,
    unlock_first: Option<ActionRow>,
    escalation: String,
    actions: Vec<ActionRow>,
    facts: Vec<Fact>,
    synced: &'static str,
}

/// Why an action that applies is not available now, in one line.
fn why_not(a: &ActionView, protected: bool, has_grant: bool) -> String {
    if !a.permitted_for_role {
        "Not for your role.".into()
    } else if protected {
        "Protected account.".into()
    } else if !a.supported {
        "The identity provider cannot do this here.".into()
    } else if !has_grant {
        "Verify the caller first.".into()
    } else {
        "Your verification does not cover this: verify again with the factors it needs.".into()
    }
}

/// `GET /callers/{handle}`: the caller card.
pub(crate) async fn caller(me: SignedIn, Path(handle): Path<String>) -> Response {
    let SignedIn {
        page: ctx,
        session,
        agent,
    } = me;
    let Some(subject) = session.callers.get(&handle).cloned() else {
        return ctx.message(
            StatusCode::NOT_FOUND,
            "Unknown caller",
            "This caller link is not from your session. Search again.",
            "/search",
        );
    };
    let card = match ctx.state.engine().lookup(&agent, &ctx.rctx, &subject).await {
        Ok(c) => c,
        Err(d) => return ctx.denial_page(&d, "/search"),
    };
    let now = ctx.state.0.clock.now();
    let engine = ctx.state.engine();
    let policy = engine.policy();
    let provider = ctx.state.0.idp.capabilities().provider;
    let u = &card.user;
    let r = &card.risk;
    let required = policy.factor_rule(card.class).required();
    let can_verify_role = role_permits(&ctx.state, &agent, Permission::Verify);

    let mut badges = Vec::new();
    if card.protected {
        badges.push(Badge {
            tone: "bad",
            text: "Protected account: no helpdesk action may touch it".into(),
        });
    }
    if card.locked_out.is_some() {
        badges.push(Badge {
            tone: "warn",
            text: "Locked out".into(),
        });
    }
    if matches!(card.class, TargetClass::Privileged) {
        badges.push(Badge {
            tone: "warn",
            text: format!("Privileged account: {required} different factors needed"),
        });
    }
    if r.directory_synced == Some(true) {
        badges.push(Badge {
            tone: "info",
            text: "Synced from on-premises directory".into(),
        });
    }
    if card.verified_by_another_recently {
        badges.push(Badge {
            tone: "warn",
            text: "Verified by another agent in the last hour: ask why they are calling again"
                .into(),
        });
    }
    let wait_words = card
        .challenges_blocked_for
        .map(|d| super::duration_words(u64::try_from(d.num_seconds()).unwrap_or(0).max(1)));
    if let Some(w) = &wait_words {
        badges.push(Badge {
            tone: "warn",
            text: format!("Challenge limit reached: next one in {w}"),
        });
    }
    if card.grant.is_some() {
        badges.push(Badge {
            tone: "ok",
            text: "Verified by you".into(),
        });
    }

    let mut choices = Vec::new();
    let mut unusable = Vec::new();
    for f in &card.factors {
        let choice = FactorChoice {
            id: f.info.id.as_str().to_owned(),
            words: factor_words(&f.info.kind, &provider),
            recommended: card.recommended_factor.as_ref() == Some(&f.info.id),
            why_not: f
                .refusal
                .map(|r| Denial::new(r).message().to_owned())
                .unwrap_or_default(),
        };
        if f.accepted {
            choices.push(choice);
        } else {
            unusable.push(choice);
        }
    }
    // The recommended factor first.
    choices.sort_by_key(|c| !c.recommended);
    if !choices.iter().any(|c| c.recommended) {
        if let Some(first) = choices.first_mut() {
            first.recommended = true;
        }
    }

    let has_grant = card.grant.is_some();
    let row = |a: &ActionView| ActionRow {
        kind: a.kind.as_str(),
        label: label(a.kind),
        enabled: a.available_now,
        why: if a.available_now {
            String::new()
        } else {
            why_not(a, card.protected, has_grant)
        },
        severity: severity(a.kind).0,
    };
    let unlock_first = card.actions.iter().find(|a| a.before_verification).map(row);
    let actions = card
        .actions
        .iter()
        .filter(|a| a.applies && a.supported && !a.before_verification)
        .filter(|a| a.kind != ActionKind::RemoveFactor)
        .map(row)
        .collect();
    let verify_blocked = if card.protected {
        Denial::new(Reason::ProtectedTarget).message().to_owned()
    } else if !can_verify_role {
        "Your role does not allow verifying callers.".to_owned()
    } else if card.locked_out == Some(LockedOutProcedure::UnlockThenVerify) {
        "Unlock the account first: the identity provider does not challenge a locked-out account."
            .to_owned()
    } else if card.locked_out.is_some() {
        "The account is locked out and policy says to escalate.".to_owned()
    } else if matches!(
        u.status,
        AccountStatus::Suspended | AccountStatus::Deprovisioned | AccountStatus::Disabled
    ) {
        format!(
            "The account is {}: the identity provider will not challenge it, so the caller cannot be verified here. {}",
            status_words(&u.status).to_lowercase(),
            policy.locked_out().escalation
        )
    } else if let Some(w) = &wait_words {
        format!(
            "Too many pushes and codes were sent to this caller in the last hour (this stops push bombing). You can verify again in {w}; until then, escalate if the call is urgent."
        )
    } else if choices.is_empty() {
        Denial::new(Reason::NotEnoughFactors).message().to_owned()
    } else {
        String::new()
    };
    let at = |t: Option<&DateTime<Utc>>| t.map(|t| moment(t, now));
    let facts = vec![
        Fact {
            label: "Last sign-in",
            at: at(r.last_login.as_ref()),
        },
        Fact {
            label: "Password changed",
            at: at(r.password_changed.as_ref()),
        },
        Fact {
            label: "Sign-in methods last changed",
            at: at(r.last_factor_change.as_ref()),
        },
        Fact {
            label: "Status changed",
            at: at(r.status_changed.as_ref()),
        },
        Fact {
            label: "Account created",
            at: at(r.created.as_ref()),
        },
    ];
    let pii =
        |p: Option<&fctr_ports::Pii>| p.map(|n| n.expose_pii().to_owned()).unwrap_or_default();
    let page = CallerPage {
        c: ctx.chrome(),
        handle,
        name: pii(u.display_name.as_ref()),
        login: u.login.expose_pii().to_owned(),
        email: pii(u.email.as_ref()).replace(u.login.expose_pii(), ""),
        phone: pii(u.phone.as_ref()),
        status_text: status_words(&u.status),
        status_tone: status_tone(&u.status),
        badges,
        grant: card.grant.as_ref().map(|g| grant_line(g, now)),
        can_verify: verify_blocked.is_empty(),
        choices,
        unusable,
        required,
        verify_blocked,
        unlock_first,
        escalation: if card.unlock_used_up {
            format!(
                "It was already unlocked once in the last 24 hours and is locked out again, which can mean someone is guessing the password. {}",
                card.escalation
            )
        } else if card.locked_out == Some(LockedOutProcedure::Escalate) {
            card.escalation.clone()
        } else {
            String::new()
        },
        actions,
        facts,
        synced: match r.directory_synced {
            Some(true) => {
                "Synced from an on-premises directory: some changes may need doing there."
            }
            Some(false) => "Cloud-only account.",
            None => "",
        },
    };
    render(StatusCode::OK, &page)
}
