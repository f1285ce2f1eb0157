//! The safety rails: limits on how much one plan may change, each with a name that `apply
//! --allow NAME=N` gives after review. `deprovision` (users disabled or deleted for leaving),
//! `attribute_changes.<path>` (users whose attribute changes: a `userName` change rewrites a
//! Genesys login), `removals.<pairing>` (members removed from a group). Pure.

use std::collections::BTreeMap;

use super::{Blocked, LimitExceeded, Plan};
use crate::manifest::model::{Deprovision, GroupPairing, Limit, UserMapping};
use crate::scim::ScimPath;

/// Every limit a plan is held to.
#[derive(Debug, Clone, Default)]
pub struct Rails {
    pub deprovision: Limit,
    pub attribute_changes: BTreeMap<ScimPath, Limit>,
    /// By pairing name.
    pub removals: BTreeMap<String, Limit>,
}

impl Rails {
    /// The users' limits, and each pairing's `max_removals` (`removals` names them by pairing).
    pub fn new(users: &UserMapping, removals: impl IntoIterator<Item = (String, Limit)>) -> Self {
        let Deprovision { max, max_percent, .. } = users.deprovision;
        Self {
            deprovision: Limit { max, max_percent },
            attribute_changes: users.attribute_limits.clone(),
            removals: removals.into_iter().collect(),
        }
    }

    /// The rails of a manifest's users and pairings.
    pub fn of(users: &UserMapping, pairings: &[GroupPairing]) -> Self {
        Self::new(users, pairings.iter().map(|p| (p.name.clone(), p.max_removals)))
    }
}

/// How much the plan does against the limit `name`: `None` for a name no limit has.
pub fn count(plan: &Plan, name: &str) -> Option<usize> {
    if name == "deprovision" {
        return Some(plan.deprovisions().count());
    }
    if let Some(path) = name.strip_prefix("attribute_changes.") {
        let path = ScimPath::parse(path).ok()?;
        return Some(
            plan.users.iter().filter(|u| u.target_id.is_some() && u.changes.iter().any(|c| c.path == path)).count(),
        );
    }
    let pairing = name.strip_prefix("removals.")?;
    Some(plan.groups.iter().filter(|g| g.name == pairing).map(|g| g.remove.len()).sum())
}

/// The limits the plan goes over, or `None`. Called again on a focused plan.
pub fn check_rails(plan: &Plan, rails: &Rails) -> Option<Blocked> {
    let mut limits = Vec::new();
    let owned = plan.owned_users;
    let deprovisions = plan.deprovisions().count();
    let settings = ("users.deprovision.max".to_owned(), "users.deprovision.max_percent".to_owned());
    let what = |count, of: Option<usize>| match of {
        Some(whole) => format!("the plan deprovisions {count} of {whole} owned users"),
        None => format!("the plan deprovisions {count} users"),
    };
    limits.extend(exceeded("deprovision", deprovisions, owned, &rails.deprovision, what, &settings));
    for (path, limit) in &rails.attribute_changes {
        let name = format!("attribute_changes.{path}");
        let changed = count(plan, &name).unwrap_or_default();
        let setting = format!("users.limits.attribute_changes.{path}");
        let settings = (format!("{setting}.max"), format!("{setting}.max_percent"));
        let what = |count, of: Option<usize>| match of {
            Some(whole) => format!("the plan changes `{path}` of {count} of {whole} owned users"),
            None => format!("the plan changes `{path}` of {count} users"),
        };
        limits.extend(exceeded(&name, changed, owned, limit, what, &settings));
    }
    for (pairing, limit) in &rails.removals {
        let name = format!("removals.{pairing}");
        let settings = (format!("groups.{pairing}.max_removals"), format!("groups.{pairing}.max_removals_percent"));
        for group in plan.groups.iter().filter(|g| g.name == *pairing) {
            let group_name = &group.display_name;
            let what = |count, of: Option<usize>| match of {
                Some(whole) => format!("the plan removes {count} of {whole} members of group `{group_name}`"),
                None => format!("the plan removes {count} members of group `{group_name}`"),
            };
            limits.extend(exceeded(&name, group.remove.len(), group.members_before, limit, what, &settings));
        }
    }
    (!limits.is_empty()).then_some(Blocked { limits })
}

/// `Some` when `count` (of `whole`) goes over `limit`'s `max` or `max_percent`, which
/// `settings` name.
fn exceeded(
    name: &str,
    count: usize,
    whole: usize,
    limit: &Limit,
    what: impl Fn(usize, Option<usize>) -> String,
    (max_setting, percent_setting): &(String, String),
) -> Option<LimitExceeded> {
    #[expect(clippy::cast_precision_loss, reason = "user counts are far below 2^52")]
    let percent = if whole == 0 { 0.0 } else { count as f64 * 100.0 / whole as f64 };
    let reason = if let Some(max) = limit.max_percent.filter(|max| percent > *max) {
        format!("{} ({percent:.1} %), more than `{percent_setting}` ({max} %)", what(count, Some(whole)))
    } else {
        let max = limit.max.filter(|max| count > *max)?;
        format!("{}, more than `{max_setting}` ({max})", what(count, None))
    };
    Some(LimitExceeded { name: name.to_owned(), count, reason })
}
