//! The planner's tests: plain values in, a plan out.
use serde_json::json;

use super::*;
use crate::current::CurrentGroup;
use crate::desired::build;
use crate::manifest::Manifest;
use crate::manifest::model::TargetGroupRef;
use crate::plan::fixtures::{MANIFEST, manifest, person, support, target_user};
use crate::plan::render::render_text;
use crate::plan::{Action, ActionReason, Member};
use crate::record::{AttrValue, SourceRecord};

fn target_group(members: &[&str]) -> CurrentGroup {
    CurrentGroup {
        id: "g1".into(),
        display_name: "Support".into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        version: None,
    }
}

fn run(records: &[SourceRecord], users: Vec<CurrentUser>) -> Plan {
    let m = manifest(MANIFEST);
    let desired = build(&m.users, records, &[]);
    assert!(desired.errors.is_empty(), "{:?}", desired.errors);
    plan(&m.users, &desired, &CurrentState { users, groups: BTreeMap::new() })
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.users.iter().map(|c| (c.key.clone(), c.action)).collect()
}

const MANAGER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value";

fn with_manager() -> Manifest {
    manifest(&MANIFEST.replace(
        "  deprovision: { action: disable }",
        &format!("    {MANAGER}: {{ reference: manager }}\n  deprovision: {{ action: disable }}"),
    ))
}

fn managed_by(id: &str, mail: &str, manager: &str) -> SourceRecord {
    let mut r = person(id, mail, "Agent");
    r.insert("manager", AttrValue::Text(manager.into()));
    r
}

/// A manager resolves to its target id; one created in the same run is "known after apply";
/// one outside the source is reported and nothing is invented.
#[test]
fn managers_resolve_through_the_user_mapping() {
    let m = with_manager();
    let records = [
        person("1", "boss.one@x.example", "Lead"),
        managed_by("2", "ann.lee@x.example", "1"),
        managed_by("3", "bo.ek@x.example", "4"),
        person("4", "new.boss@x.example", "Lead"),
        managed_by("5", "cy.do@x.example", "99"),
    ];
    let mut ann = target_user("t2", Some("2"), "ann.lee@x.example", "Agent");
    let manager = ScimPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").unwrap();
    ann.set(&manager, json!({"value": "t1"}));
    let users = vec![
        target_user("t1", Some("1"), "boss.one@x.example", "Lead"),
        ann,
        target_user("t3", Some("3"), "bo.ek@x.example", "Agent"),
        target_user("t5", Some("5"), "cy.do@x.example", "Agent"),
    ];
    let desired = build(&m.users, &records, &[]);
    let plan = plan(&m.users, &desired, &CurrentState { users, groups: BTreeMap::new() });
    // Ann's manager is already t1: no change. Bo's is created by this plan.
    assert_eq!(
        actions(&plan),
        vec![("bo.ek@x.example".into(), Action::Update), ("new.boss@x.example".into(), Action::Create)]
    );
    let bo = &plan.users[0];
    assert_eq!(bo.changes[0].reference.as_deref().map(String::as_str), Some("new.boss@x.example"));
    assert!(render_text(&plan).contains("+ 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value' = (known after apply: the id of user \"new.boss@x.example\")"), "{}", render_text(&plan));
    assert_eq!(
        plan.warnings,
        [format!("user `cy.do@x.example`: `{MANAGER}` refers to `99`, which is no user of source `hr`; left as it is")]
    );
    let request =
        crate::plan::requests::user_request_resolved(bo, &|key| (key == "new.boss@x.example").then(|| "t9".to_owned()));
    assert_eq!(request.body.unwrap()["Operations"], json!([{"op": "add", "path": MANAGER, "value": "t9"}]));
}

