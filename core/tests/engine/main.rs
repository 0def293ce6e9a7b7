//! Engine use cases over in-memory ports and a scripted IdP; failure cases over mockall mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod alarms;
mod audit_view;
mod boundaries;
mod card;
mod factors;
mod flows;
mod foureyes;
mod locked_out;
mod sign_in_link;

use chrono::Duration;
use common::{ctx, fid, sid, world, world_with};
use fctr_core::policy::Policy;
use fctr_ports::{
    Action, ActionKind, AgentId, ChallengeState, EventKind, FactorKind, Outcome, Reason,
    SecretString, UsageLedger as _, VerificationStatus,
};
use fctr_testkit::IdpMethod;
use std::sync::Arc;

fn reset() -> Action {
    Action::ResetPassword { send_email: false }
}
