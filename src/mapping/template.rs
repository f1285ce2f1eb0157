//! The template language: literal text with `{{ expression }}` holes.
//!
//! ```text
//! expression := ["not"] operand ("|" filter)*
//! operand    := call | attribute-name | "string" | 'string' | true | false
//! call       := name "(" [expression ("," expression)*] ")"
//! filter     := name ["(" literal ("," literal)* ")"]      literal := "string" | 'string' | integer
//! ```
//! Filters: `lower`, `upper`, `trim`, `default("x")`, `not`, `join(sep)`, `split(sep)`,
//! `replace(from, to)`, `regex_replace(pattern, to)`, `left(n)`, `mid(start, len)`,
//! `strip_spaces`, `normalize_diacritics`, `switch(default, key, value, ...)`, `date(format)`,
//! `e164(region)`, `date_add(days)`, `title_case`, `word(n, separators)`, `append(suffix)`,
//! `first`, `last`, `item(n)`, `count` (`filters.rs`). Calls: `coalesce(a, b, ...)`,
//! `if(condition, then, else)`, `join(sep, a, b, ...)`, the conditions `eq`, `ne`, `contains`,
//! `starts_with`, `ends_with` (two values) and `is_empty` (one), `now()`, `date_diff(from, to)`.
//! Everything is checked here, so evaluation cannot fail on a name, an arity, a pattern, a date
//! format or a region.

use std::fmt;

pub(crate) use super::filters::Filter;
use super::filters::build_filter;
use super::functions::did_you_mean;

/// A parsed template. Parsing checks filter names and arities, so evaluation cannot fail on them.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub operand: Operand,
    pub negated: bool,
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Attribute(String),
    Text(String),
    Bool(bool),
    Call(Call),
}

/// Functions of several expressions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    /// The first non-empty value.
    Coalesce(Vec<Expr>),
    /// `then` when the condition is true, else `otherwise`.
    If(Box<[Expr; 3]>),
    /// The non-empty values joined by the separator.
    Join(String, Vec<Expr>),
    /// A condition on two values, compared without case: `eq`, `ne`, `contains`,
    /// `starts_with`, `ends_with`.
    Compare(Comparison, Box<[Expr; 2]>),
    /// Whether a value is empty.
    IsEmpty(Box<Expr>),
    /// The run's clock, as an RFC 3339 time.
    Now,
    /// Whole days from the first date to the second.
    DateDiff(Box<[Expr; 2]>),
}

/// How `Call::Compare` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Eq,
    Ne,
    Contains,
    StartsWith,
    EndsWith,
}

const CALLS: &[&str] =
    &["coalesce", "if", "join", "eq", "ne", "contains", "starts_with", "ends_with", "is_empty", "now", "date_diff"];

