//! Sources: the world as it should be. Each source reads records (people and groups) from one
//! directory; `desired` turns them into the desired state. The planner never sees a source.

pub mod cache;
pub mod file;
pub mod graph;
pub mod ldap;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::manifest::model::{GroupSelector, ScopeGroup, SourceConfig};
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
    #[error("source `{source_name}`: {what}")]
    Ldap {
        source_name: String,
        what: String,
        hint: String,
        #[source]
        source: Option<Box<ldap3::LdapError>>,
    },
    /// A Microsoft Graph request failed; `hint` says what to check.
    #[error("source `{source_name}`: {what}")]
    Graph { source_name: String, what: String, hint: String },
    /// A delta token is no longer valid; the caller starts a full sync.
    #[error("source `{source_name}`: the delta token is no longer valid ({detail})")]
    DeltaExpired { source_name: String, detail: String },
}

impl SourceError {
    /// What to check or do, printed after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::Ldap { hint, .. } | SourceError::Graph { hint, .. } if !hint.is_empty() => Some(hint.clone()),
            _ => None,
        }
    }
}

/// The world as it should be: people and groups from one directory. A source is read once per
/// run: opened with what the last run left (`Resume`), read, then `finish`ed.
pub trait Source {
    /// Every user record in scope (shared: a source may keep them for its groups or its state).
    fn users(&mut self) -> impl Future<Output = Result<Arc<Vec<SourceRecord>>, SourceError>> + Send;
    /// One group and its members (with `nested`, the members of member groups too).
    fn group(
        &mut self,
        selector: &GroupSelector,
        nested: bool,
    ) -> impl Future<Output = Result<SourceGroup, SourceError>> + Send;
}

/// What a source is opened with: a run without state reads in full and keeps nothing; a run
/// with one reads on from the last run's cache (in full the first time, with `None`).
#[derive(Debug, Default)]
pub enum Resume {
    #[default]
    Stateless,
    From(Option<SourceCache>),
}

/// What a source that reads incrementally hands back when it is finished: what the next run
/// resumes from, and how this run read it.
#[derive(Debug)]
pub struct SourceRead {
    pub cache: SourceCache,
    pub kind: ReadKind,
}

/// The sources a manifest can name, dispatched statically (`async fn` in traits is not `dyn`).
#[derive(Debug)]
pub enum AnySource {
    File(FileSource),
    Ldap(LdapSource),
    Graph(GraphSource),
}

impl AnySource {
    /// Opens the adapter a manifest's source entry describes; `wanted` names the attributes the
    /// mappings read (sources that can ask for less fetch only these), `resume` what the last
    /// run left (a file is read in full every run and keeps nothing).
    /// `scope`: the groups whose members alone it reads as users (`Manifest::scope_read_by_source`).
    pub fn open(
        name: &str,
        config: &SourceConfig,
        wanted: &BTreeSet<String>,
        resume: Resume,
        scope: &[ScopeGroup],
    ) -> Result<Self, SourceError> {
        let scope: Vec<(GroupSelector, bool)> = scope.iter().map(|g| (g.group.clone(), g.nested)).collect();
        Ok(match config {
            SourceConfig::File(file) => AnySource::File(FileSource::new(name, file.path.clone())),
            SourceConfig::Ldap(ldap) => {
                AnySource::Ldap(LdapSource::new(name, ldap.clone(), wanted).resuming(resume).scoped_by(scope))
            }
            SourceConfig::Graph(graph) => {
                AnySource::Graph(GraphSource::new(name, graph, wanted)?.resuming(resume).scoped_by(scope))
            }
        })
    }

    /// The source's groups whose name starts with `prefix` (every group without one), as `(id,
    /// name)`: the candidates of a pairing pattern, asked for on the source's side where it can.
    pub async fn group_names(&self, prefix: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        match self {
            AnySource::File(file) => file.group_names(),
            AnySource::Ldap(ldap) => ldap.group_names(prefix).await,
            AnySource::Graph(graph) => graph.group_names(prefix).await,
        }
    }

    /// The groups `wanted` asks for, each as its own result (an outer error when the users the
    /// members resolve to could not be read): AD and Graph read several at once.
    pub async fn groups(
        &mut self,
        wanted: &[(GroupSelector, bool)],
    ) -> Result<Vec<Result<SourceGroup, SourceError>>, SourceError> {
        Ok(match self {
            AnySource::Ldap(ldap) => ldap.groups(wanted).await?,
            AnySource::File(file) => wanted.iter().map(|(selector, nested)| file.group(selector, *nested)).collect(),
            AnySource::Graph(graph) => graph.groups(wanted).await?,
        })
    }

    /// What this run read, as a fingerprint: the same fingerprint later means the same users
    /// and groups (a file's sha256; AD's `invocationID` and `highestCommittedUSN` before the
    /// read). `None` where the source cannot tell (Graph), or before it was read.
    pub fn fingerprint(&self) -> Option<String> {
        match self {
            AnySource::File(file) => file.fingerprint(),
            AnySource::Ldap(ldap) => ldap.fingerprint(),
            AnySource::Graph(_) => None,
        }
    }

    /// The source's fingerprint as it stands, asked without reading its users: a file's bytes
    /// hashed, one read of AD's root DSE. `None` where the source cannot tell.
    pub async fn current_fingerprint(&self) -> Result<Option<String>, SourceError> {
        match self {
            AnySource::File(file) => file.current_fingerprint().map(Some),
            AnySource::Ldap(ldap) => ldap.current_fingerprint().await,
            AnySource::Graph(_) => Ok(None),
        }
    }

    /// What the next run resumes from and how this run read, for a source that reads
    /// incrementally (AD, Graph) once it was read.
    pub fn finish(self) -> Option<SourceRead> {
        match self {
            AnySource::Ldap(ldap) => ldap.finish(),
            AnySource::Graph(graph) => graph.finish(),
            AnySource::File(_) => None,
        }
    }
}

impl Source for AnySource {
    async fn users(&mut self) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        match self {
            AnySource::File(file) => file.users(),
            AnySource::Ldap(ldap) => ldap.users().await,
            AnySource::Graph(graph) => graph.users().await,
        }
    }

    async fn group(&mut self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        match self {
            AnySource::File(file) => file.group(selector, nested),
            AnySource::Ldap(ldap) => ldap.group(selector, nested).await,
            AnySource::Graph(graph) => graph.group(selector, nested).await,
        }
    }
}
