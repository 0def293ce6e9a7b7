//! The API's wire types (request and response bodies, with their OpenAPI schemas) and their conversions from
//! the engine's views.

use chrono::{DateTime, Utc};
use fctr_core::policy::Explanation;
use fctr_core::{CallerCard, GrantView, VerificationView};
use fctr_ports::{ActionKind, FactorKind, VerificationStatus};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// The characters of an IdP user id or factor id (`fctr_ports::SubjectId`, `FactorId`: URL-path safe, at most
/// 128), with at least one that is not a dot (a path segment `.` or `..` would be folded away by URL
/// normalisation before it reached the server).
pub const ID_PATTERN: &str = "^[A-Za-z0-9._~:@+=-]*[A-Za-z0-9_~:@+=-][A-Za-z0-9._~:@+=-]*$";
/// The longest IdP user id or factor id.
pub const ID_MAX: usize = 128;

fn id_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(ID_MAX))
        .pattern(Some(ID_PATTERN))
}

/// Schema of the `{id}` of `/users/{id}`: an IdP user id (`fctr_ports::SubjectId`).
pub struct UserId;
impl PartialSchema for UserId {
    fn schema() -> RefOr<Schema> {
        id_schema("An IdP user id (Okta `00u…`, an Entra object id), as search results give it.")
            .into()
    }
}
impl ToSchema for UserId {}

/// Schema of the `{id}` of `/verifications/{id}`: a UUID the API returned.
pub struct VerificationIdParam;
impl PartialSchema for VerificationIdParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uuid".to_owned())))
            .pattern(Some(
                "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            ))
            .description(Some(
                "A verification id, as `POST /users/{id}/verifications` returned it.",
            ))
            .into()
    }
}
impl ToSchema for VerificationIdParam {}

/// Schema of the `{id}` of `/approvals/{id}`: a UUID the API returned (an approval request's id).
pub struct ApprovalIdParam;
impl PartialSchema for ApprovalIdParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uuid".to_owned())))
            .pattern(Some(
                "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            ))
            .description(Some(
                "An approval request id, as an action answered `pending_approval` or `GET /approvals` lists it.",
            ))
            .into()
    }
}
impl ToSchema for ApprovalIdParam {}

/// Schema of an action name: one of `fctr_ports::ActionKind::ALL`, so it cannot drift from the engine.
pub struct ActionName;
impl PartialSchema for ActionName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ActionKind::ALL.iter().map(ActionKind::as_str)))
            .description(Some("A high-risk action."))
            .into()
    }
}
impl ToSchema for ActionName {}

/// Schema of the `since` of `GET /audit/out-of-band`: the windows offered (`crate::input::WINDOWS`).
pub struct OutOfBandWindow;
impl PartialSchema for OutOfBandWindow {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(crate::input::WINDOWS.iter().map(|w| w.0)))
            .default(Some(serde_json::Value::from(crate::input::DEFAULT_WINDOW)))
            .description(Some(
                "How far back to read: the last hour to the last 7 days.",
            ))
            .into()
    }
}
impl ToSchema for OutOfBandWindow {}

/// Schema of the `{action}` of `POST /users/{id}/actions/{action}`: every action but `remove_factor`, which has
/// its own operation (it needs a body naming the factor).
pub struct ActionPathName;
impl PartialSchema for ActionPathName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                ActionKind::ALL
                    .iter()
                    .filter(|k| **k != ActionKind::RemoveFactor)
                    .map(ActionKind::as_str),
            ))
            .description(Some(
                "A high-risk action (`remove_factor` has an operation of its own).",
            ))
            .into()
    }
}
impl ToSchema for ActionPathName {}

/// Schema of a factor kind: one of `fctr_ports::FactorKind::ALL`, or another short lowercase name an IdP reports
/// (`FactorKind::Other`, passed through).
pub struct FactorKindName;
impl PartialSchema for FactorKindName {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(FactorKind::ALL.iter().map(|k| k.as_str().to_owned()))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[a-z0-9_:.-]{1,64}$"))
                    .description(Some("another kind the IdP reports, passed through")),
            )
            .description(Some(
                "A factor kind: a named one, or another the IdP reports.",
            ))
            .into()
    }
}
impl ToSchema for FactorKindName {}

