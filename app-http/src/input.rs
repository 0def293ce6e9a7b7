//! Parsing what the pages and the API send into the engine's types: shared by both, so a form field and a JSON
//! field mean the same thing.

use chrono::TimeDelta;
use fctr_core::Denial;
use fctr_ports::{FactorId, OtpCode, Reason};

/// An optional factor id (empty means none): `invalid_input` when it is not a factor id.
pub(crate) fn factor(s: Option<&str>) -> Result<Option<FactorId>, Denial> {
    s.filter(|s| !s.is_empty())
        .map(|s| FactorId::parse(s.to_owned()).map_err(|_| Denial::new(Reason::InvalidInput)))
        .transpose()
}

/// A one-time code the caller read out ([`OtpCode::parse`]): `invalid_input` when it is not one.
pub(crate) fn code(s: &str) -> Result<OtpCode, Denial> {
    OtpCode::parse(s).map_err(|_| Denial::new(Reason::InvalidInput))
}

/// The windows the out-of-band page and route offer: (query value, words, length). Bounded: at least an hour (the IdP's log lags a
/// little), at most a week (each view reads both logs in full for the window).
pub(crate) const WINDOWS: [(&str, &str, TimeDelta); 5] = [
    ("1h", "Last hour", TimeDelta::hours(1)),
    ("6h", "Last 6 hours", TimeDelta::hours(6)),
    ("24h", "Last 24 hours", TimeDelta::hours(24)),
    ("3d", "Last 3 days", TimeDelta::days(3)),
    ("7d", "Last 7 days", TimeDelta::days(7)),
];

/// The window when none is asked for.
pub(crate) const DEFAULT_WINDOW: &str = "24h";

/// The window named by `since` (absent or empty: the default); `None` for anything not offered.
pub(crate) fn window(since: Option<&str>) -> Option<(&'static str, TimeDelta)> {
    let s = since
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_WINDOW);
    WINDOWS
        .iter()
        .find(|(v, _, _)| *v == s)
        .map(|(v, _, d)| (*v, *d))
}

/// The `since` value of a query string (the first one); other keys are ignored.
pub(crate) fn since_param(q: &str) -> Option<String> {
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "since")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded_and_default_to_a_day() {
        assert_eq!(window(None), Some(("24h", TimeDelta::hours(24))));
        assert_eq!(window(Some(" ")), Some(("24h", TimeDelta::hours(24))));
        assert_eq!(window(Some("7d")), Some(("7d", TimeDelta::days(7))));
        assert_eq!(window(Some("1h")), Some(("1h", TimeDelta::hours(1))));
        for bad in ["8d", "30d", "0h", "1m", "-1h", "24", "all"] {
            assert_eq!(window(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn the_first_since_wins() {
        assert_eq!(since_param("since=1h&since=7d").as_deref(), Some("1h"));
        assert_eq!(since_param("x=1"), None);
    }
}
