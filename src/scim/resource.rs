//! Wire types: list responses, errors and the few resource fields every layer reads.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A page of resources (RFC 7644 §3.4.2). `startIndex` is 1-based.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub total_results: usize,
    #[serde(default)]
    pub start_index: Option<usize>,
    #[serde(default)]
    pub items_per_page: Option<usize>,
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

/// The SCIM error body (RFC 7644 §3.12). `status` is a string on the wire, though some servers
/// send a number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimErrorBody {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub status: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ScimErrorBody {
    pub fn new(status: u16, scim_type: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            schemas: vec![ERROR_SCHEMA.to_owned()],
            status: Some(Value::String(status.to_string())),
            scim_type: scim_type.map(str::to_owned),
            detail: Some(detail.into()),
        }
    }
}

/// `meta.version` of a resource, if it has one.
pub fn version_of(resource: &Value) -> Option<String> {
    resource.get("meta")?.get("version")?.as_str().map(str::to_owned)
}

/// `id` of a resource.
pub fn id_of(resource: &Value) -> Option<&str> {
    resource.get("id")?.as_str()
}
