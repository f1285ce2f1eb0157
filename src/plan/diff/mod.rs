//! `plan`: desired state × current state -> `Plan`. Pure and deterministic: the same inputs, in
//! any order, give the same plan.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    Action, ActionReason, AttributeChange, Blocked, Conflict, GroupChange, Member, Plan, Precondition, UserChange,
};
use crate::current::{CurrentGroup, CurrentState, CurrentUser};
use crate::desired::{DesiredState, DesiredUser, match_key};
use crate::manifest::model::TargetGroupRef;
use crate::manifest::model::{Deprovision, DeprovisionAction, MembershipMethod, UserMapping};
use crate::mapping::Mapping;
use crate::scim::ScimPath;

/// Computes the plan. `mapping` supplies the policy: match attribute, ownership marker,
/// deprovisioning and whether disabled source users are created.
pub fn plan(mapping: &UserMapping, desired: &DesiredState, current: &CurrentState) -> Plan {
    let mut plan = Plan::default();
    let mut users: Vec<&CurrentUser> = current.users.iter().collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let managed = mapping.managed_paths();
    let precondition = |user: &CurrentUser| Precondition::for_user(&user.resource, user.version.as_deref(), &managed);

    let mut by_marker: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, user) in users.iter().enumerate() {
        if let Some(marker) = user.external_id() {
            by_marker.entry(marker).or_default().push(index);
        }
        if let Some(key) = mapping.match_path.get(&user.resource).and_then(Value::as_str) {
            by_key.entry(match_key(key)).or_default().push(index);
        }
    }

    let mut claimed: BTreeSet<usize> = BTreeSet::new();
    // Desired key -> target id, for resolving group members and references (`manager`).
    let mut resolved: BTreeMap<&str, &str> = BTreeMap::new();
    let mut created: BTreeSet<&str> = BTreeSet::new();
    let mut disabled_not_created = 0;
    // Matched first, changed after: a reference can name any user, matched or created.
    let mut matched: Vec<(&DesiredUser, &CurrentUser, bool)> = Vec::new();
    let mut to_create: Vec<&DesiredUser> = Vec::new();

    for want in desired.users.values() {
        let marker_hit = want
            .external_id
            .as_deref()
            .and_then(|m| by_marker.get(m))
            .and_then(|candidates| candidates.iter().copied().find(|i| !claimed.contains(i)));
        let (index, adopting) = if let Some(index) = marker_hit {
            (index, false)
        } else if let Some(candidates) = by_key.get(&want.key) {
            let candidates: Vec<usize> = candidates.iter().copied().filter(|i| !claimed.contains(i)).collect();
            let [index] = candidates.as_slice() else {
                if !candidates.is_empty() {
                    plan.conflicts.push(Conflict {
                        key: want.key.clone(),
                        target_id: users[candidates[0]].id.clone(),
                        message: format!(
                            "{} target users match `{}`; resolve the duplicates in the target",
                            candidates.len(),
                            want.key
                        ),
                    });
                }
                continue;
            };
            let found = users[*index];
            match (&want.external_id, found.external_id()) {
                (None, _) => (*index, false),
                (Some(_), None) => (*index, true),
                (Some(ours), Some(theirs)) => {
                    plan.conflicts.push(Conflict {
                        key: want.key.clone(),
                        target_id: found.id.clone(),
                        message: format!(
                            "the target user carries externalId `{theirs}`, not this source's `{ours}`; left untouched"
                        ),
                    });
                    continue;
                }
            }
        } else {
            if want.active || mapping.create_disabled {
                created.insert(&want.key);
                to_create.push(want);
            } else {
                disabled_not_created += 1;
            }
            continue;
        };
        claimed.insert(index);
        let found = users[index];
        resolved.insert(&want.key, &found.id);
        matched.push((want, found, adopting));
    }

    let references = References { resolved: &resolved, created: &created };
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

    deprovision(mapping, desired, &users, &claimed, &precondition, &mut plan);
    groups(desired, current, &users, &resolved, &created, mapping, &mut plan);

    plan.users.sort_by(|a, b| a.key.cmp(&b.key).then(a.target_id.cmp(&b.target_id)));
    plan.warnings.extend(desired.warnings.iter().cloned());
    plan.conflicts.sort_by(|a, b| (&a.key, &a.target_id).cmp(&(&b.key, &b.target_id)));
    plan.blocked = check_rails(&plan, &mapping.deprovision);
    plan
}

