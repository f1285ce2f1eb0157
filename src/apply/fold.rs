//! The target as an apply leaves it, folded from the plan and what the service answered: what
//! the state remembers for the next run. Pure.

use std::collections::{BTreeMap, BTreeSet};

use super::{ApplyReport, Outcome, Subject, created_ids};
use crate::current::{CurrentGroup, CurrentState, CurrentUser};
use crate::manifest::model::TargetGroupRef;
use crate::plan::{Action, Plan};
use crate::scim::resource::{id_of, version_of};
use crate::scim::{ScimPath, ScimResponse};

/// The deprovision clocks (`delete_after_days`, by target id) after an apply: a user this
/// apply disabled for being gone starts its clock at `now`; one deleted, or written otherwise (it
/// came back), ends it. With `gone` (a fresh plan's: every owned user still gone), a user no
/// longer gone ends it too. A write that did not land changes nothing.
pub fn fold_clocks(
    mut clocks: BTreeMap<String, jiff::Timestamp>,
    plan: &Plan,
    report: Option<&ApplyReport>,
    now: jiff::Timestamp,
    gone: Option<&BTreeSet<String>>,
) -> BTreeMap<String, jiff::Timestamp> {
    if let Some(gone) = gone {
        clocks.retain(|id, _| gone.contains(id));
    }
    // Each user's outcomes, looked up once per change rather than searched.
    let mut by_subject: BTreeMap<&Subject, Vec<&Outcome>> = BTreeMap::new();
    for outcome in report.iter().flat_map(|r| &r.outcomes).filter(|o| !o.superseded) {
        by_subject.entry(&outcome.subject).or_default().push(outcome);
    }
    let landed = |key: &str| {
        let outcomes = by_subject.get(&Subject::User(key.to_owned())).map(Vec::as_slice).unwrap_or_default();
        !outcomes.is_empty() && outcomes.iter().all(|o| o.result.is_ok())
    };
    for change in plan.users.iter().filter(|c| landed(&c.key)) {
        let Some(id) = change.target_id.clone() else { continue };
        if change.action == Action::Deprovision {
            clocks.insert(id, now);
        } else {
            clocks.remove(&id);
        }
    }
    clocks
}

/// The cache after an apply. `None` when the result cannot be known exactly (a failed or stale
/// write, a reference set after a create): the next run then reads the target in full. The
/// users' answers are taken out of the report, not copied: a first run of 100,000 creates would
/// hold each twice.
pub fn update_after_apply(
    before: CurrentState,
    plan: &Plan,
    report: &mut ApplyReport,
    managed: &[ScimPath],
) -> Option<CurrentState> {
    if report.failures().next().is_some() {
        return None;
    }
    // References set after a create (a manager created in the same run) are not tracked here.
    if plan.users.iter().any(|u| u.changes.iter().any(|c| c.reference.is_some())) {
        return None;
    }
    // The users as read, by id (sorted in place and searched: no map of 100,000 copied ids);
    // the created ones join them after those read, a deleted one is left out.
    let mut users = before.users;
    users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    users.dedup_by(|a, b| a.id == b.id);
    let read = users.len();
    let find = |users: &[CurrentUser], id: &str| users[..read].binary_search_by(|u| u.id.as_str().cmp(id)).ok();
    let mut deleted = vec![false; read];
    users.reserve_exact(plan.users.iter().filter(|c| c.action == Action::Create).count());
    let answers: Vec<usize> = {
        let by_subject = first_by_subject(report);
        plan.users.iter().map(|c| by_subject.get(&Subject::User(c.key.clone())).copied()).collect::<Option<_>>()?
    };
    for (change, answer) in plan.users.iter().zip(answers) {
        let outcome = report.outcomes.get_mut(answer)?;
        let response = outcome.response.as_ref()?;
        match change.action {
            Action::Delete => {
                if let Some(at) = find(&users, change.target_id.as_deref()?) {
                    deleted[at] = true;
                }
            }
            Action::Create => users.push(outcome.answer.take()?.into_trimmed(managed)),
            Action::Update | Action::Adopt | Action::Disable | Action::Deprovision => {
                let at = find(&users, change.target_id.as_deref()?)?;
                let updated = if let Some(user) = outcome.answer.take() {
                    user
                } else {
                    // 204: the server applied exactly what was sent; its new version is the ETag.
                    let mut user = users[at].clone();
                    for c in &change.changes {
                        match (&c.after, &c.reference) {
                            (Some(after), _) => user.set(&c.path, after.clone()),
                            (None, None) => user.set(&c.path, serde_json::Value::Null),
                            (None, Some(_)) => return None,
                        }
                    }
                    user.version.clone_from(&response.etag);
                    user
                };
                users[at] = updated.into_trimmed(managed);
            }
        }
    }
    let mut gone = deleted.into_iter();
    users.retain(|_| !gone.next().unwrap_or(false));
    users.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    users.dedup_by(|a, b| a.id == b.id);
    // The new users' ids, by key, for the groups' members (a map of 100,000 when nothing needs it).
    let created = if plan.groups.is_empty() { BTreeMap::new() } else { created_ids(&report.outcomes) };
    let mut groups = before.groups;
    for change in &plan.groups {
        let Some(response) = group_response(report, change) else { continue };
        let version = response.body.as_ref().and_then(version_of).or_else(|| response.etag.clone());
        let sent = sent_members(&groups, change, &created);
        // What the service holds, as it answered (a body with members, or the group read after
        // an answer without one): a service may keep other members than were sent.
        let members = answered_members(response).unwrap_or(sent);
        if change.create {
            let id = response.body.as_ref().and_then(id_of)?.to_owned();
            let group = CurrentGroup { id, display_name: change.display_name.clone(), members, version };
            groups.insert(TargetGroupRef::DisplayName(change.display_name.clone()), group);
            continue;
        }
        let group = groups.values_mut().find(|g| g.id == change.target_id)?;
        group.members = members;
        group.version = version;
    }
    Some(CurrentState { users, groups })
}

