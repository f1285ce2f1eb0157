//! Sources: the world as it should be. Each source reads records (people and groups) from one
//! directory; `desired` turns them into the desired state. The planner never sees a source.

pub mod cache;
pub mod file;
pub mod graph;
pub mod ldap;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::manifest::model::{GroupSelector, SourceConfig};
pub use crate::record::{AttrValue, SourceGroup, SourceRecord};
pub use cache::{ReadKind, SourceCache};
pub use file::FileSource;
pub use graph::GraphSource;
pub use ldap::LdapSource;

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
