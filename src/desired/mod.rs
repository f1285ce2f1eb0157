//! Source records × mappings -> `DesiredState`: the world as it should be, in SCIM terms, for
//! the users in scope (`scope.rs`). Pure.

mod attributes;
pub mod scope;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::manifest::model::{
    GroupPairing, MembershipMethod, OnEmpty, SetMapping, SetPrecedence, TargetGroupRef, UserMapping,
};
use crate::mapping::{evaluate, evaluate_at};
use crate::record::{SourceGroup, SourceRecord};
use crate::scim::ScimPath;
use scope::{ScopeGroups, ScopeMembers, why_out};

pub use attributes::Attributes;

/// Normalises a match value: SCIM `userName` (and the other string attributes one would match
/// on) are not case-exact, so keys compare in lower case.
pub fn match_key(value: &str) -> String {
    value.to_lowercase()
}

/// One user as the manifest says it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredUser {
    /// The match value, normalised (see `match_key`).
    pub key: String,
    /// The source record's id, for messages.
    pub source_id: String,
    pub source_disabled: bool,
    /// The ownership marker for `externalId`.
    pub external_id: Option<String>,
    /// Managed attributes with a value, by path (`active` is kept apart in `active`).
    pub attributes: Attributes,
    /// Managed attributes whose source value is empty and whose mapping says `on_empty: remove`.
    pub removals: BTreeSet<ScimPath>,
    /// Attributes whose value is another user's target id (`manager.value`): path -> that
    /// user's key. The planner turns the key into an id.
    pub references: BTreeMap<ScimPath, String>,
    pub active: bool,
}

/// One group pairing's desired membership, as user keys.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredGroup {
    pub pairing: String,
    pub target: TargetGroupRef,
    pub method: MembershipMethod,
    pub members_per_operation: usize,
    pub members_per_request: Option<usize>,
    /// Create the target group when it is missing.
    pub create: bool,
    /// How many members one plan may remove.
    pub max_removals: crate::manifest::model::Limit,
    pub members: BTreeSet<String>,
    /// Source members that match no desired user: their key, or the source's name for them.
    pub unresolved: Vec<String>,
}

/// A source user the scope leaves out: its ownership marker, and why it is out.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfScope {
    pub external_id: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DesiredState {
    pub users: BTreeMap<String, DesiredUser>,
    /// Source users the scope leaves out, by key: an owned target user that is one of them has
    /// left the scope (`deprovision.out_of_scope`).
    pub out_of_scope: BTreeMap<String, OutOfScope>,
    /// The users' source read only the scope groups' members (`group "CC Agents"`): an owned
    /// target user that is not desired has left them.
    pub scoped_by: Option<String>,
    pub groups: Vec<DesiredGroup>,
    /// Problems that make the desired state untrustworthy (a mapping that fails, two records
    /// with one key). Planning refuses to go on with any of these.
    pub errors: Vec<String>,
    /// Things worth knowing that change nothing (a manager outside the source).
    pub warnings: Vec<String>,
    /// Target users and groups `scimform state forget` took out of scimform's hands: never
    /// written, deprovisioned or adopted, and a forgotten user's memberships are left as they are.
    pub forgotten: Forgotten,
}

/// What `scimform state forget` made scimform stop managing, by target id (with the name it had
/// then, to say it): kept in the state, per target.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Forgotten {
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
}

