//! Executes a plan against a `TargetWriter`: creates first, then updates and adoptions, then
//! group memberships (resolving members created moments ago), then deprovisioning. A failed
//! request is recorded and the run goes on with everything that does not depend on it.

pub mod fold;
mod preconditions;
pub mod replan;

pub use preconditions::{Stale, check_preconditions};

use std::collections::BTreeMap;

use futures_util::StreamExt;
use futures_util::stream;
use indicatif::ProgressBar;

use crate::current::CurrentUser;
use crate::plan::requests::{
    group_request, pending_references, reference_followup, user_request, user_request_resolved,
};
use crate::plan::{Action, Plan, UserChange};
use crate::scim::resource::{id_of, version_of};
use crate::scim::{ScimRequest, ScimResponse};
use crate::service::{TargetError, TargetWriter};

/// What happened to one planned change.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The user or group the request is about.
    pub subject: Subject,
    /// `PATCH /Users/{id}`.
    pub request: String,
    /// The HTTP status on success, or why it failed.
    pub result: Result<u16, Failure>,
    /// The request created its subject (a POST that succeeded holds the new id).
    pub creates: bool,
    /// What the server answered, on success (the state cache is updated from it, taking a
    /// user's body: `apply::fold`).
    pub response: Option<ScimResponse>,
    /// The id a user's create was answered with.
    pub created_id: Option<String>,
    /// A user as the write's answer left it, kept as the writer keeps users (the answer's
    /// body is not kept: `apply::fold` takes this for the state).
    pub answer: Option<CurrentUser>,
    /// A stale outcome whose resource was read again and planned again: the outcomes that
    /// follow it say what became of the resource; it is neither applied nor failed.
    pub superseded: bool,
    /// What a person should know beyond the status (a write found landed after its answer was
    /// lost).
    pub note: Option<&'static str>,
}

/// Why one request failed: what kind of failure, the HTTP status when the service answered,
/// and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub status: Option<u16>,
    pub message: String,
}

/// What a failure means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Refused because the resource changed since it was read (412, 409, Genesys's 400
    /// `invalidVers`): read again and planned again.
    Stale,
    /// A create refused because the resource exists already (409): looked up and planned again.
    Duplicate,
    /// No usable answer: the service could not be reached, or answered too much.
    Transport,
    /// The service refused it, for good.
    Refused,
    /// Never sent: what it needed failed first.
    NotSent,
}

impl Failure {
    /// A request the service refused or never answered; `then` says what it means, if anything.
    pub fn from_error(error: &TargetError, then: &str) -> Self {
        let (kind, status) = match error {
            TargetError::Status { status, .. } if error.is_stale() => (FailureKind::Stale, Some(*status)),
            TargetError::Status { status, .. } => (FailureKind::Refused, Some(*status)),
            _ => (FailureKind::Transport, None),
        };
        let message = crate::report::error_chain(error);
        Self { kind, status, message: if then.is_empty() { message } else { format!("{message}: {then}") } }
    }

    /// A failure of something that was never sent.
    pub fn unsent(message: impl Into<String>) -> Self {
        Self { kind: FailureKind::NotSent, status: None, message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Outcome {
    /// A request that failed for good.
    pub fn failed(subject: Subject, request: String, failure: Failure) -> Self {
        Self::new(subject, request, Err(failure))
    }

    /// A read that succeeded (a resource read again after a stale write).
    pub fn read(subject: Subject, request: String) -> Self {
        Self::new(subject, request, Ok(200))
    }

    fn new(subject: Subject, request: String, result: Result<u16, Failure>) -> Self {
        Self {
            subject,
            request,
            result,
            creates: false,
            response: None,
            created_id: None,
            answer: None,
            superseded: false,
            note: None,
        }
    }

    /// Refused as stale or as existing already: the resource is read again and planned again.
    pub fn is_stale(&self) -> bool {
        matches!(&self.result, Err(f) if matches!(f.kind, FailureKind::Stale | FailureKind::Duplicate))
    }
}

/// Every outcome, in the order the requests were sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyReport {
    pub outcomes: Vec<Outcome>,
}

impl ApplyReport {
    /// Requests that failed, for good (not those read again and planned again).
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err() && !o.superseded)
    }