/// Schema of a verification's status (`fctr_ports::VerificationStatus`).
pub struct VerificationStatusName;
impl PartialSchema for VerificationStatusName {
    fn schema() -> RefOr<Schema> {
        use VerificationStatus as V;
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(
                [
                    V::Pending,
                    V::Challenged,
                    V::Verified,
                    V::Rejected,
                    V::Expired,
                    V::Failed,
                ]
                .iter()
                .map(VerificationStatus::as_str),
            ))
            .into()
    }
}
impl ToSchema for VerificationStatusName {}

/// A search.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Login, e-mail or name prefix (a body field, so it never lands in a URL or access log). Surrounding white
    /// space is trimmed; what is left must not be empty, longer than 100 characters, or hold a control character.
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        min_length = 1,
        max_length = 100
    )]
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
    #[schema(value_type = FactorKindName)]
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
    #[schema(value_type = ActionName)]
    pub action: String,
    /// The role allows it.
    pub permitted_for_role: bool,
    /// The IdP can do it.
    pub supported: bool,
    /// A live grant covers it now.
    pub available_now: bool,
    /// What policy requires, one sentence per line.
    #[schema(value_type = Vec<String>)]
    #[serde(serialize_with = "explanation_lines")]
    pub explanation: Arc<Explanation>,
}

/// An action's explanation as its lines: shared with the engine's (composed once per role and class), not copied.
fn explanation_lines<S: serde::Serializer>(e: &Arc<Explanation>, s: S) -> Result<S::Ok, S::Error> {
    e.lines.serialize(s)
}

/// A live grant.
#[derive(Serialize, ToSchema)]
pub struct GrantDto {
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// One action consumes it.
    pub single_use: bool,
    /// Actions covered.
    #[schema(value_type = Vec<ActionName>)]
    pub actions: Vec<String>,
    /// Factor kinds verified.
    #[schema(value_type = Vec<FactorKindName>)]
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
    #[schema(pattern = "^(standard|privileged)$")]
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
    /// The id of the factor policy would challenge first.
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
                explanation: Arc::clone(&a.explanation),
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
    #[schema(value_type = VerificationIdParam)]
    pub id: String,
    /// `pending`, `challenged`, `verified`, `rejected`, `expired`, `failed`.
    #[schema(value_type = VerificationStatusName)]
    pub status: String,
    /// Outstanding factor kind.
    #[schema(value_type = Option<FactorKindName>)]
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
    /// Why it ended, if it failed (`sign_in_other_user`: someone else signed in through the caller's link).
    pub reason: Option<String>,
    /// With an `idp_sign_in` challenge outstanding: the caller's one-time link.
    pub sign_in_link: Option<SignInLinkDto>,
}

/// The one-time sign-in link of an outstanding `idp_sign_in` challenge.
#[derive(Serialize, ToSchema)]
pub struct SignInLinkDto {
    /// The path to give the caller, under the portal's public URL (`/link/…`); null once the caller opened it.
    pub path: Option<String>,
    /// The caller opened it and is signing in.
    pub opened: bool,
    /// The caller's sign-in was accepted (the next poll verifies).
    pub signed_in: bool,
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
        sign_in_link: v.link.as_ref().map(|l| SignInLinkDto {
            path: l.token.as_ref().map(|t| format!("/link/{t}")),
            opened: l.opened,
            signed_in: l.signed_in,
        }),
    }
}

/// Which factor to challenge (policy's preferred one when absent, null or empty). The whole body is optional.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FactorRequest {
    /// Factor id, from the caller card's `factors[].id`.
    #[serde(default)]
    #[schema(
        pattern = "^$|^[A-Za-z0-9._~:@+=-]*[A-Za-z0-9_~:@+=-][A-Za-z0-9._~:@+=-]*$",
        max_length = 128
    )]
    pub factor_id: Option<String>,
}

/// The factor `remove_factor` removes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveFactorRequest {
    /// Factor id, from the caller card's `factors[].id`.
    #[schema(
        pattern = "^[A-Za-z0-9._~:@+=-]*[A-Za-z0-9_~:@+=-][A-Za-z0-9._~:@+=-]*$",
        min_length = 1,
        max_length = 128
    )]
    pub factor_id: String,
}

/// A code the caller read out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The digits: 6 to 8, spaces between them allowed, at most 32 characters.
    #[schema(pattern = "^ *([0-9] *){6,8}$", max_length = 32)]
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
    #[schema(value_type = ActionName)]
    pub action: String,
    /// A one-time secret, when the action produced one.
    pub secret: Option<SecretDto>,
    /// The IdP e-mailed the user instead.
    pub emailed: bool,
}