impl Forgotten {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// Builds the desired state. `groups` pairs each pairing with the group its source returned.
pub fn build(mapping: &UserMapping, records: &[SourceRecord], groups: &[(GroupPairing, SourceGroup)]) -> DesiredState {
    build_with_sets(mapping, records, groups, &[], &ScopeGroups::None, None)
}

/// `build`, with the source groups of the set rules (`set_groups[i][j]` is the group of rule
/// `j` of `mapping.sets[i]`; missing ones count as empty), the scope's groups as read, and the
/// run's clock (what `now()` in a template reads).
pub fn build_with_sets(
    mapping: &UserMapping,
    records: &[SourceRecord],
    groups: &[(GroupPairing, SourceGroup)],
    set_groups: &[Vec<SourceGroup>],
    scope_groups: &ScopeGroups,
    now: Option<jiff::Timestamp>,
) -> DesiredState {
    let mut state = DesiredState::default();
    let members = match scope_groups {
        ScopeGroups::Read(groups) => Some(scope_members(mapping, groups)),
        ScopeGroups::BySource(named) => {
            state.scoped_by = Some(named.clone());
            None
        }
        ScopeGroups::None => None,
    };
    let mut sorted: Vec<&SourceRecord> = records.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for record in sorted {
        let user = desired_user(mapping, record, now);
        let key = match &user {
            Ok(user) => user.key.clone(),
            // Its other mappings failed: its match value still says whether it is in scope.
            Err(_) => key_of(mapping, record).unwrap_or_default(),
        };
        if let Some(why) = why_out(&mapping.scope, record, &key, members.as_ref()) {
            // Out of scope: never an error, whatever its mappings make of it.
            if let Ok(user) = user {
                state.out_of_scope.insert(user.key, OutOfScope { external_id: user.external_id, why });
            }
            continue;
        }
        match user {
            Ok(user) => {
                if let Some(existing) = state.users.get(&user.key) {
                    state.errors.push(format!(
                        "source records `{}` and `{}` both map to `{}` = `{}`",
                        existing.source_id, record.id, mapping.match_path, user.key
                    ));
                    continue;
                }
                state.users.insert(user.key.clone(), user);
            }
            Err(message) => state.errors.push(format!("source record `{}`: {message}", record.id)),
        }
    }
    for (pairing, group) in groups {
        // A member is keyed like a user is matched, so members from another source (Entra groups
        // over AD users) join the users they describe.
        let key_mapping = pairing.member_key.as_ref().or(mapping.match_mapping());
        let mut members = BTreeSet::new();
        let mut unresolved = group.unresolved.clone();
        for member in &group.members {
            let key =
                key_mapping.and_then(|m| evaluate(m, member).ok().flatten()).and_then(|v| v.as_str().map(match_key));
            match key {
                Some(key) if state.users.contains_key(&key) => {
                    members.insert(key);
                }
                // Left out by the scope, not unknown.
                Some(key) if state.out_of_scope.contains_key(&key) => {}
                Some(key) => unresolved.push(key),
                None => unresolved.push(member.id.clone()),
            }
        }
        unresolved.sort();
        unresolved.dedup();
        state.groups.push(DesiredGroup {
            pairing: pairing.name.clone(),
            target: pairing.to.clone(),
            method: pairing.method,
            members_per_operation: pairing.members_per_operation,
            members_per_request: pairing.members_per_request,
            create: pairing.create,
            max_removals: pairing.max_removals,
            members,
            unresolved,
        });
    }
    state.groups.sort_by(|a, b| a.pairing.cmp(&b.pairing));
    add_sets(mapping, records, set_groups, &mut state);
    add_references(mapping, records, &mut state);
    // Built again from its sorted entries, the map's nodes are full: inserted one by one, in
    // record order, they were half empty (heaptrack, 100,000 users: 35 MB, against 18 MB).
    state.users = std::mem::take(&mut state.users).into_iter().collect();
    state
}

/// The scope groups' members as user keys (keyed by the users' match mapping, as pairings'
/// members are), and the groups' names.
fn scope_members(mapping: &UserMapping, groups: &[SourceGroup]) -> ScopeMembers {
    let keys = groups.iter().flat_map(|g| &g.members).filter_map(|member| key_of(mapping, member)).collect();
    ScopeMembers { keys, groups: groups.iter().map(|g| g.name.clone()).collect() }
}

/// A record's user key: its match value, normalised.
fn key_of(mapping: &UserMapping, record: &SourceRecord) -> Option<String> {
    let value = evaluate(mapping.match_mapping()?, record).ok().flatten()?;
    value.as_str().map(match_key)
}

/// Resolves reference mappings (`manager`) to the key of the user they name: a record of the
/// same source whose `dn` (LDAP) or `id` (Graph, files) is the reference. A reference to no user
/// of the manifest is reported and left out, never invented.
fn add_references(mapping: &UserMapping, records: &[SourceRecord], state: &mut DesiredState) {
    let references: Vec<(&ScimPath, &str)> = mapping
        .attributes
        .iter()
        .filter_map(|a| match &a.mapping {
            crate::mapping::Mapping::Reference(attribute) => Some((&a.path, attribute.as_str())),
            _ => None,
        })
        .collect();
    if references.is_empty() {
        return;
    }
    let by_id: BTreeMap<&str, &SourceRecord> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    // DNs compare without case, as LDAP does.
    let mut by_name: BTreeMap<String, &str> = BTreeMap::new();
    for user in state.users.values() {
        let Some(record) = by_id.get(user.source_id.as_str()) else { continue };
        by_name.insert(record.id.to_lowercase(), &user.key);
        if let Some(crate::record::AttrValue::Text(dn)) = record.get("dn") {
            by_name.insert(dn.to_lowercase(), &user.key);
        }
    }
    let mut resolved: Vec<(String, &ScimPath, String)> = Vec::new();
    for user in state.users.values() {
        let Some(record) = by_id.get(user.source_id.as_str()) else { continue };
        for (path, attribute) in &references {
            let Some(crate::record::AttrValue::Text(reference)) = record.get(attribute) else { continue };
            if reference.is_empty() {
                continue;
            }
            match by_name.get(&reference.to_lowercase()) {
                Some(key) => resolved.push((user.key.clone(), path, (*key).to_owned())),
                None => state.warnings.push(format!(
                    "user `{}`: `{path}` refers to `{reference}`, which is no user of source `{}`; left as it is",
                    user.key, mapping.source
                )),
            }
        }
    }
    for (key, path, target) in resolved {
        if let Some(user) = state.users.get_mut(&key) {
            user.references.insert(path.clone(), target);
        }
    }
}

/// One entry of a set: its name and, for skills and languages, its proficiency.
type Entries = BTreeMap<String, Option<f64>>;

/// Computes every set attribute of every desired user.
fn add_sets(
    mapping: &UserMapping,
    records: &[SourceRecord],
    set_groups: &[Vec<SourceGroup>],
    state: &mut DesiredState,
) {
    let key_of = |record: &SourceRecord| key_of(mapping, record);
    let by_id: BTreeMap<&str, &SourceRecord> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    for (index, set) in mapping.sets.iter().enumerate() {
        // Per user key: the entries its groups give, the highest level winning between groups.
        let mut from_groups: BTreeMap<String, Entries> = BTreeMap::new();
        for (rule, group) in set.groups.iter().zip(set_groups.get(index).into_iter().flatten()) {
            for member in &group.members {
                let Some(key) = key_of(member) else { continue };
                let entry = from_groups.entry(key).or_default().entry(rule.name.clone()).or_insert(rule.level);
                *entry = higher(*entry, rule.level);
            }
        }
        for user in state.users.values_mut() {
            let record = by_id.get(user.source_id.as_str());
            let listed = match (&set.from, record) {
                (Some(from), Some(record)) => match listed_entries(set, from, record) {
                    Ok(entries) => entries,
                    Err(message) => {
                        state.errors.push(format!(
                            "user `{}` (source record `{}`): `{}`: {message}",
                            user.key, user.source_id, set.path
                        ));
                        continue;
                    }
                },
                _ => Entries::new(),
            };
            let grouped = from_groups.get(&user.key).cloned().unwrap_or_default();
            let (mut entries, winner) = match set.precedence {
                SetPrecedence::Attribute => (grouped, listed),
                SetPrecedence::Groups => (listed, grouped),
            };
            entries.extend(winner);
            if let Some(max) = set.shape.max.filter(|max| entries.len() > *max) {
                state.errors.push(format!(
                    "user `{}` (source record `{}`): `{}`: {} entries, more than the {max} the target allows",
                    user.key,
                    user.source_id,
                    set.path,
                    entries.len()
                ));
                continue;
            }
            user.attributes.insert(set.path.clone(), set_value(set, &entries));
        }
    }
}

/// The higher of two levels (an entry named twice keeps its best proficiency).
fn higher(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The entries a set's `from` mapping lists for one record: `Billing:3;Sales:2`.
fn listed_entries(set: &SetMapping, from: &crate::mapping::Mapping, record: &SourceRecord) -> Result<Entries, String> {
    let items: Vec<String> = match evaluate(from, record).map_err(|e| e.message)? {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect()
        }
        Some(Value::String(text)) => vec![text],
        Some(other) => vec![other.to_string()],
    };
    let mut entries = Entries::new();
    for item in items.iter().flat_map(|i| i.split(set.separator.as_str())).map(str::trim).filter(|i| !i.is_empty()) {
        let (name, level) = match (set.shape.level, item.rsplit_once(':')) {
            (None, _) => (item, None),
            (Some(_), Some((name, level))) => {
                let level: f64 = level.trim().parse().map_err(|_| format!("`{item}`: `{level}` is not a number"))?;
                (name.trim(), Some(level))
            }
            (Some(field), None) => match set.default_level {
                Some(level) => (item, Some(level)),
                None => {
                    return Err(format!("`{item}` has no {field} (write `{item}:3`, or set `default_proficiency`)"));
                }
            },
        };
        if let (Some(field), Some(level)) = (set.shape.level, level) {
            let (low, high) = set.shape.range;
            if !(low..=high).contains(&level) {
                return Err(format!("{field} {level} for `{name}` is out of range ({low} to {high})"));
            }
        }
        let entry = entries.entry(name.to_owned()).or_insert(level);
        *entry = higher(*entry, level);
    }
    Ok(entries)
}

/// A set as the SCIM value it is written as: `[{"name": "Billing", "proficiency": 3}]`, sorted.
fn set_value(set: &SetMapping, entries: &Entries) -> Value {
    let items = entries
        .iter()
        .map(|(name, level)| {
            let mut item = serde_json::Map::new();
            item.insert(set.shape.key.to_owned(), Value::String(name.clone()));
            if let (Some(field), Some(level)) = (set.shape.level, level) {
                item.insert(field.to_owned(), serde_json::Number::from_f64(*level).map_or(Value::Null, Value::Number));
            }
            Value::Object(item)
        })
        .collect();
    Value::Array(items)
}

fn desired_user(
    mapping: &UserMapping,
    record: &SourceRecord,
    now: Option<jiff::Timestamp>,
) -> Result<DesiredUser, String> {
    let mut attributes = Attributes::with_capacity(mapping.attributes.len());
    let mut removals = BTreeSet::new();
    let mut active = !record.disabled;
    for attribute in &mapping.attributes {
        if matches!(attribute.mapping, crate::mapping::Mapping::Reference(_)) {
            continue;
        }
        let value = evaluate_at(&attribute.mapping, record, now).map_err(|e| format!("`{}`: {e}", attribute.path))?;
        if attribute.path.is("active") {
            if let Some(value) = value {
                active = as_bool(&value).ok_or_else(|| format!("`active` must be true or false, found {value}"))?;
            }
            continue;
        }
        match value {
            Some(value) => {
                attributes.insert(attribute.path.clone(), value);
            }
            None if attribute.on_empty == OnEmpty::Remove => {
                removals.insert(attribute.path.clone());
            }
            None => {}
        }
    }
    let key_value = attributes
        .get(&mapping.match_path)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the match attribute `{}` is empty", mapping.match_path))?;
    let external_id = match &mapping.external_id {
        None => None,
        Some(m) => Some(
            evaluate(m, record)
                .map_err(|e| format!("`external_id`: {e}"))?
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .ok_or("the ownership marker `external_id` is empty")?,
        ),
    };
    Ok(DesiredUser {
        key: match_key(key_value),
        source_id: record.id.clone(),
        source_disabled: record.disabled,
        external_id,
        attributes,
        removals,
        references: BTreeMap::new(),
        active,
    })
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::manifest::model::GroupSelector;
    use crate::plan::fixtures::{MANIFEST, manifest, person};
    use crate::record::AttrValue;

    const SKILLS: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills";

    fn with_sets(sets: &str) -> crate::manifest::Manifest {
        manifest(&MANIFEST.replace(
            "  deprovision: { action: disable }",
            &format!("  deprovision: {{ action: disable }}\n  sets:\n{sets}"),
        ))
    }

    fn skills_of(state: &DesiredState, key: &str) -> Value {
        state.users[key].attributes[&ScimPath::parse(SKILLS).unwrap()].clone()
    }

    fn group(members: &[&SourceRecord]) -> SourceGroup {
        SourceGroup {
            id: "g".into(),
            name: "g".into(),
            members: members.iter().map(|r| (*r).clone()).collect(),
            unresolved: Vec::new(),
        }
    }

    #[test]
    fn skills_come_from_an_attribute_and_from_groups_with_precedence() {
        let sets = format!(
            "    {SKILLS}:\n      from: skills\n      groups:\n        - {{ source: hr, group: {{ name: billing }}, name: Billing, proficiency: 1 }}\n        - {{ source: hr, group: {{ name: sales }}, name: Sales, proficiency: 4 }}\n"
        );
        let mut ann = person("1", "ann.lee@x.example", "Agent");
        ann.insert("skills", AttrValue::Text("Billing:3; Sales:2".into()));
        let bo = person("2", "bo.ek@x.example", "Agent");
        let m = with_sets(&sets);
        assert_eq!(m.users.sets[0].groups[0].group, GroupSelector::Name("billing".into()));
        let groups = vec![vec![group(&[&ann, &bo]), group(&[&ann])]];
        let state = build_with_sets(&m.users, &[ann.clone(), bo.clone()], &[], &groups, &ScopeGroups::None, None);
        assert!(state.errors.is_empty(), "{:?}", state.errors);
        // The attribute wins over the groups by default; a group adds what the attribute lacks.
        assert_eq!(
            skills_of(&state, "ann.lee@x.example"),
            json!([{"name": "Billing", "proficiency": 3.0}, {"name": "Sales", "proficiency": 2.0}])
        );
        assert_eq!(skills_of(&state, "bo.ek@x.example"), json!([{"name": "Billing", "proficiency": 1.0}]));

        let m = with_sets(&format!("{sets}      precedence: groups\n"));
        let state = build_with_sets(&m.users, &[ann, bo], &[], &groups, &ScopeGroups::None, None);
        assert_eq!(
            skills_of(&state, "ann.lee@x.example"),
            json!([{"name": "Billing", "proficiency": 1.0}, {"name": "Sales", "proficiency": 4.0}])
        );
    }

    #[test]
    fn limits_are_checked_naming_the_user_and_the_rule() {
        let m = with_sets(&format!("    {SKILLS}:\n      from: skills\n"));
        let mut many = person("1", "ann.lee@x.example", "Agent");
        many.insert("skills", AttrValue::List((0..51).map(|i| format!("Skill{i}:1")).collect()));
        let mut seven = person("2", "bo.ek@x.example", "Agent");
        seven.insert("skills", AttrValue::Text("Billing:7".into()));
        let mut bare = person("3", "cy.do@x.example", "Agent");
        bare.insert("skills", AttrValue::Text("Billing".into()));
        let state = build_with_sets(&m.users, &[many, seven, bare], &[], &[], &ScopeGroups::None, None);
        assert_eq!(
            state.errors,
            [
                format!(
                    "user `ann.lee@x.example` (source record `1`): `{SKILLS}`: 51 entries, more than the 50 the target allows"
                ),
                format!(
                    "user `bo.ek@x.example` (source record `2`): `{SKILLS}`: proficiency 7 for `Billing` is out of range (0 to 5)"
                ),
                format!(
                    "user `cy.do@x.example` (source record `3`): `{SKILLS}`: `Billing` has no proficiency (write `Billing:3`, or set `default_proficiency`)"
                ),
            ]
        );
        let m = with_sets(&format!("    {SKILLS}:\n      from: skills\n      default_proficiency: 2\n"));
        let mut bare = person("3", "cy.do@x.example", "Agent");
        bare.insert("skills", AttrValue::Text("Billing".into()));
        let state = build_with_sets(&m.users, &[bare], &[], &[], &ScopeGroups::None, None);
        assert_eq!(skills_of(&state, "cy.do@x.example"), json!([{"name": "Billing", "proficiency": 2.0}]));
    }

    #[test]
    fn roles_are_names() {
        let m = with_sets("    roles:\n      from: '{{ roles | split(\",\") }}'\n");
        let mut ann = person("1", "ann.lee@x.example", "Agent");
        ann.insert("roles", AttrValue::Text("Employee,Supervisor".into()));
        let state = build_with_sets(&m.users, &[ann], &[], &[], &ScopeGroups::None, None);
        assert_eq!(
            state.users["ann.lee@x.example"].attributes[&ScimPath::attribute("roles")],
            json!([{"value": "Employee"}, {"value": "Supervisor"}])
        );
    }
}
