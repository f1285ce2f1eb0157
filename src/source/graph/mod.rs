//! `kind: graph`: Microsoft Entra ID through Microsoft Graph.
//!
//! OAuth2 client credentials against a configurable authority; users from `/users` with `$select`
//! of exactly the attributes the manifest reads, 999 a page, following `@odata.nextLink` to the
//! end; group members from `/groups/{id}/members` or, nested, `/transitiveMembers`, users only.
//! 429 waits for `Retry-After`, 5xx and timeouts back off and retry, a 401 refreshes the token
//! once.
//!
//! With a state (`resume`), users come from `/users/delta` and each paired group from
//! `/groups/delta?$filter=id eq '…'&$select=members` (a nested pairing: each member group's
//! too, as transitive members have no delta): the first run reads everything and keeps the
//! `@odata.deltaLink`s, later runs read only the changes (`@removed` users and members leave
//! the cache); an expired token (`410 Gone`, `syncStateNotFound`) restarts a full sync. A source
//! that serves only groups keeps its users by delta too, so members resolve to current records.
//! Sources with a `filter` or a mapped `manager` (neither is supported by delta) are read in
//! full every run. A source scoped by its own groups (`users.scope.member_of`) reads only their
//! members (`scope.rs`), never the tenant's users.

mod records;
mod scope;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::records::to_record;
use self::records::{apply_delta, full_sync, select_for};
use self::wire::{encode, path_of};
use super::cache::{CachedGroup, ReadKind, ReadSession, SourceCache, find_record};
use super::{Resume, SourceError, SourceGroup, SourceRead, SourceRecord};
use crate::http::assertion::SigningCertificate;
use crate::http::auth::{Auth, ClientCredential, OAuth2};
use crate::http::body::mib;
use crate::http::exchange::{Ended, Policy, exchange};
use crate::http::pacing::Pacer;
use crate::http::retry::{Backoff, Verdict, verdict};
use crate::manifest::model::{ClientAuth, GraphConfig, GraphCredential, GroupSelector};

const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const MAX_ATTEMPTS: u32 = 5;
/// Guards against a `@odata.nextLink` chain that never ends.
const MAX_PAGES: usize = 100_000;
/// The largest answer read: a page of 999 users with their selected properties is a few MB.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Where the delta queries got to: the `@odata.deltaLink` of the users and of each group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaLinks {
    pub users: String,
    /// By group, `direct {id}`: each group's own direct members.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    /// A scoped read's users, in batches of at most 50 with their own links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<scope::ScopeBatch>,
}

/// A run's delta read: the records and groups, and the links for the next run.
/// One group's direct members as its delta query left them, to remember for the next run.
pub(super) struct DirectRead {
    id: String,
    key: String,
    pub(super) users: BTreeSet<String>,
    pub(super) groups: BTreeSet<String>,
    link: String,
    reused: bool,
}

/// Groups read at once: enough to hide Graph's round trips.
const GROUPS_AT_ONCE: usize = 4;

