//! Users scoped by group, read at the cost of the scope rather than the tenant: without a
//! state, each scope group's (transitive) user members with the selected properties; with one,
//! the groups' members through their own delta queries (a nested group: each member group's
//! too) and the members' records through `/users/delta` filtered by id, 50 to a query, each
//! batch keeping its own delta link. A batch whose users all stay in scope is followed by its
//! link; one that lost a user is read again whole; users new to the scope are read in new
//! batches. No listing of the tenant's users is ever asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::records::{apply_delta, full_sync};
use super::wire::encode;
use super::{DeltaLinks, GraphSource, Session, to_record};
use crate::manifest::model::GroupSelector;
use crate::source::cache::{ReadKind, ReadSession, SourceCache};
use crate::source::{SourceError, SourceRecord};

/// Users per `/users/delta?$filter=id eq … or …`: Graph's limit.
const IDS_PER_DELTA: usize = 50;

/// Up to 50 users and the delta link that follows their changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeBatch {
    pub ids: Vec<String>,
    pub link: String,
}

impl GraphSource {
    /// Reads only the user members of these groups (`true`: transitive members).
    #[must_use]
    pub fn scoped_by(mut self, groups: Vec<(GroupSelector, bool)>) -> Self {
        self.scope_groups = groups;
        self
    }

    /// The groups whose display name starts with `prefix` (all without one), as `(id,
    /// displayName)`: the candidates of a pairing pattern, asked for by Graph's
    /// `startswith(displayName, '…')`.
    pub async fn group_names(&self, prefix: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        let filter = prefix.map(|p| format!("startswith(displayName,'{}')", p.replace('\'', "''")));
        let mut query = vec![("$select", "id,displayName"), ("$top", "999")];
        if let Some(filter) = &filter {
            query.push(("$filter", filter));
        }
        let items = self.collect(self.url("/groups", &query)).await?;
        Ok(items
            .iter()
            .filter_map(|g| {
                let id = g.get("id")?.as_str()?;
                Some((id.to_owned(), g.get("displayName")?.as_str()?.to_owned()))
            })
            .collect())
    }

    pub(super) fn is_scoped(&self) -> bool {
        !self.scope_groups.is_empty()
    }

    /// Every user member of the scope groups, with the selected properties, sorted by id.
    pub(super) async fn scoped_users(&self) -> Result<Vec<SourceRecord>, SourceError> {
        let mut by_id = BTreeMap::new();
        for (selector, nested) in &self.scope_groups {
            let (id, _) = self.resolve_group(selector).await?;
            let relation = if *nested { "transitiveMembers" } else { "members" };
            let path = format!("/groups/{}/{relation}/microsoft.graph.user", encode(&id));
            for item in self.collect(self.url(&path, &[("$select", &self.select), ("$top", "999")])).await? {
                if let Some(record) = to_record(&item) {
                    by_id.insert(record.id.clone(), record);
                }
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// The scope's users through delta queries, on from `previous` when there is one.
    pub(super) async fn scoped_users_by_delta(
        &mut self,
        previous: Option<SourceCache>,
    ) -> Result<Arc<Vec<SourceRecord>>, SourceError> {
        let links = previous.as_ref().and_then(|p| serde_json::from_value::<DeltaLinks>(p.watermark.clone()).ok());
        let (previous_users, previous_groups, links) = match (previous, links) {
            (Some(previous), Some(links)) => (Some(previous.users), previous.groups, links),
            _ => (None, BTreeMap::new(), DeltaLinks::default()),
        };
        // The groups first: their delta queries say who is in scope.
        self.session = Some(Session {
            read: ReadSession::new(Vec::new(), ReadKind::Full { entries: 0, reason: None }),
            links: DeltaLinks::default(),
            previous: previous_groups,
            previous_links: links.groups.clone(),
        });
        let mut in_scope = BTreeSet::new();
        for (selector, nested) in self.scope_groups.clone() {
            let (id, _) = self.resolve_group(&selector).await?;
            in_scope.extend(self.member_ids(&id, nested).await?);
        }
        let mut by_id: BTreeMap<String, SourceRecord> = previous_users
            .as_ref()
            .map(|users| users.iter().map(|r| (r.id.clone(), r.clone())).collect())
            .unwrap_or_default();
        let before: BTreeSet<String> = by_id.keys().cloned().collect();
        let mut batches = Vec::new();
        let mut updated = 0;
        for batch in links.scope {
            if !batch.ids.iter().all(|id| in_scope.contains(id)) {
                continue;
            }
            match self.delta(batch.link.clone()).await {
                Ok((changes, link)) => {
                    updated += apply_delta(&mut by_id, &changes).0;
                    batches.push(ScopeBatch { ids: batch.ids, link });
                }
                // Read again below, as users new to the scope are.
                Err(SourceError::DeltaExpired { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let covered: BTreeSet<&String> = batches.iter().flat_map(|b| &b.ids).collect();
        by_id.retain(|id, _| covered.contains(id));
        let unread: Vec<String> = in_scope.iter().filter(|id| !covered.contains(id)).cloned().collect();
        for ids in unread.chunks(IDS_PER_DELTA) {
            let filter = ids.iter().map(|id| format!("id eq '{}'", id.replace('\'', "''"))).collect::<Vec<_>>();
            let url = self.url("/users/delta", &[("$filter", &filter.join(" or ")), ("$select", self.select.as_str())]);
            let (items, link) = self.delta(url).await?;
            for record in full_sync(&items) {
                updated += usize::from(before.contains(&record.id));
                by_id.insert(record.id.clone(), record);
            }
            batches.push(ScopeBatch { ids: ids.to_vec(), link });
        }
        let kind = if previous_users.is_some() {
            let removed = before.iter().filter(|id| !by_id.contains_key(*id)).count();
            let arrived = by_id.keys().filter(|id| !before.contains(*id)).count();
            ReadKind::Incremental { changed: updated + arrived, removed, groups_read: 0, groups_reused: 0 }
        } else {
            ReadKind::Full { entries: 0, reason: None }
        };
        let records: Vec<SourceRecord> = by_id.into_values().collect();
        let Some(session) = self.session.as_mut() else { return Ok(Arc::new(records)) };
        session.read.set_users(records, kind);
        session.links.scope = batches;
        Ok(Arc::clone(&session.read.records))
    }

    /// The user ids among a group's members (`nested`: and its member groups'), through each
    /// group's own delta query.
    pub(super) async fn member_ids(&mut self, id: &str, nested: bool) -> Result<BTreeSet<String>, SourceError> {
        let (users, reads) = self.member_ids_read(id, nested).await?;
        for read in reads {
            self.remember_direct(read);
        }
        Ok(users)
    }

    /// `member_ids`, read only: the direct reads to remember come back with the users.
    pub(super) async fn member_ids_read(
        &self,
        id: &str,
        nested: bool,
    ) -> Result<(BTreeSet<String>, Vec<super::DirectRead>), SourceError> {
        let mut users = BTreeSet::new();
        let mut reads = Vec::new();
        let mut seen = BTreeSet::from([id.to_owned()]);
        let mut pending = std::collections::VecDeque::from([id.to_owned()]);
        while let Some(group) = pending.pop_front() {
            let read = self.read_direct_members(&group).await?;
            users.extend(read.users.iter().cloned());
            if nested {
                // A cycle (A contains B contains A) ends here.
                pending.extend(read.groups.iter().filter(|g| seen.insert((*g).clone())).cloned());
            }
            reads.push(read);
        }
        Ok((users, reads))
    }
}
