//! `plan`: desired state × current state -> `Plan`. Pure and deterministic: the same inputs, in
//! any order, give the same plan.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::rails::{Rails, check_rails};
use super::{AttributeChange, Clock, Plan, Precondition};
use crate::current::{CurrentState, CurrentUser};
use crate::desired::{DesiredState, DesiredUser};
use crate::manifest::model::UserMapping;
use crate::scim::ScimPath;

/// Computes the plan. `mapping` supplies the policy: match attribute, ownership marker,
/// deprovisioning and whether disabled source users are created.
pub fn plan(mapping: &UserMapping, desired: &DesiredState, current: &CurrentState) -> Plan {
    plan_at(mapping, desired, current, &Clock::default())
}

/// `plan`, at a time: users scimform disabled at least `delete_after_days` before
/// `clock.now` and still gone are deleted.
pub fn plan_at(mapping: &UserMapping, desired: &DesiredState, current: &CurrentState, clock: &Clock) -> Plan {
    let mut plan = Plan::default();
    let mut users: Vec<&CurrentUser> = current.users.iter().collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let managed = mapping.managed_paths();
    let precondition = |user: &CurrentUser| Precondition::for_user(user, &managed);

    let Matching { matched: found, unmatched, mut claimed } =
        match_users(mapping, desired, &users, &mut plan.conflicts);
    // A forgotten target user is nobody's to change, disable or count as unmanaged.
    let forgotten = &desired.forgotten;
    claimed.extend(users.iter().enumerate().filter(|(_, u)| forgotten.users.contains_key(&u.id)).map(|(i, _)| i));
    // Desired key -> target id, for resolving group members and references (`manager`).
    let mut resolved: BTreeMap<&str, &str> = BTreeMap::new();
    let mut created: BTreeSet<&str> = BTreeSet::new();
    let mut disabled_not_created = 0;
    // Matched first, changed after: a reference can name any user, matched or created.
    let mut matched: Vec<(&DesiredUser, &CurrentUser, bool)> = Vec::new();
    let mut to_create: Vec<&DesiredUser> = Vec::new();
    for (want, index, adopting) in found {
        let found = users[index];
        resolved.insert(&want.key, &found.id);
        if forgotten.users.contains_key(&found.id) {
            plan.warnings.push(format!(
                "user `{}` is forgotten (`scimform state forget`): left as it is; `state forget --undo user:{}` manages it again",
                want.key, want.key
            ));
            continue;
        }
        matched.push((want, found, adopting));
    }
    for want in unmatched {
        if want.active || mapping.create_disabled {
            created.insert(&want.key);
            to_create.push(want);
        } else {
            disabled_not_created += 1;
        }
    }

    let references = References { resolved: &resolved, created: &created };
    // A first run's 100,000 creates fill the vector exactly, not a doubled one.
    plan.users.reserve_exact(to_create.len());
    for want in to_create {
        plan.users.push(create(mapping, want, &references, &mut plan.warnings));
    }
    for (want, found, adopting) in matched {
        if let Some(change) =
            update(mapping, want, found, adopting, precondition(found), &references, &mut plan.warnings)
        {
            plan.users.push(change);
        }
    }

    if disabled_not_created > 0 {
        plan.warnings.push(format!(
            "{disabled_not_created} user(s) disabled in the source are not in the target and were not created \
             (set `users.create_disabled: true` to create them)"
        ));
    }

    deprovision(mapping, desired, &users, &claimed, &precondition, clock, &mut plan);
    plan.unmanaged = unmanaged(mapping, &users, &claimed, &plan.conflicts);
    groups(desired, current, &users, &resolved, &created, mapping, &mut plan);

    plan.users.sort_by(|a, b| a.key.cmp(&b.key).then(a.target_id.cmp(&b.target_id)));
    plan.warnings.extend(desired.warnings.iter().cloned());
    plan.conflicts.sort_by(|a, b| (&a.key, &a.target_id).cmp(&(&b.key, &b.target_id)));
    let removals = desired.groups.iter().map(|g| (g.pairing.clone(), g.max_removals));
    plan.blocked = check_rails(&plan, &Rails::new(mapping, removals));
    plan
}

/// Target users no desired user is and that carry no marker of ours (nor stand in a conflict):
/// left alone, counted so the reader knows they are there (Genesys licenses them too).
fn unmanaged(
    mapping: &UserMapping,
    users: &[&CurrentUser],
    claimed: &BTreeSet<usize>,
    conflicts: &[super::Conflict],
) -> Vec<super::UnmanagedUser> {
    let in_conflict: BTreeSet<&str> = conflicts.iter().map(|c| c.target_id.as_str()).collect();
    let ours = |user: &CurrentUser| {
        user.external_id()
            .zip(mapping.external_id.as_ref())
            .is_some_and(|(m, mapping)| deprovision::is_ours(mapping, m))
    };
    users
        .iter()
        .enumerate()
        .filter(|(i, u)| !claimed.contains(i) && !ours(u) && !in_conflict.contains(u.id.as_str()))
        .map(|(_, u)| super::UnmanagedUser {
            id: u.id.clone(),
            user_name: u.user_name().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// Where referenced users are: matched (their target id) or created by this plan.
struct References<'a> {
    resolved: &'a BTreeMap<&'a str, &'a str>,
    created: &'a BTreeSet<&'a str>,
}

impl References<'_> {
    /// The change that makes `path` refer to the user `key`, or `None` when it already does
    /// (`before` is the id) or the user is nowhere (then a warning says so).
    fn change(
        &self,
        want: &DesiredUser,
        path: &ScimPath,
        key: &str,
        before: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Option<AttributeChange> {
        let (after, reference) = match (self.resolved.get(key), self.created.contains(key)) {
            (Some(id), _) => (Some(Value::String((*id).to_owned())), None),
            (None, true) => (None, Some(key.to_owned())),
            (None, false) => {
                warnings.push(format!(
                    "user `{}`: `{path}` refers to `{key}`, who is not in the target and not planned; left as it is",
                    want.key
                ));
                return None;
            }
        };
        if after.is_some() && after.as_ref() == before {
            return None;
        }
        Some(AttributeChange {
            path: path.clone(),
            before: before.cloned().map(Box::new),
            after,
            set: None,
            reference: reference.map(Box::new),
        })
    }
}

mod compare;
mod deprovision;
mod groups;
mod matching;

use self::compare::{create, update};
use self::deprovision::deprovision;
use self::groups::groups;
use self::matching::{Matching, match_users};

#[cfg(test)]
mod tests;
