//! `ScimPath`: an attribute path as RFC 7644 §3.5.2 writes it in PATCH operations.
//!
//! Supported forms: `title`, `name.givenName`, `emails[type eq "work"].value`,
//! `members[value eq "id"]` (a whole element) and any of these
//! qualified by a schema URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`).
//! Attribute names are case-insensitive (RFC 7643 §2.1); the spelling written by the user is kept for
//! display, and comparisons ignore case.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::USER_SCHEMA;
use super::filter::quote;

/// A parsed SCIM attribute path. Cheap to clone and to compare: every user of a run holds its
/// managed paths (100,000 users, a dozen paths each), and maps keyed by path compare them often,
/// so the parts are shared and the lower-cased key is made once.
#[derive(Clone)]
pub struct ScimPath(Arc<Parts>);

#[derive(Debug)]
struct Parts {
    /// Schema URN for extension attributes; `None` for core attributes.
    schema: Option<String>,
    attribute: String,
    filter: Option<ValueFilter>,
    sub_attribute: Option<String>,
    /// Every name lower-cased: what equality, ordering and hashing compare.
    key: NormalizedPath,
}

impl fmt::Debug for ScimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScimPath")
            .field("schema", &self.0.schema)
            .field("attribute", &self.0.attribute)
            .field("filter", &self.0.filter)
            .field("sub_attribute", &self.0.sub_attribute)
            .finish()
    }
}

/// A value filter selecting one element of a multi-valued attribute: `type eq "work"`, or
/// `primary eq true` (RFC 7644 §3.4.2.2 compares with strings, `true`, `false`, `null` and
/// numbers).
#[derive(Debug, Clone)]
pub struct ValueFilter {
    pub attribute: String,
    pub value: Value,
}

/// Why a path did not parse; `offset` is a byte offset into the path text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PathError {
    pub offset: usize,
    pub message: String,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$'
}

fn err(offset: usize, message: impl Into<String>) -> PathError {
    PathError { offset, message: message.into() }
}

/// Reads an attribute name (RFC 7643 §2.1 ATTRNAME) starting at `start`; returns its end.
fn name_end(text: &str, start: usize) -> Result<usize, PathError> {
    let mut chars = text[start..].char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        Some((_, c)) => return Err(err(start, format!("expected an attribute name, found `{c}`"))),
        None => return Err(err(start, "expected an attribute name")),
    }
    let end = chars.find(|&(_, c)| !is_name_char(c)).map_or(text.len(), |(i, _)| start + i);
    Ok(end)
}

