//! `kind: ldap`: Active Directory (or any LDAPv3 directory) over LDAP, LDAPS or StartTLS.
//!
//! Users come from one paged search (Simple Paged Results, streamed page by page, search
//! references skipped) asking for exactly the attributes the manifest reads. Group members come
//! from explicit `member;range=` windows, as AD returns at most 1,500 values at once; nested
//! groups are walked with cycle detection. Member DNs resolve to the users of the user search;
//! anything else is reported, never invented.
//!
//! Incremental reads (Active Directory's USN scheme): the domain controller's `invocationID` and
//! `highestCommittedUSN` are read before the search. Given the last run's cache (`resume`), a
//! run on the same `invocationID` reads only the entries in scope whose `uSNChanged` is past
//! the last watermark, and learns which cached users left the scope (deleted, moved, filtered
//! out) from the objects changed since across the naming context, tombstones included (the
//! Show Deleted control). A cached group is read again only when it or a nested group changed
//! or one of its members left the scope; otherwise its members are rebuilt from the records.

mod connection;
mod entry;
mod groups;
mod scope;
mod usn;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapError, Scope, SearchEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::entry::to_record;
use self::entry::{binary_value, record_dn, text_value};
use self::usn::resumable;
use super::cache::{CachedGroup, ReadKind, ReadSession, SourceCache, sorted_by_id};
use super::{Resume, SourceError, SourceRead, SourceRecord};
use crate::manifest::model::{GroupSelector, LdapConfig, LdapScope};
use crate::record::ad;

/// AD never returns more than this many values of one attribute at once (MaxValRange).
const RANGE_WINDOW: usize = 1500;
const USER_FILTER: &str = "(&(objectClass=user)(!(objectClass=computer)))";
/// LDAP_SERVER_SHOW_DELETED_OID: tombstones are returned too, so a deleted user is noticed.
const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";

/// Where a domain controller's changes had got to when a read began. `uSNChanged` is per
/// domain controller; another `invocationID` means another DC or a restored database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsnWatermark {
    pub invocation_id: String,
    pub usn: u64,
    /// When the read began (seconds since 1970): past the tombstone lifetime, the tombstones
    /// that tell of deletions may be gone, so the next read is a full one.
    #[serde(default)]
    pub read_at: u64,
}

impl UsnWatermark {
    /// The directory's position, without when it was read.
    fn fingerprint(&self) -> String {
        format!("usn:{}:{}", self.invocation_id, self.usn)
    }
}

/// AD's default tombstone lifetime, when the forest sets none (`tombstoneLifetime`).
const DEFAULT_TOMBSTONE_DAYS: u64 = 180;

/// What changed since the watermark, for deciding which cached groups still hold.
#[derive(Debug, Default)]
struct Delta {
    /// Every object changed since, in the whole naming context (tombstones included).
    touched: HashSet<String>,
    /// Cached users that are no longer in scope.
    removed: HashSet<String>,
    /// Users in scope now that the cache did not hold.
    arrived: usize,
}

/// This run's read: the records, and what the next run resumes from.
#[derive(Debug)]
struct Session {
    read: ReadSession,
    watermark: Option<UsnWatermark>,
    /// Lower-cased DN -> index into the records (to resolve group members).
    by_dn: Arc<HashMap<String, usize>>,
    /// `None` after a full read.
    delta: Option<Delta>,
    previous_groups: BTreeMap<String, CachedGroup>,
}

/// An LDAP directory, read with one connection per operation.
#[derive(Debug)]
pub struct LdapSource {
    name: String,
    config: LdapConfig,
    /// Attributes the mappings read; the search asks for these and nothing else.
    wanted: BTreeSet<String>,
    /// The last run's cache, until the user search takes it.
    previous: Option<SourceCache>,
    /// This run's read, once the users were searched.
    session: Option<Session>,
    /// Only members of these groups are read (`users.scope.member_of`; `true`: nested).
    scope_groups: Vec<(GroupSelector, bool)>,
}

impl LdapSource {
    pub fn new(name: &str, config: LdapConfig, wanted: &BTreeSet<String>) -> Self {
        Self {
            name: name.to_owned(),
            config,
            wanted: wanted.clone(),
            previous: None,
            session: None,
            scope_groups: Vec::new(),
        }
    }

