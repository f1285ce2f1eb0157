//! What sources hand to the rest of the pipeline: records (people) and groups, as plain values.
//! Sources make them; `desired`, `mapping` and the state read them. No I/O.

pub mod ad;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One value of a source attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Text(String),
    Bool(bool),
    List(Vec<String>),
}

/// One person as a source sees them. Attribute names are case-insensitive, as in LDAP and Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The source's own stable identifier (AD `objectGUID`, Graph `id`, the file's `id`).
    pub id: String,
    /// Whether the source account is disabled (AD `userAccountControl` bit 2, Graph
    /// `accountEnabled: false`, a file's `disabled: true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// By lower-cased name, in order; each name shared by every record that has it
    /// (`intern`): 100,000 records hold a source's few names once, not each its own copies in
    /// a tree of its own. Written as a map of name to value.
    #[serde(with = "by_name")]
    attributes: Vec<(Arc<str>, AttrValue)>,
}

impl SourceRecord {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), disabled: false, attributes: Vec::new() }
    }

    pub fn insert(&mut self, name: &str, value: AttrValue) {
        match self.position(name) {
            Ok(at) => self.attributes[at].1 = value,
            Err(at) => self.attributes.insert(at, (intern(name), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(at) = self.position(name) {
            self.attributes.remove(at);
        }
    }

    /// Removes an attribute and everything nested under it (`name.*`), as when a source hands
    /// a whole new object (or `null`) for a property read as dotted names.
    pub fn remove_nested(&mut self, name: &str) {
        let key = name.to_ascii_lowercase();
        let prefix = format!("{key}.");
        self.attributes.retain(|(k, _)| **k != *key && !k.starts_with(&prefix));
    }

    /// An attribute by name, ignoring case. (Mappings also see `id` and `disabled`, which
    /// `mapping::eval` supplies from the fields above when the record has no such attribute.)
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.position(name).ok().map(|at| &self.attributes[at].1)
    }

    /// Every attribute, by lower-cased name.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.attributes.iter().map(|(name, value)| (&**name, value))
    }

    /// Where `name` is, or would go, ignoring its case: no lower-cased copy made to look.
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.attributes.binary_search_by(|(held, _)| lower_cmp(held, name))
    }
}

/// `held` (lower case) against `name` in lower case.
fn lower_cmp(held: &str, name: &str) -> Ordering {
    held.bytes().cmp(name.bytes().map(|b| b.to_ascii_lowercase()))
}

/// A name lower-cased, shared with every other record that has it. Each thread keeps the
/// names it saw, as they were spelled (a source's schema: a few dozen).
fn intern(name: &str) -> Arc<str> {
    /// Past this many, a name is not kept: a file of arbitrary keys stays bounded.
    const KEPT: usize = 4096;
    thread_local! {
        static NAMES: std::cell::RefCell<std::collections::HashMap<Box<str>, Arc<str>>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    NAMES.with_borrow_mut(|names| {
        if let Some(interned) = names.get(name) {
            return Arc::clone(interned);
        }
        let interned: Arc<str> = Arc::from(name.to_ascii_lowercase());
        if names.len() < KEPT {
            names.insert(name.into(), Arc::clone(&interned));
        }
        interned
    })
}

/// A record's attributes as written: a map of lower-cased name to value.
mod by_name {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{AttrValue, BTreeMap, intern};

    pub fn serialize<S: Serializer>(attributes: &[(Arc<str>, AttrValue)], to: S) -> Result<S::Ok, S::Error> {
        to.collect_map(attributes.iter().map(|(name, value)| (&**name, value)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(from: D) -> Result<Vec<(Arc<str>, AttrValue)>, D::Error> {
        let map = BTreeMap::<String, AttrValue>::deserialize(from)?;
        let mut attributes: Vec<(Arc<str>, AttrValue)> =
            map.into_iter().map(|(name, value)| (intern(&name), value)).collect();
        // Written lower-cased already; sorted again in case a writer did not.
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        attributes.dedup_by(|a, b| a.0 == b.0);
        Ok(attributes)
    }
}

/// A group as a source sees it. Members are whole records, so a pairing can key them by any
/// attribute (`member_key`) and join them to users read from another source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGroup {
    pub id: String,
    pub name: String,
    pub members: Vec<SourceRecord>,
    /// Members that are not users the source can describe (outside the user search, not a user,
    /// unknown ids), as the source names them (a DN, an id).
    pub unresolved: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ignore_case_and_are_shared_between_records() {
        let mut ann = SourceRecord::new("1");
        ann.insert("givenName", AttrValue::Text("Ann".into()));
        ann.insert("SN", AttrValue::Text("Lee".into()));
        ann.insert("GIVENNAME", AttrValue::Text("Anna".into()));
        assert_eq!(ann.get("givenname"), Some(&AttrValue::Text("Anna".into())), "one attribute, replaced");
        assert_eq!(ann.attributes().map(|(name, _)| name).collect::<Vec<_>>(), ["givenname", "sn"]);
        let mut bob = SourceRecord::new("2");
        bob.insert("givenName", AttrValue::Text("Bob".into()));
        assert!(Arc::ptr_eq(&ann.attributes[0].0, &bob.attributes[0].0), "one name for both records");
        ann.remove("Sn");
        assert_eq!(ann.get("sn"), None);
    }

    #[test]
    fn a_nested_name_goes_with_its_parent() {
        let mut record = SourceRecord::new("1");
        for name in ["employeeOrgData", "employeeOrgData.division", "employeeOrgDataX", "mail"] {
            record.insert(name, AttrValue::Bool(true));
        }
        record.remove_nested("EmployeeOrgData");
        assert_eq!(record.attributes().map(|(name, _)| name).collect::<Vec<_>>(), ["employeeorgdatax", "mail"]);
    }

    #[test]
    fn written_as_a_map_of_names() {
        let mut record = SourceRecord::new("1");
        record.insert("Mail", AttrValue::Text("a@x".into()));
        record.insert("memberOf", AttrValue::List(vec!["g".into()]));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json, serde_json::json!({"id": "1", "attributes": {"mail": "a@x", "memberof": ["g"]}}));
        assert_eq!(serde_json::from_value::<SourceRecord>(json).unwrap(), record);
    }
}