/// Why a template did not parse; `offset` is a byte offset into the template text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// Whether `text` can be a source attribute name: letters, digits, `_`, `-`, `.`, `;`
/// (LDAP options such as `member;range=0-1499` are not names a user maps).
pub fn is_attribute_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with([' ', '\t']) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn error(&self, message: impl Into<String>) -> TemplateError {
        TemplateError { offset: self.pos, message: message.into() }
    }

    fn word(&mut self) -> Option<&str> {
        let start = self.pos;
        let len = self.text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(self.text.len() - start);
        if len == 0 {
            return None;
        }
        self.pos += len;
        Some(&self.text[start..start + len])
    }

    fn string(&mut self) -> Result<String, TemplateError> {
        let Some(quote) = self.peek().filter(|c| matches!(c, '"' | '\'')) else {
            return Err(self.error("expected a quoted string"));
        };
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.pos = start;
                return Err(self.error("unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                // `\"` and `\\` escape; any other backslash stays, so regular expressions read
                // as written (`\d+`).
                '\\' => match self.peek() {
                    Some(next) if next == quote || next == '\\' => {
                        self.pos += next.len_utf8();
                        value.push(next);
                    }
                    _ => value.push('\\'),
                },
                c if c == quote => return Ok(value),
                c => value.push(c),
            }
        }
    }
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest_start = 0;
        while let Some(open) = text[rest_start..].find("{{").map(|i| rest_start + i) {
            if open > rest_start {
                parts.push(Part::Text(text[rest_start..open].to_owned()));
            }
            let close = text[open..]
                .find("}}")
                .map(|i| open + i)
                .ok_or(TemplateError { offset: open, message: "`{{` is never closed by `}}`".into() })?;
            let mut cursor = Cursor { text: &text[..close], pos: open + 2 };
            parts.push(Part::Expr(parse_expr(&mut cursor, false)?));
            rest_start = close + 2;
        }
        if let Some(stray) = text[rest_start..].find("}}") {
            return Err(TemplateError { offset: rest_start + stray, message: "`}}` without `{{`".into() });
        }
        if rest_start < text.len() {
            parts.push(Part::Text(text[rest_start..].to_owned()));
        }
        Ok(Self { source: text.to_owned(), parts })
    }

    /// Attribute names the template reads.
    pub fn attributes(&self) -> Vec<&str> {
        fn walk<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) {
            match &expr.operand {
                Operand::Attribute(name) => out.push(name),
                Operand::Call(Call::Coalesce(args) | Call::Join(_, args)) => args.iter().for_each(|a| walk(a, out)),
                Operand::Call(Call::If(args)) => args.iter().for_each(|a| walk(a, out)),
                Operand::Call(Call::Compare(_, args) | Call::DateDiff(args)) => args.iter().for_each(|a| walk(a, out)),
                Operand::Call(Call::IsEmpty(arg)) => walk(arg, out),
                Operand::Call(Call::Now) | Operand::Text(_) | Operand::Bool(_) => {}
            }
        }
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Expr(expr) = part {
                walk(expr, &mut out);
            }
        }
        out
    }

    /// Whether the template reads the run's clock (`now()`): what it makes then changes with time.
    pub fn reads_clock(&self) -> bool {
        fn walk(expr: &Expr) -> bool {
            match &expr.operand {
                Operand::Call(Call::Now) => true,
                Operand::Call(Call::Coalesce(args) | Call::Join(_, args)) => args.iter().any(walk),
                Operand::Call(Call::If(args)) => args.iter().any(walk),
                Operand::Call(Call::Compare(_, args) | Call::DateDiff(args)) => args.iter().any(walk),
                Operand::Call(Call::IsEmpty(arg)) => walk(arg),
                Operand::Attribute(_) | Operand::Text(_) | Operand::Bool(_) => false,
            }
        }
        self.parts.iter().any(|part| matches!(part, Part::Expr(expr) if walk(expr)))
    }

    /// Whether the template could have produced `value`: its literal text before the first and
    /// after the last expression must frame it. Used to recognise our own ownership markers.
    pub fn could_produce(&self, value: &str) -> bool {
        let prefix = match self.parts.first() {
            Some(Part::Text(t)) => t.as_str(),
            _ => "",
        };
        let suffix = match self.parts.last() {
            Some(Part::Text(t)) if self.parts.len() > 1 => t.as_str(),
            _ => "",
        };
        if self.parts.iter().all(|p| matches!(p, Part::Text(_))) {
            return value == self.source;
        }
        value.len() > prefix.len() + suffix.len() && value.starts_with(prefix) && value.ends_with(suffix)
    }
}

