//! What sources hand to the rest of the pipeline: records (people) and groups, as plain values.
//! Sources make them; `desired`, `mapping` and the state read them. No I/O.

pub mod ad;

use std::collections::BTreeMap;

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
    attributes: BTreeMap<String, AttrValue>,
}

impl SourceRecord {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), disabled: false, attributes: BTreeMap::new() }
    }

    pub fn insert(&mut self, name: &str, value: AttrValue) {
        self.attributes.insert(name.to_ascii_lowercase(), value);
    }

    pub fn remove(&mut self, name: &str) {
        self.attributes.remove(&name.to_ascii_lowercase());
    }

    /// Removes an attribute and everything nested under it (`name.*`), as when a source hands
    /// a whole new object (or `null`) for a property read as dotted names.
    pub fn remove_nested(&mut self, name: &str) {
        let key = name.to_ascii_lowercase();
        let prefix = format!("{key}.");
        self.attributes.retain(|k, _| *k != key && !k.starts_with(&prefix));
    }

    /// An attribute by name, ignoring case. (Mappings also see `id` and `disabled`, which
    /// `mapping::eval` supplies from the fields above when the record has no such attribute.)
    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        let key = name.to_ascii_lowercase();
        self.attributes.get(&key)
    }

    /// Every attribute, by lower-cased name.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.attributes.iter().map(|(name, value)| (name.as_str(), value))
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