/// Filtered multi-valued paths compare element by element; a missing element is added to its
/// parent, an emptied one (`on_empty: remove`) is removed whole, and `tel:` is no difference.
#[test]
fn multi_valued_attributes_change_element_by_element() {
    let text = MANIFEST.replace(
            "  deprovision: { action: disable }",
            "    'phoneNumbers[type eq \"mobile\"].value': { from: mobile, on_empty: remove }\n    'phoneNumbers[type eq \"work\"].value': phone\n    'addresses[type eq \"work\"].locality': { from: city, on_empty: remove }\n  deprovision: { action: disable }",
        );
    let m = manifest(&text);
    let mut record = person("1", "ann.lee@x.example", "Agent");
    record.insert("phone", AttrValue::Text("+15555550100".into()));
    record.insert("city", AttrValue::Text(String::new()));
    let mut user = target_user("t1", Some("1"), "ann.lee@x.example", "Agent");
    user.set(
        &ScimPath::parse("phoneNumbers").unwrap(),
        json!([
            {"type": "mobile", "value": "tel:+15555550199"},
            {"type": "work", "value": "tel:+15555550100"},
            {"type": "home", "value": "tel:+15555550111"},
        ]),
    );
    user.set(&ScimPath::parse("addresses").unwrap(), json!([{"type": "work", "locality": "Leeds", "country": "GB"}]));
    user.set(&ScimPath::parse("emails").unwrap(), json!([{"type": "other", "value": "x@y"}]));
    let desired = build(&m.users, &[record], &[]);
    let plan = plan(&m.users, &desired, &CurrentState { users: vec![user], groups: BTreeMap::new() });
    let request = crate::plan::requests::user_request(&plan.users[0]);
    let operations = &request.body.unwrap()["Operations"];
    assert_eq!(
        operations,
        &json!([
            // `locality` alone: the element keeps its country.
            {"op": "remove", "path": "addresses[type eq \"work\"].locality"},
            // No work email yet: added to `emails`, beside the other one.
            {"op": "add", "path": "emails", "value": [{"type": "work", "value": "ann.lee@x.example"}]},
            // The mobile number is gone from the source: the whole element goes.
            {"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"},
        ]),
        "the work phone equals `tel:+15555550100`, the home phone is not managed"
    );
}

#[test]
fn in_sync_is_no_change_and_unmanaged_attributes_are_ignored() {
    let plan = run(
        &[person("1", "ann.lee@x.example", "Agent")],
        vec![target_user("t1", Some("1"), "ann.lee@x.example", "Agent")],
    );
    assert!(!plan.has_changes(), "{}", render_text(&plan));
}

#[test]
fn user_name_compares_without_case() {
    let plan = run(
        &[person("1", "ann.lee@x.example", "Agent")],
        vec![target_user("t1", Some("1"), "Ann.Lee@X.example", "Agent")],
    );
    let changed: Vec<String> = plan.users.iter().flat_map(|u| u.changes.iter().map(|c| c.path.to_string())).collect();
    assert!(!changed.contains(&"userName".to_owned()), "{changed:?}");
}

#[test]
fn updates_only_the_differing_attribute() {
    let plan = run(
        &[person("1", "ann.lee@x.example", "Lead")],
        vec![target_user("t1", Some("1"), "ann.lee@x.example", "Agent")],
    );
    assert_eq!(actions(&plan), vec![("ann.lee@x.example".into(), Action::Update)]);
    let change = &plan.users[0];
    assert_eq!(
        change.changes,
        vec![AttributeChange {
            path: ScimPath::attribute("title"),
            before: Some(Box::new(json!("Agent"))),
            after: Some(json!("Lead")),
            set: None,
            reference: None,
        }]
    );
    assert_eq!(change.precondition, Precondition::Etag("W/\"1\"".into()));
}

#[test]
fn on_empty_remove_removes_the_target_value() {
    let plan =
        run(&[person("1", "ann.lee@x.example", "")], vec![target_user("t1", Some("1"), "ann.lee@x.example", "Agent")]);
    assert_eq!(
        plan.users[0].changes,
        vec![AttributeChange {
            path: ScimPath::attribute("title"),
            before: Some(Box::new(json!("Agent"))),
            after: None,
            set: None,
            reference: None
        }]
    );
}

#[test]
fn creates_missing_users_but_not_disabled_ones() {
    let mut leaver = person("2", "bo.ek@x.example", "Agent");
    leaver.disabled = true;
    let plan = run(&[person("1", "ann.lee@x.example", "Agent"), leaver], vec![]);
    assert_eq!(actions(&plan), vec![("ann.lee@x.example".into(), Action::Create)]);
    let created: Vec<String> = plan.users[0].changes.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(created, ["active", "displayName", "emails[type eq \"work\"].value", "externalId", "title", "userName"]);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
}

