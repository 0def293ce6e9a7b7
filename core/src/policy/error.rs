//! Policy errors and warnings, and turning byte spans into the line and column a person looks for.

use serde::Serialize;
use std::fmt;
use std::ops::Range;

/// Why a policy file was refused: where (1-based line and column, columns counted in characters), what, and
/// what to do about it.
///
/// `Display` reads `line 12, column 3: unknown key `windw` (hint: did you mean `window_minutes`?)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when we can tell.
    pub hint: Option<String>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// A valid but risky setting, found by [`super::Policy::warnings`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyWarning {
    /// Stable machine code, e.g. `restricted_pstn_allowed`.
    pub code: &'static str,
    /// What is risky, in words.
    pub message: String,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// An error still pointing at bytes of the source; [`SpanError::locate`] makes it a [`PolicyError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SpanError {
    pub span: Range<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl SpanError {
    pub(super) fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span,
            message: message.into(),
            hint: None,
        }
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(super) fn locate(self, text: &str) -> PolicyError {
        let (line, column) = line_column(text, self.span.start);
        PolicyError {
            line,
            column,
            message: self.message,
            hint: self.hint,
        }
    }
}

/// The 1-based line and column (in characters) of a byte offset. Offsets past the end, or inside a character,
/// are clamped; an offset at the very end of a file that ends with a newline points at the end of the last line,
/// so the line is always one that an editor shows with text on it (or line 1 of an empty file).
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    // (A carriage return before that newline needs no step back of its own: the clamp below hides it.)
    if offset == text.len() && text.ends_with('\n') {
        offset -= 1;
    }
    let mut line = 1;
    let mut column = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    // A carriage return before a newline is not a column an editor shows: clamp to the visible line.
    let visible = text.lines().nth(line - 1).map_or(0, |l| l.chars().count());
    (line, column.min(visible + 1))
}

/// Turns a TOML syntax or shape error into a [`PolicyError`], rewording serde's messages for people.
pub(super) fn from_toml(text: &str, err: &toml::de::Error) -> PolicyError {
    let raw = err.message().trim();
    let (message, hint) = reword(raw);
    let offset = err.span().map_or(0, |s| s.start);
    SpanError {
        span: offset..offset,
        message,
        hint,
    }
    .locate(text)
}

fn reword(raw: &str) -> (String, Option<String>) {
    let flat = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if flat.starts_with("unknown field `") {
        // serde: "unknown field `k`, expected one of `a`, `b`" (or "expected `a`", or "there are no fields").
        let all = backticked(&flat);
        let key_name = all.first().cloned().unwrap_or_default();
        let expected: Vec<&str> = all.iter().skip(1).map(String::as_str).collect();
        let hint = match closest(&key_name, &expected) {
            Some(best) => Some(format!("did you mean `{best}`?")),
            None if expected.is_empty() => Some("this table takes no keys".to_owned()),
            None => Some(format!(
                "the keys allowed here are {}",
                tick_list(&expected)
            )),
        };
        return (format!("unknown key `{key_name}`"), hint);
    }
    if flat.starts_with("missing field `") {
        let key = backticked(&flat).first().cloned().unwrap_or_default();
        return (
            format!("missing key `{key}`"),
            Some(format!("add `{key} = ...` to this table")),
        );
    }
    let message = flat
        .replace("invalid type: ", "wrong type: found ")
        .replace("expected i64", "expected a whole number")
        .replace("expected a sequence", "expected a list like [\"a\", \"b\"]");
    (message, None)
}