/// Parses one expression; `nested` inside a call, where `,` and `)` end it.
fn parse_expr(cursor: &mut Cursor<'_>, nested: bool) -> Result<Expr, TemplateError> {
    cursor.skip_ws();
    let mut negated = false;
    let save = cursor.pos;
    if cursor.word() == Some("not") {
        cursor.skip_ws();
        if cursor.peek().is_some_and(|c| c != '|') {
            negated = true;
        } else {
            cursor.pos = save;
        }
    } else {
        cursor.pos = save;
    }
    let operand = match cursor.peek() {
        Some('"' | '\'') => Operand::Text(cursor.string()?),
        Some(_) => {
            let start = cursor.pos;
            let word = cursor.word().map(str::to_owned);
            cursor.skip_ws();
            let is_call = cursor.peek() == Some('(');
            match word.as_deref() {
                Some(name) if is_call => Operand::Call(parse_call(cursor, name, start)?),
                Some("true") => Operand::Bool(true),
                Some("false") => Operand::Bool(false),
                Some(name) if is_attribute_name(name) => Operand::Attribute(name.to_owned()),
                _ => {
                    cursor.pos = start;
                    return Err(cursor.error("expected an attribute name, a quoted string, `true` or `false`"));
                }
            }
        }
        None => return Err(cursor.error("empty expression")),
    };
    let mut filters = Vec::new();
    loop {
        cursor.skip_ws();
        match cursor.peek() {
            None => break,
            Some(',' | ')') if nested => break,
            Some('|') => {
                cursor.pos += 1;
                cursor.skip_ws();
                filters.push(parse_filter(cursor)?);
            }
            Some(c) => return Err(cursor.error(format!("unexpected `{c}`; filters are applied with `|`"))),
        }
    }
    Ok(Expr { operand, negated, filters })
}

/// Parses `name(expr, ...)` from the `(`; `start` is where the name began.
fn parse_call(cursor: &mut Cursor<'_>, name: &str, start: usize) -> Result<Call, TemplateError> {
    cursor.pos += 1;
    let mut args = Vec::new();
    loop {
        cursor.skip_ws();
        if cursor.peek() == Some(')') && args.is_empty() {
            cursor.pos += 1;
            break;
        }
        args.push(parse_expr(cursor, true)?);
        cursor.skip_ws();
        match cursor.peek() {
            Some(',') => cursor.pos += 1,
            Some(')') => {
                cursor.pos += 1;
                break;
            }
            _ => return Err(cursor.error(format!("expected `,` or `)` in `{name}(...)`"))),
        }
    }
    let error = |message: String| TemplateError { offset: start, message };
    match name {
        "coalesce" if args.len() >= 2 => Ok(Call::Coalesce(args)),
        "coalesce" => Err(error("`coalesce` takes two or more values".into())),
        "if" => match <[Expr; 3]>::try_from(args) {
            Ok(args) => Ok(Call::If(Box::new(args))),
            Err(args) => Err(error(format!("`if` takes 3 arguments (condition, then, else), found {}", args.len()))),
        },
        "eq" | "ne" | "contains" | "starts_with" | "ends_with" | "date_diff" => {
            let found = args.len();
            let pair =
                <[Expr; 2]>::try_from(args).map_err(|_| error(format!("`{name}` takes 2 arguments, found {found}")))?;
            let comparison = match name {
                "eq" => Comparison::Eq,
                "ne" => Comparison::Ne,
                "contains" => Comparison::Contains,
                "starts_with" => Comparison::StartsWith,
                "ends_with" => Comparison::EndsWith,
                _ => return Ok(Call::DateDiff(Box::new(pair))),
            };
            Ok(Call::Compare(comparison, Box::new(pair)))
        }
        "is_empty" => match <[Expr; 1]>::try_from(args) {
            Ok([arg]) => Ok(Call::IsEmpty(Box::new(arg))),
            Err(args) => Err(error(format!("`is_empty` takes 1 argument, found {}", args.len()))),
        },
        "now" if args.is_empty() => Ok(Call::Now),
        "now" => Err(error("`now()` takes no arguments".into())),
        "join" => {
            let separator = match args.first() {
                Some(Expr { operand: Operand::Text(text), negated: false, filters }) if filters.is_empty() => {
                    text.clone()
                }
                _ => return Err(error("`join` takes a quoted separator first: `join(\" \", givenName, sn)`".into())),
            };
            Ok(Call::Join(separator, args.split_off(1)))
        }
        other => Err(error(format!(
            "unknown function `{other}` (known: {}){}",
            CALLS.join(", "),
            did_you_mean(CALLS, other)
        ))),
    }
}