impl ScimPath {
    /// Parses a path; see the module documentation for the accepted forms.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        if text.trim().is_empty() {
            return Err(err(0, "the path is empty"));
        }
        let (schema, rest_start) = split_schema(text)?;
        let attr_end = name_end(text, rest_start)?;
        let attribute = text[rest_start..attr_end].to_owned();
        let mut pos = attr_end;
        let mut filter = None;
        if text[pos..].starts_with('[') {
            let (f, end) = parse_value_filter(text, pos + 1)?;
            filter = Some(f);
            pos = end;
        }
        let mut sub_attribute = None;
        if text[pos..].starts_with('.') {
            let sub_end = name_end(text, pos + 1)?;
            sub_attribute = Some(text[pos + 1..sub_end].to_owned());
            pos = sub_end;
        }
        if pos != text.len() {
            let c = text[pos..].chars().next().unwrap_or(' ');
            return Err(err(pos, format!("unexpected `{c}` in attribute path")));
        }
        Ok(Self::from_parts(schema, attribute, filter, sub_attribute))
    }

    fn from_parts(
        schema: Option<String>,
        attribute: String,
        filter: Option<ValueFilter>,
        sub_attribute: Option<String>,
    ) -> Self {
        let key = (
            schema.as_ref().map(|s| s.to_ascii_lowercase()),
            attribute.to_ascii_lowercase(),
            filter.as_ref().map(|f| (f.attribute.to_ascii_lowercase(), f.value.to_string().to_ascii_lowercase())),
            sub_attribute.as_ref().map(|s| s.to_ascii_lowercase()),
        );
        Self(Arc::new(Parts { schema, attribute, filter, sub_attribute, key }))
    }

    /// A plain top-level core attribute such as `userName`.
    pub fn attribute(name: &str) -> Self {
        Self::from_parts(None, name.to_owned(), None, None)
    }

    /// `externalId`, made once: every change of every user names it.
    pub fn external_id() -> Self {
        static PATH: std::sync::LazyLock<ScimPath> = std::sync::LazyLock::new(|| ScimPath::attribute("externalId"));
        PATH.clone()
    }

    /// `active`, made once: every change of every user names it.
    pub fn active() -> Self {
        static PATH: std::sync::LazyLock<ScimPath> = std::sync::LazyLock::new(|| ScimPath::attribute("active"));
        PATH.clone()
    }

    pub fn schema(&self) -> Option<&str> {
        self.0.schema.as_deref()
    }

    pub fn attribute_name(&self) -> &str {
        &self.0.attribute
    }

    pub fn filter(&self) -> Option<&ValueFilter> {
        self.0.filter.as_ref()
    }

    /// The attribute a filter names to find this path's value: the path itself, or for a value
    /// path its sub-attribute on any element (`emails.value` for `emails[type eq "work"].value`,
    /// which the caller checks against the element it means).
    pub fn filter_attribute(&self) -> String {
        match self.sub_attribute() {
            Some(sub) if self.filter().is_some() => format!("{}.{sub}", self.attribute_name()),
            _ => self.to_string(),
        }
    }

    pub fn sub_attribute(&self) -> Option<&str> {
        self.0.sub_attribute.as_deref()
    }

    /// True for the top-level core attribute `name` (case-insensitive), e.g. `userName`.
    pub fn is(&self, name: &str) -> bool {
        self.0.schema.is_none()
            && self.0.filter.is_none()
            && self.0.sub_attribute.is_none()
            && self.0.attribute.eq_ignore_ascii_case(name)
    }

    /// Whether this is the top-level attribute `other` lives in (`other.parent()`, without
    /// making it).
    pub fn holds(&self, other: &ScimPath) -> bool {
        let (mine, theirs) = (self.normalized(), other.normalized());
        self.0.filter.is_none()
            && self.0.sub_attribute.is_none()
            && mine.0 == theirs.0
            && mine.1 == theirs.1
            && (other.0.filter.is_some() || other.0.sub_attribute.is_some())
    }

    /// `userName`, made once.
    pub fn user_name() -> Self {
        static PATH: std::sync::LazyLock<ScimPath> = std::sync::LazyLock::new(|| ScimPath::attribute("userName"));
        PATH.clone()
    }

    /// The top-level attribute the path lives in, with its schema: `name.givenName` -> `name`,
    /// `emails[type eq "work"].value` -> `emails`.
    #[must_use]
    pub fn parent(&self) -> Self {
        Self::from_parts(self.0.schema.clone(), self.0.attribute.clone(), None, None)
    }

    /// The whole element a filtered path points into: `emails[type eq "work"].value` ->
    /// `emails[type eq "work"]`; other paths are returned as they are.
    #[must_use]
    pub fn element(&self) -> Self {
        match &self.0.filter {
            Some(filter) => {
                Self::from_parts(self.0.schema.clone(), self.0.attribute.clone(), Some(filter.clone()), None)
            }
            None => self.clone(),
        }
    }

    fn container<'a>(&self, resource: &'a Value) -> Option<&'a Map<String, Value>> {
        let object = resource.as_object()?;
        match &self.0.schema {
            None => Some(object),
            Some(urn) => get_ci(object, urn)?.as_object(),
        }
    }

    fn container_mut<'a>(&self, resource: &'a mut Value) -> Option<&'a mut Map<String, Value>> {
        if !resource.is_object() {
            *resource = Value::Object(Map::new());
        }
        let object = resource.as_object_mut()?;
        match &self.0.schema {
            None => Some(object),
            Some(urn) => {
                let key = key_ci(object, urn).unwrap_or_else(|| urn.clone());
                let entry = object.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                entry.as_object_mut()
            }
        }
    }

    /// Reads the value this path names out of a SCIM resource.
    pub fn get<'a>(&self, resource: &'a Value) -> Option<&'a Value> {
        self.within(get_ci(self.container(resource)?, &self.0.attribute)?)
    }

    /// This path's value inside the value of its top-level attribute (`parent`'s).
    pub fn within<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        let value = match &self.0.filter {
            None => value,
            Some(filter) => value.as_array()?.iter().find(|e| filter.matches(e))?,
        };
        match &self.0.sub_attribute {
            None => Some(value),
            Some(sub) => get_ci(value.as_object()?, sub),
        }
    }

    /// Writes `new` at this path, creating the containers and the filtered element as needed.
    pub fn set(&self, resource: &mut Value, new: Value) {
        let Some(container) = self.container_mut(resource) else { return };
        let key = key_ci(container, &self.0.attribute).unwrap_or_else(|| self.0.attribute.clone());
        let slot = container.entry(key).or_insert(Value::Null);
        let slot = match &self.0.filter {
            None => slot,
            Some(filter) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(elements) = slot else { return };
                let index = if let Some(i) = elements.iter().position(|e| filter.matches(e)) {
                    i
                } else {
                    elements.push(filter.new_element());
                    elements.len() - 1
                };
                &mut elements[index]
            }
        };
        match &self.0.sub_attribute {
            None => *slot = new,
            Some(sub) => {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(object) = slot {
                    let key = key_ci(object, sub).unwrap_or_else(|| sub.clone());
                    object.insert(key, new);
                }
            }
        }
    }

    /// Removes the value at this path. A filtered element left with nothing but its selector
    /// (`{"type": "work"}`) is removed as a whole.
    pub fn remove(&self, resource: &mut Value) {
        let Some(container) = self.container_mut(resource) else { return };
        let Some(key) = key_ci(container, &self.0.attribute) else { return };
        match (&self.0.filter, &self.0.sub_attribute) {
            (None, None) => {
                container.remove(&key);
            }
            (None, Some(sub)) => {
                if let Some(Value::Object(object)) = container.get_mut(&key)
                    && let Some(k) = key_ci(object, sub)
                {
                    object.remove(&k);
                }
            }
            (Some(filter), sub) => {
                let Some(Value::Array(elements)) = container.get_mut(&key) else { return };
                for element in elements.iter_mut().filter(|e| filter.matches(e)) {
                    if let (Some(sub), Value::Object(object)) = (sub, &mut *element)
                        && let Some(k) = key_ci(object, sub)
                    {
                        object.remove(&k);
                    }
                }
                elements
                    .retain(|e| !(filter.matches(e) && (sub.is_none() || e.as_object().is_some_and(|o| o.len() <= 1))));
                if elements.is_empty() {
                    container.remove(&key);
                }
            }
        }
    }

    /// The path with every name lower-cased: what equality, ordering and hashing compare.
    fn normalized(&self) -> &NormalizedPath {
        &self.0.key
    }
}

