//! Okta `search=` expressions built from agent input, quoted so no input can break out of its string literal.

use fctr_ports::UserQuery;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Why a text cannot be quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unquotable;

/// Quotes a string literal for Okta's search grammar: wraps it in `"` and escapes `\` and `"` with a backslash.
/// Control characters are refused (the port already refuses them; this is the last line).
pub(crate) fn quote(text: &str) -> Result<String, Unquotable> {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => return Err(Unquotable),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// The `search=` expression for a query, or `None` for a query kind this adapter does not know.
pub(crate) fn expression(q: &UserQuery) -> Option<Result<String, Unquotable>> {
    Some(match q {
        // Logins are usually e-mail shaped, and the port promises that a login search also matches e-mail.
        UserQuery::Login(t) => {
            quote(t.expose_pii()).map(|v| format!("profile.login eq {v} or profile.email eq {v}"))
        }
        UserQuery::Email(t) => quote(t.expose_pii()).map(|v| format!("profile.email eq {v}")),
        UserQuery::NamePrefix(t) => quote(t.expose_pii())
            .map(|v| format!("profile.firstName sw {v} or profile.lastName sw {v}")),
        _ => return None,
    })
}

/// Everything but RFC 3986 unreserved characters is percent-encoded (so spaces are `%20`, never `+`).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query value.
pub(crate) fn encode_query_value(v: &str) -> String {
    utf8_percent_encode(v, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lexes a string literal the way Okta's grammar does: from an opening quote, a backslash escapes the next
    /// character, an unescaped quote closes. Returns the decoded content and the byte index after the close.
    fn lex_literal(s: &str) -> Option<(String, usize)> {
        let mut chars = s.char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?.1),
                '"' => return Some((out, i + 1)),
                c => out.push(c),
            }
        }
        None
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(quote("a@b.com").unwrap(), r#""a@b.com""#);
        assert_eq!(
            quote(r#"x" or id pr or "#).unwrap(),
            r#""x\" or id pr or ""#
        );
        assert_eq!(quote(r"a\").unwrap(), r#""a\\""#);
        assert_eq!(quote("a\nb"), Err(Unquotable));
        let q = UserQuery::login("jane@example.com").unwrap();
        assert_eq!(
            expression(&q).unwrap().unwrap(),
            r#"profile.login eq "jane@example.com" or profile.email eq "jane@example.com""#
        );
        let q = UserQuery::name_prefix("O'Br").unwrap();
        assert_eq!(
            expression(&q).unwrap().unwrap(),
            r#"profile.firstName sw "O'Br" or profile.lastName sw "O'Br""#
        );
        assert_eq!(
            encode_query_value(r#"profile.login eq "a+b@x.com""#),
            "profile.login%20eq%20%22a%2Bb%40x.com%22"
        );
    }

    proptest! {
        /// No input yields an unbalanced or unescaped quote: the literal lexes back to exactly the input and ends
        /// exactly at the end of the quoted text.
        #[test]
        fn no_input_escapes_its_literal(s in any::<String>()) {
            match quote(&s) {
                Ok(q) => {
                    let (content, end) = lex_literal(&q).expect("literal must close");
                    prop_assert_eq!(end, q.len());
                    prop_assert_eq!(content, s);
                }
                Err(Unquotable) => prop_assert!(s.chars().any(char::is_control)),
            }
        }

        /// Same property for quote- and backslash-heavy inputs, inside a whole expression.
        #[test]
        fn expressions_keep_input_inside_literals(s in r#"[a-z"\\ @.']{1,40}"#) {
            let q = UserQuery::name_prefix(&s);
            prop_assume!(q.is_ok());
            let q = q.unwrap();
            let e = expression(&q).unwrap().unwrap();
            let t = q.text().expose_pii().to_owned();
            let first = e.strip_prefix("profile.firstName sw ").expect("prefix");
            let (c1, end1) = lex_literal(first).expect("first literal");
            prop_assert_eq!(&c1, &t);
            let rest = &first[end1..];
            let second = rest.strip_prefix(" or profile.lastName sw ").expect("middle");
            let (c2, end2) = lex_literal(second).expect("second literal");
            prop_assert_eq!(&c2, &t);
            prop_assert_eq!(end2, second.len());
        }
    }
}
