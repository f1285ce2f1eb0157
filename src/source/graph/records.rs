//! Graph objects as records: what `$select` names, a user object as a `SourceRecord` (complex
//! properties as dotted names), and a delta query's changes merged over records. Pure.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifest::graph_properties::top_level;
use crate::record::{AttrValue, SourceRecord};

/// `$select` for what the mappings read: each name's top-level property (`employeeOrgData` for
/// `employeeOrgData.division`), `id` always and `accountEnabled` for `disabled`; `manager` is a
/// navigation property, expanded instead. Sorted, so the query is the same every run.
pub(super) fn select_for(wanted: &BTreeSet<String>) -> String {
    let mut select: BTreeSet<&str> = BTreeSet::from(["id"]);
    for name in wanted {
        match name.to_ascii_lowercase().as_str() {
            "id" | "manager" => {}
            "disabled" | "accountenabled" => {
                select.insert("accountEnabled");
            }
            _ => {
                select.insert(top_level(name));
            }
        }
    }
    select.into_iter().collect::<Vec<_>>().join(",")
}

/// A Graph user object as a record: strings, booleans and lists of strings are kept;
/// `accountEnabled: false` marks a disabled account.
pub fn to_record(user: &Value) -> Option<SourceRecord> {
    let mut record = SourceRecord::new(user.as_object()?.get("id")?.as_str()?);
    apply_properties(&mut record, user);
    Some(record)
}

/// Applies a delta query's items to records by id: an `@removed` item removes its record, any
/// other is merged over it (a change may carry only what changed; an object may come more than
/// once, the last one counting). Returns how many were changed and how many removed.
pub(super) fn apply_delta(by_id: &mut BTreeMap<String, SourceRecord>, items: &[Value]) -> (usize, usize) {
    let (mut updated, mut removed) = (0, 0);
    for item in items {
        let Some(id) = item.get("id").and_then(Value::as_str) else { continue };
        if item.get("@removed").is_some() {
            removed += usize::from(by_id.remove(id).is_some());
        } else {
            let record = by_id.entry(id.to_owned()).or_insert_with(|| SourceRecord::new(id));
            apply_properties(record, item);
            updated += 1;
        }
    }
    (updated, removed)
}

/// The records a full delta sync describes, sorted by id.
pub(super) fn full_sync(items: &[Value]) -> Vec<SourceRecord> {
    let mut by_id = BTreeMap::new();
    apply_delta(&mut by_id, items);
    by_id.into_values().collect()
}

/// Sets a record's attributes from a Graph object's properties (a `null` removes one), as a
/// full read gives them or as a delta change carries them.
pub(super) fn apply_properties(record: &mut SourceRecord, user: &Value) {
    let Some(object) = user.as_object() else { return };
    set_properties(record, "", object);
    if let Some(enabled) = object.get("accountEnabled").and_then(Value::as_bool) {
        record.disabled = !enabled;
    }
}

/// Sets the properties of `object` under `prefix`. A complex property (`employeeOrgData`,
/// `onPremisesExtensionAttributes`) comes whole, so it replaces every value read under its
/// name and its members are read as dotted names (`employeeOrgData.division`).
pub(super) fn set_properties(record: &mut SourceRecord, prefix: &str, object: &serde_json::Map<String, Value>) {
    for (name, value) in object {
        if name.starts_with('@') || name.contains("@odata") {
            continue;
        }
        let name = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        let attr = match value {
            Value::String(s) => AttrValue::Text(s.clone()),
            Value::Bool(b) => AttrValue::Bool(*b),
            Value::Number(n) => AttrValue::Text(n.to_string()),
            Value::Array(items) => {
                AttrValue::List(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            }
            // An expanded navigation property (`manager`) reads as the id of what it points to.
            Value::Object(expanded) if prefix.is_empty() && expanded.contains_key("id") => {
                match expanded.get("id").and_then(Value::as_str) {
                    Some(id) => AttrValue::Text(id.to_owned()),
                    None => continue,
                }
            }
            Value::Object(members) => {
                record.remove_nested(&name);
                set_properties(record, &name, members);
                continue;
            }
            Value::Null => {
                record.remove_nested(&name);
                continue;
            }
        };
        record.insert(&name, attr);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn users_become_records() {
        let record = to_record(&json!({"id": "1", "mail": "a@x", "accountEnabled": false, "proxyAddresses": ["a", "b"], "@odata.type": "#microsoft.graph.user"})).unwrap();
        assert!(record.disabled);
        assert_eq!(record.get("mail"), Some(&AttrValue::Text("a@x".into())));
        assert_eq!(record.get("@odata.type"), None);
        assert!(matches!(record.get("proxyAddresses"), Some(AttrValue::List(v)) if v.len() == 2));
    }

    /// A complex property comes whole: its members read as dotted names, a new value replaces
    /// every member (one left out is gone), `null` removes them all; `manager` stays an id.
    #[test]
    fn complex_properties_read_as_dotted_names_and_come_whole() {
        let mut record = to_record(&json!({"id": "1", "manager": {"id": "m1"},
            "onPremisesExtensionAttributes": {"extensionAttribute1": "a", "extensionAttribute3": "Sales:2"}}))
        .unwrap();
        assert_eq!(
            record.get("onPremisesExtensionAttributes.extensionAttribute3"),
            Some(&AttrValue::Text("Sales:2".into()))
        );
        assert_eq!(record.get("manager"), Some(&AttrValue::Text("m1".into())));
        apply_properties(&mut record, &json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "Sales:5"}}));
        assert_eq!(
            record.get("onPremisesExtensionAttributes.extensionAttribute3"),
            Some(&AttrValue::Text("Sales:5".into()))
        );
        assert_eq!(record.get("onPremisesExtensionAttributes.extensionAttribute1"), None);
        apply_properties(&mut record, &json!({"onPremisesExtensionAttributes": null}));
        let names: Vec<&str> = record.attributes().map(|(name, _)| name).collect();
        assert_eq!(names, ["id", "manager"]);
    }

    #[test]
    fn a_full_sync_keeps_the_last_of_an_object_and_drops_the_removed() {
        let items = [
            json!({"id": "1", "mail": "old@x"}),
            json!({"id": "2", "mail": "two@x"}),
            json!({"id": "1", "mail": "new@x", "accountEnabled": false}),
            json!({"id": "2", "@removed": {"reason": "deleted"}}),
            json!({"id": "3", "@removed": {"reason": "changed"}}),
        ];
        let records = full_sync(&items);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].get("mail"), Some(&AttrValue::Text("new@x".into())));
        assert!(records[0].disabled);
    }

    #[test]
    fn select_names_top_level_properties_and_only_what_is_read() {
        let wanted = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<String>>();
        assert_eq!(select_for(&wanted(&["mail"])), "id,mail", "a groups-only source: the member key and `id`");
        assert_eq!(
            select_for(&wanted(&[
                "disabled",
                "employeeOrgData.division",
                "employeeOrgData.costCenter",
                "manager",
                "id"
            ])),
            "accountEnabled,employeeOrgData,id"
        );
    }
}