type NormalizedPath = (Option<String>, String, Option<(String, String)>, Option<String>);

impl ValueFilter {
    /// Whether an element of a multi-valued attribute is the one this filter selects.
    /// Values such as `type` are compared without regard to case, as most servers do.
    pub fn matches(&self, element: &Value) -> bool {
        let found = element.as_object().and_then(|o| get_ci(o, &self.attribute));
        match (&self.value, found) {
            (Value::String(wanted), Some(Value::String(v))) => v.eq_ignore_ascii_case(wanted),
            (Value::Null, found) => found.is_none_or(Value::is_null),
            (Value::Number(wanted), Some(Value::Number(v))) => v.as_f64() == wanted.as_f64(),
            (wanted, Some(v)) => v == wanted,
            (_, None) => false,
        }
    }

    /// The element to create when none matches: `{"type": "work"}`.
    pub fn new_element(&self) -> Value {
        let mut object = Map::new();
        object.insert(self.attribute.clone(), self.value.clone());
        Value::Object(object)
    }
}

fn split_schema(text: &str) -> Result<(Option<String>, usize), PathError> {
    if !text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        return Ok((None, 0));
    }
    // The attribute follows the last `:` before any value filter (filter values may hold `:`).
    let head_end = text.find('[').unwrap_or(text.len());
    let colon = text[..head_end]
        .rfind(':')
        .filter(|&i| i > 4)
        .ok_or_else(|| err(0, "a schema URN must be followed by `:` and an attribute name"))?;
    let schema = &text[..colon];
    if schema.eq_ignore_ascii_case(USER_SCHEMA) {
        // Core attributes may be written fully qualified; they are still core attributes.
        return Ok((None, colon + 1));
    }
    Ok((Some(schema.to_owned()), colon + 1))
}

