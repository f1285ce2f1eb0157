//! Evaluating a mapping over one source record (pure).
//!
//! Result types: an expression standing alone keeps its type (a boolean stays a boolean, a
//! multi-valued attribute stays a list); text around expressions makes a string. Empty text, empty
//! lists and missing attributes evaluate to `None`: empty values are never sent.

use serde_json::Value;

use super::Mapping;
use super::functions;
use super::template::{Call, Comparison, Expr, Filter, Operand, Part, Template};
use crate::record::{AttrValue, SourceRecord};

/// A mapping that cannot be evaluated for one record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

impl Val {
    fn from_attr(value: &AttrValue) -> Self {
        match value {
            AttrValue::Text(t) => Val::Text(t.clone()),
            AttrValue::Bool(b) => Val::Bool(*b),
            AttrValue::List(items) => Val::List(items.clone()),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Bool(_) => false,
            Val::Text(t) => t.is_empty(),
            Val::List(items) => items.iter().all(String::is_empty),
        }
    }

    fn into_json(self) -> Option<Value> {
        if self.is_empty() {
            return None;
        }
        Some(match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::Text(t) => Value::String(t),
            Val::List(mut items) => {
                items.retain(|i| !i.is_empty());
                // A multi-valued source attribute with one value maps onto single-valued targets.
                if items.len() == 1 {
                    Value::String(items.remove(0))
                } else {
                    Value::Array(items.into_iter().map(Value::String).collect())
                }
            }
        })
    }

    fn as_text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Text(t) => t.clone(),
            Val::List(items) => items.join(","),
        }
    }

    fn map_text(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            Val::Text(t) => Val::Text(f(&t)),
            Val::List(items) => Val::List(items.iter().map(|i| f(i)).collect()),
            other => other,
        }
    }

    /// Like `map_text` for functions that can refuse a value; empty values are left alone.
    fn try_map_text(self, f: impl Fn(&str) -> Result<String, String>) -> Result<Self, EvalError> {
        let apply =
            |t: &str| if t.is_empty() { Ok(String::new()) } else { f(t).map_err(|message| EvalError { message }) };
        Ok(match self {
            Val::Text(t) => Val::Text(apply(&t)?),
            Val::List(items) => Val::List(items.iter().map(|i| apply(i)).collect::<Result<_, _>>()?),
            other => other,
        })
    }

    /// The values as a flat list of non-empty texts.
    fn texts(self) -> Vec<String> {
        match self {
            Val::Null => Vec::new(),
            Val::Bool(b) => vec![b.to_string()],
            Val::Text(t) => vec![t],
            Val::List(items) => items,
        }
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect()
    }

    /// `what` names the function that wants a boolean, for the error.
    fn truthy(&self, what: &str) -> Result<bool, EvalError> {
        match self {
            Val::Null => Ok(false),
            Val::Bool(b) => Ok(*b),
            Val::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" | "" => Ok(false),
                _ => Err(EvalError { message: format!("`{what}` expects a boolean, found the text `{t}`") }),
            },
            Val::List(_) => Err(EvalError { message: format!("`{what}` expects a boolean, found a list") }),
        }
    }
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Null => f.write_str("(empty)"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Text(t) => write!(f, "{}", Value::String(t.clone())),
            Val::List(items) => write!(f, "{}", Value::from(items.clone())),
        }
    }
}

/// What an evaluation goes by: the run's clock (for `now()`), and, for `explain`, the steps it
/// took (each attribute read and each filter's result).
#[derive(Debug, Default)]
pub struct Trace {
    enabled: bool,
    pub steps: Vec<String>,
    now: Option<jiff::Timestamp>,
}

impl Trace {
    fn note(&mut self, step: impl FnOnce() -> String) {
        if self.enabled {
            self.steps.push(step());
        }
    }
}

/// Evaluates a mapping; `Ok(None)` means "no value" (not sent). `now()` has no clock here (an
/// error): a run evaluates with `evaluate_at`.
pub fn evaluate(mapping: &Mapping, record: &SourceRecord) -> Result<Option<Value>, EvalError> {
    evaluate_traced(mapping, record, &mut Trace::default())
}

