//! The auditors' out-of-band page: the changes the IdP's own log records (password resets, factor resets, TAP
//! issues, unlocks, session revocations) that fctr's audit does not account for, with who made them. The engine
//! authorizes (`view_audit`), reads both logs and matches them ([`fctr_core::Engine::out_of_band_view`]); this
//! handler parses the window and renders the findings.
//!
//! - `GET /audit/out-of-band?since=24h`: the findings of the last `since` (one of [`WINDOWS`], default 24 h).
//!
//! The target's IdP id and the admin's login are shown to the auditor (read from the IdP, held in memory for
//! this response only, never stored or logged); the page is `no-store` like every page.

use super::{role_permits, when};
use crate::auth::SignedIn;
use crate::input::{DEFAULT_WINDOW, WINDOWS, since_param, window};
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use fctr_core::AuditViewQuery;
use fctr_core::out_of_band::{DEFAULT_TOLERANCE, Finding, Severity};
use fctr_core::policy::Permission;
use fctr_ports::ChangeActor;

/// Who made a change, in words for the auditor.
pub(crate) fn actor_words(a: &ChangeActor) -> String {
    match a {
        ChangeActor::Admin { display, .. } => format!("admin: {}", display.expose_pii()),
        ChangeActor::App { client_id } => format!("application: {client_id}"),
        _ => "not recorded".to_owned(),
    }
}

/// What to do about a finding of this severity, in one sentence.
fn advice(s: Severity) -> &'static str {
    match s {
        Severity::OwnCredential => {
            "Made with fctr's own credential, yet fctr has no record of it: treat as an incident and rotate the service app's key."
        }
        _ => {
            "Made outside fctr: ask the admin why; if it was a helpdesk request, verification was bypassed."
        }
    }
}

struct Opt {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

struct Row {
    severity: &'static str,
    advice: &'static str,
    action: &'static str,
    action_words: &'static str,
    at: String,
    at_iso: String,
    target_id: String,
    target_pseudonym: String,
    actor: String,
    event_id: String,
}

fn row(f: &Finding) -> Row {
    Row {
        severity: f.severity.as_str(),
        advice: advice(f.severity),
        action: f.kind.as_str(),
        action_words: f.kind.describe(),
        at: when(&f.at),
        at_iso: f.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        target_id: f.target_id.as_str().to_owned(),
        target_pseudonym: f.target.as_str().to_owned(),
        actor: actor_words(&f.actor),
        event_id: f.event_id.clone(),
    }
}

#[derive(Template)]
#[template(path = "out_of_band.html")]
struct OobPage {
    c: Chrome,
    windows: Vec<Opt>,
    /// The IdP has no change log fctr can read in this build.
    no_feed: bool,
    /// The window asked for is not one offered.
    bad_window: bool,
    /// The IdP's log or fctr's audit could not be read.
    unavailable: bool,
    ran: bool,
    window: String,
    tolerance_min: i64,
    rows: Vec<Row>,
}

impl OobPage {
    fn new(c: Chrome, selected: &str) -> Self {
        Self {
            c,
            windows: WINDOWS
                .iter()
                .map(|(v, l, _)| Opt {
                    value: v,
                    label: l,
                    selected: *v == selected,
                })
                .collect(),
            no_feed: false,
            bad_window: false,
            unavailable: false,
            ran: false,
            window: String::new(),
            tolerance_min: DEFAULT_TOLERANCE.num_minutes(),
            rows: Vec::new(),
        }
    }
}

/// `GET /audit/out-of-band`: the changes made outside the gate in the window asked for. Refused (and the refusal
/// audited by the engine) for a role without `view_audit`, whatever else is wrong with the request.
pub(crate) async fn out_of_band(me: SignedIn, RawQuery(q): RawQuery) -> Response {
    let ctx = &me.page;
    let engine = ctx.state.engine();
    if !role_permits(&ctx.state, &me.agent, Permission::ViewAudit) {
        // The engine refuses, and audits the refusal, before it reads anything.
        if let Err(d) = engine
            .audit_view(&me.agent, &ctx.rctx, &AuditViewQuery::default())
            .await
        {
            return ctx.denial_page(&d, "/search");
        }
    }
    let asked = since_param(q.as_deref().unwrap_or(""));
    let Some((value, length)) = window(asked.as_deref()) else {
        let mut t = OobPage::new(ctx.chrome(), DEFAULT_WINDOW);
        t.bad_window = true;
        return render(StatusCode::BAD_REQUEST, &t);
    };
    let mut t = OobPage::new(ctx.chrome(), value);
    let Some(feed) = ctx.state.change_feed() else {
        t.no_feed = true;
        return render(StatusCode::OK, &t);
    };
    let _turn = ctx.state.out_of_band_turn().await;
    let until = ctx.state.0.clock.now();
    let since = until - length;
    match engine
        .out_of_band_view(
            &me.agent,
            &ctx.rctx,
            feed.as_ref(),
            since,
            until,
            DEFAULT_TOLERANCE,
        )
        .await
    {
        Ok(findings) => {
            t.ran = true;
            t.window = format!("from {} to {}", when(&since), when(&until));
            t.rows = findings.iter().map(row).collect();
            render(StatusCode::OK, &t)
        }
        Err(d) if d.reason == fctr_ports::Reason::AuditUnavailable => {
            t.unavailable = true;
            render(StatusCode::SERVICE_UNAVAILABLE, &t)
        }
        Err(d) => ctx.denial_page(&d, "/audit"),
    }
}
