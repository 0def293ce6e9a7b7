//! The server-rendered pages: sign-in, search, caller card, verification with live status, actions, audit; one
//! file per resource. Who is calling is decided by the extractors of [`crate::auth`] (`Page`, `SignedIn`,
//! `CsrfForm`): no handler loads a session or checks CSRF itself.
//!
//! Layering: depends on `auth`, `reply`, `state`, `input` and `poller`; nothing but the router depends on it.

pub(crate) mod actions;
pub(crate) mod approvals;
pub(crate) mod audit;
pub(crate) mod caller;
pub(crate) mod labels;
pub(crate) mod link;
pub(crate) mod out_of_band;
pub(crate) mod search;
pub(crate) mod sign_in;
pub(crate) mod verify;

use crate::reply::html::Page;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use fctr_core::policy::Permission;
use fctr_core::{Agent, GrantView};
use fctr_ports::{AccountStatus, ActionKind, FactorKind, VerificationId};
use serde::Deserialize;

/// A time as the pages show it.
pub(crate) fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A time for a page: machine-readable (`<time datetime>`, which app.js rewrites into the agent's local time with
/// its zone), the UTC text shown without JavaScript, and how long ago or from now.
pub(crate) struct Moment {
    pub iso: String,
    pub utc: String,
    pub relative: String,
}

/// A [`Moment`] for `t`, seen at `now`.
pub(crate) fn moment(t: &DateTime<Utc>, now: DateTime<Utc>) -> Moment {
    Moment {
        iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        utc: t.format("%Y-%m-%d %H:%M UTC").to_string(),
        relative: relative(*t, now),
    }
}

/// "3 days ago", "in 4 min", "just now".
pub(crate) fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs > 0);
    let amount = match n {
        0..=44 => return "just now".to_owned(),
        45..=5399 => format!("{} min", n.div_ceil(60)),
        5400..=129_599 => format!("{} h", (n + 1800) / 3600),
        129_600..=5_183_999 => format!("{} days", (n + 43_200) / 86_400),
        _ => format!("{} months", n / 2_592_000),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// Seconds as the agent reads them: "45 seconds", "1 minute", "58 minutes", "2 hours".
pub(crate) fn duration_words(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} second{}", if secs == 1 { "" } else { "s" }),
        60..=5399 => {
            let m = secs.div_ceil(60);
            format!("{m} minute{}", if m == 1 { "" } else { "s" })
        }
        _ => {
            let h = secs.div_ceil(3600);
            format!("{h} hour{}", if h == 1 { "" } else { "s" })
        }
    }
}

/// A factor kind in the words an agent uses, for this IdP (`okta`, `entra`).
pub(crate) fn factor_words(kind: &FactorKind, provider: &str) -> String {
    let okta = provider == "okta";
    match kind {
        FactorKind::Push if okta => "Okta Verify push with number".into(),
        FactorKind::Push => "Microsoft Authenticator push".into(),
        FactorKind::Totp if okta => "Code from Okta Verify or an authenticator app".into(),
        FactorKind::Totp => "Code from Microsoft Authenticator or an authenticator app".into(),
        FactorKind::Hotp => "Code from a counter-based token".into(),
        FactorKind::HardwareOtp => "Code from a hardware token".into(),
        FactorKind::Sms => "Code sent by text message".into(),
        FactorKind::Voice => "Code read out by phone call".into(),
        FactorKind::Email => "Code sent by e-mail".into(),
        FactorKind::SecurityQuestion => "Security question".into(),
        FactorKind::WebAuthn => "Security key or passkey".into(),
        FactorKind::PlatformCredential => "Device sign-in (Windows Hello, platform passkey)".into(),
        FactorKind::TemporaryAccessPass => "Temporary Access Pass".into(),
        FactorKind::Password => "Password".into(), // pragma: allowlist secret (a label)
        FactorKind::IdpSignIn => "Sign-in link (the caller signs in with MFA)".into(),
        other => format!("Other sign-in method ({})", other.as_str()),
    }
}

/// An account status in words.
pub(crate) fn status_words(s: &AccountStatus) -> String {
    match s {
        AccountStatus::Active => "Active".into(),
        AccountStatus::Staged => "Not activated yet".into(),
        AccountStatus::Provisioned => "Activated, no password set yet".into(),
        AccountStatus::Recovery => "In password recovery".into(),
        AccountStatus::PasswordExpired => "Password expired".into(), // pragma: allowlist secret (a label)
        AccountStatus::LockedOut => "Locked out".into(),
        AccountStatus::Suspended => "Suspended".into(),
        AccountStatus::Deprovisioned => "Deactivated".into(),
        AccountStatus::Disabled => "Sign-in disabled".into(),
        other => format!("Status: {}", other.as_str()),
    }
}

/// The badge tone of an account status (`ok`, `warn`, `bad`).
pub(crate) fn status_tone(s: &AccountStatus) -> &'static str {
    match s {
        AccountStatus::Active => "ok",
        AccountStatus::LockedOut | AccountStatus::PasswordExpired | AccountStatus::Recovery => {
            "warn"
        }
        _ => "bad",
    }
}

