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

    /// Removes a value. The `value` of a filtered element (`phoneNumbers[type eq "mobile"].value`)
    /// is the element's reason to exist, so the whole element goes: an element left as
    /// `{"type": "mobile"}` is invalid on most servers, Genesys included. Other sub-attributes
    /// (`addresses[type eq "work"].locality`) are removed on their own.
    pub fn remove(path: &ScimPath) -> Self {
        let whole_element =
            path.filter().is_some() && path.sub_attribute().is_some_and(|s| s.eq_ignore_ascii_case("value"));
        let path = if whole_element { path.element() } else { path.clone() };
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

/// Why an operation cannot be applied: a SCIM `scimType` (RFC 7644 §3.12) and a detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{scim_type}: {detail}")]
pub struct PatchError {
    pub scim_type: &'static str,
    pub detail: String,
}

fn patch_error(scim_type: &'static str, detail: impl Into<String>) -> PatchError {
    PatchError { scim_type, detail: detail.into() }
}

/// Applies one operation to a resource as RFC 7644 §3.5.2 describes it. Used by the embedded
/// server, and by the client to turn a PATCH into a PUT for services without PATCH.
pub fn apply(resource: &mut Value, operation: &PatchOperation) -> Result<(), PatchError> {
    let Some(path_text) = &operation.path else {
        // No path: the value is an object of attributes to add or replace.
        let Some(Value::Object(values)) = &operation.value else {
            return Err(patch_error("invalidValue", "an operation without a path needs an object value"));
        };
        for (k, v) in values {
            ScimPath::parse(k).map_err(|e| patch_error("invalidPath", e.to_string()))?.set(resource, v.clone());
        }
        return Ok(());
    };
    let path = ScimPath::parse(path_text).map_err(|e| patch_error("invalidPath", format!("`{path_text}`: {e}")))?;
    if path.attribute_name().eq_ignore_ascii_case("id") || path.attribute_name().eq_ignore_ascii_case("meta") {
        return Err(patch_error("mutability", format!("`{path_text}` is read-only")));
    }
    match operation.op {
        PatchOp::Remove => path.remove(resource),
        PatchOp::Add | PatchOp::Replace => {
            let Some(value) = operation.value.clone() else {
                return Err(patch_error("invalidValue", format!("`{path_text}` needs a value")));
            };
            if path.filter().is_some() && path.get(resource).is_none() && operation.op == PatchOp::Replace {
                return Err(patch_error("noTarget", format!("`{path_text}` matches nothing")));
            }
            match (operation.op, path.get(resource), &value) {
                // `add` to a multi-valued attribute appends the new elements (RFC 7644 §3.5.2.1).
                (PatchOp::Add, Some(Value::Array(existing)), Value::Array(new)) => {
                    let mut merged = existing.clone();
                    for element in new {
                        let same = |e: &Value| {
                            e == element || (e.get("value").is_some() && e.get("value") == element.get("value"))
                        };
                        if !merged.iter().any(same) {
                            merged.push(element.clone());
                        }
                    }
                    path.set(resource, Value::Array(merged));
                }
                _ => path.set(resource, value),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Genesys's `externalIds[authority eq "..."].value`: a missing element is added with its
    /// authority; an emptied one is removed whole.
    #[test]
    fn genesys_external_ids_by_authority() {
        let path = ScimPath::parse(
            "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:externalIds[authority eq \"microsoftteams\"].value",
        )
        .unwrap();
        let parent = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:externalIds";
        assert_eq!(
            serde_json::to_value(PatchOperation::add(&path, json!("29:1a2b3c"))).unwrap(),
            json!({"op": "add", "path": parent, "value": [{"authority": "microsoftteams", "value": "29:1a2b3c"}]})
        );
        assert_eq!(PatchOperation::remove(&path).path.unwrap(), format!("{parent}[authority eq \"microsoftteams\"]"));
        let mut user = json!({});
        apply(&mut user, &PatchOperation::add(&path, json!("29:1a2b3c"))).unwrap();
        assert_eq!(path.get(&user), Some(&json!("29:1a2b3c")));
    }

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