/// `evaluate` at the run's clock, which `now()` reads.
pub fn evaluate_at(
    mapping: &Mapping,
    record: &SourceRecord,
    now: Option<jiff::Timestamp>,
) -> Result<Option<Value>, EvalError> {
    evaluate_traced(mapping, record, &mut Trace { now, ..Trace::default() })
}

/// `evaluate_at`, also returning each step it took: what `explain` shows.
pub fn explain(
    mapping: &Mapping,
    record: &SourceRecord,
    now: Option<jiff::Timestamp>,
) -> (Result<Option<Value>, EvalError>, Vec<String>) {
    let mut trace = Trace { enabled: true, steps: Vec::new(), now };
    let result = evaluate_traced(mapping, record, &mut trace);
    (result, trace.steps)
}

fn evaluate_traced(mapping: &Mapping, record: &SourceRecord, trace: &mut Trace) -> Result<Option<Value>, EvalError> {
    match mapping {
        // A reference reads as the text that names the other user; the planner resolves it.
        Mapping::Attribute(name) | Mapping::Reference(name) => {
            let value = lookup(record, name);
            trace.note(|| format!("{name} = {value}"));
            Ok(value.into_json())
        }
        Mapping::Constant(value) => Ok(Some(value.clone()).filter(|v| !is_empty_json(v))),
        Mapping::Template(template) => evaluate_template(template, record, trace),
    }
}

fn is_empty_json(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn lookup(record: &SourceRecord, name: &str) -> Val {
    match record.get(name) {
        Some(value) => Val::from_attr(value),
        None if name.eq_ignore_ascii_case("disabled") => Val::Bool(record.disabled),
        None if name.eq_ignore_ascii_case("id") => Val::Text(record.id.clone()),
        None => Val::Null,
    }
}

fn evaluate_template(
    template: &Template,
    record: &SourceRecord,
    trace: &mut Trace,
) -> Result<Option<Value>, EvalError> {
    if let [Part::Expr(expr)] = template.parts.as_slice() {
        return Ok(evaluate_expr(expr, record, trace)?.into_json());
    }
    let mut out = String::new();
    for part in &template.parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Expr(expr) => out.push_str(&evaluate_expr(expr, record, trace)?.as_text()),
        }
    }
    Ok(Val::Text(out).into_json())
}

fn evaluate_expr(expr: &Expr, record: &SourceRecord, trace: &mut Trace) -> Result<Val, EvalError> {
    let mut value = match &expr.operand {
        Operand::Attribute(name) => {
            let value = lookup(record, name);
            trace.note(|| format!("{name} = {value}"));
            value
        }
        Operand::Text(text) => Val::Text(text.clone()),
        Operand::Bool(b) => Val::Bool(*b),
        Operand::Call(call) => evaluate_call(call, record, trace)?,
    };
    if expr.negated {
        value = Val::Bool(!value.truthy("not")?);
        trace.note(|| format!("not -> {value}"));
    }
    for filter in &expr.filters {
        value = apply_filter(filter, value)?;
        trace.note(|| format!("| {} -> {value}", filter_name(filter)));
    }
    Ok(value)
}

