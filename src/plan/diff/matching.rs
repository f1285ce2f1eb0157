//! Which target user each desired user is: the one carrying its ownership marker, else the one
//! its first match key finds alone (`users.match` in order). Two target users for one desired
//! user, or one target user found by two desired users, is a conflict: reported, and nothing is
//! planned for them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::current::CurrentUser;
use crate::desired::{DesiredState, DesiredUser, match_key};
use crate::manifest::model::UserMapping;
use crate::plan::Conflict;

/// What matching found.
pub(super) struct Matching<'a> {
    /// Desired users and the index of the target user they are, and whether it is adopted
    /// (found by key, carrying no marker).
    pub matched: Vec<(&'a DesiredUser, usize, bool)>,
    /// Desired users no target user is.
    pub unmatched: Vec<&'a DesiredUser>,
    /// Target users some desired user is.
    pub claimed: BTreeSet<usize>,
}

/// Matches `desired` against `users` (sorted by id), adding conflicts to `conflicts`.
pub(super) fn match_users<'a>(
    mapping: &UserMapping,
    desired: &'a DesiredState,
    users: &[&CurrentUser],
    conflicts: &mut Vec<Conflict>,
) -> Matching<'a> {
    let mut by_marker: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    // Per match key, in order: normalised value -> target users.
    let mut by_key: Vec<BTreeMap<String, Vec<usize>>> = vec![BTreeMap::new(); mapping.match_paths.len()];
    for (index, user) in users.iter().enumerate() {
        if let Some(marker) = user.external_id() {
            by_marker.entry(marker).or_default().push(index);
        }
        for (path, values) in mapping.match_paths.iter().zip(&mut by_key) {
            if let Some(value) = user.get(path).and_then(Value::as_str) {
                values.entry(match_key(value)).or_default().push(index);
            }
        }
    }

    // The marker first: it says who a target user is, whatever its keys say now.
    let mut by_marker_claimed: BTreeMap<usize, &DesiredUser> = BTreeMap::new();
    let mut matched = Vec::new();
    let mut rest = Vec::new();
    for want in desired.users.values() {
        let hit = want
            .external_id
            .as_deref()
            .and_then(|m| by_marker.get(m))
            .and_then(|candidates| candidates.iter().copied().find(|i| !by_marker_claimed.contains_key(i)));
        match hit {
            Some(index) => {
                by_marker_claimed.insert(index, want);
                matched.push((want, index, false));
            }
            None => rest.push(want),
        }
    }

    // Then each key in order: the first that finds exactly one target user decides.
    let mut proposals: BTreeMap<usize, Vec<&DesiredUser>> = BTreeMap::new();
    let mut unmatched = Vec::new();
    'wants: for want in rest {
        for (position, (path, values)) in mapping.match_paths.iter().zip(&by_key).enumerate() {
            let value = if position == 0 {
                Some(want.key.clone())
            } else {
                want.attributes.get(path).and_then(Value::as_str).map(match_key)
            };
            let Some(value) = value else { continue };
            let candidates: Vec<usize> = values
                .get(&value)
                .into_iter()
                .flatten()
                .copied()
                .filter(|i| !by_marker_claimed.contains_key(i))
                .collect();
            match candidates.as_slice() {
                [] => {}
                [index] => {
                    proposals.entry(*index).or_default().push(want);
                    continue 'wants;
                }
                many => {
                    conflicts.push(Conflict {
                        key: want.key.clone(),
                        target_id: users[many[0]].id.clone(),
                        message: format!(
                            "{} target users match `{path}` = `{value}`; resolve the duplicates in the target",
                            many.len()
                        ),
                    });
                    continue 'wants;
                }
            }
        }
        unmatched.push(want);
    }

    let mut claimed: BTreeSet<usize> = by_marker_claimed.keys().copied().collect();
    for (index, wants) in proposals {
        let found = users[index];
        if let [want] = wants.as_slice() {
            match (&want.external_id, found.external_id()) {
                (None, _) => matched.push((want, index, false)),
                (Some(_), None) => matched.push((want, index, true)),
                (Some(ours), Some(theirs)) => {
                    // Ours for a record that is gone (a recycled address), or another tool's:
                    // never taken over by the new person.
                    conflicts.push(Conflict {
                        key: want.key.clone(),
                        target_id: found.id.clone(),
                        message: format!(
                            "the target user carries externalId `{theirs}`, not this source's `{ours}`; left untouched"
                        ),
                    });
                    continue;
                }
            }
            claimed.insert(index);
            continue;
        }
        let keys: Vec<String> = wants.iter().map(|w| format!("`{}`", w.key)).collect();
        for want in &wants {
            conflicts.push(Conflict {
                key: want.key.clone(),
                target_id: found.id.clone(),
                message: format!(
                    "the target user is matched by {} desired users ({}); resolve it in the source or the target",
                    wants.len(),
                    keys.join(", ")
                ),
            });
        }
    }
    matched.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    Matching { matched, unmatched, claimed }
}