/// An action that waits for a second agent's approval (four-eyes): nothing ran yet. Once an approver approves the
/// request, the same agent sends the same action again to run it.
#[derive(Serialize, ToSchema)]
pub struct ApprovalPending {
    /// Always `pending_approval`.
    pub status: String,
    /// The approval request's id.
    #[schema(value_type = ApprovalIdParam)]
    pub approval_id: String,
    /// What happens now, in words.
    pub message: String,
}

/// A pending approval request, as an approver reviews it.
#[derive(Serialize, ToSchema)]
pub struct ApprovalDto {
    /// Its id.
    #[schema(value_type = ApprovalIdParam)]
    pub id: String,
    /// The action asked for.
    #[schema(value_type = ActionName)]
    pub action: String,
    /// The caller's class: `standard` or `privileged`.
    pub target_class: String,
    /// The factor kinds that verified the caller.
    #[schema(value_type = Vec<FactorKindName>)]
    pub factors: Vec<String>,
    /// When the caller was verified.
    pub verified_at: DateTime<Utc>,
    /// The requesting agent's display name, as the IdP gave it (may be empty).
    pub requested_by: String,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the request lapses.
    pub expires_at: DateTime<Utc>,
    /// The caller's display name, read from the IdP now.
    pub caller_display_name: Option<String>,
}

/// A decision taken.
#[derive(Serialize, ToSchema)]
pub struct ApprovalDecisionDto {
    /// The request.
    #[schema(value_type = ApprovalIdParam)]
    pub id: String,
    /// `approved` or `refused`.
    pub decision: String,
    /// The action it was about.
    #[schema(value_type = ActionName)]
    pub action: String,
}

pub(crate) fn approval_dto(v: &fctr_core::ApprovalView) -> ApprovalDto {
    ApprovalDto {
        id: v.id.to_string(),
        action: v.action.as_str().to_owned(),
        target_class: v.class.as_str().to_owned(),
        factors: v.factors.iter().map(|f| f.as_str().to_owned()).collect(),
        verified_at: v.verified_at,
        requested_by: v.requested_by.clone(),
        requested_at: v.requested_at,
        expires_at: v.expires_at,
        caller_display_name: v.caller.as_ref().map(|p| p.expose_pii().to_owned()),
    }
}

/// The changes the IdP's own log records that fctr's audit does not account for
/// (`GET /api/v1/audit/out-of-band`). Pseudonymous, like the audit log: no IdP user id and no admin login.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutOfBandReport {
    /// Start of the window read (inclusive).
    pub since: DateTime<Utc>,
    /// End of the window read (exclusive): the server's now.
    pub until: DateTime<Utc>,
    /// How far apart the IdP's time and fctr's audit time may be for a change to count as fctr's.
    pub tolerance_secs: i64,
    /// Oldest first.
    pub findings: Vec<OutOfBandFinding>,
}

/// One change made outside fctr.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutOfBandFinding {
    /// `outside_gate` (someone other than fctr) or `own_credential` (fctr's own service app, yet not in fctr's
    /// audit: an incident).
    pub severity: String,
    /// The change, as an fctr action name (`reset_password`, `reset_factors`, `unlock`, `clear_sessions`, …).
    pub action: String,
    /// When the IdP recorded it.
    pub at: DateTime<Utc>,
    /// The person it was done to: their keyed pseudonym, as the audit log holds it.
    pub target: String,
    /// `admin` (a person), `app` (an application) or `unknown`.
    pub actor_kind: String,
    /// The admin's keyed pseudonym, when a person made the change.
    pub actor_pseudonym: Option<String>,
    /// The application's client id, when an application made the change.
    pub actor_client_id: Option<String>,
    /// The IdP's log entry id, to find the entry in the IdP's console.
    pub idp_event_id: String,
}

impl From<&fctr_core::out_of_band::Finding> for OutOfBandFinding {
    fn from(f: &fctr_core::out_of_band::Finding) -> Self {
        use fctr_ports::ChangeActor;
        let (actor_kind, actor_client_id) = match &f.actor {
            ChangeActor::Admin { .. } => ("admin", None),
            ChangeActor::App { client_id } => ("app", Some(client_id.clone())),
            _ => ("unknown", None),
        };
        Self {
            severity: f.severity.as_str().to_owned(),
            action: f.kind.as_str().to_owned(),
            at: f.at,
            target: f.target.as_str().to_owned(),
            actor_kind: actor_kind.to_owned(),
            actor_pseudonym: f.actor_pseudonym.as_ref().map(|p| p.as_str().to_owned()),
            actor_client_id,
            idp_event_id: f.event_id.clone(),
        }
    }
}
