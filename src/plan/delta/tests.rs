//! The plan made again for the users that changed equals the plan made in full, over
//! randomized changes to the sources (addresses, aliases, managers, accounts disabled, people
//! added and removed, group members) and to the target (users edited by hand: their keys, their
//! marker, their title; users added by hand, some colliding with a person's keys).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::current::CurrentGroup;
use crate::desired::build;
use crate::manifest::model::TargetGroupRef;
use crate::plan::fixtures::{MANIFEST, manifest, support};
use crate::plan::{Action, plan_at};
use crate::record::{AttrValue, SourceRecord};

const MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";

/// Two match keys and managers; with the ownership marker or, where `marked` is false, without
/// one (users are then found by their keys alone).
fn mapping(marked: bool) -> crate::manifest::Manifest {
    let text = MANIFEST
        .replace("  source: hr\n", "  source: hr\n  match: [userName, 'emails[type eq \"work\"].value']\n")
        .replace(
            "'emails[type eq \"work\"].value': \"{{ mail | lower }}\"",
            "'emails[type eq \"work\"].value': \"{{ alias }}\"",
        )
        .replace(
            "  deprovision: { action: disable }",
            &format!("    {MANAGER}: {{ reference: manager }}\n  deprovision: {{ action: disable }}"),
        );
    manifest(&if marked { text } else { text.replace("  external_id: \"hr-{{ id }}\"\n", "") })
}

/// xorshift64*: a failure names its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        usize::try_from(self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64).unwrap()
    }
}

#[derive(Clone)]
struct Person {
    mail: String,
    alias: String,
    title: String,
    manager: Option<usize>,
    disabled: bool,
}

fn records(people: &BTreeMap<usize, Person>) -> Vec<SourceRecord> {
    people
        .iter()
        .map(|(id, p)| {
            let mut r = SourceRecord::new(id.to_string());
            r.insert("mail", AttrValue::Text(p.mail.clone()));
            r.insert("alias", AttrValue::Text(p.alias.clone()));
            r.insert("givenName", AttrValue::Text("P".into()));
            r.insert("sn", AttrValue::Text(id.to_string()));
            r.insert("title", AttrValue::Text(p.title.clone()));
            if let Some(manager) = p.manager {
                r.insert("manager", AttrValue::Text(manager.to_string()));
            }
            r.disabled = p.disabled;
            r
        })
        .collect()
}

