//! Set attributes (Genesys `routingSkills`/`routingLanguages`, `roles`): compared as sets of
//! entries by name, so order and `3` vs `3.0` never make a change, and written either as the
//! minimal change or as one replace of the whole array. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::model::SetWrite;
use crate::scim::filter::quote;
use crate::scim::{PatchOp, PatchOperation, ScimPath};

/// How a changed set attribute is written; carried by its `AttributeChange`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetChange {
    /// The field that names an entry (`name`, `value`).
    pub key: String,
    /// The entry's level field, if any (`proficiency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    pub write: SetWrite,
}

/// An entry's proficiency, when the set has one.
pub type Level = Option<f64>;

/// Entries by name, levels as numbers, so `3` equals `3.0`.
pub type Entries = BTreeMap<String, Level>;

/// One entry that differs; a side is `None` when the entry is absent there.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryDiff {
    pub name: String,
    pub before: Option<Level>,
    pub after: Option<Level>,
}

impl SetChange {
    /// The entries of a set value as read or desired; anything but an array is empty.
    pub fn entries(&self, value: Option<&Value>) -> Entries {
        let Some(Value::Array(items)) = value else { return Entries::new() };
        items
            .iter()
            .filter_map(|item| {
                let object = item.as_object()?;
                let name = crate::scim::path::get_ci(object, &self.key)?.as_str()?.to_owned();
                let level = self.level.as_deref().and_then(|l| crate::scim::path::get_ci(object, l)).and_then(level_of);
                Some((name, level))
            })
            .collect()
    }

    /// Whether two set values hold the same entries.
    pub fn same(&self, desired: Option<&Value>, current: Option<&Value>) -> bool {
        self.entries(desired) == self.entries(current)
    }

    /// Each entry that differs, by name.
    pub fn differences(&self, before: Option<&Value>, after: Option<&Value>) -> Vec<EntryDiff> {
        let (before, after) = (self.entries(before), self.entries(after));
        let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                let (b, a) = (before.get(name).copied(), after.get(name).copied());
                (b != a).then(|| EntryDiff { name: name.clone(), before: b, after: a })
            })
            .collect()
    }

    /// The PATCH operations that make `before` into `after`.
    pub fn operations(&self, path: &ScimPath, before: Option<&Value>, after: Option<&Value>) -> Vec<PatchOperation> {
        if self.write == SetWrite::Replace {
            return vec![PatchOperation::replace(path, after.cloned().unwrap_or(Value::Array(Vec::new())))];
        }
        let mut added = Vec::new();
        let mut operations = Vec::new();
        for EntryDiff { name, before: was, after: now } in self.differences(before, after) {
            let selector = format!("{path}[{} eq {}]", self.key, quote(&name));
            match (was, now) {
                (_, None) => operations.push(PatchOperation { op: PatchOp::Remove, path: Some(selector), value: None }),
                (None, Some(level)) => added.push(self.element(&name, level)),
                (Some(_), Some(level)) => operations.push(PatchOperation {
                    op: PatchOp::Replace,
                    path: Some(format!("{selector}.{}", self.level.as_deref().unwrap_or("value"))),
                    value: Some(level.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)),
                }),
            }
        }
        if !added.is_empty() {
            operations.insert(
                0,
                PatchOperation { op: PatchOp::Add, path: Some(path.to_string()), value: Some(Value::Array(added)) },
            );
        }
        operations
    }

    /// The differences for people: `('+', "routingSkills[\"New\"] = 5")`,
    /// `('~', "routingSkills[\"Billing\"] = 3 -> 4")`, `('-', "roles[\"Old\"]")`.
    pub fn lines(&self, path: &ScimPath, before: Option<&Value>, after: Option<&Value>) -> Vec<(char, String)> {
        self.differences(before, after)
            .into_iter()
            .map(|d| {
                let label = self.label(path, &d.name);
                match (d.before, d.after) {
                    (None, Some(now)) => ('+', self.entry(&label, now)),
                    (Some(was), None) => ('-', self.entry(&label, was)),
                    (Some(was), Some(now)) => ('~', format!("{label} = {} -> {}", show_level(was), show_level(now))),
                    (None, None) => (' ', label),
                }
            })
            .collect()
    }

    /// `routingSkills["Billing"]`.
    pub fn label(&self, path: &ScimPath, name: &str) -> String {
        format!("{}[{}]", path.attribute_name(), Value::String(name.to_owned()))
    }

    /// `routingSkills["Billing"] = 3`, or the label alone for entries without a level.
    pub fn entry(&self, label: &str, level: Level) -> String {
        if self.level.is_some() { format!("{label} = {}", show_level(level)) } else { label.to_owned() }
    }

    fn element(&self, name: &str, level: Option<f64>) -> Value {
        let mut object = serde_json::Map::new();
        object.insert(self.key.clone(), Value::String(name.to_owned()));
        if let (Some(field), Some(level)) = (&self.level, level.and_then(serde_json::Number::from_f64)) {
            object.insert(field.clone(), Value::Number(level));
        }
        Value::Object(object)
    }
}