#[test]
fn adopts_an_unmarked_match_and_refuses_a_foreign_marker() {
    let mut foreign = target_user("t2", None, "bo.ek@x.example", "Agent");
    foreign.set(&ScimPath::parse("externalId").unwrap(), json!("other-tool-9"));
    let plan = run(
        &[person("1", "ann.lee@x.example", "Agent"), person("2", "bo.ek@x.example", "Agent")],
        vec![target_user("t1", None, "ann.lee@x.example", "Agent"), foreign],
    );
    assert_eq!(actions(&plan), vec![("ann.lee@x.example".into(), Action::Adopt)]);
    assert_eq!(plan.users[0].changes[0].path, ScimPath::attribute("externalId"));
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].target_id, "t2");
}

#[test]
fn the_ownership_marker_follows_a_renamed_user() {
    let plan = run(
        &[person("1", "ann.smith@x.example", "Agent")],
        vec![target_user("t1", Some("1"), "ann.lee@x.example", "Agent")],
    );
    assert_eq!(actions(&plan), vec![("ann.smith@x.example".into(), Action::Update)]);
    assert!(plan.users[0].changes.iter().any(|c| c.path.is("userName")));
}

#[test]
fn disables_a_disabled_source_account_and_reactivates_it() {
    let mut ann = person("1", "ann.lee@x.example", "Agent");
    ann.disabled = true;
    let plan = run(std::slice::from_ref(&ann), vec![target_user("t1", Some("1"), "ann.lee@x.example", "Agent")]);
    assert_eq!(actions(&plan), vec![("ann.lee@x.example".into(), Action::Disable)]);
    assert_eq!(plan.users[0].reason, Some(ActionReason::SourceDisabled));

    ann.disabled = false;
    let mut inactive = target_user("t1", Some("1"), "ann.lee@x.example", "Agent");
    inactive.set(&ScimPath::parse("active").unwrap(), json!(false));
    let plan = run(&[ann], vec![inactive]);
    assert_eq!(actions(&plan), vec![("ann.lee@x.example".into(), Action::Update)]);
    assert_eq!(plan.users[0].changes[0].after, Some(json!(true)));
}

#[test]
fn deprovisions_only_owned_users_in_no_source() {
    let mut unmarked = target_user("t3", None, "cy.do@x.example", "Agent");
    unmarked.set(&ScimPath::parse("externalId").unwrap(), json!(null));
    let mut foreign = target_user("t4", None, "di.ro@x.example", "Agent");
    foreign.set(&ScimPath::parse("externalId").unwrap(), json!("partner-1"));
    let mut already = target_user("t5", Some("5"), "ed.wu@x.example", "Agent");
    already.set(&ScimPath::parse("active").unwrap(), json!(false));
    let plan = run(
        &[person("1", "ann.lee@x.example", "Agent")],
        vec![
            target_user("t1", Some("1"), "ann.lee@x.example", "Agent"),
            target_user("t2", Some("2"), "bo.ek@x.example", "Agent"),
            unmarked,
            foreign,
            already,
        ],
    );
    assert_eq!(actions(&plan), vec![("bo.ek@x.example".into(), Action::Deprovision)]);
    assert_eq!(plan.users[0].reason, None, "a deprovision is its own action");
    assert!(plan.blocked.is_none());
}

#[test]
fn too_many_deprovisions_block_the_plan() {
    let text = MANIFEST.replace("deprovision: { action: disable }", "deprovision: { action: delete, max: 1 }");
    let m = manifest(&text);
    let desired = build(&m.users, &[], &[]);
    let users =
        vec![target_user("t1", Some("1"), "a.a@x.example", "A"), target_user("t2", Some("2"), "b.b@x.example", "B")];
    let plan = plan(&m.users, &desired, &CurrentState { users, groups: BTreeMap::new() });
    assert_eq!(plan.summary().delete, 2);
    assert!(
        plan.blocked
            .as_ref()
            .is_some_and(|b| b.limits[0].count == 2 && b.reason().contains("more than `users.deprovision.max` (1)")),
        "{:?}",
        plan.blocked
    );
}

