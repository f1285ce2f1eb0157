//! Users that left every source or the scope: deprovisioned only when they carry our marker,
//! within the rails.

use serde_json::Value;
use std::collections::BTreeSet;

use crate::current::CurrentUser;
use crate::desired::{DesiredState, match_key};
use crate::manifest::model::{DeprovisionAction, UserMapping};
use crate::mapping::Mapping;
use crate::plan::{Action, ActionReason, AttributeChange, Clock, Plan, Precondition, UserChange};
use crate::scim::ScimPath;

/// Why a user scimform disabled is deleted now: `delete_after_days` have passed since, by the
/// run's clock. `None` without the option, a clock, or a record of when it was disabled.
fn expired(days: Option<u32>, clock: &Clock, id: &str) -> Option<String> {
    let (days, now, since) = (days?, clock.now?, clock.disabled_at.get(id)?);
    let gone_days = now.duration_since(*since).as_secs() / 86_400;
    (gone_days >= i64::from(days)).then(|| {
        format!(
            "disabled by scimform on {}, {gone_days} days ago, and still gone; `delete_after_days: {days}`",
            since.strftime("%Y-%m-%d")
        )
    })
}

/// Whether the marker on a target user is ours: our `external_id` mapping could have made it.
pub(super) fn is_ours(marker_mapping: &Mapping, marker: &str) -> bool {
    match marker_mapping {
        Mapping::Template(template) => template.could_produce(marker),
        Mapping::Constant(value) => value.as_str() == Some(marker),
        Mapping::Attribute(_) | Mapping::Reference(_) => !marker.is_empty(),
    }
}

pub(super) fn deprovision(
    mapping: &UserMapping,
    desired: &DesiredState,
    users: &[&CurrentUser],
    claimed: &BTreeSet<usize>,
    precondition: &dyn Fn(&CurrentUser) -> Precondition,
    clock: &Clock,
    plan: &mut Plan,
) {
    let Some(marker_mapping) = &mapping.external_id else { return };
    let desired_markers: BTreeSet<&str> = desired.users.values().filter_map(|u| u.external_id.as_deref()).collect();
    let out_of_scope: std::collections::BTreeMap<&str, &str> =
        desired.out_of_scope.values().filter_map(|o| Some((o.external_id.as_deref()?, o.why.as_str()))).collect();
    plan.owned_users = users.iter().filter(|u| u.external_id().is_some_and(|m| is_ours(marker_mapping, m))).count();
    for (index, user) in users.iter().enumerate() {
        let Some(marker) = user.external_id() else { continue };
        if claimed.contains(&index) || !is_ours(marker_mapping, marker) || desired_markers.contains(marker) {
            continue;
        }
        let key = user.get(&mapping.match_path).and_then(Value::as_str).map_or_else(|| user.id.clone(), match_key);
        // Its record is read and out of scope, or the source read only the scope's members: it
        // left the scope (or its record is gone too: the scope's action is the one that holds).
        let left_scope = out_of_scope
            .get(marker)
            .map(|why| (*why).to_owned())
            .or_else(|| desired.scoped_by.as_ref().map(|by| format!("no longer in {by}")));
        let (action, reason) = match &left_scope {
            Some(_) => (mapping.deprovision.out_of_scope, Some(ActionReason::LeftScope)),
            None => (mapping.deprovision.action, None),
        };
        plan.gone.insert(user.id.clone());
        let change = match action {
            DeprovisionAction::Ignore => continue,
            DeprovisionAction::Disable if !user.active() => {
                match expired(mapping.deprovision.delete_after_days, clock, &user.id) {
                    Some(why) => UserChange {
                        key,
                        action: Action::Delete,
                        reason: Some(ActionReason::DisabledLongEnough),
                        why: Some(why),
                        target_id: Some(user.id.clone()),
                        precondition: precondition(user),
                        changes: Vec::new(),
                    },
                    None => continue,
                }
            }
            DeprovisionAction::Disable => UserChange {
                key,
                action: Action::Deprovision,
                reason,
                why: left_scope,
                target_id: Some(user.id.clone()),
                precondition: precondition(user),
                changes: vec![AttributeChange::new(
                    ScimPath::active(),
                    Some(Value::Bool(true)),
                    Some(Value::Bool(false)),
                )],
            },
            DeprovisionAction::Delete => UserChange {
                key,
                action: Action::Delete,
                reason,
                why: left_scope,
                target_id: Some(user.id.clone()),
                precondition: precondition(user),
                changes: Vec::new(),
            },
        };
        plan.users.push(change);
    }
}
