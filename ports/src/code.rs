//! One-time codes a caller reads out (TOTP, HOTP, a hardware token), parsed once at the shell.
//!
//! The format is the one every IdP fctr talks to accepts: 6 to 8 ASCII digits. Okta's `passCode` for
//! `token:software:totp` and `token:hotp` is 6 digits (8 for some hardware tokens), Entra's OATH and Authenticator
//! codes are 6 (8 for some hardware OATH tokens); the Entra adapter refuses anything else before it calls out.
//! Spaces that authenticator apps put in the middle ("123 456") are removed first. Anything else is refused before
//! the engine counts an attempt or an IdP sees it.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// Why a one-time code was refused. The message names the rule, never the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpCodeError {
    /// Nothing but whitespace was entered.
    #[error("the code is empty")]
    Empty,
    /// A character other than a digit (or a space between digits).
    #[error("a code is digits only")]
    NotDigits,
    /// Fewer or more digits than any authenticator shows.
    #[error("a code has {min} to {max} digits", min = OtpCode::MIN_DIGITS, max = OtpCode::MAX_DIGITS)]
    Length,
}

/// A one-time code, 6 to 8 digits, held as a [`SecretString`] (zeroized on drop). Its `Debug` prints
/// `OtpCode([redacted])`; there is no `Display`.
#[derive(Clone)]
pub struct OtpCode(SecretString);

impl OtpCode {
    /// Fewest digits a code has.
    pub const MIN_DIGITS: usize = 6;
    /// Most digits a code has.
    pub const MAX_DIGITS: usize = 8;
    /// Longest input looked at (digits and the spaces between them).
    const MAX_INPUT: usize = 32;

    /// Parses what the agent typed: whitespace removed, then 6 to 8 ASCII digits.
    ///
    /// # Errors
    /// [`OtpCodeError`] naming the broken rule.
    pub fn parse(input: &str) -> Result<Self, OtpCodeError> {
        if input.len() > Self::MAX_INPUT {
            return Err(OtpCodeError::Length);
        }
        let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
        let digits = SecretString::from(digits);
        let d = digits.expose_secret();
        if d.is_empty() {
            return Err(OtpCodeError::Empty);
        }
        if !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OtpCodeError::NotDigits);
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&d.len()) {
            return Err(OtpCodeError::Length);
        }
        Ok(Self(digits))
    }

    /// The digits, for the one call that sends them to the IdP.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The code as the [`SecretString`] the challenge port takes.
    #[must_use]
    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode([redacted])")
    }
}

impl From<OtpCode> for SecretString {
    fn from(c: OtpCode) -> Self {
        c.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debug_redacts_the_digits() {
        let digits = "7".repeat(6);
        let c = OtpCode::parse(&digits).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(&digits), "{shown}");
        assert_eq!(shown, "OtpCode([redacted])");
        let e = OtpCode::parse(&"9".repeat(9)).unwrap_err();
        assert!(!format!("{e:?} {e}").contains('9'));
    }

    #[test]
    fn spaces_are_removed_and_the_limits_hold() {
        assert_eq!(
            OtpCode::parse(" 123 456\n").unwrap().expose_secret(),
            "123456"
        );
        assert_eq!(
            OtpCode::parse("12345678").unwrap().expose_secret(),
            "12345678"
        );
        assert_eq!(OtpCode::parse("12345").unwrap_err(), OtpCodeError::Length);
        assert_eq!(
            OtpCode::parse("123456789").unwrap_err(),
            OtpCodeError::Length
        );
        assert_eq!(OtpCode::parse("   ").unwrap_err(), OtpCodeError::Empty);
        assert_eq!(
            OtpCode::parse("12345a").unwrap_err(),
            OtpCodeError::NotDigits
        );
        assert_eq!(
            OtpCode::parse("１２３４５６").unwrap_err(),
            OtpCodeError::NotDigits
        );
        assert_eq!(
            OtpCode::parse("-123456").unwrap_err(),
            OtpCodeError::NotDigits
        );
        assert_eq!(
            OtpCode::parse(&" ".repeat(40)).unwrap_err(),
            OtpCodeError::Length
        );
    }

    proptest! {
        #[test]
        fn six_to_eight_digits_parse_to_themselves(d in "[0-9]{6,8}") {
            let c = OtpCode::parse(&d).unwrap();
            prop_assert_eq!(c.expose_secret(), d.as_str());
            let s = c.into_secret();
            prop_assert_eq!(s.expose_secret(), d.as_str());
        }

        #[test]
        fn spaced_digits_parse_to_the_digits(d in "[0-9]{6,8}", at in 0usize..8) {
            let at = at.min(d.len());
            let spaced = format!(" {} {} ", &d[..at], &d[at..]);
            let c = OtpCode::parse(&spaced).unwrap();
            prop_assert_eq!(c.expose_secret(), d.as_str());
        }

        #[test]
        fn other_lengths_are_refused(d in "[0-9]{0,5}|[0-9]{9,20}") {
            prop_assert!(OtpCode::parse(&d).is_err());
        }

        #[test]
        fn anything_accepted_is_six_to_eight_ascii_digits(s in "\\PC{0,40}") {
            if let Ok(c) = OtpCode::parse(&s) {
                let d = c.expose_secret();
                prop_assert!((6..=8).contains(&d.len()));
                prop_assert!(d.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