/// The deprovisioning safety rails: a plan that deprovisions more than `max` users, or more than
/// `max_percent` of the users we own, is blocked. Called again on a focused plan.
pub fn check_rails(plan: &Plan, limits: &Deprovision) -> Option<Blocked> {
    let count = plan.deprovisions().count();
    let owned = plan.owned_users;
    #[expect(clippy::cast_precision_loss, reason = "user counts are far below 2^52")]
    let percent = if owned == 0 { 0.0 } else { count as f64 * 100.0 / owned as f64 };
    if let Some(max) = limits.max_percent.filter(|max| percent > *max) {
        return Some(Blocked {
            deprovisions: count,
            reason: format!(
                "the plan deprovisions {count} of {owned} owned users ({percent:.1} %), more than `users.deprovision.max_percent` ({max} %)"
            ),
        });
    }
    let max = limits.max.filter(|max| count > *max)?;
    Some(Blocked {
        deprovisions: count,
        reason: format!("the plan deprovisions {count} users, more than `users.deprovision.max` ({max})"),
    })
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
        Some(AttributeChange { path: path.clone(), before: before.cloned(), after, set: None, reference })
    }
}

fn create(
    mapping: &UserMapping,
    want: &DesiredUser,
    references: &References<'_>,
    warnings: &mut Vec<String>,
) -> UserChange {
    let mut changes: Vec<AttributeChange> = want
        .attributes
        .iter()
        // An empty set (no skills) is not sent.
        .filter(|(_, value)| value.as_array().is_none_or(|items| !items.is_empty()))
        .map(|(path, value)| AttributeChange {
            path: path.clone(),
            before: None,
            after: Some(value.clone()),
            set: mapping.set(path).map(|m| Box::new(set_change(m))),
            reference: None,
        })
        .collect();
    for (path, key) in &want.references {
        changes.extend(references.change(want, path, key, None, warnings));
    }
    if let Some(marker) = &want.external_id {
        changes.push(AttributeChange {
            path: ScimPath::attribute("externalId"),
            before: None,
            after: Some(Value::String(marker.clone())),
            set: None,
            reference: None,
        });
    }
    changes.push(AttributeChange {
        path: ScimPath::attribute("active"),
        before: None,
        after: Some(Value::Bool(want.active)),
        set: None,
        reference: None,
    });
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    // Kept until the apply ends, for every create: no spare capacity.
    changes.shrink_to_fit();
    UserChange {
        key: want.key.clone(),
        action: Action::Create,
        reason: None,
        target_id: None,
        precondition: Precondition::Absent,
        changes,
    }
}

