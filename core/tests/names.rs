//! The machine names the API, the audit log and the policy file use are stable and agree with their serde form.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fctr_core::assurance::AssuranceClass;
use fctr_core::policy::{Permission, TargetClass};
use fctr_ports::ActionKind;

#[test]
fn target_classes_name_themselves_as_they_serialize() {
    for (c, name) in [
        (TargetClass::Standard, "standard"),
        (TargetClass::Privileged, "privileged"),
    ] {
        assert_eq!(c.as_str(), name);
        assert_eq!(c.to_string(), name);
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{name}\""));
    }
}

#[test]
fn permissions_round_trip_through_their_policy_names() {
    let mut all = vec![
        Permission::Lookup,
        Permission::Verify,
        Permission::ViewAudit,
    ];
    all.extend(ActionKind::ALL.into_iter().map(Permission::Act));
    for p in all {
        assert_eq!(Permission::parse(p.as_str()), Some(p));
        assert_eq!(p.to_string(), p.as_str());
    }
    assert_eq!(Permission::Lookup.as_str(), "lookup");
    assert_eq!(Permission::parse("nonsense"), None);
}

#[test]
fn assurance_classes_name_themselves_as_they_serialize() {
    let names: Vec<&str> = AssuranceClass::ALL
        .iter()
        .map(AssuranceClass::as_str)
        .collect();
    assert!(names.contains(&"out_of_band_device"), "{names:?}");
    for c in AssuranceClass::ALL {
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            format!("\"{}\"", c.as_str())
        );
    }
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn push_without_number_matching_modes_parse_back_from_their_names() {
    use fctr_core::policy::{Policy, PushWithoutNumberMatching as Mode};
    for mode in [Mode::RequireAnotherFactor, Mode::Refuse] {
        let text = format!(
            "version = 1\n[verification]\npush_without_number_matching = \"{}\"\n",
            mode.as_str()
        );
        assert_eq!(
            Policy::parse(&text).unwrap().push_without_number_matching(),
            mode
        );
        assert_eq!(
            serde_json::to_string(&mode).unwrap(),
            format!("\"{}\"", mode.as_str())
        );
    }
}
