//! The caller card.

use super::{GrantLine, Offer, grant_line, label, role_permits, when};
use crate::auth::SignedIn;
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fctr_core::Denial;
use fctr_core::policy::Permission;
use fctr_ports::FactorKind;

struct FactorRow {
    id: String,
    kind: String,
    assurance: &'static str,
    accepted: bool,
    refusal: String,
    recommended: bool,
    verb: &'static str,
}

struct ActionRow {
    label: String,
    permitted: bool,
    lines: Vec<String>,
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
    status: String,
    class: &'static str,
    protected: bool,
    risk: Vec<String>,
    grant: Option<GrantLine>,
    factors: Vec<FactorRow>,
    can_verify: bool,
    offered: Vec<Offer>,
    actions: Vec<ActionRow>,
}

fn opt_time(label: &str, t: Option<&DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{label}: {}", when(t)),
        None => format!("{label}: unknown"),
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
    let u = &card.user;
    let r = &card.risk;
    let risk = vec![
        if r.locked_out {
            "Account is locked out".to_owned()
        } else {
            "Not locked out".to_owned()
        },
        opt_time("Created", r.created.as_ref()),
        opt_time("Status changed", r.status_changed.as_ref()),
        opt_time("Password changed", r.password_changed.as_ref()),
        opt_time("Last sign-in", r.last_login.as_ref()),
        opt_time("Factors last changed", r.last_factor_change.as_ref()),
        match r.directory_synced {
            Some(true) => "Synced from an on-premises directory".to_owned(),
            Some(false) => "Cloud-only account".to_owned(),
            None => "Directory sync: unknown".to_owned(),
        },
    ];
    let factors = card
        .factors
        .iter()
        .map(|f| FactorRow {
            id: f.info.id.as_str().to_owned(),
            kind: f.info.kind.as_str().to_owned(),
            assurance: f.assurance,
            accepted: f.accepted,
            refusal: f
                .refusal
                .map(|r| Denial::new(r).message().to_owned())
                .unwrap_or_default(),
            recommended: card.recommended_factor.as_ref() == Some(&f.info.id),
            verb: if matches!(f.info.kind, FactorKind::Push) {
                "Send push"
            } else {
                "Verify with code"
            },
        })
        .collect();
    let offered = card
        .actions
        .iter()
        .filter(|a| a.available_now)
        .map(|a| Offer {
            kind: a.kind.as_str(),
            label: label(a.kind),
        })
        .collect();
    let actions = card
        .actions
        .iter()
        .filter(|a| a.supported)
        .map(|a| ActionRow {
            label: label(a.kind),
            permitted: a.permitted_for_role,
            lines: a.explanation.lines.clone(),
        })
        .collect();
    let page = CallerPage {
        c: ctx.chrome(),
        handle,
        name: u
            .display_name
            .as_ref()
            .map(|n| n.expose_pii().to_owned())
            .unwrap_or_default(),
        login: u.login.expose_pii().to_owned(),
        email: u
            .email
            .as_ref()
            .map(|n| n.expose_pii().to_owned())
            .unwrap_or_default(),
        phone: u
            .phone
            .as_ref()
            .map(|n| n.expose_pii().to_owned())
            .unwrap_or_default(),
        status: u.status.as_str().to_owned(),
        class: card.class.as_str(),
        protected: card.protected,
        risk,
        grant: card.grant.as_ref().map(|g| grant_line(g, now)),
        factors,
        can_verify: role_permits(&ctx.state, &agent, Permission::Verify) && !card.protected,
        offered,
        actions,
    };
    render(StatusCode::OK, &page)
}
