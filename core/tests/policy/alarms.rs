//! Policy: `[alarms]` ("not me" response and velocity rules).

use super::*;
use fctr_core::policy::{AlarmPolicy, NotMePolicy, VelocityRule};

#[test]
fn defaults_are_the_documented_values() {
    let a = *Policy::default().alarms();
    assert_eq!(
        a.not_me,
        NotMePolicy {
            on_push_denied: true,
            clear_sessions: true,
            alert: true,
            block_actions_seconds: 1800
        }
    );
    let rule = |count, window_seconds| {
        Some(VelocityRule {
            count,
            window_seconds,
        })
    };
    assert_eq!(a.velocity.distinct_agents_per_caller, rule(3, 3600));
    assert_eq!(a.velocity.lookups_per_agent, rule(100, 900));
    assert_eq!(a.velocity.failures_per_caller, rule(3, 3600));
    assert_eq!(a.velocity.failures_per_agent, rule(10, 3600));
    assert_eq!(a, AlarmPolicy::default());
    // The example file spells out the same values.
    assert_eq!(*Policy::parse(EXAMPLE).unwrap().alarms(), a);
}

#[test]
fn keys_override_defaults_and_rules_can_be_turned_off() {
    let p = Policy::parse(
        "[alarms.not_me]\nclear_sessions = false\nblock_actions_seconds = 0\n\
         [alarms.velocity]\nlookups_per_agent = { enabled = false }\nfailures_per_agent = { count = 4 }\n",
    )
    .unwrap();
    let a = p.alarms();
    assert!(!a.not_me.clear_sessions);
    assert!(a.not_me.on_push_denied && a.not_me.alert);
    assert_eq!(a.not_me.block_actions_seconds, 0);
    assert_eq!(a.velocity.lookups_per_agent, None);
    assert_eq!(
        a.velocity.failures_per_agent,
        Some(VelocityRule {
            count: 4,
            window_seconds: 3600
        })
    );
    assert_eq!(
        a.velocity.failures_per_caller,
        AlarmPolicy::default().velocity.failures_per_caller
    );
}

#[test]
fn bad_values_name_the_key_and_line() {
    let cases: [(&str, usize, &str); 6] = [
        (
            "[alarms.not_me]\nblock_actions_seconds = 86401\n",
            2,
            "alarms.not_me.block_actions_seconds must be between 0 and 86400",
        ),
        (
            "[alarms.not_me]\nblock_actions_seconds = -1\n",
            2,
            "alarms.not_me.block_actions_seconds",
        ),
        (
            "[alarms.velocity]\nlookups_per_agent = { count = 1, window_seconds = 600 }\n",
            2,
            "alarms.velocity.lookups_per_agent.count must be between 2 and 10000",
        ),
        (
            "[alarms.velocity]\n\nfailures_per_caller = { count = 3, window_seconds = 59 }\n",
            3,
            "alarms.velocity.failures_per_caller.window_seconds must be between 60 and 86400",
        ),
        (
            "[alarms.velocity]\ndistinct_agents_per_caller = { enabled = false, count = 3 }\n",
            2,
            "disabled",
        ),
        ("[alarms.not_me]\nblock_seconds = 5\n", 2, "unknown key"),
    ];
    for (text, line, message) in cases {
        let e = parse_err(text);
        assert_eq!(e.line, line, "{e}\n---\n{text}");
        assert!(e.message.contains(message), "{e:?} lacks {message:?}");
    }
    assert!(Policy::parse("[alarms.velocity]\nlookups_per_agent = 5\n").is_err());
}
