//! Identifiers. Each is a newtype with a private field, built only by `parse`.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Why an identifier was refused. The message names the rule, never the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The value was empty.
    #[error("{what} is empty")]
    Empty {
        /// Which identifier.
        what: &'static str,
    },
    /// The value was longer than allowed.
    #[error("{what} is longer than {max} characters")]
    TooLong {
        /// Which identifier.
        what: &'static str,
        /// The maximum length.
        max: usize,
    },
    /// The value held a character that is not allowed.
    #[error("{what} contains a character that is not allowed")]
    BadCharacter {
        /// Which identifier.
        what: &'static str,
    },
}

fn check(
    what: &'static str,
    s: &str,
    max: usize,
    ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.chars().count() > max {
        return Err(IdError::TooLong { what, max });
    }
    if !s.chars().all(ok) {
        return Err(IdError::BadCharacter { what });
    }
    Ok(())
}

/// Characters safe inside one URL path segment of an IdP API, without escaping.
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':' | '@' | '+' | '=')
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $pred:expr, redact = $redact:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the identifier.
            ///
            /// # Errors
            /// [`IdError`] when the value is empty, too long, or holds a character outside the allowed set.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($what, &s, $max, $pred)?;
                Ok(Self(s))
            }

            /// The raw value, for the wire.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $redact {
                    write!(f, concat!(stringify!($name), "([redacted])"))
                } else {
                    write!(f, concat!(stringify!($name), "({:?})"), self.0)
                }
            }
        }
    };
}

opaque_id!(
    /// The IdP's own user id (Okta `00u…`, Entra object id). It identifies a person, so `Debug` redacts it and it
    /// has no `Display`: audit events and logs carry its pseudonym instead.
    SubjectId, "subject id", 128, id_char, redact = true
);
opaque_id!(
    /// The IdP's id of one enrolled factor or authentication method.
    FactorId, "factor id", 128, id_char, redact = false
);
opaque_id!(
    /// The signed-in agent's stable identity (issuer-scoped `sub` or object id). Redacted in `Debug`: audit events
    /// and logs carry its pseudonym.
    AgentId, "agent id", 255, |c: char| !c.is_control() && !c.is_whitespace(), redact = true
);
opaque_id!(
    /// The deployment's tenant label (configuration, not personal data), e.g. `acme-prod`.
    TenantId, "tenant id", 64, |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'), redact = false
);
opaque_id!(
    /// A request id, carried from the HTTP edge into audit events.
    RequestId, "request id", 64, |c: char| c.is_ascii_graphic(), redact = false
);

impl fmt::Display for FactorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A helpdesk ticket reference as the agent typed it (ServiceNow `INC0012345`, Jira `HELP-123`, Zendesk `12345`,
/// `#12345`), kept in audit events so an auditor can tie an event to its ticket.
///
/// The shape is narrow on purpose so that no personal data fits: an optional `#`, up to 12 letters, then one to
/// three groups of digits each optionally led by `-` or `_` (at most 32 characters in all). No `@`, no spaces, no
/// letters after the first digit: an e-mail address, a name or a login is refused, and the refusal never echoes the
/// input.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketRef(String);

impl TicketRef {
    /// The longest reference accepted.
    pub const MAX: usize = 32;

    /// Parses a reference (surrounding whitespace trimmed).
    ///
    /// # Errors
    /// [`IdError`] when it is empty, too long, or not of the shape above.
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        const WHAT: &str = "ticket reference";
        let s = s.into();
        let s = s.trim();
        check(WHAT, s, Self::MAX, |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '#')
        })?;
        let bad = IdError::BadCharacter { what: WHAT };
        let rest = s.strip_prefix('#').unwrap_or(s);
        let letters = rest.chars().take_while(char::is_ascii_alphabetic).count();
        if letters > 12 {
            return Err(bad);
        }
        // The rest is `([-_]?[0-9]+){1,3}`.
        let mut groups = 0;
        let mut in_digits = false;
        let mut after_sep = false;
        for c in rest[letters..].chars() {
            match c {
                '0'..='9' => {
                    if !in_digits {
                        groups += 1;
                    }
                    in_digits = true;
                    after_sep = false;
                }
                '-' | '_' if !after_sep => {
                    in_digits = false;
                    after_sep = true;
                }
                _ => return Err(bad),
            }
        }
        if groups == 0 || groups > 3 || after_sep {
            return Err(bad);
        }
        Ok(Self(s.to_owned()))
    }

    /// The reference as typed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TicketRef {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl From<TicketRef> for String {
    fn from(v: TicketRef) -> String {
        v.0
    }
}

