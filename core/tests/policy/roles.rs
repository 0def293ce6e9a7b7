//! Policy: roles.

use super::*;

#[test]
fn role_for_groups_picks_the_largest_matching_role() {
    let p = parse(ROLES);
    let name = |g: &[&str]| p.role_for_groups(&strs(g)).map(|r| r.name().to_owned());
    assert_eq!(name(&["hd"]).as_deref(), Some("helpdesk"));
    assert_eq!(name(&["senior"]).as_deref(), Some("senior"));
    // Both helpdesk (2) and senior (3) match: the larger wins, whatever the order of groups.
    assert_eq!(name(&["hd", "senior"]).as_deref(), Some("senior"));
    assert_eq!(name(&["senior", "hd"]).as_deref(), Some("senior"));
    assert_eq!(name(&["shared"]).as_deref(), Some("senior"));
    // auditor (2) and twin (2) tie: the first in the file wins.
    assert_eq!(name(&["audit"]).as_deref(), Some("auditor"));
    // helpdesk and twin tie through "hd": first in file.
    assert_eq!(name(&["hd", "audit"]).as_deref(), Some("helpdesk"));
    // No match, empty, or a different case: no role.
    assert_eq!(name(&["nobody"]), None);
    assert_eq!(name(&[]), None);
    assert_eq!(name(&["HD"]), None);
    assert_eq!(name(&["hd "]), None);
}

#[test]
fn roles_replace_the_defaults() {
    let p = parse(ROLES);
    assert!(p.role("tier1").is_none());
    assert_eq!(p.roles().len(), 4);
    assert!(p.role_for_groups(&strs(&["fctr-tier3"])).is_none());
}

#[test]
fn default_roles_map_from_default_groups() {
    let p = Policy::default();
    let role = |g: &[&str]| p.role_for_groups(&strs(g)).map(|r| r.name().to_owned());
    assert_eq!(role(&["fctr-tier1"]).as_deref(), Some("tier1"));
    assert_eq!(
        role(&["fctr-tier1", "fctr-tier3", "fctr-tier2"]).as_deref(),
        Some("tier3")
    );
    assert_eq!(role(&["Fctr-Tier1"]), None);
}
