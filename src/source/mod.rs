//! Sources: the world as it should be. Each source reads records (people and groups) from one
//! directory; `desired` turns them into the desired state. The planner never sees a source.

pub mod ad;
pub mod cache;
pub mod file;
pub mod graph;
pub mod ldap;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use cache::{ReadKind, SourceCache};
pub use file::FileSource;
pub use graph::GraphSource;
pub use ldap::LdapSource;
use serde::{Deserialize, Serialize};

use crate::manifest::model::{GroupSelector, SourceConfig};

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

/// A source that failed to read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read source `{source_name}` from `{path}`")]
    Read {
        source_name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("source `{source_name}`: `{path}` is not a valid {format} people file: {detail}")]
    Parse { source_name: String, path: String, format: &'static str, detail: String },
    #[error("source `{source_name}`: no group matches {selector}")]
    GroupNotFound { source_name: String, selector: String },
    /// An LDAP operation failed; `hint` says what to check.
    #[error("source `{source_name}`: {what}; {hint}")]
    Ldap {
        source_name: String,
        what: String,
        hint: String,
        #[source]
        source: Option<Box<ldap3::LdapError>>,
    },
    /// A Microsoft Graph request failed; `hint` says what to check.
    #[error("source `{source_name}`: {what}; {hint}")]
    Graph { source_name: String, what: String, hint: String },
    /// A delta token is no longer valid; the caller starts a full sync.
    #[error("source `{source_name}`: the delta token is no longer valid ({detail})")]
    DeltaExpired { source_name: String, detail: String },
}

/// The world as it should be: people and groups from one directory.
pub trait Source {
    /// Every user record in scope (shared: a source may keep them for its groups or its state).
    fn users(&self) -> impl Future<Output = Result<Arc<Vec<SourceRecord>>, SourceError>> + Send;
    /// One group and its members (with `nested`, the members of member groups too).
    fn group(
        &self,
        selector: &GroupSelector,
        nested: bool,
    ) -> impl Future<Output = Result<SourceGroup, SourceError>> + Send;
}

/// The sources a manifest can name, dispatched statically (`async fn` in traits is not `dyn`).
#[derive(Debug)]
pub enum AnySource {
    File(FileSource),
    Ldap(LdapSource),
    Graph(GraphSource),
}

impl AnySource {
    /// Builds the adapter a manifest's source entry describes; `wanted` names the attributes the
    /// mappings read (sources that can ask for less fetch only these).
    pub fn from_config(name: &str, config: &SourceConfig, wanted: &BTreeSet<String>) -> Result<Self, SourceError> {
        Ok(match config {
            SourceConfig::File(file) => AnySource::File(FileSource::new(name, file.path.clone())),
            SourceConfig::Ldap(ldap) => AnySource::Ldap(LdapSource::new(name, ldap.clone(), wanted)),
            SourceConfig::Graph(graph) => AnySource::Graph(GraphSource::new(name, graph, wanted)?),
        })
    }

    /// Tells a source that reads incrementally (AD, Graph) that this run keeps state, and hands
    /// it the last run's cache if any; a file is read in full every run and keeps nothing.
    pub async fn resume(&self, cache: Option<SourceCache>) {
        match self {
            AnySource::Ldap(ldap) => ldap.resume(cache).await,
            AnySource::Graph(graph) => graph.resume(cache).await,
            AnySource::File(_) => {}
        }
    }

    /// What the next run resumes from, for a source that reads incrementally.
    pub async fn cache(&self) -> Option<SourceCache> {
        match self {
            AnySource::Ldap(ldap) => ldap.cache().await,
            AnySource::Graph(graph) => graph.cache().await,
            AnySource::File(_) => None,
        }
    }

    /// How this run read the source, for a source that can read incrementally.
    pub async fn last_read(&self) -> Option<ReadKind> {
        match self {
            AnySource::Ldap(ldap) => ldap.last_read().await,
            AnySource::Graph(graph) => graph.last_read().await,
            AnySource::File(_) => None,
        }
    }
}

impl Source for AnySource {
    async fn users(&self) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        match self {
            AnySource::File(file) => file.users(),
            AnySource::Ldap(ldap) => ldap.users().await,
            AnySource::Graph(graph) => graph.users().await,
        }
    }

    async fn group(&self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        match self {
            AnySource::File(file) => file.group(selector),
            AnySource::Ldap(ldap) => ldap.group(selector, nested).await,
            AnySource::Graph(graph) => graph.group(selector, nested).await,
        }
    }
}