fn update(
    mapping: &UserMapping,
    want: &DesiredUser,
    found: &CurrentUser,
    adopting: bool,
    precondition: Precondition,
    references: &References<'_>,
    warnings: &mut Vec<String>,
) -> Option<UserChange> {
    let mut changes = Vec::new();
    for (path, key) in &want.references {
        let before = path.get(&found.resource).filter(|v| !v.is_null());
        changes.extend(references.change(want, path, key, before, warnings));
    }
    for (path, value) in &want.attributes {
        let before = path.get(&found.resource).filter(|v| !v.is_null());
        if let Some(set) = mapping.set(path).map(set_change) {
            if !set.same(Some(value), before) {
                let change = AttributeChange {
                    path: path.clone(),
                    before: before.cloned(),
                    after: Some(value.clone()),
                    set: Some(Box::new(set)),
                    reference: None,
                };
                changes.push(change);
            }
            continue;
        }
        let case_insensitive = *path == mapping.match_path || path.is("userName");
        if !before.is_some_and(|b| values_equal(&comparable(path, value), &comparable(path, b), case_insensitive)) {
            changes.push(AttributeChange {
                path: path.clone(),
                before: before.cloned(),
                after: Some(value.clone()),
                set: None,
                reference: None,
            });
        }
    }
    for path in &want.removals {
        if let Some(before) = path.get(&found.resource).filter(|v| !v.is_null()) {
            changes.push(AttributeChange {
                path: path.clone(),
                before: Some(before.clone()),
                after: None,
                set: None,
                reference: None,
            });
        }
    }
    if let Some(marker) = &want.external_id
        && found.external_id() != Some(marker.as_str())
    {
        changes.push(AttributeChange {
            path: ScimPath::attribute("externalId"),
            before: found.external_id().map(|s| Value::String(s.to_owned())),
            after: Some(Value::String(marker.clone())),
            set: None,
            reference: None,
        });
    }
    let disabling = found.active() && !want.active;
    if found.active() != want.active {
        changes.push(AttributeChange {
            path: ScimPath::attribute("active"),
            before: Some(Value::Bool(found.active())),
            after: Some(Value::Bool(want.active)),
            set: None,
            reference: None,
        });
    }
    if changes.is_empty() {
        return None;
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    let (action, reason) = if disabling {
        (Action::Disable, want.source_disabled.then_some(ActionReason::SourceDisabled))
    } else if adopting {
        (Action::Adopt, None)
    } else {
        (Action::Update, None)
    };
    Some(UserChange { key: want.key.clone(), action, reason, target_id: Some(found.id.clone()), precondition, changes })
}

/// Whether the marker on a target user is ours: our `external_id` mapping could have made it.
fn is_ours(marker_mapping: &Mapping, marker: &str) -> bool {
    match marker_mapping {
        Mapping::Template(template) => template.could_produce(marker),
        Mapping::Constant(value) => value.as_str() == Some(marker),
        Mapping::Attribute(_) | Mapping::Reference(_) => !marker.is_empty(),
    }
}

fn deprovision(
    mapping: &UserMapping,
    desired: &DesiredState,
    users: &[&CurrentUser],
    claimed: &BTreeSet<usize>,
    precondition: &dyn Fn(&CurrentUser) -> Precondition,
    plan: &mut Plan,
) {
    let Some(marker_mapping) = &mapping.external_id else { return };
    let desired_markers: BTreeSet<&str> = desired.users.values().filter_map(|u| u.external_id.as_deref()).collect();
    plan.owned_users = users.iter().filter(|u| u.external_id().is_some_and(|m| is_ours(marker_mapping, m))).count();
    for (index, user) in users.iter().enumerate() {
        let Some(marker) = user.external_id() else { continue };
        if claimed.contains(&index) || !is_ours(marker_mapping, marker) || desired_markers.contains(marker) {
            continue;
        }
        let key =
            mapping.match_path.get(&user.resource).and_then(Value::as_str).map_or_else(|| user.id.clone(), match_key);
        let change = match mapping.deprovision.action {
            DeprovisionAction::Ignore => continue,
            DeprovisionAction::Disable if !user.active() => continue,
            DeprovisionAction::Disable => UserChange {
                key,
                action: Action::Disable,
                reason: Some(ActionReason::NotInAnySource),
                target_id: Some(user.id.clone()),
                precondition: precondition(user),
                changes: vec![AttributeChange {
                    path: ScimPath::attribute("active"),
                    before: Some(Value::Bool(true)),
                    after: Some(Value::Bool(false)),
                    set: None,
                    reference: None,
                }],
            },
            DeprovisionAction::Delete => UserChange {
                key,
                action: Action::Delete,
                reason: Some(ActionReason::NotInAnySource),
                target_id: Some(user.id.clone()),
                precondition: precondition(user),
                changes: Vec::new(),
            },
        };
        plan.users.push(change);
    }
}

fn groups(
    desired: &DesiredState,
    current: &CurrentState,
    users: &[&CurrentUser],
    resolved: &BTreeMap<&str, &str>,
    created: &BTreeSet<&str>,
    mapping: &UserMapping,
    plan: &mut Plan,
) {
    let key_by_id: BTreeMap<&str, String> = users
        .iter()
        .filter_map(|u| Some((u.id.as_str(), match_key(mapping.match_path.get(&u.resource)?.as_str()?))))
        .collect();
    for group in &desired.groups {
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
            if let Some(id) = resolved.get(key.as_str()) {
                members.push(Member { key: key.clone(), id: Some((*id).to_owned()) });
            } else if created.contains(key.as_str()) {
                members.push(Member { key: key.clone(), id: None });
            } else {
                plan.warnings.push(format!(
                    "group `{}`: member `{key}` has no user in the target and none is planned; skipped",
                    group.pairing
                ));
            }
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
        });
    }
}

/// Compares a desired value with the target's. Strings compare exactly unless the attribute is
/// not case-exact; numbers and booleans the target sends as text compare by their text; lists
/// compare as sets.
/// How a set attribute's changes are compared and written.
fn set_change(set: &crate::manifest::model::SetMapping) -> super::set::SetChange {
    super::set::SetChange { key: set.shape.key.to_owned(), level: set.shape.level.map(str::to_owned), write: set.write }
}

/// A value as it compares: phone numbers are equal with or without the `tel:` scheme Genesys
/// answers with (`tel:+15555550100` = `+15555550100`).
fn comparable<'a>(path: &ScimPath, value: &'a Value) -> std::borrow::Cow<'a, Value> {
    if path.attribute_name().eq_ignore_ascii_case("phoneNumbers")
        && let Some(number) = value.as_str().and_then(|v| v.strip_prefix("tel:"))
    {
        return std::borrow::Cow::Owned(Value::String(number.to_owned()));
    }
    std::borrow::Cow::Borrowed(value)
}

fn values_equal(desired: &Value, current: &Value, case_insensitive: bool) -> bool {
    match (desired, current) {
        (Value::String(a), Value::String(b)) => a == b || (case_insensitive && a.to_lowercase() == b.to_lowercase()),
        (Value::String(text), Value::Number(_) | Value::Bool(_))
        | (Value::Number(_) | Value::Bool(_), Value::String(text)) => {
            let other = if matches!(desired, Value::String(_)) { current } else { desired };
            text.as_str() == other.to_string().as_str()
        }
        (Value::Array(a), Value::Array(b)) => {
            let set = |items: &[Value]| {
                items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect::<BTreeSet<_>>()
            };
            set(a) == set(b)
        }
        (Value::Array(a), b) if a.len() == 1 => values_equal(&a[0], b, case_insensitive),
        _ => desired == current,
    }
}

#[cfg(test)]
mod tests;
