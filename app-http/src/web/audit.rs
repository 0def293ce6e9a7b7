//! The audit view and its exports: pseudonymous events, for roles with `view_audit`. The engine authorizes,
//! reads, filters and pages ([`fctr_core::Engine::audit_view`]) and turns a caller's login into the pseudonym to
//! filter by ([`fctr_core::Engine::audit_caller_pseudonym`]); these handlers parse the filter, render the rows
//! and write the exports.
//!
//! - `GET /audit`: the view. Every filter is in the query string, and the query string only ever holds
//!   pseudonyms, machine names, times and ticket references.
//! - `POST /audit/find`: "events about this caller". The login, e-mail or IdP id typed is posted (so it is in no
//!   URL, access log or history), pseudonymized by the engine, and the browser is sent to `/audit?target=…`: paging
//!   and exports carry only the pseudonym. The text is never echoed back, not even into the form.
//! - `GET /audit/export.csv`, `GET /audit/export.json`: every event the filter matches (up to
//!   [`AuditViewQuery::READ_CAP`]), not just the page, as an attachment.
//!
//! Times are UTC: the inputs say so, and accept `YYYY-MM-DDTHH:MM[:SS]` (UTC) or RFC 3339 with an explicit
//! offset (converted to UTC).

use super::{labels, role_permits, when};
use crate::auth::{CsrfForm, SignedIn};
use crate::reply::html::Chrome;
use crate::reply::render;
use askama::Template;
use axum::extract::RawQuery;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike, Utc};
use fctr_core::policy::Permission;
use fctr_core::{AuditPage, AuditRow, AuditSort, AuditViewQuery};
use fctr_ports::{EventKind, Outcome, PseudoId, Reason, TicketRef};
use serde::Deserialize;

/// Events per page.
pub(crate) const PAGE_SIZE: usize = 50;
/// Longest text accepted in one filter field.
const MAX_FIELD: usize = 100;
/// How many characters of a pseudonym the table shows.
const SHORT: usize = 10;

/// The filter fields as text, as the query string (or the find form) carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fields {
    kind: String,
    outcome: String,
    since: String,
    until: String,
    agent: String,
    target: String,
    ticket: String,
    sort: String,
    page: String,
}

impl Fields {
    /// From a query string: the first value of each known key; unknown keys ignored. Never fails.
    fn from_query(q: &str) -> Self {
        let mut f = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            if seen.iter().any(|s| *s == k) {
                continue;
            }
            seen.push(k.to_string());
            if let Some(slot) = f.slot(&k) {
                *slot = v.into_owned();
            }
        }
        f
    }

    fn slot(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "kind" => &mut self.kind,
            "outcome" => &mut self.outcome,
            "since" => &mut self.since,
            "until" => &mut self.until,
            "agent" => &mut self.agent,
            "target" => &mut self.target,
            "ticket" => &mut self.ticket,
            "sort" => &mut self.sort,
            "page" => &mut self.page,
            _ => return None,
        })
    }

    fn pairs(&self) -> [(&'static str, &str); 9] {
        [
            ("kind", &self.kind),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
            ("agent", &self.agent),
            ("target", &self.target),
            ("ticket", &self.ticket),
            ("sort", &self.sort),
            ("page", &self.page),
        ]
    }

    /// The query string of the non-empty fields.
    fn query_string(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    /// A link to the view (or an export) with these fields.
    fn link(&self, path: &str) -> String {
        let q = self.query_string();
        if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{q}")
        }
    }
}

/// A filter, parsed.
struct Parsed {
    query: AuditViewQuery,
    /// 1-based.
    page: usize,
    /// What the form shows back (an over-long value is not shown again).
    shown: Fields,
    /// The valid values only, normalized, for links (no page).
    carried: Fields,
    /// What was wrong, in fixed words (never the input).
    errors: Vec<&'static str>,
}