fn evaluate_call(call: &Call, record: &SourceRecord, trace: &mut Trace) -> Result<Val, EvalError> {
    let value = match call {
        Call::Coalesce(args) => {
            let mut found = Val::Null;
            for arg in args {
                let value = evaluate_expr(arg, record, trace)?;
                if !value.is_empty() {
                    found = value;
                    break;
                }
            }
            trace.note(|| format!("coalesce(...) -> {found}"));
            found
        }
        Call::If(args) => {
            let [condition, then, otherwise] = args.as_ref();
            let chosen = if evaluate_expr(condition, record, trace)?.truthy("if")? { then } else { otherwise };
            let value = evaluate_expr(chosen, record, trace)?;
            trace.note(|| format!("if(...) -> {value}"));
            value
        }
        Call::Join(separator, args) => {
            let mut texts = Vec::new();
            for arg in args {
                texts.extend(evaluate_expr(arg, record, trace)?.texts());
            }
            let value = Val::Text(texts.join(separator));
            trace.note(|| format!("join(...) -> {value}"));
            value
        }
        Call::Compare(comparison, args) => {
            let [a, b] = args.as_ref();
            let (a, b) = (evaluate_expr(a, record, trace)?, evaluate_expr(b, record, trace)?);
            let value = Val::Bool(compare(*comparison, a, &b));
            trace.note(|| format!("{}(...) -> {value}", comparison_name(*comparison)));
            value
        }
        Call::IsEmpty(arg) => {
            let value = Val::Bool(evaluate_expr(arg, record, trace)?.is_empty());
            trace.note(|| format!("is_empty(...) -> {value}"));
            value
        }
        Call::Now => {
            let now = trace.now.ok_or_else(|| EvalError { message: "`now()` has no clock here".into() })?;
            let value = Val::Text(now.to_string());
            trace.note(|| format!("now() -> {value}"));
            value
        }
        Call::DateDiff(args) => {
            let [from, to] = args.as_ref();
            let (from, to) = (evaluate_expr(from, record, trace)?, evaluate_expr(to, record, trace)?);
            let value = if from.is_empty() || to.is_empty() {
                Val::Null
            } else {
                let days =
                    functions::date_diff(&from.as_text(), &to.as_text()).map_err(|message| EvalError { message })?;
                Val::Text(days.to_string())
            };
            trace.note(|| format!("date_diff(...) -> {value}"));
            value
        }
    };
    Ok(value)
}

fn apply_filter(filter: &Filter, value: Val) -> Result<Val, EvalError> {
    Ok(match filter {
        Filter::Lower => value.map_text(str::to_lowercase),
        Filter::Upper => value.map_text(str::to_uppercase),
        Filter::Trim => value.map_text(|s| s.trim().to_owned()),
        Filter::Default(fallback) if value.is_empty() => Val::Text(fallback.clone()),
        Filter::Default(_) => value,
        Filter::Not => Val::Bool(!value.truthy("not")?),
        Filter::Join(separator) => match value {
            Val::List(_) => Val::Text(value.texts().join(separator)),
            other => other,
        },
        Filter::Split(separator) => {
            let parts: Vec<String> = value
                .texts()
                .iter()
                .flat_map(|t| t.split(separator.as_str()))
                .map(str::to_owned)
                .filter(|p| !p.is_empty())
                .collect();
            if parts.is_empty() { Val::Null } else { Val::List(parts) }
        }
        Filter::Replace(from, to) => value.map_text(|s| s.replace(from.as_str(), to)),
        Filter::RegexReplace(pattern, to) => value.map_text(|s| pattern.0.replace_all(s, to.as_str()).into_owned()),
        Filter::Left(n) => value.map_text(|s| functions::left(s, *n)),
        Filter::Mid(start, len) => value.map_text(|s| functions::mid(s, *start, *len)),
        Filter::StripSpaces => value.map_text(functions::strip_spaces),
        Filter::NormalizeDiacritics => value.map_text(functions::normalize_diacritics),
        Filter::Switch(default, _) if value.is_empty() => Val::Text(default.clone()),
        Filter::Switch(default, cases) => value.map_text(|s| functions::switch(s, default, cases).to_owned()),
        Filter::Date(format) => value.try_map_text(|s| functions::format_date(s, format))?,
        Filter::E164(region) => value.try_map_text(|s| functions::e164(s, *region))?,
        Filter::DateAdd(days) => value.try_map_text(|s| functions::date_add(s, *days))?,
        Filter::TitleCase => value.map_text(functions::title_case),
        Filter::Word(n, separators) => value.map_text(|s| functions::word(s, *n, separators)),
        Filter::Append(suffix) if value.is_empty() => value,
        Filter::Append(suffix) => value.map_text(|s| format!("{s}{suffix}")),
        Filter::First => value.texts().into_iter().next().map_or(Val::Null, Val::Text),
        Filter::Last => value.texts().pop().map_or(Val::Null, Val::Text),
        Filter::Item(n) => value.texts().into_iter().nth(n - 1).map_or(Val::Null, Val::Text),
        Filter::Count => Val::Text(value.texts().len().to_string()),
    })
}