    /// Reads incrementally from what the last run read, where the watermark allows. (A run
    /// with a state and no cache yet reads in full, as one without state does.)
    #[must_use]
    pub fn resuming(mut self, resume: Resume) -> Self {
        self.previous = match resume {
            Resume::From(cache) => cache,
            Resume::Stateless => None,
        };
        self
    }

    /// What the next run resumes from (the watermark, the records and the groups read) and how
    /// this run read the directory, once it did.
    pub fn finish(self) -> Option<SourceRead> {
        let session = self.session?;
        let watermark = session.watermark.as_ref().map_or(Value::Null, |w| serde_json::to_value(w).unwrap_or_default());
        Some(SourceRead { kind: session.read.kind(), cache: session.read.cache(watermark) })
    }

    /// The domain controller's position as it stands (`invocationID` and
    /// `highestCommittedUSN`), read without anything else: every write to the directory moves
    /// it, so the same position means the same users and groups. `None` for a directory that
    /// keeps no USNs.
    pub async fn current_fingerprint(&self) -> Result<Option<String>, SourceError> {
        let mut ldap = self.connect().await?;
        let root = self.root_dse(&mut ldap).await?;
        let watermark = self.watermark(&mut ldap, &root).await?;
        let _ = ldap.unbind().await;
        Ok(watermark.as_ref().map(UsnWatermark::fingerprint))
    }