/// Parses a time: `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD` as UTC, or RFC 3339 with an offset.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    for f in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return Some(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| n.and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A time as the `datetime-local` input takes it (UTC, seconds only when there are some).
fn time_input(t: &DateTime<Utc>) -> String {
    if t.second() == 0 {
        t.format("%Y-%m-%dT%H:%M").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// Parses the filter fields; `me` is the viewer's pseudonym (for `agent=me`).
fn parse(raw: &Fields, me: &PseudoId) -> Parsed {
    let mut errors = Vec::new();
    let mut shown = Fields::default();
    let mut carried = Fields::default();
    let mut query = AuditViewQuery::default();
    query.limit = PAGE_SIZE;
    for (k, v) in raw.pairs() {
        let v = v.trim();
        if v.chars().count() > MAX_FIELD {
            errors.push(match k {
                "agent" | "target" => "A pseudonym filter is too long.",
                "ticket" => "The ticket reference is too long.",
                _ => "A filter value is too long.",
            });
            continue;
        }
        if let Some(slot) = shown.slot(k) {
            v.clone_into(slot);
        }
        if v.is_empty() {
            continue;
        }
        let ok: Option<String> = match k {
            "kind" => EventKind::parse(v).map(|kind| {
                query.kind = Some(kind);
                v.to_owned()
            }),
            "outcome" => Outcome::parse(v).map(|o| {
                query.outcome = Some(o);
                v.to_owned()
            }),
            "since" | "until" => parse_time(v).map(|t| {
                if k == "since" {
                    query.since = Some(t);
                } else {
                    query.until = Some(t);
                }
                time_input(&t)
            }),
            "agent" if v.eq_ignore_ascii_case("me") => {
                query.agent = Some(me.clone());
                Some("me".to_owned())
            }
            "agent" | "target" => PseudoId::parse(v).ok().map(|p| {
                let s = p.as_str().to_owned();
                if k == "agent" {
                    query.agent = Some(p);
                } else {
                    query.target = Some(p);
                }
                s
            }),
            "ticket" => TicketRef::parse(v).ok().map(|t| {
                let s = t.as_str().to_owned();
                query.ticket = Some(t);
                s
            }),
            "sort" => match v {
                "newest" => Some(v.to_owned()),
                "oldest" => {
                    query.sort = AuditSort::OldestFirst;
                    Some(v.to_owned())
                }
                _ => None,
            },
            "page" => v
                .parse::<usize>()
                .ok()
                .filter(|p| (1..=AuditViewQuery::READ_CAP / PAGE_SIZE).contains(p))
                .map(|p| p.to_string()),
            _ => None,
        };
        match ok {
            // The page is not carried: every link sets its own.
            Some(norm) if k != "page" => {
                if let Some(slot) = carried.slot(k) {
                    norm.clone_into(slot);
                }
                if let Some(slot) = shown.slot(k) {
                    *slot = norm;
                }
            }
            Some(_) => {}
            None => errors.push(match k {
                "kind" => "Unknown event kind: choose one from the list.",
                "outcome" => "Unknown outcome: choose one from the list.",
                "since" => "The start time is not a time: use YYYY-MM-DDTHH:MM (UTC).",
                "until" => "The end time is not a time: use YYYY-MM-DDTHH:MM (UTC).",
                "agent" => "The agent filter must be a pseudonym (such as k1:…) or \"me\".",
                "target" => "The caller filter must be a pseudonym (such as k1:…).",
                "ticket" => "The ticket reference is not of a ticket's shape (such as INC0012345 or HELP-123).",
                "sort" => "Unknown sort order.",
                _ => "The page number is out of range.",
            }),
        }
    }
    if let (Some(s), Some(u)) = (query.since, query.until) {
        if s >= u {
            errors.push("The start time must be before the end time.");
        }
    }
    let page = raw.page.trim().parse::<usize>().unwrap_or(1).max(1);
    query.offset = (page - 1).saturating_mul(PAGE_SIZE);
    Parsed {
        query,
        page,
        shown,
        carried,
        errors,
    }
}

/// A person as a cell shows them: short pseudonym, the full one on demand, and a link filtering by it.
struct Who {
    short: String,
    full: String,
    you: bool,
    href: String,
}

fn short(p: &PseudoId) -> String {
    let s = p.as_str();
    match s.char_indices().nth(SHORT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn who(p: Option<&PseudoId>, me: &PseudoId, key: &str, carried: &Fields) -> Option<Who> {
    let p = p?;
    let mut f = carried.clone();
    if let Some(slot) = f.slot(key) {
        *slot = p.as_str().to_owned();
    }
    Some(Who {
        short: short(p),
        full: p.as_str().to_owned(),
        you: p == me,
        href: f.link("/audit"),
    })
}

struct Row {
    at: String,
    kind: String,
    outcome: String,
    outcome_code: &'static str,
    agent: Option<Who>,
    target: Option<Who>,
    factor: String,
    action: String,
    reason: String,
    ticket: Option<(String, String)>,
}

fn row(e: &AuditRow, me: &PseudoId, carried: &Fields) -> Row {
    Row {
        at: when(&e.at),
        kind: labels::event_kind_words(e.kind),
        outcome: labels::outcome_words(e.outcome),
        outcome_code: e.outcome.as_str(),
        agent: who(e.agent.as_ref(), me, "agent", carried),
        target: who(e.target.as_ref(), me, "target", carried),
        factor: e.factor.as_ref().map(labels::factor).unwrap_or_default(),
        action: e.action.map(labels::action).unwrap_or_default(),
        reason: e.reason.map(labels::reason).unwrap_or_default(),
        ticket: e.ticket.as_ref().map(|t| {
            let mut f = carried.clone();
            t.as_str().clone_into(&mut f.ticket);
            (t.as_str().to_owned(), f.link("/audit"))
        }),
    }
}

/// An option of a select.
struct Opt {
    value: &'static str,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct ViewPage {
    c: Chrome,
    kinds: Vec<Opt>,
    outcomes: Vec<Opt>,
    f: Fields,
    oldest_first: bool,
    /// The filter as hidden fields of the find form (the caller filter and the page excluded).
    hidden: Vec<(&'static str, String)>,
    errors: Vec<&'static str>,
    /// The caller filter in force.
    caller: Option<Who>,
    clear_caller: String,
    ran: bool,
    rows: Vec<Row>,
    total: usize,
    truncated: bool,
    window: String,
    page: usize,
    pages: usize,
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
    sort_newest: String,
    sort_oldest: String,
    csv: String,
    json: String,
    export_cap: usize,
}

impl ViewPage {
    fn new(c: Chrome, p: &Parsed, me: &PseudoId) -> Self {
        let carried = &p.carried;
        let with = |k: &str, v: &str| {
            let mut f = carried.clone();
            if let Some(slot) = f.slot(k) {
                v.clone_into(slot);
            }
            f
        };
        Self {
            c,
            kinds: EventKind::ALL
                .iter()
                .map(|k| Opt {
                    value: k.as_str(),
                    label: labels::event_kind_words(*k),
                    selected: k.as_str() == carried.kind,
                })
                .collect(),
            outcomes: Outcome::ALL
                .iter()
                .map(|o| Opt {
                    value: o.as_str(),
                    label: labels::outcome_words(*o),
                    selected: o.as_str() == carried.outcome,
                })
                .collect(),
            f: p.shown.clone(),
            oldest_first: p.query.sort == AuditSort::OldestFirst,
            hidden: carried
                .pairs()
                .into_iter()
                .filter(|(k, v)| !v.is_empty() && *k != "target" && *k != "page")
                .map(|(k, v)| (k, v.to_owned()))
                .collect(),
            errors: p.errors.clone(),
            caller: who(p.query.target.as_ref(), me, "target", carried),
            clear_caller: with("target", "").link("/audit"),
            ran: false,
            rows: Vec::new(),
            total: 0,
            truncated: false,
            window: String::new(),
            page: p.page,
            pages: 0,
            first: 0,
            last: 0,
            prev: None,
            next: None,
            sort_newest: with("sort", "").link("/audit"),
            sort_oldest: with("sort", "oldest").link("/audit"),
            csv: carried.link("/audit/export.csv"),
            json: carried.link("/audit/export.json"),
            export_cap: AuditViewQuery::READ_CAP,
        }
    }

    fn fill(&mut self, p: &Parsed, result: &AuditPage, me: &PseudoId) {
        self.ran = true;
        self.rows = result.rows.iter().map(|e| row(e, me, &p.carried)).collect();
        self.total = result.total;
        self.truncated = result.truncated;
        self.window = match p.query.until {
            Some(u) => format!("from {} to {}", when(&result.since), when(&u)),
            None => format!("since {}", when(&result.since)),
        };
        self.pages = result.total.div_ceil(PAGE_SIZE).max(1);
        self.first = if self.rows.is_empty() {
            0
        } else {
            p.query.offset + 1
        };
        self.last = p.query.offset + self.rows.len();
        let page_link = |n: usize| {
            let mut f = p.carried.clone();
            f.page = if n > 1 { n.to_string() } else { String::new() };
            f.link("/audit")
        };
        self.prev = (p.page > 1).then(|| page_link(p.page - 1));
        self.next = (self.last < result.total).then(|| page_link(p.page + 1));
    }
}

/// Renders the view for a parsed filter: the rows when the filter is good, the form with its errors (400) when
/// not. A viewer without `view_audit` is refused by the engine (audited) either way.
async fn show(me: &SignedIn, p: &Parsed, notice: Option<(&'static str, StatusCode)>) -> Response {
    let ctx = &me.page;
    let engine = ctx.state.engine();
    let viewer = me.agent.pseudonym();
    let mut t = ViewPage::new(ctx.chrome(), p, viewer);
    let bad = notice
        .map(|(_, s)| s)
        .or_else(|| (!p.errors.is_empty()).then_some(StatusCode::BAD_REQUEST));
    if let Some(status) = bad {
        if !role_permits(&ctx.state, &me.agent, Permission::ViewAudit) {
            // The engine refuses, and audits the refusal, before it reads anything.
            if let Err(d) = engine
                .audit_view(&me.agent, &ctx.rctx, &AuditViewQuery::default())
                .await
            {
                return ctx.denial_page(&d, "/search");
            }
        }
        t.errors.extend(notice.map(|(m, _)| m));
        return render(status, &t);
    }
    match engine.audit_view(&me.agent, &ctx.rctx, &p.query).await {
        Ok(result) => {
            t.fill(p, &result, viewer);
            render(StatusCode::OK, &t)
        }
        Err(d) => ctx.denial_page(&d, "/search"),
    }
}

/// `GET /audit`: one page of pseudonymous events, filtered and sorted.
pub(crate) async fn audit(me: SignedIn, RawQuery(q): RawQuery) -> Response {
    let raw = Fields::from_query(q.as_deref().unwrap_or(""));
    let p = parse(&raw, me.agent.pseudonym());
    show(&me, &p, None).await
}

/// The find form: the caller as typed, and the rest of the filter to keep.
#[derive(Deserialize)]
pub(crate) struct FindForm {
    /// A login, an e-mail address or an IdP user id. Held only for the engine's call.
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    sort: String,
}

/// `POST /audit/find`: pseudonymizes the caller named in the form (the engine resolves a login through the
/// directory) and redirects (303) to the view filtered by the pseudonym. The text typed is in no URL, log line,
/// audit event or page.
pub(crate) async fn find(CsrfForm(me, f): CsrfForm<FindForm>) -> Response {
    let raw = Fields {
        kind: f.kind,
        outcome: f.outcome,
        since: f.since,
        until: f.until,
        agent: f.agent,
        ticket: f.ticket,
        sort: f.sort,
        ..Fields::default()
    };
    let p = parse(&raw, me.agent.pseudonym());
    let ctx = &me.page;
    let found = ctx
        .state
        .engine()
        .audit_caller_pseudonym(&me.agent, &ctx.rctx, &f.q)
        .await;
    drop(f.q);
    match found {
        Ok(pseudo) => {
            let mut to = p.carried.clone();
            to.target = pseudo.as_str().to_owned();
            Redirect::to(&to.link("/audit")).into_response()
        }
        Err(d) if d.reason == Reason::InvalidInput => {
            let m = "Enter the caller's login or e-mail address, or their IdP user id (at most 100 characters).";
            show(&me, &p, Some((m, StatusCode::BAD_REQUEST))).await
        }
        Err(d) if d.reason == Reason::TargetNotFound => {
            let m = "No single user has that login or e-mail address. Check it, or enter their IdP user id.";
            show(&me, &p, Some((m, StatusCode::NOT_FOUND))).await
        }
        Err(d) => ctx.denial_page(&d, "/audit"),
    }
}

/// Which export.
#[derive(Clone, Copy)]
enum Format {
    Csv,
    Json,
}

/// The export columns, in order (CSV header and JSON keys).
const COLUMNS: [&str; 11] = [
    "at",
    "kind",
    "kind_label",
    "outcome",
    "outcome_label",
    "agent",
    "target",
    "factor",
    "action",
    "reason",
    "helpdesk_ticket",
];

/// One event as export cells, in [`COLUMNS`] order: machine names and pseudonyms as the log holds them, labels
/// beside kind and outcome.
fn cells(e: &AuditRow) -> [String; 11] {
    let opt = |o: Option<&str>| o.unwrap_or_default().to_owned();
    [
        fctr_ports::canonical_time::format(&e.at),
        e.kind.as_str().to_owned(),
        labels::event_kind_words(e.kind),
        e.outcome.as_str().to_owned(),
        labels::outcome_words(e.outcome),
        opt(e.agent.as_ref().map(PseudoId::as_str)),
        opt(e.target.as_ref().map(PseudoId::as_str)),
        opt(e.factor.as_ref().map(|f| f.as_str())),
        opt(e.action.map(|a| a.as_str())),
        opt(e.reason.map(|r| r.as_str())),
        opt(e.ticket.as_ref().map(TicketRef::as_str)),
    ]
}

/// One CSV cell, safe to open in a spreadsheet: a value starting with `=`, `+`, `-`, `@`, tab or carriage return
/// is prefixed with `'` so it is not read as a formula; a value holding a comma, quote or line break is quoted.
pub(crate) fn csv_cell(s: &str) -> String {
    let v = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv(rows: &[AuditRow]) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in rows {
        let line: Vec<String> = cells(r).iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn json(p: &Parsed, result: &AuditPage, now: DateTime<Utc>) -> String {
    let opt = |o: Option<&str>| o.map_or(serde_json::Value::Null, serde_json::Value::from);
    let q = &p.query;
    let events: Vec<serde_json::Value> = result
        .rows
        .iter()
        .map(|r| {
            let obj: serde_json::Map<String, serde_json::Value> = COLUMNS
                .iter()
                .zip(cells(r))
                .map(|(k, v)| {
                    let v = if v.is_empty() {
                        serde_json::Value::Null
                    } else {
                        serde_json::Value::from(v)
                    };
                    ((*k).to_owned(), v)
                })
                .collect();
            serde_json::Value::Object(obj)
        })
        .collect();
    let doc = serde_json::json!({
        "exported_at": fctr_ports::canonical_time::format(&now),
        "filter": {
            "kind": opt(q.kind.map(|k| k.as_str())),
            "outcome": opt(q.outcome.map(|o| o.as_str())),
            "since": fctr_ports::canonical_time::format(&result.since),
            "until": opt(q.until.map(|u| fctr_ports::canonical_time::format(&u)).as_deref()),
            "agent": opt(q.agent.as_ref().map(PseudoId::as_str)),
            "target": opt(q.target.as_ref().map(PseudoId::as_str)),
            "helpdesk_ticket": opt(q.ticket.as_ref().map(TicketRef::as_str)),
            "sort": if q.sort == AuditSort::OldestFirst { "oldest" } else { "newest" },
        },
        "count": result.rows.len(),
        "truncated": result.truncated,
        "events": events,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

async fn export(me: SignedIn, q: Option<String>, format: Format) -> Response {
    let raw = Fields::from_query(q.as_deref().unwrap_or(""));
    let mut p = parse(&raw, me.agent.pseudonym());
    if !p.errors.is_empty() {
        return show(&me, &p, None).await;
    }
    p.query.offset = 0;
    p.query.limit = AuditViewQuery::READ_CAP;
    let ctx = &me.page;
    let result = match ctx
        .state
        .engine()
        .audit_view(&me.agent, &ctx.rctx, &p.query)
        .await
    {
        Ok(r) => r,
        Err(d) => return ctx.denial_page(&d, "/audit"),
    };
    let (body, ctype, ext) = match format {
        Format::Csv => (csv(&result.rows), "text/csv; charset=utf-8", "csv"),
        Format::Json => (json(&p, &result, Utc::now()), "application/json", "json"),
    };
    let disposition = format!(
        "attachment; filename=\"fctr-audit-{}.{ext}\"",
        Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-audit-truncated",
        HeaderValue::from_static(if result.truncated { "true" } else { "false" }),
    );
    resp
}

/// `GET /audit/export.csv`: every event the filter matches (up to [`AuditViewQuery::READ_CAP`]), as CSV.
pub(crate) async fn export_csv(me: SignedIn, RawQuery(q): RawQuery) -> Response {
    export(me, q, Format::Csv).await
}

/// `GET /audit/export.json`: every event the filter matches (up to [`AuditViewQuery::READ_CAP`]), as JSON.
pub(crate) async fn export_json(me: SignedIn, RawQuery(q): RawQuery) -> Response {
    export(me, q, Format::Json).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> PseudoId {
        PseudoId::parse("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap()
    }

    #[test]
    fn csv_cells_cannot_be_formulas() {
        for bad in ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"] {
            let c = csv_cell(bad);
            assert!(
                c.starts_with('\'') || c.starts_with("\"'"),
                "{bad:?} became {c:?}"
            );
        }
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_cell("k1:abc"), "k1:abc");
        assert_eq!(csv_cell("-123"), "'-123", "a ticket may start with a dash");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn filters_parse_and_refuse_in_fixed_words() {
        let raw = Fields::from_query(
            "kind=challenge_started&outcome=denied&since=2024-05-01T10:00&until=2024-05-02T00:00:00%2B02:00&agent=me&ticket=INC0012345&sort=oldest&page=3&kind=login",
        );
        let p = parse(&raw, &me());
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(
            p.query.kind,
            Some(EventKind::ChallengeStarted),
            "the first value wins"
        );
        assert_eq!(p.query.outcome, Some(Outcome::Denied));
        assert_eq!(p.query.agent, Some(me()));
        assert_eq!(p.query.sort, AuditSort::OldestFirst);
        assert_eq!(p.query.offset, 2 * PAGE_SIZE);
        assert_eq!(
            p.carried.until, "2024-05-01T22:00",
            "offset converted to UTC"
        );
        assert_eq!(p.carried.page, "", "links set their own page");

        let raw = Fields::from_query(&format!(
            "kind=nope&since=yesterday&agent=alice%40example.com&target={}&ticket=alice%40example.com&sort=up&page=0",
            "x".repeat(200)
        ));
        let p = parse(&raw, &me());
        assert_eq!(p.errors.len(), 7, "{:?}", p.errors);
        for e in &p.errors {
            assert!(!e.contains("alice") && !e.contains("yesterday"), "{e}");
        }
        assert!(
            p.shown.target.is_empty(),
            "an over-long value is not shown back"
        );
        assert!(p.carried.agent.is_empty() && p.carried.ticket.is_empty());

        let p = parse(
            &Fields::from_query("since=2024-05-02T00:00&until=2024-05-01T00:00"),
            &me(),
        );
        assert_eq!(p.errors, ["The start time must be before the end time."]);
    }

    #[test]
    fn pseudonyms_are_shortened() {
        assert_eq!(short(&me()), "k1:AAAAAAA…");
    }
}