fn level_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `3`, `2.5`: a level as people write it.
pub fn show_level(level: Option<f64>) -> String {
    match level {
        None => String::new(),
        Some(l) if l.fract() == 0.0 => format!("{l:.0}"),
        Some(l) => l.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn skills(write: SetWrite) -> SetChange {
        SetChange { key: "name".into(), level: Some("proficiency".into()), write }
    }

    fn path() -> ScimPath {
        ScimPath::parse("urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills").unwrap()
    }

    #[test]
    fn compares_as_sets_by_name() {
        let set = skills(SetWrite::Minimal);
        let current = json!([{"name": "Sales", "proficiency": 2.0}, {"name": "Billing", "proficiency": 3.0}]);
        let desired = json!([{"name": "Billing", "proficiency": 3}, {"name": "Sales", "proficiency": 2}]);
        assert!(set.same(Some(&desired), Some(&current)), "order and 3 vs 3.0 do not matter");
        assert!(set.same(Some(&json!([])), None), "an empty set is no set");
        assert!(!set.same(Some(&json!([{"name": "Sales", "proficiency": 3}])), Some(&current)));
    }

    /// Add one skill, change one proficiency, remove one: exactly those operations.
    #[test]
    fn the_minimal_change_is_one_operation_per_difference() {
        let set = skills(SetWrite::Minimal);
        let before = json!([{"name": "Billing", "proficiency": 3.0}, {"name": "Sales", "proficiency": 2.0}, {"name": "Old", "proficiency": 1.0}]);
        let after = json!([{"name": "Billing", "proficiency": 4}, {"name": "New", "proficiency": 5}, {"name": "Sales", "proficiency": 2}]);
        let operations = set.operations(&path(), Some(&before), Some(&after));
        let p = path().to_string();
        assert_eq!(
            serde_json::to_value(&operations).unwrap(),
            json!([
                {"op": "add", "path": p, "value": [{"name": "New", "proficiency": 5.0}]},
                {"op": "replace", "path": format!("{p}[name eq \"Billing\"].proficiency"), "value": 4.0},
                {"op": "remove", "path": format!("{p}[name eq \"Old\"]")},
            ])
        );
    }

    #[test]
    fn replace_sends_the_whole_set_once() {
        let set = skills(SetWrite::Replace);
        let after = json!([{"name": "Billing", "proficiency": 4}]);
        let operations = set.operations(&path(), Some(&json!([{"name": "Billing", "proficiency": 3}])), Some(&after));
        assert_eq!(operations, vec![PatchOperation::replace(&path(), after)]);
        let emptied = set.operations(&path(), Some(&json!([{"name": "Billing", "proficiency": 3}])), Some(&json!([])));
        assert_eq!(emptied, vec![PatchOperation::replace(&path(), json!([]))]);
    }

    #[test]
    fn roles_have_names_only() {
        let roles = SetChange { key: "value".into(), level: None, write: SetWrite::Minimal };
        let operations = roles.operations(
            &ScimPath::attribute("roles"),
            Some(&json!([{"value": "Employee"}])),
            Some(&json!([{"value": "Employee"}, {"value": "Supervisor"}])),
        );
        assert_eq!(
            serde_json::to_value(&operations).unwrap(),
            json!([{"op": "add", "path": "roles", "value": [{"value": "Supervisor"}]}])
        );
        assert_eq!(
            roles.lines(&ScimPath::attribute("roles"), None, Some(&json!([{"value": "Employee"}]))),
            [('+', "roles[\"Employee\"]".to_owned())]
        );
        let skills = skills(SetWrite::Replace);
        assert_eq!(
            skills.lines(
                &path(),
                Some(&json!([{"name": "B", "proficiency": 3.0}, {"name": "O", "proficiency": 1}])),
                Some(&json!([{"name": "B", "proficiency": 4}]))
            ),
            [('~', "routingSkills[\"B\"] = 3 -> 4".to_owned()), ('-', "routingSkills[\"O\"] = 1".to_owned())]
        );
        assert_eq!(show_level(Some(3.0)), "3");
        assert_eq!(show_level(Some(2.5)), "2.5");
    }
}