/// A condition on two values: text without case; a list holds when any of its values does.
fn compare(comparison: Comparison, a: Val, b: &Val) -> bool {
    let b = b.as_text().to_lowercase();
    let holds = |a: &str| {
        let a = a.to_lowercase();
        match comparison {
            Comparison::Eq | Comparison::Ne => a == b,
            Comparison::Contains => a.contains(&b),
            Comparison::StartsWith => a.starts_with(&b),
            Comparison::EndsWith => a.ends_with(&b),
        }
    };
    let texts = if a.is_empty() { vec![String::new()] } else { a.texts() };
    let any = texts.iter().any(|t| holds(t));
    if comparison == Comparison::Ne { !any } else { any }
}

fn comparison_name(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::Eq => "eq",
        Comparison::Ne => "ne",
        Comparison::Contains => "contains",
        Comparison::StartsWith => "starts_with",
        Comparison::EndsWith => "ends_with",
    }
}

/// How a filter is written, for the trace.
fn filter_name(filter: &Filter) -> String {
    let quoted = |s: &str| Value::String(s.to_owned()).to_string();
    match filter {
        Filter::Lower => "lower".into(),
        Filter::Upper => "upper".into(),
        Filter::Trim => "trim".into(),
        Filter::Default(d) => format!("default({})", quoted(d)),
        Filter::Not => "not".into(),
        Filter::Join(s) => format!("join({})", quoted(s)),
        Filter::Split(s) => format!("split({})", quoted(s)),
        Filter::Replace(a, b) => format!("replace({}, {})", quoted(a), quoted(b)),
        Filter::RegexReplace(p, b) => format!("regex_replace({}, {})", quoted(p.0.as_str()), quoted(b)),
        Filter::Left(n) => format!("left({n})"),
        Filter::Mid(a, b) => format!("mid({a}, {b})"),
        Filter::StripSpaces => "strip_spaces".into(),
        Filter::NormalizeDiacritics => "normalize_diacritics".into(),
        Filter::Switch(d, cases) => format!("switch({}, {} case(s))", quoted(d), cases.len()),
        Filter::Date(f) => format!("date({})", quoted(f)),
        Filter::E164(r) => format!("e164(\"{r:?}\")"),
        Filter::DateAdd(days) => format!("date_add({days})"),
        Filter::TitleCase => "title_case".into(),
        Filter::Word(n, s) => format!("word({n}, {})", quoted(s)),
        Filter::Append(s) => format!("append({})", quoted(s)),
        Filter::First => "first".into(),
        Filter::Last => "last".into(),
        Filter::Item(n) => format!("item({n})"),
        Filter::Count => "count".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record() -> SourceRecord {
        let mut r = SourceRecord::new("1");
        r.insert("mail", AttrValue::Text("JDoe@Corp.Example".into()));
        r.insert("givenName", AttrValue::Text(" John ".into()));
        r.insert("sn", AttrValue::Text("Doe".into()));
        r.insert("proxyAddresses", AttrValue::List(vec!["a".into(), "b".into()]));
        r.insert("title", AttrValue::Text(String::new()));
        r.insert("enabledFlag", AttrValue::Text("yes".into()));
        r
    }

    fn eval(text: &str) -> Result<Option<Value>, EvalError> {
        evaluate(&Mapping::parse(text).unwrap(), &record())
    }

    #[test]
    fn evaluates_filters() {
        assert_eq!(eval("{{ mail | lower }}").unwrap(), Some(json!("jdoe@corp.example")));
        assert_eq!(eval("{{ mail | upper }}").unwrap(), Some(json!("JDOE@CORP.EXAMPLE")));
        assert_eq!(eval("{{ givenName | trim }} {{ sn }}").unwrap(), Some(json!("John Doe")));
        assert_eq!(eval(r#"{{ title | default("Agent") }}"#).unwrap(), Some(json!("Agent")));
        assert_eq!(eval(r#"{{ sn | default("Agent") }}"#).unwrap(), Some(json!("Doe")));
        assert_eq!(eval("{{ proxyAddresses | upper }}").unwrap(), Some(json!(["A", "B"])));
    }

    #[test]
    fn booleans_keep_their_type() {
        assert_eq!(eval("{{ not disabled }}").unwrap(), Some(json!(true)));
        assert_eq!(eval("{{ disabled | not }}").unwrap(), Some(json!(true)));
        assert_eq!(eval("{{ not enabledFlag }}").unwrap(), Some(json!(false)));
        assert!(eval("{{ not mail }}").unwrap_err().message.contains("expects a boolean"));
    }

    #[test]
    fn empty_values_are_not_sent() {
        assert_eq!(eval("title").unwrap(), None);
        assert_eq!(eval("missing").unwrap(), None);
        assert_eq!(eval("{{ missing | trim }}").unwrap(), None);
        assert_eq!(eval("sn").unwrap(), Some(json!("Doe")));
    }

    #[test]
    fn calls_combine_attributes() {
        assert_eq!(eval("{{ coalesce(nickName, title, givenName | trim) }}").unwrap(), Some(json!("John")));
        assert_eq!(eval("{{ coalesce(nickName, title) }}").unwrap(), None);
        assert_eq!(eval(r#"{{ if(disabled, "Leaver", "Staff") }}"#).unwrap(), Some(json!("Staff")));
        assert_eq!(eval(r#"{{ if(not enabledFlag, "Off", sn | upper) }}"#).unwrap(), Some(json!("DOE")));
        assert!(eval(r#"{{ if(mail, "a", "b") }}"#).unwrap_err().message.contains("`if` expects a boolean"));
        // Empty values are skipped: no double space for a missing middle name.
        assert_eq!(eval(r#"{{ join(" ", givenName | trim, middleName, sn) }}"#).unwrap(), Some(json!("John Doe")));
    }

    #[test]
    fn text_functions() {
        let cases = [
            (r#"{{ proxyAddresses | join(";") }}"#, json!("a;b")),
            (r#"{{ "Billing:3;;Sales:2" | split(";") }}"#, json!(["Billing:3", "Sales:2"])),
            (r#"{{ mail | replace("Corp", "corp") }}"#, json!("JDoe@corp.Example")),
            (r#"{{ mail | regex_replace("@.*$", "") | lower }}"#, json!("jdoe")),
            (r#"{{ mail | regex_replace("^(\w)\w*@", "$1@") }}"#, json!("J@Corp.Example")),
            ("{{ sn | left(2) }}", json!("Do")),
            ("{{ mail | mid(2, 3) }}", json!("Doe")),
            (r#"{{ " 555 0100 " | strip_spaces }}"#, json!("5550100")),
            (r#"{{ "Zoë Ærø" | normalize_diacritics }}"#, json!("Zoe AEro")),
            (r#"{{ sn | switch("Other", "Doe", "D", "Roe", "R") }}"#, json!("D")),
            (r#"{{ title | switch("Unassigned", "Agent", "A") }}"#, json!("Unassigned")),
            (r#"{{ "20240131123000.0Z" | date("%Y-%m-%d") }}"#, json!("2024-01-31")),
            (r#"{{ "(201) 555-0123" | e164("US") }}"#, json!("+12015550123")),
        ];
        for (template, expected) in cases {
            assert_eq!(eval(template).unwrap(), Some(expected), "{template}");
        }
        // Functions that can refuse a value say which and why; empty values are not refused.
        assert!(eval(r#"{{ "not a date" | date("%Y") }}"#).unwrap_err().message.contains("is not a date"));
        assert!(eval(r#"{{ "12" | e164("US") }}"#).unwrap_err().message.contains("`12` is not a"));
        assert_eq!(eval(r#"{{ title | e164("US") }}"#).unwrap(), None);
    }

    #[test]
    fn explain_shows_each_step() {
        let mapping = Mapping::parse(r#"{{ coalesce(nickName, mail) | regex_replace("@.*", "") | lower }}"#).unwrap();
        let (result, steps) = explain(&mapping, &record(), None);
        assert_eq!(result.unwrap(), Some(json!("jdoe")));
        assert_eq!(
            steps,
            [
                "nickName = (empty)",
                "mail = \"JDoe@Corp.Example\"",
                "coalesce(...) -> \"JDoe@Corp.Example\"",
                "| regex_replace(\"@.*\", \"\") -> \"JDoe\"",
                "| lower -> \"jdoe\"",
            ]
        );
    }

    #[test]
    fn attribute_lookup_ignores_case() {
        assert_eq!(eval("MAIL").unwrap(), Some(json!("JDoe@Corp.Example")));
    }
}