/// The target ids of the users an apply wrote (changed, created or deleted): the rows of the
/// state that `update_after_apply` changes.
pub fn written_ids(plan: &Plan, report: &ApplyReport) -> BTreeSet<String> {
    let created = created_ids(&report.outcomes);
    plan.users
        .iter()
        .filter_map(|change| match &change.target_id {
            Some(id) => Some(id.clone()),
            None => created.get(change.key.as_str()).map(|id| (*id).to_owned()),
        })
        .collect()
}

/// Where each subject's first outcome is in a report: looked up once per change, not searched
/// (a first run of 100,000 creates has as many outcomes).
fn first_by_subject(report: &ApplyReport) -> BTreeMap<&Subject, usize> {
    let mut by_subject = BTreeMap::new();
    for (i, outcome) in report.outcomes.iter().enumerate() {
        by_subject.entry(&outcome.subject).or_insert(i);
    }
    by_subject
}

/// The answer to a group's write, when it succeeded.
fn group_response<'a>(report: &'a ApplyReport, change: &crate::plan::GroupChange) -> Option<&'a ScimResponse> {
    let subject = Subject::Group(change.name.clone());
    report.outcomes.iter().rev().find(|o| o.subject == subject && o.result.is_ok()).and_then(|o| o.response.as_ref())
}

/// The members a group holds once `change` is applied as sent.
fn sent_members(
    groups: &BTreeMap<TargetGroupRef, CurrentGroup>,
    change: &crate::plan::GroupChange,
    created: &BTreeMap<&str, &str>,
) -> BTreeSet<String> {
    let id_of_member =
        |m: &crate::plan::Member| m.id.clone().or_else(|| created.get(m.key.as_str()).map(|id| (*id).to_owned()));
    let mut members = if change.create {
        BTreeSet::new()
    } else {
        groups.values().find(|g| g.id == change.target_id).map(|g| g.members.clone()).unwrap_or_default()
    };
    for member in &change.remove {
        if let Some(id) = &member.id {
            members.remove(id);
        }
    }
    members.extend(change.add.iter().filter_map(id_of_member));
    members
}

/// The members in an answer that holds the group with its `members`.
pub fn answered_members(response: &ScimResponse) -> Option<BTreeSet<String>> {
    let body = response.body.as_ref()?;
    crate::scim::path::get_ci(body.as_object()?, "members")?;
    CurrentGroup::from_resource(body).map(|g| g.members)
}

