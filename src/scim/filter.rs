//! SCIM filters (RFC 7644 §3.4.2.2), limited to what scimform sends: `attr eq "value"`, and
//! `meta.lastModified gt "time"` for the users changed since a run. Building escapes string
//! literals; parsing exists for the embedded server.

use std::fmt;

use serde_json::Value;

/// Quotes a string literal for a filter or a path: `"` and `\` are escaped (RFC 7644 §3.4.2.2
/// uses JSON string syntax for literals).
pub fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

/// `attribute eq value`, the one filter form scimform needs.
#[derive(Debug, Clone, PartialEq)]
pub struct EqFilter {
    pub attribute: String,
    pub value: Value,
}

impl EqFilter {
    pub fn new(attribute: &str, value: impl Into<Value>) -> Self {
        Self { attribute: attribute.to_owned(), value: value.into() }
    }

    /// Parses `attr eq "text"`, `attr eq true|false|null` or `attr eq 42`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (attribute, rest) = text.split_once(char::is_whitespace)?;
        let rest = rest.trim_start();
        let (op, literal) = rest.split_once(char::is_whitespace)?;
        if !op.eq_ignore_ascii_case("eq") {
            return None;
        }
        let value = serde_json::from_str(literal.trim()).ok()?;
        Some(Self { attribute: attribute.to_owned(), value })
    }

    /// Whether a resource's attribute (found without regard to case) satisfies the filter.
    pub fn matches_resource(&self, resource: &Value) -> bool {
        self.matches(resource.as_object().and_then(|o| crate::scim::path::get_ci(o, &self.attribute)))
    }

    /// Whether `candidate` satisfies the filter. Strings compare without case, as `userName`
    /// and most SCIM string attributes are not case-exact.
    pub fn matches(&self, candidate: Option<&Value>) -> bool {
        match (candidate, &self.value) {
            (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (Some(a), b) => a == b,
            (None, Value::Null) => true,
            (None, _) => false,
        }
    }
}

impl fmt::Display for EqFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Value::String(s) => write!(f, "{} eq {}", self.attribute, quote(s)),
            other => write!(f, "{} eq {other}", self.attribute),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn escapes_quotes_and_backslashes() {
        let filter = EqFilter::new("userName", r#"a"b\c"#);
        assert_eq!(filter.to_string(), r#"userName eq "a\"b\\c""#);
        assert_eq!(EqFilter::parse(&filter.to_string()), Some(filter));
    }

    #[test]
    fn parses_boolean_literals() {
        let filter = EqFilter::parse("active eq false").unwrap();
        assert_eq!(filter.value, json!(false));
        assert!(filter.matches(Some(&json!(false))));
        assert!(!filter.matches(Some(&json!(true))));
    }

    #[test]
    fn rejects_other_operators() {
        assert_eq!(EqFilter::parse(r#"userName sw "a""#), None);
    }
}

/// A filter a listing sends, and applies itself when the service does not filter.
pub trait ListFilter: fmt::Display + Sync {
    fn matches_resource(&self, resource: &Value) -> bool;
}

impl ListFilter for EqFilter {
    fn matches_resource(&self, resource: &Value) -> bool {
        EqFilter::matches_resource(self, resource)
    }
}

/// `meta.lastModified gt "time"`: the resources modified after a time (RFC 3339, the service's
/// own clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifiedAfter(pub String);

impl fmt::Display for ModifiedAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "meta.lastModified gt {}", quote(&self.0))
    }
}

impl ListFilter for ModifiedAfter {
    fn matches_resource(&self, resource: &Value) -> bool {
        let modified = resource.pointer("/meta/lastModified").and_then(Value::as_str);
        let parse = |t: &str| t.parse::<jiff::Timestamp>().ok();
        match (modified.and_then(parse), parse(&self.0)) {
            (Some(modified), Some(after)) => modified > after,
            // A resource that does not say when it changed may have: it is read.
            _ => true,
        }
    }
}
