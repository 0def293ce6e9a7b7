//! Policy: properties.

use super::*;

/// One edit to a text.
#[derive(Debug, Clone)]
enum Edit {
    InsertChar(usize, char),
    DeleteChar(usize),
    ReplaceChar(usize, char),
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    InsertLine(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        any::<char>(),
        prop::sample::select(vec![
            '[', ']', '"', '=', '\n', '#', ',', '0', '-', '\'', '.', ' ', '{', '}'
        ]),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
        any::<usize>().prop_map(Edit::DeleteChar),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::ReplaceChar(i, c)),
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just("email = 1".to_owned()),
                Just("accepted = [\"email\"]".to_owned()),
                Just("accepted = [\"sms\"]".to_owned()),
                Just("allow_restricted_pstn = true".to_owned()),
                Just("[factors.default]".to_owned()),
                Just("[[roles]]".to_owned()),
                Just("required = 3".to_owned()),
                ".{0,30}",
            ]
        )
            .prop_map(|(i, l)| Edit::InsertLine(i, l)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        match e {
            Edit::InsertChar(i, c) => {
                let i = i % (chars.len() + 1);
                chars.insert(i, *c);
            }
            Edit::DeleteChar(i) if !chars.is_empty() => {
                let i = i % chars.len();
                chars.remove(i);
            }
            Edit::ReplaceChar(i, c) if !chars.is_empty() => {
                let i = i % chars.len();
                chars[i] = *c;
            }
            Edit::DeleteLine(_)
            | Edit::DuplicateLine(_)
            | Edit::SwapLines(..)
            | Edit::InsertLine(..) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<String> = s.split('\n').map(str::to_owned).collect();
                let n = lines.len();
                match e {
                    Edit::DeleteLine(i) => {
                        lines.remove(i % n);
                    }
                    Edit::DuplicateLine(i) => {
                        let l = lines[i % n].clone();
                        lines.insert(i % n, l);
                    }
                    Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
                    Edit::InsertLine(i, l) => lines.insert(i % (n + 1), l.clone()),
                    _ => {}
                }
                chars = lines.join("\n").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// The checks every parse result must pass.
fn check_outcome(text: &str) -> Result<(), TestCaseError> {
    match Policy::parse(text) {
        Err(e) => {
            prop_assert!(e.line >= 1 && e.column >= 1, "{e:?}");
            let lines = text.lines().count().max(1);
            prop_assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
            let line_len = text
                .lines()
                .nth(e.line - 1)
                .map_or(0, |l| l.chars().count());
            prop_assert!(
                e.column <= line_len + 1,
                "column {} of {line_len}: {e}",
                e.column
            );
            prop_assert!(!e.message.is_empty());
            let prefix = format!("line {}, column {}: ", e.line, e.column);
            prop_assert!(e.to_string().starts_with(&prefix));
        }
        Ok(p) => {
            for class in [TargetClass::Standard, TargetClass::Privileged] {
                let rule = p.factor_rule(class);
                prop_assert!(!rule.accepted().is_empty());
                prop_assert!((1..=3).contains(&rule.required()));
                prop_assert!(usize::from(rule.required()) <= rule.accepted().len());
                for k in rule.accepted() {
                    prop_assert!(
                        matches!(
                            k,
                            K::Push | K::Totp | K::Hotp | K::HardwareOtp | K::Sms | K::Voice
                        ),
                        "accepted {k}"
                    );
                    if matches!(k, K::Sms | K::Voice) {
                        prop_assert!(rule.allows_restricted_pstn());
                    }
                }
                prop_assert!(!rule.accepts(&K::Email));
                prop_assert!(!rule.accepts(&K::SecurityQuestion));
            }
            let w = p.verification_window().num_minutes();
            prop_assert!((1..=60).contains(&w));
            let g = p.grant_lifetime().num_minutes();
            prop_assert!((1..=60).contains(&g));
            let l = p.limits();
            prop_assert!(l.challenges_per_target_per_hour >= 1);
            prop_assert!(l.challenges_per_agent_per_hour >= 1);
            prop_assert!(l.wrong_codes_before_lockout >= 1);
            prop_assert!(l.lockout_minutes >= 1);
            prop_assert!(l.lookups_per_agent_per_hour >= 1);
            prop_assert!((10..=480).contains(&p.temporary_access_pass().lifetime_minutes));
            let mut names = BTreeSet::new();
            for r in p.roles() {
                prop_assert!(
                    names.insert(r.name().to_owned()),
                    "duplicate role {}",
                    r.name()
                );
            }
        }
    }
    Ok(())
}

fn any_kind() -> impl Strategy<Value = FactorKind> {
    prop_oneof![
        prop::sample::select(FactorKind::ALL.to_vec()),
        Just(K::Other("u2f".into())),
    ]
}

fn any_caps() -> impl Strategy<Value = Capabilities> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(push, nm, codes)| Capabilities {
        push,
        push_number_matching: nm,
        code_verification: codes,
        ..okta()
    })
}

