//! Okta's `search=` and `filter=` expression language (the subset fctr needs, parsed properly):
//! `attr op "value"` with `eq sw co gt ge lt le`, `attr pr`, `and`/`or` (and binds tighter), parentheses, and
//! backslash escapes inside double-quoted strings.

use super::state::User;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Cmp { attr: String, op: Op, value: String },
    Present(String),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Sw,
    Co,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::LParen);
            }
            ')' => {
                chars.next();
                out.push(Tok::RParen);
            }
            '"' => {
                chars.next();
                let mut v = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(e) => v.push(e),
                            None => return Err("dangling escape".into()),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated string".into());
                }
                out.push(Tok::Str(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Word(attr)) => {
                if !attr.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    || !attr
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                {
                    return Err(format!("bad attribute {attr}"));
                }
                let op = match self.next() {
                    Some(Tok::Word(op)) => op.to_ascii_lowercase(),
                    _ => return Err("missing operator".into()),
                };
                let op = match op.as_str() {
                    "pr" => return Ok(Expr::Present(attr)),
                    "eq" => Op::Eq,
                    "sw" => Op::Sw,
                    "co" => Op::Co,
                    "gt" => Op::Gt,
                    "ge" => Op::Ge,
                    "lt" => Op::Lt,
                    "le" => Op::Le,
                    other => return Err(format!("unsupported operator {other}")),
                };
                let value = match self.next() {
                    Some(Tok::Str(v)) => v,
                    Some(Tok::Word(w))
                        if w == "true"
                            || w == "false"
                            || w == "null"
                            || w.parse::<f64>().is_ok() =>
                    {
                        w
                    }
                    _ => return Err("missing value".into()),
                };
                if op == Op::Co
                    && !matches!(
                        attr.as_str(),
                        "profile.firstName"
                            | "profile.lastName"
                            | "profile.email"
                            | "profile.login"
                    )
                {
                    return Err(
                        "co is only supported on firstName, lastName, email and login".into(),
                    );
                }
                Ok(Expr::Cmp { attr, op, value })
            }
            _ => Err("expected an expression".into()),
        }
    }
}

/// Parses a `search=` expression.
pub(crate) fn parse(s: &str) -> Result<Expr, String> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err("trailing input".into());
    }
    Ok(e)
}

/// Parses a `filter=` expression: only `eq` (and range operators on `lastUpdated`), on the filterable fields.
pub(crate) fn parse_filter(s: &str) -> Result<Expr, String> {
    let e = parse(s)?;
    fn check(e: &Expr) -> Result<(), String> {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => check(a).and(check(b)),
            Expr::Present(_) => Err("pr is not supported in filter".into()),
            Expr::Cmp { attr, op, .. } => {
                let ok_attr = matches!(
                    attr.as_str(),
                    "status"
                        | "lastUpdated"
                        | "id"
                        | "profile.login"
                        | "profile.email"
                        | "profile.firstName"
                        | "profile.lastName"
                );
                let ok_op = *op == Op::Eq
                    || (attr == "lastUpdated" && matches!(op, Op::Gt | Op::Ge | Op::Lt | Op::Le));
                if ok_attr && ok_op {
                    Ok(())
                } else {
                    Err(format!("unsupported filter on {attr}"))
                }
            }
        }
    }
    check(&e)?;
    Ok(e)
}

/// Evaluates an expression against a user (string comparisons are case-insensitive).
pub(crate) fn eval(e: &Expr, u: &User) -> bool {
    match e {
        Expr::And(a, b) => eval(a, u) && eval(b, u),
        Expr::Or(a, b) => eval(a, u) || eval(b, u),
        Expr::Present(attr) => u.attr(attr).is_some_and(|v| !v.is_empty()),
        Expr::Cmp { attr, op, value } => {
            let Some(actual) = u.attr(attr) else {
                return false;
            };
            let a = actual.to_lowercase();
            let v = value.to_lowercase();
            match op {
                Op::Eq => a == v,
                Op::Sw => a.starts_with(&v),
                Op::Co => a.contains(&v),
                Op::Gt => a > v,
                Op::Ge => a >= v,
                Op::Lt => a < v,
                Op::Le => a <= v,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_or_precedence_and_escapes() {
        let e = parse(r#"profile.login eq "a\"b@example.com" or profile.firstName sw "Al" and status eq "ACTIVE""#)
            .unwrap();
        match e {
            Expr::Or(a, b) => {
                assert_eq!(
                    *a,
                    Expr::Cmp {
                        attr: "profile.login".into(),
                        op: Op::Eq,
                        value: "a\"b@example.com".into()
                    }
                );
                assert!(matches!(*b, Expr::And(_, _)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "profile.login eq",
            "profile.login \"x\"",
            "profile.login eq \"x",
            "profile.login ne \"x\"",
            "(profile.login eq \"x\"",
            "profile.login eq \"x\" and",
            "profile.login eq \"x\" extra",
            "profile.mobilePhone co \"5\"",
            "\"x\" eq profile.login",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse_filter("profile.login sw \"a\"").is_err());
        assert!(parse_filter("status eq \"ACTIVE\"").is_ok());
    }
}
