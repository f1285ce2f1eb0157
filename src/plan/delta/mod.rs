//! A plan made again for the users whose inputs changed since a run whose plan, made in full,
//! changed nothing (`state::Settled`); every other user is as that plan left it. That run keeps
//! a `Baseline`: each desired user's fingerprint and the target user it is, and the marker and
//! match values, hashed, of the target users whose person does not have them too. A scheduled
//! run where a few records changed then loads from the state only the target users those could
//! touch, and plans them alone.
//!
//! Exact, not a guess: `Closure` grows what is planned again until no user left out could
//! match, claim, refer to or share a marker with a user planned again. A last plan with a
//! conflict, a warning about one user or a forgotten user leaves no baseline (the next run plans
//! in full). `tests.rs` (the planner alone, target users edited by hand included) and
//! `tests/it/settled.rs` (whole runs) compare the two over randomized changes.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

use super::diff::{Parts, Rest, plan_parts};
use super::{Clock, Plan};
use crate::current::{CurrentState, CurrentUser};
use crate::desired::{DesiredState, DesiredUser, match_key};
use crate::manifest::model::UserMapping;

/// What a plan made in full that changed nothing knew of each user: enough to plan again only
/// the users whose inputs changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// Every desired user, sorted by key.
    pub users: Vec<BaselineUser>,
    /// The target users' marker and match values (`value_hash`) with their ids, sorted; but for
    /// those of a target user that its desired user has too (found through the desired user:
    /// `Closure::targets_with`), which is most of them.
    pub values: Vec<(u64, String)>,
    /// The scope's fingerprint: which source users it leaves out, and what read only its members.
    pub scope: u128,
    /// `hasher()` of the build that made it.
    pub hasher: u128,
}

/// A desired user as the last plan had it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineUser {
    pub key: String,
    /// `fingerprint` of the desired user.
    pub fingerprint: u128,
    /// The target user it is; `None`: none (a disabled source user not created).
    pub id: Option<String>,
}

impl Baseline {
    /// The baseline of a plan made in full (`parts`, from `desired` and `current`), when it
    /// changes nothing and nothing in it depends on more than the users it names.
    pub fn of(
        mapping: &UserMapping,
        desired: &DesiredState,
        current: &CurrentState,
        parts: &Parts<'_>,
    ) -> Option<Self> {
        let plan = &parts.plan;
        if plan.has_changes()
            || !plan.conflicts.is_empty()
            || parts.user_warnings > 0
            || !desired.forgotten.users.is_empty()
            || !desired.forgotten.groups.is_empty()
        {
            return None;
        }
        let users = desired
            .users
            .values()
            .map(|user| BaselineUser {
                key: user.key.clone(),
                fingerprint: fingerprint(user),
                id: parts.resolved.get(user.key.as_str()).map(|id| (*id).to_owned()),
            })
            .collect();
        let claimers: BTreeMap<&str, &str> = parts.resolved.iter().map(|(key, id)| (*id, *key)).collect();
        let values = unexplained(mapping, desired, &current.users, |id| claimers.get(id).copied());
        Some(Self { users, values, scope: scope_fingerprint(desired), hasher: hasher() })
    }

    /// A baseline from its parts in any order (as a store reads them back).
    pub fn from_parts(mut users: Vec<BaselineUser>, mut values: Vec<(u64, String)>, scope: u128, hasher: u128) -> Self {
        if !users.is_sorted_by(|a, b| a.key <= b.key) {
            users.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        }
        if !values.is_sorted() {
            values.sort_unstable();
        }
        Self { users, values, scope, hasher }
    }

    fn find(&self, key: &str) -> Option<&BaselineUser> {
        self.users.binary_search_by(|u| u.key.as_str().cmp(key)).ok().map(|i| &self.users[i])
    }

    /// The target users with the hashed value `hash`.
    fn with_value(&self, hash: u64) -> impl Iterator<Item = &str> {
        let start = self.values.partition_point(|(h, _)| *h < hash);
        self.values[start..].iter().take_while(move |(h, _)| *h == hash).map(|(_, id)| id.as_str())
    }

