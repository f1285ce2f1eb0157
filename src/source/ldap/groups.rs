//! An AD source's groups: found by DN, objectGUID or name, members read in `member;range=`
//! windows, nested groups walked; the groups nothing touched since the last run come from the
//! cache, the others are read at the same time.

use std::collections::{BTreeSet, HashMap, VecDeque};

use futures_util::StreamExt;
use ldap3::{Ldap, LdapError, Scope, SearchEntry, ldap_escape};

use super::entry::{binary_value, guid_filter_value, text_value};
use super::{LdapSource, RANGE_WINDOW};
use crate::manifest::model::GroupSelector;
use crate::record::ad;
use crate::source::cache::{CachedGroup, find_record, group_key};
use crate::source::{SourceError, SourceGroup, SourceRecord};

/// Groups read at once (a connection each): enough to hide round trips, few for a DC.
const GROUPS_AT_ONCE: usize = 4;

impl LdapSource {
    /// The cached group, with its members' records as read now, when nothing that makes it up
    /// changed since: not the group or a nested group, no member left the scope, and, where it
    /// had members outside the scope, nobody came into it.
    fn reusable_group(&mut self, key: &str, records: &[SourceRecord]) -> Option<SourceGroup> {
        let session = self.session.as_mut()?;
        let delta = session.delta.as_ref()?;
        let cached = session.previous_groups.get(key)?;
        let changed = cached.walked.iter().any(|id| delta.touched.contains(id))
            || cached.members.iter().any(|id| delta.removed.contains(id))
            || (!cached.unresolved.is_empty() && delta.arrived > 0);
        if changed {
            return None;
        }
        let members = cached.members.iter().map(|id| find_record(records, id).cloned()).collect::<Option<Vec<_>>>()?;
        let group = SourceGroup {
            id: cached.id.clone(),
            name: cached.name.clone(),
            members,
            unresolved: cached.unresolved.clone(),
        };
        session.read.remember_group(key.to_owned(), cached.clone(), true);
        Some(group)
    }

    /// One group's members, as `groups` reads them.
    pub async fn group(&mut self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        let mut read = self.groups(&[(selector.clone(), nested)]).await?;
        read.pop().unwrap_or_else(|| Err(self.error(String::from("no group was read"), "report this", None)))
    }

    /// The groups `wanted` asks for, each as its own result: the ones nothing touched since the
    /// last run from the cache, the others read at the same time (a connection each, a few at
    /// once), each remembered for the next run.
    /// The users are searched first if this run has not (an error there is the outer one).
    pub async fn groups(
        &mut self,
        wanted: &[(GroupSelector, bool)],
    ) -> Result<Vec<Result<SourceGroup, SourceError>>, SourceError> {
        let (records, by_dn) = self.user_index().await?;
        let mut found: Vec<Option<Result<SourceGroup, SourceError>>> = Vec::with_capacity(wanted.len());
        let mut pending = Vec::new();
        for (index, (selector, nested)) in wanted.iter().enumerate() {
            let key = group_key(selector, *nested);
            if let Some(group) = self.reusable_group(&key, &records) {
                found.push(Some(Ok(group)));
            } else {
                found.push(None);
                pending.push((index, key, selector.clone(), *nested));
            }
        }
        let this = &*self;
        let (records, by_dn) = (&records, &by_dn);
        let mut reads = Vec::with_capacity(pending.len());
        for (index, key, selector, nested) in pending {
            reads.push(async move { (index, key, this.read_group(&selector, nested, records, by_dn).await) });
        }
        let read: Vec<_> = futures_util::stream::iter(reads).buffered(GROUPS_AT_ONCE).collect().await;
        for (index, key, result) in read {
            found[index] = Some(result.map(|(group, walked)| {
                self.remember_group(key, &group, walked);
                group
            }));
        }
        Ok(found
            .into_iter()
            .map(|f| f.unwrap_or_else(|| Err(self.error(String::from("no group was read"), "report this", None))))
            .collect())
    }

    /// One group's members read from the directory (nested groups walked), and the ids of the
    /// groups walked.
    async fn read_group(
        &self,
        selector: &GroupSelector,
        nested: bool,
        records: &[SourceRecord],
        by_dn: &HashMap<String, usize>,
    ) -> Result<(SourceGroup, Vec<String>), SourceError> {
        let mut ldap = self.connect().await?;
        let (dn, id, name) = self.find_group(&mut ldap, selector).await?;
        let mut members = Vec::new();
        let mut unresolved = BTreeSet::new();
        let mut walked = vec![id.clone()];
        let mut seen_groups: BTreeSet<String> = BTreeSet::from([dn.to_ascii_lowercase()]);
        let mut pending = VecDeque::from([dn]);
        let mut member_set = BTreeSet::new();
        while let Some(group_dn) = pending.pop_front() {
            for member_dn in self.members(&mut ldap, &group_dn).await? {
                let key = member_dn.to_ascii_lowercase();
                if let Some(record) = by_dn.get(&key).map(|&i| &records[i]) {
                    if member_set.insert(record.id.clone()) {
                        members.push(record.clone());
                    }
                } else if let Some(group_id) = if nested { self.group_id(&mut ldap, &member_dn).await? } else { None } {
                    // A cycle (A contains B contains A) ends here.
                    if seen_groups.insert(key) {
                        walked.push(group_id);
                        pending.push_back(member_dn);
                    }
                } else {
                    unresolved.insert(member_dn);
                }
            }
        }
        let _ = ldap.unbind().await;
        // Members outside the user search are reported as unresolved, by DN.
        Ok((SourceGroup { id, name, members, unresolved: unresolved.into_iter().collect() }, walked))
    }

