//! `plan`: desired state × current state -> `Plan`. Pure and deterministic: the same inputs, in
//! any order, give the same plan.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Action, ActionReason, AttributeChange, Conflict, GroupChange, Member, Plan, UserChange};
use crate::desired::{DesiredState, DesiredUser, match_key};
use crate::manifest::model::{DeprovisionAction, UserMapping};
use crate::mapping::Mapping;
use crate::scim::ScimPath;
use crate::target::{CurrentState, CurrentUser};

/// Computes the plan. `mapping` supplies the policy: match attribute, ownership marker,
/// deprovisioning and whether disabled source users are created.
pub fn plan(mapping: &UserMapping, desired: &DesiredState, current: &CurrentState) -> Plan {
    let mut plan = Plan::default();
    let mut users: Vec<&CurrentUser> = current.users.iter().collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));

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
    // Desired key -> target id, for resolving group members.
    let mut resolved: BTreeMap<&str, &str> = BTreeMap::new();
    let mut created: BTreeSet<&str> = BTreeSet::new();
    let mut disabled_not_created = 0;

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
                        message: format!("{} target users match `{}`; resolve the duplicates in the target", candidates.len(), want.key),
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
                        message: format!("the target user carries externalId `{theirs}`, not this source's `{ours}`; left untouched"),
                    });
                    continue;
                }
            }
        } else {
            if want.active || mapping.create_disabled {
                created.insert(&want.key);
                plan.users.push(create(want));
            } else {
                disabled_not_created += 1;
            }
            continue;
        };
        claimed.insert(index);
        let found = users[index];
        resolved.insert(&want.key, &found.id);
        if let Some(change) = update(mapping, want, found, adopting) {
            plan.users.push(change);
        }
    }

    if disabled_not_created > 0 {
        plan.warnings.push(format!(
            "{disabled_not_created} user(s) disabled in the source are not in the target and were not created \
             (set `users.create_disabled: true` to create them)"
        ));
    }

    deprovision(mapping, desired, &users, &claimed, &mut plan);
    groups(desired, current, &users, &resolved, &created, mapping, &mut plan);

    plan.users.sort_by(|a, b| a.key.cmp(&b.key).then(a.target_id.cmp(&b.target_id)));
    plan.conflicts.sort_by(|a, b| (&a.key, &a.target_id).cmp(&(&b.key, &b.target_id)));
    plan
}

fn create(want: &DesiredUser) -> UserChange {
    let mut changes: Vec<AttributeChange> = want
        .attributes
        .iter()
        .map(|(path, value)| AttributeChange { path: path.clone(), before: None, after: Some(value.clone()) })
        .collect();
    if let Some(marker) = &want.external_id {
        changes.push(AttributeChange { path: ScimPath::attribute("externalId"), before: None, after: Some(Value::String(marker.clone())) });
    }
    changes.push(AttributeChange { path: ScimPath::attribute("active"), before: None, after: Some(Value::Bool(want.active)) });
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    UserChange { key: want.key.clone(), action: Action::Create, reason: None, target_id: None, version: None, changes }
}

