//! The target as it is: the users and groups read from the SCIM service (or remembered by the
//! state), as plain values the planner compares with the desired state. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifest::model::TargetGroupRef;
use crate::scim::ScimPath;
use crate::scim::resource::{id_of, version_of};

/// A user as the target holds it: its id, its version and its attributes' values, each by
/// path, in a flat list rather than a tree of maps (100,000 users are held at once). Built
/// keeping the managed paths (what planning reads, the state keeps and a listing keeps), each a
/// leaf value, or, from a whole resource, every top-level attribute's value.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    /// `meta.version`, when the server keeps ETags.
    pub version: Option<String>,
    /// Never `null`; the paths shared with the manifest's.
    values: Vec<(ScimPath, Value)>,
}

impl CurrentUser {
    /// Builds from a SCIM resource, keeping every top-level attribute; `None` without an `id`.
    pub fn from_resource(resource: Value) -> Option<Self> {
        let id = id_of(&resource)?.to_owned();
        let version = version_of(&resource);
        let Value::Object(object) = resource else { return None };
        let mut values = Vec::with_capacity(object.len());
        for (name, value) in object {
            if value.is_null() || ["id", "meta", "schemas"].iter().any(|k| k.eq_ignore_ascii_case(&name)) {
                continue;
            }
            match value {
                // An extension's attributes, each by its qualified path.
                Value::Object(extension) if name.contains(':') => {
                    for (attribute, value) in extension.into_iter().filter(|(_, v)| !v.is_null()) {
                        if let Ok(path) = ScimPath::parse(&format!("{name}:{attribute}")) {
                            values.push((path, value));
                        }
                    }
                }
                value => {
                    if let Ok(path) = ScimPath::parse(&name) {
                        values.push((path, value));
                    }
                }
            }
        }
        Some(Self { id, version, values })
    }

    /// Builds from a SCIM resource keeping only the values of `managed`; `None` without an `id`.
    pub fn keeping(resource: &Value, managed: &[ScimPath]) -> Option<Self> {
        let id = id_of(resource)?.to_owned();
        let version = version_of(resource);
        // As many as the paths at most: 100,000 users kept are not each given a doubled vector.
        let mut values = Vec::with_capacity(managed.len());
        values.extend(
            managed
                .iter()
                .filter_map(|path| Some((path.clone(), path.get(resource).filter(|v| !v.is_null())?.clone()))),
        );
        Some(Self { id, version, values })
    }

    /// The value at `path`, as read (never `null`).
    pub fn get(&self, path: &ScimPath) -> Option<&Value> {
        if let Some((_, value)) = self.values.iter().find(|(p, _)| p == path) {
            return Some(value);
        }
        // Kept whole (`from_resource`): the path within its top-level attribute.
        let (_, attribute) = self.values.iter().find(|(p, _)| p.holds(path))?;
        path.within(attribute).filter(|v| !v.is_null())
    }

    /// Sets the value at `path` (`null` removes it): what a write did.
    pub fn set(&mut self, path: &ScimPath, value: Value) {
        if !self.values.iter().any(|(p, _)| p == path) && self.values.iter().any(|(p, _)| p.holds(path)) {
            // Kept whole: written inside its attribute, as a write to the resource would be.
            let mut resource = self.to_resource();
            if value.is_null() {
                path.remove(&mut resource);
            } else {
                path.set(&mut resource, value);
            }
            if let Some(user) = Self::from_resource(resource) {
                self.values = user.values;
            }
            return;
        }
        self.values.retain(|(p, _)| p != path);
        if !value.is_null() {
            self.values.push((path.clone(), value));
        }
    }

    /// The user as a SCIM resource: its id and every value kept (what the state stores and
    /// `state show` prints).
    pub fn to_resource(&self) -> Value {
        let mut resource = serde_json::json!({ "id": self.id });
        for (path, value) in &self.values {
            path.set(&mut resource, value.clone());
        }
        resource
    }

    pub fn user_name(&self) -> Option<&str> {
        self.get(&ScimPath::user_name())?.as_str()
    }

    pub fn external_id(&self) -> Option<&str> {
        self.get(&ScimPath::external_id())?.as_str().filter(|s| !s.is_empty())
    }

    /// Only what planning reads of a user: its id, version and the managed attributes (what the
    /// state keeps, and what a listing keeps of each user it reads).
    #[must_use]
    pub fn trimmed(&self, managed: &[ScimPath]) -> CurrentUser {
        let values = managed.iter().filter_map(|path| Some((path.clone(), self.get(path)?.clone()))).collect();
        CurrentUser { id: self.id.clone(), version: self.version.clone(), values }
    }

