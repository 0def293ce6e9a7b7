//! Stable machine names and their `Display`/`Debug` forms.

use fctr_ports::{
    AccountStatus, ActionKind, BreakKind, ChainHash, ChallengeHandle, ChallengeState, CodeVerdict,
    FactorId, FactorKind, FailureReason, PseudoId, RateDecision, RateKey, Reason, RequestId,
    TenantId, UsageKind, VerificationStatus,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// The texts are all different and none is empty (a function that returns one constant fails).
fn distinct(what: &str, texts: &[&str]) {
    let set: BTreeSet<&str> = texts.iter().copied().collect();
    assert_eq!(
        set.len(),
        texts.len(),
        "{what}: two share a text: {texts:?}"
    );
    assert!(texts.iter().all(|t| !t.is_empty()), "{what}: an empty text");
}

#[test]
fn action_kinds_have_their_own_words_and_print_their_machine_name() {
    let words: Vec<&str> = ActionKind::ALL.iter().map(ActionKind::describe).collect();
    distinct("ActionKind::describe", &words);
    assert_eq!(ActionKind::Unlock.describe(), "unlock the account");
    for k in ActionKind::ALL {
        assert_eq!(k.to_string(), k.as_str());
    }
    assert_eq!(ActionKind::ResetPassword.to_string(), "reset_password");
}

#[test]
fn reasons_print_their_machine_name() {
    for r in Reason::ALL {
        assert_eq!(r.to_string(), r.as_str());
    }
    assert!(!Reason::ALL[0].to_string().is_empty());
}

#[test]
fn chain_hashes_print_as_lowercase_hex() {
    let zero = "0".repeat(64);
    assert_eq!(ChainHash::GENESIS.to_hex(), zero);
    assert_eq!(ChainHash::GENESIS.to_string(), zero);
    assert_eq!(
        format!("{:?}", ChainHash::GENESIS),
        format!("ChainHash({zero})")
    );
    let h = ChainHash([0xab; 32]);
    assert_eq!(h.to_hex(), "ab".repeat(32));
    assert_eq!(ChainHash::from_hex(&h.to_hex()).unwrap(), h);
}

#[test]
fn chain_breaks_are_described_each_in_their_own_words() {
    let kinds = [
        BreakKind::Edited,
        BreakKind::Unlinked,
        BreakKind::SequenceGap,
        BreakKind::Truncated,
    ];
    let words: Vec<&str> = kinds.iter().map(BreakKind::describe).collect();
    distinct("BreakKind::describe", &words);
    assert!(BreakKind::Truncated.describe().contains("truncated"));
}

#[test]
fn a_challenge_handle_is_readable_by_its_adapter_and_redacted_in_debug() {
    let raw = "h".repeat(40);
    let handle = ChallengeHandle::new(raw.clone());
    assert_eq!(handle.as_str(), raw);
    let shown = format!("{handle:?}");
    assert_eq!(shown, "ChallengeHandle([redacted])");
    assert!(!shown.contains(&raw));
}

#[test]
fn challenge_and_verification_states_know_when_they_are_final() {
    assert!(!ChallengeState::Waiting.is_final());
    for s in [
        ChallengeState::Approved,
        ChallengeState::Rejected,
        ChallengeState::TimedOut,
        ChallengeState::Failed(FailureReason::IdpError),
    ] {
        assert!(s.is_final(), "{s:?}");
    }
    for s in [VerificationStatus::Pending, VerificationStatus::Challenged] {
        assert!(!s.is_final(), "{s:?}");
    }
    let ended = [
        VerificationStatus::Verified,
        VerificationStatus::Rejected,
        VerificationStatus::Expired,
        VerificationStatus::Failed,
    ];
    for s in ended {
        assert!(s.is_final(), "{s:?}");
    }
    let names: Vec<&str> = [VerificationStatus::Pending, VerificationStatus::Challenged]
        .iter()
        .chain(ended.iter())
        .map(VerificationStatus::as_str)
        .collect();
    distinct("VerificationStatus::as_str", &names);
    assert_eq!(VerificationStatus::Challenged.as_str(), "challenged");
}

#[test]
fn failure_reasons_verdicts_and_usage_kinds_have_stable_names() {
    let failures = [
        FailureReason::IdpError,
        FailureReason::UnknownResult,
        FailureReason::Cancelled,
        FailureReason::FactorInactive,
    ];
    distinct(
        "FailureReason::as_str",
        &failures
            .iter()
            .map(FailureReason::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(FailureReason::FactorInactive.as_str(), "factor_inactive");
    let verdicts = [
        CodeVerdict::Accepted,
        CodeVerdict::Wrong,
        CodeVerdict::Replayed,
        CodeVerdict::OutsideWindow,
        CodeVerdict::Locked,
    ];
    distinct(
        "CodeVerdict::as_str",
        &verdicts.iter().map(CodeVerdict::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(CodeVerdict::OutsideWindow.as_str(), "outside_window");
    assert_eq!(UsageKind::Verification.as_str(), "verification");
    assert_eq!(UsageKind::Action.as_str(), "action");
}

#[test]
fn factor_kinds_and_account_statuses_print_their_names() {
    for k in FactorKind::ALL {
        assert_eq!(k.to_string(), k.as_str());
    }
    assert_eq!(FactorKind::Push.to_string(), "push");
    let statuses = [
        AccountStatus::Active,
        AccountStatus::Staged,
        AccountStatus::Provisioned,
        AccountStatus::Recovery,
        AccountStatus::PasswordExpired,
        AccountStatus::LockedOut,
        AccountStatus::Suspended,
        AccountStatus::Deprovisioned,
        AccountStatus::Disabled,
        AccountStatus::Other("pending_review".to_owned()),
    ];
    let names: Vec<&str> = statuses.iter().map(AccountStatus::as_str).collect();
    distinct("AccountStatus::as_str", &names);
    assert_eq!(AccountStatus::LockedOut.as_str(), "locked_out");
    assert_eq!(
        AccountStatus::Other("pending_review".to_owned()).to_string(),
        "pending_review"
    );
}

#[test]
fn identifiers_print_as_given() {
    assert_eq!(FactorId::parse("opf1x").unwrap().to_string(), "opf1x");
    assert_eq!(
        TenantId::parse("acme-prod").unwrap().to_string(),
        "acme-prod"
    );
    assert_eq!(RequestId::parse("req-42").unwrap().to_string(), "req-42");
    let key = fctr_ports::KeyId::parse("k1").unwrap();
    assert_eq!(key.to_string(), "k1");
    assert_eq!(String::from(key), "k1");
    let p = PseudoId::from_mac(&fctr_ports::KeyId::parse("k2").unwrap(), &[7u8; 16]).unwrap();
    assert_eq!(p.to_string(), p.as_str());
    assert!(p.to_string().starts_with("k2:"));
    assert_eq!(format!("{p:?}"), format!("PseudoId({})", p.as_str()));
}

#[test]
fn rate_keys_and_decisions() {
    let k = RateKey::parse("challenges:target:abc").unwrap();
    assert_eq!(k.as_str(), "challenges:target:abc");
    assert_eq!(format!("{k:?}"), "RateKey(challenges:target:abc)");
    assert_eq!(String::from(k), "challenges:target:abc");
    assert!(RateDecision::Allowed { remaining: 0 }.is_allowed());
    assert!(
        !RateDecision::Limited {
            retry_after: Duration::from_secs(1)
        }
        .is_allowed()
    );
}
