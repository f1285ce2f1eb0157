//! Test fixtures the planner's tests and its neighbours (desired state, renderers, apply) share:
//! a small manifest, people, target users in sync with them, the support group.

use std::path::Path;

use serde_json::json;

use crate::current::CurrentUser;
use crate::manifest::model::{GroupPairing, GroupSelector, MembershipMethod, TargetGroupRef};
use crate::manifest::{Manifest, MapEnvironment};
use crate::record::{AttrValue, SourceGroup, SourceRecord};

pub(crate) const MANIFEST: &str = r#"
version: 1
sources:
  hr: { kind: file, path: people.yaml }
target:
  kind: scim
  base_url: http://127.0.0.1:1/scim/v2
  auth: { bearer_token: t }
users:
  source: hr
  external_id: "hr-{{ id }}"
  attributes:
    userName: "{{ mail | lower }}"
    displayName: "{{ givenName }} {{ sn }}"
    title: { from: title, on_empty: remove }
    'emails[type eq "work"].value': "{{ mail | lower }}"
  deprovision: { action: disable }
groups:
  - { name: Support, source: hr, from: { id: support }, to: { id: g1 } }
"#;

pub(crate) fn manifest(text: &str) -> Manifest {
    crate::manifest::parse(text, "test.yaml", &MapEnvironment::default(), Path::new(".")).unwrap()
}

pub(crate) fn person(id: &str, mail: &str, title: &str) -> SourceRecord {
    let mut r = SourceRecord::new(id);
    r.insert("mail", AttrValue::Text(mail.into()));
    let (given, sn) = mail.split_once('@').unwrap().0.split_once('.').unwrap_or(("X", "Y"));
    r.insert("givenName", AttrValue::Text(given.into()));
    r.insert("sn", AttrValue::Text(sn.into()));
    r.insert("title", AttrValue::Text(title.into()));
    r
}

/// A target user in sync with `person(id, mail, title)` as planned above.
pub(crate) fn target_user(id: &str, source_id: Option<&str>, mail: &str, title: &str) -> CurrentUser {
    let (given, sn) = mail.split_once('@').unwrap().0.split_once('.').unwrap_or(("X", "Y"));
    let mut resource = json!({
        "id": id, "userName": mail, "displayName": format!("{given} {sn}"), "title": title,
        "emails": [{"type": "work", "value": mail}], "active": true, "meta": {"version": "W/\"1\""},
        "nickName": "unmanaged",
    });
    if let Some(source_id) = source_id {
        resource["externalId"] = json!(format!("hr-{source_id}"));
    }
    CurrentUser::from_resource(resource).unwrap()
}

/// The source group "support" with the records of `records` whose ids are listed; ids with
/// no record are unresolved, as a source reports them.
pub(crate) fn support(records: &[SourceRecord], members: &[&str]) -> (GroupPairing, SourceGroup) {
    let found = |id: &&str| records.iter().find(|r| r.id == *id).cloned();
    (
        GroupPairing {
            name: "Support".into(),
            source: "hr".into(),
            from: GroupSelector::Id("support".into()),
            to: TargetGroupRef::Id("g1".into()),
            method: MembershipMethod::Patch,
            nested: false,
            member_key: None,
            members_per_operation: 100,
            members_per_request: None,
            create: false,
            max_removals: crate::manifest::model::Limit::default(),
        },
        SourceGroup {
            id: "support".into(),
            name: "Support".into(),
            members: members.iter().filter_map(found).collect(),
            unresolved: members.iter().filter(|m| found(m).is_none()).map(|m| (*m).to_owned()).collect(),
        },
    )
}
