//! Policy: target classes and protected groups.

use super::*;

#[test]
fn classify_matches_id_or_name() {
    let p = Policy::default();
    assert_eq!(p.classify(&[]), TargetClass::Standard);
    assert_eq!(p.classify(&[group("00g1", "Staff")]), TargetClass::Standard);
    assert_eq!(
        p.classify(&[group("00g1", "Staff"), group("00g2", "fctr-privileged")]),
        TargetClass::Privileged
    );
    assert_eq!(
        p.classify(&[group("fctr-privileged", "Admins")]),
        TargetClass::Privileged
    );
    assert_eq!(
        p.classify(&[group("x", "FCTR-PRIVILEGED")]),
        TargetClass::Standard
    );
}

#[test]
fn protected_is_exact_and_case_sensitive() {
    let p = parse(
        "[protected]\ngroups = [\"Break Glass\", \"6e7b768e-07e2-4810-8459-485f84f8f204\"]\n",
    );
    assert!(p.is_protected(&[group("00g9", "Break Glass")]));
    assert!(p.is_protected(&[group("6e7b768e-07e2-4810-8459-485f84f8f204", "renamed")]));
    assert!(p.is_protected(&[group("a", "b"), group("c", "Break Glass")]));
    for near in [
        "break glass",
        "Break Glass ",
        "Break",
        "Break Glass Admins",
        "",
        "BREAK GLASS",
    ] {
        assert!(!p.is_protected(&[group("00g9", near)]), "{near:?}");
    }
    assert!(!p.is_protected(&[]));
    // The default protects fctr-protected.
    assert!(Policy::default().is_protected(&[group("g", "fctr-protected")]));
    assert!(!Policy::default().is_protected(&[group("g", "fctr-protected-x")]));
}