    /// The position this run read from (taken before its user search), once it did.
    pub fn fingerprint(&self) -> Option<String> {
        self.session.as_ref()?.watermark.as_ref().map(UsnWatermark::fingerprint)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.timeout_seconds.max(1)))
    }

    fn error(&self, what: impl Into<String>, hint: impl Into<String>, source: Option<LdapError>) -> SourceError {
        SourceError::Ldap {
            source_name: self.name.clone(),
            what: what.into(),
            hint: hint.into(),
            source: source.map(Box::new),
        }
    }

    fn wanted_attributes(&self) -> Vec<String> {
        let mut attributes: BTreeSet<String> = self
            .wanted
            .iter()
            .filter(|a| !matches!(a.to_ascii_lowercase().as_str(), "id" | "disabled" | "dn"))
            .cloned()
            .collect();
        attributes.extend(["objectGUID".to_owned(), "userAccountControl".to_owned()]);
        attributes.into_iter().collect()
    }

    fn scope(&self) -> Scope {
        match self.config.scope {
            LdapScope::Base => Scope::Base,
            LdapScope::One => Scope::OneLevel,
            LdapScope::Sub => Scope::Subtree,
        }
    }

    pub async fn users(&mut self) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        let mut ldap = self.connect().await?;
        // Read before the search: whatever changes during it is read again next time.
        let root = self.root_dse(&mut ldap).await?;
        let watermark = self.watermark(&mut ldap, &root).await?;
        let previous = self.previous.take();
        let filter = self.config.filter.clone().unwrap_or_else(|| USER_FILTER.to_owned());
        let filter = self.scoped_filter(&mut ldap, &filter).await?;
        tracing::info!("source `{}`: searching `{}` for {filter}", self.name, self.config.base_dn);
        let tombstone_days = if previous.is_some() {
            self.tombstone_lifetime_days(&mut ldap, &root).await
        } else {
            DEFAULT_TOMBSTONE_DAYS
        };
        let resumable = previous.as_ref().map(|p| resumable(p, watermark.as_ref(), tombstone_days));
        let (records, delta, kind, previous_groups) = match (previous, resumable) {
            (Some(previous), Some(Ok(since))) => {
                // The objects changed since, first: an entry changed between the two searches
                // is then at worst read as changed, never taken for one that left the scope.
                let touched = self.touched_since(&mut ldap, &root, since).await?;
                let scoped = format!("(&{filter}(uSNChanged>={since}))");
                let changed = self.search(&mut ldap, &scoped, Vec::new()).await?;
                let changed_ids: HashSet<String> = changed.iter().map(|r| r.id.clone()).collect();
                let mut by_id: BTreeMap<String, SourceRecord> =
                    Arc::unwrap_or_clone(previous.users).into_iter().map(|r| (r.id.clone(), r)).collect();
                let mut removed: HashSet<String> = touched
                    .iter()
                    .filter(|id| by_id.contains_key(*id) && !changed_ids.contains(*id))
                    .cloned()
                    .collect();
                by_id.retain(|id, _| !removed.contains(id));
                let mut arrived = changed.iter().filter(|r| !by_id.contains_key(&r.id)).count();
                let mut changed_count = changed.len();
                by_id.extend(changed.into_iter().map(|r| (r.id.clone(), r)));
                let (left, came) = self.reconcile_scope(&mut ldap, &filter, &mut by_id).await?;
                removed.extend(left);
                arrived += came;
                changed_count += came;
                let kind = ReadKind::Incremental {
                    changed: changed_count,
                    removed: removed.len(),
                    groups_read: 0,
                    groups_reused: 0,
                };
                let delta = Delta { touched, removed, arrived };
                (by_id.into_values().collect(), Some(delta), kind, previous.groups)
            }
            (_, reason) => {
                let records = sorted_by_id(self.search(&mut ldap, &filter, Vec::new()).await?);
                let reason = reason.and_then(Result::err);
                (records, None, ReadKind::Full { entries: 0, reason }, BTreeMap::new())
            }
        };
        let _ = ldap.unbind().await;
        let by_dn = records.iter().enumerate().map(|(i, r)| (record_dn(r), i)).collect();
        let read = ReadSession::new(records, kind);
        let records = Arc::clone(&read.records);
        self.session = Some(Session { read, watermark, by_dn: Arc::new(by_dn), delta, previous_groups });
        Ok(records)
    }

    /// One paged search of the user base with `filter`, as records.
    async fn search(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        controls: Vec<RawControl>,
    ) -> Result<Vec<SourceRecord>, SourceError> {
        let base_dn = &self.config.base_dn;
        let entries = self.paged(ldap, base_dn, self.scope(), filter, self.wanted_attributes(), controls).await?;
        Ok(entries.into_iter().map(to_record).collect())
    }

    /// Every entry of a paged search (Simple Paged Results, references skipped).
    async fn paged(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: Vec<String>,
        controls: Vec<RawControl>,
    ) -> Result<Vec<SearchEntry>, SourceError> {
        let page_size = i32::try_from(self.config.page_size).unwrap_or(500);
        let search_error = |e: LdapError| self.search_error(base, filter, e);
        let mut stream = ldap
            .with_timeout(self.timeout())
            .with_controls(controls)
            .streaming_search_with(
                vec![
                    Box::new(EntriesOnly::new()) as Box<dyn ldap3::adapters::Adapter<_, _>>,
                    Box::new(PagedResults::new(page_size)),
                ],
                base,
                scope,
                filter,
                attributes,
            )
            .await
            .map_err(search_error)?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(search_error)? {
            entries.push(SearchEntry::construct(entry));
        }
        stream.finish().await.success().map_err(search_error)?;
        Ok(entries)
    }

    /// The domain controller's `invocationID` and `highestCommittedUSN`; `None` for a directory
    /// that keeps no USNs (not Active Directory), which is then always read in full.
    async fn watermark(&self, ldap: &mut Ldap, root: &SearchEntry) -> Result<Option<UsnWatermark>, SourceError> {
        let (Some(usn), Some(service)) = (text_value(root, "highestCommittedUSN"), text_value(root, "dsServiceName"))
        else {
            return Ok(None);
        };
        let Ok(usn) = usn.parse::<u64>() else { return Ok(None) };
        #[expect(clippy::disallowed_methods, reason = "a source is an edge: the watermark records when it was read")]
        let read_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let invocation_id = self
            .base_entry(ldap, &service, "invocationId")
            .await?
            .and_then(|e| binary_value(&e, "invocationId"))
            .and_then(|bytes| ad::guid_to_string(&bytes));
        Ok(invocation_id.map(|invocation_id| UsnWatermark { invocation_id, usn, read_at }))
    }

    /// The forest's `tombstoneLifetime` in days; AD's default when it sets none, or when the
    /// bind account may not read it.
    async fn tombstone_lifetime_days(&self, ldap: &mut Ldap, root: &SearchEntry) -> u64 {
        let Some(configuration) = text_value(root, "configurationNamingContext") else {
            return DEFAULT_TOMBSTONE_DAYS;
        };
        let base = format!("CN=Directory Service,CN=Windows NT,CN=Services,{configuration}");
        let found = self.base_entry(ldap, &base, "tombstoneLifetime").await.ok().flatten();
        found
            .and_then(|e| text_value(&e, "tombstoneLifetime"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_TOMBSTONE_DAYS)
    }

    /// The entry at `dn` with its attribute `attribute`, if the entry is there.
    async fn base_entry(&self, ldap: &mut Ldap, dn: &str, attribute: &str) -> Result<Option<SearchEntry>, SourceError> {
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search(dn, Scope::Base, "(objectClass=*)", vec![attribute])
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.search_error(dn, "(objectClass=*)", e))?;
        Ok(entries.into_iter().find(|e| !e.is_ref()).map(SearchEntry::construct))
    }

    /// The rootDSE, with what the reads need of it: the watermark's, the naming contexts.
    async fn root_dse(&self, ldap: &mut Ldap) -> Result<SearchEntry, SourceError> {
        let attributes = vec![
            "highestCommittedUSN",
            "dsServiceName",
            "configurationNamingContext",
            "namingContexts",
            "defaultNamingContext",
        ];
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search("", Scope::Base, "(objectClass=*)", attributes)
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.search_error("", "(objectClass=*)", e))?;
        let root = entries.into_iter().find(|e| !e.is_ref()).map(SearchEntry::construct);
        Ok(root.unwrap_or(SearchEntry { dn: String::new(), attrs: HashMap::new(), bin_attrs: HashMap::new() }))
    }

    /// The objectGUIDs of every object changed at or after `since` in the naming context that
    /// holds the user base, tombstones included.
    async fn touched_since(
        &self,
        ldap: &mut Ldap,
        root: &SearchEntry,
        since: u64,
    ) -> Result<HashSet<String>, SourceError> {
        let context = self.naming_context_of_base(root);
        let show_deleted = RawControl { ctype: SHOW_DELETED.to_owned(), crit: true, val: None };
        let filter = format!("(uSNChanged>={since})");
        let entries = self
            .paged(ldap, &context, Scope::Subtree, &filter, vec!["objectGUID".to_owned()], vec![show_deleted])
            .await?;
        Ok(entries
            .iter()
            .filter_map(|e| binary_value(e, "objectGUID"))
            .filter_map(|bytes| ad::guid_to_string(&bytes))
            .collect())
    }

    /// The naming context the user base lies in (the longest of rootDSE's `namingContexts`
    /// that ends it), where deleted and moved users are looked for.
    fn naming_context_of_base(&self, root: &SearchEntry) -> String {
        let base = self.config.base_dn.to_ascii_lowercase();
        let contexts = root.attrs.get("namingContexts").cloned().unwrap_or_default();
        let found = contexts
            .into_iter()
            .filter(|c| base == c.to_ascii_lowercase() || base.ends_with(&format!(",{}", c.to_ascii_lowercase())))
            .max_by_key(String::len);
        found.unwrap_or_else(|| self.naming_context(root))
    }

    /// The domain's naming context (rootDSE `defaultNamingContext`), where groups are searched.
    fn naming_context(&self, root: &SearchEntry) -> String {
        text_value(root, "defaultNamingContext").unwrap_or_else(|| self.config.base_dn.clone())
    }

    fn search_error(&self, base_dn: &str, filter: &str, error: LdapError) -> SourceError {
        let (what, hint) = match &error {
            LdapError::FilterParsing => (
                format!("the filter `{filter}` is malformed"),
                "check the parentheses and escape `*`, `(`, `)` and `\\` in values as `\\2a`, `\\28`, `\\29`, `\\5c`",
            ),
            LdapError::LdapResult { result } if result.rc == 32 => {
                (format!("the base DN `{base_dn}` does not exist"), "check `base_dn` against the directory")
            }
            LdapError::LdapResult { result } if result.rc == 87 => {
                (format!("the server refused the filter `{filter}`"), "check the filter's syntax")
            }
            _ => (
                format!("the search under `{base_dn}` failed"),
                "check `base_dn`, `filter` and the bind account's rights",
            ),
        };
        self.error(what, hint, Some(error))
    }

    /// The records and their DN index, searching the users first if this run has not.
    async fn user_index(&mut self) -> Result<(Arc<Vec<SourceRecord>>, Arc<HashMap<String, usize>>), SourceError> {
        if self.session.is_none() {
            self.users().await?;
        }
        let session = self.session.as_ref();
        Ok(session.map(|s| (Arc::clone(&s.read.records), Arc::clone(&s.by_dn))).unwrap_or_default())
    }
}
