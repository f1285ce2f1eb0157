//! A user's attributes compared: what a create sends, what an update changes, and when two
//! values are the same.

use serde_json::Value;
use std::collections::BTreeSet;

use super::References;
use crate::current::CurrentUser;
use crate::desired::DesiredUser;
use crate::manifest::model::UserMapping;
use crate::plan::{Action, ActionReason, AttributeChange, Precondition, UserChange};
use crate::scim::ScimPath;

pub(super) fn create(
    mapping: &UserMapping,
    want: &DesiredUser,
    references: &References<'_, '_>,
    warnings: &mut Vec<String>,
) -> UserChange {
    let mut changes: Vec<AttributeChange> = want
        .attributes
        .iter()
        // An empty set (no skills) is not sent.
        .filter(|(_, value)| value.as_array().is_none_or(|items| !items.is_empty()))
        .map(|(path, value)| {
            AttributeChange::new(path.clone(), None, Some(value.clone())).with_set(mapping.set(path).map(set_change))
        })
        .collect();
    for (path, key) in &want.references {
        changes.extend(references.change(want, path, key, None, warnings));
    }
    if let Some(marker) = &want.external_id {
        changes.push(AttributeChange::new(ScimPath::external_id(), None, Some(Value::String(marker.clone()))));
    }
    changes.push(AttributeChange::new(ScimPath::active(), None, Some(Value::Bool(want.active))));
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    // Kept until the apply ends, for every create: no spare capacity.
    changes.shrink_to_fit();
    UserChange {
        key: want.key.clone(),
        action: Action::Create,
        reason: None,
        why: None,
        target_id: None,
        precondition: Precondition::Absent,
        changes,
    }
}

pub(super) fn update(
    mapping: &UserMapping,
    want: &DesiredUser,
    found: &CurrentUser,
    adopting: bool,
    precondition: Precondition,
    references: &References<'_, '_>,
    warnings: &mut Vec<String>,
) -> Option<UserChange> {
    let mut changes = Vec::new();
    // What is written only when a user is created is never compared afterwards: an edit made
    // in the target stays.
    let compared = |path: &ScimPath| !mapping.is_create_only(path);
    for (path, key) in want.references.iter().filter(|(path, _)| compared(path)) {
        let before = found.get(path).filter(|v| !v.is_null());
        changes.extend(references.change(want, path, key, before, warnings));
    }
    for (path, value) in want.attributes.iter().filter(|(path, _)| compared(path)) {
        let before = found.get(path).filter(|v| !v.is_null());
        if let Some(set) = mapping.set(path).map(set_change) {
            if !set.same(Some(value), before) {
                changes
                    .push(AttributeChange::new(path.clone(), before.cloned(), Some(value.clone())).with_set(Some(set)));
            }
            continue;
        }
        let case_insensitive = *path == mapping.match_path || path.is("userName");
        if !before.is_some_and(|b| values_equal(&comparable(path, value), &comparable(path, b), case_insensitive)) {
            changes.push(AttributeChange::new(path.clone(), before.cloned(), Some(value.clone())));
        }
    }
    for path in want.removals.iter().filter(|path| compared(path)) {
        if let Some(before) = found.get(path).filter(|v| !v.is_null()) {
            changes.push(AttributeChange::new(path.clone(), Some(before.clone()), None));
        }
    }
    if let Some(marker) = &want.external_id
        && found.external_id() != Some(marker.as_str())
    {
        let before = found.external_id().map(|s| Value::String(s.to_owned()));
        changes.push(AttributeChange::new(ScimPath::external_id(), before, Some(Value::String(marker.clone()))));
    }
    let disabling = found.active() && !want.active;
    if found.active() != want.active {
        let (before, after) = (Value::Bool(found.active()), Value::Bool(want.active));
        changes.push(AttributeChange::new(ScimPath::active(), Some(before), Some(after)));
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
    let target_id = Some(found.id.clone());
    Some(UserChange { key: want.key.clone(), action, reason, why: None, target_id, precondition, changes })
}

/// How a set attribute's changes are compared and written.
pub(super) fn set_change(set: &crate::manifest::model::SetMapping) -> crate::plan::set::SetChange {
    crate::plan::set::SetChange {
        key: set.shape.key.to_owned(),
        level: set.shape.level.map(str::to_owned),
        write: set.write,
    }
}

/// A value as it compares: phone numbers are equal with or without the `tel:` scheme Genesys
/// answers with (`tel:+15555550100` = `+15555550100`).
pub(super) fn comparable<'a>(path: &ScimPath, value: &'a Value) -> std::borrow::Cow<'a, Value> {
    if path.attribute_name().eq_ignore_ascii_case("phoneNumbers")
        && let Some(number) = value.as_str().and_then(|v| v.strip_prefix("tel:"))
    {
        return std::borrow::Cow::Owned(Value::String(number.to_owned()));
    }
    std::borrow::Cow::Borrowed(value)
}

/// Compares a desired value with the target's. Strings compare exactly unless the attribute is
/// not case-exact; numbers and booleans the target sends as text compare by their text; lists
/// compare as sets.
pub(super) fn values_equal(desired: &Value, current: &Value, case_insensitive: bool) -> bool {
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
