//! The target as it is: the users and groups read from the SCIM service (or remembered by the
//! state), as plain values the planner compares with the desired state. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifest::model::TargetGroupRef;
use crate::scim::resource::{id_of, version_of};

/// A user as the target holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentUser {
    pub id: String,
    /// The whole resource as read; only managed attributes are ever compared.
    pub resource: Value,
    /// `meta.version`, when the server keeps ETags.
    pub version: Option<String>,
}

impl CurrentUser {
    /// Builds from a SCIM resource; `None` without an `id`.
    pub fn from_resource(resource: Value) -> Option<Self> {
        let id = id_of(&resource)?.to_owned();
        let version = version_of(&resource);
        Some(Self { id, resource, version })
    }

    pub fn external_id(&self) -> Option<&str> {
        crate::scim::path::get_ci(self.resource.as_object()?, "externalId")?.as_str().filter(|s| !s.is_empty())
    }

    /// Only what planning reads of a user: its id, version and the managed attributes (what the
    /// state keeps, and what a listing keeps of each user it reads).
    #[must_use]
    pub fn trimmed(&self, managed: &[crate::scim::ScimPath]) -> CurrentUser {
        let mut resource = Value::Object(serde_json::Map::new());
        if let Value::Object(object) = &mut resource {
            object.insert("id".into(), Value::String(self.id.clone()));
        }
        for path in managed {
            if let Some(value) = path.get(&self.resource).filter(|v| !v.is_null()) {
                path.set(&mut resource, value.clone());
            }
        }
        CurrentUser { id: self.id.clone(), resource, version: self.version.clone() }
    }

    /// A user resource trimmed as `trimmed` does, with its `meta.version` kept in place (the
    /// form a write's answer is kept in until the state follows it).
    pub fn trim_resource(resource: Value, managed: &[crate::scim::ScimPath]) -> Value {
        let Some(user) = CurrentUser::from_resource(resource) else { return Value::Null };
        let mut trimmed = user.trimmed(managed);
        if let (Some(version), Value::Object(object)) = (&user.version, &mut trimmed.resource) {
            object.insert("meta".into(), serde_json::json!({ "version": version }));
        }
        trimmed.resource
    }

    /// SCIM's default for a missing `active` is "active".
    pub fn active(&self) -> bool {
        self.resource
            .as_object()
            .and_then(|o| crate::scim::path::get_ci(o, "active"))
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
}

/// A group as the target holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentGroup {
    pub id: String,
    pub display_name: String,
    /// Member ids (`members[].value`).
    pub members: BTreeSet<String>,
    pub version: Option<String>,
}

impl CurrentGroup {
    pub fn from_resource(resource: &Value) -> Option<Self> {
        let id = id_of(resource)?.to_owned();
        let object = resource.as_object()?;
        let display_name =
            crate::scim::path::get_ci(object, "displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
        let members = crate::scim::path::get_ci(object, "members")
            .and_then(Value::as_array)
            .map(|members| members.iter().filter_map(|m| m.get("value")?.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Some(Self { id, display_name, members, version: version_of(resource) })
    }
}

/// Everything `plan` needs to know about the target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentState {
    pub users: Vec<CurrentUser>,
    pub groups: BTreeMap<TargetGroupRef, CurrentGroup>,
}
