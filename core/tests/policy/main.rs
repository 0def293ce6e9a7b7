//! Policy engine and assurance mapping: every rule of the policy, its errors and lints, and properties. One module
//! per part of the policy; the helpers are here.

use fctr_core::assurance;
use fctr_core::policy::{
    FactorRefusal, Permission, Policy, PolicyError, PushWithoutNumberMatching, TargetClass,
};
use fctr_ports::{
    ActionKind, Capabilities, FactorId, FactorInfo, FactorKind, FactorStatus, GroupRef, Reason,
};
use proptest::prelude::*;
use std::collections::BTreeSet;

const EXAMPLE: &str = include_str!("../../../examples/policy.toml");

mod alarms;
mod assurance_outside;
mod defaults;
mod errors;
mod explain;
mod factors;
mod foureyes;
mod properties;
mod roles;
mod targets;
mod warnings;

// ---------------------------------------------------------------------------------------------------------------
// helpers

fn okta() -> Capabilities {
    Capabilities {
        provider: "okta".into(),
        push: true,
        push_number_matching: true,
        code_verification: true,
        name_search: true,
        actions: ActionKind::ALL.into_iter().collect(),
    }
}

/// Entra through the MFA connector: plain approve/deny pushes.
fn entra() -> Capabilities {
    Capabilities {
        provider: "entra".into(),
        push_number_matching: false,
        actions: [
            ActionKind::ResetPassword,
            ActionKind::IssueTemporaryAccessPass,
        ]
        .into_iter()
        .collect(),
        ..okta()
    }
}

fn group(id: &str, name: &str) -> GroupRef {
    GroupRef {
        id: id.into(),
        name: name.into(),
    }
}

fn factor(id: &str, kind: FactorKind, status: FactorStatus) -> FactorInfo {
    FactorInfo {
        id: FactorId::parse(id).unwrap_or_else(|e| panic!("bad test factor id {id}: {e}")),
        kind,
        status,
        vendor: None,
        label: None,
    }
}

fn parse(text: &str) -> Policy {
    Policy::parse(text).unwrap_or_else(|e| panic!("policy should parse: {e}\n{text}"))
}

fn parse_err(text: &str) -> PolicyError {
    match Policy::parse(text) {
        Ok(_) => panic!("policy should be refused:\n{text}"),
        Err(e) => e,
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn codes(p: &Policy) -> BTreeSet<&'static str> {
    p.warnings().iter().map(|w| w.code).collect()
}

use FactorKind as K;

const PSTN: &str = r#"
[factors.default]
accepted = ["push", "totp", "sms", "voice"]
allow_restricted_pstn = true
"#;

const ROLES: &str = r#"
[[roles]]
name = "helpdesk"
groups = ["hd", "shared"]
permissions = ["lookup", "verify"]

[[roles]]
name = "senior"
groups = ["senior", "shared"]
permissions = ["lookup", "verify", "reset_password"]

[[roles]]
name = "auditor"
groups = ["audit"]
permissions = ["lookup", "view_audit"]

[[roles]]
name = "twin"
groups = ["audit", "hd"]
permissions = ["lookup", "verify"]
"#;