impl fmt::Debug for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketRef({:?})", self.0)
    }
}

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4, 122-bit) id: unguessable, so it may appear in a URL.
            #[must_use]
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// Parses the hyphenated form.
            ///
            /// # Errors
            /// [`IdError::BadCharacter`] when the text is not a UUID.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::BadCharacter { what: stringify!($name) })
            }

            /// The underlying UUID.
            #[must_use]
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

uuid_id!(
    /// One verification (a caller being verified by an agent, possibly over several factors).
    VerificationId
);
uuid_id!(
    /// One verification grant.
    GrantId
);
uuid_id!(
    /// One four-eyes approval request (an action waiting for a second agent's decision).
    ApprovalId
);

/// A group the IdP says a user belongs to. Group names are organisational data, not personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupRef {
    /// The IdP's group id.
    pub id: String,
    /// The group's display name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn subject_id_redacts_in_debug() {
        let id = SubjectId::parse("00uCANARY123").unwrap();
        assert!(!format!("{id:?}").contains("CANARY"));
        assert_eq!(id.as_str(), "00uCANARY123");
    }

    #[test]
    fn ids_refuse_path_tricks() {
        for bad in [
            "", "../admin", "a/b", "a?b=c", "a#b", "a%2fb", "a b", "a\nb",
        ] {
            assert!(SubjectId::parse(bad).is_err(), "{bad:?} accepted");
            assert!(FactorId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(SubjectId::parse("x".repeat(129)).is_err());
        assert!(SubjectId::parse("00u1abcDEF").is_ok());
        assert!(SubjectId::parse("6e7b768e-07e2-4810-8459-485f84f8f204").is_ok());
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: Result<SubjectId, _> = serde_json::from_str("\"a/b\"");
        assert!(id.is_err());
        let id: SubjectId = serde_json::from_str("\"00u1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"00u1\"");
    }

    #[test]
    fn ticket_refs_take_ticket_shapes_only() {
        for ok in [
            "INC0012345",
            "HELP-123",
            "12345",
            "#12345",
            "RITM0010001",
            "SR-2024-0001",
            " CHG_77 ",
        ] {
            assert!(TicketRef::parse(ok).is_ok(), "{ok:?} refused");
        }
        assert_eq!(TicketRef::parse(" CHG_77 ").unwrap().as_str(), "CHG_77");
        for bad in [
            "",
            "alice@example.com",
            "alice",
            "Alice Smith",
            "INC12a",
            "HELP--1",
            "HELP-",
            "-",
            "#",
            "1-2-3-4",
            "ABCDEFGHIJKLM1",
            "INC 123",
            "<b>1</b>",
            "1\n2",
        ] {
            let e = TicketRef::parse(bad).unwrap_err();
            assert!(
                !e.to_string().contains(bad.trim()) || bad.trim().is_empty(),
                "{e} echoes input"
            );
        }
        assert!(TicketRef::parse("1".repeat(33)).is_err());
        let t: Result<TicketRef, _> = serde_json::from_str("\"a@b\"");
        assert!(t.is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_safe(s in ".{0,200}") {
            if let Ok(id) = SubjectId::parse(s.clone()) {
                prop_assert!(id.as_str().chars().all(id_char));
                prop_assert!(!id.as_str().is_empty() && id.as_str().chars().count() <= 128);
            }
            let _ = AgentId::parse(s.clone());
            let _ = TenantId::parse(s.clone());
            let _ = RequestId::parse(s.clone());
            if let Ok(t) = TicketRef::parse(s) {
                prop_assert!(!t.as_str().contains('@') && !t.as_str().contains(' '));
                prop_assert!(t.as_str().chars().any(|c| c.is_ascii_digit()));
            }
        }
    }
}
