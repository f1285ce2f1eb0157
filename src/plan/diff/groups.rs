//! Group memberships: source members resolved to target ids through the user mapping.

use std::collections::{BTreeMap, BTreeSet};

use super::References;
use crate::current::{CurrentGroup, CurrentState, CurrentUser};
use crate::desired::{DesiredGroup, DesiredState, match_key};
use crate::manifest::model::{MembershipMethod, TargetGroupRef, UserMapping};
use crate::plan::{GroupChange, Member, Plan, Precondition};

/// The pairings' `groups` against the target's groups; `users` are the target users a removed
/// member is named by.
pub(super) fn groups(
    desired: &DesiredState,
    groups: &[DesiredGroup],
    current: &CurrentState,
    users: &[&CurrentUser],
    references: &References<'_, '_>,
    mapping: &UserMapping,
    plan: &mut Plan,
) {
    let key_by_id: BTreeMap<&str, String> =
        users.iter().filter_map(|u| Some((u.id.as_str(), match_key(u.get(&mapping.match_path)?.as_str()?)))).collect();
    let forgotten = &desired.forgotten;
    for group in groups {
        if let Some(target) = current.groups.get(&group.target).filter(|t| forgotten.groups.contains_key(&t.id)) {
            plan.warnings.push(format!(
                "group `{}` (target group `{}`) is forgotten (`scimform state forget`): its members are left as they are",
                group.pairing, target.display_name
            ));
            continue;
        }
        for member in &group.unresolved {
            plan.warnings
                .push(format!("group `{}`: member `{member}` matches no user of the manifest; skipped", group.pairing));
        }
        let missing = CurrentGroup {
            id: String::new(),
            display_name: match &group.target {
                TargetGroupRef::DisplayName(name) => name.clone(),
                TargetGroupRef::Id(id) => id.clone(),
            },
            members: BTreeSet::new(),
            version: None,
        };
        let (target, create) = match current.groups.get(&group.target) {
            Some(target) => (target, false),
            None if group.create => (&missing, true),
            None => {
                plan.warnings
                    .push(format!("group `{}`: target group {} was not read; skipped", group.pairing, group.target));
                continue;
            }
        };
        let mut members = Vec::new();
        for key in &group.members {
            if let Some(id) = references.target_id(key) {
                members.push(Member { key: key.clone(), id: Some(id.to_owned()) });
            } else if references.created(key) {
                members.push(Member { key: key.clone(), id: None });
            } else {
                plan.warnings.push(format!(
                    "group `{}`: member `{key}` has no user in the target and none is planned; skipped",
                    group.pairing
                ));
            }
        }
        // A forgotten user keeps whatever membership it has: not added, not removed (and a PUT
        // carries it as it is).
        members.retain(|m| m.id.as_ref().is_none_or(|id| !forgotten.users.contains_key(id)));
        for id in target.members.iter().filter(|id| forgotten.users.contains_key(*id)) {
            members.push(Member {
                key: key_by_id.get(id.as_str()).cloned().unwrap_or_else(|| id.clone()),
                id: Some(id.clone()),
            });
        }
        let wanted_ids: BTreeSet<&str> = members.iter().filter_map(|m| m.id.as_deref()).collect();
        let add: Vec<Member> =
            members.iter().filter(|m| m.id.as_deref().is_none_or(|id| !target.members.contains(id))).cloned().collect();
        let mut remove: Vec<Member> = target
            .members
            .iter()
            .filter(|id| !wanted_ids.contains(id.as_str()))
            .map(|id| Member {
                key: key_by_id.get(id.as_str()).cloned().unwrap_or_else(|| id.clone()),
                id: Some(id.clone()),
            })
            .collect();
        remove.sort();
        if add.is_empty() && remove.is_empty() && !create {
            continue;
        }
        plan.groups.push(GroupChange {
            name: group.pairing.clone(),
            target_id: target.id.clone(),
            display_name: target.display_name.clone(),
            precondition: if create {
                Precondition::Absent
            } else {
                Precondition::for_group(target.version.as_deref(), &target.display_name, &target.members)
            },
            method: group.method,
            members_per_operation: group.members_per_operation,
            members_per_request: group.members_per_request,
            create,
            add,
            remove,
            members: if group.method == MembershipMethod::Put { members } else { Vec::new() },
            members_before: target.members.len(),
        });
    }
}
