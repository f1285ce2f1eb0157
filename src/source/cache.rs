//! What a source read last time, kept in the state store: where it got to (its watermark), every
//! user record and the groups read from it. The next run reads only what changed since the
//! watermark and rebuilds the rest from here, so the desired state is always built from every
//! user, never from the changes alone: a failed write can never be forgotten by a watermark.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SourceRecord;
use crate::manifest::model::GroupSelector;

/// One source's part of the state.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceCache {
    /// Where the source got to, as its adapter records it (AD: the domain controller's
    /// `invocationID` and `highestCommittedUSN`; Graph: delta links).
    pub watermark: Value,
    /// Every user record in scope, sorted by id (shared with the run that read them).
    pub users: Arc<Vec<SourceRecord>>,
    /// The groups read, by `group_key`.
    pub groups: BTreeMap<String, CachedGroup>,
}

/// A group as the last run read it. Members are record ids: their records are the users'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedGroup {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
    pub unresolved: Vec<String>,
    /// The objects whose change means the group must be read again: the group and every
    /// nested group walked (AD objectGUIDs).
    pub walked: Vec<String>,
}

/// The key a group is cached under: what selected it, and whether nested members count.
pub fn group_key(selector: &GroupSelector, nested: bool) -> String {
    format!("{selector}{}", if nested { " (nested)" } else { "" })
}

/// How a source was read in this run, for the user and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadKind {
    /// Every entry was read; `reason` says why when a cache existed.
    Full { entries: usize, reason: Option<String> },
    /// Only what changed since the watermark: `changed` entries read, `removed` left the scope.
    Incremental { changed: usize, removed: usize, groups_read: usize, groups_reused: usize },
}

impl fmt::Display for ReadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadKind::Full { entries, reason: None } => write!(f, "read in full ({entries} users)"),
            ReadKind::Full { entries, reason: Some(reason) } => {
                write!(f, "read in full ({entries} users): {reason}")
            }
            ReadKind::Incremental { changed, removed, groups_read, groups_reused } => write!(
                f,
                "read incrementally: {changed} changed user(s) read, {removed} left the scope; {groups_read} group(s) read in full, {groups_reused} carried on from the last run"
            ),
        }
    }
}

/// What a run read of a source that reads incrementally: the records and the groups, as the
/// next run resumes from them, and how they were read.
#[derive(Debug)]
pub struct ReadSession {
    /// Every user record in scope, sorted by id.
    pub records: Arc<Vec<SourceRecord>>,
    kind: ReadKind,
    groups: BTreeMap<String, CachedGroup>,
    groups_read: usize,
    groups_reused: usize,
}

impl ReadSession {
    /// After the users were read (`kind`'s group counts are kept here).
    pub fn new(records: Vec<SourceRecord>, kind: ReadKind) -> Self {
        let mut read = Self {
            records: Arc::default(),
            kind: ReadKind::Full { entries: 0, reason: None },
            groups: BTreeMap::new(),
            groups_read: 0,
            groups_reused: 0,
        };
        read.set_users(records, kind);
        read
    }

    /// The users, read after the groups (a scoped read walks the scope groups first).
    pub fn set_users(&mut self, records: Vec<SourceRecord>, kind: ReadKind) {
        let kind = match kind {
            ReadKind::Full { reason, .. } => ReadKind::Full { entries: records.len(), reason },
            incremental @ ReadKind::Incremental { .. } => incremental,
        };
        self.records = Arc::new(records);
        self.kind = kind;
    }

    /// A group of this run: read again (`reused: false`) or carried on from the last run.
    pub fn remember_group(&mut self, key: String, group: CachedGroup, reused: bool) {
        self.groups.insert(key, group);
        if reused {
            self.groups_reused += 1;
        } else {
            self.groups_read += 1;
        }
    }

    pub fn has_group(&self, key: &str) -> bool {
        self.groups.contains_key(key)
    }

    /// How the source was read, groups counted.
    pub fn kind(&self) -> ReadKind {
        match &self.kind {
            ReadKind::Incremental { changed, removed, .. } => ReadKind::Incremental {
                changed: *changed,
                removed: *removed,
                groups_read: self.groups_read,
                groups_reused: self.groups_reused,
            },
            full @ ReadKind::Full { .. } => full.clone(),
        }
    }

    /// What the next run resumes from, with the adapter's `watermark`.
    pub fn cache(&self, watermark: Value) -> SourceCache {
        SourceCache { watermark, users: Arc::clone(&self.records), groups: self.groups.clone() }
    }
}

/// The record with `id` among records sorted by id (the form the cache keeps).
pub fn find_record<'a>(records: &'a [SourceRecord], id: &str) -> Option<&'a SourceRecord> {
    records.binary_search_by(|r| r.id.as_str().cmp(id)).ok().map(|i| &records[i])
}

/// Sorts records by id and drops repeated ids, keeping the last: the form the cache keeps.
pub fn sorted_by_id(records: impl IntoIterator<Item = SourceRecord>) -> Vec<SourceRecord> {
    let by_id: BTreeMap<String, SourceRecord> = records.into_iter().map(|r| (r.id.clone(), r)).collect();
    by_id.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::AttrValue;

    #[test]
    fn records_and_groups_round_trip_through_json() {
        let mut record = SourceRecord::new("g-1");
        record.disabled = true;
        record.insert("mail", AttrValue::Text("a@x".into()));
        record.insert("proxyAddresses", AttrValue::List(vec!["smtp:a@x".into(), "true".into()]));
        record.insert("accountEnabled", AttrValue::Bool(false));
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<SourceRecord>(&json).unwrap(), record);
        let groups = BTreeMap::from([(
            group_key(&GroupSelector::Name("Support".into()), true),
            CachedGroup {
                id: "g".into(),
                name: "Support".into(),
                members: vec!["g-1".into()],
                unresolved: vec!["CN=x".into()],
                walked: vec!["g".into()],
            },
        )]);
        let json = serde_json::to_string(&groups).unwrap();
        assert_eq!(serde_json::from_str::<BTreeMap<String, CachedGroup>>(&json).unwrap(), groups);
    }

    #[test]
    fn sorting_keeps_the_last_record_of_an_id() {
        let mut newer = SourceRecord::new("a");
        newer.insert("title", AttrValue::Text("new".into()));
        let sorted = sorted_by_id([SourceRecord::new("b"), SourceRecord::new("a"), newer.clone()]);
        assert_eq!(sorted, vec![newer, SourceRecord::new("b")]);
    }
}
