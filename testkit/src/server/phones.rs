//! Simulated phones, the part every vendor shares: a pending push ([`Push`]: the number to pick, the choices
//! shown, expiry, the answer), what a phone can answer and how an answer is judged, reading the phone page's
//! form, and waiting for a push to arrive. Each fake wraps [`Push`] in its own record (an Okta transaction, a
//! connector session) and names the states in its own words ([`PushStates`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
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

pub(crate) mod sealed {
    /// Only the fakes' states are phone books.
    pub trait Sealed {}
}

/// A fake tenant whose simulated phones [`Phones`] drives. Sealed: the fakes' states implement it.
pub trait PhoneBook: sealed::Sealed {
    /// A push waiting on a phone, as listed (`PendingPush`).
    type Pending: Send;
    /// Where a push stands (`PushState`).
    type State;
    /// Why a phone could not answer (`PhoneError`).
    type Error;

    /// Pushes still waiting (not answered, not expired), oldest first.
    fn pending_pushes(&self) -> Vec<Self::Pending>;

    /// Answers a push. Returns its new state.
    ///
    /// # Errors
    /// The push is unknown or no longer waiting.
    fn answer_push(&self, id: &str, answer: PhoneAnswer) -> Result<Self::State, Self::Error>;

    /// Whether a pending push went to `user` (as a test names the user: id, login or UPN).
    fn push_to(push: &Self::Pending, user: &str) -> bool;
}

/// Simulated phones: list pending pushes (and calls) and answer them.
#[derive(Clone)]
pub struct Phones<T> {
    pub(crate) tenant: T,
}

impl<T> std::fmt::Debug for Phones<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Phones")
    }
}

impl<T> Phones<T> {
    pub(crate) fn new(tenant: T) -> Self {
        Self { tenant }
    }
}

impl<T: PhoneBook> Phones<T> {
    /// Pushes still waiting (not answered, not expired), oldest first.
    pub fn pending(&self) -> Vec<T::Pending> {
        self.tenant.pending_pushes()
    }

    /// Waits (polling every 20 ms, up to `timeout`) for a pending push to the user (id, login or UPN).
    pub async fn wait_for_push(&self, user: &str, timeout: Duration) -> Option<T::Pending> {
        wait_for(|| self.pending(), |p| T::push_to(p, user), timeout).await
    }

    /// Answers a push. Returns its new state.
    ///
    /// # Errors
    /// The push is unknown or no longer waiting.
    pub fn answer(&self, id: &str, answer: PhoneAnswer) -> Result<T::State, T::Error> {
        self.tenant.answer_push(id, answer)
    }

    /// Denies a push.
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn deny(&self, id: &str) -> Result<T::State, T::Error> {
        self.answer(id, PhoneAnswer::Deny)
    }

    /// Ignores a push (it times out).
    ///
    /// # Errors
    /// As [`Phones::answer`].
    pub fn ignore(&self, id: &str) -> Result<T::State, T::Error> {
        self.answer(id, PhoneAnswer::Ignore)
    }
}

/// A vendor's words for where a push stands.
pub(crate) trait PushStates: Copy + PartialEq {
    /// Not answered yet (also after an ignore).
    const WAITING: Self;
    /// Approved (with the right number, when one was shown).
    const APPROVED: Self;
    /// Denied, or approved with a wrong or missing number.
    const DENIED: Self;
    /// Not answered before it expired.
    const TIMED_OUT: Self;
}

/// A push waiting on a simulated phone, in states `S`.
#[derive(Debug, Clone)]
pub(crate) struct Push<S> {
    /// The number to pick (number matching), if one is shown.
    pub number: Option<u8>,
    /// The numbers the phone shows (the right one among them), or empty.
    pub choices: Vec<u8>,
    /// When it was sent.
    pub created: DateTime<Utc>,
    /// When an unanswered push times out.
    pub expires_at: DateTime<Utc>,
    /// Where it stands, before expiry is applied (see [`Push::state_at`]).
    pub state: S,
    /// Whether the phone was told to ignore it.
    pub ignored: bool,
}

impl<S: PushStates> Push<S> {
    /// A waiting push sent at `now`, timing out after `timeout`.
    pub fn new(
        number: Option<u8>,
        choices: Vec<u8>,
        now: DateTime<Utc>,
        timeout: chrono::Duration,
    ) -> Self {
        Self {
            number,
            choices,
            created: now,
            expires_at: now + timeout,
            state: S::WAITING,
            ignored: false,
        }
    }

    /// The state at `now`, after expiry.
    pub fn state_at(&self, now: DateTime<Utc>) -> S {
        if self.state == S::WAITING && now >= self.expires_at {
            S::TIMED_OUT
        } else {
            self.state
        }
    }

    /// Whether it still waits at `now`.
    pub fn waiting_at(&self, now: DateTime<Utc>) -> bool {
        self.state_at(now) == S::WAITING
    }

    /// Refuses it if it still waits (the factor went away, the user was suspended).
    pub fn cancel(&mut self) {
        if self.state == S::WAITING {
            self.state = S::DENIED;
        }
    }

    /// Answers it at `now`: `Ok(new state)`, or `Err(state)` when it no longer waits.
    pub fn answer(&mut self, now: DateTime<Utc>, answer: PhoneAnswer) -> Result<S, S> {
        let state = self.state_at(now);
        if state != S::WAITING {
            return Err(state);
        }
        match judge(self.number, answer) {
            Judged::Approved => self.state = S::APPROVED,
            Judged::Denied => self.state = S::DENIED,
            Judged::Ignored => self.ignored = true,
        }
        Ok(self.state)
    }
}

/// What an answer does to a waiting push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judged {
    /// Approved (with the right number, when one was shown).
    Approved,
    /// Denied, or approved with a wrong or missing number.
    Denied,
    /// Left alone: it will time out.
    Ignored,
}

/// Judges `answer` to a push that showed `expected` (the number to pick), if any.
fn judge(expected: Option<u8>, answer: PhoneAnswer) -> Judged {
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

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum St {
        W,
        A,
        D,
        T,
    }

    impl PushStates for St {
        const WAITING: Self = St::W;
        const APPROVED: Self = St::A;
        const DENIED: Self = St::D;
        const TIMED_OUT: Self = St::T;
    }

    #[test]
    fn a_push_waits_until_answered_or_expired() {
        let now = Utc::now();
        let mut p = Push::<St>::new(
            Some(42),
            vec![7, 42, 90],
            now,
            chrono::Duration::seconds(60),
        );
        assert!(p.waiting_at(now));
        assert_eq!(p.state_at(now + chrono::Duration::seconds(60)), St::T);
        assert_eq!(p.answer(now, PhoneAnswer::Ignore), Ok(St::W));
        assert!(p.ignored && p.waiting_at(now));
        assert_eq!(
            p.answer(now, PhoneAnswer::Approve { number: Some(42) }),
            Ok(St::A)
        );
        assert_eq!(p.answer(now, PhoneAnswer::Deny), Err(St::A));
        let mut late = Push::<St>::new(None, Vec::new(), now, chrono::Duration::seconds(1));
        let later = now + chrono::Duration::seconds(2);
        assert_eq!(late.answer(later, PhoneAnswer::Deny), Err(St::T));
        let mut gone = Push::<St>::new(None, Vec::new(), now, chrono::Duration::seconds(1));
        gone.cancel();
        assert_eq!(gone.state_at(now), St::D);
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
