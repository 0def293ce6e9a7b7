//! Building Graph paths and query values from untrusted text: path segments percent-encoded (with Graph's `$`
//! and `#` quirks), OData string literals with quotes doubled, `$search` terms stripped of the characters that
//! could end the quoted phrase.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but unreserved characters and `@` is percent-encoded in a path segment: `#` becomes `%23`
/// (guest UPNs), `/`, `?`, `%`, `'`, `(`, `)` and `$` cannot change the path.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// The path of one user, relative to the Graph base: `users/{encoded}`, or for a UPN starting with `$` the
/// key form `users('{encoded, quotes doubled}')` (Graph would otherwise read `$…` as a system segment).
pub(crate) fn user_path(id_or_upn: &str) -> String {
    if id_or_upn.starts_with('$') {
        let literal = odata_string_body(id_or_upn);
        format!("users('{}')", utf8_percent_encode(&literal, SEGMENT))
    } else {
        format!("users/{}", utf8_percent_encode(id_or_upn, SEGMENT))
    }
}

/// One percent-encoded path segment (factor ids and the like).
pub(crate) fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The inside of an OData string literal: single quotes doubled.
pub(crate) fn odata_string_body(s: &str) -> String {
    s.replace('\'', "''")
}

/// A complete OData string literal: `'…'` with quotes doubled.
pub(crate) fn odata_string(s: &str) -> String {
    format!("'{}'", odata_string_body(s))
}

/// The `$search` value for a display-name prefix: `"displayName:{term}"`. `"` and `\` are replaced by spaces
/// (Graph's `$search` tokenises on punctuation and whitespace, so they never belong to a searchable word, and no
/// escaping rule then matters), runs of whitespace collapse. `None` when nothing searchable is left.
pub(crate) fn display_name_search(term: &str) -> Option<String> {
    let cleaned: String = term
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    Some(format!("\"displayName:{}\"", words.join(" ")))
}

/// The `$filter` for a name prefix in [`NameSearch::StartsWith`](crate::NameSearch) mode.
pub(crate) fn name_prefix_filter(term: &str) -> String {
    let lit = odata_string(term);
    format!(
        "startsWith(displayName,{lit}) or startsWith(givenName,{lit}) or startsWith(surname,{lit})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal OData tokenizer for what we build: returns the string literals in order, or `None` when a
    /// literal is unterminated.
    fn literals(filter: &str) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut chars = filter.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        None => return None,
                        Some('\'') => {
                            if chars.peek() == Some(&'\'') {
                                chars.next();
                                lit.push('\'');
                            } else {
                                break;
                            }
                        }
                        Some(ch) => lit.push(ch),
                    }
                }
                out.push(lit);
            }
        }
        Some(out)
    }

    /// The filter with its literals blanked, to compare the operator structure.
    fn skeleton(filter: &str) -> String {
        let mut out = String::new();
        let mut in_lit = false;
        let mut chars = filter.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if in_lit && chars.peek() == Some(&'\'') {
                    chars.next();
                    continue;
                }
                in_lit = !in_lit;
                out.push('\'');
            } else if !in_lit {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn quirks() {
        assert_eq!(user_path("a#b@x.com"), "users/a%23b@x.com");
        assert_eq!(user_path("$adm@x.com"), "users('%24adm@x.com')");
        assert_eq!(user_path("$o'k@x.com"), "users('%24o%27%27k@x.com')");
        assert_eq!(user_path("../../x?y"), "users/..%2F..%2Fx%3Fy");
        assert_eq!(odata_string("o'brien"), "'o''brien'");
        assert_eq!(
            display_name_search("jo\" OR \"x\\"),
            Some("\"displayName:jo OR x\"".to_owned())
        );
        assert_eq!(display_name_search("\"\\"), None);
    }

    proptest! {
        #[test]
        fn no_input_leaves_an_odata_literal(s in ".{0,60}") {
            let f = format!("userPrincipalName eq {} or mail eq {}", odata_string(&s), odata_string(&s));
            prop_assert_eq!(literals(&f), Some(vec![s.clone(), s.clone()]));
            prop_assert_eq!(skeleton(&f), "userPrincipalName eq '' or mail eq ''");
            let f = name_prefix_filter(&s);
            prop_assert_eq!(literals(&f), Some(vec![s.clone(), s.clone(), s.clone()]));
            prop_assert_eq!(
                skeleton(&f),
                "startsWith(displayName,'') or startsWith(givenName,'') or startsWith(surname,'')"
            );
        }

        #[test]
        fn no_input_leaves_the_search_phrase(s in ".{0,60}") {
            if let Some(q) = display_name_search(&s) {
                prop_assert!(q.starts_with("\"displayName:"));
                prop_assert!(q.ends_with('"'));
                prop_assert_eq!(q.matches('"').count(), 2);
                prop_assert!(!q.contains('\\'));
                prop_assert!(!q.chars().any(char::is_control));
            }
        }

        #[test]
        fn path_segments_stay_one_segment(s in ".{1,60}") {
            let p = user_path(&s);
            let rest = p.strip_prefix("users").unwrap();
            prop_assert!(!rest[1..].contains('/'));
            prop_assert!(!p.contains('?') && !p.contains('#'));
            if let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
                let decoded = percent_encoding::percent_decode_str(inner).decode_utf8().unwrap();
                prop_assert_eq!(literals(&decoded), Some(vec![s.clone()]));
                prop_assert_eq!(skeleton(&decoded), "''");
            }
            let seg = segment(&s);
            prop_assert!(seg.chars().all(|c| c.is_ascii_alphanumeric() || "-._~@%".contains(c)));
            let decoded = percent_encoding::percent_decode_str(&seg).decode_utf8().unwrap();
            prop_assert_eq!(decoded.as_ref(), s.as_str());
        }
    }
}