/// What an action does to the caller, in one sentence for the confirmation step.
pub(crate) fn consequence(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::ClearSessions => {
            "Signs the caller out of every application and device; they must sign in again everywhere."
        }
        ActionKind::ResetPassword => {
            "Makes a one-time password reset link for you to give the caller; their current password keeps working until they use it."
        }
        ActionKind::ExpirePassword => {
            "Replaces the password with a temporary one that the caller must change at their next sign-in."
        }
        ActionKind::Unlock => {
            "Lets the caller try their current password again. It gives them no new password or code."
        }
        ActionKind::ResetFactors => {
            "Removes every MFA method; the caller must enrol again before signing in with MFA."
        }
        ActionKind::RemoveFactor => {
            "Removes one MFA method; the caller must enrol it again to use it."
        }
        ActionKind::IssueTemporaryAccessPass => {
            "Makes a time-limited pass the caller signs in with once to register new methods."
        }
        ActionKind::Suspend => "Stops the caller signing in until the account is unsuspended.",
        ActionKind::Unsuspend => "Lets the caller sign in again.",
        _ => "Changes the caller's account.",
    }
}

/// How severe an action is: (`high`/`medium`/`low`, words).
pub(crate) fn severity(kind: ActionKind) -> (&'static str, &'static str) {
    match kind {
        ActionKind::ResetFactors
        | ActionKind::RemoveFactor
        | ActionKind::IssueTemporaryAccessPass
        | ActionKind::ResetPassword
        | ActionKind::ExpirePassword => {
            ("high", "High risk: hands over or removes a way to sign in")
        }
        ActionKind::Suspend | ActionKind::ClearSessions => ("medium", "Disruptive for the caller"),
        _ => ("low", "Low risk"),
    }
}

/// Time left until `until`, in minutes and seconds.
pub(crate) fn remaining(until: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (*until - now).num_seconds().max(0);
    format!("{} min {} s", s / 60, s % 60)
}

/// An action's name as a button label.
pub(crate) fn label(kind: ActionKind) -> String {
    let d = kind.describe();
    let mut c = d.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Whether the agent's role has permission `p`.
pub(crate) fn role_permits(st: &AppState, agent: &Agent, p: Permission) -> bool {
    let policy = st.engine().policy();
    agent
        .role()
        .and_then(|r| policy.role(r))
        .is_some_and(|r| policy.permits(r, p))
}

/// A live grant, in words.
pub(crate) struct GrantLine {
    pub assurance: &'static str,
    pub expires_at: String,
    pub expires_iso: String,
    pub remaining: String,
    pub remaining_secs: i64,
    pub single_use: bool,
}

/// The grant line of a caller card or verification page.
pub(crate) fn grant_line(g: &GrantView, now: DateTime<Utc>) -> GrantLine {
    GrantLine {
        assurance: g.assurance,
        expires_at: when(&g.expires_at),
        expires_iso: g
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        remaining: remaining(&g.expires_at, now),
        remaining_secs: (g.expires_at - now).num_seconds().max(0),
        single_use: g.single_use,
    }
}

/// An action offered now: its confirmation step is one click away.
pub(crate) struct Offer {
    pub kind: &'static str,
    pub label: String,
    pub severity: &'static str,
}

impl Offer {
    pub(crate) fn new(kind: ActionKind) -> Self {
        Self {
            kind: kind.as_str(),
            label: label(kind),
            severity: severity(kind).0,
        }
    }
}

/// The request with the form's optional ticket reference stamped on its audit context, or (for a reference of a
/// shape no ticket has, or one the configured ticket system cannot name) a 400 page that says what a reference
/// looks like; nothing was done then.
pub(crate) fn with_ticket(
    mut ctx: Page,
    text: &str,
    back: &str,
) -> Result<(Page, Option<fctr_ports::TicketRef>), Response> {
    let refused = |ctx: &Page, m: String| {
        Err(ctx.message(
            StatusCode::BAD_REQUEST,
            "Ticket reference not accepted",
            &m,
            back,
        ))
    };
    match ticket(text) {
        Ok(t) => {
            if let (Some(r), Some(desk)) = (&t, ctx.state.tickets()) {
                if let Err(e) = desk.check(r) {
                    return refused(
                        &ctx,
                        format!(
                            "Work notes go to {}, which takes {}. Nothing was done.",
                            e.0.label(),
                            e.0.shape()
                        ),
                    );
                }
            }
            ctx.rctx = ctx.rctx.clone().with_ticket(t.clone());
            Ok((ctx, t))
        }
        Err(_) => refused(
            &ctx,
            "A ticket reference looks like INC0012345, HELP-123 or 12345: letters, then digits. Never a name or an e-mail address. Nothing was done.".to_owned(),
        ),
    }
}

/// An optional ticket reference from a form: `Ok(None)` when empty, the refusal when it has a shape no ticket has
/// (an e-mail address, a name: [`fctr_ports::TicketRef`]).
pub(crate) fn ticket(s: &str) -> Result<Option<fctr_ports::TicketRef>, fctr_core::Denial> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    fctr_ports::TicketRef::parse(s)
        .map(Some)
        .map_err(|_| fctr_core::Denial::new(fctr_ports::Reason::InvalidInput))
}

/// A form naming a factor (optional: policy's preferred one when empty), with an optional ticket reference.
#[derive(Deserialize)]
pub(crate) struct FactorForm {
    #[serde(default)]
    pub factor_id: String,
    #[serde(default)]
    pub ticket: String,
    /// The confirmation step was shown and confirmed (actions only).
    #[serde(default)]
    pub confirmed: String,
    /// The caller's name as the confirmation step showed it, for the result page (display only; actions only).
    #[serde(default)]
    pub caller: String,
}

/// A verification id from the path.
pub(crate) fn parse_vid(s: &str) -> Option<VerificationId> {
    VerificationId::parse(s).ok()
}

/// The 404 page (every unknown path), with the security headers like every other response.
pub(crate) async fn not_found(ctx: Page) -> Response {
    ctx.message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
        "/",
    )
}