fn update(mapping: &UserMapping, want: &DesiredUser, found: &CurrentUser, adopting: bool) -> Option<UserChange> {
    let mut changes = Vec::new();
    for (path, value) in &want.attributes {
        let before = path.get(&found.resource).filter(|v| !v.is_null());
        let case_insensitive = *path == mapping.match_path || path.is("userName");
        if !before.is_some_and(|b| values_equal(value, b, case_insensitive)) {
            changes.push(AttributeChange { path: path.clone(), before: before.cloned(), after: Some(value.clone()) });
        }
    }
    for path in &want.removals {
        if let Some(before) = path.get(&found.resource).filter(|v| !v.is_null()) {
            changes.push(AttributeChange { path: path.clone(), before: Some(before.clone()), after: None });
        }
    }
    if let Some(marker) = &want.external_id
        && found.external_id() != Some(marker.as_str())
    {
        changes.push(AttributeChange {
            path: ScimPath::attribute("externalId"),
            before: found.external_id().map(|s| Value::String(s.to_owned())),
            after: Some(Value::String(marker.clone())),
        });
    }
    let disabling = found.active() && !want.active;
    if found.active() != want.active {
        changes.push(AttributeChange {
            path: ScimPath::attribute("active"),
            before: Some(Value::Bool(found.active())),
            after: Some(Value::Bool(want.active)),
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
    Some(UserChange {
        key: want.key.clone(),
        action,
        reason,
        target_id: Some(found.id.clone()),
        version: found.version.clone(),
        changes,
    })
}

/// Whether the marker on a target user is ours: our `external_id` mapping could have made it.
fn is_ours(marker_mapping: &Mapping, marker: &str) -> bool {
    match marker_mapping {
        Mapping::Template(template) => template.could_produce(marker),
        Mapping::Constant(value) => value.as_str() == Some(marker),
        Mapping::Attribute(_) => !marker.is_empty(),
    }
}

fn deprovision(mapping: &UserMapping, desired: &DesiredState, users: &[&CurrentUser], claimed: &BTreeSet<usize>, plan: &mut Plan) {
    let Some(marker_mapping) = &mapping.external_id else { return };
    let desired_markers: BTreeSet<&str> = desired.users.values().filter_map(|u| u.external_id.as_deref()).collect();
    let owned = users.iter().filter(|u| u.external_id().is_some_and(|m| is_ours(marker_mapping, m))).count();
    let mut count = 0;
    for (index, user) in users.iter().enumerate() {
        let Some(marker) = user.external_id() else { continue };
        if claimed.contains(&index) || !is_ours(marker_mapping, marker) || desired_markers.contains(marker) {
            continue;
        }
        let key = mapping
            .match_path
            .get(&user.resource)
            .and_then(Value::as_str)
            .map_or_else(|| user.id.clone(), match_key);
        let change = match mapping.deprovision.action {
            DeprovisionAction::Ignore => continue,
            DeprovisionAction::Disable if !user.active() => continue,
            DeprovisionAction::Disable => UserChange {
                key,
                action: Action::Disable,
                reason: Some(ActionReason::NotInAnySource),
                target_id: Some(user.id.clone()),
                version: user.version.clone(),
                changes: vec![AttributeChange {
                    path: ScimPath::attribute("active"),
                    before: Some(Value::Bool(true)),
                    after: Some(Value::Bool(false)),
                }],
            },
            DeprovisionAction::Delete => UserChange {
                key,
                action: Action::Delete,
                reason: Some(ActionReason::NotInAnySource),
                target_id: Some(user.id.clone()),
                version: user.version.clone(),
                changes: Vec::new(),
            },
        };
        count += 1;
        plan.users.push(change);
    }
    let limits = mapping.deprovision;
    if let Some(max) = limits.max.filter(|max| count > *max) {
        plan.blocked = Some(format!("the plan deprovisions {count} users, more than `users.deprovision.max` ({max})"));
    }
    #[expect(clippy::cast_precision_loss, reason = "user counts are far below 2^52")]
    let percent = if owned == 0 { 0.0 } else { count as f64 * 100.0 / owned as f64 };
    if let Some(max) = limits.max_percent.filter(|max| percent > *max) {
        plan.blocked = Some(format!(
            "the plan deprovisions {count} of {owned} owned users ({percent:.1} %), more than `users.deprovision.max_percent` ({max} %)"
        ));
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
            plan.warnings.push(format!("group `{}`: source member `{member}` is not among the users read from the source; skipped", group.pairing));
        }
        let Some(target) = current.groups.get(&group.target) else {
            plan.warnings.push(format!("group `{}`: target group {} was not read; skipped", group.pairing, group.target));
            continue;
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
        let add: Vec<Member> = members.iter().filter(|m| m.id.as_deref().is_none_or(|id| !target.members.contains(id))).cloned().collect();
        let mut remove: Vec<Member> = target
            .members
            .iter()
            .filter(|id| !wanted_ids.contains(id.as_str()))
            .map(|id| Member { key: key_by_id.get(id.as_str()).cloned().unwrap_or_else(|| id.clone()), id: Some(id.clone()) })
            .collect();
        remove.sort();
        if add.is_empty() && remove.is_empty() {
            continue;
        }
        plan.groups.push(GroupChange {
            name: group.pairing.clone(),
            target_id: target.id.clone(),
            display_name: target.display_name.clone(),
            version: target.version.clone(),
            method: group.method,
            add,
            remove,
            members,
        });
    }
}

/// Compares a desired value with the target's. Strings compare exactly unless the attribute is
/// not case-exact; numbers and booleans the target sends as text compare by their text; lists
/// compare as sets.
fn values_equal(desired: &Value, current: &Value, case_insensitive: bool) -> bool {
    match (desired, current) {
        (Value::String(a), Value::String(b)) => a == b || (case_insensitive && a.to_lowercase() == b.to_lowercase()),
        (Value::String(a), Value::Number(_) | Value::Bool(_)) => *a == current.to_string(),
        (Value::Number(_) | Value::Bool(_), Value::String(b)) => desired.to_string() == *b,
        (Value::Array(a), Value::Array(b)) => {
            let set = |items: &[Value]| items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect::<BTreeSet<_>>();
            set(a) == set(b)
        }
        (Value::Array(a), b) if a.len() == 1 => values_equal(&a[0], b, case_insensitive),
        _ => desired == current,
    }
}