    /// `trimmed`, taking the user: one kept by the managed paths already (an apply's answer,
    /// `keeping`) keeps its values, put in the managed paths' order, rather than copying them.
    #[must_use]
    pub fn into_trimmed(mut self, managed: &[ScimPath]) -> CurrentUser {
        let place = |path: &ScimPath| managed.iter().position(|m| m == path);
        if self.values.iter().any(|(path, _)| place(path).is_none()) {
            return self.trimmed(managed);
        }
        self.values.sort_by_key(|(path, _)| place(path));
        self
    }

    /// SCIM's default for a missing `active` is "active".
    pub fn active(&self) -> bool {
        self.get(&ScimPath::active()).and_then(Value::as_bool).unwrap_or(true)
    }
}

/// Two users are equal when they hold the same values, however they were kept.
impl PartialEq for CurrentUser {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.version == other.version && self.to_resource() == other.to_resource()
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> ScimPath {
        ScimPath::parse(text).unwrap()
    }

    fn resource() -> Value {
        json!({
            "id": "t1", "userName": "ann@x", "name": {"givenName": "Ann"}, "nickName": null,
            "emails": [{"type": "home", "value": "a@home"}, {"type": "work", "value": "ann@x"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "manager": {"value": "t9"}},
            "meta": {"version": "W/\"4\""}, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        })
    }

    /// Kept whole or by managed path, a user reads the same values and equals itself.
    #[test]
    fn a_user_reads_the_same_however_it_is_kept() {
        let managed = [
            path("userName"),
            path("name.givenName"),
            path(r#"emails[type eq "work"].value"#),
            path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            path("title"),
        ];
        let whole = CurrentUser::from_resource(resource()).unwrap();
        let kept = CurrentUser::keeping(&resource(), &managed).unwrap();
        for user in [&whole, &kept] {
            assert_eq!((user.id.as_str(), user.version.as_deref()), ("t1", Some("W/\"4\"")));
            assert_eq!(user.user_name(), Some("ann@x"));
            assert_eq!(user.get(&managed[1]), Some(&json!("Ann")));
            assert_eq!(user.get(&managed[2]), Some(&json!("ann@x")), "the work address, not the home one");
            assert_eq!(user.get(&managed[3]), Some(&json!("t9")));
            assert_eq!(user.get(&managed[4]), None);
            assert!(user.active(), "SCIM's default");
        }
        assert_eq!(whole.get(&path("nickName")), None, "null is absent");
        assert_eq!(
            whole.get(&path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")),
            Some(&json!("Sales"))
        );
        assert_eq!(whole.trimmed(&managed), kept, "trimmed equals kept");
        assert_eq!(whole.clone().into_trimmed(&managed), kept, "trimmed, taken, equals kept");
        assert_eq!(kept.clone().into_trimmed(&managed), kept, "a kept user stays as it is");
        // Written after it was kept, its values come back in the managed paths' order.
        let order = |user: &CurrentUser| user.values.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>();
        let mut written = kept.clone();
        written.set(&managed[0], json!("ann@x"));
        assert_ne!(order(&written), order(&kept));
        assert_eq!(order(&written.into_trimmed(&managed)), order(&kept));
        assert_eq!(kept.to_resource()["emails"], json!([{"type": "work", "value": "ann@x"}]));
    }

    /// A write lands where a resource would take it, whether the attribute is kept by path or
    /// whole; `null` removes.
    #[test]
    fn a_write_lands_inside_an_attribute_kept_whole() {
        let work = path(r#"emails[type eq "work"].value"#);
        let mut whole = CurrentUser::from_resource(resource()).unwrap();
        whole.set(&work, json!("ann@new"));
        whole.set(&path("title"), json!("Lead"));
        whole.set(&path("name.givenName"), Value::Null);
        assert_eq!(whole.get(&work), Some(&json!("ann@new")));
        assert_eq!(whole.get(&path(r#"emails[type eq "home"].value"#)), Some(&json!("a@home")), "the other kept");
        assert_eq!(whole.get(&path("title")), Some(&json!("Lead")));
        assert_eq!(whole.get(&path("name.givenName")), None);
        let mut kept = CurrentUser::keeping(&resource(), std::slice::from_ref(&work)).unwrap();
        kept.set(&work, json!("ann@new"));
        assert_eq!(kept.get(&work), Some(&json!("ann@new")));
        kept.set(&work, Value::Null);
        assert_eq!(kept.get(&work), None);
    }
}