    /// Remembers a group read in full, for the next run.
    fn remember_group(&mut self, key: String, group: &SourceGroup, mut walked: Vec<String>) {
        if let Some(session) = self.session.as_mut() {
            walked.sort();
            let cached = CachedGroup {
                id: group.id.clone(),
                name: group.name.clone(),
                members: group.members.iter().map(|m| m.id.clone()).collect(),
                unresolved: group.unresolved.clone(),
                walked,
            };
            session.read.remember_group(key, cached, false);
        }
    }

    pub(super) async fn find_group(
        &self,
        ldap: &mut Ldap,
        selector: &GroupSelector,
    ) -> Result<(String, String, String), SourceError> {
        let (base, scope, filter) = match selector {
            GroupSelector::Dn(dn) => (dn.clone(), Scope::Base, "(objectClass=group)".to_owned()),
            GroupSelector::Id(guid) => (
                self.naming_context(&self.root_dse(ldap).await?),
                Scope::Subtree,
                format!("(&(objectClass=group)(objectGUID={}))", guid_filter_value(guid)),
            ),
            GroupSelector::Name(name) => {
                let value = ldap_escape(name.as_str());
                (
                    self.naming_context(&self.root_dse(ldap).await?),
                    Scope::Subtree,
                    format!("(&(objectClass=group)(|(sAMAccountName={value})(cn={value})))"),
                )
            }
        };
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search(&base, scope, &filter, vec!["objectGUID", "cn"])
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.search_error(&base, &filter, e))?;
        let entries: Vec<SearchEntry> =
            entries.into_iter().filter(|e| !e.is_ref()).map(SearchEntry::construct).collect();
        match entries.as_slice() {
            [entry] => {
                let id = binary_value(entry, "objectGUID")
                    .and_then(|b| ad::guid_to_string(&b))
                    .unwrap_or_else(|| entry.dn.clone());
                let name = text_value(entry, "cn").unwrap_or_else(|| entry.dn.clone());
                Ok((entry.dn.clone(), id, name))
            }
            [] => Err(SourceError::GroupNotFound { source_name: self.name.clone(), selector: selector.to_string() }),
            many => Err(self.error(
                format!("{} groups match {selector}", many.len()),
                "name the group by `dn` instead",
                None,
            )),
        }
    }

    /// Every `member` of a group, window by window (`member;range=0-1499`, `1500-2999`, ...).
    async fn members(&self, ldap: &mut Ldap, group_dn: &str) -> Result<Vec<String>, SourceError> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let wanted = format!("member;range={start}-{}", start + RANGE_WINDOW - 1);
            let (entries, _) = ldap
                .with_timeout(self.timeout())
                .search(group_dn, Scope::Base, "(objectClass=*)", vec![wanted.as_str()])
                .await
                .and_then(ldap3::SearchResult::success)
                .map_err(|e| self.search_error(group_dn, "(objectClass=*)", e))?;
            let Some(entry) = entries.into_iter().find(|e| !e.is_ref()).map(SearchEntry::construct) else {
                return Ok(all);
            };
            let mut next = None;
            for (attribute, values) in entry.attrs {
                match ad::parse_range(&attribute) {
                    Some((_, Some(high))) if attribute.to_ascii_lowercase().starts_with("member;") => {
                        all.extend(values);
                        next = Some(high + 1);
                    }
                    Some((_, None)) if attribute.to_ascii_lowercase().starts_with("member;") => all.extend(values),
                    // A server that ignores ranges answers with the whole attribute.
                    None if attribute.eq_ignore_ascii_case("member") => all.extend(values),
                    _ => {}
                }
            }
            match next {
                Some(n) => start = n,
                None => return Ok(all),
            }
        }
    }

    /// The objectGUID of the group at `dn`; `None` when it is not a group.
    async fn group_id(&self, ldap: &mut Ldap, dn: &str) -> Result<Option<String>, SourceError> {
        let result =
            ldap.with_timeout(self.timeout()).search(dn, Scope::Base, "(objectClass=group)", vec!["objectGUID"]).await;
        match result.and_then(ldap3::SearchResult::success) {
            Ok((entries, _)) => Ok(entries.into_iter().find(|e| !e.is_ref()).map(|e| {
                let entry = SearchEntry::construct(e);
                binary_value(&entry, "objectGUID").and_then(|b| ad::guid_to_string(&b)).unwrap_or(entry.dn)
            })),
            // A member DN that no longer exists is not a group; it is reported as unresolved.
            Err(LdapError::LdapResult { result }) if result.rc == 32 => Ok(None),
            Err(e) => Err(self.search_error(dn, "(objectClass=group)", e)),
        }
    }
}
