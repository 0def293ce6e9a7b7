//! The OData query subset Graph offers on `/users`: `$filter` (`eq`, `ne`, `startsWith`, `endsWith`, `and`, `or`,
//! `not`, parentheses; string literals with `''` escapes, `true`/`false`/`null`) and `$search`
//! (`"property:term"` clauses joined by `AND`/`OR`). Advanced operators (`ne`, `not`, `endsWith`) are reported so
//! the caller can insist on `ConsistencyLevel: eventual` and `$count=true` as Graph does.

use serde_json::Value;

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Cmp { prop: String, op: Op, value: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    StartsWith,
    EndsWith,
}

/// Properties `$filter` accepts on users.
const FILTERABLE: &[&str] = &[
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "onPremisesSyncEnabled",
    "mobilePhone",
    "userType",
    "employeeId",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut lit = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("Unterminated string literal".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            lit.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(lit));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '/' | '.'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("Syntax error: character '{other}' is not valid")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    advanced: bool,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, t: &Tok) -> Result<(), String> {
        if self.next().as_ref() == Some(t) {
            Ok(())
        } else {
            Err("Syntax error in the filter expression".into())
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_kw("not") {
            self.pos += 1;
            self.advanced = true;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn prop(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Ident(p)) => {
                if FILTERABLE.contains(&p.as_str()) {
                    Ok(p)
                } else {
                    Err(format!(
                        "Could not find a property named '{p}' on type 'microsoft.graph.user'."
                    ))
                }
            }
            _ => Err("Syntax error: a property name was expected".into()),
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Ident(s)) if s == "true" => Ok(Value::Bool(true)),
            Some(Tok::Ident(s)) if s == "false" => Ok(Value::Bool(false)),
            Some(Tok::Ident(s)) if s == "null" => Ok(Value::Null),
            _ => Err("Syntax error: a literal was expected".into()),
        }
    }

    fn primary(&mut self) -> Result<Filter, String> {
        if self.toks.get(self.pos) == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            self.expect(&Tok::RParen)?;
            return Ok(f);
        }
        for (name, op) in [("startsWith", Op::StartsWith), ("endsWith", Op::EndsWith)] {
            if self.peek_kw(name) && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
                self.pos += 2;
                let prop = self.prop()?;
                self.expect(&Tok::Comma)?;
                let value = self.literal()?;
                self.expect(&Tok::RParen)?;
                if !value.is_string() {
                    return Err(format!("{name} needs a string literal"));
                }
                if op == Op::EndsWith {
                    self.advanced = true;
                }
                return Ok(Filter::Cmp { prop, op, value });
            }
        }
        let prop = self.prop()?;
        let op = match self.next() {
            Some(Tok::Ident(o)) if o == "eq" => Op::Eq,
            Some(Tok::Ident(o)) if o == "ne" => {
                self.advanced = true;
                Op::Ne
            }
            Some(Tok::Ident(o)) => return Err(format!("Unsupported operator '{o}'")),
            _ => return Err("Syntax error: an operator was expected".into()),
        };
        let value = self.literal()?;
        Ok(Filter::Cmp { prop, op, value })
    }
}

/// Parses a `$filter`. Returns the filter and whether it uses an advanced operator.
pub(crate) fn parse_filter(s: &str) -> Result<(Filter, bool), String> {
    let toks = tokenize(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        advanced: false,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err("Syntax error at the end of the filter expression".into());
    }
    Ok((f, p.advanced))
}

/// Evaluates a filter against a property getter.
pub(crate) fn eval(f: &Filter, get: &dyn Fn(&str) -> Option<Value>) -> bool {
    match f {
        Filter::Or(a, b) => eval(a, get) || eval(b, get),
        Filter::And(a, b) => eval(a, get) && eval(b, get),
        Filter::Not(a) => !eval(a, get),
        Filter::Cmp { prop, op, value } => {
            let actual = get(prop).unwrap_or(Value::Null);
            let lower = |v: &Value| v.as_str().map(str::to_lowercase);
            match op {
                Op::Eq | Op::Ne => {
                    let eq = match (&actual, value) {
                        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                        (a, b) => a == b,
                    };
                    (*op == Op::Eq) == eq
                }
                Op::StartsWith => match (lower(&actual), lower(value)) {
                    (Some(a), Some(b)) => a.starts_with(&b),
                    _ => false,
                },
                Op::EndsWith => match (lower(&actual), lower(value)) {
                    (Some(a), Some(b)) => a.ends_with(&b),
                    _ => false,
                },
            }
        }
    }
}