    pub fn succeeded(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }
}

/// What an outcome is about: a user, by its key, or a group, by its pairing's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    User(String),
    Group(String),
}

impl Subject {
    /// `user` or `group`: what the subject is, without naming it.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Group(_) => "group",
        }
    }
}

/// `user "jdoe@corp.example"` or `group "Support"`: how outcomes and stale resources are named.
impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Subject::User(name) | Subject::Group(name)) = self;
        write!(f, "{} {}", self.kind(), serde_json::to_string(name).unwrap_or_default())
    }
}

/// One user request to send: the user's key, the request, and whether it creates the user.
struct UserRequest {
    key: String,
    request: ScimRequest,
    creates: bool,
}

/// Sends `requests` with at most `concurrency` in flight; returns outcomes in input order.
async fn run_users<W: TargetWriter>(
    requests: impl IntoIterator<Item = UserRequest>,
    writer: &W,
    concurrency: usize,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    let requests = requests.into_iter();
    // Each outcome in its request's place as it comes: one vector the size of the requests,
    // not one that doubles as answers arrive and another to put them in order.
    let mut slots: Vec<Option<Outcome>> = Vec::with_capacity(requests.size_hint().0);
    stream::iter(requests.enumerate())
        .map(|(index, UserRequest { key, request, creates })| {
            async move {
                // Stopped by a signal: no new write (the report lists what was sent).
                if crate::signals::interrupted().is_some() {
                    return None;
                }
                let mut answered = None;
                let mut created_id = None;
                let mut answer = None;
                let result = match writer.send(&request).await {
                    Ok(mut response) => {
                        if creates {
                            created_id = response.body.as_ref().and_then(id_of).map(str::to_owned);
                        }
                        // Kept as the state keeps users, not as the whole body.
                        answer = response.body.take().and_then(|body| match writer.keeps() {
                            Some(managed) => CurrentUser::keeping(&body, managed),
                            None => CurrentUser::from_resource(body),
                        });
                        let status = response.status;
                        answered = Some(response);
                        Ok(status)
                    }
                    Err(error) if error.is_stale() => {
                        Err(Failure::from_error(&error, "it changed in the target since it was read"))
                    }
                    Err(error) if creates && error.is_duplicate() => Err(Failure {
                        kind: FailureKind::Duplicate,
                        ..Failure::from_error(&error, "it exists in the target already")
                    }),
                    Err(error @ TargetError::Status { status: 413, .. }) => Err(Failure::from_error(
                        &error,
                        "the user's write is over the service's size limit: map fewer or shorter values (routing skills, languages, phone numbers)",
                    )),
                    Err(error) => Err(Failure::from_error(&error, "")),
                };
                progress.inc(1);
                let mut outcome = Outcome::new(Subject::User(key), request.to_string(), result);
                outcome.creates = creates;
                outcome.response = answered;
                outcome.created_id = created_id;
                outcome.answer = answer;
                Some((index, outcome))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .for_each(|sent| {
            if let Some((index, outcome)) = sent {
                if slots.len() <= index {
                    slots.resize_with(index + 1, || None);
                }
                slots[index] = Some(outcome);
            }
            std::future::ready(())
        })
        .await;
    // Collected in place (`flatten` would grow a second vector by doubling).
    #[allow(clippy::filter_map_identity)]
    slots.into_iter().filter_map(|outcome| outcome).collect()
}

/// The ids the users an apply created were answered with, by user key.
pub(crate) fn created_ids(outcomes: &[Outcome]) -> BTreeMap<&str, &str> {
    outcomes
        .iter()
        .filter_map(|o| match &o.subject {
            Subject::User(key) => Some((key.as_str(), o.created_id.as_deref()?)),
            Subject::Group(_) => None,
        })
        .collect()
}

/// Sends one group's change: in parts of at most `members_per_request` member changes, each
/// after the other with the version the last one left; a part the service refuses as too large
/// (413) is sent again as two halves. A part that cannot be halved (one member, a PUT, a
/// create) fails with what to do.
async fn send_group<W: TargetWriter>(
    change: &crate::plan::GroupChange,
    whole: ScimRequest,
    resolve: impl Fn(&str) -> Option<String> + Copy,
    writer: &W,
) -> Vec<Outcome> {
    let resource = Subject::Group(change.name.clone());
    let splittable = change.method == crate::manifest::model::MembershipMethod::Patch && !change.create;
    let mut parts: std::collections::VecDeque<Option<crate::plan::GroupChange>> = match change.members_per_request {
        Some(per_request) if splittable => split_members(change, per_request).into_iter().map(Some).collect(),
        _ => std::collections::VecDeque::from([None]),
    };
    let mut outcomes = Vec::new();
    let mut version_after: Option<Option<String>> = None;
    while let Some(part) = parts.pop_front() {
        if crate::signals::interrupted().is_some() {
            break;
        }
        let mut request = match &part {
            Some(part) => group_request(part, resolve).0,
            None => whole.clone(),
        };
        // After the first part, the group's version is the one the last part left (none
        // known: no If-Match, the group was changed by this run a moment ago).
        if let Some(version) = &version_after {
            request.if_match.clone_from(version);
        }
        let mut outcome = match writer.send(&request).await {
            Ok(response) => {
                version_after = Some(response.body.as_ref().and_then(version_of).or_else(|| response.etag.clone()));
                let mut outcome = Outcome::new(resource.clone(), request.to_string(), Ok(response.status));
                outcome.response = Some(response);
                outcome
            }
            Err(TargetError::Status { status: 413, .. }) if splittable && part_size(change, part.as_ref()) > 1 => {
                let current = part.unwrap_or_else(|| change.clone());
                let half = part_size(change, Some(&current)).div_ceil(2);
                for piece in split_members(&current, half).into_iter().rev() {
                    parts.push_front(Some(piece));
                }
                let mut outcome = Outcome::new(
                    resource.clone(),
                    request.to_string(),
                    Err(Failure {
                        kind: FailureKind::Refused,
                        status: Some(413),
                        message: "over the service's size limit".to_owned(),
                    }),
                );
                outcome.superseded = true;
                outcome.note = Some("over the service's size limit: sent again in smaller requests");
                outcome
            }
            Err(error @ TargetError::Status { status: 413, .. }) => {
                let then = if splittable {
                    "even one member change is over the service's size limit"
                } else {
                    "over the service's size limit; `method: patch` can send the members in smaller requests"
                };
                Outcome::new(resource.clone(), request.to_string(), Err(Failure::from_error(&error, then)))
            }
            // Also a write whose answer was lost and whose retry found the group changed (by
            // that write): read again and planned again, as users are.
            Err(error) if error.is_stale() => {
                let failure = Failure::from_error(&error, "it changed in the target since it was read");
                Outcome::new(resource.clone(), request.to_string(), Err(failure))
            }
            Err(error) => Outcome::new(resource.clone(), request.to_string(), Err(Failure::from_error(&error, ""))),
        };
        outcome.creates = change.create && outcome.result.is_ok();
        let failed = outcome.result.is_err() && !outcome.superseded;
        outcomes.push(outcome);
        if failed {
            // The parts after a failure would go on from a version nobody knows.
            break;
        }
    }
    outcomes
}

/// How many member changes a part holds (the whole change when `part` is `None`).
fn part_size(change: &crate::plan::GroupChange, part: Option<&crate::plan::GroupChange>) -> usize {
    let part = part.unwrap_or(change);
    part.add.len() + part.remove.len()
}

/// A group change as parts of at most `per_request` member changes: additions first.
fn split_members(change: &crate::plan::GroupChange, per_request: usize) -> Vec<crate::plan::GroupChange> {
    let changes: Vec<(bool, &crate::plan::Member)> =
        change.add.iter().map(|m| (true, m)).chain(change.remove.iter().map(|m| (false, m))).collect();
    changes
        .chunks(per_request.max(1))
        .map(|chunk| crate::plan::GroupChange {
            add: chunk.iter().filter(|(add, _)| *add).map(|(_, m)| (*m).clone()).collect(),
            remove: chunk.iter().filter(|(add, _)| !*add).map(|(_, m)| (*m).clone()).collect(),
            ..change.clone()
        })
        .collect()
}

/// Applies the plan. The caller checks `plan.blocked` first.
pub async fn execute<W: TargetWriter>(plan: &Plan, writer: &W, concurrency: usize) -> ApplyReport {
    execute_with_progress(plan, writer, concurrency, &ProgressBar::hidden()).await
}

/// `execute`, advancing `progress` by one for each user and group change.
pub async fn execute_with_progress<W: TargetWriter>(
    plan: &Plan,
    writer: &W,
    concurrency: usize,
    progress: &ProgressBar,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let deprovisioning = |c: &&UserChange| c.is_deprovision();

    let to_create: Vec<&UserChange> = plan.users.iter().filter(|c| c.action == Action::Create).collect();
    // Built as they are sent, not all before: 100,000 creates' bodies are never held at once.
    let posts = to_create.iter().map(|c| UserRequest { key: c.key.clone(), request: user_request(c), creates: true });
    let create_outcomes = run_users(posts, writer, concurrency, progress).await;
    // The ids the creates were answered with, borrowed from their outcomes (the report takes
    // them last, as they are, in front of the rest).
    let created = created_ids(&create_outcomes);

    // Updates, and the references (`manager`) that needed users created just now.
    let resolve = |key: &str| created.get(key).map(|id| (*id).to_owned());
    let mut patches = Vec::new();
    for change in plan.users.iter().filter(|c| c.action != Action::Create && !deprovisioning(c)) {
        patches.push(UserRequest {
            key: change.key.clone(),
            request: user_request_resolved(change, &resolve),
            creates: false,
        });
    }
    for change in &to_create {
        let Some(id) = created.get(change.key.as_str()) else { continue };
        if let Some(request) = reference_followup(change, id, &resolve) {
            patches.push(UserRequest { key: change.key.clone(), request, creates: false });
        }
    }
    for change in plan.users.iter().filter(|c| !deprovisioning(c)) {
        for key in pending_references(change).filter(|key| !created.contains_key(*key)) {
            report.outcomes.push(Outcome::new(
                Subject::User(change.key.clone()),
                format!("reference to user `{key}`"),
                Err(Failure::unsent(format!("not set: creating user `{key}` failed"))),
            ));
        }
    }
    report.outcomes.extend(run_users(patches, writer, concurrency, progress).await);

    for change in &plan.groups {
        let (request, unresolved) = group_request(change, resolve);
        let resource = Subject::Group(change.name.clone());
        for key in unresolved {
            report.outcomes.push(Outcome::new(
                resource.clone(),
                request.to_string(),
                Err(Failure::unsent(format!("member `{key}` was not added: creating the user failed"))),
            ));
        }
        let has_operations = request
            .body
            .as_ref()
            .and_then(|b| b.get("Operations"))
            .and_then(serde_json::Value::as_array)
            .is_none_or(|ops| !ops.is_empty());
        progress.inc(1);
        if !has_operations {
            continue;
        }
        report.outcomes.extend(send_group(change, request, resolve, writer).await);
    }

    let removals = plan.users.iter().filter(deprovisioning).map(|c| UserRequest {
        key: c.key.clone(),
        request: user_request(c),
        creates: false,
    });
    report.outcomes.extend(run_users(removals, writer, concurrency, progress).await);
    let rest = std::mem::replace(&mut report.outcomes, create_outcomes);
    // Grown by what follows, not doubled: 100,000 creates' outcomes are not held twice over.
    report.outcomes.reserve_exact(rest.len());
    report.outcomes.extend(rest);
    report
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::plan::render::text::tests::realistic_plan;
    use crate::scim::Method;

    /// Records requests; refuses those with the method `fail`.
    struct FakeTarget {
        sent: Mutex<Vec<ScimRequest>>,
        fail: Option<Method>,
    }

    impl TargetWriter for FakeTarget {
        async fn send(&self, request: &ScimRequest) -> Result<ScimResponse, TargetError> {
            self.sent.lock().unwrap().push(request.clone());
            if self.fail == Some(request.method) {
                return Err(TargetError::Status { request: request.to_string(), status: 409, body: None });
            }
            // A created user's id is `new-` and its userName.
            let body = (request.method == Method::Post).then(|| {
                let name = request.body.as_ref().and_then(|b| b["userName"].as_str()).unwrap_or("id");
                json!({"id": format!("new-{name}")})
            });
            Ok(ScimResponse { status: if body.is_some() { 201 } else { 204 }, body, etag: None })
        }
    }

    #[tokio::test]
    async fn applies_in_safe_order_and_resolves_new_members() {
        let target = FakeTarget { sent: Mutex::new(Vec::new()), fail: None };
        let report = execute(&realistic_plan(), &target, 1).await;
        assert_eq!(report.failures().count(), 0);
        let sent = target.sent.into_inner().unwrap();
        let order: Vec<String> = sent.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "POST /Users",
                "PATCH /Users/t1",
                "PATCH /Users/t2",
                "PATCH /Users/t4",
                "PATCH /Groups/g1",
                "PATCH /Users/t5"
            ]
        );
        let group = sent[4].body.as_ref().unwrap();
        assert_eq!(group["Operations"][0]["value"], json!([{"value": "t1"}, {"value": "new-cy.do@x.example"}]));
    }

    /// A user whose manager is created in the same apply gets the manager's new id in a PATCH
    /// after both exist; the POST never carries an id it cannot know.
    #[tokio::test]
    async fn a_manager_created_in_the_same_apply_is_set_afterwards() {
        let m = crate::plan::fixtures::manifest(&crate::plan::fixtures::MANIFEST.replace(
            "  deprovision: { action: disable }",
            "    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value: { reference: manager }\n  deprovision: { action: disable }",
        ));
        let boss = crate::plan::fixtures::person("1", "boss@x.example", "Lead");
        let mut ann = crate::plan::fixtures::person("2", "ann.lee@x.example", "Agent");
        ann.insert("manager", crate::record::AttrValue::Text("1".into()));
        let desired = crate::desired::build(&m.users, &[boss, ann], &[]);
        let plan = crate::plan::plan(&m.users, &desired, &crate::service::CurrentState::default());
        let target = FakeTarget { sent: Mutex::new(Vec::new()), fail: None };
        let report = execute(&plan, &target, 2).await;
        assert_eq!(report.failures().count(), 0, "{report:?}");
        let sent = target.sent.into_inner().unwrap();
        let order: Vec<String> = sent.iter().map(ToString::to_string).collect();
        assert_eq!(order, ["POST /Users", "POST /Users", "PATCH /Users/new-ann.lee@x.example"]);
        assert!(sent.iter().take(2).all(|r| !r.body.as_ref().unwrap().to_string().contains("manager")));
        assert_eq!(
            sent[2].body.as_ref().unwrap()["Operations"],
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "new-boss@x.example"}])
        );
    }

    #[tokio::test]
    async fn keeps_going_past_a_failure_and_reports_it() {
        let target = FakeTarget { sent: Mutex::new(Vec::new()), fail: Some(Method::Post) };
        let report = execute(&realistic_plan(), &target, 4).await;
        let failures: Vec<&Outcome> = report.failures().collect();
        // The create failed, so its group membership cannot be added: two failures.
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert_eq!(failures[0].result.as_ref().unwrap_err().status, Some(409));
        assert!(failures[0].result.as_ref().unwrap_err().message.contains("HTTP 409"));
        assert!(failures[1].result.as_ref().unwrap_err().message.contains("member `cy.do@x.example` was not added"));
        // Everything else was still sent, the deprovisioning last.
        assert_eq!(report.succeeded(), 5);
        assert_eq!(target.sent.lock().unwrap().last().unwrap().path, "/Users/t5");
    }
}
