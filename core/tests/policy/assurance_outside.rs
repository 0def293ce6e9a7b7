//! Policy: assurance, from the outside.

use super::*;

#[test]
fn verified_label_is_never_bare_aal2() {
    assert_eq!(
        assurance::verified_label(&[K::Push]),
        "AAL2-capable authenticator verified"
    );
    assert_eq!(
        assurance::verified_label(&[K::Totp, K::Push]),
        "AAL2-capable authenticator verified"
    );
    assert_ne!(assurance::verified_label(&[K::Sms]), "AAL2");
    assert!(!assurance::verified_label(&[K::Sms]).contains("AAL2"));
}