/// A target user as a create of `change` leaves it (`ids`: the created users' target ids).
fn created(id: &str, change: &crate::plan::UserChange, ids: &BTreeMap<String, String>) -> CurrentUser {
    let mut resource = json!({"id": id});
    for c in &change.changes {
        let value = match (&c.after, &c.reference) {
            (Some(v), _) => v.clone(),
            (None, Some(key)) => json!(ids[key.as_str()]),
            (None, None) => continue,
        };
        match c.path.to_string().as_str() {
            "emails[type eq \"work\"].value" => resource["emails"] = json!([{"type": "work", "value": value}]),
            MANAGER => {
                resource["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
                    json!({"manager": {"value": value}});
            }
            path => resource[path] = value,
        }
    }
    CurrentUser::from_resource(resource).unwrap()
}

/// A target user edited by hand.
fn edited(user: &CurrentUser, path: &str, value: Value) -> CurrentUser {
    let mut resource = user.to_resource();
    match path {
        "emails" => resource["emails"] = json!([{"type": "work", "value": value}]),
        path => resource[path] = value,
    }
    CurrentUser::from_resource(resource).unwrap()
}

fn group(members: impl IntoIterator<Item = String>) -> CurrentGroup {
    CurrentGroup {
        id: "g1".into(),
        display_name: "Support".into(),
        members: members.into_iter().collect(),
        version: None,
    }
}

/// The plan made again, loading target users as the pipeline does (the state's rows, and the
/// modified ones as read now).
fn replan(
    m: &UserMapping,
    baseline: &Baseline,
    last: &Plan,
    desired: &DesiredState,
    before: &CurrentState,
    now: &CurrentState,
    modified: &[String],
) -> Option<(Plan, Replanning, CurrentState, BTreeMap<String, String>)> {
    let row = |state: &CurrentState, id: &str| state.users.iter().find(|u| u.id == id).cloned();
    let mut closure = Closure::new(baseline, m, desired, modified.iter().cloned());
    let mut kept = Vec::new();
    loop {
        let wanted = closure.wanted();
        if wanted.is_empty() {
            break;
        }
        let rows: Vec<CurrentUser> = wanted.iter().filter_map(|id| row(before, id)).collect();
        let fresh: Vec<CurrentUser> =
            wanted.iter().filter(|id| modified.contains(*id)).filter_map(|id| row(now, id)).collect();
        closure.found(rows.iter().chain(&fresh));
        kept.extend(rows);
    }
    if closure.is_everything() {
        return None;
    }
    let named: Vec<CurrentUser> =
        closure.unaccounted_members(before).iter().filter_map(|id| row(now, id).or_else(|| row(before, id))).collect();
    let owned_before = crate::plan::diff::owned(m, &kept);
    let current =
        CurrentState { users: closure.ids.iter().filter_map(|id| row(now, id)).collect(), groups: now.groups.clone() };
    let Closure { keys, ids, .. } = closure;
    let replanning = Replanning {
        baseline: std::sync::Arc::new(baseline.clone()),
        last: last.clone(),
        keys,
        ids,
        owned_before,
        named,
    };
    let (plan, resolved) = plan_delta(m, desired, &replanning, &current, &crate::plan::Clock::default());
    Some((plan, replanning, current, resolved))
}

#[test]
fn the_plan_made_again_for_the_changed_users_is_the_plan_made_in_full() {
    for marked in [true, false] {
        let (compared, refused) = compare_over_seeds(&mapping(marked));
        assert!(compared >= 150 && refused >= 5, "marked {marked}: {compared} compared, {refused} refused a baseline");
    }
}

/// Over 300 seeds, a last plan, a few changes, and the plan made again against the plan made
/// in full: how many were compared, and how many last plans kept no baseline.
fn compare_over_seeds(manifest: &crate::manifest::Manifest) -> (usize, usize) {
    let m = &manifest.users;
    let (mut compared, mut refused) = (0, 0);
    for seed in 1..=300_u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let count = 12 + rng.below(12);
        let mut people: BTreeMap<usize, Person> = (0..count)
            .map(|id| {
                let person = Person {
                    mail: format!("p{id}@x.example"),
                    alias: format!("a{id}@x.example"),
                    title: "Agent".into(),
                    manager: (id > 0 && rng.below(3) > 0).then(|| (id - 1) / 4 * 4),
                    disabled: rng.below(8) == 0,
                };
                (id, person)
            })
            .collect();
        let mut support_ids: std::collections::BTreeSet<usize> = (0..count).filter(|id| id % 3 == 0).collect();
        let members = |people: &BTreeMap<usize, Person>, support: &std::collections::BTreeSet<usize>| -> Vec<String> {
            people.keys().filter(|id| support.contains(id)).map(usize::to_string).collect()
        };
        let rec = records(&people);
        let names: Vec<String> = members(&people, &support_ids);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let before_desired = build(m, &rec, &[support(&rec, &refs)]);
        assert!(before_desired.errors.is_empty(), "{:?}", before_desired.errors);

        // The target as the first apply leaves it, with a few users no person is.
        let first = plan_at(m, &before_desired, &CurrentState::default(), &crate::plan::Clock::default());
        let ids: BTreeMap<String, String> =
            first.users.iter().enumerate().map(|(i, c)| (c.key.clone(), format!("t{i:03}"))).collect();
        let mut users: Vec<CurrentUser> =
            first.users.iter().filter(|c| c.action == Action::Create).map(|c| created(&ids[&c.key], c, &ids)).collect();
        let mut marked = Vec::new();
        for extra in 0..rng.below(5) {
            // Someone else's; or with the address of a person to come, or of a person's new one.
            let name = match rng.below(3) {
                0 => format!("stranger{extra}@x.example"),
                1 => format!("p{}@x.example", count + rng.below(5)),
                _ => format!("p{}r{}@x.example", rng.below(count), rng.below(5)),
            };
            let mut resource = json!({"id": format!("u{extra}"), "userName": name, "active": true});
            match rng.below(4) {
                // One of ours whose person is gone, disabled already (a person to come takes it).
                0 => {
                    resource["externalId"] = json!(format!("hr-{}", count + rng.below(5)));
                    resource["active"] = json!(false);
                }
                // A second user with a person's marker: left alone while the person holds it.
                1 => {
                    let person = rng.below(count);
                    resource["externalId"] = json!(format!("hr-{person}"));
                    marked.push(person);
                }
                _ => {}
            }
            users.push(CurrentUser::from_resource(resource).unwrap());
        }
        let members_ids = names.iter().filter_map(|id| {
            let key = before_desired.users.values().find(|u| u.source_id == *id)?.key.clone();
            ids.get(&key).cloned()
        });
        let groups = BTreeMap::from([(TargetGroupRef::Id("g1".into()), group(members_ids))]);
        let before = CurrentState { users, groups };
        let parts = plan_parts(
            m,
            &before_desired,
            &before_desired.groups,
            &before,
            &crate::plan::Clock::default(),
            &Rest::default(),
        );
        let Some(baseline) = Baseline::of(m, &before_desired, &before, &parts) else {
            refused += 1;
            continue;
        };
        let last = parts.plan.clone();

        // A few changes in the source and by hand in the target.
        let mut now = before.clone();
        let mut modified = Vec::new();
        for _ in 0..=rng.below(3) {
            let pick = *people.keys().nth(rng.below(people.len())).unwrap();
            match rng.below(11) {
                0 => people.get_mut(&pick).unwrap().title = format!("Title {}", rng.below(3)),
                1 => {
                    let person = people.get_mut(&pick).unwrap();
                    person.mail = format!("p{pick}r{}@x.example", rng.below(5));
                    if rng.below(2) == 0 {
                        // And another's second key: found by it alone, where the first finds none.
                        person.alias = format!("a{}@x.example", rng.below(count));
                    }
                }
                2 => people.get_mut(&pick).unwrap().alias = format!("a{}@x.example", rng.below(count)),
                3 => people.get_mut(&pick).unwrap().manager = Some(rng.below(count)),
                4 => people.get_mut(&pick).unwrap().disabled ^= true,
                5 => {
                    // Often one whose marker a second target user carries too.
                    let gone = marked.get(rng.below(marked.len() + 1)).copied().unwrap_or(pick);
                    people.remove(&gone);
                }
                6 => {
                    let id = count + rng.below(5);
                    let mail = format!("p{id}@x.example");
                    people.insert(
                        id,
                        Person {
                            alias: format!("n{id}@x.example"),
                            mail,
                            title: "New".into(),
                            manager: Some(0),
                            disabled: false,
                        },
                    );
                }
                7 => {
                    // A target user edited by hand: a key, the marker or the title.
                    let at = rng.below(now.users.len());
                    let (path, value) = match rng.below(4) {
                        0 => ("userName", json!(format!("p{}@x.example", rng.below(count + 3)))),
                        1 => ("emails", json!(format!("a{}@x.example", rng.below(count)))),
                        2 => ("externalId", json!(format!("hr-{}", rng.below(count + 3)))),
                        _ => ("title", json!("Edited by hand")),
                    };
                    now.users[at] = edited(&now.users[at], path, value);
                    if rng.below(3) == 0 {
                        // Every value it was found by, changed at once.
                        let user = edited(&now.users[at], "userName", json!(format!("q{at}@x.example")));
                        let user = edited(&user, "emails", json!(format!("q{at}@x.example")));
                        now.users[at] = edited(&user, "externalId", json!(format!("hr-q{at}")));
                    }
                    modified.push(now.users[at].id.clone());
                }
                8 | 9 => {
                    // Into the group or out of it, the person unchanged.
                    if !support_ids.remove(&pick) {
                        support_ids.insert(pick);
                    }
                }
                _ => {
                    // A user added by hand, perhaps with a person's address.
                    let id = format!("h{}", rng.below(1000));
                    let name = format!("p{}@x.example", rng.below(count + 5));
                    if now.users.iter().all(|u| u.id != id) {
                        now.users.push(
                            CurrentUser::from_resource(json!({"id": id, "userName": name, "active": true})).unwrap(),
                        );
                        modified.push(id);
                    }
                }
            }
        }
        let rec = records(&people);
        let names: Vec<String> = members(&people, &support_ids);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let desired = build(m, &rec, &[support(&rec, &refs)]);
        if !desired.errors.is_empty() {
            continue;
        }
        modified.sort();
        modified.dedup();
        let in_full = plan_parts(m, &desired, &desired.groups, &now, &crate::plan::Clock::default(), &Rest::default());
        let Some((again, replanning, loaded, resolved)) =
            replan(m, &baseline, &last, &desired, &before, &now, &modified)
        else {
            continue;
        };
        assert_eq!(again, in_full.plan, "seed {seed}");
        assert_eq!(again.gone, in_full.plan.gone, "seed {seed}");
        if let Some(full) = Baseline::of(m, &desired, &now, &in_full) {
            let moved = baseline.moved_on(m, &desired, &replanning, &loaded.users, &resolved);
            assert_eq!(moved, full, "seed {seed}: the baseline moved on is the one made in full");
        }
        compared += 1;
    }
    (compared, refused)
}