    /// The baseline after a plan made again for some users changed nothing: their fingerprints
    /// and target users as found now (`resolved`), the target users `rows` (loaded for them, as
    /// they are now) in place of those it knew.
    #[must_use]
    pub fn moved_on(
        &self,
        mapping: &UserMapping,
        desired: &DesiredState,
        replanning: &Replanning,
        rows: &[CurrentUser],
        resolved: &BTreeMap<String, String>,
    ) -> Self {
        let users = desired
            .users
            .values()
            .map(|user| match self.find(&user.key).filter(|_| !replanning.keys.contains(&user.key)) {
                Some(kept) => kept.clone(),
                None => BaselineUser {
                    key: user.key.clone(),
                    fingerprint: fingerprint(user),
                    id: resolved.get(&user.key).cloned(),
                },
            })
            .collect();
        let claimers: BTreeMap<&str, &str> = resolved.iter().map(|(key, id)| (id.as_str(), key.as_str())).collect();
        let mut values: Vec<(u64, String)> =
            self.values.iter().filter(|(_, id)| !replanning.ids.contains(id)).cloned().collect();
        values.extend(unexplained(mapping, desired, rows, |id| claimers.get(id).copied()));
        values.sort_unstable();
        values.dedup();
        Self { users, values, scope: self.scope, hasher: self.hasher }
    }
}

/// 128 bits of `Hash`: two SipHash-1-3 (std's `DefaultHasher`), one started with a byte more.
/// `str` writes its bytes and a terminator, collections their length first, so no two
/// different users write the same bytes. Std may change the algorithm in a later release: a
/// baseline made by another one is not used (`Baseline::hasher`).
struct Fingerprinting([DefaultHasher; 2]);

impl Hasher for Fingerprinting {
    fn write(&mut self, bytes: &[u8]) {
        self.0[0].write(bytes);
        self.0[1].write(bytes);
    }

    fn finish(&self) -> u64 {
        self.0[0].finish()
    }
}

impl Fingerprinting {
    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.write_u8(0),
            Value::Bool(b) => (1_u8, b).hash(self),
            Value::Number(n) => (2_u8, n).hash(self),
            Value::String(s) => (3_u8, s).hash(self),
            Value::Array(items) => {
                (4_u8, items.len()).hash(self);
                for item in items {
                    self.value(item);
                }
            }
            Value::Object(map) => {
                (5_u8, map.len()).hash(self);
                for (name, item) in map {
                    name.hash(self);
                    self.value(item);
                }
            }
        }
    }

    fn new() -> Self {
        let mut second = DefaultHasher::new();
        second.write_u8(1);
        Self([DefaultHasher::new(), second])
    }

    fn take(&self) -> u128 {
        (u128::from(self.0[0].finish()) << 64) | u128::from(self.0[1].finish())
    }
}

/// What this build's `Fingerprinting` makes of a fixed text: a baseline made by a build whose
/// hashing differs is not used.
pub fn hasher() -> u128 {
    let mut probe = Fingerprinting::new();
    "scimform baseline".hash(&mut probe);
    probe.take()
}

/// The target users' values (`target_values`) that the desired user each is (`claimer`) does
/// not have too, with their ids, sorted.
fn unexplained<'a>(
    mapping: &UserMapping,
    desired: &DesiredState,
    users: &[CurrentUser],
    claimer: impl Fn(&str) -> Option<&'a str>,
) -> Vec<(u64, String)> {
    let mut values = Vec::new();
    for user in users {
        let theirs: Vec<u64> = claimer(&user.id)
            .and_then(|key| desired.users.get(key))
            .map(|want| desired_values(mapping, want).collect())
            .unwrap_or_default();
        values.extend(target_values(mapping, user).filter(|h| !theirs.contains(h)).map(|h| (h, user.id.clone())));
    }
    values.sort_unstable();
    values.dedup();
    values
}