/// Groups whose write was answered with other members than were sent (a service that answers
/// 200 to a PUT and keeps the old members): one message each, naming the group.
pub fn unlanded_memberships(before: &CurrentState, plan: &Plan, report: &ApplyReport) -> Vec<String> {
    if plan.groups.is_empty() {
        return Vec::new();
    }
    let created = created_ids(&report.outcomes);
    let mut found = Vec::new();
    for change in &plan.groups {
        let Some(answered) = group_response(report, change).and_then(answered_members) else { continue };
        let sent = sent_members(&before.groups, change, &created);
        if answered != sent {
            let missing = sent.difference(&answered).count();
            let unexpected = answered.difference(&sent).count();
            found.push(format!(
                "group {}: the service accepted the write but holds other members than were sent ({missing} missing, {unexpected} not asked for); it is planned again next run",
                serde_json::to_string(&change.name).unwrap_or_default()
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::apply::Outcome;
    use crate::plan::render::text::tests::realistic_plan;

    /// As `run_users` keeps an answer: a user's body as the user, the rest as it came.
    fn answered(subject: Subject, request: &str, mut response: ScimResponse) -> Outcome {
        let answer = match subject {
            Subject::User(_) => response.body.take().and_then(CurrentUser::from_resource),
            Subject::Group(_) => None,
        };
        let created_id = answer.as_ref().map(|u| u.id.clone()).filter(|_| request.starts_with("POST"));
        Outcome {
            answer,
            created_id,
            subject,
            request: request.into(),
            result: Ok(response.status),
            creates: request.starts_with("POST"),
            response: Some(response),
            superseded: false,
            note: None,
        }
    }

    fn no_content(etag: &str) -> ScimResponse {
        ScimResponse { status: 204, body: None, etag: Some(etag.into()) }
    }

    /// What the realistic plan's apply leaves, from 204 answers with ETags and one created user.
    #[test]
    fn the_cache_follows_what_was_written() {
        let plan = realistic_plan();
        let before = crate::plan::render::text::tests::realistic_current();
        let managed: Vec<ScimPath> =
            ["userName", "title", "active", "externalId"].iter().map(|p| ScimPath::parse(p).unwrap()).collect();
        let mut outcomes = Vec::new();
        for change in &plan.users {
            let response = if change.action == Action::Create {
                ScimResponse {
                    status: 201,
                    body: Some(
                        json!({"id": "t3", "userName": change.key, "title": "Agent", "meta": {"version": "W/\"1\""}}),
                    ),
                    etag: None,
                }
            } else {
                no_content("W/\"2\"")
            };
            let request = if change.action == Action::Create { "POST /Users" } else { "PATCH /Users/x" };
            outcomes.push(answered(Subject::User(change.key.clone()), request, response));
        }
        outcomes.push(answered(Subject::Group("Support".into()), "PATCH /Groups/g1", no_content("W/\"7\"")));
        let mut report = ApplyReport { outcomes };
        let mut failed = report.clone();
        let after = update_after_apply(before.clone(), &plan, &mut report, &managed).unwrap();
        assert!(report.outcomes.iter().all(|o| o.answer.is_none()), "the users' answers were taken, not copied");
        let created = report.outcomes.iter().find(|o| o.creates).unwrap();
        assert_eq!(created.created_id.as_deref(), Some("t3"), "its id stays, for the log");

        let user = |id: &str| after.users.iter().find(|u| u.id == id).unwrap();
        assert_eq!(
            (user("t1").to_resource()["title"].clone(), user("t1").version.as_deref()),
            (json!("Team Lead"), Some("W/\"2\""))
        );
        assert_eq!(user("t5").to_resource()["active"], json!(false), "the leaver is disabled");
        assert_eq!(user("t3").version.as_deref(), Some("W/\"1\""), "the created user, from the POST's answer");
        assert!(user("t1").to_resource().get("nickName").is_none(), "only managed attributes are kept");
        let group = after.groups.values().next().unwrap();
        assert_eq!(group.members, ["t1".to_owned(), "t3".to_owned()].into(), "bo removed; ann and the new cy added");
        assert_eq!(group.version.as_deref(), Some("W/\"7\""));

        // A failed write: nothing is remembered, the next run reads in full.
        failed.outcomes[0].result = Err(crate::apply::Failure {
            kind: crate::apply::FailureKind::Stale,
            status: Some(412),
            message: "HTTP 412".into(),
        });
        assert_eq!(update_after_apply(before, &plan, &mut failed, &managed), None);
    }
}