/// A parsed `$search`: clauses of `property:term`, joined by AND/OR (left to right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Search {
    pub clauses: Vec<(String, String)>,
    pub any: bool,
}

const SEARCHABLE: &[&str] = &[
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
];

/// Parses `$search`: `"displayName:jo"`, `"displayName:jo" OR "mail:jo"`.
pub(crate) fn parse_search(s: &str) -> Result<Search, String> {
    let mut clauses = Vec::new();
    let mut any = false;
    let mut rest = s.trim();
    loop {
        let Some(r) = rest.strip_prefix('"') else {
            return Err("Syntax error: the $search clause must be in double quotes".into());
        };
        let Some(end) = r.find('"') else {
            return Err("Syntax error: unterminated $search clause".into());
        };
        let clause = &r[..end];
        let Some((prop, term)) = clause.split_once(':') else {
            return Err(format!(
                "Invalid $search clause '{clause}': it must be in the form \"property:value\""
            ));
        };
        if !SEARCHABLE.contains(&prop) {
            return Err(format!(
                "Could not find a property named '{prop}' on type 'microsoft.graph.user'."
            ));
        }
        clauses.push((prop.to_owned(), term.trim().to_owned()));
        rest = r[end + 1..].trim();
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("OR ") {
            any = true;
            rest = r.trim();
        } else if let Some(r) = rest.strip_prefix("AND ") {
            rest = r.trim();
        } else {
            return Err("Syntax error: expected OR or AND between $search clauses".into());
        }
    }
    Ok(Search { clauses, any })
}

/// Graph's `$search` on directory objects is tokenised: every word of the term must start some word of the
/// property (case-insensitive), so `jo` finds "Mary Jones".
pub(crate) fn search_matches(s: &Search, get: &dyn Fn(&str) -> Option<Value>) -> bool {
    let one = |(prop, term): &(String, String)| {
        let Some(v) = get(prop).and_then(|v| v.as_str().map(str::to_lowercase)) else {
            return false;
        };
        let words: Vec<&str> = v
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let term = term.to_lowercase();
        let wanted: Vec<&str> = term
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        !wanted.is_empty()
            && wanted
                .iter()
                .all(|t| words.iter().any(|w| w.starts_with(t)))
    };
    if s.any {
        s.clauses.iter().any(one)
    } else {
        s.clauses.iter().all(one)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(p: &str) -> Option<Value> {
        match p {
            "displayName" => Some(json!("Mary O'Jones")),
            "userPrincipalName" => Some(json!("mary@example.com")),
            "accountEnabled" => Some(json!(true)),
            _ => None,
        }
    }

    #[test]
    fn filters_parse_and_evaluate() {
        let (f, adv) =
            parse_filter("startsWith(displayName,'mary') or userPrincipalName eq 'x'").unwrap();
        assert!(!adv);
        assert!(eval(&f, &user));
        let (f, _) =
            parse_filter("displayName eq 'Mary O''Jones' and accountEnabled eq true").unwrap();
        assert!(eval(&f, &user));
        let (f, adv) = parse_filter("not (accountEnabled eq true)").unwrap();
        assert!(adv);
        assert!(!eval(&f, &user));
        assert!(parse_filter("endsWith(mail,'@example.com')").unwrap().1);
        assert!(parse_filter("displayName eq 'unterminated").is_err());
        assert!(parse_filter("foo eq 'x'").is_err());
        assert!(parse_filter("displayName eq 'x' extra").is_err());
        // An injection attempt stays inside its literal.
        let (f, _) = parse_filter("userPrincipalName eq 'x'' or ''1'' eq ''1'").unwrap();
        assert!(!eval(&f, &user));
    }

    #[test]
    fn search_is_tokenised_prefix() {
        let s = parse_search("\"displayName:jo\"").unwrap();
        assert!(search_matches(&s, &user));
        let s = parse_search("\"displayName:ary\"").unwrap();
        assert!(!search_matches(&s, &user));
        let s = parse_search("\"displayName:zz\" OR \"userPrincipalName:mary\"").unwrap();
        assert!(search_matches(&s, &user));
        assert!(parse_search("displayName:jo").is_err());
        assert!(parse_search("\"jobTitle:x\"").is_err());
    }
}