#[test]
fn group_members_resolve_through_the_user_mapping() {
    let m = manifest(MANIFEST);
    let records = [
        person("1", "ann.lee@x.example", "A"),
        person("2", "bo.ek@x.example", "B"),
        person("3", "cy.do@x.example", "C"),
    ];
    let desired = build(&m.users, &records, &[support(&records, &["1", "3", "404"])]);
    let users = vec![
        target_user("t1", Some("1"), "ann.lee@x.example", "A"),
        target_user("t2", Some("2"), "bo.ek@x.example", "B"),
    ];
    let current = CurrentState {
        users,
        groups: BTreeMap::from([(TargetGroupRef::Id("g1".into()), target_group(&["t2", "stranger"]))]),
    };
    let plan = plan(&m.users, &desired, &current);
    let group = &plan.groups[0];
    assert_eq!(
        group.add,
        vec![
            Member { key: "ann.lee@x.example".into(), id: Some("t1".into()) },
            Member { key: "cy.do@x.example".into(), id: None }
        ]
    );
    assert_eq!(
        group.remove,
        vec![
            Member { key: "bo.ek@x.example".into(), id: Some("t2".into()) },
            Member { key: "stranger".into(), id: Some("stranger".into()) }
        ]
    );
    assert!(plan.warnings.iter().any(|w| w.contains("`404`")), "{:?}", plan.warnings);
}

#[test]
fn same_inputs_in_any_order_give_the_same_bytes() {
    let m = manifest(MANIFEST);
    let mut records: Vec<SourceRecord> = (0..40)
        .map(|i| person(&i.to_string(), &format!("u.{i}@x.example"), if i % 3 == 0 { "Lead" } else { "Agent" }))
        .collect();
    let mut users: Vec<CurrentUser> = (10..60)
        .map(|i| {
            target_user(
                &format!("t{i}"),
                (i % 7 != 0).then(|| i.to_string()).as_deref(),
                &format!("u.{i}@x.example"),
                "Agent",
            )
        })
        .collect();
    let members: Vec<String> = (0..40).step_by(2).map(|i| i.to_string()).collect();
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let groups = [support(&records, &member_refs)];
    let current_group = target_group(&["t11", "t13", "t15"]);
    let render = |records: &[SourceRecord], users: &[CurrentUser]| {
        let desired = build(&m.users, records, &groups);
        let current = CurrentState {
            users: users.to_vec(),
            groups: BTreeMap::from([(TargetGroupRef::Id("g1".into()), current_group.clone())]),
        };
        render_text(&plan(&m.users, &desired, &current))
    };
    let first = render(&records, &users);
    // A fixed permutation (no randomness in tests either): reverse, then rotate.
    records.reverse();
    records.rotate_left(7);
    users.reverse();
    users.rotate_left(11);
    assert_eq!(first, render(&records, &users));
    assert!(first.contains("to create"), "{first}");
}

#[test]
fn create_only_attributes_are_sent_in_the_create_and_never_compared_after() {
    let m = manifest(
        &MANIFEST
            .replace("title: { from: title, on_empty: remove }", "title: { from: title, apply: on_create }")
            .replace("  deprovision:", "  sets:\n    roles: { from: roles, apply: on_create }\n  deprovision:"),
    );
    assert!(!m.users.managed_paths().iter().any(|p| p.is("title") || p.is("roles")), "neither read nor remembered");
    let mut ann = person("1", "ann.lee@x.example", "Agent");
    ann.insert("roles", AttrValue::List(vec!["agent".into()]));
    let desired = build(&m.users, &[ann.clone()], &[]);
    let created = plan(&m.users, &desired, &CurrentState::default());
    let sent: Vec<String> = created.users[0].changes.iter().map(|c| c.path.to_string()).collect();
    assert!(sent.contains(&"title".to_owned()) && sent.contains(&"roles".to_owned()), "{sent:?}");

    // Edited in the target, changed in the source: neither is written.
    let mut edited = target_user("t1", Some("1"), "ann.lee@x.example", "Senior Agent");
    edited.set(&ScimPath::parse("roles").unwrap(), json!([{"value": "supervisor"}]));
    ann.insert("title", AttrValue::Text("Lead".into()));
    let desired = build(&m.users, &[ann], &[]);
    let again = plan(&m.users, &desired, &CurrentState { users: vec![edited], groups: BTreeMap::new() });
    assert!(again.users.is_empty(), "{}", render_text(&again));
}

