//! Evaluating a mapping over one source record (pure).
//!
//! Result types: an expression standing alone keeps its type (a boolean stays a boolean, a
//! multi-valued attribute stays a list); text around expressions makes a string. Empty text, empty
//! lists and missing attributes evaluate to `None`: empty values are never sent.

use serde_json::Value;

use super::Mapping;
use super::template::{Expr, Filter, Operand, Part, Template};
use crate::source::{AttrValue, SourceRecord};

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

    fn truthy(&self) -> Result<bool, EvalError> {
        match self {
            Val::Null => Ok(false),
            Val::Bool(b) => Ok(*b),
            Val::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" | "" => Ok(false),
                _ => Err(EvalError { message: format!("`not` expects a boolean, found the text `{t}`") }),
            },
            Val::List(_) => Err(EvalError { message: "`not` expects a boolean, found a list".into() }),
        }
    }
}

/// Evaluates a mapping; `Ok(None)` means "no value" (not sent).
pub fn evaluate(mapping: &Mapping, record: &SourceRecord) -> Result<Option<Value>, EvalError> {
    match mapping {
        Mapping::Attribute(name) => Ok(lookup(record, name).into_json()),
        Mapping::Constant(value) => Ok(Some(value.clone()).filter(|v| !is_empty_json(v))),
        Mapping::Template(template) => evaluate_template(template, record),
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

fn evaluate_template(template: &Template, record: &SourceRecord) -> Result<Option<Value>, EvalError> {
    if let [Part::Expr(expr)] = template.parts.as_slice() {
        return Ok(evaluate_expr(expr, record)?.into_json());
    }
    let mut out = String::new();
    for part in &template.parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Expr(expr) => out.push_str(&evaluate_expr(expr, record)?.as_text()),
        }
    }
    Ok(Val::Text(out).into_json())
}

fn evaluate_expr(expr: &Expr, record: &SourceRecord) -> Result<Val, EvalError> {
    let mut value = match &expr.operand {
        Operand::Attribute(name) => lookup(record, name),
        Operand::Text(text) => Val::Text(text.clone()),
        Operand::Bool(b) => Val::Bool(*b),
    };
    if expr.negated {
        value = Val::Bool(!value.truthy()?);
    }
    for filter in &expr.filters {
        value = match filter {
            Filter::Lower => value.map_text(str::to_lowercase),
            Filter::Upper => value.map_text(str::to_uppercase),
            Filter::Trim => value.map_text(|s| s.trim().to_owned()),
            Filter::Default(fallback) if value.is_empty() => Val::Text(fallback.clone()),
            Filter::Default(_) => value,
            Filter::Not => Val::Bool(!value.truthy()?),
        };
    }
    Ok(value)
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
    fn attribute_lookup_ignores_case() {
        assert_eq!(eval("MAIL").unwrap(), Some(json!("JDoe@Corp.Example")));
    }
}