/// A desired user's fingerprint: a hash of everything the planner reads of it.
pub fn fingerprint(user: &DesiredUser) -> u128 {
    let mut digest = Fingerprinting::new();
    (&user.key, &user.source_id, user.source_disabled, user.active, &user.external_id).hash(&mut digest);
    user.attributes.len().hash(&mut digest);
    for (path, value) in user.attributes.iter() {
        path.hash(&mut digest);
        digest.value(value);
    }
    (&user.removals, &user.references).hash(&mut digest);
    digest.take()
}

/// The fingerprint of what the desired state says of the scope.
pub fn scope_fingerprint(desired: &DesiredState) -> u128 {
    let mut digest = Fingerprinting::new();
    for (key, out) in &desired.out_of_scope {
        (key, &out.external_id, &out.why).hash(&mut digest);
    }
    desired.scoped_by.hash(&mut digest);
    digest.take()
}

/// A marker (`tag` 0) or the value of the `tag`-th match path, hashed (FNV-1a): where two
/// users could find each other. Two values may share a hash; that only loads a user more.
fn value_hash(tag: usize, value: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in (tag as u64).to_le_bytes().iter().chain(value.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A target user's marker and match values, hashed.
fn target_values<'a>(mapping: &'a UserMapping, user: &'a CurrentUser) -> impl Iterator<Item = u64> + 'a {
    let marker = user.external_id().map(|m| value_hash(0, m));
    let keys = mapping.match_paths.iter().enumerate().filter_map(|(position, path)| {
        user.get(path).and_then(Value::as_str).map(|v| value_hash(position + 1, &match_key(v)))
    });
    marker.into_iter().chain(keys)
}

/// A desired user's marker and match values, hashed (the first match value is its key).
fn desired_values<'a>(mapping: &'a UserMapping, user: &'a DesiredUser) -> impl Iterator<Item = u64> + 'a {
    let marker = user.external_id.as_deref().map(|m| value_hash(0, m));
    let keys = mapping.match_paths.iter().enumerate().filter_map(|(position, path)| {
        if position == 0 {
            Some(value_hash(1, &user.key))
        } else {
            user.attributes.get(path).and_then(Value::as_str).map(|v| value_hash(position + 1, &match_key(v)))
        }
    });
    marker.into_iter().chain(keys)
}

/// The users planned again and the target users loaded for them, grown until closed: every
/// target user a user planned again could find (by marker or match value) or was, is loaded;
/// every desired user that could find a loaded target user (as the state kept it, or as it is
/// now), or refers to a user planned again, is planned again; every target user sharing a
/// marker with a loaded one is loaded. Nothing left out then matches, claims or is
/// deprovisioned otherwise than before: `tests.rs` fails when any one of these rules is dropped.
pub struct Closure<'a> {
    baseline: &'a Baseline,
    mapping: &'a UserMapping,
    desired: &'a DesiredState,
    /// Desired keys planned again, with keys the last plan had that are gone.
    pub keys: BTreeSet<String>,
    /// Target ids loaded or to load.
    pub ids: BTreeSet<String>,
    pending_keys: Vec<String>,
    pending_ids: Vec<String>,
    /// The desired users' values, hashed, sorted.
    desired_values: Vec<(u64, &'a str)>,
    /// Referred key -> referring key, sorted.
    referrers: Vec<(&'a str, &'a str)>,
}

impl<'a> Closure<'a> {
    /// Starts from the desired users whose fingerprint changed, the new and the gone, and the
    /// target users `modified` since the state was saved.
    pub fn new(
        baseline: &'a Baseline,
        mapping: &'a UserMapping,
        desired: &'a DesiredState,
        modified: impl IntoIterator<Item = String>,
    ) -> Self {
        // Both sorted by key: walked side by side.
        let mut pending_keys = Vec::new();
        let mut last = baseline.users.iter().peekable();
        for user in desired.users.values() {
            while let Some(gone) = last.next_if(|b| b.key < user.key) {
                pending_keys.push(gone.key.clone());
            }
            if last.next_if(|b| b.key == user.key).is_none_or(|b| b.fingerprint != fingerprint(user)) {
                pending_keys.push(user.key.clone());
            }
        }
        pending_keys.extend(last.map(|gone| gone.key.clone()));
        let mut desired_values: Vec<(u64, &str)> =
            desired.users.values().flat_map(|u| desired_values(mapping, u).map(|h| (h, u.key.as_str()))).collect();
        desired_values.sort_unstable();
        let mut referrers: Vec<(&str, &str)> = desired
            .users
            .values()
            .flat_map(|u| u.references.values().map(|to| (to.as_str(), u.key.as_str())))
            .collect();
        referrers.sort_unstable();
        let mut closure = Self {
            baseline,
            mapping,
            desired,
            keys: BTreeSet::new(),
            ids: BTreeSet::new(),
            pending_keys: Vec::new(),
            pending_ids: Vec::new(),
            desired_values,
            referrers,
        };
        for key in pending_keys {
            closure.add_key(key);
        }
        for id in modified {
            closure.add_id(id);
        }
        closure
    }

    fn add_key(&mut self, key: String) {
        if self.keys.insert(key.clone()) {
            self.pending_keys.push(key);
        }
    }

    fn add_id(&mut self, id: String) {
        if self.ids.insert(id.clone()) {
            self.pending_ids.push(id);
        }
    }

    /// The target ids to load next; empty once the closure is complete. Each batch's rows go
    /// to `found` before the next call.
    pub fn wanted(&mut self) -> Vec<String> {
        while let Some(key) = self.pending_keys.pop() {
            if let Some(id) = self.baseline.find(&key).and_then(|b| b.id.clone()) {
                self.add_id(id);
            }
            if let Some(user) = self.desired.users.get(&key) {
                let found: Vec<String> =
                    desired_values(self.mapping, user).flat_map(|hash| self.targets_with(hash)).collect();
                for id in found {
                    self.add_id(id);
                }
            }
            let start = self.referrers.partition_point(|(to, _)| *to < key.as_str());
            let referring: Vec<String> = self.referrers[start..]
                .iter()
                .take_while(|(to, _)| *to == key.as_str())
                .map(|(_, from)| (*from).to_owned())
                .collect();
            for from in referring {
                self.add_key(from);
            }
        }
        std::mem::take(&mut self.pending_ids)
    }

    /// Rows loaded for ids `wanted` returned, as the state kept them and, for those modified
    /// since, as they are now: who was, or could find, each of them is planned again.
    pub fn found<'u>(&mut self, rows: impl IntoIterator<Item = &'u CurrentUser>) {
        for row in rows {
            // Who was it is among those found by its values as the state kept them: it was
            // matched by its marker or one of its keys.
            for hash in target_values(self.mapping, row).collect::<Vec<_>>() {
                let start = self.desired_values.partition_point(|(h, _)| *h < hash);
                let finders: Vec<String> = self.desired_values[start..]
                    .iter()
                    .take_while(|(h, _)| *h == hash)
                    .map(|(_, key)| (*key).to_owned())
                    .collect();
                for key in finders {
                    self.add_key(key);
                }
            }
            // Those sharing its marker: whether one is deprovisioned turns on who holds the marker.
            if let Some(marker) = row.external_id() {
                let same = self.targets_with(value_hash(0, marker));
                for id in same {
                    self.add_id(id);
                }
            }
        }
    }

    /// The target users with the hashed value `hash` as the baseline knew them: those it names,
    /// and those of the desired users with that value (their values as their desired users
    /// have them: unchanged unless the desired user changed, whose target user is loaded then).
    fn targets_with(&self, hash: u64) -> Vec<String> {
        let mut ids: Vec<String> = self.baseline.with_value(hash).map(str::to_owned).collect();
        let start = self.desired_values.partition_point(|(h, _)| *h < hash);
        for (_, key) in self.desired_values[start..].iter().take_while(|(h, _)| *h == hash) {
            ids.extend(self.baseline.find(key).and_then(|b| b.id.clone()));
        }
        ids
    }

    /// Whether the closure holds every desired user: planning in full costs no more.
    pub fn is_everything(&self) -> bool {
        self.keys.len() >= self.desired.users.len().max(1)
    }

    /// The target group members that no user left out of the closure is (by the baseline): a
    /// member removed is named by its target user, so those are loaded too.
    pub fn unaccounted_members(&self, current: &CurrentState) -> BTreeSet<String> {
        let accounted: BTreeSet<&str> = self
            .desired
            .groups
            .iter()
            .flat_map(|g| g.members.iter())
            .filter(|key| !self.keys.contains(*key))
            .filter_map(|key| self.baseline.find(key)?.id.as_deref())
            .collect();
        current
            .groups
            .values()
            .flat_map(|g| g.members.iter())
            .filter(|id| !accounted.contains(id.as_str()) && !self.ids.contains(*id))
            .cloned()
            .collect()
    }
}

/// What a plan made again for some users stands on: the last plan made in full and its
/// baseline, the users planned again (the closure's keys) and the target users loaded for them.
#[derive(Debug, Clone)]
pub struct Replanning {
    pub baseline: std::sync::Arc<Baseline>,
    /// The plan the baseline was made with.
    pub last: Plan,
    pub keys: BTreeSet<String>,
    pub ids: BTreeSet<String>,
    /// How many of the loaded target users carried our marker as the state kept them.
    pub owned_before: usize,
    /// Target users loaded only to name a removed group member.
    pub named: Vec<CurrentUser>,
}

/// The plan for `desired` against `current` (the target users `replanning` loaded, as they are
/// now, with every paired group), made for the users planned again alone and taking every
/// other user as the last plan left it: the same plan as `plan_at` over every user
/// (`tests/it/settled.rs`). With it, which target user each user planned again is (desired
/// key -> target id).
pub fn plan_delta(
    mapping: &UserMapping,
    desired: &DesiredState,
    replanning: &Replanning,
    current: &CurrentState,
    clock: &Clock,
) -> (Plan, BTreeMap<String, String>) {
    let Replanning { baseline, last, keys, ids, owned_before, named } = replanning;
    let markers: BTreeSet<&str> = current.users.iter().filter_map(CurrentUser::external_id).collect();
    let planned = DesiredState {
        users: desired
            .users
            .iter()
            .filter(|(key, _)| keys.contains(*key))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect(),
        out_of_scope: desired
            .out_of_scope
            .iter()
            .filter(|(_, out)| out.external_id.as_deref().is_some_and(|m| markers.contains(m)))
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect(),
        scoped_by: desired.scoped_by.clone(),
        groups: Vec::new(),
        errors: Vec::new(),
        warnings: desired.warnings.clone(),
        forgotten: desired.forgotten.clone(),
    };
    let target_id =
        |key: &str| -> Option<&str> { if keys.contains(key) { None } else { baseline.find(key)?.id.as_deref() } };
    let rest = Rest {
        target_id: Some(&target_id),
        unmanaged: last.unmanaged.iter().filter(|u| !ids.contains(&u.id)).cloned().collect(),
        owned_users: last.owned_users.saturating_sub(*owned_before),
        disabled_not_created: baseline.users.iter().filter(|u| u.id.is_none() && !keys.contains(&u.key)).count(),
        gone: last.gone.iter().filter(|id| !ids.contains(*id)).cloned().collect(),
        named: named.iter().collect(),
    };
    let parts = plan_parts(mapping, &planned, &desired.groups, current, clock, &rest);
    let resolved = parts.resolved.iter().map(|(k, id)| ((*k).to_owned(), (*id).to_owned())).collect();
    (parts.plan, resolved)
}

#[cfg(test)]
mod tests;