fn parse_value_filter(text: &str, start: usize) -> Result<(ValueFilter, usize), PathError> {
    let skip_ws = |mut i: usize| {
        while text[i..].starts_with(' ') {
            i += 1;
        }
        i
    };
    let attr_start = skip_ws(start);
    let attr_end = name_end(text, attr_start)?;
    let op_start = skip_ws(attr_end);
    let op_end = text[op_start..].find(' ').map_or(text.len(), |i| op_start + i);
    let op = &text[op_start..op_end];
    if !op.eq_ignore_ascii_case("eq") {
        return Err(err(op_start, format!("only `eq` value filters are supported, found `{op}`")));
    }
    let value_start = skip_ws(op_end);
    let (value, after) = if text[value_start..].starts_with('"') {
        let mut value = String::new();
        let mut chars = text[value_start + 1..].char_indices();
        let mut close = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                '"' => {
                    close = Some(value_start + 1 + i);
                    break;
                }
                c => value.push(c),
            }
        }
        let close = close.ok_or_else(|| err(value_start, "unterminated string in value filter"))?;
        (Value::String(value), close + 1)
    } else {
        // `true`, `false`, `null` or a number, up to the closing bracket.
        let end = text[value_start..].find([']', ' ']).map_or(text.len(), |i| value_start + i);
        let literal = &text[value_start..end];
        let value = match literal {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            number => match serde_json::from_str::<serde_json::Number>(number) {
                Ok(n) => Value::Number(n),
                Err(_) => {
                    return Err(err(
                        value_start,
                        "expected a quoted string, `true`, `false`, `null` or a number after `eq`",
                    ));
                }
            },
        };
        (value, end)
    };
    let bracket = skip_ws(after);
    if !text[bracket..].starts_with(']') {
        return Err(err(bracket, "expected `]` to close the value filter"));
    }
    let filter = ValueFilter { attribute: text[attr_start..attr_end].to_owned(), value };
    Ok((filter, bracket + 1))
}

/// Looks a key up in a JSON object ignoring ASCII case (SCIM attribute names are case-insensitive).
pub fn get_ci<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn key_ci(object: &Map<String, Value>, name: &str) -> Option<String> {
    if object.contains_key(name) {
        return Some(name.to_owned());
    }
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

impl fmt::Display for ScimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.0.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.0.attribute)?;
        if let Some(filter) = &self.0.filter {
            match &filter.value {
                Value::String(value) => write!(f, "[{} eq {}]", filter.attribute, quote(value))?,
                other => write!(f, "[{} eq {other}]", filter.attribute)?,
            }
        }
        if let Some(sub) = &self.0.sub_attribute {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl PartialEq for ScimPath {
    fn eq(&self, other: &Self) -> bool {
        // Paths are mostly clones of the manifest's: the same parts, no string compared.
        Arc::ptr_eq(&self.0, &other.0) || self.normalized() == other.normalized()
    }
}

impl Eq for ScimPath {}

impl Hash for ScimPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

impl PartialOrd for ScimPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScimPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.normalized().cmp(other.normalized())
    }
}

impl serde::Serialize for ScimPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScimPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