/// The texts between pairs of backticks.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// `a`, `b` and `c`
pub(super) fn tick_list(items: &[&str]) -> String {
    let ticked: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match ticked.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo. A word is compared with each
/// candidate as a whole and with each `_`-separated part of it (one extra step), so `windw` finds
/// `window_minutes`. Ties go to the first candidate.
pub(super) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = if len < 3 { 1 } else { (len / 3).max(2) };
    candidates
        .iter()
        .map(|c| {
            let whole = edit_distance(word, c);
            let part = c
                .split('_')
                .filter(|p| p.len() >= 3 && p.len() < c.len())
                .map(|p| edit_distance(word, p) + 1)
                .min()
                .unwrap_or(usize::MAX);
            (whole.min(part), *c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_in_characters() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_column(t, 0), (1, 1));
        assert_eq!(line_column(t, 6), (2, 1));
        // 'é' is two bytes; "= 2" starts at byte 10, character column 4.
        assert_eq!(line_column(t, 10), (2, 4));
        // Past the end of a file ending in a newline: the end of the last line.
        assert_eq!(line_column(t, 999), (2, 7));
        assert_eq!(line_column("", 5), (1, 1));
        assert_eq!(line_column("x\r\n", 3), (1, 2));
        // Inside a multi-byte character: clamps to the character.
        assert_eq!(line_column("é", 1), (1, 2));
    }

    #[test]
    fn line_column_at_the_end_of_a_crlf_file_points_at_the_last_visible_column() {
        assert_eq!(line_column("x\r\n", 3), (1, 2));
        assert_eq!(line_column("a = 1\r\nb = 2\r\n", 14), (2, 6));
        assert_eq!(line_column("\r\n", 2), (1, 1));
        assert_eq!(line_column("", 0), (1, 1));
    }

    #[test]
    fn closest_limits_by_word_length_and_counts_a_part_one_step_further() {
        // Two letters: one edit at most.
        assert_eq!(closest("ab", &["ac"]), Some("ac"));
        assert_eq!(closest("ab", &["cd"]), None);
        // Three to eight letters: two edits.
        assert_eq!(closest("abc", &["xyc"]), Some("xyc"));
        // Nine letters: three edits.
        assert_eq!(closest("abcdefghi", &["abcdefxyz"]), Some("abcdefxyz"));
        assert_eq!(closest("abcdefghi", &["abcdewxyz"]), None);
        // A part of a key costs one more edit than the same distance to a whole key...
        assert_eq!(closest("abcdef", &["abxyef_long"]), None);
        assert_eq!(closest("abcdef", &["abcxef_long"]), Some("abcxef_long"));
        // ...and parts shorter than three letters are not compared.
        assert_eq!(closest("ab", &["ab_cdefgh"]), None);
    }

    #[test]
    fn a_warning_prints_its_code_then_its_message() {
        let w = PolicyWarning {
            code: "multi_use_grants",
            message: "one verification, many actions".to_owned(),
        };
        assert_eq!(
            w.to_string(),
            "multi_use_grants: one verification, many actions"
        );
    }

    #[test]
    fn edit_distance_and_closest() {
        assert_eq!(edit_distance("windw", "window_minutes"), 9);
        assert_eq!(edit_distance("pusj", "push"), 1);
        for (a, b, d) in [
            ("", "abc", 3),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("flaw", "lawn", 2),
            ("ab", "ba", 2),
            ("ab", "a", 1),
            ("a", "ab", 1),
            ("abc", "abc", 0),
            ("é", "e", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} -> {b}");
        }
        assert_eq!(closest("pusj", &["push", "totp"]), Some("push"));
        assert_eq!(
            closest("windw", &["window_minutes", "no_downgrade"]),
            Some("window_minutes")
        );
        assert_eq!(closest("zzzzzz", &["push", "totp"]), None);
    }

    #[test]
    fn reword_an_unknown_key_in_a_table_without_keys() {
        let (message, hint) = reword("unknown field `x`, there are no fields");
        assert_eq!(message, "unknown key `x`");
        assert_eq!(hint.as_deref(), Some("this table takes no keys"));
    }

    #[test]
    fn reword_unknown_field() {
        let (m, h) =
            reword("unknown field `windw`, expected one of `window_minutes`, `no_downgrade`");
        assert_eq!(m, "unknown key `windw`");
        assert_eq!(h.as_deref(), Some("did you mean `window_minutes`?"));
        let (m, h) = reword("unknown field `qqqqqqqq`, expected `groups`");
        assert_eq!(m, "unknown key `qqqqqqqq`");
        assert_eq!(h.as_deref(), Some("the keys allowed here are `groups`"));
    }

    #[test]
    fn display_matches_the_documented_shape() {
        let e = PolicyError {
            line: 12,
            column: 3,
            message: "unknown key `windw`".into(),
            hint: Some("did you mean `window_minutes`?".into()),
        };
        assert_eq!(
            e.to_string(),
            "line 12, column 3: unknown key `windw` (hint: did you mean `window_minutes`?)"
        );
        let e = PolicyError { hint: None, ..e };
        assert_eq!(e.to_string(), "line 12, column 3: unknown key `windw`");
    }
}
