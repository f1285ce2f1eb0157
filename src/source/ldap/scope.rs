//! Users scoped by group on the server's side: the user search asks AD for the scope groups'
//! members only (`memberOf`, through AD's in-chain matching rule when nested), so a read costs
//! the scope, not the directory. A membership change touches the group, not the user, so an
//! incremental read also asks which objectGUIDs are in scope now (one attribute each) and reads
//! the users that came into it.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use ldap3::{Ldap, ldap_escape};

use super::entry::{binary_value, guid_filter_value};
use super::{LdapSource, SourceError, SourceRecord};
use crate::manifest::model::GroupSelector;
use crate::record::ad;

/// LDAP_MATCHING_RULE_IN_CHAIN: `memberOf` through nested groups, evaluated by the server.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// objectGUIDs per search when reading the users that came into the scope.
const GUIDS_PER_SEARCH: usize = 50;

impl LdapSource {
    /// Reads only the members of these groups (`true`: members of member groups too).
    #[must_use]
    pub fn scoped_by(mut self, groups: Vec<(GroupSelector, bool)>) -> Self {
        self.scope_groups = groups;
        self
    }

    /// The groups of the naming context whose `cn` starts with `prefix` (all without one), as
    /// `(objectGUID, cn)`: the candidates of a pairing pattern.
    pub async fn group_names(&self, prefix: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        let mut ldap = self.connect().await?;
        let context = self.naming_context(&self.root_dse(&mut ldap).await?);
        let cn = prefix.map_or_else(|| "*".to_owned(), |p| format!("{}*", ldap_escape(p)));
        let filter = format!("(&(objectClass=group)(cn={cn}))");
        let attributes = vec!["objectGUID".to_owned(), "cn".to_owned()];
        let entries = self.paged(&mut ldap, &context, ldap3::Scope::Subtree, &filter, attributes, Vec::new()).await?;
        let _ = ldap.unbind().await;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let id = binary_value(e, "objectGUID").and_then(|b| ad::guid_to_string(&b))?;
                Some((id, super::entry::text_value(e, "cn")?))
            })
            .collect())
    }

    /// `filter` limited to the scope groups' members:
    /// `(&filter(|(memberOf:1.2.840.113556.1.4.1941:=<dn>)(memberOf=<dn>)))`.
    pub(super) async fn scoped_filter(&self, ldap: &mut Ldap, filter: &str) -> Result<String, SourceError> {
        if self.scope_groups.is_empty() {
            return Ok(filter.to_owned());
        }
        let mut any = String::from("(|");
        for (selector, nested) in &self.scope_groups {
            let (dn, _, _) = self.find_group(ldap, selector).await?;
            let rule = if *nested { format!(":{IN_CHAIN}:") } else { String::new() };
            let _ = write!(any, "(memberOf{rule}={})", ldap_escape(dn.as_str()));
        }
        any.push(')');
        Ok(format!("(&{filter}{any})"))
    }

    /// On an incremental read of a scoped search: drops the users no longer in scope from
    /// `by_id` and reads those that came into it without changing. Returns the ids that left and
    /// how many came.
    pub(super) async fn reconcile_scope(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        by_id: &mut BTreeMap<String, SourceRecord>,
    ) -> Result<(HashSet<String>, usize), SourceError> {
        if self.scope_groups.is_empty() {
            return Ok((HashSet::new(), 0));
        }
        let base = self.config.base_dn.clone();
        let entries = self.paged(ldap, &base, self.scope(), filter, vec!["objectGUID".to_owned()], Vec::new()).await?;
        let in_scope: HashSet<String> = entries
            .iter()
            .map(|e| binary_value(e, "objectGUID").and_then(|b| ad::guid_to_string(&b)).unwrap_or_else(|| e.dn.clone()))
            .collect();
        let left: HashSet<String> = by_id.keys().filter(|id| !in_scope.contains(*id)).cloned().collect();
        by_id.retain(|id, _| !left.contains(id));
        let mut came: Vec<&String> = in_scope.iter().filter(|id| !by_id.contains_key(*id)).collect();
        came.sort();
        let mut count = 0;
        for chunk in came.chunks(GUIDS_PER_SEARCH) {
            let any = chunk.iter().fold(String::new(), |mut any, id| {
                let _ = write!(any, "(objectGUID={})", guid_filter_value(id));
                any
            });
            for record in self.search(ldap, &format!("(&{filter}(|{any}))"), Vec::new()).await? {
                count += 1;
                by_id.insert(record.id.clone(), record);
            }
        }
        Ok((left, count))
    }
}
