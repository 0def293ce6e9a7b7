//! The API's wire types (request and response bodies, with their OpenAPI schemas) and their conversions from
//! the engine's views.

use chrono::{DateTime, Utc};
use fctr_core::{CallerCard, GrantView, VerificationView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A search.
#[derive(Deserialize, ToSchema)]
pub struct SearchRequest {
    /// Login, e-mail or name prefix (a body field, so it never lands in a URL or access log).
    pub query: String,
}

/// A user in search results.
#[derive(Serialize, ToSchema)]
pub struct UserSummary {
    /// IdP user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Account status.
    pub status: String,
}

/// A factor on the caller card.
#[derive(Serialize, ToSchema)]
pub struct FactorDto {
    /// Factor id.
    pub id: String,
    /// Kind (`push`, `totp`, …).
    pub kind: String,
    /// Assurance class in words.
    pub assurance: String,
    /// Policy accepts it now.
    pub accepted: bool,
    /// Why not.
    pub refusal: Option<String>,
}

/// An action on the caller card.
#[derive(Serialize, ToSchema)]
pub struct ActionDto {
    /// The action.
    pub action: String,
    /// The role allows it.
    pub permitted_for_role: bool,
    /// The IdP can do it.
    pub supported: bool,
    /// A live grant covers it now.
    pub available_now: bool,
    /// What policy requires, one sentence per line.
    pub explanation: Vec<String>,
}

/// A live grant.
#[derive(Serialize, ToSchema)]
pub struct GrantDto {
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// One action consumes it.
    pub single_use: bool,
    /// Actions covered.
    pub actions: Vec<String>,
    /// Factor kinds verified.
    pub factors: Vec<String>,
    /// Assurance wording.
    pub assurance: String,
}

pub(crate) fn grant_dto(g: &GrantView) -> GrantDto {
    GrantDto {
        expires_at: g.expires_at,
        single_use: g.single_use,
        actions: g.actions.iter().map(|a| a.as_str().to_owned()).collect(),
        factors: g.factors.iter().map(|f| f.as_str().to_owned()).collect(),
        assurance: g.assurance.to_owned(),
    }
}

/// The caller card.
#[derive(Serialize, ToSchema)]
pub struct CallerCardDto {
    /// IdP user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Account status.
    pub status: String,
    /// `standard` or `privileged`.
    pub class: String,
    /// In a protected group.
    pub protected: bool,
    /// Locked out.
    pub locked_out: bool,
    /// Last sign-in.
    pub last_login: Option<DateTime<Utc>>,
    /// Password last changed.
    pub password_changed: Option<DateTime<Utc>>,
    /// Factors.
    pub factors: Vec<FactorDto>,
    /// Actions.
    pub actions: Vec<ActionDto>,
    /// The agent's live grant for this caller.
    pub grant: Option<GrantDto>,
    /// The factor policy would challenge first.
    pub recommended_factor: Option<String>,
}

pub(crate) fn card_dto(c: &CallerCard) -> CallerCardDto {
    let pii = |p: &Option<fctr_ports::Pii>| p.as_ref().map(|x| x.expose_pii().to_owned());
    CallerCardDto {
        id: c.user.id.as_str().to_owned(),
        login: c.user.login.expose_pii().to_owned(),
        display_name: pii(&c.user.display_name),
        email: pii(&c.user.email),
        phone: pii(&c.user.phone),
        status: c.user.status.as_str().to_owned(),
        class: c.class.as_str().to_owned(),
        protected: c.protected,
        locked_out: c.risk.locked_out,
        last_login: c.risk.last_login,
        password_changed: c.risk.password_changed,
        factors: c
            .factors
            .iter()
            .map(|f| FactorDto {
                id: f.info.id.as_str().to_owned(),
                kind: f.info.kind.as_str().to_owned(),
                assurance: f.assurance.to_owned(),
                accepted: f.accepted,
                refusal: f.refusal.map(|r| r.as_str().to_owned()),
            })
            .collect(),
        actions: c
            .actions
            .iter()
            .map(|a| ActionDto {
                action: a.kind.as_str().to_owned(),
                permitted_for_role: a.permitted_for_role,
                supported: a.supported,
                available_now: a.available_now,
                explanation: a.explanation.lines.clone(),
            })
            .collect(),
        grant: c.grant.as_ref().map(grant_dto),
        recommended_factor: c.recommended_factor.as_ref().map(|f| f.as_str().to_owned()),
    }
}

/// A verification.
#[derive(Serialize, ToSchema)]
pub struct VerificationDto {
    /// Id.
    pub id: String,
    /// `pending`, `challenged`, `verified`, `rejected`, `expired`, `failed`.
    pub status: String,
    /// Outstanding factor kind.
    pub factor: Option<String>,
    /// The number the caller must pick.
    pub number: Option<u16>,
    /// Outstanding challenge expiry.
    pub challenge_expires_at: Option<DateTime<Utc>>,
    /// Window end.
    pub expires_at: DateTime<Utc>,
    /// Distinct factors approved.
    pub approved: u8,
    /// Distinct factors required.
    pub required: u8,
    /// The grant, once verified.
    pub grant: Option<GrantDto>,
    /// Why it ended, if it failed.
    pub reason: Option<String>,
}

pub(crate) fn verification_dto(v: &VerificationView) -> VerificationDto {
    VerificationDto {
        id: v.id.to_string(),
        status: v.status.as_str().to_owned(),
        factor: v.factor.as_ref().map(|f| f.as_str().to_owned()),
        number: v.number,
        challenge_expires_at: v.challenge_expires_at,
        expires_at: v.expires_at,
        approved: v.approved,
        required: v.required,
        grant: v.grant.as_ref().map(grant_dto),
        reason: v.reason.map(|r| r.as_str().to_owned()),
    }
}

/// Which factor to challenge (policy's preferred one when absent).
#[derive(Deserialize, ToSchema, Default)]
pub struct FactorRequest {
    /// Factor id.
    #[serde(default)]
    pub factor_id: Option<String>,
}

/// A code the caller read out.
#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The digits.
    pub code: String,
}

/// A one-time secret, shown once.
#[derive(Serialize, ToSchema)]
pub struct SecretDto {
    /// `reset_link`, `temporary_password`, `temporary_access_pass`.
    pub kind: String,
    /// The secret. Never stored or logged by fctr; the response is `no-store`.
    pub value: String,
    /// Expiry, if the IdP says.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What an action returned.
#[derive(Serialize, ToSchema)]
pub struct ActionResult {
    /// The action that ran.
    pub action: String,
    /// A one-time secret, when the action produced one.
    pub secret: Option<SecretDto>,
    /// The IdP e-mailed the user instead.
    pub emailed: bool,
}