#[test]
fn a_user_that_left_the_scope_is_deprovisioned_by_the_scopes_action_and_the_plan_says_why() {
    let scoped = |out_of_scope: &str| {
        manifest(&MANIFEST.replace(
            "  deprovision: { action: disable }",
            &format!(
                "  scope:\n    filters:\n      - - {{ attribute: title, operator: equals, value: Agent }}\n  deprovision: {{ action: delete, out_of_scope: {out_of_scope} }}"
            ),
        ))
    };
    let people = [person("1", "ann.lee@x.example", "Agent"), person("2", "bo.ek@x.example", "Manager")];
    let target = || {
        vec![
            target_user("t1", Some("1"), "ann.lee@x.example", "Agent"),
            target_user("t2", Some("2"), "bo.ek@x.example", "Agent"),
            target_user("t3", Some("3"), "cy.oh@x.example", "Agent"),
        ]
    };
    let m = scoped("disable");
    let desired = build(&m.users, &people, &[]);
    assert!(desired.users.contains_key("ann.lee@x.example") && !desired.users.contains_key("bo.ek@x.example"));
    let planned = super::plan(&m.users, &desired, &CurrentState { users: target(), groups: BTreeMap::new() });
    // Bo left the scope (disabled, as `out_of_scope` says); Cy left every source (deleted).
    assert_eq!(
        actions(&planned),
        [("bo.ek@x.example".into(), Action::Deprovision), ("cy.oh@x.example".into(), Action::Delete)]
    );
    assert_eq!(planned.users[0].reason, Some(ActionReason::LeftScope));
    assert_eq!(planned.deprovisions().count(), 2, "the rails count both");
    let text = render_text(&planned);
    assert!(
        text.contains(
            "# user \"bo.ek@x.example\" will be disabled (left the scope: no scope filter holds (title is \"Manager\"; the filter asks title equals \"agent\"))"
        ),
        "{text}"
    );
    assert!(text.contains("# user \"cy.oh@x.example\" will be deleted (not in any source)"), "{text}");

    let m = scoped("ignore");
    let desired = build(&m.users, &people, &[]);
    let planned = super::plan(&m.users, &desired, &CurrentState { users: target(), groups: BTreeMap::new() });
    assert_eq!(actions(&planned), [("cy.oh@x.example".into(), Action::Delete)]);

    // Back in scope and disabled meanwhile: enabled again.
    let m = scoped("disable");
    let mut bo = target_user("t2", Some("2"), "bo.ek@x.example", "Agent");
    bo.set(&ScimPath::parse("active").unwrap(), json!(false));
    let people = [person("2", "bo.ek@x.example", "Agent")];
    let desired = build(&m.users, &people, &[]);
    let planned = super::plan(&m.users, &desired, &CurrentState { users: vec![bo], groups: BTreeMap::new() });
    assert_eq!(actions(&planned), [("bo.ek@x.example".into(), Action::Update)]);
    assert_eq!(planned.users[0].changes[0].after, Some(json!(true)));
}

