//! A wrapper for personal data that cannot leak by accident.

use std::fmt;
use zeroize::Zeroize;

/// Personal data about a caller (name, login, e-mail, phone).
///
/// `Pii` prints `[redacted]` in both `Debug` and `Display`, is zeroized when dropped, and deliberately implements
/// neither `Serialize` nor `Deserialize`: the only way to read the value is the greppable
/// [`Pii::expose_pii`] call, made where the value is shown to the agent who looked the caller up.
#[derive(Clone, PartialEq, Eq)]
pub struct Pii(String);

impl Pii {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Reads the raw value. Every call site is a place where personal data leaves the wrapper: keep them few,
    /// and never pass the result to a log, an error, the audit log or the disk.
    #[must_use]
    pub fn expose_pii(&self) -> &str {
        &self.0
    }

    /// Whether the wrapped value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pii([redacted])")
    }
}

impl fmt::Display for Pii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Pii {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let p = Pii::new("Jane Canary-Doe +1 555 0100");
        assert!(!format!("{p:?}").contains("Canary"));
        assert!(!format!("{p}").contains("Canary"));
        assert!(!format!("{:#?}", Some(&p)).contains("0100"));
        assert_eq!(p.expose_pii(), "Jane Canary-Doe +1 555 0100");
        // It says what it hides, rather than printing nothing.
        assert_eq!(format!("{p:?}"), "Pii([redacted])");
        assert_eq!(format!("{p}"), "[redacted]");
    }

    #[test]
    fn is_empty_tells_an_empty_value() {
        assert!(Pii::new("").is_empty());
        assert!(!Pii::new("x").is_empty());
    }
}
