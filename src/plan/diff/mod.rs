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
    plan_parts(mapping, desired, &desired.groups, current, clock, &Rest::default()).plan
}

/// A plan and what it found on the way.
pub struct Parts<'a> {
    pub plan: Plan,
    /// Desired key -> target id: which target user each desired user planned here is.
    pub resolved: BTreeMap<&'a str, &'a str>,
    /// How many of the plan's warnings are about single users (a reference to nobody, a
    /// forgotten user), not counts, groups or the desired state's own.
    pub user_warnings: usize,
}

/// Where a desired user not planned here is in the target.
pub type TargetIdOf<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

/// What a plan made for some users only (`plan::delta`) takes as it was from the last plan,
/// made in full, for all the others: none of them is in the desired or current state given.
#[derive(Default)]
pub struct Rest<'a> {
    /// The target id of a desired user not planned here (`None`: it has none, or it is planned here).
    pub target_id: Option<&'a TargetIdOf<'a>>,
    /// The rest's target users that match nothing here (`Plan::unmanaged`), by id.
    pub unmanaged: Vec<super::UnmanagedUser>,
    /// The rest's users carrying our marker (`Plan::owned_users`).
    pub owned_users: usize,
    /// The rest's disabled source users that are not created.
    pub disabled_not_created: usize,
    /// The rest's owned target users that are gone (`Plan::gone`).
    pub gone: BTreeSet<String>,
    /// Target users not planned here that a removed group member is named by.
    pub named: Vec<&'a CurrentUser>,
}

/// `plan_at` over `desired`'s users and `groups`, with `rest` for the users it does not hold,
/// and which target user each desired user is (desired key -> target id).
pub fn plan_parts<'a>(
    mapping: &UserMapping,
    desired: &'a DesiredState,
    groups: &[crate::desired::DesiredGroup],
    current: &'a CurrentState,
    clock: &Clock,
    rest: &Rest<'_>,
) -> Parts<'a> {
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

    let references = References { resolved: &resolved, created: &created, rest: rest.target_id };
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

    let user_warnings = plan.warnings.len();
    disabled_not_created += rest.disabled_not_created;
    if disabled_not_created > 0 {
        plan.warnings.push(format!(
            "{disabled_not_created} user(s) disabled in the source are not in the target and were not created \
             (set `users.create_disabled: true` to create them)"
        ));
    }

    deprovision(mapping, desired, &users, &claimed, &precondition, clock, &mut plan);
    plan.owned_users += rest.owned_users;
    plan.gone.extend(rest.gone.iter().cloned());
    plan.unmanaged = unmanaged(mapping, &users, &claimed, &plan.conflicts);
    if !rest.unmanaged.is_empty() {
        plan.unmanaged.extend(rest.unmanaged.iter().cloned());
        plan.unmanaged.sort_by(|a, b| a.id.cmp(&b.id));
    }
    let with_named: Vec<&CurrentUser>;
    let naming = if rest.named.is_empty() {
        &users
    } else {
        with_named = users.iter().chain(&rest.named).copied().collect();
        &with_named
    };
    self::groups::groups(desired, groups, current, naming, &references, mapping, &mut plan);

    plan.users.sort_by(|a, b| a.key.cmp(&b.key).then(a.target_id.cmp(&b.target_id)));
    plan.warnings.extend(desired.warnings.iter().cloned());
    plan.conflicts.sort_by(|a, b| (&a.key, &a.target_id).cmp(&(&b.key, &b.target_id)));
    let removals = groups.iter().map(|g| (g.pairing.clone(), g.max_removals));
    plan.blocked = check_rails(&plan, &Rails::new(mapping, removals));
    Parts { plan, resolved, user_warnings }
}

/// How many of `users` carry a marker our `external_id` mapping could have made
/// (`Plan::owned_users` counts them all).
pub fn owned<'u>(mapping: &UserMapping, users: impl IntoIterator<Item = &'u CurrentUser>) -> usize {
    let Some(marker_mapping) = &mapping.external_id else { return 0 };
    users.into_iter().filter(|u| u.external_id().is_some_and(|m| deprovision::is_ours(marker_mapping, m))).count()
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

/// Where referenced users are: matched (their target id) or created by this plan, or matched
/// by a plan this one is made again from (`Rest::target_id`).
struct References<'a, 'r> {
    resolved: &'a BTreeMap<&'a str, &'a str>,
    created: &'a BTreeSet<&'a str>,
    rest: Option<&'r TargetIdOf<'r>>,
}

impl References<'_, '_> {
    /// The target id of the user `key`, when it has one.
    fn target_id(&self, key: &str) -> Option<&str> {
        self.resolved.get(key).copied().or_else(|| self.rest.and_then(|rest| rest(key)))
    }

    fn created(&self, key: &str) -> bool {
        self.created.contains(key)
    }

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
        let (after, reference) = match (self.target_id(key), self.created(key)) {
            (Some(id), _) => (Some(Value::String(id.to_owned())), None),
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
use self::matching::{Matching, match_users};

#[cfg(test)]
mod tests;