/// Without a marker a person is found by its keys alone: one whose address changed and who took
/// another's second key finds that one's target user, which the baseline knows only through
/// the other person's values. Both then stand in a conflict, as in the plan made in full.
#[test]
fn a_target_user_is_found_through_the_person_it_is() {
    let manifest = mapping(false);
    let m = &manifest.users;
    let person = |id: usize| Person {
        mail: format!("p{id}@x.example"),
        alias: format!("a{id}@x.example"),
        title: "Agent".into(),
        manager: None,
        disabled: false,
    };
    let mut people: BTreeMap<usize, Person> = (0..8).map(|id| (id, person(id))).collect();
    let desired = build(m, &records(&people), &[]);
    let first = plan_at(m, &desired, &CurrentState::default(), &crate::plan::Clock::default());
    let ids: BTreeMap<String, String> =
        first.users.iter().enumerate().map(|(i, c)| (c.key.clone(), format!("t{i:03}"))).collect();
    let users = first.users.iter().map(|c| created(&ids[&c.key], c, &ids)).collect();
    let before = CurrentState { users, groups: BTreeMap::new() };
    let clock = crate::plan::Clock::default();
    let parts = plan_parts(m, &desired, &desired.groups, &before, &clock, &Rest::default());
    let baseline = Baseline::of(m, &desired, &before, &parts).expect("a baseline");
    assert!(baseline.values.is_empty(), "every target user's values are its person's: {:?}", baseline.values);
    let last = parts.plan.clone();

    let moved = people.get_mut(&3).unwrap();
    moved.mail = "p3-new@x.example".into();
    moved.alias = "a5@x.example".into();
    let desired = build(m, &records(&people), &[]);
    let in_full = plan_at(m, &desired, &before, &clock);
    assert_eq!(in_full.conflicts.len(), 2, "{}", serde_json::to_string_pretty(&in_full).unwrap());
    let (again, ..) = replan(m, &baseline, &last, &desired, &before, &before, &[]).unwrap();
    assert_eq!(again, in_full);
}
