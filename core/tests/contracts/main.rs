//! Small contracts of the engine pinned by tests that mutation testing showed were missing
//! (`bash scripts/mutants.sh core`): every one of these fails if the line it names is changed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod audit_and_limits;
mod grants;
mod verifications;

use chrono::Duration;
use common::gate::GatedIdp;
use common::{World, ctx, fid, sid, world, world_with};
use fctr_core::Retention;
use fctr_core::policy::Policy;
use fctr_ports::{
    ActionKind, AuditDetail, ChallengeState, CodeVerdict, EventKind, FailureReason, Outcome, Pii,
    PortError, Reason, SecretString, UserQuery, VerificationStatus,
};
use std::sync::Arc;

fn gated() -> (World, Arc<GatedIdp>) {
    let mut slot = None;
    let w = common::world_wrapped(
        Policy::default(),
        |_| {},
        |ports| {
            let idp = Arc::new(GatedIdp::new(ports.idp.clone()));
            ports.idp = idp.clone();
            slot = Some(idp);
        },
    );
    (w, slot.unwrap())
}
