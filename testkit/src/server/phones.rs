//! Simulated phones, the part every vendor shares: what a phone can answer, how an answer is judged against the
//! number the sign-in screen showed, reading the phone page's form, and waiting for a push to arrive. Each fake
//! keeps its own push records (Okta transactions, connector sessions) and its own states.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What the phone does with a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PhoneAnswer {
    /// Approve, picking `number` (required with number matching; a wrong number rejects the push).
    Approve {
        /// The number picked.
        #[serde(default)]
        number: Option<u8>,
    },
    /// Deny ("No, it's not me").
    Deny,
    /// Leave it; the push times out.
    Ignore,
}

/// What an answer does to a waiting push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judged {
    /// Approved (with the right number, when one was shown).
    Approved,
    /// Denied, or approved with a wrong or missing number.
    Denied,
    /// Left alone: it will time out.
    Ignored,
}

/// Judges `answer` to a push that showed `expected` (the number to pick), if any.
pub(crate) fn judge(expected: Option<u8>, answer: PhoneAnswer) -> Judged {
    match answer {
        PhoneAnswer::Approve { number } => match (expected, number) {
            (Some(right), Some(n)) if n == right => Judged::Approved,
            (Some(_), _) => Judged::Denied,
            (None, _) => Judged::Approved,
        },
        PhoneAnswer::Deny => Judged::Denied,
        PhoneAnswer::Ignore => Judged::Ignored,
    }
}

/// Polls `pending` every 20 ms (up to `timeout`) for the newest push `to_user` accepts.
pub(crate) async fn wait_for<P>(
    pending: impl Fn() -> Vec<P>,
    to_user: impl Fn(&P) -> bool,
    timeout: Duration,
) -> Option<P> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(p) = pending().into_iter().rev().find(|p| to_user(p)) {
            return Some(p);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The answer a simulated phone page's form asked for: `action=deny|ignore|approve`, or a picked `number`.
/// `None` for a form that asks for nothing.
pub(crate) fn phone_form_answer(action: Option<&str>, number: Option<&str>) -> Option<PhoneAnswer> {
    Some(match (action, number) {
        (Some("deny"), _) => PhoneAnswer::Deny,
        (Some("ignore"), _) => PhoneAnswer::Ignore,
        (_, Some(n)) => PhoneAnswer::Approve {
            number: n.trim().parse::<u8>().ok(),
        },
        (Some("approve"), None) => PhoneAnswer::Approve { number: None },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_form_reads_every_button_and_refuses_an_empty_form() {
        let a = |action, number| phone_form_answer(action, number);
        assert!(matches!(
            a(Some("deny"), Some("42")),
            Some(PhoneAnswer::Deny)
        ));
        assert!(matches!(a(Some("ignore"), None), Some(PhoneAnswer::Ignore)));
        assert!(matches!(
            a(None, Some(" 42 ")),
            Some(PhoneAnswer::Approve { number: Some(42) })
        ));
        assert!(matches!(
            a(Some("approve"), None),
            Some(PhoneAnswer::Approve { number: None })
        ));
        assert!(a(None, None).is_none());
        assert!(a(Some("explode"), None).is_none());
    }

    #[test]
    fn an_answer_is_judged_against_the_number_shown() {
        let approve = |number| PhoneAnswer::Approve { number };
        assert_eq!(judge(Some(42), approve(Some(42))), Judged::Approved);
        assert_eq!(judge(Some(42), approve(Some(41))), Judged::Denied);
        assert_eq!(judge(Some(42), approve(None)), Judged::Denied);
        assert_eq!(judge(None, approve(None)), Judged::Approved);
        assert_eq!(judge(None, approve(Some(7))), Judged::Approved);
        assert_eq!(judge(Some(42), PhoneAnswer::Deny), Judged::Denied);
        assert_eq!(judge(None, PhoneAnswer::Ignore), Judged::Ignored);
    }
}