fn parse_filter(cursor: &mut Cursor<'_>) -> Result<Filter, TemplateError> {
    let start = cursor.pos;
    let Some(name) = cursor.word().map(str::to_owned) else {
        return Err(cursor.error("expected a filter name after `|`"));
    };
    let mut args = Vec::new();
    cursor.skip_ws();
    if cursor.peek() == Some('(') {
        cursor.pos += 1;
        loop {
            cursor.skip_ws();
            if cursor.peek() == Some(')') {
                cursor.pos += 1;
                break;
            }
            if cursor.peek().is_some_and(|c| c.is_ascii_digit() || c == '-') {
                let rest = &cursor.text[cursor.pos..];
                let digits = rest[1..].find(|c: char| !c.is_ascii_digit()).map_or(rest.len(), |i| i + 1);
                args.push(rest[..digits].to_owned());
                cursor.pos += digits;
            } else {
                args.push(cursor.string()?);
            }
            cursor.skip_ws();
            match cursor.peek() {
                Some(',') => cursor.pos += 1,
                Some(')') => {}
                _ => return Err(cursor.error("expected `,` or `)`")),
            }
        }
    }
    build_filter(&name, &args).map_err(|message| TemplateError { offset: start, message })
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_and_expressions() {
        let t = Template::parse("{{ givenName }} {{ sn | upper }}").unwrap();
        assert_eq!(t.attributes(), vec!["givenName", "sn"]);
        assert_eq!(t.parts.len(), 3);
        let t = Template::parse("{{ not disabled }}").unwrap();
        assert!(matches!(&t.parts[0], Part::Expr(Expr { negated: true, .. })));
        let t = Template::parse(r#"{{ title | default("Agent") | trim }}"#).unwrap();
        assert!(
            matches!(&t.parts[0], Part::Expr(e) if e.filters == vec![Filter::Default("Agent".into()), Filter::Trim])
        );
    }

    #[test]
    fn errors_point_into_the_template() {
        let cases = [
            ("{{ mail | lowr }}", 10, "did you mean `lower`"),
            ("{{ mail", 0, "never closed"),
            ("{{ }}", 3, "empty expression"),
            ("{{ mail lower }}", 8, "filters are applied with `|`"),
            ("{{ mail | default }}", 10, "takes 1 argument"),
            (r#"{{ mail | default("x }}"#, 18, "unterminated"),
            ("x }}", 2, "without `{{`"),
            ("{{ coalesc(a, b) }}", 3, "did you mean `coalesce`"),
            ("{{ coalesce(a) }}", 3, "two or more"),
            (r#"{{ if(a, "x") }}"#, 3, "`if` takes 3 arguments"),
            ("{{ join(a, b) }}", 3, "quoted separator first"),
            ("{{ coalesce(a b) }}", 14, "filters are applied with `|`"),
            ("{{ coalesce(a, b }}", 17, "expected `,` or `)`"),
            (r#"{{ a | switch("x", "y") }}"#, 7, "key, value pairs"),
            (r#"{{ a | regex_replace("(", "") }}"#, 7, "not a valid regular expression"),
            (r#"{{ a | date("%~") }}"#, 7, "date(\"%~\")"),
            (r#"{{ a | e164("XX") }}"#, 7, "not a region code"),
            (r#"{{ a | left("x") }}"#, 7, "whole numbers"),
            ("{{ a | mid(1) }}", 7, "takes 2 argument(s)"),
            (r#"{{ a | split("") }}"#, 7, "non-empty separator"),
        ];
        for (text, offset, needle) in cases {
            let error = Template::parse(text).unwrap_err();
            assert_eq!(error.offset, offset, "{text}: {error}");
            assert!(error.message.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn calls_read_the_attributes_of_their_arguments() {
        let t =
            Template::parse(r#"{{ coalesce(nickName, if(disabled, "x", givenName)) }} {{ join(" ", a, b | lower) }}"#)
                .unwrap();
        assert_eq!(t.attributes(), vec!["nickName", "disabled", "givenName", "a", "b"]);
    }

    #[test]
    fn recognises_what_it_could_produce() {
        let t = Template::parse("scimform:{{ id }}").unwrap();
        assert!(t.could_produce("scimform:42"));
        assert!(!t.could_produce("other:42"));
        assert!(!t.could_produce("scimform:"));
        let t = Template::parse("{{ objectGUID }}").unwrap();
        assert!(t.could_produce("anything"));
    }
}
