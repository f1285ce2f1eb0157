//! The template language: literal text with `{{ expression }}` holes.
//!
//! ```text
//! expression := ["not"] operand ("|" filter)*
//! operand    := call | attribute-name | "string" | 'string' | true | false
//! call       := ("coalesce" | "if" | "join") "(" expression ("," expression)* ")"
//! filter     := name ["(" literal ("," literal)* ")"]      literal := "string" | 'string' | integer
//! ```
//! Filters: `lower`, `upper`, `trim`, `default("x")`, `not`, `join(sep)`, `split(sep)`,
//! `replace(from, to)`, `regex_replace(pattern, to)`, `left(n)`, `mid(start, len)`,
//! `strip_spaces`, `normalize_diacritics`, `switch(default, key, value, ...)`, `date(format)`,
//! `e164(region)`. Calls: `coalesce(a, b, ...)`, `if(condition, then, else)`,
//! `join(sep, a, b, ...)`. Everything is checked here, so evaluation cannot fail on a name, an
//! arity, a pattern, a date format or a region.

use std::fmt;

use super::functions;

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
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Lower,
    Upper,
    Trim,
    Default(String),
    Not,
    Join(String),
    Split(String),
    Replace(String, String),
    RegexReplace(Pattern, String),
    Left(usize),
    Mid(usize, usize),
    StripSpaces,
    NormalizeDiacritics,
    Switch(String, Vec<(String, String)>),
    Date(String),
    E164(phonenumber::country::Id),
}

/// A compiled regular expression, compared by its text.
#[derive(Debug, Clone)]
pub(crate) struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

const FILTERS: &[&str] = &[
    "lower",
    "upper",
    "trim",
    "default",
    "not",
    "join",
    "split",
    "replace",
    "regex_replace",
    "left",
    "mid",
    "strip_spaces",
    "normalize_diacritics",
    "switch",
    "date",
    "e164",
];

const CALLS: &[&str] = &["coalesce", "if", "join"];

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
                Operand::Text(_) | Operand::Bool(_) => {}
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

fn did_you_mean(known: &[&str], name: &str) -> String {
    known
        .iter()
        .find(|k| strsim::jaro_winkler(k, name) > 0.8)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
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
            if cursor.peek().is_some_and(|c| c.is_ascii_digit()) {
                let rest = &cursor.text[cursor.pos..];
                let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
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

/// A filter from its name and literal arguments, checked: arity, numbers, patterns, formats.
fn build_filter(name: &str, args: &[String]) -> Result<Filter, String> {
    let arity = match name {
        "lower" | "upper" | "trim" | "not" | "strip_spaces" | "normalize_diacritics" => Some(0),
        "default" | "join" | "split" | "left" | "date" | "e164" => Some(1),
        "replace" | "regex_replace" | "mid" => Some(2),
        _ => None,
    };
    if let Some(expected) = arity.filter(|n| *n != args.len()) {
        return Err(format!("filter `{name}` takes {expected} argument(s), found {}", args.len()));
    }
    let number =
        |text: &str| text.parse::<usize>().map_err(|_| format!("filter `{name}` takes whole numbers, found `{text}`"));
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    Ok(match name {
        "lower" => Filter::Lower,
        "upper" => Filter::Upper,
        "trim" => Filter::Trim,
        "not" => Filter::Not,
        "strip_spaces" => Filter::StripSpaces,
        "normalize_diacritics" => Filter::NormalizeDiacritics,
        "default" => Filter::Default(arg(0)),
        "join" => Filter::Join(arg(0)),
        "split" if arg(0).is_empty() => return Err("`split` needs a non-empty separator".into()),
        "split" => Filter::Split(arg(0)),
        "replace" if arg(0).is_empty() => return Err("`replace` needs a non-empty text to replace".into()),
        "replace" => Filter::Replace(arg(0), arg(1)),
        "regex_replace" => {
            let regex = regex::Regex::new(&args[0])
                .map_err(|e| format!("`{}` is not a valid regular expression: {e}", args[0]))?;
            Filter::RegexReplace(Pattern(regex), arg(1))
        }
        "left" => Filter::Left(number(&args[0])?),
        "mid" => Filter::Mid(number(&args[0])?, number(&args[1])?),
        "date" => {
            functions::check_date_format(&args[0]).map_err(|e| format!("`date(\"{}\")`: {e}", args[0]))?;
            Filter::Date(arg(0))
        }
        "e164" => Filter::E164(functions::phone_region(&args[0])?),
        "switch" if args.len() % 2 == 0 => {
            return Err(format!(
                "filter `switch` takes a default and then key, value pairs: `switch(\"Other\", \"Sales\", \"S\")`, found {} argument(s)",
                args.len()
            ));
        }
        "switch" => {
            let cases = args[1..].chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
            Filter::Switch(arg(0), cases)
        }
        other => {
            return Err(format!(
                "unknown filter `{other}` (known: {}){}",
                FILTERS.join(", "),
                did_you_mean(FILTERS, other)
            ));
        }
    })
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
