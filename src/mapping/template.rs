//! The template language: literal text with `{{ expression }}` holes.
//!
//! ```text
//! expression := ["not"] operand ("|" filter)*
//! operand    := attribute-name | "string" | 'string' | true | false
//! filter     := name ["(" literal ("," literal)* ")"]
//! ```
//! Filters: `lower`, `upper`, `trim`, `default("x")`, `not`.

use std::fmt;

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
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Lower,
    Upper,
    Trim,
    Default(String),
    Not,
}

const FILTERS: &[&str] = &["lower", "upper", "trim", "default", "not"];

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
                '\\' => {
                    if let Some(next) = self.peek() {
                        self.pos += next.len_utf8();
                        value.push(next);
                    }
                }
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
            parts.push(Part::Expr(parse_expr(&mut cursor)?));
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
        self.parts
            .iter()
            .filter_map(|part| match part {
                Part::Expr(Expr { operand: Operand::Attribute(name), .. }) => Some(name.as_str()),
                _ => None,
            })
            .collect()
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

fn parse_expr(cursor: &mut Cursor<'_>) -> Result<Expr, TemplateError> {
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
            match cursor.word() {
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
            args.push(cursor.string()?);
            cursor.skip_ws();
            match cursor.peek() {
                Some(',') => cursor.pos += 1,
                Some(')') => {}
                _ => return Err(cursor.error("expected `,` or `)`")),
            }
        }
    }
    let arity_error = |expected: usize| TemplateError {
        offset: start,
        message: format!("filter `{name}` takes {expected} argument(s), found {}", args.len()),
    };
    let filter = match name.as_str() {
        "lower" | "upper" | "trim" | "not" if !args.is_empty() => return Err(arity_error(0)),
        "lower" => Filter::Lower,
        "upper" => Filter::Upper,
        "trim" => Filter::Trim,
        "not" => Filter::Not,
        "default" if args.len() != 1 => return Err(arity_error(1)),
        "default" => Filter::Default(args.remove(0)),
        other => {
            let hint = FILTERS
                .iter()
                .find(|known| strsim::jaro_winkler(known, other) > 0.8)
                .map(|known| format!("; did you mean `{known}`?"))
                .unwrap_or_default();
            return Err(TemplateError {
                offset: start,
                message: format!("unknown filter `{other}` (known: {}){hint}", FILTERS.join(", ")),
            });
        }
    };
    Ok(filter)
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
        ];
        for (text, offset, needle) in cases {
            let error = Template::parse(text).unwrap_err();
            assert_eq!(error.offset, offset, "{text}: {error}");
            assert!(error.message.contains(needle), "{text}: {error}");
        }
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