#[derive(Debug)]
struct Session {
    read: ReadSession,
    links: DeltaLinks,
    previous: BTreeMap<String, CachedGroup>,
    previous_links: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct GraphSource {
    name: String,
    graph_url: String,
    filter: Option<String>,
    /// `$select`: `id`, `accountEnabled` and the attributes the manifest reads.
    select: String,
    /// The manifest reads `manager`, a navigation property: `$expand=manager($select=id)`.
    expand_manager: bool,
    http: reqwest::Client,
    auth: Auth,
    /// What to check when the token endpoint refuses the credential.
    credential_hint: &'static str,
    /// Graph throttles by its own headers and `Retry-After`: this source's own pacing.
    pacer: Pacer,
    backoff: Backoff,
    /// Read through delta queries (a run with a state), on from the last run's cache if any;
    /// taken by the first read.
    resume: Resume,
    /// This run's delta read, once the users were read by delta.
    session: Option<Session>,
    /// Only the user members of these groups are read (`users.scope.member_of`; `true`:
    /// transitive members).
    scope_groups: Vec<(GroupSelector, bool)>,
}

impl GraphSource {
    pub fn new(name: &str, config: &GraphConfig, wanted: &BTreeSet<String>) -> Result<Self, SourceError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("scimform/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &config.ca_file {
            builder = builder.tls_certs_merge(crate::tls::reqwest_certificates(ca_file).map_err(|detail| {
                SourceError::Graph {
                    source_name: name.to_owned(),
                    what: format!("cannot use `ca_file` `{}`: {detail}", ca_file.display()),
                    hint: "give a PEM file of CA certificates".into(),
                }
            })?);
        }
        let http = builder.build().map_err(|e| SourceError::Graph {
            source_name: name.to_owned(),
            what: format!("cannot set up HTTP: {e}"),
            hint: "check `ca_file`".into(),
        })?;
        let token_url = config
            .authority
            .clone()
            .unwrap_or_else(|| format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", config.tenant_id));
        let credential = match &config.credential {
            GraphCredential::ClientSecret(secret) => {
                ClientCredential::Secret { secret: secret.clone(), sent: ClientAuth::Form }
            }
            GraphCredential::Certificate { cert_file, key_file } => ClientCredential::Certificate(
                SigningCertificate::from_files(cert_file, key_file).map_err(|detail| SourceError::Graph {
                    source_name: name.to_owned(),
                    what: format!("cannot use `client_certificate`: {detail}"),
                    hint: "give the PEM certificate registered on the app and its unencrypted RSA private key".into(),
                })?,
            ),
            GraphCredential::FederatedToken { token_file } => ClientCredential::FederatedToken(token_file.clone()),
        };
        let credential_hint = match &config.credential {
            GraphCredential::ClientSecret(_) => "check `tenant_id`, `client_id`, `client_secret` and `authority`",
            GraphCredential::Certificate { .. } => {
                "check `tenant_id`, `client_id`, `client_certificate` and `authority`"
            }
            GraphCredential::FederatedToken { .. } => {
                "check `tenant_id`, `client_id`, `federated_token_file` and `authority`"
            }
        };
        let auth = Auth::OAuth2(OAuth2::new(
            http.clone(),
            token_url,
            config.client_id.clone(),
            credential,
            Some(GRAPH_SCOPE.to_owned()),
        ));
        let expand_manager = wanted.iter().any(|a| a.eq_ignore_ascii_case("manager"));
        Ok(Self {
            name: name.to_owned(),
            graph_url: config
                .graph_url
                .clone()
                .unwrap_or_else(|| DEFAULT_GRAPH_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            filter: config.filter.clone(),
            select: select_for(wanted),
            expand_manager,
            http,
            auth,
            credential_hint,
            pacer: Pacer::new(None),
            backoff: Backoff::default(),
            resume: Resume::Stateless,
            session: None,
            scope_groups: Vec::new(),
        })
    }

    /// Reads through delta queries (a run that keeps state), on from the last run's cache when
    /// `resume` holds one.
    #[must_use]
    pub fn resuming(mut self, resume: Resume) -> Self {
        self.resume = resume;
        self
    }

    /// What the next run resumes from and how this run read, after a delta read.
    pub fn finish(self) -> Option<SourceRead> {
        let session = self.session?;
        let mut links = session.links;
        links.groups.retain(|key, _| session.read.has_group(key));
        Some(SourceRead {
            kind: session.read.kind(),
            cache: session.read.cache(serde_json::to_value(&links).unwrap_or_default()),
        })
    }

    /// Shorter waits between retries (tests).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn error(&self, what: impl Into<String>, hint: impl Into<String>) -> SourceError {
        SourceError::Graph { source_name: self.name.clone(), what: what.into(), hint: hint.into() }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.graph_url);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    /// One GET with the shared retry rules (`http::exchange`): Graph's 500s are passing too.
    async fn get(&self, url: &str) -> Result<Value, SourceError> {
        let path = path_of(url);
        let label = format!("Graph GET {path}");
        let build = |authorization| {
            self.http.get(url).header(AUTHORIZATION, authorization).header("ConsistencyLevel", "eventual")
        };
        let policy =
            Policy { max_attempts: MAX_ATTEMPTS, backoff: self.backoff, max_body: MAX_BODY, retry_server_errors: true };
        // A GET changes nothing: there is nothing to look for before sending it again.
        let nothing = || std::future::ready(Ok::<Option<()>, ()>(None));
        let answer = match exchange(&self.auth, &self.pacer, policy, &label, build, nothing, |_| {}).await {
            Ok(answer) => answer,
            Err(Ended::Auth(e)) => {
                return Err(self.error(e.to_string(), self.credential_hint));
            }
            Err(Ended::Transport(e)) => {
                return Err(self.error(
                    format!("cannot reach Microsoft Graph for GET {path}: {}", crate::http::transport_reason(&e)),
                    "check `graph_url` and the network",
                ));
            }
            Err(Ended::TooLarge { limit }) => {
                return Err(
                    self.error(format!("GET {path} answered more than {} MiB", mib(limit)), "check `graph_url`")
                );
            }
            Err(Ended::Found(()) | Ended::Lookup(())) => unreachable!("a GET looks for nothing"),
        };
        let status = answer.status;
        if verdict(status) == Verdict::Success {
            return serde_json::from_slice(&answer.body).map_err(|e| {
                self.error(format!("GET {path} answered something that is not JSON: {e}"), "check `graph_url`")
            });
        }
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let code = body.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
        if status == 410 || code.eq_ignore_ascii_case("syncStateNotFound") {
            return Err(SourceError::DeltaExpired {
                source_name: self.name.clone(),
                detail: format!("HTTP {status} {code}"),
            });
        }
        let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
        let hint = match status {
            401 | 403 => {
                "check the app registration's Graph permissions (User.Read.All, GroupMember.Read.All) and admin consent"
            }
            404 => "check the group id or name",
            _ => "check the request in the Graph documentation",
        };
        Err(self.error(format!("GET {path} was refused with HTTP {status} {code}: {message}"), hint))
    }

