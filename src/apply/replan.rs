//! A second planning for what a write found stale: read again, planned again, sent again.

use std::collections::{BTreeMap, BTreeSet};

use indicatif::ProgressBar;

use super::{ApplyReport, Failure, Outcome, Subject, execute_with_progress};
use crate::current::{CurrentState, CurrentUser};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::service::{TargetReader, TargetWriter};

/// Users and groups whose write was refused as stale (edited in the target since it was read,
/// created already, or the retry of a write whose answer was lost and which had landed) are
/// read again and planned again against what the target holds now; only their remaining
/// changes are sent, with the new version: detected, not overwritten blindly, never duplicated.
/// A resource that needs nothing more is reported applied; one that cannot be read again fails
/// alone. The stale outcomes stay in the report, marked superseded.
///
/// `plan_again` plans as the first plan was made (over every user, or over those planned again:
/// `plan::delta`). Returns the report with what the second pass did, and the second plan (to
/// show).
pub async fn replan_stale<C: TargetReader + TargetWriter>(
    manifest: &Manifest,
    plan_again: &dyn Fn(&CurrentState) -> Plan,
    before: &CurrentState,
    plan: &Plan,
    mut report: ApplyReport,
    client: &C,
    progress: &ProgressBar,
) -> (ApplyReport, Plan) {
    let stale: BTreeSet<Subject> = report.outcomes.iter().filter(|o| o.is_stale()).map(|o| o.subject.clone()).collect();
    let mut current = before.clone();
    // Users created moments ago, so that group members resolve to them.
    for outcome in report.outcomes.iter().filter(|o| o.creates && matches!(o.subject, Subject::User(_))) {
        if let Some(user) = outcome.answer.clone() {
            current.users.push(user);
        }
    }
    let mut read_again: BTreeMap<Subject, String> = BTreeMap::new();
    let mut failed: Vec<crate::apply::Outcome> = Vec::new();
    let mut unfindable: BTreeMap<Subject, String> = BTreeMap::new();
    for change in &plan.users {
        let resource = Subject::User(change.key.clone());
        if !stale.contains(&resource) {
            continue;
        }
        let (request, fresh) = if let Some(id) = &change.target_id {
            let path = format!("/Users/{id}");
            let read = client.fetch(&path).await.map(|r| r.and_then(CurrentUser::from_resource).into_iter().collect());
            (format!("GET {path}"), read)
        } else {
            // A create refused as a duplicate: find the user that exists by its userName.
            let Some(user_name) = change.user_name() else { continue };
            let found = client.find("/Users", "userName", user_name).await;
            let found: Result<Vec<CurrentUser>, _> =
                found.map(|f| f.into_iter().filter_map(CurrentUser::from_resource).collect());
            if matches!(&found, Ok(users) if users.is_empty()) {
                // The create stays failed, saying what to do.
                unfindable.insert(
                    resource,
                    format!(
                        "the service says `{user_name}` exists (409), but no lookup finds it: a deleted user the \
                         service still keeps (Genesys does)? Restore or purge it in the target, or give the person \
                         another userName"
                    ),
                );
                continue;
            }
            (format!("GET /Users?filter=userName eq \"{user_name}\""), found)
        };
        match fresh {
            Ok(fresh) => {
                current.users.retain(|u| !fresh.iter().any(|f| f.id == u.id));
                current.users.extend(fresh);
                read_again.insert(resource, request);
            }
            Err(error) => failed.push(Outcome::failed(
                resource,
                request,
                Failure::from_error(&error, "cannot read it again after a stale write"),
            )),
        }
    }
    for pairing in &manifest.groups {
        let resource = Subject::Group(pairing.name.clone());
        if !stale.contains(&resource) {
            continue;
        }
        match client.groups(std::slice::from_ref(&pairing.to), &[]).await {
            Ok(groups) => {
                let request = groups.values().next().map_or_else(String::new, |g| format!("GET /Groups/{}", g.id));
                current.groups.extend(groups);
                read_again.insert(resource, request);
            }
            Err(error) => failed.push(Outcome::failed(
                resource,
                format!("GET group {}", pairing.to),
                Failure::from_error(&error, "cannot read it again after a stale write"),
            )),
        }
    }
    for outcome in report.outcomes.iter_mut().filter(|o| o.is_stale()) {
        outcome.superseded = read_again.contains_key(&outcome.subject);
        if let (Some(hint), Err(failure)) = (unfindable.get(&outcome.subject), &mut outcome.result) {
            failure.message = format!("{}: {hint}", failure.message);
        }
    }
    report.outcomes.extend(failed);
    let mut again = plan_again(&current);
    // Only what was stale and read again (a stale resource is in `read_again` or failed).
    again.users.retain(|u| read_again.contains_key(&Subject::User(u.key.clone())));
    again.groups.retain(|g| read_again.contains_key(&Subject::Group(g.name.clone())));
    again.warnings.clear();
    again.blocked = None;
    // Read again and nothing left to do: the target holds what was planned (the write had
    // landed before its answer was lost, or someone made the same change).
    let pending: BTreeSet<Subject> = again
        .users
        .iter()
        .map(|u| Subject::User(u.key.clone()))
        .chain(again.groups.iter().map(|g| Subject::Group(g.name.clone())))
        .collect();
    for (resource, request) in &read_again {
        if !pending.contains(resource) {
            let mut landed = Outcome::read(resource.clone(), request.clone());
            landed.note = Some("read again: the target holds what was planned (the write had landed)");
            report.outcomes.push(landed);
        }
    }
    if again.has_changes() {
        let retry = execute_with_progress(&again, client, manifest.target.concurrency, progress).await;
        report.outcomes.extend(retry.outcomes);
    }
    (report, again)
}