#[test]
fn match_keys_are_tried_in_order_and_ambiguity_is_a_conflict() {
    let m = manifest(
        &MANIFEST
            .replace("  attributes:\n", "  match: [userName, 'emails[type eq \"work\"].value']\n  attributes:\n")
            .replace(
                "'emails[type eq \"work\"].value': \"{{ mail | lower }}\"",
                "'emails[type eq \"work\"].value': \"{{ work | lower }}\"",
            ),
    );
    assert_eq!(m.users.match_paths.len(), 2);
    let person_with = |id: &str, mail: &str, work: &str| {
        let mut p = person(id, mail, "Agent");
        p.insert("work", AttrValue::Text(work.into()));
        p
    };
    let target = |id: &str, user_name: &str, work: &str, marker: Option<&str>| {
        let mut resource = json!({"id": id, "userName": user_name, "emails": [{"type": "work", "value": work}],
            "displayName": "X Y", "title": "Agent", "active": true});
        if let Some(marker) = marker {
            resource["externalId"] = json!(marker);
        }
        CurrentUser::from_resource(resource).unwrap()
    };
    let run = |people: &[SourceRecord], users: Vec<CurrentUser>| {
        let desired = build(&m.users, people, &[]);
        assert!(desired.errors.is_empty(), "{:?}", desired.errors);
        super::plan(&m.users, &desired, &CurrentState { users, groups: BTreeMap::new() })
    };

    // Found only by the work address (its userName is an old one): adopted, renamed.
    let ann = person_with("1", "ann.lee@x.example", "ann@work.example");
    let planned = run(std::slice::from_ref(&ann), vec![target("t1", "old-login", "Ann@Work.example", None)]);
    assert_eq!(actions(&planned), [("ann.lee@x.example".into(), Action::Adopt)]);
    assert_eq!(planned.users[0].target_id.as_deref(), Some("t1"));
    assert!(planned.users[0].changes.iter().any(|c| c.path.is("userName")), "{}", render_text(&planned));

    // Two target users by the work address: a conflict, nothing planned for Ann.
    let two = vec![target("t1", "a", "ann@work.example", None), target("t2", "b", "ann@work.example", None)];
    let planned = run(std::slice::from_ref(&ann), two);
    assert!(planned.users.is_empty(), "{}", render_text(&planned));
    assert_eq!(planned.conflicts.len(), 1);
    assert!(planned.conflicts[0].message.starts_with("2 target users match `emails[type eq \"work\"].value`"));

    // One target user found by two desired users: a conflict for each, nothing written.
    let bo = person_with("2", "bo.ek@x.example", "ann@work.example");
    let planned = run(&[ann.clone(), bo], vec![target("t1", "old-login", "ann@work.example", None)]);
    assert!(planned.users.is_empty(), "{}", render_text(&planned));
    assert_eq!(planned.conflicts.len(), 2);
    assert!(planned.conflicts[0].message.contains("matched by 2 desired users"), "{:?}", planned.conflicts);

    // The first key decides when it finds one: the work address is not consulted.
    let planned = run(
        std::slice::from_ref(&ann),
        vec![target("t1", "ann.lee@x.example", "ann@work.example", None), target("t2", "z", "ann@work.example", None)],
    );
    assert_eq!(actions(&planned), [("ann.lee@x.example".into(), Action::Adopt)]);
    assert_eq!(planned.users[0].target_id.as_deref(), Some("t1"));

    // A recycled address: the target user found carries our marker for a record that is gone.
    let planned = run(&[ann], vec![target("t9", "someone-gone", "ann@work.example", Some("hr-9"))]);
    assert!(planned.users.iter().all(|u| u.action != Action::Adopt && u.action != Action::Update));
    assert!(
        planned.conflicts.iter().any(|c| c.message.contains("carries externalId `hr-9`")),
        "{:?}",
        planned.conflicts
    );
}