    /// Every item of a collection, following `@odata.nextLink` as an opaque URL until it ends,
    /// and the `@odata.deltaLink` the last page gives (a delta query's).
    async fn pages(&self, first: String) -> Result<(Vec<Value>, Option<String>), SourceError> {
        let mut items = Vec::new();
        let mut next = first;
        let mut followed = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut page = self.get(&next).await?;
            if let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) {
                items.extend(values);
            }
            let Some(link) = page.get("@odata.nextLink").and_then(Value::as_str) else {
                let delta_link = page.get("@odata.deltaLink").and_then(Value::as_str).map(str::to_owned);
                return Ok((items, delta_link));
            };
            followed.insert(std::mem::replace(&mut next, link.to_owned()));
            if followed.contains(&next) {
                return Err(self.error(
                    format!("`@odata.nextLink` of {} leads back to a page already read", path_of(&next)),
                    "report this to the service",
                ));
            }
        }
        Err(self.error("the pages never end", "report this to the service"))
    }

    /// Every item of a collection.
    async fn collect(&self, first: String) -> Result<Vec<Value>, SourceError> {
        Ok(self.pages(first).await?.0)
    }

    pub async fn users(&mut self) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        if let Resume::From(previous) = std::mem::take(&mut self.resume) {
            if self.is_scoped() {
                return self.scoped_users_by_delta(previous).await;
            }
            if self.filter.is_none() && !self.expand_manager {
                return self.users_by_delta(previous).await;
            }
            tracing::info!("source `{}`: a `filter` or a mapped `manager` rules out delta queries", self.name);
        }
        if self.is_scoped() {
            return Ok(Arc::new(self.scoped_users().await?));
        }
        let mut query = vec![("$select", self.select.as_str()), ("$top", "999")];
        if let Some(filter) = &self.filter {
            query.push(("$filter", filter));
        }
        if self.expand_manager {
            query.push(("$expand", "manager($select=id)"));
        }
        let items = self.collect(self.url("/users", &query)).await?;
        Ok(Arc::new(items.iter().filter_map(to_record).collect()))
    }

    /// Every page of a delta query from `url`, and the delta link it ends with. An expired
    /// token is `SourceError::DeltaExpired`, for the caller to start a full sync.
    async fn delta(&self, url: String) -> Result<(Vec<Value>, String), SourceError> {
        match self.pages(url).await? {
            (items, Some(link)) => Ok((items, link)),
            (_, None) => {
                Err(self.error("a delta query ended without `@odata.deltaLink`", "report this to the service"))
            }
        }
    }

    async fn users_by_delta(&mut self, previous: Option<SourceCache>) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        let initial = self.url("/users/delta", &[("$select", self.select.as_str())]);
        let links = previous.as_ref().and_then(|p| serde_json::from_value::<DeltaLinks>(p.watermark.clone()).ok());
        let (records, kind, users_link, previous) = match (previous, links) {
            (Some(previous), Some(links)) => match self.delta(links.users.clone()).await {
                Ok((changes, link)) => {
                    let mut by_id: BTreeMap<String, SourceRecord> =
                        Arc::unwrap_or_clone(previous.users).into_iter().map(|r| (r.id.clone(), r)).collect();
                    let (updated, removed) = apply_delta(&mut by_id, &changes);
                    let kind = ReadKind::Incremental { changed: updated, removed, groups_read: 0, groups_reused: 0 };
                    let groups = (previous.groups, links.groups);
                    (by_id.into_values().collect(), kind, link, Some(groups))
                }
                Err(SourceError::DeltaExpired { detail, .. }) => {
                    let (items, link) = self.delta(initial).await?;
                    let records = full_sync(&items);
                    let reason = format!("the delta token expired ({detail}): a full sync");
                    (records, ReadKind::Full { entries: 0, reason: Some(reason) }, link, None)
                }
                Err(e) => return Err(e),
            },
            (previous, _) => {
                let (items, link) = self.delta(initial).await?;
                let records = full_sync(&items);
                let reason = previous.map(|_| "the state holds no delta link for this source".to_owned());
                (records, ReadKind::Full { entries: 0, reason }, link, None)
            }
        };
        let read = ReadSession::new(records, kind);
        let records = Arc::clone(&read.records);
        let (previous, previous_links) = previous.unwrap_or_default();
        let links = DeltaLinks { users: users_link, ..DeltaLinks::default() };
        self.session = Some(Session { read, links, previous, previous_links });
        Ok(records)
    }

    /// A paired group through delta queries, when this run reads users by delta: its own and,
    /// `nested`, each member group's (transitive members have no delta). Members are ids,
    /// resolved through the users' records.
    /// A group's members by delta queries (a run that keeps state), with the reads to remember;
    /// `None` without a session.
    async fn group_by_delta(
        &self,
        id: &str,
        name: &str,
        nested: bool,
    ) -> Result<Option<(SourceGroup, Vec<DirectRead>)>, SourceError> {
        let Some(records) = self.session.as_ref().map(|s| Arc::clone(&s.read.records)) else {
            return Ok(None);
        };
        let (users, reads) = self.member_ids_read(id, nested).await?;
        let mut found = Vec::new();
        let mut unresolved = Vec::new();
        for member in &users {
            match find_record(&records, member) {
                Some(record) => found.push(record.clone()),
                None => unresolved.push(member.clone()),
            }
        }
        Ok(Some((SourceGroup { id: id.to_owned(), name: name.to_owned(), members: found, unresolved }, reads)))
    }

    /// One group's direct members, user ids and member group ids, through its own delta query
    /// (`/groups/delta?$filter=id eq '…'&$select=members`), on from the last run's link; what to
    /// remember comes back with the members (`remember_direct`).
    pub(super) async fn read_direct_members(&self, id: &str) -> Result<DirectRead, SourceError> {
        let key = format!("direct {id}");
        let session = self.session.as_ref();
        let cached = session.and_then(|s| s.previous.get(&key).cloned());
        let link = session.and_then(|s| s.previous_links.get(&key).cloned());
        let filter = format!("id eq '{}'", id.replace('\'', "''"));
        let initial = self.url("/groups/delta", &[("$filter", &filter), ("$select", "members")]);
        let resumed = match (cached, link) {
            (Some(cached), Some(link)) => match self.delta(link).await {
                Ok((changes, link)) => {
                    Some((cached.members.into_iter().collect(), cached.walked.into_iter().collect(), changes, link))
                }
                Err(SourceError::DeltaExpired { detail, .. }) => {
                    tracing::warn!(
                        "source `{}`: the delta token of group {id} expired ({detail}): a full sync",
                        self.name
                    );
                    None
                }
                Err(e) => return Err(e),
            },
            _ => None,
        };
        let reused = resumed.is_some();
        let (mut users, mut groups, changes, link): (BTreeSet<String>, BTreeSet<String>, _, _) =
            if let Some(resumed) = resumed {
                resumed
            } else {
                let (changes, link) = self.delta(initial).await?;
                (BTreeSet::new(), BTreeSet::new(), changes, link)
            };
        for group in changes.iter().filter(|g| g.get("id").and_then(Value::as_str) == Some(id)) {
            for member in group.get("members@delta").and_then(Value::as_array).into_iter().flatten() {
                let Some(member_id) = member.get("id").and_then(Value::as_str) else { continue };
                let kind = member.get("@odata.type").and_then(Value::as_str).unwrap_or("#microsoft.graph.user");
                if member.get("@removed").is_some() {
                    users.remove(member_id);
                    groups.remove(member_id);
                } else if kind == "#microsoft.graph.user" {
                    users.insert(member_id.to_owned());
                } else if kind == "#microsoft.graph.group" {
                    groups.insert(member_id.to_owned());
                }
            }
        }
        Ok(DirectRead { id: id.to_owned(), key, users, groups, link, reused })
    }

    /// Remembers a group's direct members and its delta link, for the next run.
    fn remember_direct(&mut self, read: DirectRead) {
        let cached = CachedGroup {
            id: read.id,
            name: String::new(),
            members: read.users.iter().cloned().collect(),
            unresolved: Vec::new(),
            // Here: the member groups, which a nested pairing walks.
            walked: read.groups.iter().cloned().collect(),
        };
        if let Some(session) = self.session.as_mut() {
            session.read.remember_group(read.key.clone(), cached, read.reused);
            session.links.groups.insert(read.key, read.link);
        }
    }

    pub async fn group(&mut self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        let mut read = self.groups(&[(selector.clone(), nested)]).await?;
        read.pop().unwrap_or_else(|| Err(self.error("no group was read", "report this")))
    }

    /// The groups `wanted` asks for, each as its own result, read a few at once; what their
    /// delta queries leave is remembered after. A source that serves only groups still reads
    /// its users by delta when the run keeps state (once in full, then only changes), so
    /// members resolve to records that follow every change, not just the membership's.
    pub async fn groups(
        &mut self,
        wanted: &[(GroupSelector, bool)],
    ) -> Result<Vec<Result<SourceGroup, SourceError>>, SourceError> {
        let tracking = matches!(self.resume, Resume::From(_));
        if tracking && self.filter.is_none() && !self.expand_manager && self.session.is_none() {
            self.users().await?;
        }
        let this = &*self;
        let mut reads = Vec::with_capacity(wanted.len());
        for (selector, nested) in wanted {
            reads.push(async move { this.read_group(selector, *nested).await });
        }
        let read: Vec<_> = futures_util::stream::iter(reads).buffered(GROUPS_AT_ONCE).collect().await;
        let mut groups = Vec::with_capacity(read.len());
        for result in read {
            groups.push(result.map(|(group, directs)| {
                for direct in directs {
                    self.remember_direct(direct);
                }
                group
            }));
        }
        Ok(groups)
    }

    /// One group's members: by delta with a session, else its (transitive) user members.
    async fn read_group(
        &self,
        selector: &GroupSelector,
        nested: bool,
    ) -> Result<(SourceGroup, Vec<DirectRead>), SourceError> {
        let (id, name) = self.resolve_group(selector).await?;
        if let Some(read) = self.group_by_delta(&id, &name, nested).await? {
            return Ok(read);
        }
        let relation = if nested { "transitiveMembers" } else { "members" };
        let path = format!("/groups/{}/{relation}/microsoft.graph.user", encode(&id));
        let items = self.collect(self.url(&path, &[("$select", &self.select), ("$top", "999")])).await?;
        let members = items.iter().filter_map(to_record).collect();
        Ok((SourceGroup { id, name, members, unresolved: Vec::new() }, Vec::new()))
    }

    /// A group's id and display name: read by id, or found by its display name (once; more
    /// than one is an error).
    async fn resolve_group(&self, selector: &GroupSelector) -> Result<(String, String), SourceError> {
        Ok(match selector {
            GroupSelector::Id(id) => {
                let group =
                    self.get(&self.url(&format!("/groups/{}", encode(id)), &[("$select", "id,displayName")])).await?;
                (id.clone(), group.get("displayName").and_then(Value::as_str).unwrap_or(id).to_owned())
            }
            GroupSelector::Name(name) => {
                let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
                let found =
                    self.collect(self.url("/groups", &[("$filter", &filter), ("$select", "id,displayName")])).await?;
                match found.as_slice() {
                    [group] => (group.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(), name.clone()),
                    [] => {
                        return Err(SourceError::GroupNotFound {
                            source_name: self.name.clone(),
                            selector: selector.to_string(),
                        });
                    }
                    many => {
                        return Err(self.error(
                            format!("{} groups are named `{name}`", many.len()),
                            "name the group by `id` instead",
                        ));
                    }
                }
            }
            GroupSelector::Dn(_) => {
                return Err(self.error("Graph groups have no DN", "name the group by `id` or `name`"));
            }
        })
    }
}
