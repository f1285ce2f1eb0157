//! PATCH operations (RFC 7644 §3.5.2) and applying them to a resource value.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::path::ScimPath;

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three PATCH operation kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

/// One operation of a PATCH request. `path` is kept as text: member removals use
/// `members[value eq "id"]`, which is a filter rather than an attribute path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    pub op: PatchOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// A whole PATCH request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchRequest {
    pub schemas: Vec<String>,
    #[serde(rename = "Operations")]
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    pub fn new(operations: Vec<PatchOperation>) -> Self {
        Self { schemas: vec![PATCH_SCHEMA.to_owned()], operations }
    }
}

impl PatchOperation {
    pub fn replace(path: &ScimPath, value: Value) -> Self {
        Self { op: PatchOp::Replace, path: Some(path.to_string()), value: Some(value) }
    }

    pub fn remove(path: &ScimPath) -> Self {
        Self { op: PatchOp::Remove, path: Some(path.to_string()), value: None }
    }

    /// Sets a value that the resource does not have yet. For a filtered path whose element does
    /// not exist, RFC 7644 servers answer `replace` with `noTarget`, so the element is added to the
    /// multi-valued parent instead: `add emails [{"type": "work", "value": ...}]`.
    pub fn add(path: &ScimPath, value: Value) -> Self {
        if let (Some(filter), Some(sub)) = (path.filter(), path.sub_attribute()) {
            let mut element = filter.new_element();
            if let Value::Object(object) = &mut element {
                object.insert(sub.to_owned(), value);
            }
            return Self {
                op: PatchOp::Add,
                path: Some(path.parent().to_string()),
                value: Some(Value::Array(vec![element])),
            };
        }
        Self { op: PatchOp::Add, path: Some(path.to_string()), value: Some(value) }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn body_has_the_rfc_shape() {
        let path = ScimPath::parse("name.givenName").unwrap();
        let body = PatchRequest::new(vec![PatchOperation::replace(&path, json!("John"))]);
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"schemas": [PATCH_SCHEMA],
                   "Operations": [{"op": "replace", "path": "name.givenName", "value": "John"}]})
        );
    }

    #[test]
    fn adding_a_filtered_value_adds_the_element() {
        let path = ScimPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        let op = PatchOperation::add(&path, json!("a@example.com"));
        assert_eq!(op.path.as_deref(), Some("emails"));
        assert_eq!(op.value, Some(json!([{"type": "work", "value": "a@example.com"}])));
    }
}