#[test]
fn a_user_scimform_disabled_is_deleted_once_gone_delete_after_days() {
    let m = manifest(
        &MANIFEST
            .replace("  deprovision: { action: disable }", "  deprovision: { action: disable, delete_after_days: 30 }"),
    );
    let day = |n: i64| jiff::Timestamp::from_second(1_767_225_600 + n * 86_400).unwrap();
    let desired = build(&m.users, &[person("1", "ann.lee@x.example", "Agent")], &[]);
    let gone = |active: bool| {
        let mut bo = target_user("t2", Some("2"), "bo.ek@x.example", "Agent");
        bo.set(&ScimPath::parse("active").unwrap(), json!(active));
        CurrentState {
            users: vec![target_user("t1", Some("1"), "ann.lee@x.example", "Agent"), bo],
            groups: BTreeMap::new(),
        }
    };
    // Day 0: disabled, its clock to start when the apply lands.
    let first = plan_at(&m.users, &desired, &gone(true), &Clock { now: Some(day(0)), disabled_at: BTreeMap::new() });
    assert_eq!(actions(&first), [("bo.ek@x.example".into(), Action::Deprovision)]);
    assert_eq!(first.gone.iter().collect::<Vec<_>>(), ["t2"]);
    let clock = |n| Clock { now: Some(day(n)), disabled_at: BTreeMap::from([("t2".to_owned(), day(0))]) };
    // Day 29: still disabled, nothing to do.
    assert!(plan_at(&m.users, &desired, &gone(false), &clock(29)).users.is_empty());
    // Day 30: deleted, saying why; the rails count it.
    let expired = plan_at(&m.users, &desired, &gone(false), &clock(30));
    assert_eq!(actions(&expired), [("bo.ek@x.example".into(), Action::Delete)]);
    assert_eq!(expired.deprovisions().count(), 1);
    assert!(
        render_text(&expired).contains(
            "# user \"bo.ek@x.example\" will be deleted (disabled by scimform on 2026-01-01, 30 days ago, and still gone; `delete_after_days: 30`)"
        ),
        "{}",
        render_text(&expired)
    );
    // A user disabled by someone else (no clock) is never deleted.
    let unknown = Clock { now: Some(day(400)), disabled_at: BTreeMap::new() };
    assert!(plan_at(&m.users, &desired, &gone(false), &unknown).users.is_empty());
    // Back in the source on day 30: enabled, not deleted, and no longer gone.
    let both =
        build(&m.users, &[person("1", "ann.lee@x.example", "Agent"), person("2", "bo.ek@x.example", "Agent")], &[]);
    let back = plan_at(&m.users, &both, &gone(false), &clock(30));
    assert_eq!(actions(&back), [("bo.ek@x.example".into(), Action::Update)]);
    assert!(back.gone.is_empty());
}

/// A forgotten user (`state forget`) is not updated, not deprovisioned, not counted unmanaged,
/// and keeps its memberships (a PUT carries it); a forgotten group plans nothing.
#[test]
fn forgotten_users_and_groups_are_left_as_they_are() {
    let m = manifest(MANIFEST);
    // t1 is stale (title), t2's record is gone (ours: it would be disabled), t3 is unmarked.
    let records = [person("1", "ann.lee@x.example", "New title"), person("3", "cy.do@x.example", "C")];
    let (mut pairing, group) = support(&records, &["3"]);
    pairing.method = crate::manifest::model::MembershipMethod::Put;
    let mut desired = build(&m.users, &records, &[(pairing, group)]);
    desired.forgotten.users = BTreeMap::from([
        ("t1".to_owned(), "ann.lee@x.example".to_owned()),
        ("t2".to_owned(), "bo.ek@x.example".to_owned()),
    ]);
    let current = CurrentState {
        users: vec![
            target_user("t1", Some("1"), "ann.lee@x.example", "Old title"),
            target_user("t2", Some("2"), "bo.ek@x.example", "B"),
            target_user("t3", Some("3"), "cy.do@x.example", "C"),
        ],
        groups: BTreeMap::from([(TargetGroupRef::Id("g1".into()), target_group(&["t1", "t2"]))]),
    };
    let planned = plan(&m.users, &desired, &current);
    assert!(planned.users.is_empty(), "{:?}", actions(&planned));
    assert!(planned.unmanaged.is_empty());
    assert!(planned.warnings.iter().any(|w| w.starts_with("user `ann.lee@x.example` is forgotten")));
    let group = &planned.groups[0];
    assert_eq!(group.add, vec![Member { key: "cy.do@x.example".into(), id: Some("t3".into()) }]);
    assert!(group.remove.is_empty(), "forgotten members stay: {:?}", group.remove);
    let put: Vec<Option<&str>> = group.members.iter().map(|m| m.id.as_deref()).collect();
    assert_eq!(put, [Some("t3"), Some("t1"), Some("t2")], "the PUT keeps them");

    desired.forgotten.groups = BTreeMap::from([("g1".to_owned(), "Support".to_owned())]);
    let planned = plan(&m.users, &desired, &current);
    assert!(planned.groups.is_empty());
    assert!(planned.warnings.iter().any(|w| w.contains("is forgotten (`scimform state forget`): its members")));
}