/// A valid policy with random accepted lists and switches.
fn any_policy() -> impl Strategy<Value = Policy> {
    let listable = vec!["push", "totp", "hotp", "hardware_otp", "sms", "voice"];
    (
        prop::sample::subsequence(listable.clone(), 1..=6).prop_shuffle(),
        prop::sample::subsequence(listable, 1..=6).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
        1u8..=3,
    )
        .prop_map(|(std, pri, no_downgrade, refuse, req)| {
            let list = |v: &[&str]| {
                v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
            };
            let req = usize::from(req).min(pri.len());
            let text = format!(
                "[verification]\nno_downgrade = {no_downgrade}\npush_without_number_matching = \"{}\"\n\
                 [factors.default]\nallow_restricted_pstn = true\naccepted = [{}]\n\
                 [factors.privileged]\nallow_restricted_pstn = true\naccepted = [{}]\nrequired = {req}\n",
                if refuse { "refuse" } else { "require_another_factor" },
                list(&std),
                list(&pri),
            );
            parse(&text)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "(?s).{0,400}") {
        check_outcome(&text)?;
    }

    #[test]
    fn parse_never_panics_on_toml_like_text(
        text in r"(\[{1,2}[a-z_.]{0,20}\]{0,2}\n|[a-z_]{1,20} ?= ?(\d{1,12}|-\d{1,3}|true|false|\[\]|\[?\x22[a-z_ ]{0,12}\x22\]?)\n|#.{0,10}\n){0,12}"
    ) {
        check_outcome(&text)?;
    }

    #[test]
    fn parse_never_panics_on_mutated_example(edits in prop::collection::vec(edit(), 1..8)) {
        let text = apply(EXAMPLE, &edits);
        check_outcome(&text)?;
    }

    #[test]
    fn check_factor_only_accepts_listed_kinds(
        policy in any_policy(),
        class in prop_oneof![Just(TargetClass::Standard), Just(TargetClass::Privileged)],
        chosen in any_kind(),
        enrolled in prop::collection::vec(any_kind(), 0..6),
        caps in any_caps(),
    ) {
        let rule = policy.factor_rule(class);
        match policy.check_factor(class, &chosen, &enrolled, &caps) {
            Ok(()) => {
                prop_assert!(rule.accepts(&chosen));
                prop_assert!(!matches!(chosen, K::Email | K::SecurityQuestion));
                if policy.no_downgrade() {
                    // Nothing enrolled, accepted and challengeable is stronger.
                    let mine = assurance::strength(&chosen, caps.push_number_matching);
                    for k in &enrolled {
                        let usable = rule.accepts(k)
                            && policy.check_factor(class, k, &[], &caps).is_ok();
                        if usable {
                            prop_assert!(assurance::strength(k, caps.push_number_matching) <= mine);
                        }
                    }
                }
            }
            Err(FactorRefusal::Downgrade { stronger }) => {
                prop_assert!(policy.no_downgrade());
                prop_assert!(rule.accepts(&stronger));
                prop_assert!(enrolled.contains(&stronger));
                prop_assert!(
                    assurance::strength(&stronger, caps.push_number_matching)
                        > assurance::strength(&chosen, caps.push_number_matching)
                );
            }
            Err(_) => {}
        }
        // The preferred factor, if any, is one check_factor accepts.
        let infos: Vec<FactorInfo> = enrolled
            .iter()
            .enumerate()
            .map(|(i, k)| factor(&format!("f{i}"), k.clone(), FactorStatus::Active))
            .collect();
        if let Some(f) = policy.preferred_factor(class, &infos, &caps) {
            prop_assert!(policy.check_factor(class, &f.kind, &enrolled, &caps).is_ok());
        }
        // Still-needed never exceeds what is required (or 2, for a plain push) and reaches 0 only with
        // enough distinct accepted kinds.
        let needed = policy.factors_still_needed(class, &caps, &enrolled);
        prop_assert!(needed <= rule.required().max(2));
        if needed == 0 {
            let distinct: BTreeSet<&FactorKind> = enrolled.iter().filter(|k| rule.accepts(k)).collect();
            prop_assert!(distinct.len() >= usize::from(rule.required()));
        }
    }

    #[test]
    fn protected_detection_is_exact(
        protected in prop::collection::btree_set("[A-Za-z0-9 _-]{1,8}", 0..4),
        target in prop::collection::vec(("[A-Za-z0-9 _-]{0,8}", "[A-Za-z0-9 _-]{0,8}"), 0..5),
    ) {
        let protected: Vec<String> = protected
            .into_iter()
            .filter(|g| g.trim() == g && !g.trim().is_empty())
            .collect();
        let list = protected.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join(", ");
        let policy = parse(&format!("[protected]\ngroups = [{list}]\n"));
        let groups: Vec<GroupRef> = target.iter().map(|(id, name)| group(id, name)).collect();
        let expected = groups
            .iter()
            .any(|g| protected.contains(&g.id) || protected.contains(&g.name));
        prop_assert_eq!(policy.is_protected(&groups), expected);
        // Changing the case of a protected name (when that changes it) never matches by itself.
        for p in &protected {
            let flipped: String = p
                .chars()
                .map(|c| if c.is_ascii_lowercase() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            if !protected.contains(&flipped) {
                prop_assert!(!policy.is_protected(&[group("", &flipped)]));
            }
        }
    }
}

#[test]
fn docs_explanation_example_is_what_explain_says() {
    let docs = include_str!("../../../docs/policy.md");
    let p = Policy::default();
    let e = p.explain(
        p.role("tier2"),
        ActionKind::ResetPassword,
        TargetClass::Standard,
        false,
        None,
    );
    let block = e.lines.join("\n");
    assert!(docs.contains(&block), "docs/policy.md lacks:\n{block}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for n in [1_000, 100_000] {
        let text = format!("a = {}{}\n", "[".repeat(n), "]".repeat(n));
        assert!(Policy::parse(&text).is_err());
        let text = format!("a = {}1{}\n", "{ b = ".repeat(n), " }".repeat(n));
        assert!(Policy::parse(&text).is_err());
        let text = format!("{}\n", "[".repeat(n));
        assert!(Policy::parse(&text).is_err());
    }
}

/// Regression (found by `parse_never_panics_on_mutated_example`): a stray quote before a CRLF line end must be
/// reported at a column the line really has.
#[test]
fn error_column_ignores_the_carriage_return_of_crlf() {
    let e = Policy::parse("'\r\n[verification]\n").expect_err("a stray quote is an error");
    assert_eq!(e.line, 1);
    assert!(e.column <= 2, "{e}");
}

/// `can_complete`: whether any challenge could lead to a grant for a caller with these factors.
#[test]
fn can_complete_needs_enough_distinct_usable_kinds() {
    let p = Policy::default();
    let std = TargetClass::Standard;
    // Okta's number-matched push verifies alone.
    assert!(p.can_complete(std, &okta(), &[], &[FactorKind::Push]));
    // A plain push needs a second, different factor under the default `require_another_factor`.
    assert!(!p.can_complete(std, &entra(), &[], &[FactorKind::Push]));
    assert!(!p.can_complete(std, &entra(), &[FactorKind::Push], &[]));
    assert!(p.can_complete(std, &entra(), &[], &[FactorKind::Push, FactorKind::Totp]));
    assert!(p.can_complete(std, &entra(), &[FactorKind::Push], &[FactorKind::Totp]));
    // Kinds policy does not accept for helpdesk verification never help.
    assert!(!p.can_complete(std, &entra(), &[], &[FactorKind::Push, FactorKind::Sms]));
    assert!(!p.can_complete(std, &okta(), &[], &[]));
    // Under "refuse", a plain push counts for nothing, even with TOTP beside it for a one-factor class.
    let text = EXAMPLE.replace(
        "push_without_number_matching = \"require_another_factor\"",
        "push_without_number_matching = \"refuse\"",
    );
    let refuse = Policy::parse(&text).unwrap();
    assert!(!refuse.can_complete(std, &entra(), &[], &[FactorKind::Push]));
    assert!(refuse.can_complete(std, &entra(), &[], &[FactorKind::Push, FactorKind::Totp]));
}

/// Each accepted kind is named in words an agent reads, restricted phone channels marked as such.
#[test]
fn explain_names_every_accepted_kind_in_words() {
    let p = parse(
        "[factors.default]\naccepted = [\"totp\", \"hotp\", \"hardware_otp\", \"sms\", \"voice\"]\nallow_restricted_pstn = true\n",
    );
    let e = p.explain(
        p.role("tier2"),
        ActionKind::Unlock,
        TargetClass::Standard,
        false,
        Some(&okta()),
    );
    let text = e.lines.join("\n");
    for words in [
        "a verified TOTP code",
        "an HOTP code",
        "a hardware token code",
        "an SMS code (restricted)",
        "a voice-call code (restricted)",
    ] {
        assert!(text.contains(words), "{words} missing from {text}");
    }
}

/// "Policy refuses them" is said exactly when pushes carry no number and policy refuses such pushes.
#[test]
fn explain_says_plain_pushes_are_refused_only_when_they_are() {
    let refuse = parse("[verification]\npush_without_number_matching = \"refuse\"\n");
    let plain = Capabilities {
        push_number_matching: false,
        ..okta()
    };
    let says = |p: &Policy, caps: &Capabilities| {
        p.explain(
            p.role("tier2"),
            ActionKind::Unlock,
            TargetClass::Standard,
            false,
            Some(caps),
        )
        .lines
        .iter()
        .any(|l| l.contains("policy refuses them"))
    };
    assert!(says(&refuse, &plain));
    assert!(!says(&refuse, &okta()), "pushes carry a number");
    assert!(
        !says(&Policy::default(), &plain),
        "policy does not refuse them"
    );
    let no_push = parse(
        "[verification]\npush_without_number_matching = \"refuse\"\n[factors.default]\naccepted = [\"totp\"]\n",
    );
    assert!(
        !says(&no_push, &plain),
        "policy does not accept pushes at all"
    );
}

/// Privileged targets needing as many factors as standard ones is fine; fewer is a warning.
#[test]
fn privileged_weaker_than_standard_only_when_fewer() {
    let same = parse("[factors.default]\nrequired = 2\n[factors.privileged]\nrequired = 2\n");
    assert!(!codes(&same).contains(&"privileged_weaker_than_standard"));
    let fewer = parse("[factors.default]\nrequired = 2\n[factors.privileged]\nrequired = 1\n");
    assert!(codes(&fewer).contains(&"privileged_weaker_than_standard"));
}
